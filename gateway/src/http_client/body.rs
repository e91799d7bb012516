//! The response body: bytes already read come out as slices of the read buffer, the rest is
//! read from the connection as the caller asks for it (content-length, chunked, or until the
//! upstream closes). The connection goes back to the pool the moment its last body byte is
//! read — before that frame is even handed on — and is closed if the body is dropped early.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use tokio::net::TcpStream;

use super::pool::Pool;

/// How much spare room a read asks for.
const READ_CHUNK: usize = 8 * 1024;
/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4 * 1024;
/// The most trailer bytes accepted (they are read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;

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
    decode: Decode,
    /// `None` when the connection cannot be reused.
    release: Option<Release>,
    trailer_bytes: usize,
}

/// Body framing still to be read.
#[derive(Debug, Clone, Copy)]
pub enum Decode {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
}

#[derive(Debug, Clone, Copy)]
pub enum Chunk {
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    Trailers,
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
                decode,
                release,
                trailer_bytes: 0,
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

fn broken(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
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

/// The position just past the first CRLF in `buf`, with the line's length limited.
fn line_end(buf: &[u8]) -> io::Result<Option<usize>> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok(Some(i + 2)),
        None if buf.len() > MAX_LINE => Err(broken("a chunk line is too long")),
        None => Ok(None),
    }
}

/// A chunk-size line: 1 to 15 hex digits, then optional whitespace and `;extensions`
/// (no bare CR anywhere). Strict on purpose: leniency on a shared connection invites
/// desynchronisation.
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let invalid = || broken("invalid chunk size");
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 || line.contains(&b'\r') {
        return Err(invalid());
    }
    let mut rest = line[digits..]
        .iter()
        .skip_while(|b| **b == b' ' || **b == b'\t');
    if rest.next().is_some_and(|first| *first != b';') {
        return Err(invalid());
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| invalid())?;
    u64::from_str_radix(text, 16).map_err(|_| invalid())
}

impl Live {
    /// One step of decoding: `Some(frame)` to hand on, `None` to read more, or the end.
    fn step(&mut self) -> io::Result<Step> {
        match self.decode {
            Decode::Length(0) => Ok(Step::End),
            Decode::Length(rest) => Ok(self.take_data(rest).map_or(Step::Read, |(data, left)| {
                self.decode = Decode::Length(left);
                Step::Data(data)
            })),
            Decode::UntilClose => Ok(if self.buf.is_empty() {
                Step::Read
            } else {
                Step::Data(self.buf.split().freeze())
            }),
            Decode::Chunked(Chunk::Size) => {
                let Some(end) = line_end(&self.buf)? else {
                    return Ok(Step::Read);
                };
                let size = chunk_size(&self.buf[..end - 2])?;
                self.buf.advance(end);
                self.decode = Decode::Chunked(if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                });
                Ok(Step::Again)
            }
            Decode::Chunked(Chunk::Data(rest)) => {
                Ok(self.take_data(rest).map_or(Step::Read, |(data, left)| {
                    self.decode = Decode::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    Step::Data(data)
                }))
            }
            Decode::Chunked(Chunk::DataEnd) => {
                if self.buf.len() < 2 {
                    return Ok(Step::Read);
                }
                if &self.buf[..2] != b"\r\n" {
                    return Err(broken("a chunk does not end with CRLF"));
                }
                self.buf.advance(2);
                self.decode = Decode::Chunked(Chunk::Size);
                Ok(Step::Again)
            }
            Decode::Chunked(Chunk::Trailers) => {
                let Some(end) = line_end(&self.buf)? else {
                    return Ok(Step::Read);
                };
                self.buf.advance(end);
                if end == 2 {
                    return Ok(Step::End);
                }
                self.trailer_bytes += end;
                if self.trailer_bytes > MAX_TRAILERS {
                    return Err(broken("the trailers are too large"));
                }
                Ok(Step::Again)
            }
        }
    }

    /// Up to `rest` buffered body bytes, and how many remain after them.
    fn take_data(&mut self, rest: u64) -> Option<(Bytes, u64)> {
        if self.buf.is_empty() {
            return None;
        }
        let n = usize::try_from(rest)
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        Some((self.buf.split_to(n).freeze(), rest - n as u64))
    }
}

enum Step {
    Data(Bytes),
    Read,
    Again,
    End,
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
            let step = match live.step() {
                Ok(step) => step,
                Err(e) => {
                    self.inner = Inner::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            };
            match step {
                Step::Data(data) => {
                    if matches!(live.decode, Decode::Length(0)) {
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
            let until_close = matches!(live.decode, Decode::UntilClose);
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
            Inner::Live(live) => matches!(live.decode, Decode::Length(0)),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Whole(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Inner::Whole(None) | Inner::Done => SizeHint::with_exact(0),
            Inner::Live(live) => match live.decode {
                Decode::Length(rest) => SizeHint::with_exact(rest),
                _ => SizeHint::default(),
            },
        }
    }
}

/// Decodes a chunked body held whole in memory (for tests).
#[cfg(test)]
fn decode_chunked(wire: &[u8]) -> io::Result<Vec<u8>> {
    let mut live = Live {
        // A placeholder stream is never read: every byte is already buffered.
        stream: unreachable_stream()?,
        buf: BytesMut::from(wire),
        decode: Decode::Chunked(Chunk::Size),
        release: None,
        trailer_bytes: 0,
    };
    let mut out = Vec::new();
    loop {
        match live.step()? {
            Step::Data(d) => out.extend_from_slice(&d),
            Step::Again => {}
            Step::End => return Ok(out),
            Step::Read => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short")),
        }
    }
}

#[cfg(test)]
fn unreachable_stream() -> io::Result<TcpStream> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let stream = std::net::TcpStream::connect(listener.local_addr()?)?;
    stream.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let _guard = rt.enter();
    let stream = TcpStream::from_std(stream)?;
    // The runtime must outlive the stream's registration for the test's duration.
    std::mem::forget(rt);
    Ok(stream)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let wire = b"5;ext=1\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
        assert_eq!(decode_chunked(wire).unwrap(), b"hello, world");
        assert_eq!(decode_chunked(b"0\r\n\r\n").unwrap(), b"");
        assert!(decode_chunked(b"zz\r\n").is_err());
        assert!(
            decode_chunked(b"3\r\nabcXY").is_err(),
            "data not followed by CRLF"
        );
        assert!(
            decode_chunked(b"ffffffffffffffff\r\n").is_err(),
            "size overflow"
        );
        assert!(decode_chunked(b"+5\r\nhello\r\n0\r\n\r\n").is_err(), "sign");
        assert!(
            decode_chunked(b" 5\r\nhello\r\n0\r\n\r\n").is_err(),
            "leading space"
        );
        assert!(
            decode_chunked(b"5 x\r\nhello\r\n0\r\n\r\n").is_err(),
            "junk after size"
        );
        assert_eq!(
            decode_chunked(b"5 ;a=b\r\nhello\r\n0\r\n\r\n").unwrap(),
            b"hello"
        );
        assert!(decode_chunked(b"5\r\nhel").is_err(), "cut short");
        let long = vec![b'1'; MAX_LINE + 10];
        assert!(decode_chunked(&long).is_err());
    }
}
