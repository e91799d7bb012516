//! One request, end to end: route, read the body within the limit, map it onto a Dubbo call,
//! call the cluster, and answer with the result as JSON or an error from the table in
//! [`crate::errors`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dubbo_codec::dubbo2::Invocation;
use http::request::Parts;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use http_bridge::mapping::{map_generic, parse_body, MappedCall, MappingError};
use http_bridge::to_hessian::ToHessian;
use serde_json::Value as Json;

use crate::errors::GatewayError;
use crate::metadata::{CompiledService, Wanted};
use crate::runtime::{query_pairs, Matched, Runtime, Source, UpstreamCluster, UpstreamKind};
use crate::telemetry::metrics::{ClusterLabels, Name};
use crate::telemetry::trace::{Tracing, UpstreamCall};
use crate::telemetry::Tags;
use crate::triple_call::Destination;

mod answer;
mod connect;
mod filters;

use answer::{answer, call_error};
use connect::{connect, connect_xds};
use filters::record_outcome;
pub(crate) use filters::{admit, count_failure, record};

/// Handles one request; never fails (errors are responses).
pub async fn handle<B>(rt: Arc<Runtime>, req: Request<B>) -> Response<Full<Bytes>>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<crate::server::BoxError>,
{
    let mut tags = Tags::default();
    let mut response = match proxy(&rt, req, &mut tags).await {
        Ok(response) => response,
        Err(e) => {
            count_failure(&rt, &tags, &e);
            e.into_response()
        }
    };
    response.extensions_mut().insert(tags);
    response
}

async fn proxy<B>(
    rt: &Runtime,
    req: Request<B>,
    tags: &mut Tags,
) -> Result<Response<Full<Bytes>>, GatewayError>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<crate::server::BoxError>,
{
    let (parts, body) = req.into_parts();
    let header = |names: [&str; 2]| {
        names.iter().find_map(|n| {
            parts
                .headers
                .get(*n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
    };
    // Routes of the configuration file first, then those from xDS.
    let target = match rt.find(&parts.method, parts.uri.path()) {
        Some(matched) => {
            if let Some(route) = matched.route() {
                tags.route = Some(Arc::clone(&route.label));
                tags.cluster = Some(Arc::clone(&route.cluster.label));
                admit(rt.limiter(&route.limit), &parts)?;
            }
            let body = read_body(&parts.headers, body, rt.max_body_bytes).await?;
            static_target(rt, &parts, &body, matched)?
        }
        None => match &rt.xds {
            Some(xds) => {
                let routed = crate::xds_route::route(xds, &parts)?;
                tags.route = Some(Arc::clone(&routed.label));
                tags.cluster = Some(Arc::clone(&routed.cluster.name));
                admit(rt.default_limit.as_deref(), &parts)?;
                let body = read_body(&parts.headers, body, rt.max_body_bytes).await?;
                let json = parse_body(&body).map_err(bad_request)?;
                Target {
                    interface: routed.interface,
                    method: routed.method,
                    pending: Pending::Generic { json, raw: body },
                    version: routed.version,
                    group: routed.group,
                    timeout: routed.timeout,
                    upstream: Upstream::Xds(routed.cluster, routed.hash),
                    retry: routed.retry,
                }
            }
            None => {
                admit(rt.default_limit.as_deref(), &parts)?;
                return Err(GatewayError::NoRoute {
                    method: parts.method.clone(),
                    path: parts.uri.path().to_owned(),
                });
            }
        },
    };
    let version = header(["x-dubbo-version", "x-dubbo-service-version"]).or(target.version.clone());
    let group = header(["x-dubbo-group", "x-dubbo-service-group"]).or(target.group.clone());
    // Envoy's semantics: the route timeout bounds all attempts together; each attempt gets
    // at most the per-try timeout and what is left.
    let deadline = tokio::time::Instant::now() + target.timeout;
    let attempts = target
        .retry
        .as_ref()
        .map_or(1, |r| r.num_retries.min(MAX_RETRIES) as usize + 1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let timeout = target
            .retry
            .as_ref()
            .and_then(|r| r.per_try_timeout)
            .map_or(left, |t| t.min(left));
        let result = invoke(
            rt,
            &parts,
            &target,
            version.clone(),
            group.clone(),
            timeout,
            tags,
        )
        .await;
        match result {
            Err(e) if attempt < attempts && retriable(&e, target.retry.as_ref()) => {
                let backoff = target.retry.as_ref().map_or(Duration::ZERO, |r| {
                    r.base_interval
                        .saturating_mul(1 << (attempt - 1).min(16))
                        .min(r.max_interval)
                });
                let backoff = backoff.mul_f64(fastrand::f64() + 0.5);
                if tokio::time::Instant::now() + backoff >= deadline {
                    return Err(e);
                }
                tracing::debug!(error = %e, attempt, "retrying");
                count_failure(rt, tags, &e);
                rt.metrics
                    .upstream_retries
                    .get_or_create(&ClusterLabels {
                        cluster: Name(tags.cluster.clone()),
                    })
                    .inc();
                tokio::time::sleep(backoff).await;
            }
            other => return other,
        }
    }
}

/// A ceiling on retries per request, whatever a route asks for.
const MAX_RETRIES: u32 = 10;

/// Where a routed request goes and how.
pub(crate) struct Target<'r> {
    pub(crate) interface: String,
    pub(crate) method: String,
    pub(crate) pending: Pending,
    version: Option<String>,
    group: Option<String>,
    timeout: Duration,
    upstream: Upstream<'r>,
    retry: Option<xds_core::model::RetryPolicy>,
}

enum Upstream<'r> {
    Static(&'r UpstreamCluster),
    /// With the request's hash, for consistent-hashing clusters.
    Xds(Arc<crate::xds::ClusterView>, Option<u64>),
}

fn static_target<'r>(
    rt: &'r Runtime,
    parts: &Parts,
    body: &Bytes,
    matched: Matched<'r>,
) -> Result<Target<'r>, GatewayError> {
    let (route, interface, method, pending) = match matched {
        Matched::WrongMethod { allowed } => return Err(GatewayError::MethodNotAllowed { allowed }),
        Matched::Generic {
            route,
            interface,
            method,
        } => {
            let json = parse_body(body).map_err(bad_request)?;
            let raw = body.clone();
            (route, interface, method, Pending::Generic { json, raw })
        }
        Matched::Declared {
            route,
            interface,
            call,
            params,
            vars,
        } => {
            let mapped = declared_args(rt, parts, &vars, body, params)?;
            (
                route,
                interface.to_owned(),
                call.to_owned(),
                Pending::Mapped(mapped),
            )
        }
    };
    Ok(Target {
        interface,
        method,
        pending,
        version: route.version.clone(),
        group: route.group.clone(),
        timeout: route.timeout,
        upstream: Upstream::Static(&route.cluster),
        retry: None,
    })
}

