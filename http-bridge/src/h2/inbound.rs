//! Frames as they arrive, for our client and our server alike: split off the read buffer (a
//! large DATA payload without a copy) and checked against the rules of RFC 9113 that need no
//! connection state — sizes, padding, which frames belong on stream 0, a header block left
//! unfinished. What depends on the connection (is the stream open, windows, settings) is
//! each side's: the client's `driver` and the gateway's `http2::reader`.

use bytes::{Buf, Bytes, BytesMut};

use super::frame::{self, Head};

/// The largest frame we accept (our SETTINGS_MAX_FRAME_SIZE: the default).
pub const MAX_FRAME: usize = frame::DEFAULT_MAX_FRAME as usize;
/// DATA payloads smaller than this are copied out of the read buffer, so the buffer can be
/// reused in place; larger ones are handed on without a copy.
const COPY_BELOW: usize = 4096;

/// A connection error: the GOAWAY code and why.
pub type Violation = (u32, &'static str);

/// A frame's payload as it lies: in the read buffer, or split off it (large DATA).
#[derive(Debug)]
pub enum Raw<'a> {
    InPlace(&'a [u8]),
    Split(Bytes),
}

impl Raw<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Raw::InPlace(b) => b,
            Raw::Split(b) => b,
        }
    }
}

/// DATA content without its padding; becomes [`Bytes`] only when kept.
#[derive(Debug)]
pub enum Payload<'a> {
    InPlace(&'a [u8]),
    Split(Bytes),
}

impl Payload<'_> {
    pub fn len(&self) -> usize {
        match self {
            Payload::InPlace(b) => b.len(),
            Payload::Split(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The content to keep: copied out of the read buffer, or shared without a copy.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Payload::InPlace(b) => Bytes::copy_from_slice(b),
            Payload::Split(b) => b.clone(),
        }
    }
}

/// A frame that passed the checks needing no connection state.
#[derive(Debug)]
pub enum Frame<'a> {
    /// `flow_len`: what the frame counts against the windows, padding included.
    Data {
        stream: u32,
        end_stream: bool,
        flow_len: usize,
        data: Payload<'a>,
    },
    /// `fragment`: the header block (or its first part), without padding or priority.
    Headers {
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        fragment: &'a [u8],
    },
    /// Always continues the header block in progress (anything else is a violation).
    Continuation {
        end_headers: bool,
        fragment: &'a [u8],
    },
    RstStream {
        stream: u32,
        code: u32,
    },
    /// Settings to apply and acknowledge: a whole number of 6-byte entries.
    Settings(&'a [u8]),
    SettingsAck,
    Ping {
        ack: bool,
        data: [u8; 8],
    },
    GoAway {
        last_stream: u32,
        code: u32,
    },
    /// Never 0 on stream 0; 0 on a stream is that stream's error (RFC 9113 §6.9).
    WindowUpdate {
        stream: u32,
        increment: i64,
    },
    /// A frame that breaks a rule of its stream only: the stream is reset with `code`.
    StreamError {
        stream: u32,
        code: u32,
    },
    /// Well-formed PRIORITY frames and unknown frame types, which are ignored (RFC 9113 §4.1,
    /// §5.3.2).
    Ignored,
}

