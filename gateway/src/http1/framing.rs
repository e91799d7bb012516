//! Message body framing shared by the server (request bodies) and the client (response
//! bodies): content-length, chunked (RFC 9112 §7.1), or until the connection closes. The
//! decoder works on a read buffer and hands out slices of it; reading more is the caller's.

use std::io;

use bytes::{Buf, Bytes, BytesMut};

/// The longest chunk-size or trailer line accepted.
pub const MAX_LINE: usize = 4 * 1024;
/// The most trailer bytes accepted (they are read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;

/// Body framing still to be read.
#[derive(Debug, Clone, Copy)]
pub enum Decode {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
}

#[derive(Debug, Clone, Copy)]
pub enum Chunk {
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    Trailers,
}

/// What one decoding step found.
#[derive(Debug)]
pub enum Step {
    /// Body bytes to hand on.
    Data(Bytes),
    /// Nothing more in the buffer: read from the connection.
    Read,
    /// Framing consumed: step again.
    Again,
    /// The body is complete.
    End,
}

/// A body being decoded.
#[derive(Debug)]
pub struct Decoder {
    decode: Decode,
    trailer_bytes: usize,
}

pub fn broken(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// The position just past the first CRLF in `buf`, with the line's length limited.
fn line_end(buf: &[u8]) -> io::Result<Option<usize>> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok(Some(i + 2)),
        None if buf.len() > MAX_LINE => Err(broken("a chunk line is too long")),
        None => Ok(None),
    }
}

/// A chunk-size line: 1 to 15 hex digits, then optional whitespace and `;extensions`
/// (no bare CR anywhere). Strict on purpose: leniency on a shared connection invites
/// desynchronisation.
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let invalid = || broken("invalid chunk size");
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 || line.iter().any(|b| *b == b'\r' || *b == b'\n') {
        return Err(invalid());
    }
    let mut rest = line[digits..]
        .iter()
        .skip_while(|b| **b == b' ' || **b == b'\t');
    if rest.next().is_some_and(|first| *first != b';') {
        return Err(invalid());
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| invalid())?;
    u64::from_str_radix(text, 16).map_err(|_| invalid())
}

impl Decoder {
    pub fn new(decode: Decode) -> Decoder {
        Decoder {
            decode,
            trailer_bytes: 0,
        }
    }

    pub fn chunked() -> Decoder {
        Decoder::new(Decode::Chunked(Chunk::Size))
    }

    pub fn decode(&self) -> Decode {
        self.decode
    }

    /// Whether the body is known to be complete without reading further.
    pub fn is_done(&self) -> bool {
        matches!(self.decode, Decode::Length(0))
    }

    /// The body bytes still to come, when the framing says.
    pub fn remaining(&self) -> Option<u64> {
        match self.decode {
            Decode::Length(rest) => Some(rest),
            _ => None,
        }
    }

    /// One step of decoding `buf`.
    pub fn step(&mut self, buf: &mut BytesMut) -> io::Result<Step> {
        match self.decode {
            Decode::Length(0) => Ok(Step::End),
            Decode::Length(rest) => Ok(take_data(buf, rest).map_or(Step::Read, |(data, left)| {
                self.decode = Decode::Length(left);
                Step::Data(data)
            })),
            Decode::UntilClose => Ok(if buf.is_empty() {
                Step::Read
            } else {
                Step::Data(buf.split().freeze())
            }),
            Decode::Chunked(Chunk::Size) => {
                let Some(end) = line_end(buf)? else {
                    return Ok(Step::Read);
                };
                let size = chunk_size(&buf[..end - 2])?;
                buf.advance(end);
                self.decode = Decode::Chunked(if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                });
                Ok(Step::Again)
            }
            Decode::Chunked(Chunk::Data(rest)) => {
                Ok(take_data(buf, rest).map_or(Step::Read, |(data, left)| {
                    self.decode = Decode::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    Step::Data(data)
                }))
            }
            Decode::Chunked(Chunk::DataEnd) => {
                if buf.len() < 2 {
                    return Ok(Step::Read);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(broken("a chunk does not end with CRLF"));
                }
                buf.advance(2);
                self.decode = Decode::Chunked(Chunk::Size);
                Ok(Step::Again)
            }
            Decode::Chunked(Chunk::Trailers) => {
                let Some(end) = line_end(buf)? else {
                    return Ok(Step::Read);
                };
                // A bare CR or LF inside a trailer line is where a lenient reader would see
                // the message end and a strict one would not.
                if buf[..end - 2].iter().any(|b| *b == b'\r' || *b == b'\n') {
                    return Err(broken("a bare CR or LF in a trailer line"));
                }
                buf.advance(end);
                if end == 2 {
                    self.decode = Decode::Length(0);
                    return Ok(Step::End);
                }
                self.trailer_bytes += end;
                if self.trailer_bytes > MAX_TRAILERS {
                    return Err(broken("the trailers are too large"));
                }
                Ok(Step::Again)
            }
        }
    }
}

