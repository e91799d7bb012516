//! HTTP/2 frames (RFC 9113, section 4 and 6): the 9-byte frame header, the frame types and
//! flags this client uses, error codes, and writers for the control frames it sends.

use bytes::{BufMut, BytesMut};

pub const HEAD_LEN: usize = 9;
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
/// The PRIORITY frame type (not to be confused with HEADERS' [`PRIORITY`] flag).
pub const PRIORITY_FRAME: u8 = 2;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PUSH_PROMISE: u8 = 5;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const WINDOW_UPDATE: u8 = 8;
pub const CONTINUATION: u8 = 9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY: u8 = 0x20;

pub const NO_ERROR: u32 = 0;
pub const PROTOCOL_ERROR: u32 = 1;
pub const INTERNAL_ERROR: u32 = 2;
pub const FLOW_CONTROL_ERROR: u32 = 3;
pub const STREAM_CLOSED: u32 = 5;
pub const FRAME_SIZE_ERROR: u32 = 6;
pub const REFUSED_STREAM: u32 = 7;
pub const CANCEL: u32 = 8;
pub const COMPRESSION_ERROR: u32 = 9;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 1;
pub const SETTINGS_ENABLE_PUSH: u16 = 2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 5;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 6;

/// The protocol's defaults, before the peer's SETTINGS say otherwise.
pub const DEFAULT_WINDOW: u32 = 65_535;
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
/// Windows may not grow past 2^31 - 1.
pub const MAX_WINDOW: i64 = (1 << 31) - 1;

/// Streams by id. Ids are distinct small integers: one multiply spreads them over the table,
/// where SipHash would cost more than the rest of the lookup.
pub type StreamMap<V> =
    std::collections::HashMap<u32, V, std::hash::BuildHasherDefault<StreamIdHasher>>;

#[derive(Debug, Default)]
pub struct StreamIdHasher(u64);

