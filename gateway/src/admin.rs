//! The admin API (loopback by default): liveness, readiness, Prometheus metrics, clusters and
//! their endpoints, the configuration in force, and the OpenAPI document of what published
//! metadata exposes.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::errors::{json_response, GatewayError};
use crate::openapi;
use crate::runtime::{RouteKind, Runtime, UpstreamKind};

pub async fn handle<B>(
    rt: &Arc<Runtime>,
    listeners: &[SocketAddr],
    req: &Request<B>,
) -> Response<Full<Bytes>> {
    match req.uri().path() {
        "/live" => json_response(StatusCode::OK, &json!({ "live": true })),
        // Serving implies the configuration is loaded, every listener bound and the metadata
        // store open; with xDS, the initial resources must be in too.
        "/ready" => ready(rt).await,
        "/config_dump" => {
            let mut config = rt.config.clone();
            // The admin API is often reachable by probes and dashboards: no secrets in it.
            if config.metadata.publish_token.is_some() {
                config.metadata.publish_token = Some("<redacted>".into());
            }
            json_response(
                StatusCode::OK,
                &json!({
                    "config": config,
                    "automatic_routes": automatic_routes(rt),
                    "xds": rt.xds.as_ref().map(|x| xds_dump(&x.client.state())),
                }),
            )
        }
        "/metrics" => match rt.metrics.encode(rt) {
            Ok(text) => {
                let mut response = Response::new(Full::new(Bytes::from(text)));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                response
            }
            Err(_) => json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({ "error": { "code": "INTERNAL", "message": "metrics could not be encoded" } }),
            ),
        },
        "/clusters" => json_response(StatusCode::OK, &clusters(rt)),
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
            &json!({ "error": { "code": "NOT_FOUND", "message": format!("no admin endpoint {other}; try /live, /ready, /metrics, /clusters, /config_dump, /metadata or /openapi.json") } }),
        ),
    }
}

/// Ready once the configuration is serving (implied by answering), xDS (if configured) has
/// delivered its initial resources, and the metadata store answers.
async fn ready(rt: &Runtime) -> Response<Full<Bytes>> {
    let mut waiting = Vec::new();
    if rt.xds.as_ref().is_some_and(|x| !x.client.state().ready) {
        waiting.push("the initial xDS resources".to_owned());
    }
    if let Some(typing) = &rt.typing {
        let ping = tokio::time::timeout(std::time::Duration::from_secs(1), typing.registry.ping());
        match ping.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => waiting.push(format!("the metadata store: {e}")),
            Err(_) => waiting.push("the metadata store: no answer within 1 s".to_owned()),
        }
    }
    if waiting.is_empty() {
        json_response(StatusCode::OK, &json!({ "ready": true }))
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "ready": false, "waiting_for": waiting }),
        )
    }
}

/// Every cluster with its circuit breaker and endpoints: health, backoff or ejection, calls in
/// flight.
fn clusters(rt: &Runtime) -> serde_json::Value {
    let breaker = |b: &crate::breaker::Breaker| {
        let limits = b.limits();
        json!({
            "max_requests": limits.max_requests,
            "max_pending_requests": limits.max_pending_requests,
            "in_flight": b.in_flight(),
            "pending": b.pending(),
            "open": b.in_flight() >= limits.max_requests || b.pending() >= limits.max_pending_requests,
        })
    };
    let identity = |i: &http_bridge::dubbo2::DubboIdentity| json!({ "application": i.application.as_deref(), "revision": i.revision.as_deref() });
    let mut out = Vec::new();
    let mut names: Vec<_> = rt.clusters.keys().collect();
    names.sort();
    for name in names {
        let c = &rt.clusters[name];
        let (protocol, endpoints) = match &c.kind {
            UpstreamKind::Dubbo2(cluster) => (
                "dubbo",
                cluster
                    .endpoints()
                    .iter()
                    .map(|e| {
                        json!({
                            "address": e.pool.addr().to_string(),
                            "identity": identity(&e.identity),
                            "usable": !e.pool.is_down(),
                            "in_flight": e.in_flight(),
                        })
                    })
                    .collect::<Vec<_>>(),
            ),
            UpstreamKind::Http(cluster) => (
                "http",
                cluster
                    .endpoints()
                    .iter()
                    .map(|e| json!({ "address": e.to_string() }))
                    .collect(),
            ),
            UpstreamKind::Triple { cluster, .. } => (
                "tri",
                cluster
                    .endpoints()
                    .iter()
                    .map(|e| json!({ "address": e.addr.to_string(), "identity": identity(&e.identity) }))
                    .collect(),
            ),
        };
        out.push(json!({
            "name": name, "source": "config", "protocol": protocol,
            "circuit_breaker": breaker(&c.breaker), "endpoints": endpoints,
        }));
    }
    if let Some(xds) = &rt.xds {
        let view = xds.view();
        let mut names: Vec<_> = view.clusters.keys().collect();
        names.sort();
        for name in names {
            let v = &view.clusters[name];
            let endpoints: Vec<_> = v
                .balancer
                .endpoints()
                .iter()
                .zip(&v.endpoints)
                .enumerate()
                .map(|(i, (lb, e))| {
                    let unusable = xds_core::lb::EndpointState::ejected(v.as_ref(), i);
                    json!({
                        "address": format!("{}:{}", lb.address.host, lb.address.port),
                        "health": format!("{:?}", lb.health).to_lowercase(),
                        "weight": lb.weight,
                        "identity": e.as_ref().map(|e| identity(&e.identity)),
                        "usable": !unusable,
                        "ejected": v.is_ejected(i),
                        "in_flight": e.as_ref().map(|e| e.in_flight()),
                    })
                })
                .collect();
            out.push(json!({
                "name": name, "source": "xds",
                "protocol": v.cluster.protocol.as_deref().unwrap_or("dubbo"),
                "circuit_breaker": breaker(&v.breaker), "endpoints": endpoints,
            }));
        }
    }
    json!({ "clusters": out })
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

/// The xDS resources in force, with their versions.
fn xds_dump(state: &xds_core::client::XdsState) -> serde_json::Value {
    fn versions<T>(
        m: &std::collections::BTreeMap<String, xds_core::client::Versioned<T>>,
    ) -> serde_json::Value {
        m.iter()
            .map(|(name, v)| (name.clone(), json!(v.version)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
    json!({
        "connected": state.connected,
        "ready": state.ready,
        "versions": state.versions,
        "listeners": versions(&state.listeners),
        "routes": versions(&state.routes),
        "clusters": versions(&state.clusters),
        "endpoints": state.endpoints.iter().map(|(name, v)| (name.clone(), json!({
            "version": v.version,
            "endpoints": v.resource.all().map(|e| format!("{}:{}", e.address.host, e.address.port)).collect::<Vec<_>>(),
        }))).collect::<serde_json::Map<_, _>>(),
        "absent": state.absent.iter().map(|(t, n)| json!({"type": t, "name": n})).collect::<Vec<_>>(),
        "acks": state.acks,
        "nacks": state.nacks,
        "last_nack": state.last_nack,
    })
}

/// The generic routes the gateway made for applications its clusters know.
fn automatic_routes(rt: &Runtime) -> Vec<serde_json::Value> {
    rt.routes
        .iter()
        .filter(|r| r.automatic)
        .filter_map(|r| match &r.kind {
            RouteKind::Generic { prefix } => Some(json!({
                "path": format!("POST {prefix}/{{interface}}/{{method}}"),
                "cluster": r.cluster.name(),
            })),
            RouteKind::Declared { .. } => None,
        })
        .collect()
}
