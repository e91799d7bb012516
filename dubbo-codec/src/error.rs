//! The crate's one error type. Every decoding error carries the byte offset where it was found,
//! relative to the start of the buffer handed to the decoder.

/// Everything that can go wrong while encoding or decoding Dubbo wire formats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended inside a value. For a complete buffer (a frame body) this is an error;
    /// the streaming frame decoder never reports it for a partial frame.
    #[error("hessian: input ends at byte {offset} while reading {reading}")]
    UnexpectedEnd {
        offset: usize,
        reading: &'static str,
    },

    /// A byte that cannot start what the grammar expects at this point.
    #[error("hessian: unexpected code 0x{code:02x} at byte {offset}, expected {expected}")]
    UnexpectedCode {
        offset: usize,
        code: u8,
        expected: &'static str,
    },

    /// A declared length that the remaining input cannot possibly hold.
    #[error("hessian: {what} at byte {offset} declares length {declared}, only {available} bytes remain")]
    LengthExceedsInput {
        offset: usize,
        what: &'static str,
        declared: i64,
        available: usize,
    },

    /// A reference (`Q`), class reference (`O`, `0x60..0x6f`) or type reference to an index that
    /// was never defined.
    #[error("hessian: {what} #{index} at byte {offset} is undefined ({defined} defined so far)")]
    UndefinedReference {
        offset: usize,
        what: &'static str,
        index: i64,
        defined: usize,
    },

    /// String bytes that are not UTF-8 (nor Java's modified UTF-8 for surrogates).
    #[error("hessian: invalid UTF-8 in string at byte {offset}")]
    InvalidUtf8 { offset: usize },

    /// Nesting deeper than the decoder's limit (guards the stack against hostile input).
    #[error("hessian: nesting deeper than {max} levels at byte {offset}")]
    TooDeep { offset: usize, max: usize },

    /// Bytes left over after a value that should have consumed the whole buffer.
    #[error("hessian: {count} unexpected trailing bytes at byte {offset}")]
    TrailingBytes { offset: usize, count: usize },

    /// A value that cannot be written: e.g. an object whose field count does not match its
    /// class definition, or an empty type name.
    #[error("hessian: cannot encode {0}")]
    Unencodable(String),

    /// A Java parameter descriptor that does not follow the JVM grammar.
    #[error("descriptor {descriptor:?}: {reason} at character {offset}")]
    InvalidDescriptor {
        descriptor: String,
        offset: usize,
        reason: &'static str,
    },

    /// The first two bytes of a Dubbo2 frame are not the magic `0xdabb`.
    #[error("dubbo2: bad magic 0x{found:04x} (expected 0xdabb); the peer does not speak Dubbo2")]
    BadMagic { found: u16 },

    /// A frame whose body length exceeds the configured maximum (or is negative).
    #[error("dubbo2: frame body of {length} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { length: i64, max: usize },

    /// A frame serialized with something other than hessian2 (id 2).
    #[error("dubbo2: unsupported serialization id {id} (only hessian2, id 2, is supported)")]
    UnsupportedSerialization { id: u8 },

    /// A well-framed message whose body does not have the shape its header promises.
    #[error("dubbo2: invalid {part}: {source}")]
    InvalidBody {
        part: &'static str,
        source: Box<Error>,
    },

    /// A gRPC/Triple message frame that cannot be read: compressed without an agreed
    /// encoding, or longer than the limit.
    #[error("triple: {0}")]
    InvalidGrpcFrame(String),

    /// A Triple wrapper message that is not valid protobuf of its type.
    #[error("triple: invalid {message}: {reason}")]
    InvalidWrapper {
        message: &'static str,
        reason: String,
    },

    /// A response body whose result flag is not one of the six defined ones.
    #[error("dubbo2: unknown response flag {flag}")]
    UnknownResponseFlag { flag: i32 },
}

impl Error {
    /// Wraps a body-decoding error with the part of the message being read.
    pub(crate) fn in_body(part: &'static str) -> impl FnOnce(Error) -> Error {
        move |source| Error::InvalidBody {
            part,
            source: Box::new(source),
        }
    }
}
