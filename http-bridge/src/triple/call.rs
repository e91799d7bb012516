//! One unary Triple/gRPC call: frame the message, send it with Triple's headers and a
//! `grpc-timeout`, read the reply within a size limit, and say how it ended.

use std::net::SocketAddr;
use std::time::Duration;

use crate::h2::Client;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};

/// A unary call, ready to send.
#[derive(Debug)]
pub struct UnaryCall<'a> {
    /// `/{service}/{method}`.
    pub path: &'a str,
    pub content_type: &'static str,
    /// Extra request headers: `tri-service-version`, `tri-service-group`, attachments,
    /// trace context.
    pub headers: HeaderMap,
    /// The message, unframed.
    pub message: &'a [u8],
    pub timeout: Duration,
    /// The largest reply accepted, in bytes.
    pub max_reply: usize,
}

/// How a call failed.
#[derive(Debug, thiserror::Error)]
pub enum TripleError {
    /// The provider answered with a non-OK `grpc-status`.
    #[error("grpc-status {code}: {message}")]
    Status { code: u32, message: String },
    /// No answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The endpoint could not be reached; nothing was sent.
    #[error("{0}")]
    Unavailable(String),
    /// Sent, then the connection failed: the provider may have run the call.
    #[error("{0}")]
    ConnectionLost(String),
    /// An answer that is not a gRPC reply.
    #[error("{0}")]
    Malformed(String),
}

impl UnaryCall<'_> {
    /// Sends the call to `addr` and returns the reply message (unframed).
    pub async fn send(self, client: &Client, addr: SocketAddr) -> Result<Bytes, TripleError> {
        let mut frame = BytesMut::new();
        dubbo_codec::triple::encode_frame(self.message, &mut frame)
            .map_err(|e| TripleError::Malformed(e.to_string()))?;
        let mut request = Request::post(format!("http://{addr}{}", self.path))
            .body(
                Full::new(frame.freeze())
                    .map_err(|never| match never {})
                    .boxed(),
            )
            .map_err(|e| TripleError::Malformed(format!("the call cannot be sent: {e}")))?;
        let headers = request.headers_mut();
        *headers = self.headers;
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
        headers.insert("grpc-timeout", grpc_timeout(self.timeout));
        let (max, timeout) = (self.max_reply, self.timeout);
        let exchange = async {
            let response = client.request(addr, request).await.map_err(|e| {
                if e.is_connect() {
                    TripleError::Unavailable(format!("provider {addr}: {e}"))
                } else {
                    TripleError::ConnectionLost(format!("provider {addr}: {e}"))
                }
            })?;
            let (head, body) = response.into_parts();
            let collected = Limited::new(body, max + 5).collect().await.map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    TripleError::Malformed(format!("the reply exceeds {max} bytes"))
                } else {
                    TripleError::ConnectionLost(format!("provider {addr}: {e}"))
                }
            })?;
            let trailers = collected.trailers().cloned().unwrap_or_default();
            Ok::<_, TripleError>((head, trailers, collected.to_bytes()))
        };
        let (head, trailers, body) = crate::deadline::timeout(timeout, exchange)
            .await
            .map_err(|_| TripleError::Timeout(timeout))??;
        // A trailers-only answer carries the status in its headers.
        let status_of = |name: &str| {
            trailers
                .get(name)
                .or_else(|| head.headers.get(name))
                .and_then(|v| v.to_str().ok())
        };
        let code = match status_of("grpc-status") {
            Some(c) => c.trim().parse::<u32>().unwrap_or(2),
            None if head.status != StatusCode::OK => {
                return Err(TripleError::Malformed(format!(
                    "the provider answered HTTP {} without a gRPC status",
                    head.status
                )))
            }
            None => {
                return Err(TripleError::Malformed(
                    "the provider's answer has no grpc-status".into(),
                ))
            }
        };
        if code != 0 {
            let message = status_of("grpc-message")
                .map(grpc_message_decode)
                .unwrap_or_default();
            return Err(TripleError::Status { code, message });
        }
        dubbo_codec::triple::single_message(body, max)
            .map_err(|e| TripleError::Malformed(format!("the provider's reply: {e}")))
    }
}

/// `grpc-timeout` in the largest unit that keeps it exact enough (at most 8 digits).
fn grpc_timeout(t: Duration) -> HeaderValue {
    let millis = t.as_millis().max(1);
    let text = if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", t.as_secs().min(99_999_999))
    };
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("99999999S"))
}

/// `grpc-message` is percent-encoded.
pub fn grpc_message_decode(m: &str) -> String {
    let bytes = m.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_fit_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_millis(1500)), "1500m");
        assert_eq!(grpc_timeout(Duration::ZERO), "1m");
        assert_eq!(grpc_timeout(Duration::from_secs(200_000)), "200000S");
    }

    #[test]
    fn messages_are_percent_decoded() {
        assert_eq!(grpc_message_decode("no%20such%E2%9C%93"), "no such✓");
        assert_eq!(grpc_message_decode("100%"), "100%");
    }
}
