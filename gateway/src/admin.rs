//! The admin API (loopback by default): liveness, readiness, the configuration in force, and
//! the OpenAPI document of what published metadata exposes.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::errors::json_response;
use crate::openapi;
use crate::runtime::{RouteKind, Runtime};

pub async fn handle<B>(
    rt: &Arc<Runtime>,
    listeners: &[SocketAddr],
    req: &Request<B>,
) -> Response<Full<Bytes>> {
    match req.uri().path() {
        "/live" => json_response(StatusCode::OK, &json!({ "live": true })),
        // Serving implies the configuration is loaded, every listener bound and the metadata
        // store open.
        "/ready" => json_response(StatusCode::OK, &json!({ "ready": true })),
        "/config_dump" => json_response(
            StatusCode::OK,
            &json!({ "config": rt.config, "automatic_routes": automatic_routes(rt) }),
        ),
        "/openapi.json" => match openapi::document(rt, listeners).await {
            Ok(doc) => json_response(StatusCode::OK, &doc),
            Err(e) => e.into_response(),
        },
        other => json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": { "code": "NOT_FOUND", "message": format!("no admin endpoint {other}; try /live, /ready, /config_dump or /openapi.json") } }),
        ),
    }
}

/// The generic routes the gateway made for applications its clusters know.
fn automatic_routes(rt: &Runtime) -> Vec<serde_json::Value> {
    rt.routes
        .iter()
        .filter(|r| r.automatic)
        .filter_map(|r| match &r.kind {
            RouteKind::Generic { prefix } => Some(json!({
                "path": format!("POST {prefix}/{{interface}}/{{method}}"),
                "cluster": r.cluster.cluster.name,
            })),
            RouteKind::Declared { .. } => None,
        })
        .collect()
}
