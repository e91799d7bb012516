//! Answering one stream: the handler runs on its own task; its answer's head goes out as
//! HEADERS (with a whole small body in the same turn), a streaming body is pumped under the
//! client's flow control, and trailers end the stream.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{BufMut, Bytes};
use http::{header, HeaderMap, Response, StatusCode};
use http_body_util::BodyExt;
use http_bridge::h2::frame;
use http_bridge::h2::hpack::Indexing;
use hyper::body::{Body as _, Frame};

use super::state::{Shared, State};
use crate::server::Body;

/// How the answer's body starts.
enum First {
    Empty,
    Whole(Bytes),
    Streaming(Option<Frame<Bytes>>),
}

/// Runs the handler and sends its answer on stream `id`.
pub(super) async fn respond(
    shared: Arc<Shared>,
    id: u32,
    answer: Pin<Box<dyn Future<Output = Response<Body>> + Send>>,
    head_request: bool,
) {
    // However this task ends — a panic in the handler or its body included — the stream
    // ends with it; normally it is already gone and this does nothing.
    let _unanswered = Unanswered {
        shared: Arc::clone(&shared),
        id,
    };
    let response = answer.await;
    let (parts, mut body) = response.into_parts();
    let first = if head_request || body.is_end_stream() {
        First::Empty
    } else {
        match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
            Poll::Ready(None) => First::Empty,
            Poll::Ready(Some(Ok(f))) if f.is_data() && body.is_end_stream() => {
                First::Whole(f.into_data().unwrap_or_default())
            }
            Poll::Ready(Some(Ok(f))) => First::Streaming(Some(f)),
            Poll::Ready(Some(Err(_))) => {
                // Nothing was sent yet: the client gets a plain 502 rather than a reset.
                {
                    let mut st = shared.lock();
                    if st.streams.contains_key(&id) {
                        let mut headers = HeaderMap::new();
                        headers.insert(header::CONTENT_LENGTH, http::HeaderValue::from(0));
                        put_head(&mut st, id, StatusCode::BAD_GATEWAY, &headers, true, None);
                    }
                }
                end(&shared, id, None);
                return;
            }
            Poll::Pending => First::Streaming(None),
        }
    };
    let pump = {
        let mut wake = Vec::new();
        let mut st = shared.lock();
        if st.closed || !st.streams.contains_key(&id) {
            return; // reset, or the connection is gone
        }
        let exact = match &first {
            First::Empty if !head_request => Some(0),
            First::Whole(data) => Some(data.len() as u64),
            _ => None,
        };
        let (end, whole, pump) = match first {
            First::Empty => (true, None, None),
            First::Whole(data) => {
                let window = st.send_window.min(st.peer_initial_window);
                if data.len() as i64 <= window && data.len() <= st.peer_max_frame {
                    (false, Some(data), None)
                } else {
                    (false, None, Some(Some(Frame::data(data))))
                }
            }
            First::Streaming(f) => (false, None, Some(f)),
        };
        put_head(&mut st, id, parts.status, &parts.headers, end, exact);
        if let Some(s) = st.streams.get_mut(&id) {
            s.answered = true;
        }
        if let Some(data) = whole {
            frame::put_head(&mut st.out, data.len(), frame::DATA, frame::END_STREAM, id);
            st.out.put_slice(&data);
            st.send_window -= data.len() as i64;
        }
        let idle = if pump.is_none() {
            st.finish(id, None, &mut wake)
        } else {
            false
        };
        drop(st);
        shared.wake_writer.notify_one();
        if idle {
            shared.wake_reader.notify_one();
        }
        wake.into_iter().for_each(Waker::wake);
        pump
    };
    if let Some(pending) = pump {
        pump_body(&shared, id, body, pending).await;
    }
}

/// The answer's HEADERS: `:status`, the handler's fields (less HTTP/1's connection-specific
/// ones), `date`, and `content-length` when the whole body is known.
fn put_head(
    st: &mut State,
    id: u32,
    status: StatusCode,
    headers: &HeaderMap,
    end_stream: bool,
    exact: Option<u64>,
) {
    let st = &mut *st;
    let mut block = std::mem::take(&mut st.block);
    block.clear();
    st.encoder.begin(&mut block);
    st.encoder.field(
        b":status",
        status.as_str().as_bytes(),
        Indexing::Yes,
        &mut block,
    );
    for (name, value) in headers {
        let name = name.as_str();
        if matches!(
            name,
            "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade"
        ) {
            continue;
        }
        st.encoder.field(
            name.as_bytes(),
            value.as_bytes(),
            Indexing::of(name),
            &mut block,
        );
    }
    if !headers.contains_key(header::DATE) {
        crate::http1::response::with_date(|date| {
            st.encoder.field(b"date", date, Indexing::No, &mut block);
        });
    }
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if let Some(len) = exact.filter(|_| !bodiless && !headers.contains_key(header::CONTENT_LENGTH))
    {
        let digits = len.to_string();
        st.encoder.field(
            b"content-length",
            digits.as_bytes(),
            Indexing::No,
            &mut block,
        );
    }
    frame::put_block(&mut st.out, st.peer_max_frame, id, &block, end_stream);
    st.block = block;
}

