//! gRPC ingress: gRPC (and Triple, which is gRPC on the wire) calls proxied to a gRPC cluster
//! as they are — unary and every streaming kind, with flow control, metadata, trailers and
//! `grpc-timeout` carried through, and cancellation too (a call the client abandons is reset
//! upstream). Errors the gateway itself finds are answered the gRPC way: a trailers-only
//! response with `grpc-status` and `grpc-message`.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::server::RequestBody;
use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Empty};
use http_bridge::h2::Client;

use crate::breaker::{Breaker, Held};
use crate::errors::GatewayError;
use crate::runtime::Runtime;
use crate::server::Body;
use crate::telemetry::trace::{Tracing, UpstreamCall};
use crate::telemetry::Tags;

/// gRPC status codes the gateway answers with itself.
const UNAVAILABLE: u8 = 14;
const UNIMPLEMENTED: u8 = 12;

pub fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

pub async fn handle(rt: &Runtime, req: Request<RequestBody>) -> Response<Body> {
    let mut tags = Tags::default();
    let mut response = proxy(rt, req, &mut tags).await;
    response.extensions_mut().insert(tags);
    response
}

async fn proxy(rt: &Runtime, req: Request<RequestBody>, tags: &mut Tags) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path();
    let refuse = |e: GatewayError, tags: &Tags| {
        crate::proxy::count_failure(rt, tags, &e);
        status_only(e.grpc_code(), &e.to_string())
    };
    let route = rt
        .grpc_routes
        .iter()
        .find(|r| path.starts_with(r.prefix.as_str()));
    let target = match route {
        Some(route) => {
            tags.route = Some(Arc::clone(&route.label));
            tags.cluster = Some(Arc::clone(&route.upstream.label));
            if let Err(e) = crate::proxy::admit(rt.limiter(&route.limit), &parts) {
                return refuse(e, tags);
            }
            match route.cluster.pick() {
                Some(endpoint) => Target {
                    addr: endpoint.addr,
                    client: route.cluster.client(crate::workers::id()).clone(),
                    breaker: Arc::clone(&route.upstream.breaker),
                    outlier: None,
                },
                None => {
                    let e = GatewayError::Unavailable(format!(
                        "cluster {:?} has no endpoints",
                        route.cluster.name
                    ));
                    return refuse(e, tags);
                }
            }
        }
        // Routes from xDS: the cluster's protocol says whether it speaks gRPC.
        None => {
            let target = match &rt.xds {
                Some(xds) => match xds_target(xds, &parts, tags) {
                    Ok(target) => target,
                    Err((code, message)) => return status_only(code, &message),
                },
                None => return status_only(UNIMPLEMENTED, &format!("no gRPC route for {path}")),
            };
            // After routing, so that a refusal is counted under its route.
            if let Err(e) = crate::proxy::admit(rt.default_limit.as_deref(), &parts) {
                return refuse(e, tags);
            }
            target
        }
    };
    tags.endpoint = Some(target.addr);
    // Held until the response body ends: a stream counts as in flight while it lasts.
    let permit = match target.breaker.request() {
        Ok(p) => p,
        Err(open) => {
            let e = GatewayError::CircuitOpen(format!(
                "the circuit breaker of cluster {:?} is open: {open}",
                tags.cluster.as_deref().unwrap_or_default()
            ));
            return refuse(e, tags);
        }
    };
    let addr = target.addr;
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match format!("http://{addr}{path_and_query}").parse() {
        Ok(uri) => uri,
        Err(_) => return status_only(UNIMPLEMENTED, "the path cannot be forwarded"),
    };
    // Hop-by-hop headers stay here (`te: trailers` is end-to-end for gRPC and is kept).
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "host",
    ] {
        parts.headers.remove(name);
    }
    // Traced: the provider's parent is this call's span; it ends with the response head
    // (a stream's messages are not followed).
    let span = rt.tracing.as_deref().and_then(|tracing| {
        let path = parts.uri.path();
        let (service, method) = path.trim_start_matches('/').split_once('/')?;
        let call = UpstreamCall {
            system: "grpc",
            service,
            method,
            cluster: tags.cluster.as_deref().unwrap_or_default(),
            endpoint: Some(addr),
        };
        Tracing::start_upstream(Some(tracing), &parts.extensions, &call)
    });
    if let (Some(cx), Some(tracing)) = (&span, &rt.tracing) {
        tracing.inject_headers(cx, &mut parts.headers);
    }
    let sent = target
        .client
        .request(addr, Request::from_parts(parts, body.boxed()))
        .await;
    if let Some(cx) = &span {
        let error = match &sent {
            Err(e) => Some(e.to_string()),
            Ok(r) => r
                .headers()
                .get("grpc-status")
                .filter(|s| *s != "0")
                .map(|s| format!("grpc-status {}", s.to_str().unwrap_or("?"))),
        };
        Tracing::finish_upstream(cx, error.as_deref());
    }
    // Outlier detection: reaching the endpoint and getting an answer is success (a gRPC
    // status is the provider's answer).
    if let Some((cluster, endpoint)) = &target.outlier {
        crate::proxy::record(rt, cluster, endpoint, sent.is_ok());
    }
    match sent {
        Ok(response) => {
            response.map(|body| BodyExt::boxed(Held::new(body.map_err(Into::into), permit)))
        }
        Err(e) => {
            let e = GatewayError::Unavailable(format!(
                "cluster {:?} endpoint {addr} is unreachable: {e}",
                tags.cluster.as_deref().unwrap_or_default()
            ));
            refuse(e, tags)
        }
    }
}

