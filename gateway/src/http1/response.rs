//! Response heads (RFC 9112 §4, §6): the framing is ours to choose — the length when the body
//! knows it, chunked otherwise (or until close for HTTP/1.0) — and so are the connection
//! headers; everything else is written as the handler set it. The `Date` header is formatted
//! once a second per thread.

use std::cell::RefCell;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Version};

/// How the response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body bytes at all (HEAD, 1xx, 204, 304), whatever the headers say.
    None,
    Length(u64),
    Chunked,
    /// HTTP/1.0 without a known length: the body ends when the connection closes.
    UntilClose,
}

/// Chooses the framing. `declared`: the handler's own Content-Length, `hint`: the body's
/// exact length when known.
pub fn framing(
    method: &Method,
    status: StatusCode,
    version: Version,
    declared: Option<u64>,
    hint: Option<u64>,
) -> Framing {
    if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::None
    } else if let Some(n) = declared.or(hint) {
        Framing::Length(n)
    } else if version == Version::HTTP_11 {
        Framing::Chunked
    } else {
        Framing::UntilClose
    }
}

/// Writes the status line and headers into `out` (cleared first). `close`: the connection
/// ends after this response; `version`: the request's.
pub fn write_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    framing: Framing,
    version: Version,
    close: bool,
) {
    out.clear();
    out.extend_from_slice(if version == Version::HTTP_10 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    let bodiless = status == StatusCode::NO_CONTENT || status.is_informational();
    let mut has_date = false;
    for (name, value) in headers {
        // Framing and connection management are this hop's: written below, never passed on.
        if name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
            || name == "keep-alive"
            || (name == header::CONTENT_LENGTH
                && (bodiless || matches!(framing, Framing::Length(_) | Framing::Chunked)))
        {
            continue;
        }
        has_date |= name == header::DATE;
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::Length(n) => {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::None | Framing::UntilClose => {}
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        with_date(|date| out.extend_from_slice(date));
        out.extend_from_slice(b"\r\n");
    }
    if close || framing == Framing::UntilClose {
        out.extend_from_slice(b"connection: close\r\n");
    } else if version == Version::HTTP_10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The current time as an IMF-fixdate, formatted at most once a second on each thread.
pub(crate) fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            *cached = (second, httpdate::fmt_http_date(now));
        }
        f(cached.1.as_bytes())
    })
}

/// A whole small answer for a refused request; the connection closes after it.
pub fn refusal(out: &mut Vec<u8>, status: StatusCode, reason: &str) {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let body = format!("{reason}\n");
    write_head(
        out,
        status,
        &headers,
        Framing::Length(body.len() as u64),
        Version::HTTP_11,
        true,
    );
    out.extend_from_slice(body.as_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn head(framing: Framing, version: Version, close: bool, headers: &HeaderMap) -> String {
        let mut out = Vec::new();
        write_head(&mut out, StatusCode::OK, headers, framing, version, close);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_framing_follows_the_request_and_the_body() {
        let f = |m: Method, s: u16, v, d, h| framing(&m, StatusCode::from_u16(s).unwrap(), v, d, h);
        assert_eq!(
            f(Method::HEAD, 200, Version::HTTP_11, Some(9), None),
            Framing::None
        );
        assert_eq!(
            f(Method::GET, 204, Version::HTTP_11, None, Some(0)),
            Framing::None
        );
        assert_eq!(
            f(Method::GET, 304, Version::HTTP_11, None, None),
            Framing::None
        );
        assert_eq!(
            f(Method::GET, 200, Version::HTTP_11, None, Some(5)),
            Framing::Length(5)
        );
        assert_eq!(
            f(Method::GET, 200, Version::HTTP_11, Some(7), Some(7)),
            Framing::Length(7)
        );
        assert_eq!(
            f(Method::GET, 200, Version::HTTP_11, None, None),
            Framing::Chunked
        );
        assert_eq!(
            f(Method::GET, 200, Version::HTTP_10, None, None),
            Framing::UntilClose
        );
    }

    #[test]
    fn heads_carry_our_framing_and_connection_headers_only() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("content-length", "5".parse().unwrap());
        headers.insert("connection", "x-hop".parse().unwrap());
        headers.insert("transfer-encoding", "chunked".parse().unwrap());
        let text = head(Framing::Length(5), Version::HTTP_11, false, &headers);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"));
        assert_eq!(text.matches("content-length: 5").count(), 1);
        assert!(!text.contains("chunked") && !text.contains("x-hop"));
        assert!(text.contains("\r\ndate: ") && text.ends_with("\r\n\r\n"));
        let text = head(Framing::Chunked, Version::HTTP_11, true, &HeaderMap::new());
        assert!(
            text.contains("transfer-encoding: chunked\r\n")
                && text.contains("connection: close\r\n")
        );
        let text = head(
            Framing::Length(0),
            Version::HTTP_10,
            false,
            &HeaderMap::new(),
        );
        assert!(text.starts_with("HTTP/1.0 200 OK") && text.contains("connection: keep-alive\r\n"));
        let text = head(
            Framing::UntilClose,
            Version::HTTP_10,
            false,
            &HeaderMap::new(),
        );
        assert!(text.contains("connection: close\r\n"));
        let mut with_date = HeaderMap::new();
        with_date.insert("date", "Mon, 30 Nov 2026 00:00:00 GMT".parse().unwrap());
        assert_eq!(
            head(Framing::Length(0), Version::HTTP_11, false, &with_date)
                .matches("date:")
                .count(),
            1
        );
    }
}
