//! Writing an answer's body with its head, framed: as few writes as the frames allow (the head
//! goes with the first data, a chunked body's end with its last data), but never holding back
//! what is ready — when the next frame is not there yet, what is at hand goes out first (a
//! slow upstream's head, server-sent events). While it waits for frames, a streamed request
//! body keeps being read for the handler.

use std::io::{self, IoSlice, Write as _};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::{Body as _, Frame};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::pump::Pump;
use super::response::Framing;
use crate::server::{Body, BoxError};

/// How long one write may wait for the client to read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// How writing an answer went.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// Everything, as framed: the connection can carry another request.
    Complete,
    /// Cut short (the body failed or lied about its length, or HTTP/1.0 until close).
    Incomplete,
    /// The body failed before anything was written: an error answer can still be sent.
    NothingSent,
}

type Next = Option<Result<Frame<Bytes>, BoxError>>;

/// Writes the head in `out` and `body`; `pump` (with the connection's read buffer `buf`) feeds
/// a request body still streaming.
pub async fn answer<IO>(
    io: &mut IO,
    out: &[u8],
    body: Body,
    framing: Framing,
    mut pump: Option<&mut Pump>,
    buf: &mut BytesMut,
) -> io::Result<Sent>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    if framing == Framing::None {
        write(io, &mut [IoSlice::new(out)]).await?;
        return Ok(Sent::Complete);
    }
    let mut body = std::pin::pin!(body);
    let mut writer = Writer {
        head: out,
        framing,
        written: 0,
    };
    // A data frame held back to go out with what follows it.
    let mut held: Option<Bytes> = None;
    loop {
        let next = match poll_now(body.as_mut()) {
            Poll::Ready(next) => next,
            Poll::Pending => {
                // Nothing more right now: send what is at hand, then wait.
                writer.send(io, held.take(), false).await?;
                next_frame(body.as_mut(), &mut pump, io, buf).await
            }
        };
        match next {
            Some(Ok(frame)) => {
                // Trailers are not passed on over HTTP/1; empty frames carry nothing.
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        if let Some(previous) = held.replace(data) {
                            writer.send(io, Some(previous), false).await?;
                        }
                    }
                }
            }
            Some(Err(_)) if writer.nothing_sent() => return Ok(Sent::NothingSent),
            Some(Err(_)) => return Ok(Sent::Incomplete),
            None => {
                writer.send(io, held.take(), true).await?;
                return Ok(writer.outcome());
            }
        }
        if matches!(framing, Framing::Length(n) if writer.written + held.as_ref().map_or(0, |d| d.len() as u64) > n)
        {
            // More body than announced: the answer cannot be framed as promised.
            return Ok(Sent::Incomplete);
        }
    }
}

/// Polls the body once without waiting.
fn poll_now(body: Pin<&mut Body>) -> Poll<Next> {
    body.poll_frame(&mut Context::from_waker(Waker::noop()))
}

/// Waits for the next frame, reading a streamed request body meanwhile.
async fn next_frame<IO>(
    mut body: Pin<&mut Body>,
    pump: &mut Option<&mut Pump>,
    io: &mut IO,
    buf: &mut BytesMut,
) -> Next
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    use http_body_util::BodyExt;
    let Some(pump) = pump else {
        return body.frame().await;
    };
    loop {
        tokio::select! {
            biased;
            next = body.frame() => return next,
            () = pump.step(io, buf), if pump.is_active() => {}
        }
    }
}

struct Writer<'a> {
    /// The head, until it is written.
    head: &'a [u8],
    framing: Framing,
    /// Body bytes written.
    written: u64,
}

impl Writer<'_> {
    fn nothing_sent(&self) -> bool {
        !self.head.is_empty()
    }

    /// Writes the head if still due, `data`, and (when `last`) the body's end.
    async fn send<IO>(&mut self, io: &mut IO, data: Option<Bytes>, last: bool) -> io::Result<()>
    where
        IO: AsyncWrite + Unpin,
    {
        let data = data.unwrap_or_default();
        if self.head.is_empty() && data.is_empty() && !(last && self.framing == Framing::Chunked) {
            return Ok(());
        }
        let mut size_line = [0u8; 20];
        let mut slices = [
            IoSlice::new(self.head),
            IoSlice::new(&[]),
            IoSlice::new(&data),
            IoSlice::new(&[]),
        ];
        if self.framing == Framing::Chunked {
            let mut cursor = &mut size_line[..];
            if !data.is_empty() {
                let _ = write!(cursor, "{:x}\r\n", data.len());
            }
            let used = 20 - cursor.len();
            slices[1] = IoSlice::new(&size_line[..used]);
            slices[3] = IoSlice::new(match (data.is_empty(), last) {
                (false, true) => b"\r\n0\r\n\r\n",
                (false, false) => b"\r\n",
                (true, true) => b"0\r\n\r\n",
                (true, false) => b"",
            });
        }
        write(io, &mut slices).await?;
        self.written += data.len() as u64;
        self.head = &[];
        Ok(())
    }

    fn outcome(&self) -> Sent {
        match self.framing {
            Framing::Length(n) if self.written != n => Sent::Incomplete,
            Framing::UntilClose => Sent::Incomplete,
            _ => Sent::Complete,
        }
    }
}

/// Writes every slice, in as few calls as the socket allows, then flushes (TLS); a client
/// that reads nothing for [`WRITE_TIMEOUT`] is given up on.
pub async fn write<IO>(io: &mut IO, slices: &mut [IoSlice<'_>]) -> io::Result<()>
where
    IO: AsyncWrite + Unpin,
{
    let work = async {
        let mut slices = slices;
        let mut left: usize = slices.iter().map(|s| s.len()).sum();
        while left > 0 {
            let n = io.write_vectored(slices).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            left -= n;
            IoSlice::advance_slices(&mut slices, n);
        }
        io.flush().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}
