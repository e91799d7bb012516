//! One HTTP/1.1 connection: read a head, hand the request to the handler, write the answer,
//! and again while both sides keep the connection alive (pipelined requests are answered in
//! order). Everything runs on the connection's own task: there is no second task per
//! connection and no channel unless a request body must be streamed.
//!
//! - A connection waiting for a request is closed after 60 s; a head whose first bytes are in
//!   must be complete within 30 s, or it is answered 408.
//! - Malformed heads are answered 400 (431 when too large, 501 for unknown transfer codings,
//!   505 for other versions) and the connection closes.
//! - A request body the handler left unread is drained when it is small (64 KiB) so the
//!   connection can be reused; otherwise the connection closes after the answer.
//! - When the gateway stops, idle connections close at once and busy ones after their answer.

use std::io::{self, IoSlice, Write as _};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::{Instant, Sleep};

use super::body::{Item, RequestBody};
use super::framing::{Decode, Decoder, Step};
use super::request::{self, BodyFraming, Head};
use super::response::{self, Framing};
use crate::server::{Body, Handler};

/// A connection's read buffer to start with; it grows only for a larger head.
const READ_SIZE: usize = 4 * 1024;
/// Spare room asked for when reading a request body.
const BODY_READ_SIZE: usize = 16 * 1024;
/// How long a request head may take once its first bytes are in.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a keep-alive connection may wait for its next request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most unread request body drained to keep a connection.
const DRAIN_LIMIT: u64 = 64 * 1024;
/// How long draining an unread body may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
/// The start of the HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// What every connection of a listener shares.
pub struct Context {
    pub handler: Handler,
    pub remote: SocketAddr,
    pub max_head: usize,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("remote", &self.remote)
            .field("max_head", &self.max_head)
            .finish_non_exhaustive()
    }
}

/// How a connection ended.
#[derive(Debug)]
pub enum Ended {
    Closed,
    /// The client spoke HTTP/2 with prior knowledge: these bytes are already read.
    Http2(Bytes),
}

// Moved once per request: boxing the head would cost an allocation instead.
#[allow(clippy::large_enum_variant)]
enum HeadRead {
    Head(Head),
    Closed,
    Refused(StatusCode, String),
    Http2,
}

/// Serves HTTP/1 requests on `io` until either side closes it, or `stop` turns true.
pub async fn serve<IO>(io: &mut IO, cx: &Context, stop: &mut watch::Receiver<bool>) -> Ended
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let mut out = Vec::new();
    let mut timer: Option<Pin<Box<Sleep>>> = None;
    let mut first = true;
    loop {
        let head = match read_head(io, &mut buf, cx.max_head, stop, &mut timer, first).await {
            HeadRead::Head(head) => head,
            HeadRead::Closed => return Ended::Closed,
            HeadRead::Http2 => return Ended::Http2(buf.freeze()),
            HeadRead::Refused(status, reason) => {
                response::refusal(&mut out, status, &reason);
                let _ = io.write_all(&out).await;
                let _ = io.shutdown().await;
                return Ended::Closed;
            }
        };
        first = false;
        match exchange(io, &mut buf, &mut out, cx, head, stop).await {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                let _ = io.shutdown().await;
                return Ended::Closed;
            }
        }
        // A large head or body is not kept for the connection's life.
        if out.capacity() > READ_SIZE {
            out = Vec::new();
        }
        if buf.is_empty() && buf.capacity() > 2 * BODY_READ_SIZE {
            buf = BytesMut::new();
        }
    }
}

/// Makes room to read into `buf`.
fn room(buf: &mut BytesMut, size: usize) {
    if buf.capacity() - buf.len() < size / 4 {
        buf.reserve(size);
    }
}

async fn read_head<IO>(
    io: &mut IO,
    buf: &mut BytesMut,
    max_head: usize,
    stop: &mut watch::Receiver<bool>,
    timer: &mut Option<Pin<Box<Sleep>>>,
    first: bool,
) -> HeadRead
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    // The deadline in force: none yet, the idle one, or the head's own.
    let mut armed: Option<bool> = None;
    loop {
        if !buf.is_empty() {
            if first && buf.len() >= H2_PREFACE.len() && buf.starts_with(H2_PREFACE) {
                return HeadRead::Http2;
            }
            match request::parse(buf, max_head) {
                Ok(Some(head)) => return HeadRead::Head(head),
                Ok(None) => {}
                Err(refusal) => return HeadRead::Refused(refusal.status, refusal.reason),
            }
        }
        let idle = buf.is_empty();
        if idle && *stop.borrow() {
            return HeadRead::Closed;
        }
        if armed != Some(idle) {
            let deadline = Instant::now() + if idle { IDLE_TIMEOUT } else { HEAD_TIMEOUT };
            match timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => *timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            armed = Some(idle);
        }
        let Some(sleep) = timer.as_mut() else {
            return HeadRead::Closed;
        };
        room(buf, READ_SIZE);
        let read = tokio::select! {
            biased;
            read = io.read_buf(buf) => read,
            () = sleep.as_mut() => {
                return if idle {
                    HeadRead::Closed
                } else {
                    HeadRead::Refused(StatusCode::REQUEST_TIMEOUT, "the request head took too long".into())
                };
            }
            _ = stop.changed(), if idle => return HeadRead::Closed,
        };
        match read {
            Ok(0) | Err(_) => return HeadRead::Closed,
            Ok(_) => {}
        }
    }
}

