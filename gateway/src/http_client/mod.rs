//! The HTTP/1.1 client behind plain HTTP proxying (`http` clusters).
//!
//! Built for a proxy's hot path rather than general use: the request's own task writes the
//! request and reads the answer on a pooled connection — no connection task, no channel
//! between them, no per-connection buffers kept while idle — so a proxied request costs one
//! task and the connection costs nothing between requests but its socket. Small bodies go out
//! with their head in one write; the answer's head is parsed in place and its header values
//! are slices of the read buffer; a small answer read in one go returns its connection to the
//! pool before the caller even sees it.
//!
//! - [`head`]: writing request heads, parsing response heads, body framing (RFC 9112).
//! - [`body`]: the streamed response body (content-length, chunked, until close).
//! - [`pool`]: idle connections per worker and endpoint, swept when idle too long or closed.
//!
//! A streamed upload is written while the connection is watched for an answer: an upstream
//! that answers before reading the whole body (413, 401) has its answer passed on, whether it
//! then closes or just stops reading, and that connection is not reused. Response trailers are
//! read and dropped.
//!
//! Retries: a request that failed on a *reused* connection before any answer byte came back is
//! sent once more on a fresh connection when its body is still at hand and either the method
//! is idempotent or not one byte of it went out (an upstream closing an idle
//! connection races with its reuse; RFC 9110 §9.2.2).

pub mod body;
pub mod head;
pub mod pool;

use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Response};
use http_body_util::BodyExt;
use hyper::body::Body as _;

use crate::server::RequestBody;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use tokio::net::TcpStream;

pub use body::UpstreamBody;
use body::{Chunk, Decode, Release};
use head::{BodyKind, Framing};
pub use pool::Pool;

/// Bodies up to this size are read whole before sending: one write with the head, and a retry
/// stays possible. Larger or unsized ones are streamed.
const BUFFER_BODY_UP_TO: u64 = 64 * 1024;
/// The first read's size: most answers (head and body) fit.
const FIRST_READ: usize = 4 * 1024;

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// No connection could be opened.
    Connect(String),
    /// The connection failed or closed before the answer was complete.
    Lost(String),
    /// The upstream's answer is not valid HTTP/1.1.
    Malformed(String),
    /// The caller's own body could not be read.
    Caller(String),
}

/// What a request carries besides its body.
#[derive(Debug)]
pub struct Outgoing<'a> {
    pub method: &'a Method,
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
    /// The `Host` when the caller sent none.
    pub host: &'a str,
    /// Appended to `x-forwarded-for`.
    pub forwarded_for: Option<IpAddr>,
}

/// The request body, as it will be written.
enum Payload {
    /// All of it (maybe nothing): can be written with the head, and again on a retry.
    Buffered(Bytes),
    Streamed(RequestBody),
}

/// Sends one request to `endpoint` (at `addr`) and returns the answer once its head is read.
pub async fn send(
    pool: &Arc<Pool>,
    endpoint: usize,
    addr: SocketAddr,
    connect_timeout: Duration,
    request: Outgoing<'_>,
    body: RequestBody,
) -> Result<Response<UpstreamBody>, ClientError> {
    let (payload, framing) = prepare(request.method, request.headers, body).await?;
    let mut head = Vec::with_capacity(256 + request.headers.len() * 48);
    head::write_request(
        &mut head,
        request.method,
        request.path_and_query,
        request.headers,
        request.host,
        request.forwarded_for,
        framing,
    );
    let idempotent = matches!(
        *request.method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    );
    let mut payload = Some(payload);
    let mut fresh_only = false;
    loop {
        let pooled = if fresh_only {
            None
        } else {
            pool.take(endpoint)
        };
        let reused = pooled.is_some();
        let stream = match pooled {
            Some(stream) => stream,
            None => connect(addr, connect_timeout).await?,
        };
        let release = Release {
            pool: Arc::clone(pool),
            endpoint,
        };
        let this = match &payload {
            Some(Payload::Buffered(bytes)) => Payload::Buffered(bytes.clone()),
            _ => payload
                .take()
                .map_or(Payload::Buffered(Bytes::new()), |p| p),
        };
        let replayable = matches!(this, Payload::Buffered(_));
        match exchange(stream, &head, this, framing, request.method, release).await {
            Ok(response) => return Ok(response),
            Err(failure) => {
                let retry =
                    reused && replayable && !failure.answered && (idempotent || !failure.sent_any);
                if !retry || fresh_only {
                    return Err(failure.error);
                }
                fresh_only = true;
            }
        }
    }
}

