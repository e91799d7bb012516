//! Every request on a listener: dispatch by kind (gRPC proxied, HTTP/JSON on a gRPC route
//! transcoded, the rest mapped onto Dubbo), then measure it and log it. The handlers say where
//! a request went by putting [`Tags`] on the response; metrics and the access log read them
//! here, so neither costs the handlers anything.

use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response};
use hyper::body::Body as _;

use crate::server::RequestBody;

use crate::runtime::Runtime;
use crate::server::Body;
use crate::telemetry::access_log::{clip, now_rfc3339, Entry};
use crate::telemetry::trace::{RequestTrace, Tracing};
use crate::telemetry::{RemoteAddr, Tags};

/// What the access log needs of a request, taken before the request is consumed (only when
/// access logs are on).
struct Facts {
    remote: Option<std::net::SocketAddr>,
    method: http::Method,
    path: String,
    protocol: &'static str,
    request_bytes: Option<u64>,
    request_id: Option<String>,
    trace_id: Option<String>,
    user_agent: Option<String>,
}

impl Facts {
    fn of(req: &Request<RequestBody>) -> Facts {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| clip(v).to_owned())
        };
        Facts {
            remote: req.extensions().get::<RemoteAddr>().map(|a| a.0),
            method: req.method().clone(),
            path: clip(req.uri().path()).to_owned(),
            protocol: match req.version() {
                http::Version::HTTP_2 => "HTTP/2",
                http::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            request_bytes: req.body().size_hint().exact(),
            request_id: header("x-request-id"),
            // `traceparent`: version-traceid-parentid-flags.
            trace_id: header("traceparent").and_then(|t| t.split('-').nth(1).map(str::to_owned)),
            user_agent: header("user-agent"),
        }
    }
}

pub async fn handle(rt: Arc<Runtime>, mut req: Request<RequestBody>) -> Response<Body> {
    let start = Instant::now();
    let facts = rt.access_log.as_ref().map(|_| Facts::of(&req));
    let trace = rt.tracing.as_ref().map(|t| {
        let cx = t.server_span(req.method(), req.uri().path(), req.headers());
        req.extensions_mut().insert(RequestTrace(cx.clone()));
        (cx, req.method().clone())
    });
    // Each kind of call is its own boxed future: the one this request runs is allocated at
    // its size, instead of every request's future being as large as the largest kind (a
    // few KiB per request in flight at 1,000 connections).
    let mut response = if crate::grpc_proxy::is_grpc(&req) {
        Box::pin(crate::grpc_proxy::handle(&rt, req)).await
    } else if let Some(route) = crate::http_proxy::target(&rt, &req) {
        Box::pin(crate::http_proxy::handle(&rt, req, route)).await
    } else if let Some(route) = crate::transcode::target(&rt, &req) {
        Box::pin(crate::transcode::handle(&rt, req, route)).await
    } else {
        crate::server::boxed(Box::pin(crate::proxy::handle(Arc::clone(&rt), req)).await)
    };
    let elapsed = start.elapsed();
    let tags = response
        .extensions_mut()
        .remove::<Tags>()
        .unwrap_or_default();
    let status = response.status().as_u16();
    rt.metrics.observe(&tags, status, elapsed);
    if let Some((cx, method)) = &trace {
        Tracing::finish_server(
            cx,
            method,
            tags.route.as_deref(),
            tags.cluster.as_deref(),
            status,
        );
    }
    if let (Some(logger), Some(facts)) = (&rt.access_log, facts) {
        let entry = Entry {
            time: now_rfc3339(),
            remote: facts.remote,
            method: facts.method.as_str(),
            path: &facts.path,
            protocol: facts.protocol,
            status,
            grpc_status: response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok()),
            // Microsecond precision.
            duration_ms: elapsed.as_micros() as f64 / 1000.0,
            request_bytes: facts.request_bytes,
            response_bytes: response.body().size_hint().exact(),
            route: tags.route.as_deref(),
            cluster: tags.cluster.as_deref(),
            upstream: tags.endpoint,
            request_id: facts.request_id.as_deref(),
            trace_id: facts.trace_id.as_deref(),
            user_agent: facts.user_agent.as_deref(),
        };
        logger.log(&entry);
    }
    response
}
