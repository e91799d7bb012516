//! One call on a connection: its HEADERS (with a whole small message in the same turn), the
//! request body pumped under flow control when it streams, and the answer's body.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{BufMut, Bytes};
use http::request::Parts;
use http::{HeaderMap, Response, Version};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame};

use super::conn::{Shared, State, Stream};
use super::frame;
use super::hpack::Indexing;
use super::ClientError;
use crate::triple::Body;

/// How the request body starts.
enum First {
    /// No body: the HEADERS end the stream.
    Empty,
    /// The whole body, already here.
    Whole(Bytes),
    /// A body still arriving, with its first frame if it came at once.
    Streaming(Option<Frame<Bytes>>),
}

/// A request on its way out.
pub(super) struct Outgoing {
    parts: Parts,
    body: Option<Body>,
    first: Option<First>,
    sent: bool,
    /// A whole body (a reference-counted copy), so the call can be sent again.
    whole: Option<Bytes>,
}

impl Outgoing {
    /// Takes the request, looking once at its body: a body that is all there (a unary call's
    /// one message) goes out with the HEADERS, with no task to pump it.
    pub async fn new(parts: Parts, mut body: Body) -> Result<Outgoing, ClientError> {
        let first = if body.is_end_stream() {
            First::Empty
        } else {
            match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
                Poll::Ready(None) => First::Empty,
                Poll::Ready(Some(Err(e))) => {
                    return Err(ClientError::lost(format!("the request body failed: {e}")))
                }
                Poll::Ready(Some(Ok(frame))) if frame.is_data() && body.is_end_stream() => {
                    First::Whole(frame.into_data().unwrap_or_default())
                }
                Poll::Ready(Some(Ok(frame))) => First::Streaming(Some(frame)),
                Poll::Pending => First::Streaming(None),
            }
        };
        let whole = match &first {
            First::Whole(data) => Some(data.clone()),
            First::Empty => Some(Bytes::new()),
            First::Streaming(_) => None,
        };
        Ok(Outgoing {
            parts,
            body: Some(body),
            first: Some(first),
            sent: false,
            whole,
        })
    }

    /// Makes the call ready to go again, if it can be: not yet sent, or sent with a whole
    /// body (a streamed one is gone).
    pub fn rewind(&mut self) -> bool {
        if !self.sent {
            return true;
        }
        let Some(data) = self.whole.clone() else {
            return false;
        };
        self.first = Some(if data.is_empty() {
            First::Empty
        } else {
            First::Whole(data)
        });
        self.sent = false;
        true
    }
}

/// Opens the stream and waits for the answer's head.
pub(super) async fn open(
    conn: &Arc<Shared>,
    outgoing: &mut Outgoing,
) -> Result<Response<RecvBody>, ClientError> {
    let (id, pump) = poll_fn(|cx| {
        let mut st = conn.lock();
        if let Some(e) = &st.failed {
            return Poll::Ready(Err(ClientError::not_processed(format!(
                "the connection had failed: {e}"
            ))));
        }
        if !conn.is_open() {
            return Poll::Ready(Err(ClientError::not_processed(
                "the connection is going away",
            )));
        }
        if st.active >= st.peer_max_streams {
            st.slot_waiters.push(cx.waker().clone());
            return Poll::Pending;
        }
        let id = st.next_id;
        st.next_id += 2;
        if st.next_id > 0x7fff_ffff {
            // Ids used up: later calls, and those waiting for a slot here, get a new
            // connection.
            conn.close_to_new_streams();
            st.slot_waiters.drain(..).for_each(Waker::wake);
        }
        Poll::Ready(Ok((id, start(&mut st, id, outgoing))))
    })
    .await?;
    outgoing.sent = true;
    conn.wake_writer.notify_one();
    // From here on, dropping the call resets the stream.
    let stream = StreamRef {
        conn: Arc::clone(conn),
        id,
    };
    if let Some(first) = pump {
        // The body is there until the first stream takes it; a call sent again has a whole
        // body, already ended, so an empty one stands in.
        let body = outgoing.body.take().unwrap_or_else(|| {
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed()
        });
        tokio::spawn(pump_body(Arc::clone(conn), id, body, first));
    }
    let (head, empty) = poll_fn(|cx| {
        let mut st = conn.lock();
        let Some(s) = st.streams.get_mut(&id) else {
            return Poll::Ready(Err(ClientError::lost("the stream is gone")));
        };
        if let Some(head) = s.head.take() {
            // A trailers-only answer (HEADERS with END_STREAM) has no body at all: saying so
            // up front lets a proxy end its own stream with the head too.
            let empty =
                s.remote_done && s.data.is_empty() && s.trailers.is_none() && s.error.is_none();
            return Poll::Ready(Ok((head, empty)));
        }
        if let Some(e) = &s.error {
            return Poll::Ready(Err(e.clone()));
        }
        register(&mut s.recv_waker, cx);
        Poll::Pending
    })
    .await?;
    let mut response = Response::new(RecvBody {
        stream,
        done: empty,
    });
    *response.status_mut() = head.status;
    *response.headers_mut() = head.headers;
    *response.version_mut() = Version::HTTP_2;
    Ok(response)
}

fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *slot = Some(cx.waker().clone());
    }
}

/// Writes the HEADERS (and a whole body that fits the windows) and registers the stream.
/// Returns the first frame for the pump when the body still has to be sent.
fn start(st: &mut State, id: u32, outgoing: &mut Outgoing) -> Option<Option<Frame<Bytes>>> {
    let parts = &outgoing.parts;
    let mut block = std::mem::take(&mut st.block);
    block.clear();
    st.encoder.begin(&mut block);
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = parts.uri.authority().map_or("", |a| a.as_str());
    for (name, value) in [
        (":method", parts.method.as_str()),
        (":scheme", "http"),
        (":authority", authority),
        (":path", path),
    ] {
        st.encoder
            .field(name.as_bytes(), value.as_bytes(), Indexing::Yes, &mut block);
    }
    for (name, value) in &parts.headers {
        let name = name.as_str();
        match name {
            // Connection-specific fields have no place in HTTP/2; TE may only say trailers.
            "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade"
            | "host" => continue,
            "te" if value != "trailers" => continue,
            _ => {}
        }
        st.encoder.field(
            name.as_bytes(),
            value.as_bytes(),
            Indexing::of(name),
            &mut block,
        );
    }
    let first = outgoing.first.take().unwrap_or(First::Empty);
    let window = st.send_window.min(st.peer_initial_window);
    let (end_on_headers, whole, pump) = match first {
        First::Empty => (true, None, None),
        First::Whole(data) if data.len() as i64 <= window && data.len() <= st.peer_max_frame => {
            (false, Some(data), None)
        }
        First::Whole(data) => (false, None, Some(Some(Frame::data(data)))),
        First::Streaming(frame) => (false, None, Some(frame)),
    };
    frame::put_block(&mut st.out, st.peer_max_frame, id, &block, end_on_headers);
    st.block = block;
    let mut stream = Stream {
        send_window: st.peer_initial_window,
        counted: true,
        local_done: end_on_headers,
        ..Stream::default()
    };
    if let Some(data) = whole {
        frame::put_head(&mut st.out, data.len(), frame::DATA, frame::END_STREAM, id);
        st.out.put_slice(&data);
        st.send_window -= data.len() as i64;
        stream.send_window -= data.len() as i64;
        stream.local_done = true;
    }
    st.streams.insert(id, stream);
    st.active += 1;
    pump
}

/// Sends a streaming request body: each frame as the windows allow, then END_STREAM (on the
/// last DATA, or with trailers). Stops when the call is dropped or the stream ends.
async fn pump_body(conn: Arc<Shared>, id: u32, mut body: Body, mut pending: Option<Frame<Bytes>>) {
    loop {
        let frame = match pending.take() {
            Some(frame) => frame,
            None => match body.frame().await {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => {
                    let mut wake = Vec::new();
                    let error = ClientError::lost(format!("the request body failed: {e}"));
                    conn.lock().reset(id, frame::CANCEL, error, &mut wake);
                    conn.wake_writer.notify_one();
                    wake.into_iter().for_each(Waker::wake);
                    return;
                }
                None => {
                    let mut empty = Bytes::new();
                    let _ = poll_fn(|cx| send_data(&conn, id, &mut empty, true, cx)).await;
                    return;
                }
            },
        };
        match frame.into_data() {
            Ok(mut data) => {
                let ended = body.is_end_stream();
                while !data.is_empty() || ended {
                    match poll_fn(|cx| send_data(&conn, id, &mut data, ended, cx)).await {
                        Err(()) | Ok(true) => return,
                        Ok(false) => {}
                    }
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    send_trailers(&conn, id, &trailers);
                    return;
                }
            }
        }
    }
}

