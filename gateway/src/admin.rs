//! The admin API (loopback by default): liveness, readiness and the configuration in force.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::errors::json_response;
use crate::runtime::Runtime;

pub fn handle<B>(rt: &Arc<Runtime>, req: &Request<B>) -> Response<Full<Bytes>> {
    match req.uri().path() {
        "/live" => json_response(StatusCode::OK, &json!({ "live": true })),
        // Serving implies the configuration is loaded and every listener bound.
        "/ready" => json_response(StatusCode::OK, &json!({ "ready": true })),
        "/config_dump" => json_response(StatusCode::OK, &json!({ "config": rt.config })),
        other => json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": { "code": "NOT_FOUND", "message": format!("no admin endpoint {other}; try /live, /ready or /config_dump") } }),
        ),
    }
}
