//! Plain HTTP reverse proxying: requests on an `http_routes` prefix go to an `http` cluster as
//! they are — method, path, query, headers (minus hop-by-hop ones, plus `x-forwarded-for`) and
//! a streamed body — and the answer comes back streamed too. Connections to each endpoint are
//! pooled and kept alive. The same filters apply as to Dubbo calls: rate limits, the circuit
//! breaker, metrics, access logs and tracing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::server::RequestBody;
use http::header::HeaderValue;
use http::{Request, Response};
use http_body_util::BodyExt;

use crate::breaker::Held;
use crate::errors::GatewayError;
use crate::http_client::{self, ClientError, Outgoing, Pool};
use crate::runtime::{HttpRoute, Runtime};
use crate::server::{boxed, Body};
use crate::telemetry::trace::{Tracing, UpstreamCall};
use crate::telemetry::{RemoteAddr, Tags};

/// How long a pooled connection may stay idle before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most idle connections kept per worker and endpoint.
const MAX_IDLE: usize = 1024;

/// An HTTP cluster: its endpoints (round robin) and their pooled keep-alive connections.
#[derive(Debug)]
pub struct HttpCluster {
    pub name: String,
    endpoints: Vec<SocketAddr>,
    connect_timeout: Duration,
    /// Each endpoint as `host:port`, the Host for callers that sent none.
    authorities: Vec<String>,
    next: AtomicUsize,
    /// Idle connections per worker thread (and one list for the rest): a worker's requests
    /// use connections its own event loop drives.
    pool: Arc<Pool>,
}

impl HttpCluster {
    pub fn new(
        name: &str,
        endpoints: Vec<SocketAddr>,
        connect_timeout: Duration,
        workers: usize,
    ) -> HttpCluster {
        let pool = Arc::new(Pool::new(
            workers + 1,
            endpoints.len(),
            IDLE_TIMEOUT,
            MAX_IDLE,
        ));
        http_client::pool::spawn_sweeper(Arc::downgrade(&pool), Duration::from_secs(5));
        HttpCluster {
            name: name.to_owned(),
            connect_timeout,
            authorities: endpoints.iter().map(SocketAddr::to_string).collect(),
            endpoints,
            next: AtomicUsize::new(0),
            pool,
        }
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
            && self.pool.slots() == workers + 1
    }

    pub fn endpoints(&self) -> &[SocketAddr] {
        &self.endpoints
    }

    /// Idle pooled connections now.
    pub fn idle_connections(&self) -> usize {
        self.pool.idle_count()
    }

    fn pick(&self) -> Option<usize> {
        let n = self.endpoints.len();
        (n > 0).then(|| self.next.fetch_add(1, Ordering::Relaxed) % n)
    }
}

/// The `http_routes` entry a path falls under.
pub fn target<'r>(rt: &'r Runtime, req: &Request<RequestBody>) -> Option<&'r HttpRoute> {
    let path = req.uri().path();
    rt.http_routes
        .iter()
        .find(|r| path.starts_with(r.prefix.as_str()))
}

pub async fn handle(rt: &Runtime, req: Request<RequestBody>, route: &HttpRoute) -> Response<Body> {
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

async fn forward(
    rt: &Runtime,
    req: Request<RequestBody>,
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
    let cluster = &route.cluster;
    let index = cluster.pick().ok_or_else(|| {
        GatewayError::Unavailable(format!("cluster {:?} has no endpoints", cluster.name))
    })?;
    let addr = cluster.endpoints[index];
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
    let span = rt.tracing.as_deref().and_then(|tracing| {
        let call = UpstreamCall {
            system: "http",
            service: &cluster.name,
            method: parts.method.as_str(),
            cluster: &cluster.name,
            endpoint: Some(addr),
        };
        Tracing::start_upstream(Some(tracing), &parts.extensions, &call)
    });
    if let (Some(cx), Some(tracing)) = (&span, &rt.tracing) {
        tracing.inject_headers(cx, &mut parts.headers);
    }
    let outgoing = Outgoing {
        method: &parts.method,
        path_and_query: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        headers: &parts.headers,
        host: &cluster.authorities[index],
        forwarded_for: parts.extensions.get::<RemoteAddr>().map(|r| r.0.ip()),
    };
    let sent = http_client::send(
        &cluster.pool,
        index,
        addr,
        cluster.connect_timeout,
        outgoing,
        body,
    );
    let outcome = match http_bridge::deadline::timeout(route.timeout, sent).await {
        Err(_) => Err(GatewayError::Timeout(format!(
            "the upstream did not answer within {:?}",
            route.timeout
        ))),
        Ok(Err(ClientError::Connect(e))) => Err(GatewayError::Unavailable(format!(
            "cluster {:?} endpoint {e} is unreachable",
            cluster.name
        ))),
        Ok(Err(ClientError::Lost(e))) => Err(GatewayError::ConnectionLost(format!(
            "cluster {:?} endpoint {addr}: {e}",
            cluster.name
        ))),
        Ok(Err(ClientError::Malformed(e))) => Err(GatewayError::BadGateway(format!(
            "cluster {:?} endpoint {addr} answered with invalid HTTP: {e}",
            cluster.name
        ))),
        Ok(Err(ClientError::Caller(e))) => Err(GatewayError::BadRequest(e)),
        Ok(Ok(response)) => Ok(response),
    };
    if let Some(cx) = &span {
        Tracing::finish_upstream(cx, outcome.as_ref().err().map(|e| e.to_string()).as_deref());
    }
    // The permit goes with the body: a long download counts as in flight while it lasts.
    Ok(outcome?.map(|body| BodyExt::boxed(Held::new(body.map_err(Into::into), permit))))
}

/// Whether a path has `.` or `..` segments, plainly or percent-encoded (no allocation).
fn has_dot_segments(path: &str) -> bool {
    path.split('/').any(|segment| {
        let bytes = segment.as_bytes();
        let (mut i, mut dots) = (0, 0);
        while i < bytes.len() {
            if bytes[i] == b'.' {
                i += 1;
            } else if bytes.len() - i >= 3 && bytes[i..i + 3].eq_ignore_ascii_case(b"%2e") {
                i += 3;
            } else {
                return false;
            }
            dots += 1;
        }
        dots == 1 || dots == 2
    })
}

#[cfg(test)]
mod tests {
    use super::has_dot_segments;

    #[test]
    fn dot_segments_are_found_plain_and_encoded() {
        for path in [
            "/a/../b",
            "/a/./b",
            "/a/%2e%2E/b",
            "/a/.%2e",
            "/..",
            "/a/%2E",
        ] {
            assert!(has_dot_segments(path), "{path}");
        }
        for path in [
            "/",
            "/a/b",
            "/a/...",
            "/a/.b",
            "/a/b.",
            "/%2e%2e%2e",
            "/a/%2",
            "/a/%2f",
        ] {
            assert!(!has_dot_segments(path), "{path}");
        }
    }
}