impl std::hash::Hasher for StreamIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    pub fn parse(b: &[u8]) -> Head {
        Head {
            len: (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

pub fn put_head(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    out.put_slice(&(len as u32).to_be_bytes()[1..]);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream);
}

pub fn put_settings(out: &mut BytesMut, settings: &[(u16, u32)]) {
    put_head(out, settings.len() * 6, SETTINGS, 0, 0);
    for &(id, value) in settings {
        out.put_u16(id);
        out.put_u32(value);
    }
}

pub fn put_settings_ack(out: &mut BytesMut) {
    put_head(out, 0, SETTINGS, ACK, 0);
}

pub fn put_window_update(out: &mut BytesMut, stream: u32, increment: u32) {
    put_head(out, 4, WINDOW_UPDATE, 0, stream);
    out.put_u32(increment);
}

pub fn put_rst(out: &mut BytesMut, stream: u32, code: u32) {
    put_head(out, 4, RST_STREAM, 0, stream);
    out.put_u32(code);
}

pub fn put_ping(out: &mut BytesMut, ack: bool, payload: [u8; 8]) {
    put_head(out, 8, PING, if ack { ACK } else { 0 }, 0);
    out.put_slice(&payload);
}

pub fn put_goaway(out: &mut BytesMut, last_stream: u32, code: u32) {
    put_head(out, 8, GOAWAY, 0, 0);
    out.put_u32(last_stream);
    out.put_u32(code);
}

/// A header block as HEADERS and, past the peer's frame size, CONTINUATION frames.
pub fn put_block(out: &mut BytesMut, max_frame: usize, id: u32, block: &[u8], end_stream: bool) {
    let mut chunks = block.chunks(max_frame.max(1)).peekable();
    let mut kind = HEADERS;
    let mut flags = if end_stream { END_STREAM } else { 0 };
    loop {
        let chunk = chunks.next().unwrap_or_default();
        let last = chunks.peek().is_none();
        if last {
            flags |= END_HEADERS;
        }
        put_head(out, chunk.len(), kind, flags, id);
        out.put_slice(chunk);
        if last {
            break;
        }
        (kind, flags) = (CONTINUATION, 0);
    }
}

/// One entry of a peer's SETTINGS, its range checked (RFC 9113 §6.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    HeaderTableSize(usize),
    EnablePush(u32),
    MaxConcurrentStreams(u32),
    InitialWindow(i64),
    MaxFrameSize(usize),
    /// MAX_HEADER_LIST_SIZE (advisory) and settings this implementation does not know.
    Other,
}

/// The entries of a SETTINGS payload (a multiple of 6 bytes); an error is the connection
/// error to send.
pub fn settings(payload: &[u8]) -> impl Iterator<Item = Result<Setting, (u32, &'static str)>> + '_ {
    payload.chunks_exact(6).map(|entry| {
        let id = u16::from_be_bytes([entry[0], entry[1]]);
        let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
        Ok(match id {
            SETTINGS_HEADER_TABLE_SIZE => Setting::HeaderTableSize(value as usize),
            SETTINGS_ENABLE_PUSH => Setting::EnablePush(value),
            SETTINGS_MAX_CONCURRENT_STREAMS => Setting::MaxConcurrentStreams(value),
            SETTINGS_INITIAL_WINDOW_SIZE if i64::from(value) > MAX_WINDOW => {
                return Err((FLOW_CONTROL_ERROR, "an initial window above 2^31-1"))
            }
            SETTINGS_INITIAL_WINDOW_SIZE => Setting::InitialWindow(i64::from(value)),
            SETTINGS_MAX_FRAME_SIZE if !(16_384..=16_777_215).contains(&value) => {
                return Err((PROTOCOL_ERROR, "a max frame size out of range"))
            }
            SETTINGS_MAX_FRAME_SIZE => Setting::MaxFrameSize(value as usize),
            _ => Setting::Other,
        })
    })
}

/// A new initial window moves every open stream's send window by the difference (RFC 9113
/// §6.9.2), waking their pumps; a window pushed past 2^31-1 is a connection error.
pub fn shift_windows<'a>(
    delta: i64,
    streams: impl Iterator<Item = (&'a mut i64, &'a mut Option<std::task::Waker>)>,
    wake: &mut Vec<std::task::Waker>,
) -> Result<(), (u32, &'static str)> {
    for (window, waker) in streams {
        *window += delta;
        if *window > MAX_WINDOW {
            return Err((FLOW_CONTROL_ERROR, "a stream window above 2^31-1"));
        }
        wake.extend(waker.take());
    }
    Ok(())
}

/// Strips a padded frame's padding: the payload without it, or `None` when the padding is
/// longer than the frame (a protocol error).
pub fn unpad(head: &Head, payload: &[u8]) -> Option<(usize, usize)> {
    if !head.has(PADDED) {
        return Some((0, payload.len()));
    }
    let pad = usize::from(*payload.first()?);
    (pad < payload.len()).then(|| (1, payload.len() - pad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_round_trip_and_ignore_the_reserved_bit() {
        let mut out = BytesMut::new();
        put_head(
            &mut out,
            0x01_02_03,
            HEADERS,
            END_HEADERS | END_STREAM,
            0x7fff_fffd,
        );
        out[5] |= 0x80; // the reserved bit, which receivers ignore
        let head = Head::parse(&out);
        assert_eq!(
            head,
            Head {
                len: 0x01_02_03,
                kind: HEADERS,
                flags: END_HEADERS | END_STREAM,
                stream: 0x7fff_fffd
            }
        );
        assert!(head.has(END_STREAM) && !head.has(PADDED));
    }

    #[test]
    fn settings_are_read_with_their_ranges_checked() {
        let mut payload = BytesMut::new();
        for (id, value) in [(1u16, 0u32), (3, 7), (4, 1 << 20), (5, 16_384), (99, 1)] {
            payload.put_u16(id);
            payload.put_u32(value);
        }
        let read: Result<Vec<_>, _> = settings(&payload).collect();
        assert_eq!(
            read.unwrap_or_default(),
            [
                Setting::HeaderTableSize(0),
                Setting::MaxConcurrentStreams(7),
                Setting::InitialWindow(1 << 20),
                Setting::MaxFrameSize(16_384),
                Setting::Other
            ]
        );
        let bad = |id: u16, value: u32| {
            let mut p = BytesMut::new();
            p.put_u16(id);
            p.put_u32(value);
            let code = settings(&p)
                .next()
                .and_then(Result::err)
                .map(|(code, _)| code);
            code
        };
        assert_eq!(bad(4, 1 << 31), Some(FLOW_CONTROL_ERROR));
        assert_eq!(bad(5, 16_383), Some(PROTOCOL_ERROR));
        assert_eq!(bad(5, 1 << 24), Some(PROTOCOL_ERROR));
        // A new initial window moves open streams' windows, within 2^31-1.
        let (mut a, mut b) = (100i64, MAX_WINDOW - 10);
        let mut wake = Vec::new();
        let (mut wa, mut wb) = (None, None);
        assert!(shift_windows(-50, [(&mut a, &mut wa)].into_iter(), &mut wake).is_ok());
        assert_eq!(a, 50);
        assert!(shift_windows(20, [(&mut b, &mut wb)].into_iter(), &mut wake).is_err());
    }

    #[test]
    fn padding_is_stripped_or_refused() {
        let padded = Head {
            len: 6,
            kind: DATA,
            flags: PADDED,
            stream: 1,
        };
        assert_eq!(unpad(&padded, &[2, b'h', b'i', b'!', 0, 0]), Some((1, 4)));
        assert_eq!(unpad(&padded, &[6, 0, 0]), None);
        assert_eq!(unpad(&padded, &[]), None);
        let plain = Head { flags: 0, ..padded };
        assert_eq!(unpad(&plain, b"abc"), Some((0, 3)));
    }
}