/// Handles every complete frame in `buf`, in order, with `handle`, which returns whether it
/// queued something to write; returns whether any did. A frame over [`MAX_FRAME`] is the
/// violation `fail` turns into the caller's error.
pub fn each<E>(
    buf: &mut BytesMut,
    mut handle: impl FnMut(Head, Raw<'_>) -> Result<bool, E>,
    fail: impl Fn(Violation) -> E,
) -> Result<bool, E> {
    let mut queued = false;
    while buf.len() >= frame::HEAD_LEN {
        let head = Head::parse(&buf[..frame::HEAD_LEN]);
        if head.len > MAX_FRAME {
            return Err(fail((
                frame::FRAME_SIZE_ERROR,
                "a frame larger than we allow",
            )));
        }
        if buf.len() < frame::HEAD_LEN + head.len {
            break;
        }
        if head.kind == frame::DATA && head.len >= COPY_BELOW {
            buf.advance(frame::HEAD_LEN);
            let payload = buf.split_to(head.len).freeze();
            queued |= handle(head, Raw::Split(payload))?;
        } else {
            let payload = &buf[frame::HEAD_LEN..frame::HEAD_LEN + head.len];
            queued |= handle(head, Raw::InPlace(payload))?;
            buf.advance(frame::HEAD_LEN + head.len);
        }
    }
    Ok(queued)
}

/// Checks a frame and takes it apart. `block`: the stream whose header block is still open
/// (only its CONTINUATION may come next).
pub fn parse<'r>(
    head: &Head,
    raw: &'r Raw<'_>,
    block: Option<u32>,
) -> Result<Frame<'r>, Violation> {
    let payload = raw.as_slice();
    match (block, head.kind) {
        (Some(id), frame::CONTINUATION) if id == head.stream => {}
        (Some(_), _) => return Err((frame::PROTOCOL_ERROR, "a header block was interrupted")),
        (None, frame::CONTINUATION) => {
            return Err((frame::PROTOCOL_ERROR, "a CONTINUATION without HEADERS"))
        }
        (None, _) => {}
    }
    let on_stream = match head.kind {
        frame::DATA | frame::HEADERS | frame::RST_STREAM => true,
        frame::WINDOW_UPDATE => head.stream != 0,
        _ => false,
    };
    // Streams are only opened by clients, with odd ids (we never push).
    if on_stream && (head.stream == 0 || head.stream % 2 == 0) {
        return Err((
            frame::PROTOCOL_ERROR,
            "a stream frame on stream 0 or an even stream",
        ));
    }
    let on_connection = matches!(head.kind, frame::SETTINGS | frame::PING | frame::GOAWAY);
    if head.kind == frame::PRIORITY_FRAME && head.stream == 0 {
        return Err((frame::PROTOCOL_ERROR, "PRIORITY on stream 0"));
    }
    if on_connection && head.stream != 0 {
        return Err((
            frame::PROTOCOL_ERROR,
            "SETTINGS, PING or GOAWAY on a stream",
        ));
    }
    let unpad = || {
        frame::unpad(head, payload).ok_or((frame::PROTOCOL_ERROR, "padding longer than its frame"))
    };
    Ok(match head.kind {
        frame::DATA => {
            let (start, end) = unpad()?;
            Frame::Data {
                stream: head.stream,
                end_stream: head.has(frame::END_STREAM),
                flow_len: head.len,
                data: match raw {
                    Raw::InPlace(b) => Payload::InPlace(&b[start..end]),
                    Raw::Split(b) => Payload::Split(b.slice(start..end)),
                },
            }
        }
        frame::HEADERS => {
            let (mut start, end) = unpad()?;
            if head.has(frame::PRIORITY) {
                start += 5;
                if start > end {
                    return Err((
                        frame::FRAME_SIZE_ERROR,
                        "a HEADERS frame too short for its priority",
                    ));
                }
            }
            Frame::Headers {
                stream: head.stream,
                end_stream: head.has(frame::END_STREAM),
                end_headers: head.has(frame::END_HEADERS),
                fragment: &payload[start..end],
            }
        }
        frame::CONTINUATION => Frame::Continuation {
            end_headers: head.has(frame::END_HEADERS),
            fragment: payload,
        },
        frame::RST_STREAM => Frame::RstStream {
            stream: head.stream,
            code: u32::from_be_bytes(four(payload, "a RST_STREAM that is not 4 bytes")?),
        },
        frame::SETTINGS if head.has(frame::ACK) => match payload.len() {
            0 => Frame::SettingsAck,
            _ => return Err((frame::FRAME_SIZE_ERROR, "a SETTINGS ack with a payload")),
        },
        frame::SETTINGS if payload.len() % 6 != 0 => {
            return Err((
                frame::FRAME_SIZE_ERROR,
                "SETTINGS not a multiple of 6 bytes",
            ))
        }
        frame::SETTINGS => Frame::Settings(payload),
        frame::PING => Frame::Ping {
            ack: head.has(frame::ACK),
            data: <[u8; 8]>::try_from(payload)
                .map_err(|_| (frame::FRAME_SIZE_ERROR, "a PING that is not 8 bytes"))?,
        },
        frame::GOAWAY => {
            if payload.len() < 8 {
                return Err((frame::FRAME_SIZE_ERROR, "a GOAWAY shorter than 8 bytes"));
            }
            Frame::GoAway {
                last_stream: u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                    & 0x7fff_ffff,
                code: u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]),
            }
        }
        frame::WINDOW_UPDATE => {
            let increment =
                u32::from_be_bytes(four(payload, "a WINDOW_UPDATE that is not 4 bytes")?)
                    & 0x7fff_ffff;
            if increment == 0 && head.stream == 0 {
                return Err((frame::PROTOCOL_ERROR, "a zero window increment"));
            }
            Frame::WindowUpdate {
                stream: head.stream,
                increment: i64::from(increment),
            }
        }
        // Neither side pushes: our client disables it, and clients may not push at all.
        frame::PUSH_PROMISE => return Err((frame::PROTOCOL_ERROR, "a PUSH_PROMISE")),
        // Priorities are ignored, but a malformed signal is still the stream's error (RFC 9113
        // §6.3), as is a stream depending on itself (§5.3.1).
        frame::PRIORITY_FRAME => match <[u8; 5]>::try_from(payload) {
            Err(_) => Frame::StreamError {
                stream: head.stream,
                code: frame::FRAME_SIZE_ERROR,
            },
            Ok(p) if u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff == head.stream => {
                Frame::StreamError {
                    stream: head.stream,
                    code: frame::PROTOCOL_ERROR,
                }
            }
            Ok(_) => Frame::Ignored,
        },
        _ => Frame::Ignored,
    })
}