/// One request and its answer: `Ok(true)` when the connection can carry another.
async fn exchange<IO>(
    io: &mut IO,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    cx: &Context,
    head: Head,
    stop: &watch::Receiver<bool>,
) -> io::Result<bool>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let Head {
        request,
        body: framing,
        keep_alive,
        expect_continue,
    } = head;
    let (parts, ()) = request.into_parts();
    let (method, version) = (parts.method.clone(), parts.version);
    let mut pump = None;
    let body = match framing {
        BodyFraming::Length(0) => RequestBody::empty(),
        BodyFraming::Length(n) if buf.len() as u64 >= n => {
            // Came whole with the head (n fits: it is at most the buffer's length).
            RequestBody::whole(buf.split_to(n as usize).freeze())
        }
        framing => {
            let decoder = match framing {
                BodyFraming::Length(n) => Decoder::new(Decode::Length(n)),
                BodyFraming::Chunked => Decoder::chunked(),
            };
            let (items, received) = mpsc::channel(2);
            let wanted = Arc::new(Notify::new());
            let body = RequestBody::streamed(received, Arc::clone(&wanted), decoder.remaining());
            pump = Some(Pump {
                items: Some(items),
                wanted,
                decoder,
                continue_sent: if expect_continue { 0 } else { CONTINUE.len() },
                broken: false,
            });
            body
        }
    };
    let mut request = Request::from_parts(parts, body);
    request
        .extensions_mut()
        .insert(crate::telemetry::RemoteAddr(cx.remote));
    let mut handling = (cx.handler)(request);
    let response = match &mut pump {
        None => handling.await,
        Some(pump) => loop {
            tokio::select! {
                biased;
                response = &mut handling => break response,
                () = pump.step(io, buf), if pump.is_active() => {}
            }
        },
    };
    let mut reusable = keep_alive && !*stop.borrow();
    if let Some(pump) = &mut pump {
        // A half-written `100 Continue` is finished before the answer starts.
        pump.finish_continue(io).await?;
        reusable &= pump.drainable();
    }
    let (parts, body) = response.into_parts();
    let declared = parts
        .headers
        .contains_key(http::header::CONTENT_LENGTH)
        .then(|| super::content_length(&parts.headers).ok())
        .flatten();
    let framing = response::framing(
        &method,
        parts.status,
        version,
        declared,
        body.size_hint().exact(),
    );
    let close = !reusable || framing == Framing::UntilClose;
    response::write_head(out, parts.status, &parts.headers, framing, version, close);
    if !write_body(io, out, body, framing).await? || close {
        return Ok(false);
    }
    match pump {
        Some(pump) if !pump.decoder.is_done() && !pump.broken => Ok(pump.drain(io, buf).await),
        Some(pump) => Ok(!pump.broken),
        None => Ok(true),
    }
}

/// Writes the head in `out` and the body: `Ok(true)` when the whole answer went out as framed.
async fn write_body<IO>(io: &mut IO, out: &[u8], body: Body, framing: Framing) -> io::Result<bool>
where
    IO: AsyncWrite + Unpin,
{
    if framing == Framing::None {
        io.write_all(out).await?;
        io.flush().await?;
        return Ok(true);
    }
    let mut body = std::pin::pin!(body);
    let mut head: &[u8] = out;
    let mut written: u64 = 0;
    let mut size_line = Vec::with_capacity(0);
    loop {
        let data = match body.frame().await {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                // Empty frames and trailers (HTTP/1 trailers are not passed on).
                _ => continue,
            },
            // The body failed: the answer cannot be completed, the connection must close.
            Some(Err(_)) => return Ok(false),
        };
        written += data.len() as u64;
        let last = body.is_end_stream();
        match framing {
            Framing::Length(n) if written > n => return Ok(false),
            Framing::Chunked => {
                size_line.clear();
                let _ = write!(size_line, "{:x}\r\n", data.len());
                let end: &[u8] = if last { b"\r\n0\r\n\r\n" } else { b"\r\n" };
                write_all_vectored(
                    io,
                    &mut [
                        IoSlice::new(head),
                        IoSlice::new(&size_line),
                        IoSlice::new(&data),
                        IoSlice::new(end),
                    ],
                )
                .await?;
            }
            _ => write_all_vectored(io, &mut [IoSlice::new(head), IoSlice::new(&data)]).await?,
        }
        io.flush().await?;
        head = &[];
        if last {
            return Ok(match framing {
                Framing::Length(n) => written == n,
                Framing::UntilClose => false,
                _ => true,
            });
        }
    }
    match framing {
        Framing::Chunked => {
            write_all_vectored(io, &mut [IoSlice::new(head), IoSlice::new(b"0\r\n\r\n")]).await?
        }
        _ => write_all_vectored(io, &mut [IoSlice::new(head)]).await?,
    }
    io.flush().await?;
    Ok(match framing {
        Framing::Length(n) => written == n,
        Framing::UntilClose => false,
        _ => true,
    })
}

