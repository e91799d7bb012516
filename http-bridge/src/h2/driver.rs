//! The two tasks that drive a connection. The reader parses the provider's frames and hands
//! heads, messages and trailers to the waiting calls; the writer sends whatever the calls and
//! the reader queued, all of it in one write per wake-up, so calls made in the same turn of
//! the event loop share a system call.

use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::conn::{Shared, State};
use super::frame::{self, Head};
use super::hpack::{Decoder, Field};
use super::response::{response_head, trailers, Parsed};
use super::ClientError;

/// A connection with calls open but silent this long (5 min, the least interval gRPC servers
/// accept from clients by default) is pinged, and closed when the ping goes unanswered for a
/// tick: a long-running call on a dead connection fails instead of waiting forever. Idle
/// connections are watched by TCP keep-alive instead (servers penalise pings without calls).
const TICK: Duration = Duration::from_secs(10);
const IDLE_TICKS: u32 = 30;
/// A connection without calls for this many ticks (90 s) is closed.
const UNUSED_TICKS: u32 = 9;
/// The largest frame we accept (our SETTINGS_MAX_FRAME_SIZE: the default).
const MAX_FRAME: usize = frame::DEFAULT_MAX_FRAME as usize;
/// A header block spread over CONTINUATION frames may not grow past this.
const MAX_BLOCK: usize = 256 << 10;
/// DATA payloads smaller than this are copied out of the read buffer, so the buffer can be
/// reused in place; larger ones are handed on without a copy.
const COPY_BELOW: usize = 4096;

/// Fails the connection when a driver task ends, however it ends (a runtime shutting down
/// drops its tasks): calls must never wait on a connection nobody reads.
struct Guard(Arc<Shared>, &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fail(ClientError::lost(self.1));
    }
}

pub(super) async fn write_loop(shared: Arc<Shared>, mut socket: OwnedWriteHalf) {
    let _guard = Guard(Arc::clone(&shared), "the connection's writer stopped");
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let stop = {
            let mut st = shared.lock();
            std::mem::swap(&mut st.out, &mut buf);
            st.failed.is_some() || (st.client_gone && st.streams.is_empty())
        };
        if !buf.is_empty() {
            if let Err(e) = socket.write_all(&buf).await {
                shared.fail(ClientError::lost(format!("writing to the provider: {e}")));
                break;
            }
            buf.clear();
            if buf.capacity() > 1 << 20 {
                buf = BytesMut::with_capacity(4096); // a burst is over: give the memory back
            }
        } else if stop {
            break;
        } else {
            shared.wake_writer.notified().await;
        }
    }
    let _ = socket.shutdown().await;
    shared.writer_stopped.notify_one();
}

/// A header block arriving over HEADERS and CONTINUATION frames.
struct Block {
    stream: u32,
    end_stream: bool,
    bytes: BytesMut,
}