/// Whether a route's retry policy covers this failure. Only failures before or around the
/// provider's answer qualify; an exception the provider threw is its answer.
fn retriable(e: &GatewayError, policy: Option<&xds_core::model::RetryPolicy>) -> bool {
    let Some(policy) = policy else { return false };
    let on = |c: &str| policy.retry_on.iter().any(|r| r == c);
    let status =
        |code: u16| on("retriable-status-codes") && policy.retriable_status_codes.contains(&code);
    match e {
        // Nothing was sent: safe to try another endpoint.
        GatewayError::Unavailable(_) => {
            on("connect-failure") || on("5xx") || on("gateway-error") || on("reset") || status(503)
        }
        // Sent, then the connection broke: the provider may have run the call.
        GatewayError::ConnectionLost(_) => on("reset") || on("5xx") || on("gateway-error"),
        GatewayError::Timeout(_) => on("5xx") || on("gateway-error") || status(504),
        GatewayError::BadGateway(_) => on("5xx") || on("gateway-error") || status(502),
        _ => false,
    }
}

/// One attempt: an endpoint, the arguments typed for it, the call and its answer.
async fn invoke(
    rt: &Runtime,
    parts: &Parts,
    target: &Target<'_>,
    version: Option<String>,
    group: Option<String>,
    timeout: Duration,
    tags: &mut Tags,
) -> Result<Response<Full<Bytes>>, GatewayError> {
    let (interface, method) = (&target.interface, &target.method);
    // The circuit breaker first: an open circuit costs the cluster nothing.
    let breaker = match &target.upstream {
        Upstream::Static(cluster) => &cluster.breaker,
        Upstream::Xds(cluster, _) => &cluster.breaker,
    };
    let _permit = breaker.request().map_err(|open| {
        GatewayError::CircuitOpen(format!(
            "the circuit breaker of cluster {:?} is open: {open}",
            tags.cluster.as_deref().unwrap_or_default()
        ))
    })?;
    // The endpoint comes first: which revision it runs decides how the arguments are typed.
    let (conn, _in_flight, endpoint) = match &target.upstream {
        Upstream::Static(UpstreamCluster {
            kind:
                UpstreamKind::Triple {
                    cluster,
                    serialization,
                },
            ..
        }) => {
            let to = Destination::pick(cluster, *serialization)?;
            tags.endpoint = Some(to.addr);
            let (version, group) = (version.as_deref(), group.as_deref());
            return crate::triple_call::invoke(rt, parts, target, to, version, group, timeout)
                .await;
        }
        Upstream::Xds(cluster, hash) if cluster.speaks_triple() => {
            let endpoint = cluster.pick(*hash).ok_or_else(|| {
                GatewayError::Unavailable(format!(
                    "cluster {:?} has no usable endpoint",
                    cluster.cluster.name
                ))
            })?;
            let xds = rt.xds.as_ref().ok_or_else(|| {
                GatewayError::Unavailable("xDS routing is not running".to_owned())
            })?;
            let serialization = match cluster.cluster.serialization.as_deref() {
                Some("json") => crate::config::Serialization::Json,
                _ => crate::config::Serialization::Hessian2,
            };
            tags.endpoint = Some(endpoint.pool.addr());
            let to = Destination {
                cluster: &cluster.name,
                client: xds.grpc_client(),
                addr: endpoint.pool.addr(),
                identity: &endpoint.identity,
                serialization,
                max_reply: dubbo_codec::dubbo2::DEFAULT_MAX_FRAME,
            };
            let (version, group) = (version.as_deref(), group.as_deref());
            let result =
                crate::triple_call::invoke(rt, parts, target, to, version, group, timeout).await;
            record_outcome(rt, cluster, &endpoint, &result);
            return result;
        }
        Upstream::Static(UpstreamCluster {
            kind: UpstreamKind::Dubbo2(cluster),
            ..
        }) => connect(cluster, breaker).await?,
        // Validation keeps HTTP/JSON routes off http clusters.
        Upstream::Static(UpstreamCluster {
            kind: UpstreamKind::Http(_),
            ..
        }) => {
            return Err(GatewayError::NotFound(
                "an http cluster is reached through http_routes".into(),
            ))
        }
        Upstream::Xds(cluster, hash) => connect_xds(rt, cluster, *hash).await?,
    };
    tags.endpoint = Some(endpoint.pool.addr());
    let (call, compiled) = typed_call(
        rt,
        target,
        &endpoint.identity,
        group.as_deref(),
        version.as_deref(),
    )
    .await?;
    let mut invocation = Invocation::new(interface, method, &call.parameter_types, call.arguments);
    if let Some(version) = version {
        invocation.attachments.insert("version", version.as_str());
        invocation.service_version = Some(version);
    }
    if let Some(group) = group {
        invocation.attachments.insert("group", group);
    }
    for name in &rt.propagate_headers {
        if let Some(v) = parts.headers.get(name).and_then(|v| v.to_str().ok()) {
            invocation.attachments.insert(name.as_str(), v);
        }
    }
    // Traced: the provider's parent is this call's span (replacing the caller's context).
    let span = Tracing::start_upstream(
        rt.tracing.as_deref(),
        &parts.extensions,
        &UpstreamCall {
            system: "apache_dubbo",
            service: interface,
            method,
            cluster: tags.cluster.as_deref().unwrap_or_default(),
            endpoint: tags.endpoint,
        },
    );
    if let (Some(cx), Some(tracing)) = (&span, &rt.tracing) {
        tracing.inject_attachments(cx, &mut invocation.attachments);
    }
    let reply = conn
        .call(invocation, timeout)
        .await
        .map_err(|e| call_error(e, timeout));
    let types = compiled.as_ref().map_or(&rt.registry, |c| &c.types);
    let result = reply.and_then(|reply| answer(rt, types, reply));
    if let Some(cx) = &span {
        Tracing::finish_upstream(cx, result.as_ref().err().map(|e| e.to_string()).as_deref());
    }
    if let Upstream::Xds(cluster, _) = &target.upstream {
        record_outcome(rt, cluster, &endpoint, &result);
    }
    result
}

