//! HTTP/JSON → Triple on the same routes as Dubbo2 (configured or from xDS). A method the
//! configured descriptor sets describe goes as protobuf. For services without IDL the endpoint
//! is picked first, its (application, revision) types the JSON arguments from published metadata,
//! and the call travels as Triple's hessian2 wrapper messages — or, for a cluster whose
//! providers use a custom JSON serialization, the body itself is the message and the reply
//! message is the answer.

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use http_bridge::dubbo2::DubboIdentity;
use http_bridge::h2::Client;
use http_bridge::to_json::to_json;
use http_bridge::triple::{wrapper, TripleCluster, TripleError, UnaryCall};
use serde::de::IgnoredAny;
use std::net::SocketAddr;

use crate::config::Serialization;
use crate::errors::{json_response, GatewayError};
use crate::proxy::{Pending, Target};
use crate::runtime::Runtime;
use crate::telemetry::trace::{Tracing, UpstreamCall};

/// Headers every Triple call carries: the service version and group, the configured headers
/// as attachments (Triple sends attachments as headers), and the trace context.
pub(crate) fn headers(
    parts: &Parts,
    version: Option<&str>,
    group: Option<&str>,
    propagate: &[HeaderName],
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("tri-service-version", version),
        ("tri-service-group", group),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    }
    let always = ["traceparent", "tracestate", "x-request-id"].map(HeaderName::from_static);
    for name in always.iter().chain(propagate) {
        if let Some(v) = parts.headers.get(name) {
            headers.insert(name.clone(), v.clone());
        }
    }
    headers
}

/// How a failed Triple call is answered.
pub(crate) fn call_error(e: TripleError) -> GatewayError {
    match e {
        TripleError::Status { code, message } => GatewayError::from_grpc(code, message),
        TripleError::Timeout(t) => {
            GatewayError::Timeout(format!("the provider did not answer within {t:?}"))
        }
        TripleError::Unavailable(m) => GatewayError::Unavailable(m),
        TripleError::ConnectionLost(m) => GatewayError::ConnectionLost(m),
        TripleError::Malformed(m) => GatewayError::BadGateway(m),
    }
}

/// The Triple endpoint a call goes to, and how.
pub(crate) struct Destination<'a> {
    pub cluster: &'a str,
    pub client: &'a Client,
    pub addr: SocketAddr,
    pub identity: &'a DubboIdentity,
    pub serialization: Serialization,
    pub max_reply: usize,
}

impl<'a> Destination<'a> {
    /// The next endpoint of a configured cluster.
    pub fn pick(
        cluster: &'a TripleCluster,
        serialization: Serialization,
    ) -> Result<Self, GatewayError> {
        let endpoint = cluster.pick().ok_or_else(|| {
            GatewayError::Unavailable(format!("cluster {:?} has no endpoints", cluster.name))
        })?;
        Ok(Destination {
            cluster: &cluster.name,
            client: cluster.client(crate::workers::id()),
            addr: endpoint.addr,
            identity: &endpoint.identity,
            serialization,
            max_reply: cluster.max_message,
        })
    }
}

/// One attempt of a routed call to a Triple endpoint.
pub(crate) async fn invoke(
    rt: &Runtime,
    parts: &Parts,
    target: &Target<'_>,
    to: Destination<'_>,
    version: Option<&str>,
    group: Option<&str>,
    timeout: std::time::Duration,
) -> Result<Response<Full<Bytes>>, GatewayError> {
    let (interface, method) = (&target.interface, &target.method);
    let path = format!("/{interface}/{method}");
    let span = Tracing::start_upstream(
        rt.tracing.as_deref(),
        &parts.extensions,
        &UpstreamCall {
            system: "apache_dubbo",
            service: interface,
            method,
            cluster: to.cluster,
            endpoint: Some(to.addr),
        },
    );
    let mut headers = headers(parts, version, group, &rt.propagate_headers);
    if let (Some(cx), Some(tracing)) = (&span, &rt.tracing) {
        tracing.inject_headers(cx, &mut headers);
    }
    let prepared = Prepared {
        path,
        headers,
        timeout,
        max_reply: to.max_reply,
    };
    let result = exchange(rt, target, &to, &prepared, group, version).await;
    if let Some(cx) = &span {
        Tracing::finish_upstream(cx, result.as_ref().err().map(|e| e.to_string()).as_deref());
    }
    result
}

