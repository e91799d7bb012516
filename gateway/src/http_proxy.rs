//! Plain HTTP reverse proxying: requests on an `http_routes` prefix go to an `http` cluster as
//! they are — method, path, query, headers (minus hop-by-hop ones, plus `x-forwarded-for`) and
//! a streamed body — and the answer comes back streamed too. Connections to each endpoint are
//! pooled and kept alive. The same filters apply as to Dubbo calls: rate limits, the circuit
//! breaker, metrics, access logs and tracing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::breaker::Held;
use crate::errors::GatewayError;
use crate::runtime::{HttpRoute, Runtime};
use crate::server::{boxed, Body};
use crate::telemetry::trace::{Tracing, UpstreamCall};
use crate::telemetry::{RemoteAddr, Tags};

/// An HTTP cluster: its endpoints (round robin) and a client pooling keep-alive connections.
#[derive(Debug)]
pub struct HttpCluster {
    pub name: String,
    endpoints: Vec<SocketAddr>,
    connect_timeout: Duration,
    /// Each endpoint as a URI authority, parsed once.
    authorities: Vec<http::uri::Authority>,
    next: AtomicUsize,
    /// One pool per worker thread (and one for the rest): a worker's requests use connections
    /// its own event loop drives.
    clients: Vec<Client<HttpConnector, Body>>,
}

impl HttpCluster {
    pub fn new(
        name: &str,
        endpoints: Vec<SocketAddr>,
        connect_timeout: Duration,
        workers: usize,
    ) -> HttpCluster {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        let client = || {
            Client::builder(TokioExecutor::new())
                // The timer is what makes idle connections actually close after the timeout.
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(1024)
                .build(connector.clone())
        };
        let authorities = endpoints
            .iter()
            .filter_map(|e| e.to_string().parse().ok())
            .collect();
        HttpCluster {
            name: name.to_owned(),
            connect_timeout,
            authorities,
            endpoints,
            next: AtomicUsize::new(0),
            clients: (0..=workers).map(|_| client()).collect(),
        }
    }

    /// The calling worker's client.
    fn client(&self) -> &Client<HttpConnector, Body> {
        &self.clients[crate::workers::id() % self.clients.len()]
    }

    /// Whether a configuration asks for exactly this cluster (then a reload keeps it).
    pub fn same_as(
        &self,
        endpoints: &[SocketAddr],
        connect_timeout: Duration,
        workers: usize,
    ) -> bool {
        self.endpoints == endpoints
            && self.connect_timeout == connect_timeout
            && self.clients.len() == workers + 1
    }

    pub fn endpoints(&self) -> &[SocketAddr] {
        &self.endpoints
    }

    fn pick(&self) -> Option<(SocketAddr, &http::uri::Authority)> {
        let n = self.endpoints.len().min(self.authorities.len());
        (n > 0).then(|| {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
            (self.endpoints[i], &self.authorities[i])
        })
    }
}

/// The `http_routes` entry a path falls under.
pub fn target<'r>(rt: &'r Runtime, req: &Request<Incoming>) -> Option<&'r HttpRoute> {
    let path = req.uri().path();
    rt.http_routes
        .iter()
        .find(|r| path.starts_with(r.prefix.as_str()))
}

pub async fn handle(rt: &Runtime, req: Request<Incoming>, route: &HttpRoute) -> Response<Body> {
    let mut tags = Tags {
        route: Some(Arc::clone(&route.label)),
        cluster: Some(Arc::clone(&route.upstream.label)),
        endpoint: None,
    };
    let mut response = match forward(rt, req, route, &mut tags).await {
        Ok(response) => response,
        Err(e) => {
            crate::proxy::count_failure(rt, &tags, &e);
            boxed(e.into_response())
        }
    };
    response.extensions_mut().insert(tags);
    response
}