/// The call's arguments, typed for the endpoint that will take it: a declared route's as
/// mapped already; a generic body by the metadata the endpoint's (application, revision)
/// published, else by the config's signatures or inference. With the published types, which
/// also read the answer.
pub(crate) async fn typed_call(
    rt: &Runtime,
    target: &Target<'_>,
    identity: &http_bridge::dubbo2::DubboIdentity,
    group: Option<&str>,
    version: Option<&str>,
) -> Result<(MappedCall, Option<Arc<CompiledService>>), GatewayError> {
    let (interface, method) = (&target.interface, &target.method);
    let json = match &target.pending {
        Pending::Mapped(call) => return Ok((call.clone(), None)),
        Pending::Generic { json, .. } => json,
    };
    let compiled = match &rt.typing {
        Some(typing) => {
            let wanted = Wanted {
                interface,
                method,
                group,
                version,
            };
            typing.resolve(identity, wanted, rt).await?
        }
        None => None,
    };
    let (overloads, types) = match &compiled {
        Some(c) => (c.overloads(method), &c.types),
        None => (rt.overloads(interface, method), &rt.registry),
    };
    let call = map_generic(method, json, overloads, types).map_err(bad_request)?;
    Ok((call, compiled))
}

/// Arguments mapped already (declared routes), or a generic body still to be typed (and the
/// body as it came, for providers that take JSON as is).
pub(crate) enum Pending {
    Mapped(MappedCall),
    Generic { json: Json, raw: Bytes },
}