/// A call ready but for its message.
struct Prepared {
    path: String,
    headers: HeaderMap,
    timeout: std::time::Duration,
    max_reply: usize,
}

impl Prepared {
    fn call<'a>(&'a self, message: &'a [u8], content_type: &'static str) -> UnaryCall<'a> {
        UnaryCall {
            path: &self.path,
            content_type,
            headers: self.headers.clone(),
            message,
            timeout: self.timeout,
            max_reply: self.max_reply,
        }
    }
}

/// The call itself, by serialization.
async fn exchange(
    rt: &Runtime,
    target: &Target<'_>,
    to: &Destination<'_>,
    prepared: &Prepared,
    group: Option<&str>,
    version: Option<&str>,
) -> Result<Response<Full<Bytes>>, GatewayError> {
    let call = |message, content_type| prepared.call(message, content_type);
    let (interface, method) = (&target.interface, &target.method);
    // A service with IDL (in the configured descriptor sets) goes as protobuf.
    if let Some(m) = rt
        .descriptors
        .as_ref()
        .and_then(|pool| pool.get_service_by_name(interface))
        .and_then(|service| service.methods().find(|m| m.name() == method.as_str()))
    {
        let Pending::Generic { raw, .. } = &target.pending else {
            return Err(GatewayError::BadRequest(
                "declared routes map arguments for hessian2; this method takes protobuf".into(),
            ));
        };
        let request =
            crate::transcode::message_from_json(&m, raw).map_err(GatewayError::BadRequest)?;
        let message = prost::Message::encode_to_vec(&request);
        let reply = call(&message[..], "application/grpc")
            .send(to.client, to.addr)
            .await
            .map_err(call_error)?;
        let reply = prost_reflect::DynamicMessage::decode(m.output(), reply).map_err(|e| {
            GatewayError::BadGateway(format!(
                "the reply is not a {}: {e}",
                m.output().full_name()
            ))
        })?;
        let json = serde_json::to_vec(&reply).map_err(|e| {
            GatewayError::BadGateway(format!("the reply cannot be written as JSON: {e}"))
        })?;
        return Ok(crate::errors::json_bytes_response(
            StatusCode::OK,
            json.into(),
        ));
    }
    if to.serialization == Serialization::Json {
        let Pending::Generic { raw, .. } = &target.pending else {
            return Err(GatewayError::BadRequest(
                "declared routes map arguments for hessian2; this cluster takes JSON as is".into(),
            ));
        };
        let reply = call(&raw[..], "application/grpc+json")
            .send(to.client, to.addr)
            .await
            .map_err(call_error)?;
        if let Err(e) = serde_json::from_slice::<IgnoredAny>(&reply) {
            return Err(GatewayError::BadGateway(format!(
                "the provider's reply is not JSON: {e}"
            )));
        }
        let mut response = Response::new(Full::new(reply));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    }
    let (mapped, compiled) =
        crate::proxy::typed_call(rt, target, to.identity, group, version).await?;
    let message = wrapper::encode_request(&mapped)
        .map_err(|e| GatewayError::BadRequest(format!("the call cannot be encoded: {e}")))?;
    let reply = call(&message[..], dubbo_codec::triple::CONTENT_TYPE)
        .send(to.client, to.addr)
        .await
        .map_err(call_error)?;
    let value = wrapper::decode_response(reply)
        .map_err(|e| GatewayError::BadGateway(format!("malformed reply from the provider: {e}")))?;
    let types = compiled.as_ref().map_or(&rt.registry, |c| &c.types);
    Ok(json_response(
        StatusCode::OK,
        &to_json(&value, types, rt.json),
    ))
}
