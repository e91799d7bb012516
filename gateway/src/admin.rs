//! The admin API (loopback by default): liveness, readiness, the configuration in force, and
//! the OpenAPI document of what published metadata exposes.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::errors::{json_response, GatewayError};
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
        "/config_dump" => {
            let mut config = rt.config.clone();
            // The admin API is often reachable by probes and dashboards: no secrets in it.
            if config.metadata.publish_token.is_some() {
                config.metadata.publish_token = Some("<redacted>".into());
            }
            json_response(
                StatusCode::OK,
                &json!({ "config": config, "automatic_routes": automatic_routes(rt) }),
            )
        }
        "/metadata" => match metadata_summary(rt).await {
            Ok(summary) => json_response(StatusCode::OK, &summary),
            Err(e) => e.into_response(),
        },
        "/openapi.json" => match openapi::document(rt, listeners).await {
            Ok(doc) => json_response(StatusCode::OK, &doc),
            Err(e) => e.into_response(),
        },
        other => json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": { "code": "NOT_FOUND", "message": format!("no admin endpoint {other}; try /live, /ready, /config_dump, /metadata or /openapi.json") } }),
        ),
    }
}

/// What the metadata store holds and its counters since start.
async fn metadata_summary(rt: &Runtime) -> Result<serde_json::Value, GatewayError> {
    let Some(typing) = &rt.typing else {
        return Ok(json!({ "enabled": false }));
    };
    let registry = &typing.registry;
    let all = registry.all_metadata().await.map_err(|e| {
        tracing::warn!(error = %e, "metadata listing failed");
        GatewayError::Unavailable("the metadata store cannot answer; retry later".into())
    })?;
    let revisions: Vec<_> = all
        .iter()
        .map(|(revision, e)| {
            json!({
                "application": e.view.application,
                "revision": revision,
                "published_at_ms": e.record.published_at_ms,
                "services": e.view.services.keys().collect::<Vec<_>>(),
            })
        })
        .collect();
    let s = registry.stats();
    Ok(json!({
        "enabled": true,
        "ttl_secs": registry.ttl().as_secs(),
        "stats": {
            "publishes": s.publishes, "conflicts": s.conflicts, "lookups": s.lookups,
            "misses": s.misses, "expired": s.expired,
        },
        "revisions": revisions,
    }))
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
