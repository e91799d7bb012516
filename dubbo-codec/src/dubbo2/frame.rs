//! Incremental framing: cut whole frames out of a growing buffer.

use bytes::{Bytes, BytesMut};

use super::header::{Header, HEADER_LEN, MAGIC};
use crate::Error;

/// Dubbo's default `payload` limit: 8 MiB.
pub const DEFAULT_MAX_FRAME: usize = 8 * 1024 * 1024;

/// One frame: its header and its still-encoded body.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub header: Header,
    pub body: Bytes,
}

/// Cuts frames out of a stream. Pure: feed it the bytes read so far.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_body: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder {
            max_body: DEFAULT_MAX_FRAME,
        }
    }
}

impl FrameDecoder {
    /// A decoder that rejects bodies longer than `max_body` bytes.
    pub fn new(max_body: usize) -> Self {
        FrameDecoder { max_body }
    }

    /// Takes the next whole frame from the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed (and room for them has been reserved, bounded by
    /// the limit). An error means the stream is not valid Dubbo2 and cannot be resynchronised:
    /// the caller should close the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        // Reject a foreign protocol as soon as two bytes are in, not after sixteen.
        if buf.len() >= 2 {
            let magic = u16::from_be_bytes([buf[0], buf[1]]);
            if magic != MAGIC {
                return Err(Error::BadMagic { found: magic });
            }
        }
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let (header, declared) = Header::parse(&buf[..HEADER_LEN])?;
        let body_len = usize::try_from(declared)
            .ok()
            .filter(|&len| len <= self.max_body)
            .ok_or(Error::FrameTooLarge {
                length: i64::from(declared),
                max: self.max_body,
            })?;
        let total = HEADER_LEN + body_len;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let mut frame = buf.split_to(total).freeze();
        let body = frame.split_off(HEADER_LEN);
        Ok(Some(Frame { header, body }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dubbo2::Status;

    fn frame_bytes(body: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        Header {
            is_request: true,
            two_way: true,
            event: false,
            serialization: 2,
            status: Status(0),
            id: 7,
            body_len: body.len() as u32,
        }
        .write(&mut out);
        out.extend_from_slice(body);
        out.to_vec()
    }

    #[test]
    fn yields_frames_only_when_complete() {
        let bytes = frame_bytes(b"abc");
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            assert_eq!(
                decoder.decode(&mut buf).expect("valid prefix"),
                None,
                "after {i} bytes"
            );
            buf.extend_from_slice(&[*b]);
        }
        let frame = decoder.decode(&mut buf).expect("valid").expect("complete");
        assert_eq!(frame.header.id, 7);
        assert_eq!(&frame.body[..], b"abc");
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_bad_magic_after_two_bytes() {
        let mut buf = BytesMut::from(&b"GE"[..]);
        assert_eq!(
            FrameDecoder::default().decode(&mut buf),
            Err(Error::BadMagic { found: 0x4745 })
        );
    }

    #[test]
    fn huge_declared_length_is_an_error_not_an_allocation() {
        let mut bytes = frame_bytes(b"");
        bytes[12..16].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
        let mut buf = BytesMut::from(&bytes[..]);
        let err = FrameDecoder::new(1024)
            .decode(&mut buf)
            .expect_err("too large");
        assert_eq!(
            err,
            Error::FrameTooLarge {
                length: 0x7fff_ffff,
                max: 1024
            }
        );
        assert!(buf.capacity() < 4096);
        bytes[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        let err = FrameDecoder::new(1024)
            .decode(&mut BytesMut::from(&bytes[..]))
            .expect_err("negative");
        assert_eq!(
            err,
            Error::FrameTooLarge {
                length: -1,
                max: 1024
            }
        );
    }
}