/// Reads a small body whole, or leaves it to be streamed; picks the framing.
async fn prepare(
    method: &Method,
    headers: &HeaderMap,
    body: RequestBody,
) -> Result<(Payload, Framing), ClientError> {
    if body.is_end_stream() {
        let announce = headers.contains_key(http::header::CONTENT_LENGTH)
            || matches!(*method, Method::POST | Method::PUT | Method::PATCH);
        return Ok((Payload::Buffered(Bytes::new()), Framing::Empty { announce }));
    }
    match body.size_hint().exact() {
        Some(n) if n <= BUFFER_BODY_UP_TO => {
            let bytes = body
                .collect()
                .await
                .map_err(|e| {
                    ClientError::Caller(format!("the request body could not be read: {e}"))
                })?
                .to_bytes();
            let framing = Framing::Length(bytes.len() as u64);
            Ok((Payload::Buffered(bytes), framing))
        }
        Some(n) => Ok((Payload::Streamed(body), Framing::Length(n))),
        None => Ok((Payload::Streamed(body), Framing::Chunked)),
    }
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ClientError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(ClientError::Connect(format!("{addr}: {e}"))),
        Err(_) => {
            return Err(ClientError::Connect(format!(
                "{addr}: no connection within {timeout:?}"
            )))
        }
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A failed exchange, with what is known about how far it got.
struct Failure {
    error: ClientError,
    /// Some of the request went out (then only an idempotent one may be sent again).
    sent_any: bool,
    /// Some of an answer came back.
    answered: bool,
}

fn lost(e: impl std::fmt::Display, sent_any: bool, answered: bool) -> Failure {
    Failure {
        error: ClientError::Lost(e.to_string()),
        sent_any,
        answered,
    }
}

/// How long an upstream that stopped reading the request may take to show its answer
/// (typically 413 or 401 sent before the body was read).
const EARLY_ANSWER_WAIT: Duration = Duration::from_secs(1);

/// Writes the request and reads the answer's head on one connection.
async fn exchange(
    mut stream: TcpStream,
    head: &[u8],
    payload: Payload,
    framing: Framing,
    method: &Method,
    release: Release,
) -> Result<Response<UpstreamBody>, Failure> {
    let mut sent = 0;
    let written = match payload {
        Payload::Buffered(bytes) => {
            let mut slices = [IoSlice::new(head), IoSlice::new(&bytes)];
            write_all_vectored(&mut stream, &mut slices, &mut sent)
                .await
                .map_err(BodyError::Upstream)
        }
        Payload::Streamed(body) => {
            let expected = match framing {
                Framing::Length(n) => Some(n),
                _ => None,
            };
            // While the body goes out, watch for an answer: an upstream that refuses the
            // upload may stop reading it, and its answer must not wait for the timeout.
            let (mut reader, mut writer) = stream.split();
            let mut probe = [0u8; 1];
            let upload = async {
                write_all_vectored(&mut writer, &mut [IoSlice::new(head)], &mut sent)
                    .await
                    .map_err(BodyError::Upstream)?;
                stream_body(&mut writer, body, expected, &mut sent).await
            };
            tokio::select! {
                biased;
                done = upload => done,
                // `peek` waits for a byte or the end (readiness alone can be a false alarm).
                _ = reader.peek(&mut probe) => Err(BodyError::Upstream(io::Error::other(
                    "the upstream answered before the request body was sent",
                ))),
            }
        }
    };
    let mut buf = BytesMut::with_capacity(FIRST_READ);
    let release = Some(release);
    match written {
        Ok(()) => {}
        Err(BodyError::Caller(message)) => {
            return Err(Failure {
                error: ClientError::Caller(message),
                sent_any: sent > 0,
                answered: false,
            })
        }
        Err(BodyError::Upstream(e)) => {
            // The upstream may have answered already and stopped reading: pass its answer on
            // (the connection is done either way: `None`, never pooled).
            let early =
                tokio::time::timeout(EARLY_ANSWER_WAIT, read_head(&mut stream, &mut buf, method));
            match early.await {
                Ok(Ok(parsed)) => return Ok(respond(parsed, stream, buf, None)),
                _ => return Err(lost(e, sent > 0, false)),
            }
        }
    }
    let parsed = read_head(&mut stream, &mut buf, method).await?;
    let release = release.filter(|_| parsed.keep_alive);
    Ok(respond(parsed, stream, buf, release))
}

/// Reads until a whole response head is in `buf`, and parses it.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    method: &Method,
) -> Result<head::ResponseHead, Failure> {
    loop {
        match head::parse_response(buf, method) {
            Ok(Some(parsed)) => return Ok(parsed),
            Ok(None) => {}
            Err(e) => {
                return Err(Failure {
                    error: ClientError::Malformed(e.0),
                    sent_any: true,
                    answered: true,
                })
            }
        }
        if buf.capacity() == buf.len() {
            buf.reserve(buf.len().max(FIRST_READ));
        }
        match stream.read_buf(buf).await {
            Ok(0) => {
                let answered = !buf.is_empty();
                return Err(lost(
                    "the upstream closed the connection before answering",
                    true,
                    answered,
                ));
            }
            Ok(_) => {}
            Err(e) => {
                let answered = !buf.is_empty();
                return Err(lost(e, true, answered));
            }
        }
    }
}

