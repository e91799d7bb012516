//! A request body arriving on an HTTP/2 stream: DATA as the client sends it, then its
//! trailers. Reading it gives the client window back, so a slow handler holds back the
//! client rather than buffering without bound.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame};

use super::state::Shared;
use crate::server::BoxError;

pub struct RecvBody {
    shared: Arc<Shared>,
    id: u32,
    done: bool,
    /// Bytes handed to the reader so far.
    read: u64,
}

impl RecvBody {
    pub(super) fn new(shared: Arc<Shared>, id: u32) -> RecvBody {
        RecvBody {
            shared,
            id,
            done: false,
            read: 0,
        }
    }
}

impl std::fmt::Debug for RecvBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("http2::RecvBody")
            .field("stream", &self.id)
            .finish()
    }
}

impl Body for RecvBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let id = this.id;
        let mut st = this.shared.lock();
        let Some(s) = st.streams.get_mut(&id) else {
            // Reset by the client, or its connection is gone.
            this.done = true;
            return Poll::Ready(Some(Err("the client reset the stream".into())));
        };
        if let Some(data) = s.data.pop_front() {
            this.read += data.len() as u64;
            if st.release(Some(id), data.len()) | st.consumed(data.len()) {
                drop(st);
                this.shared.wake_writer.notify_one();
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(trailers) = s.trailers.take() {
            this.done = true;
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        if s.remote_done {
            this.done = true;
            return Poll::Ready(None);
        }
        if !s
            .recv_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            s.recv_waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Exact when the request said its `content-length` (what is left of it), or once the
    /// client has sent everything: a proxy can then forward the length instead of chunking.
    fn size_hint(&self) -> hyper::body::SizeHint {
        if self.done {
            return hyper::body::SizeHint::with_exact(0);
        }
        let st = self.shared.lock();
        let Some(s) = st.streams.get(&self.id) else {
            return hyper::body::SizeHint::default();
        };
        if let Some(length) = s.content_length {
            return hyper::body::SizeHint::with_exact(length.saturating_sub(self.read));
        }
        if s.remote_done {
            let queued: usize = s.data.iter().map(Bytes::len).sum();
            return hyper::body::SizeHint::with_exact(queued as u64);
        }
        hyper::body::SizeHint::default()
    }

    fn is_end_stream(&self) -> bool {
        self.done
            || self
                .shared
                .lock()
                .streams
                .get(&self.id)
                .is_some_and(|s| s.remote_done && s.data.is_empty() && s.trailers.is_none())
    }
}
