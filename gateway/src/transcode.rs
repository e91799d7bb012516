//! HTTP/JSON → gRPC (and Triple): `POST /{package.Service}/{Method}` with a JSON body, on a
//! gRPC route's path, becomes a unary gRPC call. The JSON converts to the request message by
//! its protobuf descriptor (the proto3 JSON mapping: int64 as strings or numbers, enums by
//! name, well-known types), and the reply message back to JSON; `grpc-status` becomes the HTTP
//! status of DESIGN.md's table. Descriptors come from descriptor-set files in the config.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use serde_json::json;

use crate::errors::json_response;
use crate::grpc_proxy::GrpcUpstream;
use crate::runtime::Runtime;
use crate::server::{boxed, Body};

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
pub fn target(rt: &Runtime, req: &Request<Incoming>) -> Option<(Arc<GrpcUpstream>, Duration)> {
    rt.descriptors.as_ref()?;
    let path = req.uri().path();
    rt.grpc_routes
        .iter()
        .zip(&rt.config.grpc_routes)
        .find(|((prefix, _), _)| path.starts_with(prefix.as_str()))
        .map(|((_, upstream), route)| (upstream.clone(), Duration::from_millis(route.timeout_ms)))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    boxed(json_response(
        status,
        &json!({"error": {"code": code, "message": message}}),
    ))
}

pub async fn handle(
    rt: &Runtime,
    req: Request<Incoming>,
    upstream: Arc<GrpcUpstream>,
    timeout: Duration,
) -> Response<Body> {
    let Some(pool) = &rt.descriptors else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no descriptors loaded");
    };
    let (parts, body) = req.into_parts();
    if parts.method != http::Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "gRPC methods take POST",
        );
    }
    let method = match method(pool, parts.uri.path()) {
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
    let json: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &body
    };
    let mut de = serde_json::Deserializer::from_slice(json);
    let request = match DynamicMessage::deserialize(method.input(), &mut de) {
        Ok(m) => m,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                &format!("the body is not a {}: {e}", method.input().full_name()),
            )
        }
    };
    match call(&upstream, &parts, &method, &request, timeout).await {
        Ok(reply) => match serde_json::to_value(&reply) {
            Ok(value) => boxed(json_response(StatusCode::OK, &value)),
            Err(e) => error(
                StatusCode::BAD_GATEWAY,
                "BAD_GATEWAY",
                &format!("the reply cannot be written as JSON: {e}"),
            ),
        },
        Err(response) => response,
    }
}

fn method(pool: &DescriptorPool, path: &str) -> Result<MethodDescriptor, String> {
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let (service, name) = (
        segments.next().unwrap_or_default(),
        segments.next().unwrap_or_default(),
    );
    let service = pool
        .get_service_by_name(service)
        .ok_or_else(|| format!("no service {service:?} in the descriptors"))?;
    let found = service.methods().find(|m| m.name() == name);
    found.ok_or_else(|| format!("{} has no method {name:?}", service.full_name()))
}

/// One unary call; the reply message, or the HTTP error response.
async fn call(
    upstream: &GrpcUpstream,
    parts: &Parts,
    method: &MethodDescriptor,
    request: &DynamicMessage,
    timeout: Duration,
) -> Result<DynamicMessage, Response<Body>> {
    let unavailable = |m: String| error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", &m);
    let addr = upstream
        .pick()
        .ok_or_else(|| unavailable(format!("cluster {:?} has no endpoints", upstream.name)))?;
    let message = request.encode_to_vec();
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    frame.put_slice(&message);
    let uri = format!(
        "http://{addr}/{}/{}",
        method.parent_service().full_name(),
        method.name()
    );
    let mut builder = Request::post(uri)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", format!("{}m", timeout.as_millis().max(1)));
    // Triple's service version and group, from the Dubbo headers.
    for (from, to) in [
        (
            ["x-dubbo-version", "x-dubbo-service-version"],
            "tri-service-version",
        ),
        (
            ["x-dubbo-group", "x-dubbo-service-group"],
            "tri-service-group",
        ),
    ] {
        if let Some(v) = from.iter().find_map(|h| parts.headers.get(*h)) {
            builder = builder.header(to, v.clone());
        }
    }
    for name in ["traceparent", "tracestate", "x-request-id"] {
        if let Some(v) = parts.headers.get(name) {
            builder = builder.header(name, v.clone());
        }
    }
    let body = Full::new(frame.freeze())
        .map_err(|never| match never {})
        .boxed();
    let request = builder
        .body(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", &e.to_string()))?;
    let response = tokio::time::timeout(timeout, async {
        let response = upstream.client().request(request).await?;
        let (head, body) = response.into_parts();
        let collected = body.collect().await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((head, collected))
    })
    .await;
    let (head, collected) = match response {
        Err(_) => {
            return Err(error(
                StatusCode::GATEWAY_TIMEOUT,
                "DEADLINE_EXCEEDED",
                &format!("the provider did not answer within {timeout:?}"),
            ))
        }
        Ok(Err(e)) => return Err(unavailable(format!("provider {addr}: {e}"))),
        Ok(Ok(r)) => r,
    };
    let trailers = collected.trailers().cloned().unwrap_or_default();
    // Trailers-only answers carry the status in the headers.
    let status_of = |name: &str| {
        trailers
            .get(name)
            .or_else(|| head.headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let code: u32 = match status_of("grpc-status") {
        Some(c) => c.parse().unwrap_or(2),
        None if head.status != StatusCode::OK => {
            return Err(error(
                StatusCode::BAD_GATEWAY,
                "BAD_GATEWAY",
                &format!(
                    "the provider answered HTTP {} without a gRPC status",
                    head.status
                ),
            ))
        }
        None => {
            return Err(error(
                StatusCode::BAD_GATEWAY,
                "BAD_GATEWAY",
                "the provider's answer has no grpc-status",
            ))
        }
    };
    if code != 0 {
        let message = status_of("grpc-message")
            .map(|m| decode_message(&m))
            .unwrap_or_default();
        return Err(grpc_error(code, &message));
    }
    let mut bytes = collected.to_bytes();
    if bytes.len() < 5 || bytes[0] != 0 {
        return Err(error(
            StatusCode::BAD_GATEWAY,
            "BAD_GATEWAY",
            "the provider's reply is not one uncompressed gRPC message",
        ));
    }
    bytes.advance(1);
    let len = bytes.get_u32() as usize;
    if bytes.len() < len {
        return Err(error(
            StatusCode::BAD_GATEWAY,
            "BAD_GATEWAY",
            "the provider's reply is cut short",
        ));
    }
    DynamicMessage::decode(method.output(), bytes.slice(..len)).map_err(|e| {
        error(
            StatusCode::BAD_GATEWAY,
            "BAD_GATEWAY",
            &format!("the reply is not a {}: {e}", method.output().full_name()),
        )
    })
}

/// `grpc-status` → the HTTP status of DESIGN.md's table.
fn grpc_error(code: u32, message: &str) -> Response<Body> {
    let (status, name) = match code {
        3 => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        5 => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        12 => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        4 => (StatusCode::GATEWAY_TIMEOUT, "DEADLINE_EXCEEDED"),
        14 => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        8 => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
        16 => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
        7 => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        // UNKNOWN and INTERNAL are what providers send when a handler throws.
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "PROVIDER_EXCEPTION"),
    };
    let mut response = boxed(json_response(
        status,
        &json!({"error": {"code": name, "message": message, "grpc_status": code}}),
    ));
    if code == 8 {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// `grpc-message` is percent-encoded.
fn decode_message(m: &str) -> String {
    let bytes = m.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
