//! One HTTP/2 server connection's shared state: the streams, both directions' windows, the
//! client's settings, the HPACK encoder for answers and the bytes waiting to be written. The
//! reader, the writer and every stream's answering task share it under one mutex; they all
//! run on the connection's event loop, so it is never contended.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_bridge::h2::flow::{ConnRecv, StreamRecv};
use http_bridge::h2::frame::{self, Setting};
use http_bridge::h2::hpack::Encoder;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
pub(super) const MAX_STREAMS: u32 = 256;
/// Strikes a client may earn per keep-alive tick (10 s): cancelled or broken streams and
/// empty frames. Rapid reset (CVE-2023-44487) and empty-frame floods (CVE-2019-9518) make
/// us work for nothing; a busy but honest client stays far below.
const MAX_STRIKES: u32 = 1000;
const ENHANCE_YOUR_CALM: u32 = 11;

pub(super) struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: bytes are queued, or the connection is closing.
    pub wake_writer: Notify,
    /// Wakes the reader: the writer stopped, or the last stream of a draining connection
    /// ended.
    pub wake_reader: Notify,
}

#[derive(Default)]
pub(super) struct Stream {
    /// The request body as it arrives.
    pub data: VecDeque<Bytes>,
    pub trailers: Option<HeaderMap>,
    /// The client sent END_STREAM.
    pub remote_done: bool,
    /// The handler, waiting for the body.
    pub recv_waker: Option<Waker>,
    /// The stream's receive window.
    pub recv: StreamRecv,
    /// The request's content-length, checked against what arrives.
    pub content_length: Option<u64>,
    pub received: u64,
    /// How much more of the answer we may send.
    pub send_window: i64,
    /// The answer's pump, waiting for window.
    pub send_waker: Option<Waker>,
    /// The task answering this stream: aborted when the client resets it.
    pub task: Option<AbortHandle>,
    /// When the stream opened, and whether its answer has started: a cancel of a young
    /// stream not yet answered is what a rapid-reset attack looks like.
    pub opened: Option<std::time::Instant>,
    pub answered: bool,
}

pub(super) struct State {
    pub out: BytesMut,
    pub block: BytesMut,
    pub streams: frame::StreamMap<Stream>,
    /// The highest stream the client opened.
    pub last_id: u32,
    pub send_window: i64,
    /// The connection's receive window.
    pub recv: ConnRecv,
    pub peer_initial_window: i64,
    pub peer_max_frame: usize,
    pub encoder: Encoder,
    /// The connection is over: answers have nowhere to go.
    pub closed: bool,
    /// GOAWAY sent (or received): no new streams; close when the last one ends.
    pub draining: bool,
    /// Stopping, first phase: a GOAWAY for stream 2^31-1 and a PING are out; the final
    /// GOAWAY, naming the last stream we took, follows the PING's answer (so requests already
    /// on the wire are still taken).
    pub stopping: bool,
    pub ping_outstanding: bool,
    /// Abuse seen since the last keep-alive tick: streams the client cancelled while we
    /// worked on them, streams we had to reset for its errors, empty frames.
    pub strikes: u32,
    /// The last stream named in a GOAWAY we sent: later ones may not name a higher one.
    pub goaway_id: Option<u32>,
    /// Since when no stream has been open (`None` while one is).
    pub idle_since: Option<tokio::time::Instant>,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            state: Mutex::new(State {
                out: BytesMut::with_capacity(4096),
                block: BytesMut::new(),
                streams: frame::StreamMap::default(),
                last_id: 0,
                send_window: i64::from(frame::DEFAULT_WINDOW),
                recv: ConnRecv::default(),
                peer_initial_window: i64::from(frame::DEFAULT_WINDOW),
                peer_max_frame: frame::DEFAULT_MAX_FRAME as usize,
                encoder: Encoder::default(),
                closed: false,
                draining: false,
                stopping: false,
                ping_outstanding: false,
                strikes: 0,
                goaway_id: None,
                idle_since: Some(tokio::time::Instant::now()),
            }),
            wake_writer: Notify::new(),
            wake_reader: Notify::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain data: a panic elsewhere cannot leave it worse than a failure.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The PING that closes the first phase of a graceful stop.
pub(super) const DRAIN_PING: [u8; 8] = *b"draining";

impl State {
    /// The second phase of a graceful stop: no stream after the last one taken.
    pub fn final_goaway(&mut self) {
        self.draining = true;
        self.goaway(frame::NO_ERROR);
    }

