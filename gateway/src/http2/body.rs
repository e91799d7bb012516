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
}

impl RecvBody {
    pub(super) fn new(shared: Arc<Shared>, id: u32) -> RecvBody {
        RecvBody {
            shared,
            id,
            done: false,
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
