//! The client's frames: new streams become requests (each answered on its own task), DATA
//! and trailers feed request bodies, and the control frames do what RFC 9113 says. A
//! malformed request resets its stream; a broken connection gets GOAWAY with the error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Waker;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Method};
use http_bridge::h2::frame::{self, Head};
use http_bridge::h2::hpack::{Decoder, Field, FieldName};

use super::body::RecvBody;
use super::request::{check_field, request};
use super::respond::respond;
use super::state::{Shared, Stream, DRAIN_PING, MAX_STREAMS};
use crate::http1::body::RequestBody;
use crate::server::Handler;

/// The largest frame we accept (our SETTINGS_MAX_FRAME_SIZE: the default).
const MAX_FRAME: usize = frame::DEFAULT_MAX_FRAME as usize;
/// DATA smaller than this is copied out of the read buffer, so the buffer is reused in place.
const COPY_BELOW: usize = 4096;

/// A connection error: the GOAWAY code and why.
pub(super) type ConnError = (u32, String);

fn conn_error(code: u32, message: &str) -> ConnError {
    (code, message.to_owned())
}

struct Block {
    stream: u32,
    end_stream: bool,
    bytes: BytesMut,
}

pub(super) struct Reader {
    pub shared: Arc<Shared>,
    pub handler: Handler,
    pub remote: SocketAddr,
    pub max_head: usize,
    decoder: Decoder,
    block: Option<Block>,
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
            block: None,
            fields: Vec::new(),
            wake: Vec::new(),
        }
    }

    /// Handles every complete frame in `buf`.
    pub fn frames(&mut self, buf: &mut BytesMut) -> Result<(), ConnError> {
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
            frame::GOAWAY => {
                // The client opens no more streams: close once the last one is answered.
                let mut st = self.shared.lock();
                st.draining = true;
                if st.streams.is_empty() {
                    self.shared.wake_reader.notify_one();
                }
                Ok(false)
            }
            frame::WINDOW_UPDATE => self.window_update(head, payload),
            frame::PUSH_PROMISE => Err(conn_error(frame::PROTOCOL_ERROR, "a client may not push")),
            _ => Ok(false), // PRIORITY and unknown types are ignored
        }
    }

    /// Stream frames need a client stream id; one above any opened is an idle stream.
    fn check_stream(&self, id: u32) -> Result<(), ConnError> {
        if id == 0 || id % 2 == 0 {
            return Err(conn_error(
                frame::PROTOCOL_ERROR,
                "a frame on stream 0 or a server stream",
            ));
        }
        if id > self.shared.lock().last_id {
            return Err(conn_error(
                frame::PROTOCOL_ERROR,
                "a frame on an idle stream",
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
        self.check_stream(head.stream)?;
        let (start, end) = frame::unpad(&head, payload)
            .ok_or_else(|| conn_error(frame::PROTOCOL_ERROR, "padding longer than its frame"))?;
        let mut st = self.shared.lock();
        if !st.recv.take(head.len) {
            return Err(conn_error(
                frame::FLOW_CONTROL_ERROR,
                "more data than the connection window",
            ));
        }
        let id = head.stream;
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(st.received(head.len, 0)); // a stream already answered or reset: dropped
        };
        let len = end - start;
        let overrun = !s.recv.take(head.len);
        s.received += len as u64;
        let problem = if s.remote_done {
            Some((frame::STREAM_CLOSED, "data after the end of the stream"))
        } else if overrun {
            Some((frame::FLOW_CONTROL_ERROR, "data past the stream's window"))
        } else if s
            .content_length
            .is_some_and(|cl| s.received > cl || (head.has(frame::END_STREAM) && s.received != cl))
        {
            Some((
                frame::PROTOCOL_ERROR,
                "a body that does not match its content-length",
            ))
        } else {
            None
        };
        if let Some((code, _)) = problem {
            st.received(head.len, 0);
            return stream_error(&mut st, &self.shared, &mut self.wake, id, code);
        }
        let queued = st.received(head.len, len);
        if head.len == 0 && !head.has(frame::END_STREAM) && st.strike() {
            return Err(calm("empty DATA frames"));
        }
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(queued);
        };
        if len > 0 {
            s.data.push_back(match shared_payload {
                Some(p) => p.slice(start..end),
                None => Bytes::copy_from_slice(&payload[start..end]),
            });
        }
        if head.has(frame::END_STREAM) {
            s.remote_done = true;
        }
        self.wake.extend(s.recv_waker.take());
        let padding = head.len - len;
        Ok((padding > 0 && st.release(Some(id), padding)) || queued)
    }

    fn headers(&mut self, head: Head, payload: &[u8]) -> Result<bool, ConnError> {
        if head.stream == 0 || head.stream % 2 == 0 {
            return Err(conn_error(
                frame::PROTOCOL_ERROR,
                "HEADERS on stream 0 or a server stream",
            ));
        }
        let (mut start, end) = frame::unpad(&head, payload)
            .ok_or_else(|| conn_error(frame::PROTOCOL_ERROR, "padding longer than its frame"))?;
        if head.has(frame::PRIORITY) {
            start += 5;
            if start > end {
                return Err(conn_error(
                    frame::FRAME_SIZE_ERROR,
                    "HEADERS too short for its priority",
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
        if payload.is_empty() && !head.has(frame::END_HEADERS) && self.shared.lock().strike() {
            return Err(calm("empty CONTINUATION frames"));
        }
        let Some(mut block) = self.block.take() else {
            return Err(conn_error(
                frame::PROTOCOL_ERROR,
                "CONTINUATION without HEADERS",
            ));
        };
        // Beyond twice the header limit, the block is not worth decoding.
        if block.bytes.len() + payload.len() > 2 * self.max_head + 1024 {
            return Err(conn_error(
                frame::PROTOCOL_ERROR,
                "a header block far over the limit",
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

    fn block_done(&mut self, id: u32, end_stream: bool, block: &[u8]) -> Result<bool, ConnError> {
        self.fields.clear();
        let fields = &mut self.fields;
        self.decoder
            .decode(block, |f| fields.push(f))
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
                return Err(conn_error(
                    frame::PROTOCOL_ERROR,
                    "a request on a used stream id",
                ));
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

    fn rst_stream(&mut self, head: Head, payload: &[u8]) -> Result<bool, ConnError> {
        self.check_stream(head.stream)?;
        if payload.len() != 4 {
            return Err(conn_error(
                frame::FRAME_SIZE_ERROR,
                "a RST_STREAM that is not 4 bytes",
            ));
        }
        let mut st = self.shared.lock();
        let id = head.stream;
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
            if data == DRAIN_PING && st.stopping && !st.draining {
                st.final_goaway();
                if st.streams.is_empty() {
                    self.shared.wake_reader.notify_one();
                }
                return Ok(true);
            }
            return Ok(false);
        }
        frame::put_ping(&mut st.out, true, data);
        Ok(true)
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
        if head.stream == 0 {
            let mut st = self.shared.lock();
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
        self.check_stream(head.stream)?;
        let mut st = self.shared.lock();
        let id = head.stream;
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(false);
        };
        if increment == 0 || s.send_window + increment > frame::MAX_WINDOW {
            let code = if increment == 0 {
                frame::PROTOCOL_ERROR
            } else {
                frame::FLOW_CONTROL_ERROR
            };
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

fn calm(message: &str) -> ConnError {
    conn_error(ENHANCE_YOUR_CALM, message)
}

const ENHANCE_YOUR_CALM: u32 = 11;
/// A stream cancelled younger than this, before any answer, counts as a strike.
const RAPID_RESET: std::time::Duration = std::time::Duration::from_millis(100);
