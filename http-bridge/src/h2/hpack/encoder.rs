//! The HPACK encoder (RFC 7541) for what we send: requests to providers, answers to clients.
//! Fields that repeat call after call are indexed, fields that change every call go as
//! literals, credentials are never indexed, and table-size changes are announced as §4.2 asks.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use super::{ENTRY_OVERHEAD, STATIC};

fn put_integer(out: &mut BytesMut, first: u8, n: u8, value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.put_u8(first | value as u8);
        return;
    }
    out.put_u8(first | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.put_u8((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.put_u8(rest as u8);
}

fn put_string(out: &mut BytesMut, s: &[u8]) {
    put_integer(out, 0, 7, s.len());
    out.put_slice(s);
}

/// How a field may be remembered by the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexing {
    /// Repeats call after call: added to the table.
    Yes,
    /// Changes every call: a literal.
    No,
    /// A credential: a literal no intermediary may index either.
    Never,
}

impl Indexing {
    pub fn of(name: &str) -> Indexing {
        match name {
            "authorization" | "proxy-authorization" | "cookie" => Indexing::Never,
            "traceparent" | "tracestate" | "x-request-id" | "grpc-trace-bin" | "content-length"
            | "x-b3-traceid" | "x-b3-spanid" | "x-b3-parentspanid" | "b3" => Indexing::No,
            _ => Indexing::Yes,
        }
    }
}

/// The encoder of one connection's outgoing header blocks (our requests).
#[derive(Debug)]
pub struct Encoder {
    table: VecDeque<(Bytes, Bytes)>,
    size: usize,
    max: usize,
    /// A size change to announce at the start of the next block, and the smallest size
    /// since the last block (RFC 7541 §4.2: both are announced when they differ).
    announce: Option<usize>,
    smallest: Option<usize>,
}

/// What we let our table grow to, at most (the peer may allow more).
const ENCODER_TABLE: usize = 4096;

impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            table: VecDeque::new(),
            size: 0,
            max: ENCODER_TABLE,
            announce: None,
            smallest: None,
        }
    }
}

impl Encoder {
    /// Queues `trailers` as the header block that ends stream `id` (HEADERS with END_STREAM,
    /// CONTINUATION past `max_frame`); the block is built in `scratch`, kept for reuse.
    pub fn put_trailers(
        &mut self,
        trailers: &http::HeaderMap,
        scratch: &mut BytesMut,
        out: &mut BytesMut,
        max_frame: usize,
        id: u32,
    ) {
        scratch.clear();
        self.begin(scratch);
        for (name, value) in trailers {
            let name = name.as_str();
            // Connection-specific fields have no place in HTTP/2 (RFC 9113 §8.2.2).
            if matches!(
                name,
                "connection"
                    | "keep-alive"
                    | "proxy-connection"
                    | "transfer-encoding"
                    | "upgrade"
                    | "te"
            ) {
                continue;
            }
            self.field(
                name.as_bytes(),
                value.as_bytes(),
                Indexing::of(name),
                scratch,
            );
        }
        crate::h2::frame::put_block(out, max_frame, id, scratch, true);
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed: our table must fit within it.
    pub fn peer_limit(&mut self, limit: usize) {
        let max = limit.min(ENCODER_TABLE);
        if max != self.max {
            self.max = max;
            self.announce = Some(max);
            self.smallest = Some(self.smallest.map_or(max, |s| s.min(max)));
            self.evict(0);
        }
    }

    /// Called at the start of every header block.
    pub fn begin(&mut self, out: &mut BytesMut) {
        if let Some(size) = self.announce.take() {
            if let Some(smallest) = self.smallest.take().filter(|&s| s < size) {
                put_integer(out, 0x20, 5, smallest);
            }
            put_integer(out, 0x20, 5, size);
        }
    }

    pub fn field(&mut self, name: &[u8], value: &[u8], indexing: Indexing, out: &mut BytesMut) {
        let mut name_index = 0;
        for (i, (n, v)) in STATIC.iter().enumerate() {
            if n.as_bytes() == name {
                if v.as_bytes() == value && indexing != Indexing::Never {
                    put_integer(out, 0x80, 7, i + 1);
                    return;
                }
                if name_index == 0 {
                    name_index = i + 1;
                }
            }
        }
        if indexing == Indexing::Yes {
            for (i, (n, v)) in self.table.iter().enumerate() {
                if n.as_ref() == name {
                    if v.as_ref() == value {
                        put_integer(out, 0x80, 7, 62 + i);
                        return;
                    }
                    if name_index == 0 {
                        name_index = 62 + i;
                    }
                }
            }
        }
        let (first, n) = match indexing {
            Indexing::Yes => (0x40, 6),
            Indexing::No => (0x00, 4),
            Indexing::Never => (0x10, 4),
        };
        put_integer(out, first, n, name_index);
        if name_index == 0 {
            put_string(out, name);
        }
        put_string(out, value);
        if indexing == Indexing::Yes {
            let size = name.len() + value.len() + ENTRY_OVERHEAD;
            self.evict(size);
            if size <= self.max {
                self.size += size;
                self.table
                    .push_front((Bytes::copy_from_slice(name), Bytes::copy_from_slice(value)));
            }
        }
    }

    fn evict(&mut self, room: usize) {
        while self.size + room > self.max {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + ENTRY_OVERHEAD,
                None => break,
            }
        }
    }
}
