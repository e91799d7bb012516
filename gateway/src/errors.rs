//! The one place where failures become HTTP responses: DESIGN.md's error table.
//!
//! | situation | HTTP | `code` |
//! |---|---|---|
//! | no route, unknown service or method | 404 | `NOT_FOUND` |
//! | path served, other HTTP method | 405 | `METHOD_NOT_ALLOWED` |
//! | malformed JSON, wrong argument type | 400 | `INVALID_ARGUMENT` |
//! | body over the limit | 413 | `PAYLOAD_TOO_LARGE` |
//! | provider threw | 500 | `PROVIDER_EXCEPTION` |
//! | malformed or unexpected upstream reply | 502 | `BAD_GATEWAY` |
//! | rate limited | 429 + `Retry-After` | `RATE_LIMITED` |
//! | no healthy endpoint, connect failure | 503 | `UNAVAILABLE` |
//! | circuit breaker open | 503 | `CIRCUIT_OPEN` |
//! | upstream timeout | 504 | `DEADLINE_EXCEEDED` |
//!
//! A gRPC/Triple provider's non-OK `grpc-status` maps by the same table (UNKNOWN and INTERNAL
//! are exceptions, NOT_FOUND and UNIMPLEMENTED 404, …), and the body adds `grpc_status`.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value as Json};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("no route for {method} {path}")]
    NoRoute { method: Method, path: String },
    #[error("this path takes {allowed} requests")]
    MethodNotAllowed { allowed: Method },
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the provider threw {}{}", class.as_deref().unwrap_or("an exception"), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    /// Class and message only: stack traces stay out of public responses.
    ProviderException {
        class: Option<String>,
        message: Option<String>,
    },
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    Unavailable(String),
    /// The connection broke after the call was sent: the provider may have run it.
    #[error("{0}")]
    ConnectionLost(String),
    #[error("{0}")]
    Timeout(String),
    /// A rate limit said no; the client may try again after `retry_after`.
    #[error("rate limited: try again in {}s", crate::rate_limit::retry_after_secs(*retry_after))]
    RateLimited { retry_after: std::time::Duration },
    /// The cluster's circuit breaker is open: answered at once, never retried.
    #[error("{0}")]
    CircuitOpen(String),
    /// A gRPC/Triple provider's non-OK status, with its message as is.
    #[error("{}", if message.is_empty() { format!("the provider answered grpc-status {code}") } else { message.clone() })]
    Grpc { code: u32, message: String },
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::NoRoute { .. } | GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::ProviderException { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            GatewayError::Unavailable(_)
            | GatewayError::ConnectionLost(_)
            | GatewayError::CircuitOpen(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::Grpc { code, .. } => grpc_http_status(*code).0,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::NoRoute { .. } | GatewayError::NotFound(_) => "NOT_FOUND",
            GatewayError::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            GatewayError::BodyTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            GatewayError::BadRequest(_) => "INVALID_ARGUMENT",
            GatewayError::ProviderException { .. } => "PROVIDER_EXCEPTION",
            GatewayError::BadGateway(_) => "BAD_GATEWAY",
            GatewayError::Unavailable(_) | GatewayError::ConnectionLost(_) => "UNAVAILABLE",
            GatewayError::CircuitOpen(_) => "CIRCUIT_OPEN",
            GatewayError::Timeout(_) => "DEADLINE_EXCEEDED",
            GatewayError::RateLimited { .. } => "RATE_LIMITED",
            GatewayError::Grpc { code, .. } => grpc_http_status(*code).1,
        }
    }

    /// The gRPC status the gateway answers gRPC callers with for this failure.
    pub fn grpc_code(&self) -> u8 {
        match self {
            GatewayError::NoRoute { .. } | GatewayError::NotFound(_) => 12,
            GatewayError::RateLimited { .. } | GatewayError::BodyTooLarge { .. } => 8,
            GatewayError::BadRequest(_) | GatewayError::MethodNotAllowed { .. } => 3,
            GatewayError::Timeout(_) => 4,
            GatewayError::Unavailable(_)
            | GatewayError::ConnectionLost(_)
            | GatewayError::CircuitOpen(_) => 14,
            GatewayError::BadGateway(_) => 13,
            GatewayError::ProviderException { .. } => 2,
            GatewayError::Grpc { code, .. } => u8::try_from(*code).unwrap_or(2),
        }
    }

    /// A provider's non-OK `grpc-status`, answered by DESIGN.md's table read backwards.
    pub fn from_grpc(code: u32, message: String) -> GatewayError {
        GatewayError::Grpc { code, message }
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        let mut response_retry_after = false;
        if let GatewayError::ProviderException { class, message } = &self {
            error["exception"] = json!(class);
            error["exception_message"] = json!(message);
        }
        if let GatewayError::Grpc { code, .. } = &self {
            error["grpc_status"] = json!(code);
            if *code == 8 {
                response_retry_after = true;
            }
        }
        let mut response = json_response(self.status(), &json!({ "error": error }));
        if let GatewayError::MethodNotAllowed { allowed } = &self {
            if let Ok(v) = HeaderValue::from_str(allowed.as_str()) {
                response.headers_mut().insert(header::ALLOW, v);
            }
        }
        if response_retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let GatewayError::RateLimited { retry_after } = &self {
            let secs = crate::rate_limit::retry_after_secs(*retry_after);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// HTTP status and error code for a provider's gRPC status.
fn grpc_http_status(code: u32) -> (StatusCode, &'static str) {
    match code {
        3 => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        4 => (StatusCode::GATEWAY_TIMEOUT, "DEADLINE_EXCEEDED"),
        5 | 12 => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        14 => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        1 => (
            StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_GATEWAY),
            "CANCELLED",
        ),
        6 => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
        7 => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        8 => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
        9 => (StatusCode::BAD_REQUEST, "FAILED_PRECONDITION"),
        10 => (StatusCode::CONFLICT, "ABORTED"),
        11 => (StatusCode::BAD_REQUEST, "OUT_OF_RANGE"),
        15 => (StatusCode::INTERNAL_SERVER_ERROR, "DATA_LOSS"),
        16 => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
        // UNKNOWN and INTERNAL are what providers send when a handler throws.
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "PROVIDER_EXCEPTION"),
    }
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, body: &Json) -> Response<Full<Bytes>> {
    json_bytes_response(status, Bytes::from(body.to_string()))
}

/// A JSON document already serialized (straight from the value it describes, with no
/// `serde_json::Value` built in between).
pub fn json_bytes_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