/// Sends as much of `data` as the windows allow. `Ok(true)` once END_STREAM is sent, `Err`
/// when the stream is gone (reset, dropped, or the connection failed).
fn send_data(
    conn: &Shared,
    id: u32,
    data: &mut Bytes,
    ended: bool,
    cx: &mut Context<'_>,
) -> Poll<Result<bool, ()>> {
    let mut st = conn.lock();
    let st = &mut *st;
    if st.failed.is_some() {
        return Poll::Ready(Err(()));
    }
    let (conn_window, max_frame) = (st.send_window, st.peer_max_frame);
    let Some(s) = st.streams.get_mut(&id) else {
        return Poll::Ready(Err(()));
    };
    if s.local_done {
        return Poll::Ready(Err(()));
    }
    let n = if data.is_empty() {
        0
    } else {
        let avail = conn_window.min(s.send_window).min(max_frame as i64);
        if avail <= 0 {
            register(&mut s.send_waker, cx);
            return Poll::Pending;
        }
        (avail as usize).min(data.len())
    };
    let chunk = data.split_to(n);
    let end = data.is_empty() && ended;
    s.send_window -= n as i64;
    if end {
        s.local_done = true;
    }
    st.send_window -= n as i64;
    frame::put_head(
        &mut st.out,
        n,
        frame::DATA,
        if end { frame::END_STREAM } else { 0 },
        id,
    );
    st.out.put_slice(&chunk);
    let mut wake = Vec::new();
    if end {
        st.settle(id, &mut wake);
    }
    conn.wake_writer.notify_one();
    wake.into_iter().for_each(Waker::wake);
    Poll::Ready(Ok(end))
}

fn send_trailers(conn: &Shared, id: u32, trailers: &HeaderMap) {
    let mut wake = Vec::new();
    {
        let mut st = conn.lock();
        let st = &mut *st;
        if st.failed.is_some() || st.streams.get(&id).is_none_or(|s| s.local_done) {
            return;
        }
        st.encoder
            .put_trailers(trailers, &mut st.block, &mut st.out, st.peer_max_frame, id);
        if let Some(s) = st.streams.get_mut(&id) {
            s.local_done = true;
        }
        st.settle(id, &mut wake);
    }
    conn.wake_writer.notify_one();
    wake.into_iter().for_each(Waker::wake);
}

/// The caller's hold on a stream. Dropping it before the stream has ended both ways resets
/// the stream (CANCEL), so a provider stops working on a call nobody waits for.
struct StreamRef {
    conn: Arc<Shared>,
    id: u32,
}

impl Drop for StreamRef {
    fn drop(&mut self) {
        let mut wake = Vec::new();
        {
            let mut st = self.conn.lock();
            let Some(mut s) = st.streams.remove(&self.id) else {
                return;
            };
            if !(s.local_done && s.remote_done) && st.failed.is_none() {
                frame::put_rst(&mut st.out, self.id, frame::CANCEL);
            }
            if s.counted {
                st.active -= 1;
                wake.append(&mut st.slot_waiters);
            }
            wake.extend(s.send_waker.take());
            // Messages nobody will read no longer count against the connection's budget.
            st.consumed(s.data.iter().map(Bytes::len).sum());
        }
        self.conn.wake_writer.notify_one();
        wake.into_iter().for_each(Waker::wake);
    }
}

/// The body of an answer: its messages as they arrive, then its trailers.
pub struct RecvBody {
    stream: StreamRef,
    done: bool,
}

impl std::fmt::Debug for RecvBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBody")
            .field("stream", &self.stream.id)
            .finish()
    }
}

impl hyper::body::Body for RecvBody {
    type Data = Bytes;
    type Error = ClientError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let id = this.stream.id;
        let mut st = this.stream.conn.lock();
        let Some(s) = st.streams.get_mut(&id) else {
            this.done = true;
            return Poll::Ready(None);
        };
        if let Some(data) = s.data.pop_front() {
            if st.release(Some(id), data.len()) | st.consumed(data.len()) {
                drop(st);
                this.stream.conn.wake_writer.notify_one();
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(trailers) = s.trailers.take() {
            this.done = true;
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        if let Some(e) = &s.error {
            this.done = true;
            return Poll::Ready(Some(Err(e.clone())));
        }
        if s.remote_done {
            this.done = true;
            return Poll::Ready(None);
        }
        register(&mut s.recv_waker, cx);
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