fn bad_request(e: MappingError) -> GatewayError {
    GatewayError::BadRequest(e.to_string())
}

async fn read_body<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, GatewayError>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<crate::server::BoxError>,
{
    // A declared length over the limit is refused before a byte of it is read.
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(GatewayError::BodyTooLarge { limit })
        }
        Err(e) => Err(GatewayError::BadRequest(format!(
            "request body could not be read: {e}"
        ))),
    }
}

/// Arguments of a declared route, each from where the route says, converted by its type.
fn declared_args(
    rt: &Runtime,
    parts: &Parts,
    vars: &[(String, String)],
    body: &Bytes,
    params: &[(Source, http_bridge::types::TypeRef)],
) -> Result<MappedCall, GatewayError> {
    let query = parts.uri.query().map(query_pairs).unwrap_or_default();
    let mut body_json: Option<Json> = None;
    let mut conv = ToHessian::new(&rt.registry);
    let mut arguments = Vec::with_capacity(params.len());
    let mut parameter_types = String::new();
    for (i, (source, ty)) in params.iter().enumerate() {
        let text = |s: Option<&str>| s.map_or(Json::Null, |s| Json::String(s.to_owned()));
        let (name, json) = match source {
            Source::Path(v) => (
                v.clone(),
                text(vars.iter().find(|(k, _)| k == v).map(|(_, s)| s.as_str())),
            ),
            Source::Query(q) => (
                q.clone(),
                text(query.iter().find(|(k, _)| k == q).map(|(_, s)| s.as_str())),
            ),
            Source::Header(h) => (
                h.to_string(),
                text(parts.headers.get(h).and_then(|v| v.to_str().ok())),
            ),
            Source::Body | Source::BodyField(_) => {
                if body_json.is_none() {
                    body_json = Some(parse_body(body).map_err(bad_request)?);
                }
                let whole = body_json.as_ref().unwrap_or(&Json::Null);
                match source {
                    Source::BodyField(f) => {
                        (f.clone(), whole.get(f).cloned().unwrap_or(Json::Null))
                    }
                    _ => ("body".to_owned(), whole.clone()),
                }
            }
        };
        arguments.push(
            conv.argument(i, Some(&name), &json, Some(ty))
                .map_err(|e| GatewayError::BadRequest(e.to_string()))?,
        );
        parameter_types.push_str(&ty.descriptor());
    }
    Ok(MappedCall {
        parameter_types,
        arguments,
    })
}
