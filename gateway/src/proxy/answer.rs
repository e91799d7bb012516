//! A Dubbo2 reply (or a failed call) as the gateway's answer: values as JSON, exceptions and
//! statuses by DESIGN.md's table.

use std::time::Duration;

use bytes::Bytes;
use dubbo_codec::dubbo2::{Outcome, Response as DubboResponse, Status};
use dubbo_codec::hessian::{java, Value};
use http::{Response, StatusCode};
use http_body_util::Full;
use http_bridge::dubbo2::CallError;
use http_bridge::to_json::to_json;
use http_bridge::types::TypeRegistry;
use serde_json::Value as Json;

use crate::errors::{json_response, GatewayError};
use crate::runtime::Runtime;

pub(super) fn call_error(e: CallError, timeout: Duration) -> GatewayError {
    match e {
        CallError::Timeout(_) => {
            GatewayError::Timeout(format!("the provider did not answer within {timeout:?}"))
        }
        CallError::Connect(m) => {
            GatewayError::Unavailable(format!("provider connection failed: {m}"))
        }
        CallError::Closed(m) => {
            GatewayError::ConnectionLost(format!("provider connection failed: {m}"))
        }
        CallError::Malformed(e) => {
            GatewayError::BadGateway(format!("malformed reply from the provider: {e}"))
        }
        CallError::Encode(e) => {
            GatewayError::BadRequest(format!("the call cannot be encoded: {e}"))
        }
    }
}

pub(super) fn answer(
    rt: &Runtime,
    types: &TypeRegistry,
    reply: DubboResponse,
) -> Result<Response<Full<Bytes>>, GatewayError> {
    match reply.outcome {
        Outcome::Value(v) => Ok(json_response(StatusCode::OK, &to_json(&v, types, rt.json))),
        Outcome::Null => Ok(json_response(StatusCode::OK, &Json::Null)),
        Outcome::Exception(e) => Err(exception(&e)),
        Outcome::Error(message) => Err(status_error(reply.status, message)),
        Outcome::Heartbeat => Err(GatewayError::BadGateway(
            "the provider answered a call with a heartbeat".into(),
        )),
    }
}

fn exception(e: &Value) -> GatewayError {
    match (java::throwable(e), e) {
        (Some((class, message)), _) => GatewayError::ProviderException {
            class: Some(class.to_owned()),
            message: message.map(str::to_owned),
        },
        (None, Value::String(message)) => GatewayError::ProviderException {
            class: None,
            message: Some(message.clone()),
        },
        (None, other) => GatewayError::ProviderException {
            class: other.type_name().map(str::to_owned),
            message: None,
        },
    }
}

/// Non-OK statuses. Java reports an unknown service or method as SERVICE_ERROR with a message,
/// other providers as SERVICE_NOT_FOUND: both are 404 to the caller.
fn status_error(status: Status, message: String) -> GatewayError {
    let unknown = [
        "Not found exported service",
        "no such method",
        "NoSuchMethodException",
    ]
    .iter()
    .any(|m| message.contains(m));
    match status {
        Status::SERVICE_NOT_FOUND => {
            GatewayError::NotFound(format!("the provider does not export it: {message}"))
        }
        Status::SERVICE_ERROR if unknown => {
            GatewayError::NotFound(format!("the provider does not export it: {message}"))
        }
        Status::SERVICE_ERROR => GatewayError::ProviderException {
            class: None,
            message: Some(message),
        },
        Status::CLIENT_TIMEOUT | Status::SERVER_TIMEOUT => {
            GatewayError::Timeout(format!("the provider timed out: {message}"))
        }
        Status::SERVER_THREADPOOL_EXHAUSTED => {
            GatewayError::Unavailable(format!("the provider is overloaded: {message}"))
        }
        other => GatewayError::BadGateway(format!("the provider answered {other}: {message}")),
    }
}