/// The response for a parsed head: its body, and the connection pooled at once when the
/// body is already complete.
fn respond(
    parsed: head::ResponseHead,
    stream: TcpStream,
    mut buf: BytesMut,
    release: Option<Release>,
) -> Response<UpstreamBody> {
    let decode = match parsed.body {
        BodyKind::None => None,
        BodyKind::Length(n) => Some(Decode::Length(n)),
        BodyKind::Chunked => Some(Decode::Chunked(Chunk::Size)),
        BodyKind::UntilClose => Some(Decode::UntilClose),
    };
    let body = match decode {
        None => {
            give_back_if_clean(release, stream, &buf);
            UpstreamBody::whole(Bytes::new())
        }
        Some(Decode::Length(n)) if buf.len() as u64 >= n => {
            // The whole body came with the head (a usize: it fits in `buf`).
            let whole = buf.split_to(n as usize).freeze();
            give_back_if_clean(release, stream, &buf);
            UpstreamBody::whole(whole)
        }
        Some(decode) => UpstreamBody::live(stream, buf, decode, release),
    };
    let mut response = Response::new(body);
    *response.status_mut() = parsed.status;
    *response.headers_mut() = parsed.headers;
    response
}

/// Pools a connection whose answer ended exactly where the bytes read end.
fn give_back_if_clean(release: Option<Release>, stream: TcpStream, rest: &BytesMut) {
    if let (Some(release), true) = (release, rest.is_empty()) {
        release.give_back(stream);
    }
}

/// Why streaming the request body stopped.
enum BodyError {
    /// The caller's body failed or did not match its length.
    Caller(String),
    /// Writing to the upstream failed.
    Upstream(io::Error),
}

/// Streams the caller's body: as it is (its announced length, checked) or chunked.
async fn stream_body<W: AsyncWrite + Unpin>(
    stream: &mut W,
    mut body: RequestBody,
    expected: Option<u64>,
    sent: &mut usize,
) -> Result<(), BodyError> {
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| BodyError::Caller(format!("the request body could not be read: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue; // Trailers do not travel to an HTTP/1.1 upstream.
        };
        if data.is_empty() {
            continue;
        }
        total += data.len() as u64;
        if let Some(expected) = expected {
            // Bytes beyond the announced length would be read as the next request.
            if total > expected {
                return Err(BodyError::Caller(
                    "the request body is longer than its content-length".into(),
                ));
            }
            write_all_vectored(stream, &mut [IoSlice::new(&data)], sent)
                .await
                .map_err(BodyError::Upstream)?;
        } else {
            let size = format!("{:x}\r\n", data.len());
            let mut slices = [
                IoSlice::new(size.as_bytes()),
                IoSlice::new(&data),
                IoSlice::new(b"\r\n"),
            ];
            write_all_vectored(stream, &mut slices, sent)
                .await
                .map_err(BodyError::Upstream)?;
        }
    }
    match expected {
        Some(expected) if total != expected => Err(BodyError::Caller(
            "the request body is shorter than its content-length".into(),
        )),
        Some(_) => Ok(()),
        None => write_all_vectored(stream, &mut [IoSlice::new(b"0\r\n\r\n")], sent)
            .await
            .map_err(BodyError::Upstream),
    }
}

/// Writes every slice, in as few system calls as the socket allows; `sent` counts the bytes
/// that went out.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    stream: &mut W,
    mut slices: &mut [IoSlice<'_>],
    sent: &mut usize,
) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        let n = stream.write_vectored(slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        *sent += n;
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}
