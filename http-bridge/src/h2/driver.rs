//! The two tasks that drive a connection. The reader parses the provider's frames and hands
//! heads, messages and trailers to the waiting calls; the writer sends whatever the calls and
//! the reader queued, all of it in one write per wake-up, so calls made in the same turn of
//! the event loop share a system call.

use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::conn::{Shared, State};
use super::frame::{self, Head};
use super::hpack::{Decoder, Field};
use super::inbound::{self, Frame, HeaderBlocks, Payload, Raw, WholeBlock};
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
/// A header block spread over CONTINUATION frames may not grow past this.
const MAX_BLOCK: usize = 256 << 10;

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

pub(super) async fn read_loop(shared: Arc<Shared>, mut socket: OwnedReadHalf) {
    let _guard = Guard(Arc::clone(&shared), "the connection's reader stopped");
    let mut reader = Reader {
        shared: &shared,
        decoder: Decoder::new(4096),
        blocks: HeaderBlocks::default(),
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
    blocks: HeaderBlocks,
    wake: Vec<Waker>,
    fields: Vec<Field>,
}

/// A connection error: the code for our GOAWAY and what the calls are told.
type ConnError = (u32, ClientError);

fn conn_error((code, message): (u32, &str)) -> ConnError {
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
        if inbound::each(buf, |head, raw| self.frame(&head, &raw), conn_error)? {
            self.shared.wake_writer.notify_one();
        }
        Ok(())
    }

    /// One frame; returns whether it queued something to write.
    fn frame(&mut self, head: &Head, raw: &Raw<'_>) -> Result<bool, ConnError> {
        match inbound::parse(head, raw, self.blocks.open()).map_err(conn_error)? {
            Frame::Data {
                stream,
                end_stream,
                flow_len,
                data,
            } => self.data(stream, end_stream, flow_len, &data),
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                fragment,
            } => {
                Self::check_stream(&self.shared.lock(), stream)?;
                match self
                    .blocks
                    .headers(stream, end_stream, end_headers, fragment)
                {
                    Some(block) => self.block_done(&block),
                    None => Ok(false),
                }
            }
            Frame::Continuation {
                end_headers,
                fragment,
            } => match self
                .blocks
                .continuation(end_headers, fragment, MAX_BLOCK)
                .map_err(conn_error)?
            {
                Some(block) => self.block_done(&block),
                None => Ok(false),
            },
            Frame::RstStream { stream, code } => self.rst_stream(stream, code),
            Frame::Settings(payload) => {
                let mut st = self.shared.lock();
                st.apply_settings(payload, &mut self.wake)
                    .map_err(conn_error)?;
                Ok(true)
            }
            Frame::Ping { ack, data } => {
                let mut st = self.shared.lock();
                if ack {
                    st.ping_outstanding = false;
                    return Ok(false);
                }
                frame::put_ping(&mut st.out, true, data);
                Ok(true)
            }
            Frame::GoAway { last_stream, .. } => {
                self.goaway(last_stream);
                Ok(false)
            }
            Frame::WindowUpdate { stream, increment } => self.window_update(stream, increment),
            Frame::StreamError { stream, code } => {
                let mut st = self.shared.lock();
                // No RST_STREAM for an idle stream (RFC 9113 §6.4): the connection's error.
                if stream >= st.next_id {
                    return Err(conn_error((code, "a malformed PRIORITY on an idle stream")));
                }
                if st.streams.contains_key(&stream) {
                    let error = ClientError::protocol("the provider sent a malformed PRIORITY");
                    st.reset(stream, code, error, &mut self.wake);
                } else {
                    frame::put_rst(&mut st.out, stream, code);
                }
                Ok(true)
            }
            Frame::SettingsAck | Frame::Ignored => Ok(false),
        }
    }

    /// A stream frame on a stream we never opened is a connection error.
    fn check_stream(st: &State, id: u32) -> Result<(), ConnError> {
        if id >= st.next_id {
            return Err(conn_error((
                frame::PROTOCOL_ERROR,
                "a frame on a stream we never opened",
            )));
        }
        Ok(())
    }

    fn data(
        &mut self,
        id: u32,
        end_stream: bool,
        flow_len: usize,
        data: &Payload<'_>,
    ) -> Result<bool, ConnError> {
        let mut st = self.shared.lock();
        Self::check_stream(&st, id)?;
        if !st.recv.take(flow_len) {
            return Err(conn_error((
                frame::FLOW_CONTROL_ERROR,
                "more data than the connection window",
            )));
        }
        let fate = match st.streams.get_mut(&id) {
            // A stream we reset, or whose caller gave up: the data is dropped.
            None => Fate::Drop,
            Some(s) if s.remote_done => Fate::Drop,
            Some(s) if !s.head_seen => Fate::Reset(
                frame::PROTOCOL_ERROR,
                "the provider sent data before a response head",
            ),
            Some(s) => {
                if !s.recv.take(flow_len) {
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
            Fate::Drop => return Ok(st.received(flow_len, 0)),
            Fate::Reset(code, message) => {
                st.received(flow_len, 0);
                st.reset(id, code, ClientError::protocol(message), &mut self.wake);
                return Ok(true);
            }
        }
        let mut queued = st.received(flow_len, data.len());
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(queued);
        };
        if !data.is_empty() {
            s.data.push_back(data.to_bytes());
        }
        if end_stream {
            s.remote_done = true;
        }
        self.wake.extend(s.recv_waker.take());
        // Padding is never read by the caller: give its window back now.
        let padding = flow_len - data.len();
        if end_stream {
            st.settle(id, &mut self.wake);
        }
        if padding > 0 {
            queued |= st.release(Some(id), padding);
        }
        Ok(queued)
    }

    /// A whole header block: decoded whatever becomes of it (the table must stay in step),
    /// then a response head, trailers, or an error on its stream.
    fn block_done(&mut self, block: &WholeBlock<'_>) -> Result<bool, ConnError> {
        let (id, end_stream) = (block.stream, block.end_stream);
        self.fields.clear();
        let fields = &mut self.fields;
        self.decoder
            .decode(&block.bytes, |f| fields.push(f))
            .map_err(|e| conn_error((frame::COMPRESSION_ERROR, &e.to_string())))?;
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

    fn rst_stream(&mut self, id: u32, code: u32) -> Result<bool, ConnError> {
        let mut st = self.shared.lock();
        Self::check_stream(&st, id)?;
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

    fn goaway(&mut self, last: u32) {
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
    }

    fn window_update(&mut self, id: u32, increment: i64) -> Result<bool, ConnError> {
        let mut st = self.shared.lock();
        if id == 0 {
            inbound::grow_connection_window(&mut st.send_window, increment).map_err(conn_error)?;
            for s in st.streams.values_mut() {
                self.wake.extend(s.send_waker.take());
            }
            return Ok(false);
        }
        Self::check_stream(&st, id)?;
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(false);
        };
        if let Some(code) = inbound::stream_window_error(s.send_window, increment) {
            let error = ClientError::protocol("the provider sent a bad window increment");
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
