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
//! | no healthy endpoint, connect failure | 503 | `UNAVAILABLE` |
//! | upstream timeout | 504 | `DEADLINE_EXCEEDED` |

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
            GatewayError::Unavailable(_) | GatewayError::ConnectionLost(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            GatewayError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
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
            GatewayError::Timeout(_) => "DEADLINE_EXCEEDED",
        }
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        if let GatewayError::ProviderException { class, message } = &self {
            error["exception"] = json!(class);
            error["exception_message"] = json!(message);
        }
        let mut response = json_response(self.status(), &json!({ "error": error }));
        if let GatewayError::MethodNotAllowed { allowed } = &self {
            if let Ok(v) = HeaderValue::from_str(allowed.as_str()) {
                response.headers_mut().insert(header::ALLOW, v);
            }
        }
        response
    }
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, body: &Json) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
