//! A fast gRPC backend for benchmarks: serves `echo.Echo/Unary` (peers/proto/echo.proto) on
//! HTTP/2 cleartext, answering `Msg{text: "unary:" + text}`, with no generated code (the one
//! string field is encoded by hand). Every other path is UNIMPLEMENTED.
//!
//!     cargo run --release -p testkit --example grpc_echo_backend -- [--port N] [--threads N]
//!
//! Prints `LISTENING <port>`.

use std::convert::Infallible;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The text of a `Msg` (field 1, a string), from the message bytes.
fn text_of(message: &[u8]) -> &[u8] {
    let mut i = 0;
    while i < message.len() {
        let tag = message[i];
        i += 1;
        if tag & 7 != 2 {
            return b""; // only length-delimited fields are expected here
        }
        let (len, used) = varint(&message[i..]);
        i += used;
        let end = (i + len).min(message.len());
        if tag >> 3 == 1 {
            return &message[i..end];
        }
        i = end;
    }
    b""
}

fn varint(b: &[u8]) -> (usize, usize) {
    let (mut v, mut shift) = (0usize, 0);
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return (v, i + 1);
        }
        shift += 7;
    }
    (v, b.len())
}

fn reply(text: &[u8]) -> Bytes {
    let payload_len = 6 + text.len();
    let mut message = BytesMut::with_capacity(payload_len + 16);
    message.put_u8(0x0a);
    let mut n = payload_len;
    while n >= 0x80 {
        message.put_u8((n as u8) | 0x80);
        n >>= 7;
    }
    message.put_u8(n as u8);
    message.put_slice(b"unary:");
    message.put_slice(text);
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.put_slice(&message);
    frame.freeze()
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn serve(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let unary = req.uri().path() == "/echo.Echo/Unary";
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut trailers = HeaderMap::new();
    let data = if unary && body.len() >= 5 {
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        reply(text_of(&body[5..]))
    } else {
        trailers.insert("grpc-status", HeaderValue::from_static("12"));
        Bytes::new()
    };
    let body = Full::new(data)
        .with_trailers(async move { Some(Ok(trailers)) })
        .boxed();
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    Ok(response)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u16>().ok())
    };
    let port = arg("--port").unwrap_or(0);
    let threads = usize::from(arg("--threads").unwrap_or(1));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            println!("LISTENING {}", listener.local_addr()?.port());
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service_fn(serve))
                        .await;
                });
            }
        })
}
