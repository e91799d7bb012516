//! The client's frames: new streams become requests (each answered on its own task), DATA
//! and trailers feed request bodies, and the control frames do what RFC 9113 says. A
//! malformed request resets its stream; a broken connection gets GOAWAY with the error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Waker;

use bytes::BytesMut;
use http::{HeaderMap, Method};
use http_bridge::h2::frame::{self, Head};
use http_bridge::h2::hpack::{Decoder, Field, FieldName};
use http_bridge::h2::inbound::{self, Frame, HeaderBlocks, Payload, Raw, Violation, WholeBlock};

use super::body::RecvBody;
use super::request::{check_field, request};
use super::respond::respond;
use super::state::{Shared, Stream, DRAIN_PING, MAX_STREAMS};
use crate::http1::body::RequestBody;
use crate::server::Handler;

/// A connection error: the GOAWAY code and why.
pub(super) type ConnError = (u32, String);

fn conn_error((code, message): Violation) -> ConnError {
    (code, message.to_owned())
}

pub(super) struct Reader {
    pub shared: Arc<Shared>,
    pub handler: Handler,
    pub remote: SocketAddr,
    pub max_head: usize,
    decoder: Decoder,
    blocks: HeaderBlocks,
    fields: Vec<Field>,
    pub wake: Vec<Waker>,
}

impl Reader {
    pub fn new(
        shared: Arc<Shared>,
        handler: Handler,
        remote: SocketAddr,
        max_head: usize,
    ) -> Reader {
        Reader {
            shared,
            handler,
            remote,
            max_head,
            decoder: Decoder::new(4096),
            blocks: HeaderBlocks::default(),
            fields: Vec::new(),
            wake: Vec::new(),
        }
    }