    /// A GOAWAY naming the last stream taken (never more than an earlier GOAWAY named).
    pub fn goaway(&mut self, code: u32) {
        let last = self
            .goaway_id
            .map_or(self.last_id, |id| id.min(self.last_id));
        self.goaway_id = Some(last);
        frame::put_goaway(&mut self.out, last, code);
    }

    /// Counts one strike; past the limit a connection is drained (GOAWAY ENHANCE_YOUR_CALM,
    /// new streams refused, those running finish), and past twice the limit it is cut.
    /// Returns whether to cut it now.
    pub fn strike(&mut self) -> bool {
        self.strikes += 1;
        if self.strikes > MAX_STRIKES && !self.draining {
            self.draining = true;
            self.goaway(ENHANCE_YOUR_CALM);
        }
        self.strikes > 2 * MAX_STRIKES
    }

    /// Ends a stream whose answer is complete (or abandoned): a client still sending is told
    /// to stop (RST_STREAM NO_ERROR, RFC 9113 §8.1), and unread body bytes go back to the
    /// connection's window. Returns whether a draining connection is now idle.
    pub fn finish(&mut self, id: u32, code: Option<u32>, wake: &mut Vec<Waker>) -> bool {
        let Some(mut s) = self.streams.remove(&id) else {
            return false;
        };
        match code {
            Some(code) => frame::put_rst(&mut self.out, id, code),
            None if !s.remote_done => frame::put_rst(&mut self.out, id, frame::NO_ERROR),
            None => {}
        }
        wake.extend(s.recv_waker.take());
        wake.extend(s.send_waker.take());
        // What the handler never read no longer counts against the connection's budget.
        self.consumed(s.data.iter().map(Bytes::len).sum());
        if self.streams.is_empty() {
            self.idle_since = Some(tokio::time::Instant::now());
        }
        self.draining && self.streams.is_empty()
    }

    /// Gives back stream window for `n` bytes the caller consumed (or padding, which it never
    /// sees). Returns whether a frame was queued.
    pub fn release(&mut self, id: Option<u32>, n: usize) -> bool {
        let Some((id, s)) = id.and_then(|id| self.streams.get_mut(&id).map(|s| (id, s))) else {
            return false;
        };
        s.recv.release(id, s.remote_done, n, &mut self.out)
    }

    /// `n` bytes arrived on the connection, `kept` of them for a reader (see [`ConnRecv`]).
    pub fn received(&mut self, n: usize, kept: usize) -> bool {
        self.recv.received(n, kept, &mut self.out)
    }

    /// `n` buffered bytes were read, or dropped with their stream.
    pub fn consumed(&mut self, n: usize) -> bool {
        self.recv.consumed(n, &mut self.out)
    }

    /// Applies the client's SETTINGS and acknowledges them; an error is the connection error.
    pub fn apply_settings(
        &mut self,
        payload: &[u8],
        wake: &mut Vec<Waker>,
    ) -> Result<(), (u32, &'static str)> {
        for setting in frame::settings(payload) {
            match setting? {
                Setting::HeaderTableSize(size) => self.encoder.peer_limit(size),
                Setting::EnablePush(value) if value > 1 => {
                    return Err((frame::PROTOCOL_ERROR, "ENABLE_PUSH other than 0 or 1"))
                }
                Setting::InitialWindow(window) => {
                    let delta = window - self.peer_initial_window;
                    self.peer_initial_window = window;
                    let streams = self
                        .streams
                        .values_mut()
                        .map(|s| (&mut s.send_window, &mut s.send_waker));
                    frame::shift_windows(delta, streams, wake)?;
                }
                Setting::MaxFrameSize(size) => self.peer_max_frame = size,
                // The rest concern what we never do (push) or are advisory.
                _ => {}
            }
        }
        frame::put_settings_ack(&mut self.out);
        Ok(())
    }
}
