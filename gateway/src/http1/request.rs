//! Request heads (RFC 9112 §3, §6): parsed with `httparse`; the method, target and header
//! values are slices of one frozen buffer, not copies. Framing that could desynchronise a
//! keep-alive connection is refused rather than guessed.

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode, Uri, Version};

use super::{content_length, tokens};

/// The most request header fields (hyper's default too).
const MAX_HEADERS: usize = 100;

/// How the request body comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    Length(u64),
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
pub struct Head {
    pub request: Request<()>,
    pub body: BodyFraming,
    /// Whether the client lets the connection carry another request.
    pub keep_alive: bool,
    /// `Expect: 100-continue` with a body still to come.
    pub expect_continue: bool,
    /// The head's length in bytes.
    pub len: usize,
}

/// Why a request head is refused: the status to answer with, and a reason for the body.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: String,
}

fn bad(reason: impl Into<String>) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        reason: reason.into(),
    }
}

/// One header field's name and value range within the head.
#[derive(Clone, Copy, Default)]
struct Field {
    name: (usize, usize),
    value: (usize, usize),
}

/// Parses a request head from the front of `buf`: `Ok(None)` while it is incomplete. On
/// success the head's bytes are taken off `buf`.
pub fn parse(buf: &mut BytesMut, max_head: usize) -> Result<Option<Head>, Refusal> {
    // Empty lines before a request line are allowed (RFC 9112 §2.2).
    let blank = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if blank > 0 {
        let _ = buf.split_to(blank);
    }
    let mut parsed_fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut parsed_fields);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len > max_head => return Err(too_large(max_head)),
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= max_head => return Err(too_large(max_head)),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal {
                status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                reason: format!("more than {MAX_HEADERS} header fields"),
            })
        }
        // A later HTTP/1 minor version is served as HTTP/1.1, the highest we speak (RFC 9110
        // §6.2: minor versions are compatible); the digit is rewritten where it lies.
        Err(httparse::Error::Version) => {
            if let Some(at) = later_minor(buf) {
                buf[at] = b'1';
                return parse(buf, max_head);
            }
            if !names_a_version(buf) {
                return Err(bad("malformed request head: invalid HTTP version"));
            }
            return Err(Refusal {
                status: StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                reason: "only HTTP/1.0 and HTTP/1.1 are spoken here".into(),
            });
        }
        Err(e) => return Err(bad(format!("malformed request head: {e}"))),
    };
    let version = if parsed.version == Some(1) {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let method = Method::from_bytes(parsed.method.unwrap_or("").as_bytes())
        .map_err(|_| bad("invalid method"))?;
    // Offsets, so that everything becomes a slice of the frozen head once the parser lets go.
    let base = buf.as_ptr() as usize;
    let span = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        (start, start + s.len())
    };
    let target = span(parsed.path.unwrap_or("").as_bytes());
    let count = parsed.headers.len();
    let mut fields = [Field::default(); MAX_HEADERS];
    for (slot, field) in fields.iter_mut().zip(parsed.headers.iter()) {
        *slot = Field {
            name: span(field.name.as_bytes()),
            value: span(field.value),
        };
    }
    let head: Bytes = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.1))
        .map_err(|e| bad(format!("invalid request target: {e}")))?;
    let mut headers = HeaderMap::with_capacity(count);
    for field in &fields[..count] {
        let name = HeaderName::from_bytes(&head[field.name.0..field.name.1])
            .map_err(|_| bad("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(field.value.0..field.value.1))
            .map_err(|_| bad(format!("invalid value for header {name}")))?;
        headers.append(name, value);
    }
    // Exactly one Host (RFC 9112 §3.2): none is an HTTP/1.1 error, several are how a request
    // meant for one host gets routed as another's.
    match headers.get_all(http::header::HOST).iter().count() {
        0 if version == Version::HTTP_11 => {
            return Err(bad("an HTTP/1.1 request needs a Host header"))
        }
        0 | 1 => {}
        _ => return Err(bad("more than one Host header")),
    }
    let body = framing(&headers, version)?;
    let keep_alive = if version == Version::HTTP_11 {
        !tokens(&headers, http::header::CONNECTION).any(|t| t.eq_ignore_ascii_case("close"))
    } else {
        tokens(&headers, http::header::CONNECTION).any(|t| t.eq_ignore_ascii_case("keep-alive"))
    };
    let expect_continue = version == Version::HTTP_11
        && body != BodyFraming::Length(0)
        && headers
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Some(Head {
        request,
        body,
        keep_alive,
        expect_continue,
        len,
    }))
}

/// Whether the request line ends in a well-formed `HTTP/d.d` (another version, not garbage).
fn names_a_version(buf: &[u8]) -> bool {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or(buf);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.rsplit(|b| *b == b' ').next() {
        Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor]) => {
            major.is_ascii_digit() && minor.is_ascii_digit()
        }
        _ => false,
    }
}

/// Where the minor digit of a request line's `HTTP/1.d` lies, when `d` is above 1 (the line
/// may not have ended yet: the parser judges the version by its eight bytes).
fn later_minor(buf: &[u8]) -> Option<usize> {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or(buf);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.rsplit(|b| *b == b' ').next()? {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if (b'2'..=b'9').contains(minor) => {
            Some(line.len() - 1)
        }
        _ => None,
    }
}

