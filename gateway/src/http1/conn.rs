//! One HTTP/1.1 connection: read a head, hand the request to the handler, write the answer,
//! and again while both sides keep the connection alive (pipelined requests are answered in
//! order). Everything runs on the connection's own task: there is no second task per
//! connection and no channel unless a request body must be streamed.
//!
//! - A connection waiting for a request is closed after the idle timeout (60 s by default); a
//!   head whose first bytes are in must be complete within 30 s, or it is answered 408.
//! - Malformed heads are answered 400 (431 when too large, 501 for unknown transfer codings,
//!   505 for other major versions) and the connection closes; a later HTTP/1 minor version
//!   (HTTP/1.2) is served as HTTP/1.1.
//! - A request body the handler left unread is drained when it is small (64 KiB) so the
//!   connection can be reused; otherwise the connection closes after the answer.
//! - A connection closed while the client may still be sending is closed gracefully: our side
//!   first, then what the client still sends is read and dropped for a moment, so that the
//!   answer is not lost to a reset.
//! - When the gateway stops, idle connections close at once and busy ones after their answer.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, StatusCode};
use hyper::body::Body as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::body::RequestBody;
use super::framing::{Decode, Decoder};
use super::pump::{room, Pump};
use super::request::{self, BodyFraming, Head};
use super::response::{self, Framing};
use super::send::{self, Sent};
use crate::server::Handler;

/// A connection's read buffer to start with; it grows only for a larger head or a body.
const READ_SIZE: usize = 4 * 1024;
/// How long a request head may take once its first bytes are in.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing connection reads and drops what the client still sends.
const LINGER: Duration = Duration::from_secs(1);
/// The start of the HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// What every connection of a listener shares.
pub struct Context {
    pub handler: Handler,
    pub remote: SocketAddr,
    pub max_head: usize,
    /// How long a keep-alive connection may wait for its next request.
    pub idle: Duration,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("remote", &self.remote)
            .field("max_head", &self.max_head)
            .field("idle", &self.idle)
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

/// What an exchange leaves the connection fit for.
enum After {
    /// The next request (`grown`: a body or large head enlarged the read buffer).
    Next { grown: bool },
    /// Closing: the client may still be sending.
    Close,
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
        let head = match read_head(io, &mut buf, cx, stop, &mut timer, first).await {
            HeadRead::Head(head) => head,
            HeadRead::Closed => return Ended::Closed,
            HeadRead::Http2 => return Ended::Http2(buf.freeze()),
            HeadRead::Refused(status, reason) => {
                response::refusal(&mut out, status, &reason);
                let _ = send::write(io, &mut [io::IoSlice::new(&out)]).await;
                linger(io, &mut buf).await;
                return Ended::Closed;
            }
        };
        first = false;
        // A head that took more than half the usual buffer may have made it grow.
        let big_head = head.len > READ_SIZE / 2;
        match exchange(io, &mut buf, &mut out, cx, head, stop).await {
            Ok(After::Next { grown }) => {
                // A large head or body is not kept for the connection's life: the whole
                // allocation behind the buffer is let go once nothing of it is pending.
                if buf.is_empty() && (grown || big_head) {
                    buf = BytesMut::new();
                }
                if out.capacity() > READ_SIZE {
                    out = Vec::new();
                }
            }
            Ok(After::Close) | Err(_) => {
                linger(io, &mut buf).await;
                return Ended::Closed;
            }
        }
    }
}

/// Closes our side, then reads and drops what the client still sends, briefly: closing with
/// unread data would reset the connection and could destroy the answer in flight.
async fn linger<IO>(io: &mut IO, buf: &mut BytesMut)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let work = async {
        if io.shutdown().await.is_err() {
            return;
        }
        let mut dropped = 0;
        while dropped < 256 * 1024 {
            buf.clear();
            room(buf, READ_SIZE);
            match io.read_buf(buf).await {
                Ok(n) if n > 0 => dropped += n,
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, work).await;
}

async fn read_head<IO>(
    io: &mut IO,
    buf: &mut BytesMut,
    cx: &Context,
    stop: &mut watch::Receiver<bool>,
    timer: &mut Option<Pin<Box<Sleep>>>,
    first: bool,
) -> HeadRead
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    // The deadline in force: none yet, the idle one, or the head's own.
    let mut armed: Option<bool> = None;
    // Bytes already known not to complete a head: a head is only tried again once a new line
    // ends (a client sending a byte at a time costs no re-parse per byte).
    let mut scanned = 0;
    loop {
        if buf.len() > scanned {
            let preface_so_far =
                first && H2_PREFACE.starts_with(&buf[..buf.len().min(H2_PREFACE.len())]);
            if preface_so_far && buf.len() >= H2_PREFACE.len() {
                return HeadRead::Http2;
            }
            let line_ended = buf[scanned..].contains(&b'\n') || buf.len() >= cx.max_head;
            if !preface_so_far && line_ended {
                match request::parse(buf, cx.max_head) {
                    Ok(Some(head)) => return HeadRead::Head(head),
                    Ok(None) => {}
                    Err(refusal) => return HeadRead::Refused(refusal.status, refusal.reason),
                }
            }
            scanned = buf.len();
        }
        let idle = buf.is_empty();
        if idle && *stop.borrow() {
            return HeadRead::Closed;
        }
        if armed != Some(idle) {
            let deadline = Instant::now() + if idle { cx.idle } else { HEAD_TIMEOUT };
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

/// One request and its answer.
async fn exchange<IO>(
    io: &mut IO,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    cx: &Context,
    head: Head,
    stop: &watch::Receiver<bool>,
) -> io::Result<After>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let Head {
        request,
        body: framing,
        keep_alive,
        expect_continue,
        ..
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
            let (streaming, body) = Pump::new(decoder, expect_continue);
            pump = Some(streaming);
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
        pump.finish_continue(io).await?;
        pump.answer_started();
        reusable &= pump.drainable();
    }
    let (parts, body) = response.into_parts();
    if parts.status.is_informational() {
        // A final answer cannot be 1xx: the client would wait for the real one forever.
        let reason = "the upstream sent only an informational answer";
        response::refusal(out, StatusCode::BAD_GATEWAY, reason);
        send::write(io, &mut [io::IoSlice::new(out)]).await?;
        return Ok(After::Close);
    }
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
    match send::answer(io, out, body, framing, pump.as_mut(), buf).await? {
        Sent::Complete if !close => {}
        Sent::NothingSent => {
            let reason = "the answer's body failed before it started";
            response::refusal(out, StatusCode::BAD_GATEWAY, reason);
            send::write(io, &mut [io::IoSlice::new(out)]).await?;
            return Ok(After::Close);
        }
        _ => return Ok(After::Close),
    }
    let grown = pump.is_some();
    let ready = match pump {
        Some(pump) if pump.is_broken() => false,
        Some(pump) if !pump.is_done() => pump.drain(io, buf).await,
        _ => true,
    };
    Ok(if ready {
        After::Next { grown }
    } else {
        After::Close
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_h2_preface_is_recognised_even_when_it_comes_in_pieces() {
        // The same test `read_head` applies before handing a head to the parser.
        let partial =
            |bytes: &[u8]| H2_PREFACE.starts_with(&bytes[..bytes.len().min(H2_PREFACE.len())]);
        assert!(partial(b"PRI * HTTP/2"));
        assert!(partial(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(!partial(b"GET / HTTP/1.1\r\n"));
    }
}