fn four(payload: &[u8], wrong: &'static str) -> Result<[u8; 4], Violation> {
    <[u8; 4]>::try_from(payload).map_err(|_| (frame::FRAME_SIZE_ERROR, wrong))
}

/// A header block in progress: one that did not end with its HEADERS frame is gathered from
/// the CONTINUATION frames that follow. Decoded by the caller once whole, whatever becomes
/// of it (the HPACK table must stay in step).
#[derive(Debug, Default)]
pub struct HeaderBlocks {
    open: Option<Gathering>,
}

#[derive(Debug)]
struct Gathering {
    stream: u32,
    end_stream: bool,
    bytes: Vec<u8>,
}

/// A whole header block, and the stream it belongs to.
#[derive(Debug)]
pub struct WholeBlock<'a> {
    pub stream: u32,
    pub end_stream: bool,
    /// Where it lies in the read buffer (the usual case), or gathered.
    pub bytes: std::borrow::Cow<'a, [u8]>,
}

impl HeaderBlocks {
    /// The stream whose block is still open (see [`parse`]).
    pub fn open(&self) -> Option<u32> {
        self.open.as_ref().map(|g| g.stream)
    }

    /// A HEADERS frame: the whole block, or `None` while CONTINUATION frames must follow.
    pub fn headers<'a>(
        &mut self,
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        fragment: &'a [u8],
    ) -> Option<WholeBlock<'a>> {
        if end_headers {
            return Some(WholeBlock {
                stream,
                end_stream,
                bytes: std::borrow::Cow::Borrowed(fragment),
            });
        }
        self.open = Some(Gathering {
            stream,
            end_stream,
            bytes: fragment.to_vec(),
        });
        None
    }

    /// A CONTINUATION frame ([`parse`] made sure a block is open): the whole block once it
    /// ends. A block growing past `max` bytes is a violation rather than worth decoding.
    pub fn continuation(
        &mut self,
        end_headers: bool,
        fragment: &[u8],
        max: usize,
    ) -> Result<Option<WholeBlock<'static>>, Violation> {
        let Some(mut block) = self.open.take() else {
            return Err((frame::PROTOCOL_ERROR, "a CONTINUATION without HEADERS"));
        };
        if block.bytes.len() + fragment.len() > max {
            return Err((frame::PROTOCOL_ERROR, "a header block far over the limit"));
        }
        block.bytes.extend_from_slice(fragment);
        if !end_headers {
            self.open = Some(block);
            return Ok(None);
        }
        Ok(Some(WholeBlock {
            stream: block.stream,
            end_stream: block.end_stream,
            bytes: std::borrow::Cow::Owned(block.bytes),
        }))
    }
}