/// Where a gRPC call goes: the endpoint, the client to reach it, the cluster's breaker, and
/// for xDS clusters what outlier detection records against.
struct Target {
    addr: SocketAddr,
    client: Client,
    breaker: Arc<Breaker>,
    outlier: Option<(
        Arc<crate::xds::ClusterView>,
        Arc<http_bridge::dubbo2::Endpoint>,
    )>,
}

/// The target of a gRPC call routed by xDS, or the gRPC status (and message) to answer.
fn xds_target(
    xds: &crate::xds::XdsRouting,
    parts: &http::request::Parts,
    tags: &mut Tags,
) -> Result<Target, (u8, String)> {
    let routed = crate::xds_route::route(xds, parts).map_err(|e| {
        let code = match e.status() {
            http::StatusCode::SERVICE_UNAVAILABLE => UNAVAILABLE,
            _ => UNIMPLEMENTED,
        };
        (code, e.to_string())
    })?;
    tags.route = Some(Arc::clone(&routed.label));
    tags.cluster = Some(Arc::clone(&routed.cluster.name));
    let cluster = &routed.cluster.cluster;
    if !routed.cluster.speaks_triple() {
        return Err((
            UNIMPLEMENTED,
            format!(
                "cluster {:?} is not a gRPC/Triple cluster (its filter_metadata.dubbo.protocol)",
                cluster.name
            ),
        ));
    }
    let endpoint = routed.cluster.pick(routed.hash).ok_or_else(|| {
        (
            UNAVAILABLE,
            format!("cluster {:?} has no endpoints", cluster.name),
        )
    })?;
    Ok(Target {
        addr: endpoint.pool.addr(),
        client: xds.grpc_client().clone(),
        breaker: Arc::clone(&routed.cluster.breaker),
        outlier: Some((Arc::clone(&routed.cluster), endpoint)),
    })
}

/// A trailers-only gRPC answer.
pub(crate) fn status_only(code: u8, message: &str) -> Response<Body> {
    let mut response = Response::new(
        Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed(),
    );
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(u16::from(code)));
    if let Ok(v) = HeaderValue::from_str(&percent_encode(message)) {
        headers.insert("grpc-message", v);
    }
    response
}

/// gRPC's `grpc-message` encoding: printable ASCII except `%` as is, the rest `%XX`.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