fn too_large(max_head: usize) -> Refusal {
    Refusal {
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        reason: format!("the request head is larger than {max_head} bytes"),
    }
}

/// The body's framing (RFC 9112 §6.3). A request carrying both Transfer-Encoding and
/// Content-Length is refused: a proxy that picks one while the next hop picks the other is how
/// requests get smuggled.
fn framing(headers: &HeaderMap, version: Version) -> Result<BodyFraming, Refusal> {
    let has_codings = headers.contains_key(http::header::TRANSFER_ENCODING);
    if !has_codings {
        return if headers.contains_key(http::header::CONTENT_LENGTH) {
            content_length(headers)
                .map(BodyFraming::Length)
                .map_err(bad)
        } else {
            Ok(BodyFraming::Length(0))
        };
    }
    if version == Version::HTTP_10 {
        return Err(bad("HTTP/1.0 has no transfer codings"));
    }
    if headers.contains_key(http::header::CONTENT_LENGTH) {
        return Err(bad("both transfer-encoding and content-length"));
    }
    // A value that is not text would be skipped by the token reader, and its coding missed.
    if headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .any(|v| v.to_str().is_err())
    {
        return Err(bad("invalid transfer-encoding"));
    }
    let mut codings = tokens(headers, http::header::TRANSFER_ENCODING);
    match (codings.next(), codings.next()) {
        (Some(only), None) if only.eq_ignore_ascii_case("chunked") => Ok(BodyFraming::Chunked),
        (None, _) => Err(bad("invalid transfer-encoding")),
        _ => Err(Refusal {
            status: StatusCode::NOT_IMPLEMENTED,
            reason: "only the chunked transfer coding is supported".into(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Option<Head>, Refusal> {
        parse(&mut BytesMut::from(text.as_bytes()), 8192)
    }

    fn status(text: &str) -> StatusCode {
        parse_text(text).unwrap_err().status
    }

    #[test]
    fn heads_parse_into_zero_copy_requests() {
        let mut buf = BytesMut::from(
            &b"\r\nPOST /a/b?c=d HTTP/1.1\r\nHost: x\r\nX-Multi: 1\r\nX-Multi: 2\r\nContent-Length: 3\r\n\r\nabcGET"[..],
        );
        let head = parse(&mut buf, 8192).unwrap().unwrap();
        assert_eq!(head.request.method(), Method::POST);
        assert_eq!(head.request.uri().path(), "/a/b");
        assert_eq!(head.request.uri().query(), Some("c=d"));
        assert_eq!(head.request.headers().get_all("x-multi").iter().count(), 2);
        assert_eq!(head.body, BodyFraming::Length(3));
        assert!(head.keep_alive && !head.expect_continue);
        assert_eq!(
            &buf[..],
            b"abcGET",
            "the body and what follows stay in the buffer"
        );
        assert!(parse_text("GET / HTTP/1.1\r\nHost: x\r\n")
            .unwrap()
            .is_none());
    }

    #[test]
    fn requests_name_exactly_one_host() {
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), StatusCode::BAD_REQUEST);
        let two = "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n";
        assert_eq!(status(two), StatusCode::BAD_REQUEST);
        assert!(
            parse_text("GET / HTTP/1.0\r\n\r\n").unwrap().is_some(),
            "HTTP/1.0 needs none"
        );
        let te = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: \u{ff}gzip\r\n\r\n";
        assert_eq!(
            status(te),
            StatusCode::BAD_REQUEST,
            "a coding that is not text"
        );
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        let ka = |t: &str| parse_text(t).unwrap().unwrap().keep_alive;
        assert!(!ka(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        let head = parse_text(
            "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 9\r\n\r\n",
        );
        assert!(head.unwrap().unwrap().expect_continue);
    }

    #[test]
    fn suspect_framing_and_oversized_heads_are_refused() {
        let both =
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(status(both), StatusCode::BAD_REQUEST);
        let gzip = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(status(gzip), StatusCode::NOT_IMPLEMENTED);
        let differing =
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(status(differing), StatusCode::BAD_REQUEST);
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("GET / HTTP/2.0\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        let later = parse_text("GET / HTTP/1.2\r\nHost: x\r\n\r\n")
            .expect("served as 1.1")
            .expect("complete");
        assert_eq!(later.request.version(), Version::HTTP_11);
        assert!(later.keep_alive);
        // The same with the request line arriving in two reads.
        let mut split = BytesMut::from(&b"GET / HTTP/1.2"[..]);
        assert!(parse(&mut split, 8192).expect("fine so far").is_none());
        split.extend_from_slice(b"\r\nHost: x\r\n\r\n");
        let head = parse(&mut split, 8192).expect("valid").expect("complete");
        assert_eq!(head.request.version(), Version::HTTP_11);
        assert_eq!(
            status("G@T / HTTP/1.1\r\nHost: x\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status("NOT HTTP AT ALL\r\n\r\n"), StatusCode::BAD_REQUEST);
        let big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n",
            "a".repeat(9000)
        );
        assert_eq!(status(&big), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let many: String = (0..101).map(|i| format!("X-{i}: 1\r\n")).collect();
        assert_eq!(
            status(&format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n")),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        let chunked =
            parse_text("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(chunked.body, BodyFraming::Chunked);
    }
}
