//! gRPC ingress: gRPC (and Triple, which is gRPC on the wire) calls proxied to a gRPC cluster
//! as they are — unary and every streaming kind, with flow control, metadata, trailers and
//! `grpc-timeout` carried through, and cancellation too (a call the client abandons is reset
//! upstream). Errors the gateway itself finds are answered the gRPC way: a trailers-only
//! response with `grpc-status` and `grpc-message`.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;

use crate::runtime::Runtime;
use crate::server::Body;

/// gRPC status codes the gateway answers with itself.
const UNAVAILABLE: u8 = 14;
const UNIMPLEMENTED: u8 = 12;

pub fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

pub async fn handle(rt: &Runtime, req: Request<Incoming>) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let routed = rt
        .grpc_routes
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix.as_str()))
        .map(|(_, u)| u.clone());
    let (addr, client, cluster) = match routed {
        Some(upstream) => match upstream.pick() {
            Some(endpoint) => (
                endpoint.addr,
                upstream.client().clone(),
                upstream.name.clone(),
            ),
            None => {
                return status_only(
                    UNAVAILABLE,
                    &format!("cluster {:?} has no endpoints", upstream.name),
                )
            }
        },
        // Routes from xDS: the cluster's protocol says whether it speaks gRPC.
        None => match &rt.xds {
            Some(xds) => match xds_target(xds, &parts) {
                Ok(target) => target,
                Err((code, message)) => return status_only(code, &message),
            },
            None => return status_only(UNIMPLEMENTED, &format!("no gRPC route for {path}")),
        },
    };
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
    match client
        .request(Request::from_parts(parts, body.boxed()))
        .await
    {
        Ok(response) => response.map(BodyExt::boxed),
        Err(e) => status_only(
            UNAVAILABLE,
            &format!("cluster {cluster:?} endpoint {addr} is unreachable: {e}"),
        ),
    }
}

/// Where a gRPC call goes: the endpoint, the client to reach it, the cluster's name.
type Target = (SocketAddr, Client<HttpConnector, Body>, String);

/// The target of a gRPC call routed by xDS, or the gRPC status (and message) to answer.
fn xds_target(
    xds: &crate::xds::XdsRouting,
    parts: &http::request::Parts,
) -> Result<Target, (u8, String)> {
    let routed = crate::xds_route::route(xds, parts).map_err(|e| {
        let code = match e.status() {
            http::StatusCode::SERVICE_UNAVAILABLE => UNAVAILABLE,
            _ => UNIMPLEMENTED,
        };
        (code, e.to_string())
    })?;
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
    Ok((
        endpoint.pool.addr(),
        xds.grpc_client.clone(),
        cluster.name.clone(),
    ))
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
