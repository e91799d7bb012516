//! The 16-byte Dubbo2 header and response status codes.

use std::fmt;

use bytes::{Buf, BufMut};

use crate::Error;

pub const MAGIC: u16 = 0xdabb;
pub const HEADER_LEN: usize = 16;
/// Serialization id of hessian2, the only one this crate speaks.
pub const HESSIAN2: u8 = 2;

const FLAG_REQUEST: u8 = 0x80;
const FLAG_TWO_WAY: u8 = 0x40;
const FLAG_EVENT: u8 = 0x20;
const SERIALIZATION_MASK: u8 = 0x1f;

/// A response status. Unknown codes are kept as they are, not rejected: a peer may be newer.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u8);

impl Status {
    pub const OK: Status = Status(20);
    pub const CLIENT_TIMEOUT: Status = Status(30);
    pub const SERVER_TIMEOUT: Status = Status(31);
    pub const CHANNEL_INACTIVE: Status = Status(35);
    pub const BAD_REQUEST: Status = Status(40);
    pub const BAD_RESPONSE: Status = Status(50);
    pub const SERVICE_NOT_FOUND: Status = Status(60);
    pub const SERVICE_ERROR: Status = Status(70);
    pub const SERVER_ERROR: Status = Status(80);
    pub const CLIENT_ERROR: Status = Status(90);
    pub const SERVER_THREADPOOL_EXHAUSTED: Status = Status(100);

    /// The name Dubbo gives this code, if it is a known one.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            20 => "OK",
            30 => "CLIENT_TIMEOUT",
            31 => "SERVER_TIMEOUT",
            35 => "CHANNEL_INACTIVE",
            40 => "BAD_REQUEST",
            50 => "BAD_RESPONSE",
            60 => "SERVICE_NOT_FOUND",
            70 => "SERVICE_ERROR",
            80 => "SERVER_ERROR",
            90 => "CLIENT_ERROR",
            100 => "SERVER_THREADPOOL_EXHAUSTED_ERROR",
            _ => return None,
        })
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}({})", self.0),
            None => write!(f, "Status({})", self.0),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub is_request: bool,
    /// The sender expects a response (requests only).
    pub two_way: bool,
    /// A heartbeat or other event rather than an invocation.
    pub event: bool,
    pub serialization: u8,
    /// Meaningful in responses; requests send 0.
    pub status: Status,
    pub id: u64,
    pub body_len: u32,
}

impl Header {
    /// Reads a header from the first [`HEADER_LEN`] bytes of `bytes`. The caller guarantees the
    /// length; the magic is checked here.
    pub(crate) fn parse(mut bytes: &[u8]) -> Result<(Header, i32), Error> {
        let magic = bytes.get_u16();
        if magic != MAGIC {
            return Err(Error::BadMagic { found: magic });
        }
        let flags = bytes.get_u8();
        let status = Status(bytes.get_u8());
        let id = bytes.get_u64();
        let body_len = bytes.get_i32();
        let header = Header {
            is_request: flags & FLAG_REQUEST != 0,
            two_way: flags & FLAG_TWO_WAY != 0,
            event: flags & FLAG_EVENT != 0,
            serialization: flags & SERIALIZATION_MASK,
            status,
            id,
            body_len: body_len.max(0) as u32,
        };
        Ok((header, body_len))
    }

    /// Appends this header. `body_len` is written as given; encoders patch it afterwards.
    pub fn write(&self, out: &mut impl BufMut) {
        let mut flags = self.serialization & SERIALIZATION_MASK;
        if self.is_request {
            flags |= FLAG_REQUEST;
            if self.two_way {
                flags |= FLAG_TWO_WAY;
            }
        }
        if self.event {
            flags |= FLAG_EVENT;
        }
        out.put_u16(MAGIC);
        out.put_u8(flags);
        out.put_u8(if self.is_request { 0 } else { self.status.0 });
        out.put_u64(self.id);
        out.put_u32(self.body_len);
    }
}
