//! HTTP/1.1 of our own (RFC 9112), lean where hyper is general:
//!
//! - [`framing`]: body framing (content-length, chunked), shared with the proxy client;
//! - [`request`]: request heads parsed with `httparse` into `http` types whose header values
//!   are slices of the read buffer;
//! - [`response`]: response heads written into one small buffer, the date cached per second;
//! - [`body`]: the request body handlers see — bytes already read, or a stream the connection
//!   feeds as the handler asks (one HTTP/2 stream's body goes through the same type);
//! - [`conn`]: one connection's loop — read a head, run the handler, write the answer, again;
//! - [`pump`]: a streamed request body, read off the connection as the handler asks;
//! - [`send`]: an answer's body written with its framing.
//!
//! Why not hyper's server: at 1,000 open connections hyper keeps a 16 KiB read buffer and an
//! 8 KiB header buffer for each, whether busy or not. Here a connection owns a 4 KiB read
//! buffer that grows only for a large head, and a head buffer the size of its last head.
//! HTTP/2 connections (detected by their preface) go to [`crate::http2`].

pub mod body;
pub mod conn;
pub mod framing;
pub mod pump;
pub mod request;
pub mod response;
pub mod send;

use http::header::HeaderName;
use http::HeaderMap;

/// The comma-separated tokens of every `name` field, trimmed, without allocating (a value that
/// is not visible ASCII yields none).
pub fn tokens(all: &HeaderMap, name: HeaderName) -> impl Iterator<Item = &str> {
    all.get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The one Content-Length (repeated identical values are allowed, RFC 9110 §8.6).
pub fn content_length(headers: &HeaderMap) -> Result<u64, String> {
    let mut found: Option<u64> = None;
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|b| *b == b',') {
            let text = std::str::from_utf8(part).unwrap_or("").trim();
            let n = text
                .parse::<u64>()
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("invalid content-length {text:?}"))?;
            if found.is_some_and(|f| f != n) {
                return Err("conflicting content-length values".into());
            }
            found = Some(n);
        }
    }
    found.ok_or_else(|| "empty content-length".into())
}