/// Writes every slice, in as few calls as the socket allows.
async fn write_all_vectored<IO>(io: &mut IO, mut slices: &mut [IoSlice<'_>]) -> io::Result<()>
where
    IO: AsyncWrite + Unpin,
{
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        let n = io.write_vectored(slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// Reads a streamed request body off the connection as the handler asks for it.
struct Pump {
    /// `None` once the handler dropped the body.
    items: Option<mpsc::Sender<Item>>,
    wanted: Arc<Notify>,
    decoder: Decoder,
    /// Bytes of `100 Continue` written (all of them when none is due).
    continue_sent: usize,
    /// The body could not be read to its end: the connection cannot be reused.
    broken: bool,
}

impl Pump {
    fn is_active(&self) -> bool {
        // A body of known length ends by itself once its bytes are out; a chunked one is
        // told its end.
        self.items.is_some() && !self.broken && !self.decoder.is_done()
    }

    /// One step: say `100 Continue` once asked, then pass on one piece of body (or its end).
    /// Cancel-safe: dropped whenever the handler answers.
    async fn step<IO>(&mut self, io: &mut IO, buf: &mut BytesMut)
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        if self.continue_sent < CONTINUE.len() {
            if self.continue_sent == 0 {
                self.wanted.notified().await;
            }
            match io.write(&CONTINUE[self.continue_sent..]).await {
                Ok(n) if n > 0 => self.continue_sent += n,
                _ => self.broken = true,
            }
            return;
        }
        let Some(items) = &self.items else {
            return std::future::pending().await;
        };
        let Ok(permit) = items.reserve().await else {
            self.items = None;
            return;
        };
        loop {
            match self.decoder.step(buf) {
                Ok(Step::Data(data)) => return permit.send(Item::Data(data)),
                Ok(Step::Again) => continue,
                Ok(Step::End) => return permit.send(Item::End),
                Ok(Step::Read) => {}
                Err(e) => {
                    self.broken = true;
                    return permit.send(Item::Error(format!("invalid request body: {e}")));
                }
            }
            room(buf, BODY_READ_SIZE);
            match io.read_buf(buf).await {
                Ok(0) | Err(_) => {
                    self.broken = true;
                    return permit.send(Item::Error(
                        "the client closed the connection in the middle of the request body".into(),
                    ));
                }
                Ok(_) => {}
            }
        }
    }

    async fn finish_continue<IO>(&mut self, io: &mut IO) -> io::Result<()>
    where
        IO: AsyncWrite + Unpin,
    {
        if self.continue_sent > 0 && self.continue_sent < CONTINUE.len() {
            io.write_all(&CONTINUE[self.continue_sent..]).await?;
            self.continue_sent = CONTINUE.len();
        }
        Ok(())
    }

    /// Whether what is left of the body can be read past to reuse the connection.
    fn drainable(&self) -> bool {
        if self.broken {
            return false;
        }
        if self.decoder.is_done() {
            return true;
        }
        // A client waiting for `100 Continue` that never came may never send the body.
        self.continue_sent == CONTINUE.len()
            && self
                .decoder
                .remaining()
                .is_none_or(|rest| rest <= DRAIN_LIMIT)
    }

    /// Reads past the rest of the body (at most [`DRAIN_LIMIT`] bytes, briefly):
    /// whether the connection is ready for the next request.
    async fn drain<IO>(mut self, io: &mut IO, buf: &mut BytesMut) -> bool
    where
        IO: AsyncRead + Unpin,
    {
        self.items = None;
        let work = async {
            let mut skipped = 0u64;
            loop {
                match self.decoder.step(buf) {
                    Ok(Step::Data(data)) => skipped += data.len() as u64,
                    Ok(Step::Again) => {}
                    Ok(Step::End) => return true,
                    Ok(Step::Read) => {
                        room(buf, BODY_READ_SIZE);
                        if !matches!(io.read_buf(buf).await, Ok(n) if n > 0) {
                            return false;
                        }
                    }
                    Err(_) => return false,
                }
                if skipped > DRAIN_LIMIT {
                    return false;
                }
            }
        };
        tokio::time::timeout(DRAIN_TIMEOUT, work)
            .await
            .unwrap_or(false)
    }
}