    /// Handles every complete frame in `buf`.
    pub fn frames(&mut self, buf: &mut BytesMut) -> Result<(), ConnError> {
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
            } => match self
                .blocks
                .headers(stream, end_stream, end_headers, fragment)
            {
                Some(block) => self.block_done(&block),
                None => Ok(false),
            },
            Frame::Continuation {
                end_headers,
                fragment,
            } => {
                if fragment.is_empty() && !end_headers && self.shared.lock().strike() {
                    return Err(calm("empty CONTINUATION frames"));
                }
                // Beyond twice the header limit, the block is not worth decoding.
                let max = 2 * self.max_head + 1024;
                match self
                    .blocks
                    .continuation(end_headers, fragment, max)
                    .map_err(conn_error)?
                {
                    Some(block) => self.block_done(&block),
                    None => Ok(false),
                }
            }
            Frame::RstStream { stream, .. } => self.rst_stream(stream),
            Frame::Settings(payload) => {
                let mut st = self.shared.lock();
                st.apply_settings(payload, &mut self.wake)
                    .map_err(conn_error)?;
                Ok(true)
            }
            Frame::Ping { ack, data } => Ok(self.ping(ack, data)),
            Frame::GoAway { .. } => {
                // The client opens no more streams: close once the last one is answered.
                let mut st = self.shared.lock();
                st.draining = true;
                if st.streams.is_empty() {
                    self.shared.wake_reader.notify_one();
                }
                Ok(false)
            }
            Frame::WindowUpdate { stream, increment } => self.window_update(stream, increment),
            Frame::StreamError { stream, code } => {
                let mut st = self.shared.lock();
                // No RST_STREAM for an idle stream (RFC 9113 §6.4): the connection's error.
                if stream > st.last_id {
                    return Err(conn_error((code, "a malformed PRIORITY on an idle stream")));
                }
                if st.streams.contains_key(&stream) {
                    return stream_error(&mut st, &self.shared, &mut self.wake, stream, code);
                }
                frame::put_rst(&mut st.out, stream, code);
                if st.strike() {
                    return Err(calm("too many broken streams"));
                }
                Ok(true)
            }
            Frame::SettingsAck | Frame::Ignored => Ok(false),
        }
    }

    /// A stream frame above any stream opened is on an idle stream.
    fn check_stream(&self, id: u32) -> Result<(), ConnError> {
        if id > self.shared.lock().last_id {
            return Err(conn_error((
                frame::PROTOCOL_ERROR,
                "a frame on an idle stream",
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
        self.check_stream(id)?;
        let mut st = self.shared.lock();
        if !st.recv.take(flow_len) {
            return Err(conn_error((
                frame::FLOW_CONTROL_ERROR,
                "more data than the connection window",
            )));
        }
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(st.received(flow_len, 0)); // a stream already answered or reset: dropped
        };
        let len = data.len();
        let overrun = !s.recv.take(flow_len);
        s.received += len as u64;
        let problem = if s.remote_done {
            Some((frame::STREAM_CLOSED, "data after the end of the stream"))
        } else if overrun {
            Some((frame::FLOW_CONTROL_ERROR, "data past the stream's window"))
        } else if s
            .content_length
            .is_some_and(|cl| s.received > cl || (end_stream && s.received != cl))
        {
            Some((
                frame::PROTOCOL_ERROR,
                "a body that does not match its content-length",
            ))
        } else {
            None
        };
        if let Some((code, _)) = problem {
            st.received(flow_len, 0);
            return stream_error(&mut st, &self.shared, &mut self.wake, id, code);
        }
        let queued = st.received(flow_len, len);
        if flow_len == 0 && !end_stream && st.strike() {
            return Err(calm("empty DATA frames"));
        }
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(queued);
        };
        if len > 0 {
            s.data.push_back(data.to_bytes());
        }
        if end_stream {
            s.remote_done = true;
        }
        self.wake.extend(s.recv_waker.take());
        let padding = flow_len - len;
        Ok((padding > 0 && st.release(Some(id), padding)) || queued)
    }

    fn block_done(&mut self, block: &WholeBlock<'_>) -> Result<bool, ConnError> {
        let (id, end_stream) = (block.stream, block.end_stream);
        self.fields.clear();
        let fields = &mut self.fields;
        self.decoder
            .decode(&block.bytes, |f| fields.push(f))
            .map_err(|e| (frame::COMPRESSION_ERROR, e.to_string()))?;
        let size: usize = self.fields.iter().map(Field::size).sum();
        let mut st = self.shared.lock();
        if let Some(s) = st.streams.get_mut(&id) {
            // Trailers: they end the stream (and its body, which must match its
            // content-length), carry no pseudo-header and fit the header limit.
            let mut trailers = HeaderMap::new();
            let ok = end_stream
                && !s.remote_done
                && size <= self.max_head
                && s.content_length.is_none_or(|cl| cl == s.received)
                && self.fields.iter().all(|f| match &f.name {
                    FieldName::Header(n) if f.valid() && check_field(n, &f.value).is_ok() => {
                        trailers.try_append(n.clone(), f.value.clone()).is_ok()
                    }
                    _ => false,
                });
            if !ok {
                return stream_error(
                    &mut st,
                    &self.shared,
                    &mut self.wake,
                    id,
                    frame::PROTOCOL_ERROR,
                );
            }
            s.trailers = Some(trailers);
            s.remote_done = true;
            self.wake.extend(s.recv_waker.take());
            return Ok(false);
        }
        if id <= st.last_id {
            // Stream ids only go up (RFC 9113 §5.1.1): a request on an old one is a
            // connection error. Anything else is for a stream already answered or reset
            // (its fields were decoded, so the table stays in step).
            if self
                .fields
                .iter()
                .any(|f| matches!(f.name, FieldName::OtherPseudo(_)))
            {
                return Err(conn_error((
                    frame::PROTOCOL_ERROR,
                    "a request on a used stream id",
                )));
            }
            return Ok(false);
        }
        st.last_id = id;
        if st.draining || st.streams.len() >= MAX_STREAMS as usize {
            frame::put_rst(&mut st.out, id, frame::REFUSED_STREAM);
            return Ok(true);
        }
        if size > self.max_head {
            drop(st);
            self.refuse(
                id,
                end_stream,
                http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            );
            return Ok(true);
        }
        let parsed = request(&self.fields)
            .ok()
            .filter(|(_, cl)| !(end_stream && cl.is_some_and(|cl| cl != 0)));
        let Some((request, content_length)) = parsed else {
            frame::put_rst(&mut st.out, id, frame::PROTOCOL_ERROR);
            if st.strike() {
                return Err(calm("malformed requests"));
            }
            return Ok(true);
        };
        let remote_done = end_stream;
        let send_window = st.peer_initial_window;
        st.idle_since = None;
        st.streams.insert(
            id,
            Stream {
                remote_done,
                content_length,
                send_window,
                opened: Some(std::time::Instant::now()),
                ..Stream::default()
            },
        );
        drop(st);
        let body = if remote_done {
            RequestBody::empty()
        } else {
            RequestBody::from(RecvBody::new(Arc::clone(&self.shared), id))
        };
        let head_request = request.method() == Method::HEAD;
        let mut request = request.map(|()| body);
        request
            .extensions_mut()
            .insert(crate::telemetry::RemoteAddr(self.remote));
        let answer = (self.handler)(request);
        let task = tokio::spawn(respond(Arc::clone(&self.shared), id, answer, head_request));
        if let Some(s) = self.shared.lock().streams.get_mut(&id) {
            s.task = Some(task.abort_handle());
        }
        Ok(false)
    }

    /// Answers a stream at once with `status` and no body.
    fn refuse(&mut self, id: u32, request_ended: bool, status: http::StatusCode) {
        let mut st = self.shared.lock();
        let st = &mut *st;
        let mut block = std::mem::take(&mut st.block);
        block.clear();
        st.encoder.begin(&mut block);
        st.encoder.field(
            b":status",
            status.as_str().as_bytes(),
            http_bridge::h2::hpack::Indexing::Yes,
            &mut block,
        );
        st.encoder.field(
            b"content-length",
            b"0",
            http_bridge::h2::hpack::Indexing::Yes,
            &mut block,
        );
        frame::put_block(&mut st.out, st.peer_max_frame, id, &block, true);
        st.block = block;
        if !request_ended {
            frame::put_rst(&mut st.out, id, frame::NO_ERROR);
        }
    }

    fn rst_stream(&mut self, id: u32) -> Result<bool, ConnError> {
        self.check_stream(id)?;
        let mut st = self.shared.lock();
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(false);
        };
        // The client gave up: the handler is dropped, which cancels its upstream call too.
        if let Some(task) = s.task.take() {
            task.abort();
        }
        // Opening streams only to cancel them at once makes us work for nothing (the "rapid
        // reset" attack, CVE-2023-44487); a client cancelling calls it waited on is not that.
        let rapid = !s.answered && s.opened.is_some_and(|t| t.elapsed() < RAPID_RESET);
        s.remote_done = true; // nothing of ours to reset back
        let idle = st.finish(id, None, &mut self.wake);
        let cut = rapid && st.strike();
        drop(st);
        if idle {
            self.shared.wake_reader.notify_one();
        }
        if cut {
            return Err(calm("too many streams cancelled"));
        }
        Ok(true)
    }

    /// Answers a PING; an answer to our stop PING starts the final phase of the stop.
    fn ping(&mut self, ack: bool, data: [u8; 8]) -> bool {
        let mut st = self.shared.lock();
        if ack {
            st.ping_outstanding = false;
            if data == DRAIN_PING && st.stopping && !st.draining {
                st.final_goaway();
                if st.streams.is_empty() {
                    self.shared.wake_reader.notify_one();
                }
                return true;
            }
            return false;
        }
        frame::put_ping(&mut st.out, true, data);
        true
    }

    fn window_update(&mut self, id: u32, increment: i64) -> Result<bool, ConnError> {
        if id == 0 {
            let mut st = self.shared.lock();
            inbound::grow_connection_window(&mut st.send_window, increment).map_err(conn_error)?;
            for s in st.streams.values_mut() {
                self.wake.extend(s.send_waker.take());
            }
            return Ok(false);
        }
        self.check_stream(id)?;
        let mut st = self.shared.lock();
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(false);
        };
        if let Some(code) = inbound::stream_window_error(s.send_window, increment) {
            return stream_error(&mut st, &self.shared, &mut self.wake, id, code);
        }
        s.send_window += increment;
        self.wake.extend(s.send_waker.take());
        Ok(false)
    }
}

/// Resets stream `id` for the client's error: its handler is dropped, the strike counted.
fn stream_error(
    st: &mut super::state::State,
    shared: &Shared,
    wake: &mut Vec<Waker>,
    id: u32,
    code: u32,
) -> Result<bool, ConnError> {
    if let Some(task) = st.streams.get_mut(&id).and_then(|s| s.task.take()) {
        task.abort();
    }
    if st.finish(id, Some(code), wake) {
        shared.wake_reader.notify_one();
    }
    if st.strike() {
        return Err(calm("too many broken streams"));
    }
    Ok(true)
}

fn calm(message: &'static str) -> ConnError {
    conn_error((ENHANCE_YOUR_CALM, message))
}

const ENHANCE_YOUR_CALM: u32 = 11;
/// A stream cancelled younger than this, before any answer, counts as a strike.
const RAPID_RESET: std::time::Duration = std::time::Duration::from_millis(100);
