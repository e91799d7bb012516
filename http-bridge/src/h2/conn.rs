//! One HTTP/2 connection's shared state: its streams, both directions' flow-control windows,
//! the peer's settings, the HPACK encoder and the bytes waiting to be written. Callers, the
//! reader and the writer all work on it under one mutex; it is only ever contended when a
//! client is shared across threads, since each event loop has its own connections.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use tokio::sync::Notify;

use super::flow::{ConnRecv, StreamRecv};
use super::frame::{self, Setting};
use super::hpack::Encoder;
use super::ClientError;

/// The largest header list we accept (SETTINGS_MAX_HEADER_LIST_SIZE).
pub(super) const MAX_HEADER_LIST: u32 = 64 << 10;

pub(super) struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: there are bytes in `State::out`, or it should stop.
    pub wake_writer: Notify,
    /// Wakes the reader when the writer has stopped.
    pub writer_stopped: Notify,
    /// New streams may be opened: not failed, not going away, stream ids left.
    open: AtomicBool,
}

/// A response head.
pub(super) struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
}

#[derive(Default)]
pub(super) struct Stream {
    /// How much more we may send on this stream.
    pub send_window: i64,
    /// The request body's pump, waiting for window.
    pub send_waker: Option<Waker>,
    /// We sent END_STREAM (or will send nothing more).
    pub local_done: bool,
    pub head: Option<Head>,
    pub head_seen: bool,
    pub data: VecDeque<Bytes>,
    pub trailers: Option<HeaderMap>,
    /// The provider sent END_STREAM (or reset the stream).
    pub remote_done: bool,
    /// The caller, waiting for the head or the body.
    pub recv_waker: Option<Waker>,
    /// The stream's receive window.
    pub recv: StreamRecv,
    pub error: Option<ClientError>,
    /// Counts against the provider's SETTINGS_MAX_CONCURRENT_STREAMS.
    pub counted: bool,
}

pub(super) struct State {
    /// Frames waiting for the writer.
    pub out: BytesMut,
    /// A header block being built (reused).
    pub block: BytesMut,
    pub streams: frame::StreamMap<Stream>,
    pub next_id: u32,
    /// How much more we may send on the connection.
    pub send_window: i64,
    /// The connection's receive window.
    pub recv: ConnRecv,
    pub peer_initial_window: i64,
    pub peer_max_frame: usize,
    pub peer_max_streams: u32,
    /// Streams open or half-closed: what SETTINGS_MAX_CONCURRENT_STREAMS limits.
    pub active: u32,
    pub slot_waiters: Vec<Waker>,
    pub encoder: Encoder,
    /// Why the connection ended; every stream still running fails with it.
    pub failed: Option<ClientError>,
    /// The provider's GOAWAY: the last stream it will process.
    pub goaway: Option<u32>,
    /// The client was dropped: close once the last stream ends.
    pub client_gone: bool,
    /// A keep-alive ping is unanswered.
    pub ping_outstanding: bool,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                out: BytesMut::with_capacity(4096),
                block: BytesMut::new(),
                streams: frame::StreamMap::default(),
                next_id: 1,
                send_window: i64::from(frame::DEFAULT_WINDOW),
                recv: ConnRecv::default(),
                peer_initial_window: i64::from(frame::DEFAULT_WINDOW),
                peer_max_frame: frame::DEFAULT_MAX_FRAME as usize,
                peer_max_streams: u32::MAX,
                active: 0,
                slot_waiters: Vec::new(),
                encoder: Encoder::default(),
                failed: None,
                goaway: None,
                client_gone: false,
                ping_outstanding: false,
            }),
            wake_writer: Notify::new(),
            writer_stopped: Notify::new(),
            open: AtomicBool::new(true),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave it worse than any other failure: the
        // state is plain data, so carry on with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a new call may use this connection.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    pub fn close_to_new_streams(&self) {
        self.open.store(false, Ordering::Release);
    }

    /// Ends the connection: every unfinished stream fails with `error` (or, for one the
    /// provider never saw, a not-processed error), and the writer flushes what it has and
    /// stops. The first failure wins.
    pub fn fail(&self, error: ClientError) {
        self.close_to_new_streams();
        let mut wake = Vec::new();
        {
            let mut st = self.lock();
            if st.failed.is_some() {
                return;
            }
            let goaway = st.goaway;
            for (&id, s) in st.streams.iter_mut() {
                if !s.remote_done && s.error.is_none() {
                    let unseen = goaway.is_some_and(|last| id > last);
                    s.error = Some(if unseen {
                        ClientError::not_processed(
                            "the provider closed the connection before it took the call",
                        )
                    } else {
                        error.clone()
                    });
                }
                s.remote_done = true;
                s.local_done = true;
                wake.extend(s.recv_waker.take());
                wake.extend(s.send_waker.take());
            }
            st.failed = Some(error);
            wake.append(&mut st.slot_waiters);
        }
        self.wake_writer.notify_one();
        wake.into_iter().for_each(Waker::wake);
    }
}

impl State {
    /// Marks a stream closed on both sides if it is, releasing its concurrency slot.
    pub fn settle(&mut self, id: u32, wake: &mut Vec<Waker>) {
        if let Some(s) = self.streams.get_mut(&id) {
            if s.counted && s.local_done && s.remote_done {
                s.counted = false;
                self.active -= 1;
                // Every waiter re-checks (some may have given up meanwhile).
                wake.append(&mut self.slot_waiters);
            }
        }
    }

    /// Resets a stream: tells the provider, and fails the caller's side with `error`.
    pub fn reset(&mut self, id: u32, code: u32, error: ClientError, wake: &mut Vec<Waker>) {
        if let Some(s) = self.streams.get_mut(&id) {
            if !(s.local_done && s.remote_done) {
                frame::put_rst(&mut self.out, id, code);
            }
            if s.error.is_none() {
                s.error = Some(error);
            }
            s.local_done = true;
            s.remote_done = true;
            wake.extend(s.recv_waker.take());
            wake.extend(s.send_waker.take());
            self.settle(id, wake);
        }
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

    /// Applies the provider's SETTINGS; an error is the connection error to send.
    pub fn apply_settings(
        &mut self,
        payload: &[u8],
        wake: &mut Vec<Waker>,
    ) -> Result<(), (u32, &'static str)> {
        for setting in frame::settings(payload) {
            match setting? {
                Setting::HeaderTableSize(size) => self.encoder.peer_limit(size),
                Setting::MaxConcurrentStreams(value) => {
                    self.peer_max_streams = value;
                    wake.append(&mut self.slot_waiters);
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
                // ENABLE_PUSH means nothing from a server, MAX_HEADER_LIST_SIZE is advisory,
                // and unknown settings are ignored.
                _ => {}
            }
        }
        frame::put_settings_ack(&mut self.out);
        Ok(())
    }
}