/// Sends a streaming answer body as the client's windows allow, then END_STREAM (on the last
/// DATA, or with trailers). A body that fails resets the stream (INTERNAL_ERROR).
async fn pump_body(
    shared: &Arc<Shared>,
    id: u32,
    mut body: Body,
    mut pending: Option<Frame<Bytes>>,
) {
    loop {
        let frame = match pending.take() {
            Some(f) => f,
            None => match body.frame().await {
                Some(Ok(f)) => f,
                Some(Err(e)) => {
                    // A provider's reset is passed on with its code (a gRPC client reads
                    // CANCEL, REFUSED_STREAM, ENHANCE_YOUR_CALM as distinct statuses).
                    let code = e
                        .downcast_ref::<http_bridge::h2::ClientError>()
                        .and_then(http_bridge::h2::ClientError::reset_code)
                        .filter(|&c| c != frame::NO_ERROR)
                        .unwrap_or(frame::INTERNAL_ERROR);
                    end(shared, id, Some(code));
                    return;
                }
                None => {
                    let mut empty = Bytes::new();
                    if let Ok(true) =
                        poll_fn(|cx| send_data(shared, id, &mut empty, true, cx)).await
                    {
                        end(shared, id, None);
                    }
                    return;
                }
            },
        };
        match frame.into_data() {
            Ok(mut data) => {
                let ended = body.is_end_stream();
                while !data.is_empty() || ended {
                    match poll_fn(|cx| send_data(shared, id, &mut data, ended, cx)).await {
                        Err(()) => return,
                        Ok(true) => {
                            end(shared, id, None);
                            return;
                        }
                        Ok(false) => {}
                    }
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    let mut st = shared.lock();
                    if st.closed || !st.streams.contains_key(&id) {
                        return;
                    }
                    let st = &mut *st;
                    st.encoder.put_trailers(
                        &trailers,
                        &mut st.block,
                        &mut st.out,
                        st.peer_max_frame,
                        id,
                    );
                }
                end(shared, id, None);
                return;
            }
        }
    }
}

/// Ends the stream (INTERNAL_ERROR) if its task ends without answering.
struct Unanswered {
    shared: Arc<Shared>,
    id: u32,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if self.shared.lock().streams.contains_key(&self.id) {
            end(&self.shared, self.id, Some(frame::INTERNAL_ERROR));
        }
    }
}

/// The stream is done on our side.
fn end(shared: &Shared, id: u32, code: Option<u32>) {
    let mut wake = Vec::new();
    let idle = shared.lock().finish(id, code, &mut wake);
    shared.wake_writer.notify_one();
    if idle {
        shared.wake_reader.notify_one();
    }
    wake.into_iter().for_each(Waker::wake);
}

/// Sends what the windows allow of `data`: `Ok(true)` once END_STREAM is queued, `Err` when
/// the stream or connection is gone.
fn send_data(
    shared: &Shared,
    id: u32,
    data: &mut Bytes,
    ended: bool,
    cx: &mut Context<'_>,
) -> Poll<Result<bool, ()>> {
    let mut st = shared.lock();
    let st = &mut *st;
    if st.closed {
        return Poll::Ready(Err(()));
    }
    let (conn_window, max_frame) = (st.send_window, st.peer_max_frame);
    let Some(s) = st.streams.get_mut(&id) else {
        return Poll::Ready(Err(()));
    };
    let n = if data.is_empty() {
        0
    } else {
        let avail = conn_window.min(s.send_window).min(max_frame as i64);
        if avail <= 0 {
            if !s
                .send_waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                s.send_waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        (avail as usize).min(data.len())
    };
    let chunk = data.split_to(n);
    let end = data.is_empty() && ended;
    s.send_window -= n as i64;
    st.send_window -= n as i64;
    frame::put_head(
        &mut st.out,
        n,
        frame::DATA,
        if end { frame::END_STREAM } else { 0 },
        id,
    );
    st.out.put_slice(&chunk);
    shared.wake_writer.notify_one();
    Poll::Ready(Ok(end))
}