pub(super) async fn read_loop(shared: Arc<Shared>, mut socket: OwnedReadHalf) {
    let _guard = Guard(Arc::clone(&shared), "the connection's reader stopped");
    let mut reader = Reader {
        shared: &shared,
        decoder: Decoder::new(4096),
        block: None,
        wake: Vec::new(),
        fields: Vec::new(),
    };
    let mut buf = BytesMut::with_capacity(16 << 10);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
    let (mut reads, mut seen, mut idle, mut unused) = (0u64, 0u64, 0u32, 0u32);
    loop {
        if let Err((code, error)) = reader.frames(&mut buf) {
            reader.flush_wakes();
            let mut st = shared.lock();
            frame::put_goaway(&mut st.out, 0, code);
            drop(st);
            shared.fail(error);
            return;
        }
        reader.flush_wakes();
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 << 10);
        }
        tokio::select! {
            read = socket.read_buf(&mut buf) => match read {
                Ok(0) => {
                    shared.fail(ClientError::lost("the provider closed the connection"));
                    return;
                }
                Ok(_) => reads += 1,
                Err(e) => {
                    shared.fail(ClientError::lost(format!("reading from the provider: {e}")));
                    return;
                }
            },
            _ = ticker.tick() => {
                {
                    let mut st = shared.lock();
                    unused = if st.streams.is_empty() { unused + 1 } else { 0 };
                    if unused >= UNUSED_TICKS {
                        // No call for 90 s: closed, so connections to providers taken out of
                        // service do not stay forever; the next call opens a new one.
                        shared.close_to_new_streams();
                        st.client_gone = true;
                        drop(st);
                        shared.wake_writer.notify_one();
                        continue;
                    }
                }
                if reads != seen {
                    (seen, idle) = (reads, 0);
                    shared.lock().ping_outstanding = false;
                    continue;
                }
                idle += 1;
                let mut st = shared.lock();
                if st.ping_outstanding {
                    drop(st);
                    shared.fail(ClientError::lost("the provider did not answer a keep-alive ping"));
                    return;
                }
                if idle >= IDLE_TICKS && !st.streams.is_empty() {
                    idle = 0;
                    frame::put_ping(&mut st.out, false, *b"keepaliv");
                    st.ping_outstanding = true;
                    drop(st);
                    shared.wake_writer.notify_one();
                }
            }
            _ = shared.writer_stopped.notified() => return,
        }
    }
}

struct Reader<'a> {
    shared: &'a Shared,
    decoder: Decoder,
    block: Option<Block>,
    wake: Vec<Waker>,
    fields: Vec<Field>,
}

/// A connection error: the code for our GOAWAY and what the calls are told.
type ConnError = (u32, ClientError);

fn conn_error(code: u32, message: &str) -> ConnError {
    (
        code,
        ClientError::protocol(format!("the provider broke HTTP/2: {message}")),
    )
}