/// Headers that belong to one connection, not to the request (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn forward(
    rt: &Runtime,
    req: Request<Incoming>,
    route: &HttpRoute,
    tags: &mut Tags,
) -> Result<Response<Body>, GatewayError> {
    let (mut parts, body) = req.into_parts();
    // A prefix must not be escaped: `/public/../admin` would match `/public/` here and be
    // served as `/admin` by an upstream that normalises the path.
    if has_dot_segments(parts.uri.path()) {
        return Err(GatewayError::BadRequest(
            "the path has `.` or `..` segments; send it normalised".into(),
        ));
    }
    crate::proxy::admit(rt.limiter(&route.limit), &parts)?;
    let permit = route.upstream.breaker.request().map_err(|open| {
        GatewayError::CircuitOpen(format!(
            "the circuit breaker of cluster {:?} is open: {open}",
            route.cluster.name
        ))
    })?;
    let (addr, authority) = route.cluster.pick().ok_or_else(|| {
        GatewayError::Unavailable(format!("cluster {:?} has no endpoints", route.cluster.name))
    })?;
    tags.endpoint = Some(addr);
    // HTTP/2 callers send the authority as `:authority`; the HTTP/1.1 upstream gets it as Host
    // (RFC 9113 §8.3.1), not the upstream's own address.
    if !parts.headers.contains_key(http::header::HOST) {
        if let Some(v) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.insert(http::header::HOST, v);
        }
    }
    // The URI from parts already parsed: no text round trip per request.
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(http::uri::Scheme::HTTP);
    uri.authority = Some(authority.clone());
    uri.path_and_query = Some(
        parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
    );
    parts.uri = http::Uri::from_parts(uri)
        .map_err(|e| GatewayError::BadRequest(format!("the path cannot be forwarded: {e}")))?;
    // Headers the Connection header names are hop-by-hop too.
    if parts.headers.contains_key(http::header::CONNECTION) {
        let named: Vec<HeaderName> = parts
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for name in named {
            parts.headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    if let Some(remote) = parts.extensions.get::<RemoteAddr>() {
        let ip = remote.0.ip().to_string();
        let forwarded = match parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(before) => format!("{before}, {ip}"),
            None => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&forwarded) {
            parts.headers.insert("x-forwarded-for", v);
        }
    }
    // HTTP/2 callers: the upstream speaks HTTP/1.1, whose requests carry a Host header.
    parts.version = http::Version::HTTP_11;
    let span = rt.tracing.as_deref().and_then(|tracing| {
        let call = UpstreamCall {
            system: "http",
            service: &route.cluster.name,
            method: parts.method.as_str(),
            cluster: &route.cluster.name,
            endpoint: Some(addr),
        };
        Tracing::start_upstream(Some(tracing), &parts.extensions, &call)
    });
    if let (Some(cx), Some(tracing)) = (&span, &rt.tracing) {
        tracing.inject_headers(cx, &mut parts.headers);
    }
    let request = Request::from_parts(parts, body.boxed());
    let sent = tokio::time::timeout(route.timeout, route.cluster.client().request(request)).await;
    let outcome = match sent {
        Err(_) => Err(GatewayError::Timeout(format!(
            "the upstream did not answer within {:?}",
            route.timeout
        ))),
        Ok(Err(e)) if e.is_connect() => Err(GatewayError::Unavailable(format!(
            "cluster {:?} endpoint {addr} is unreachable: {e}",
            route.cluster.name
        ))),
        Ok(Err(e)) => Err(GatewayError::ConnectionLost(format!(
            "cluster {:?} endpoint {addr}: {e}",
            route.cluster.name
        ))),
        Ok(Ok(response)) => Ok(response),
    };
    if let Some(cx) = &span {
        Tracing::finish_upstream(cx, outcome.as_ref().err().map(|e| e.to_string()).as_deref());
    }
    let mut response = outcome?;
    drop_hop_by_hop(response.headers_mut());
    // The permit goes with the body: a long download counts as in flight while it lasts.
    Ok(response.map(|body| BodyExt::boxed(Held::new(body, permit))))
}

/// Removes the hop-by-hop headers, and those the Connection header names.
fn drop_hop_by_hop(headers: &mut http::HeaderMap) {
    if headers.contains_key(http::header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Whether a path has `.` or `..` segments, plainly or percent-encoded.
fn has_dot_segments(path: &str) -> bool {
    path.split('/').any(|segment| {
        let lower = segment.to_ascii_lowercase();
        let decoded = lower.replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}
