//! HTTP/JSON → gRPC (and Triple): `POST /{package.Service}/{Method}` with a JSON body, on a
//! gRPC route's path, becomes a unary gRPC call. The JSON converts to the request message by
//! its protobuf descriptor (the proto3 JSON mapping: int64 as strings or numbers, enums by
//! name, well-known types), and the reply message back to JSON; `grpc-status` becomes the HTTP
//! status of DESIGN.md's table. Descriptors come from descriptor-set files in the config, or
//! from the provider by gRPC server reflection ([`crate::reflection`]) for services those
//! files do not describe.

use std::sync::Arc;
use std::time::Duration;

use crate::server::RequestBody;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use serde_json::json;

use crate::errors::json_response;
use crate::errors::GatewayError;
use crate::runtime::{GrpcRoute, Runtime};
use crate::server::{boxed, Body};
use crate::telemetry::trace::{Tracing, UpstreamCall};
use crate::telemetry::Tags;
use http_bridge::triple::{TripleCluster, UnaryCall};

/// The descriptors of every message and service the configuration's sets describe.
pub fn load(files: &[String]) -> Result<Option<DescriptorPool>, String> {
    if files.is_empty() {
        return Ok(None);
    }
    let mut pool = DescriptorPool::new();
    for file in files {
        let bytes = std::fs::read(file).map_err(|e| format!("descriptor_sets: {file}: {e}"))?;
        let set = prost_types_set(&bytes).map_err(|e| format!("descriptor_sets: {file}: {e}"))?;
        pool.add_file_descriptor_set(set)
            .map_err(|e| format!("descriptor_sets: {file}: {e}"))?;
    }
    Ok(Some(pool))
}

fn prost_types_set(bytes: &[u8]) -> Result<prost_reflect::prost_types::FileDescriptorSet, String> {
    prost_reflect::prost_types::FileDescriptorSet::decode(bytes)
        .map_err(|e| format!("not a FileDescriptorSet: {e}"))
}

/// The route and method an HTTP/JSON request names, if it is on a gRPC route.
pub fn target<'r>(rt: &'r Runtime, req: &Request<RequestBody>) -> Option<&'r GrpcRoute> {
    let path = req.uri().path();
    rt.grpc_routes
        .iter()
        .find(|r| path.starts_with(r.prefix.as_str()))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    boxed(json_response(
        status,
        &json!({"error": {"code": code, "message": message}}),
    ))
}

pub async fn handle(rt: &Runtime, req: Request<RequestBody>, route: &GrpcRoute) -> Response<Body> {
    let mut tags = Tags {
        route: Some(Arc::clone(&route.label)),
        cluster: Some(Arc::clone(&route.upstream.label)),
        endpoint: None,
    };
    let mut response = transcode(rt, req, route, &mut tags).await;
    response.extensions_mut().insert(tags);
    response
}

async fn transcode(
    rt: &Runtime,
    req: Request<RequestBody>,
    route: &GrpcRoute,
    tags: &mut Tags,
) -> Response<Body> {
    let (upstream, timeout) = (&route.cluster, route.timeout);
    let (parts, body) = req.into_parts();
    let fail = |e: GatewayError, tags: &Tags| {
        crate::proxy::count_failure(rt, tags, &e);
        boxed(e.into_response())
    };
    if let Err(e) = crate::proxy::admit(rt.limiter(&route.limit), &parts) {
        return fail(e, tags);
    }
    if parts.method != http::Method::POST {
        return boxed(
            GatewayError::MethodNotAllowed {
                allowed: http::Method::POST,
            }
            .into_response(),
        );
    }
    let method = match method(rt, upstream, parts.uri.path(), timeout).await {
        Ok(m) => m,
        Err(e) => return error(StatusCode::NOT_FOUND, "NOT_FOUND", &e),
    };
    if method.is_client_streaming() || method.is_server_streaming() {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            &format!("{} streams; call it with a gRPC client", method.full_name()),
        );
    }
    // Counted against the circuit breaker from here, once the call is known to go out (a
    // descriptor lookup, even by reflection, is not a call on the cluster).
    let _permit = match route.upstream.breaker.request() {
        Ok(p) => p,
        Err(open) => {
            let e = GatewayError::CircuitOpen(format!(
                "the circuit breaker of cluster {:?} is open: {open}",
                upstream.name
            ));
            return fail(e, tags);
        }
    };
    let body = match Limited::new(body, rt.max_body_bytes).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                &format!(
                    "request body exceeds the limit of {} bytes",
                    rt.max_body_bytes
                ),
            )
        }
    };
    let request = match message_from_json(&method, &body) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", &e),
    };
    match call(rt, upstream, &parts, &method, &request, timeout, tags).await {
        Ok(reply) => match serde_json::to_vec(&reply) {
            Ok(json) => boxed(crate::errors::json_bytes_response(
                StatusCode::OK,
                json.into(),
            )),
            Err(e) => error(
                StatusCode::BAD_GATEWAY,
                "BAD_GATEWAY",
                &format!("the reply cannot be written as JSON: {e}"),
            ),
        },
        Err(response) => response,
    }
}

