//! The response body: bytes already read come out as slices of the read buffer, the rest is
//! read from the connection as the caller asks for it (content-length, chunked, or until the
//! upstream closes). The connection goes back to the pool the moment its last body byte is
//! read — before that frame is even handed on — and is closed if the body is dropped early.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use tokio::net::TcpStream;

use super::pool::Pool;
pub use crate::http1::framing::{Chunk, Decode};
use crate::http1::framing::{Decoder, Step};

/// How much spare room a read asks for.
const READ_CHUNK: usize = 8 * 1024;

/// Where a connection goes once its response has been read to the end.
#[derive(Debug)]
pub struct Release {
    pub pool: Arc<Pool>,
    pub endpoint: usize,
}

impl Release {
    pub fn give_back(self, stream: TcpStream) {
        self.pool.put(self.endpoint, stream);
    }
}

/// A proxied response body.
#[derive(Debug)]
pub struct UpstreamBody {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    /// Everything was in the first read; the connection is already back in the pool.
    Whole(Option<Bytes>),
    Live(Box<Live>),
    Done,
}

#[derive(Debug)]
struct Live {
    stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
    /// `None` when the connection cannot be reused.
    release: Option<Release>,
}

impl UpstreamBody {
    pub fn whole(bytes: Bytes) -> UpstreamBody {
        UpstreamBody {
            inner: Inner::Whole((!bytes.is_empty()).then_some(bytes)),
        }
    }

    pub fn live(
        stream: TcpStream,
        buf: BytesMut,
        decode: Decode,
        release: Option<Release>,
    ) -> UpstreamBody {
        UpstreamBody {
            inner: Inner::Live(Box::new(Live {
                stream,
                buf,
                decoder: Decoder::new(decode),
                release,
            })),
        }
    }

    /// Ends the body; a connection read cleanly to the end goes back to the pool.
    fn finish(&mut self) {
        if let Inner::Live(live) = std::mem::replace(&mut self.inner, Inner::Done) {
            let live = *live;
            if let (Some(release), true) = (live.release, live.buf.is_empty()) {
                release.give_back(live.stream);
            }
        }
    }
}

/// Reads more bytes into `buf`: the count, 0 at end of stream.
fn poll_fill(
    stream: &TcpStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    loop {
        ready!(stream.poll_read_ready(cx))?;
        match stream.try_read_buf(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return Poll::Ready(other),
        }
    }
}

impl hyper::body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        loop {
            let live = match &mut self.inner {
                Inner::Whole(bytes) => {
                    let bytes = bytes.take();
                    self.inner = Inner::Done;
                    return Poll::Ready(bytes.map(|b| Ok(Frame::data(b))));
                }
                Inner::Done => return Poll::Ready(None),
                Inner::Live(live) => live,
            };
            let step = match live.decoder.step(&mut live.buf) {
                Ok(step) => step,
                Err(e) => {
                    self.inner = Inner::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            };
            match step {
                Step::Data(data) => {
                    if live.decoder.is_done() {
                        self.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Step::Again => continue,
                Step::End => {
                    self.finish();
                    return Poll::Ready(None);
                }
                Step::Read => {}
            }
            let until_close = matches!(live.decoder.decode(), Decode::UntilClose);
            match ready!(poll_fill(&live.stream, &mut live.buf, cx)) {
                Ok(0) if until_close => {
                    self.inner = Inner::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    self.inner = Inner::Done;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the upstream closed the connection in the middle of the body",
                    ))));
                }
                Ok(_) => {}
                Err(e) => {
                    self.inner = Inner::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Whole(bytes) => bytes.is_none(),
            Inner::Done => true,
            Inner::Live(live) => live.decoder.is_done(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Whole(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Inner::Whole(None) | Inner::Done => SizeHint::with_exact(0),
            Inner::Live(live) => live
                .decoder
                .remaining()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}
