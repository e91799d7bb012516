//! Request heads written and response heads read, HTTP/1.1 (RFC 9112).
//!
//! The request head is written straight from the caller's parts into one buffer: hop-by-hop
//! headers (and those `Connection` names) are skipped on the way rather than removed first,
//! `x-forwarded-for` gets the caller's address appended, and the framing headers are ours.
//! Response heads are parsed with `httparse`; header values are slices of the frozen read
//! buffer, not copies.

use std::io::Write;
use std::net::IpAddr;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};

use crate::http1::{content_length, tokens};

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1), plus the
/// framing and expectation headers the client writes itself.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The most response head bytes read before giving up (hyper's server default is similar).
pub const MAX_HEAD: usize = 64 * 1024;
/// The most response header fields.
const MAX_HEADERS: usize = 100;

/// How the request body goes: none, a known length, or chunked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body; `content-length: 0` when the caller sent one (or the method implies a body).
    Empty {
        announce: bool,
    },
    Length(u64),
    Chunked,
}

/// Whether a header is hop-by-hop (fixed list or named by `Connection`). `Host` and the
/// framing headers are the client's to decide, whatever `Connection` names.
fn hop_by_hop(name: &HeaderName, named: &[HeaderName]) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
        || (named.contains(name)
            && name != http::header::HOST
            && name != http::header::CONTENT_LENGTH)
}

/// The header names a `Connection` header lists besides its usual keep-alive/close (usually
/// none: no allocation then).
pub fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    tokens(headers, http::header::CONNECTION)
        .filter(|t| !t.eq_ignore_ascii_case("keep-alive") && !t.eq_ignore_ascii_case("close"))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect()
}