/// A request body as the method's input message (proto3 JSON mapping; empty is the default
/// message); the error names what does not fit.
pub(crate) fn message_from_json(
    method: &MethodDescriptor,
    body: &[u8],
) -> Result<DynamicMessage, String> {
    let json: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let mut de = serde_json::Deserializer::from_slice(json);
    DynamicMessage::deserialize(method.input(), &mut de)
        .and_then(|m| de.end().map(|()| m))
        .map_err(|e| format!("the body is not a {}: {e}", method.input().full_name()))
}

/// The method a path names: from the configured descriptor sets, else from what the
/// cluster's provider tells by server reflection.
async fn method(
    rt: &Runtime,
    upstream: &TripleCluster,
    path: &str,
    timeout: Duration,
) -> Result<MethodDescriptor, String> {
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let (service, name) = (
        segments.next().unwrap_or_default(),
        segments.next().unwrap_or_default(),
    );
    let configured = rt
        .descriptors
        .as_ref()
        .and_then(|pool| pool.get_service_by_name(service));
    let service = match configured {
        Some(found) => found,
        None => {
            let reflected = match rt.reflected.get(&upstream.name) {
                Some(known) => Arc::clone(&known),
                None => Arc::clone(&rt.reflected.entry(upstream.name.clone()).or_default()),
            };
            match reflected.find(service) {
                Some(found) => found,
                None => reflected.fetch(upstream, service, timeout).await?,
            }
        }
    };
    let found = service.methods().find(|m| m.name() == name);
    found.ok_or_else(|| format!("{} has no method {name:?}", service.full_name()))
}

/// One unary call; the reply message, or the HTTP error response.
async fn call(
    rt: &Runtime,
    upstream: &TripleCluster,
    parts: &Parts,
    method: &MethodDescriptor,
    request: &DynamicMessage,
    timeout: Duration,
    tags: &mut Tags,
) -> Result<DynamicMessage, Response<Body>> {
    let fail = |e: GatewayError, tags: &Tags| {
        crate::proxy::count_failure(rt, tags, &e);
        boxed(e.into_response())
    };
    let Some(endpoint) = upstream.pick() else {
        let e = GatewayError::Unavailable(format!("cluster {:?} has no endpoints", upstream.name));
        return Err(fail(e, tags));
    };
    tags.endpoint = Some(endpoint.addr);
    let header = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| parts.headers.get(*n).and_then(|v| v.to_str().ok()))
    };
    let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    let message = request.encode_to_vec();
    let mut headers = crate::triple_call::headers(
        parts,
        header(["x-dubbo-version", "x-dubbo-service-version"]),
        header(["x-dubbo-group", "x-dubbo-service-group"]),
        &rt.propagate_headers,
    );
    let span = Tracing::start_upstream(
        rt.tracing.as_deref(),
        &parts.extensions,
        &UpstreamCall {
            system: "grpc",
            service: method.parent_service().full_name(),
            method: method.name(),
            cluster: &upstream.name,
            endpoint: Some(endpoint.addr),
        },
    );
    if let (Some(cx), Some(tracing)) = (&span, &rt.tracing) {
        tracing.inject_headers(cx, &mut headers);
    }
    let call = UnaryCall {
        path: &path,
        content_type: "application/grpc",
        headers,
        message: &message,
        timeout,
        max_reply: upstream.max_message,
    };
    let outcome = match call
        .send(upstream.client(crate::workers::id()), endpoint.addr)
        .await
    {
        Err(e) => Err(crate::triple_call::call_error(e)),
        Ok(reply) => DynamicMessage::decode(method.output(), reply).map_err(|e| {
            GatewayError::BadGateway(format!(
                "the reply is not a {}: {e}",
                method.output().full_name()
            ))
        }),
    };
    if let Some(cx) = &span {
        Tracing::finish_upstream(cx, outcome.as_ref().err().map(|e| e.to_string()).as_deref());
    }
    outcome.map_err(|e| fail(e, tags))
}
