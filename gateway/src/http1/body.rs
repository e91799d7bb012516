//! The request body a handler sees. An HTTP/1 body that came whole with its head (the usual
//! small POST) is a slice of the read buffer, with no channel and no task. A larger one is read
//! by the connection only once the handler asks for it — that first ask is also when
//! `100 Continue` goes out — and arrives through a small channel, so a slow handler holds
//! back the client instead of buffering. An HTTP/2 stream's body comes from
//! [`crate::http2`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{mpsc, Notify};

use crate::server::BoxError;

/// What the connection sends down a streamed body.
#[derive(Debug)]
pub enum Item {
    Data(Bytes),
    End,
    Error(String),
}

/// A request body.
#[derive(Debug)]
pub struct RequestBody {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Whole(Option<Bytes>),
    Streamed(Box<Streamed>),
    H2(crate::http2::RecvBody),
    Done,
}

#[derive(Debug)]
struct Streamed {
    items: mpsc::Receiver<Item>,
    /// Told once, on the first ask: the connection starts reading (and says `100 Continue`).
    wanted: Arc<Notify>,
    asked: bool,
    /// Bytes still to come, when the framing says.
    remaining: Option<u64>,
}

impl RequestBody {
    pub fn empty() -> RequestBody {
        RequestBody {
            inner: Inner::Whole(None),
        }
    }

    pub fn whole(bytes: Bytes) -> RequestBody {
        RequestBody {
            inner: Inner::Whole((!bytes.is_empty()).then_some(bytes)),
        }
    }

    pub fn streamed(
        items: mpsc::Receiver<Item>,
        wanted: Arc<Notify>,
        remaining: Option<u64>,
    ) -> RequestBody {
        RequestBody {
            inner: Inner::Streamed(Box::new(Streamed {
                items,
                wanted,
                asked: false,
                remaining,
            })),
        }
    }
}

impl From<crate::http2::RecvBody> for RequestBody {
    fn from(body: crate::http2::RecvBody) -> RequestBody {
        RequestBody {
            inner: Inner::H2(body),
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let streamed = match &mut self.inner {
            Inner::Whole(bytes) => {
                let bytes = bytes.take();
                self.inner = Inner::Done;
                return Poll::Ready(bytes.map(|b| Ok(Frame::data(b))));
            }
            Inner::H2(body) => return Pin::new(body).poll_frame(cx),
            Inner::Done => return Poll::Ready(None),
            Inner::Streamed(streamed) => streamed,
        };
        if streamed.remaining == Some(0) {
            // All announced bytes are in: nothing more comes on the channel.
            self.inner = Inner::Done;
            return Poll::Ready(None);
        }
        if !streamed.asked {
            streamed.asked = true;
            streamed.wanted.notify_one();
        }
        let item = ready!(streamed.items.poll_recv(cx));
        let frame = match item {
            Some(Item::Data(data)) => {
                if let Some(rest) = &mut streamed.remaining {
                    *rest = rest.saturating_sub(data.len() as u64);
                }
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            Some(Item::End) => None,
            Some(Item::Error(e)) => Some(Err(e.into())),
            // The connection went away without saying the body ended.
            None => Some(Err("the request body was cut short".into())),
        };
        self.inner = Inner::Done;
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Whole(bytes) => bytes.is_none(),
            Inner::Streamed(streamed) => streamed.remaining == Some(0),
            Inner::H2(body) => body.is_end_stream(),
            Inner::Done => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Whole(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Inner::Whole(None) | Inner::Done => SizeHint::with_exact(0),
            Inner::Streamed(streamed) => streamed
                .remaining
                .map_or_else(SizeHint::default, SizeHint::with_exact),
            Inner::H2(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_streamed_body_asks_once_and_ends_only_when_told() {
        let (tx, rx) = mpsc::channel(2);
        let wanted = Arc::new(Notify::new());
        let body = RequestBody::streamed(rx, Arc::clone(&wanted), Some(5));
        assert_eq!(body.size_hint().exact(), Some(5));
        let reader = tokio::spawn(body.collect());
        wanted.notified().await;
        tx.send(Item::Data(Bytes::from_static(b"hel")))
            .await
            .unwrap();
        tx.send(Item::Data(Bytes::from_static(b"lo")))
            .await
            .unwrap();
        let bytes = reader.await.unwrap().unwrap().to_bytes();
        assert_eq!(
            &bytes[..],
            b"hello",
            "a body of known length ends with its last byte"
        );
        drop(tx);

        let (tx, rx) = mpsc::channel(2);
        let body = RequestBody::streamed(rx, Arc::new(Notify::new()), None);
        tx.send(Item::Data(Bytes::from_static(b"chunk")))
            .await
            .unwrap();
        tx.send(Item::End).await.unwrap();
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"chunk");

        let (tx, rx) = mpsc::channel(2);
        let body = RequestBody::streamed(rx, Arc::new(Notify::new()), None);
        tx.send(Item::Data(Bytes::from_static(b"part")))
            .await
            .unwrap();
        drop(tx);
        assert!(
            body.collect().await.is_err(),
            "a body whose connection went away mid-way is an error, not a short success"
        );
    }
}
