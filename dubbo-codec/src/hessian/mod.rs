//! Hessian 2.0 serialization, byte-compatible with Java's Caucho Hessian and Dubbo's hessian-lite.
//!
//! * [`value`]: the [`Value`] model, which keeps Java type names and references.
//! * [`encoder`]: [`Encoder`] writes values (or primitives one by one, for callers that stream
//!   their own data) choosing the same compact forms as Java.
//! * [`decoder`]: [`Decoder`] reads values from a complete buffer with bounded allocation.
//! * [`java`]: helpers for Java types that travel as objects (`BigDecimal`, enums, `Class`).
//! * `codes`/`string`: the grammar's byte codes, and Java's UTF-16-counted strings.
//!
//! One encoder or decoder is one Hessian stream: class definitions, type names and references are
//! shared by all values written to or read from it, as in a Dubbo2 message body.

mod codes;
pub mod decoder;
pub mod encoder;
pub mod java;
mod string;
pub mod value;

pub use decoder::{Decoder, Limits};
pub use encoder::Encoder;
pub use value::{ClassDef, List, Map, Object, Value};

/// Encodes one value as a standalone Hessian stream.
pub fn to_bytes(value: &Value) -> Result<bytes::BytesMut, crate::Error> {
    let mut out = bytes::BytesMut::new();
    Encoder::new(&mut out).write_value(value)?;
    Ok(out)
}

/// Decodes exactly one value that must fill the whole buffer.
pub fn from_slice(input: &[u8]) -> Result<Value, crate::Error> {
    let mut decoder = Decoder::new(input);
    let value = decoder.read_value()?;
    decoder.finish()?;
    Ok(value)
}