/// Writes a request head into `out`: `host` is used when the caller sent none.
pub fn write_request(
    out: &mut Vec<u8>,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    host: &str,
    forwarded_for: Option<IpAddr>,
    framing: Framing,
) {
    let named = connection_named(headers);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    // `http://host?x=1` has an empty path: origin form needs its `/`.
    if !path_and_query.starts_with('/') && path_and_query != "*" {
        out.push(b'/');
    }
    out.extend_from_slice(path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.contains_key(http::header::HOST) {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut previous_for: Option<&HeaderValue> = None;
    for (name, value) in headers {
        if name == http::header::CONTENT_LENGTH
            || name == http::header::EXPECT
            || hop_by_hop(name, &named)
        {
            continue;
        }
        if forwarded_for.is_some() && name.as_str() == "x-forwarded-for" {
            // Several fields join into one list, with the caller appended (below).
            if let Some(before) = previous_for {
                out.extend_from_slice(b"x-forwarded-for: ");
                out.extend_from_slice(before.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            previous_for = Some(value);
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(ip) = forwarded_for {
        out.extend_from_slice(b"x-forwarded-for: ");
        if let Some(before) = previous_for {
            out.extend_from_slice(before.as_bytes());
            out.extend_from_slice(b", ");
        }
        let _ = write!(out, "{ip}");
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::Empty { announce: false } => {}
        Framing::Empty { announce: true } => out.extend_from_slice(b"content-length: 0\r\n"),
        Framing::Length(n) => {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    /// End-to-end headers (hop-by-hop ones left out).
    pub headers: HeaderMap,
    pub body: BodyKind,
    /// Whether the connection may carry another request afterwards.
    pub keep_alive: bool,
}

/// Why a response head is refused.
#[derive(Debug)]
pub struct HeadError(pub String);

/// Parses a response head from the front of `buf`: `Ok(None)` while it is incomplete. On
/// success the head's bytes are taken off `buf`; informational (1xx) answers are skipped.
pub fn parse_response(
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Option<ResponseHead>, HeadError> {
    loop {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut fields);
        let len = match parsed.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                return Err(HeadError(format!(
                    "the response head is larger than {MAX_HEAD} bytes"
                )))
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(HeadError(format!("malformed response head: {e}"))),
        };
        let code = parsed.code.unwrap_or(0);
        let status = StatusCode::from_u16(code)
            .map_err(|_| HeadError(format!("invalid status code {code}")))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(HeadError("the upstream switched protocols unasked".into()));
        }
        if status.is_informational() {
            // 100 Continue, 103 Early Hints: the final answer follows.
            let _ = buf.split_to(len);
            continue;
        }
        let http11 = parsed.version == Some(1);
        // Offsets into the head, so values can be slices of one frozen buffer.
        let base = buf.as_ptr() as usize;
        let mut fields = Vec::with_capacity(parsed.headers.len());
        for field in parsed.headers.iter() {
            let name = HeaderName::from_bytes(field.name.as_bytes())
                .map_err(|_| HeadError(format!("invalid header name {:?}", field.name)))?;
            let start = field.value.as_ptr() as usize - base;
            fields.push((name, start, start + field.value.len()));
        }
        let head: Bytes = buf.split_to(len).freeze();
        return build(status, http11, fields, &head, method).map(Some);
    }
}

fn build(
    status: StatusCode,
    http11: bool,
    fields: Vec<(HeaderName, usize, usize)>,
    head: &Bytes,
    method: &Method,
) -> Result<ResponseHead, HeadError> {
    let mut all = HeaderMap::with_capacity(fields.len());
    for (name, start, end) in fields {
        let value = HeaderValue::from_maybe_shared(head.slice(start..end))
            .map_err(|_| HeadError(format!("invalid value for header {name}")))?;
        all.append(name, value);
    }
    let mut keep_alive = if http11 {
        !tokens(&all, http::header::CONNECTION).any(|t| t.eq_ignore_ascii_case("close"))
    } else {
        tokens(&all, http::header::CONNECTION).any(|t| t.eq_ignore_ascii_case("keep-alive"))
    };
    let bodiless = *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let has_codings = all.contains_key(http::header::TRANSFER_ENCODING);
    let codings = || tokens(&all, http::header::TRANSFER_ENCODING);
    let chunked = |t: &str| t.eq_ignore_ascii_case("chunked");
    // Framing is decided on the header being there, not on its parse: an unreadable
    // Transfer-Encoding must not fall back to Content-Length on a shared connection.
    if has_codings
        && (codings().next().is_none()
            || all
                .get_all(http::header::TRANSFER_ENCODING)
                .iter()
                .any(|v| v.to_str().is_err())
            || codings().filter(|t| chunked(t)).count() > 1)
    {
        return Err(HeadError("invalid transfer-encoding".into()));
    }
    let ends_chunked = codings().last().is_some_and(chunked);
    let body = if bodiless {
        BodyKind::None
    } else if has_codings {
        // With Transfer-Encoding, Content-Length is ignored, removed before forwarding, and
        // the connection not reused when both came (RFC 9112 §6.3 item 3); HTTP/1.0 has no
        // transfer codings, so its framing is suspect (§6.1): not reused either.
        if all.remove(http::header::CONTENT_LENGTH).is_some() || !http11 {
            keep_alive = false;
        }
        if ends_chunked {
            BodyKind::Chunked
        } else {
            keep_alive = false;
            BodyKind::UntilClose
        }
    } else if all.contains_key(http::header::CONTENT_LENGTH) {
        BodyKind::Length(content_length(&all).map_err(HeadError)?)
    } else {
        keep_alive = false;
        BodyKind::UntilClose
    };
    let named = connection_named(&all);
    if all.keys().any(|name| hop_by_hop(name, &named)) {
        for name in HOP_BY_HOP.iter().copied() {
            all.remove(name);
        }
        for name in &named {
            all.remove(name);
        }
    }
    Ok(ResponseHead {
        status,
        headers: all,
        body,
        keep_alive,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str, method: Method) -> Result<Option<ResponseHead>, HeadError> {
        parse_response(&mut BytesMut::from(text.as_bytes()), &method)
    }

    #[test]
    fn request_heads_skip_hop_by_hop_headers_and_frame_the_body() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.test".parse().unwrap());
        headers.insert("connection", "keep-alive, x-hop".parse().unwrap());
        headers.insert("x-hop", "gone".parse().unwrap());
        headers.insert("x-kept", "yes".parse().unwrap());
        headers.insert("content-length", "99".parse().unwrap());
        headers.insert("expect", "100-continue".parse().unwrap());
        headers.append("x-forwarded-for", "203.0.113.1".parse().unwrap());
        headers.append("x-forwarded-for", "203.0.113.2".parse().unwrap());
        let mut out = Vec::new();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        write_request(
            &mut out,
            &Method::POST,
            "/a?b=c",
            &headers,
            "up:1",
            Some(ip),
            Framing::Length(5),
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "POST /a?b=c HTTP/1.1\r\nhost: example.test\r\nx-kept: yes\r\n\
             x-forwarded-for: 203.0.113.1\r\nx-forwarded-for: 203.0.113.2, 127.0.0.1\r\n\
             content-length: 5\r\n\r\n"
        );
        let mut out = Vec::new();
        write_request(
            &mut out,
            &Method::GET,
            "/",
            &HeaderMap::new(),
            "up:1",
            None,
            Framing::Chunked,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET / HTTP/1.1\r\nhost: up:1\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn suspect_framing_is_refused_or_not_reused() {
        let head = parse(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
            Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!((head.body, head.keep_alive), (BodyKind::Chunked, false));
        assert!(
            head.headers.get("content-length").is_none(),
            "never forwarded beside TE"
        );
        let head = parse(
            "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n",
            Method::GET,
        )
        .unwrap()
        .unwrap();
        assert!(!head.keep_alive);
        assert!(parse(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, chunked\r\n\r\n",
            Method::GET
        )
        .is_err());
        assert!(parse(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: é\r\ncontent-length: 1\r\n\r\n",
            Method::GET
        )
        .is_err());
        // `Connection: host` cannot strip the Host; an empty path gets its `/`.
        let mut headers = HeaderMap::new();
        headers.insert("host", "h".parse().unwrap());
        headers.insert("connection", "host".parse().unwrap());
        let mut out = Vec::new();
        write_request(
            &mut out,
            &Method::GET,
            "?x=1",
            &headers,
            "up:1",
            None,
            Framing::Empty { announce: false },
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /?x=1 HTTP/1.1\r\nhost: h\r\n\r\n"
        );
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let head = parse("HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n", Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!((head.body, head.keep_alive), (BodyKind::Length(12), true));
        let head = parse("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\nconnection: close, x-a\r\nx-a: 1\r\nx-b: 2\r\n\r\n", Method::GET).unwrap().unwrap();
        assert_eq!((head.body, head.keep_alive), (BodyKind::Chunked, false));
        assert!(
            head.headers.get("x-a").is_none() && head.headers.get("transfer-encoding").is_none()
        );
        assert_eq!(head.headers["x-b"], "2");
        let head = parse("HTTP/1.0 200 OK\r\n\r\n", Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!((head.body, head.keep_alive), (BodyKind::UntilClose, false));
        let head = parse("HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n", Method::HEAD)
            .unwrap()
            .unwrap();
        assert_eq!(head.body, BodyKind::None);
        let head = parse(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!((head.status.as_u16(), head.body), (204, BodyKind::None));
        let head = parse(
            "HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n",
            Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.body, BodyKind::Length(3));
        assert!(parse(
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
            Method::GET
        )
        .is_err());
        assert!(parse("HTTP/1.1 200 OK\r\ncontent-length: +3\r\n\r\n", Method::GET).is_err());
        assert!(parse("HTTP/1.1 200 OK\r\ncontent-le", Method::GET)
            .unwrap()
            .is_none());
        assert!(parse("garbage\r\n\r\n", Method::GET).is_err());
        assert!(parse("HTTP/1.1 101 Switching Protocols\r\n\r\n", Method::GET).is_err());
    }
}