/// Adds a WINDOW_UPDATE's increment to the connection's send window; past 2^31-1 is a
/// connection error (RFC 9113 §6.9.1).
pub fn grow_connection_window(window: &mut i64, increment: i64) -> Result<(), Violation> {
    *window += increment;
    if *window > frame::MAX_WINDOW {
        return Err((
            frame::FLOW_CONTROL_ERROR,
            "the connection window above 2^31-1",
        ));
    }
    Ok(())
}

/// Whether a stream's send window can take `increment` (neither 0 nor past 2^31-1); when not,
/// the stream is reset with the returned code.
pub fn stream_window_error(window: i64, increment: i64) -> Option<u32> {
    if increment == 0 {
        Some(frame::PROTOCOL_ERROR)
    } else if window + increment > frame::MAX_WINDOW {
        Some(frame::FLOW_CONTROL_ERROR)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(bytes: &[u8], block: Option<u32>) -> Vec<Result<String, Violation>> {
        let mut buf = BytesMut::from(bytes);
        let mut seen = Vec::new();
        let _ = each(
            &mut buf,
            |head, raw| {
                seen.push(parse(&head, &raw, block).map(|f| format!("{f:?}")));
                Ok::<_, Violation>(false)
            },
            |v| v,
        );
        seen
    }

    fn wire(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        frame::put_head(&mut out, payload.len(), kind, flags, stream);
        out.extend_from_slice(payload);
        out.to_vec()
    }

    #[test]
    fn frames_are_split_and_checked() {
        let mut bytes = wire(
            frame::DATA,
            frame::PADDED | frame::END_STREAM,
            1,
            &[2, b'h', b'i', 0, 0],
        );
        bytes.extend(wire(frame::WINDOW_UPDATE, 0, 0, &[0, 0, 0, 0]));
        bytes.extend(wire(frame::PING, frame::ACK, 0, b"12345678"));
        bytes.extend(wire(
            frame::HEADERS,
            frame::PRIORITY,
            3,
            &[0, 0, 0, 0, 9, 0x82],
        ));
        bytes.extend(wire(frame::SETTINGS, 0, 0, &[0; 5]));
        bytes.extend(wire(frame::PRIORITY_FRAME, 0, 5, &[0; 5]));
        bytes.extend(&wire(frame::PING, 0, 0, b"1234")[..10]); // incomplete: left for later
        let seen = frames(&bytes, None);
        assert_eq!(seen.len(), 6, "{seen:?}");
        let data = seen[0].as_ref().expect("DATA");
        assert!(
            data.contains("flow_len: 5") && data.contains("[104, 105]"),
            "{data}"
        );
        assert_eq!(
            seen[1],
            Err((frame::PROTOCOL_ERROR, "a zero window increment"))
        );
        assert!(seen[2].as_ref().expect("PING").contains("ack: true"));
        let headers = seen[3].as_ref().expect("HEADERS");
        assert!(headers.contains("fragment: [130]") && headers.contains("end_headers: false"));
        assert_eq!(
            seen[4].as_ref().map_err(|e| e.0),
            Err(frame::FRAME_SIZE_ERROR)
        );
        assert_eq!(seen[5].as_deref(), Ok("Ignored"));
    }

    #[test]
    fn large_data_is_split_off_without_a_copy_and_oversized_frames_refused() {
        let payload = vec![7u8; 5000];
        let mut buf = BytesMut::from(&wire(frame::DATA, 0, 1, &payload)[..]);
        let mut split = false;
        each(
            &mut buf,
            |head, raw| {
                split = matches!(raw, Raw::Split(_));
                assert!(matches!(
                    parse(&head, &raw, None),
                    Ok(Frame::Data { flow_len: 5000, .. })
                ));
                Ok::<_, Violation>(true)
            },
            |v| v,
        )
        .expect("fine");
        assert!(split && buf.is_empty());
        let mut big = BytesMut::from(&wire(frame::DATA, 0, 1, &vec![0; MAX_FRAME + 1])[..]);
        let refused = each(&mut big, |_, _| Ok(false), |v| v);
        assert_eq!(refused.map_err(|e| e.0), Err(frame::FRAME_SIZE_ERROR));
    }

    #[test]
    fn stream_rules_and_header_blocks() {
        for (bytes, block, code) in [
            (wire(frame::DATA, 0, 0, b"x"), None, frame::PROTOCOL_ERROR),
            (wire(frame::HEADERS, 0, 2, b""), None, frame::PROTOCOL_ERROR),
            (
                wire(frame::PING, 0, 1, b"12345678"),
                None,
                frame::PROTOCOL_ERROR,
            ),
            (
                wire(frame::RST_STREAM, 0, 1, &[0; 3]),
                None,
                frame::FRAME_SIZE_ERROR,
            ),
            (
                wire(frame::GOAWAY, 0, 0, &[0; 7]),
                None,
                frame::FRAME_SIZE_ERROR,
            ),
            (
                wire(frame::CONTINUATION, 0, 1, b""),
                None,
                frame::PROTOCOL_ERROR,
            ),
            (
                wire(frame::PING, 0, 0, b"12345678"),
                Some(1),
                frame::PROTOCOL_ERROR,
            ),
            (
                wire(frame::CONTINUATION, 0, 3, b""),
                Some(1),
                frame::PROTOCOL_ERROR,
            ),
            (
                wire(frame::DATA, frame::PADDED, 1, &[4, 0, 0]),
                None,
                frame::PROTOCOL_ERROR,
            ),
            (
                wire(frame::PUSH_PROMISE, 0, 1, &[0; 4]),
                None,
                frame::PROTOCOL_ERROR,
            ),
            (
                wire(frame::PRIORITY_FRAME, 0, 0, &[0; 5]),
                None,
                frame::PROTOCOL_ERROR,
            ),
        ] {
            let seen = frames(&bytes, block);
            assert_eq!(
                seen[0].as_ref().map_err(|e| e.0).err(),
                Some(code),
                "{seen:?}"
            );
        }
        let short = frames(&wire(frame::PRIORITY_FRAME, 0, 3, &[0; 4]), None);
        assert!(short[0]
            .as_ref()
            .expect("a stream error")
            .contains("code: 6"));
        let itself = frames(&wire(frame::PRIORITY_FRAME, 0, 3, &[0, 0, 0, 3, 9]), None);
        assert!(itself[0]
            .as_ref()
            .expect("a stream error")
            .contains("code: 1"));
        let mut blocks = HeaderBlocks::default();
        assert!(blocks.headers(1, true, false, b"\x82").is_none());
        assert_eq!(blocks.open(), Some(1));
        assert!(blocks
            .continuation(false, b"\x84", 3)
            .expect("room")
            .is_none());
        let whole = blocks
            .continuation(true, b"\x86", 3)
            .expect("room")
            .expect("whole");
        assert_eq!(
            (whole.stream, whole.end_stream, &whole.bytes[..]),
            (1, true, &b"\x82\x84\x86"[..])
        );
        assert_eq!(blocks.open(), None);
        assert!(blocks.headers(3, false, false, b"ab").is_none());
        assert!(
            blocks.continuation(true, b"cd", 3).is_err(),
            "over the limit"
        );
        let go_on = frames(
            &wire(frame::CONTINUATION, frame::END_HEADERS, 1, b"\x82"),
            Some(1),
        );
        assert!(go_on[0]
            .as_ref()
            .expect("CONTINUATION")
            .contains("end_headers: true"));
        let mut window = frame::MAX_WINDOW - 1;
        assert!(grow_connection_window(&mut window, 1).is_ok());
        assert!(grow_connection_window(&mut window, 1).is_err());
        assert_eq!(stream_window_error(10, 0), Some(frame::PROTOCOL_ERROR));
        assert_eq!(
            stream_window_error(frame::MAX_WINDOW, 1),
            Some(frame::FLOW_CONTROL_ERROR)
        );
        assert_eq!(stream_window_error(10, 1), None);
    }
}