impl Reader<'_> {
    fn flush_wakes(&mut self) {
        self.wake.drain(..).for_each(Waker::wake);
    }

    /// Handles every complete frame in `buf`.
    fn frames(&mut self, buf: &mut BytesMut) -> Result<(), ConnError> {
        let mut queued = false;
        while buf.len() >= frame::HEAD_LEN {
            let head = Head::parse(&buf[..frame::HEAD_LEN]);
            if head.len > MAX_FRAME {
                return Err(conn_error(
                    frame::FRAME_SIZE_ERROR,
                    "a frame larger than we allow",
                ));
            }
            if buf.len() < frame::HEAD_LEN + head.len {
                break;
            }
            if head.kind == frame::DATA && head.len >= COPY_BELOW && self.block.is_none() {
                buf.advance(frame::HEAD_LEN);
                let payload = buf.split_to(head.len).freeze();
                queued |= self.data(head, &payload, Some(&payload))?;
            } else {
                let payload = &buf[frame::HEAD_LEN..frame::HEAD_LEN + head.len];
                queued |= self.frame(head, payload)?;
                buf.advance(frame::HEAD_LEN + head.len);
            }
        }
        if queued {
            self.shared.wake_writer.notify_one();
        }
        Ok(())
    }

    /// One frame; returns whether it queued something to write.
    fn frame(&mut self, head: Head, payload: &[u8]) -> Result<bool, ConnError> {
        if let Some(block) = &self.block {
            if head.kind != frame::CONTINUATION || head.stream != block.stream {
                return Err(conn_error(
                    frame::PROTOCOL_ERROR,
                    "a header block was interrupted",
                ));
            }
        }
        match head.kind {
            frame::DATA => self.data(head, payload, None),
            frame::HEADERS => self.headers(head, payload),
            frame::CONTINUATION => self.continuation(head, payload),
            frame::RST_STREAM => self.rst_stream(head, payload),
            frame::SETTINGS => self.settings(head, payload),
            frame::PING => self.ping(head, payload),
            frame::GOAWAY => self.goaway(head, payload),
            frame::WINDOW_UPDATE => self.window_update(head, payload),
            frame::PUSH_PROMISE => Err(conn_error(
                frame::PROTOCOL_ERROR,
                "a push, which we disabled",
            )),
            // PRIORITY and unknown frame types are ignored.
            _ => Ok(false),
        }
    }

    /// A stream frame on stream 0, or on a stream we never opened, is a connection error.
    fn check_stream(st: &State, id: u32) -> Result<(), ConnError> {
        if id == 0 || id % 2 == 0 || id >= st.next_id {
            return Err(conn_error(
                frame::PROTOCOL_ERROR,
                "a frame on a stream we never opened",
            ));
        }
        Ok(())
    }

    fn data(
        &mut self,
        head: Head,
        payload: &[u8],
        shared_payload: Option<&Bytes>,
    ) -> Result<bool, ConnError> {
        let mut st = self.shared.lock();
        Self::check_stream(&st, head.stream)?;
        let (start, end) = frame::unpad(&head, payload)
            .ok_or_else(|| conn_error(frame::PROTOCOL_ERROR, "padding longer than its frame"))?;
        if !st.recv.take(head.len) {
            return Err(conn_error(
                frame::FLOW_CONTROL_ERROR,
                "more data than the connection window",
            ));
        }
        let id = head.stream;
        let fate = match st.streams.get_mut(&id) {
            // A stream we reset, or whose caller gave up: the data is dropped.
            None => Fate::Drop,
            Some(s) if s.remote_done => Fate::Drop,
            Some(s) if !s.head_seen => Fate::Reset(
                frame::PROTOCOL_ERROR,
                "the provider sent data before a response head",
            ),
            Some(s) => {
                if !s.recv.take(head.len) {
                    Fate::Reset(
                        frame::FLOW_CONTROL_ERROR,
                        "the provider overran the stream's window",
                    )
                } else {
                    Fate::Take
                }
            }
        };
        match fate {
            Fate::Take => {}
            Fate::Drop => return Ok(st.received(head.len, 0)),
            Fate::Reset(code, message) => {
                st.received(head.len, 0);
                st.reset(id, code, ClientError::protocol(message), &mut self.wake);
                return Ok(true);
            }
        }
        let mut queued = st.received(head.len, end - start);
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(queued);
        };
        if end > start {
            let bytes = match shared_payload {
                Some(p) => p.slice(start..end),
                None => Bytes::copy_from_slice(&payload[start..end]),
            };
            s.data.push_back(bytes);
        }
        if head.has(frame::END_STREAM) {
            s.remote_done = true;
        }
        self.wake.extend(s.recv_waker.take());
        // Padding is never read by the caller: give its window back now.
        let padding = head.len - (end - start);
        if head.has(frame::END_STREAM) {
            st.settle(id, &mut self.wake);
        }
        if padding > 0 {
            queued |= st.release(Some(id), padding);
        }
        Ok(queued)
    }

    fn headers(&mut self, head: Head, payload: &[u8]) -> Result<bool, ConnError> {
        Self::check_stream(&self.shared.lock(), head.stream)?;
        let (mut start, end) = frame::unpad(&head, payload)
            .ok_or_else(|| conn_error(frame::PROTOCOL_ERROR, "padding longer than its frame"))?;
        if head.has(frame::PRIORITY) {
            start += 5;
            if start > end {
                return Err(conn_error(
                    frame::FRAME_SIZE_ERROR,
                    "a HEADERS frame too short for its priority",
                ));
            }
        }
        // A whole block (the usual case) is decoded where it lies; only one spread over
        // CONTINUATION frames is gathered first.
        if head.has(frame::END_HEADERS) {
            return self.block_done(
                head.stream,
                head.has(frame::END_STREAM),
                &payload[start..end],
            );
        }
        self.block = Some(Block {
            stream: head.stream,
            end_stream: head.has(frame::END_STREAM),
            bytes: BytesMut::from(&payload[start..end]),
        });
        Ok(false)
    }

    fn continuation(&mut self, head: Head, payload: &[u8]) -> Result<bool, ConnError> {
        let Some(mut block) = self.block.take() else {
            return Err(conn_error(
                frame::PROTOCOL_ERROR,
                "a CONTINUATION without HEADERS",
            ));
        };
        if block.bytes.len() + payload.len() > MAX_BLOCK {
            return Err(conn_error(
                frame::PROTOCOL_ERROR,
                "a header block over 256 KiB",
            ));
        }
        block.bytes.extend_from_slice(payload);
        if head.has(frame::END_HEADERS) {
            self.block_done(block.stream, block.end_stream, &block.bytes)
        } else {
            self.block = Some(block);
            Ok(false)
        }
    }

    /// A whole header block: decoded whatever becomes of it (the table must stay in step),
    /// then a response head, trailers, or an error on its stream.
    fn block_done(&mut self, id: u32, end_stream: bool, block: &[u8]) -> Result<bool, ConnError> {
        self.fields.clear();
        let fields = &mut self.fields;
        self.decoder
            .decode(block, |f| fields.push(f))
            .map_err(|e| conn_error(frame::COMPRESSION_ERROR, &e.to_string()))?;
        let mut st = self.shared.lock();
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(false); // a stream we reset or gave up
        };
        if s.remote_done {
            let error = ClientError::protocol("the provider sent headers on a finished stream");
            st.reset(id, frame::STREAM_CLOSED, error, &mut self.wake);
            return Ok(true);
        }
        let parsed = if s.head_seen {
            trailers(&self.fields, end_stream).map(Parsed::Trailers)
        } else {
            response_head(&self.fields, end_stream)
        };
        match parsed {
            Err(message) => {
                let error = ClientError::protocol(format!(
                    "a malformed response from the provider: {message}"
                ));
                st.reset(id, frame::PROTOCOL_ERROR, error, &mut self.wake);
                return Ok(true);
            }
            Ok(Parsed::Informational) => return Ok(false),
            Ok(Parsed::Head(h)) => {
                s.head = Some(h);
                s.head_seen = true;
            }
            Ok(Parsed::Trailers(t)) => s.trailers = Some(t),
        }
        if end_stream {
            s.remote_done = true;
        }
        self.wake.extend(s.recv_waker.take());
        st.settle(id, &mut self.wake);
        Ok(false)
    }

    fn rst_stream(&mut self, head: Head, payload: &[u8]) -> Result<bool, ConnError> {
        if payload.len() != 4 {
            return Err(conn_error(
                frame::FRAME_SIZE_ERROR,
                "a RST_STREAM that is not 4 bytes",
            ));
        }
        let mut st = self.shared.lock();
        Self::check_stream(&st, head.stream)?;
        let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
        let id = head.stream;
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(false);
        };
        if code == frame::NO_ERROR && s.remote_done {
            // The answer is complete and the provider wants no more of the request.
            s.local_done = true;
            self.wake.extend(s.send_waker.take());
        } else {
            if s.error.is_none() && !(s.remote_done && s.local_done) {
                s.error = Some(if code == frame::REFUSED_STREAM {
                    ClientError::not_processed("the provider refused the stream")
                } else {
                    ClientError::reset(code)
                });
            }
            s.local_done = true;
            s.remote_done = true;
            self.wake.extend(s.recv_waker.take());
            self.wake.extend(s.send_waker.take());
        }
        st.settle(id, &mut self.wake);
        Ok(false)
    }

    fn settings(&mut self, head: Head, payload: &[u8]) -> Result<bool, ConnError> {
        if head.stream != 0 {
            return Err(conn_error(frame::PROTOCOL_ERROR, "SETTINGS on a stream"));
        }
        if head.has(frame::ACK) {
            return match payload.len() {
                0 => Ok(false),
                _ => Err(conn_error(
                    frame::FRAME_SIZE_ERROR,
                    "a SETTINGS ack with a payload",
                )),
            };
        }
        if payload.len() % 6 != 0 {
            return Err(conn_error(
                frame::FRAME_SIZE_ERROR,
                "SETTINGS not a multiple of 6 bytes",
            ));
        }
        let mut st = self.shared.lock();
        st.apply_settings(payload, &mut self.wake)
            .map_err(|(code, message)| conn_error(code, message))?;
        Ok(true)
    }

    fn ping(&mut self, head: Head, payload: &[u8]) -> Result<bool, ConnError> {
        if head.stream != 0 {
            return Err(conn_error(frame::PROTOCOL_ERROR, "PING on a stream"));
        }
        let Ok(data) = <[u8; 8]>::try_from(payload) else {
            return Err(conn_error(
                frame::FRAME_SIZE_ERROR,
                "a PING that is not 8 bytes",
            ));
        };
        let mut st = self.shared.lock();
        if head.has(frame::ACK) {
            st.ping_outstanding = false;
            return Ok(false);
        }
        frame::put_ping(&mut st.out, true, data);
        Ok(true)
    }

    fn goaway(&mut self, head: Head, payload: &[u8]) -> Result<bool, ConnError> {
        if head.stream != 0 {
            return Err(conn_error(frame::PROTOCOL_ERROR, "GOAWAY on a stream"));
        }
        if payload.len() < 8 {
            return Err(conn_error(
                frame::FRAME_SIZE_ERROR,
                "a GOAWAY shorter than 8 bytes",
            ));
        }
        let last =
            u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff;
        self.shared.close_to_new_streams();
        let mut st = self.shared.lock();
        st.goaway = Some(st.goaway.map_or(last, |before| before.min(last)));
        // Calls waiting for a stream slot go to a new connection instead.
        self.wake.append(&mut st.slot_waiters);
        let unseen: Vec<u32> = st.streams.keys().copied().filter(|&id| id > last).collect();
        for id in unseen {
            if let Some(s) = st.streams.get_mut(&id) {
                if s.error.is_none() && !s.remote_done {
                    s.error = Some(ClientError::not_processed(
                        "the provider is going away and did not take the call",
                    ));
                }
                s.local_done = true;
                s.remote_done = true;
                self.wake.extend(s.recv_waker.take());
                self.wake.extend(s.send_waker.take());
            }
            st.settle(id, &mut self.wake);
        }
        Ok(false)
    }

    fn window_update(&mut self, head: Head, payload: &[u8]) -> Result<bool, ConnError> {
        if payload.len() != 4 {
            return Err(conn_error(
                frame::FRAME_SIZE_ERROR,
                "a WINDOW_UPDATE that is not 4 bytes",
            ));
        }
        let increment = i64::from(
            u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff,
        );
        let mut st = self.shared.lock();
        if head.stream == 0 {
            if increment == 0 {
                return Err(conn_error(frame::PROTOCOL_ERROR, "a zero window increment"));
            }
            st.send_window += increment;
            if st.send_window > frame::MAX_WINDOW {
                return Err(conn_error(
                    frame::FLOW_CONTROL_ERROR,
                    "the connection window above 2^31-1",
                ));
            }
            for s in st.streams.values_mut() {
                self.wake.extend(s.send_waker.take());
            }
            return Ok(false);
        }
        Self::check_stream(&st, head.stream)?;
        let id = head.stream;
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(false);
        };
        if increment == 0 || s.send_window + increment > frame::MAX_WINDOW {
            let error = ClientError::protocol("the provider sent a bad window increment");
            let code = if increment == 0 {
                frame::PROTOCOL_ERROR
            } else {
                frame::FLOW_CONTROL_ERROR
            };
            st.reset(id, code, error, &mut self.wake);
            return Ok(true);
        }
        s.send_window += increment;
        self.wake.extend(s.send_waker.take());
        Ok(false)
    }
}

/// What becomes of a DATA frame.
enum Fate {
    Take,
    Drop,
    Reset(u32, &'static str),
}