/// Up to `rest` buffered body bytes, and how many remain after them.
fn take_data(buf: &mut BytesMut, rest: u64) -> Option<(Bytes, u64)> {
    if buf.is_empty() {
        return None;
    }
    let n = usize::try_from(rest).unwrap_or(usize::MAX).min(buf.len());
    Some((buf.split_to(n).freeze(), rest - n as u64))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Decodes a chunked body held whole in memory.
    fn decode_chunked(wire: &[u8]) -> io::Result<Vec<u8>> {
        let mut buf = BytesMut::from(wire);
        let mut decoder = Decoder::chunked();
        let mut out = Vec::new();
        loop {
            match decoder.step(&mut buf)? {
                Step::Data(d) => out.extend_from_slice(&d),
                Step::Again => {}
                Step::End => return Ok(out),
                Step::Read => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short")),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let wire = b"5;ext=1\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
        assert_eq!(decode_chunked(wire).unwrap(), b"hello, world");
        assert_eq!(decode_chunked(b"0\r\n\r\n").unwrap(), b"");
        assert!(decode_chunked(b"zz\r\n").is_err());
        assert!(
            decode_chunked(b"3\r\nabcXY").is_err(),
            "data not followed by CRLF"
        );
        assert!(
            decode_chunked(b"ffffffffffffffff\r\n").is_err(),
            "size overflow"
        );
        assert!(decode_chunked(b"+5\r\nhello\r\n0\r\n\r\n").is_err(), "sign");
        assert!(
            decode_chunked(b" 5\r\nhello\r\n0\r\n\r\n").is_err(),
            "leading space"
        );
        assert!(
            decode_chunked(b"5 x\r\nhello\r\n0\r\n\r\n").is_err(),
            "junk after size"
        );
        assert_eq!(
            decode_chunked(b"5 ;a=b\r\nhello\r\n0\r\n\r\n").unwrap(),
            b"hello"
        );
        assert!(decode_chunked(b"5\r\nhel").is_err(), "cut short");
        assert!(
            decode_chunked(b"5;a\nb\r\nhello\r\n0\r\n\r\n").is_err(),
            "bare LF in an extension"
        );
        assert!(
            decode_chunked(b"0\r\nX: y\n\r\n").is_err(),
            "bare LF in a trailer"
        );
        let long = vec![b'1'; MAX_LINE + 10];
        assert!(decode_chunked(&long).is_err());
    }

    #[test]
    fn a_length_body_takes_only_its_bytes() {
        let mut buf = BytesMut::from(&b"hello, next request"[..]);
        let mut decoder = Decoder::new(Decode::Length(5));
        assert!(matches!(decoder.step(&mut buf).unwrap(), Step::Data(d) if &d[..] == b"hello"));
        assert!(decoder.is_done());
        assert!(matches!(decoder.step(&mut buf).unwrap(), Step::End));
        assert_eq!(&buf[..], b", next request");
    }
}
