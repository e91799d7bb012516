//! `grpc_routes` and `http_routes`, compiled: a prefix, the cluster, a deadline and a rate
//! limit. A reload keeps a route's rate-limit buckets when its prefix and settings are
//! unchanged (a reload must not hand every client a fresh burst).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http_bridge::triple::TripleCluster;

use crate::config::{self, Config};

use super::{GrpcRoute, HttpRoute, RouteLimit, Runtime, UpstreamCluster, UpstreamKind};

/// The route's limit: the previous runtime's buckets if `old` had the same settings.
fn limit(
    wanted: Option<&config::RateLimit>,
    old: Option<&RouteLimit>,
) -> Result<RouteLimit, String> {
    match (old, wanted) {
        (Some(RouteLimit::Own(l)), Some(c)) if l.config == *c => Ok(RouteLimit::Own(Arc::clone(l))),
        _ => RouteLimit::compile(wanted),
    }
}

pub(super) fn grpc(
    config: &Config,
    grpc_clusters: &HashMap<String, Arc<TripleCluster>>,
    clusters: &HashMap<String, Arc<UpstreamCluster>>,
    previous: Option<&Runtime>,
) -> Result<Vec<GrpcRoute>, String> {
    config
        .grpc_routes
        .iter()
        .filter_map(|r| {
            let cluster = grpc_clusters.get(&r.cluster)?;
            let upstream = clusters.get(&r.cluster)?;
            let old = previous
                .and_then(|p| p.grpc_routes.iter().find(|o| o.prefix == r.prefix))
                .map(|o| &o.limit);
            Some(limit(r.rate_limit.as_ref(), old).map(|limit| GrpcRoute {
                prefix: r.prefix.clone(),
                cluster: Arc::clone(cluster),
                upstream: Arc::clone(upstream),
                timeout: Duration::from_millis(r.timeout_ms),
                limit,
                label: Arc::from(r.prefix.as_str()),
            }))
        })
        .collect()
}

pub(super) fn http(
    config: &Config,
    clusters: &HashMap<String, Arc<UpstreamCluster>>,
    previous: Option<&Runtime>,
) -> Result<Vec<HttpRoute>, String> {
    config
        .http_routes
        .iter()
        .filter_map(|r| {
            let upstream = clusters.get(&r.cluster)?;
            let UpstreamKind::Http(cluster) = &upstream.kind else {
                return None;
            };
            let old = previous
                .and_then(|p| p.http_routes.iter().find(|o| o.prefix == r.prefix))
                .map(|o| &o.limit);
            Some(limit(r.rate_limit.as_ref(), old).map(|limit| HttpRoute {
                prefix: r.prefix.clone(),
                cluster: Arc::clone(cluster),
                upstream: Arc::clone(upstream),
                timeout: Duration::from_millis(r.timeout_ms),
                limit,
                label: Arc::from(r.prefix.as_str()),
            }))
        })
        .collect()
}
