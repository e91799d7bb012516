//! What every routed request passes besides the call: rate limits, failure metrics, and the
//! outcomes outlier detection learns from.

use std::sync::Arc;

use http::request::Parts;
use http_bridge::dubbo2::Endpoint;

use crate::errors::GatewayError;
use crate::rate_limit::Limiter;
use crate::runtime::Runtime;
use crate::telemetry::metrics::{ClusterLabels, Name, RouteLabels};
use crate::telemetry::Tags;

/// Failures that have a metric of their own.
pub(crate) fn count_failure(rt: &Runtime, tags: &Tags, e: &GatewayError) {
    let cluster = || ClusterLabels {
        cluster: Name(tags.cluster.clone()),
    };
    match e {
        GatewayError::Timeout(_) => rt.metrics.upstream_timeouts.get_or_create(&cluster()).inc(),
        GatewayError::Unavailable(_) if tags.cluster.is_some() => rt
            .metrics
            .upstream_connect_failures
            .get_or_create(&cluster())
            .inc(),
        GatewayError::CircuitOpen(_) => rt.metrics.circuit_open.get_or_create(&cluster()).inc(),
        GatewayError::RateLimited { .. } => rt
            .metrics
            .rate_limited
            .get_or_create(&RouteLabels {
                route: Name(tags.route.clone()),
            })
            .inc(),
        _ => 0,
    };
}

/// Feeds an xDS cluster's outlier detection with a call's outcome. Only what says something
/// about the endpoint counts: unreachable, connection lost, timeout and malformed replies are
/// failures; any answer from the provider (an exception included) is a success; failures of
/// the request itself (bad arguments, limits) say nothing and are not recorded.
pub(super) fn record_outcome<T>(
    rt: &Runtime,
    cluster: &crate::xds::ClusterView,
    endpoint: &Arc<Endpoint>,
    result: &Result<T, GatewayError>,
) {
    let ok = match result {
        Ok(_) | Err(GatewayError::ProviderException { .. } | GatewayError::Grpc { .. }) => true,
        Err(
            GatewayError::Unavailable(_)
            | GatewayError::ConnectionLost(_)
            | GatewayError::Timeout(_)
            | GatewayError::BadGateway(_),
        ) => false,
        Err(_) => return,
    };
    record(rt, cluster, endpoint, ok);
}

/// Records one outcome for outlier detection, counting the ejection it may cause.
pub(crate) fn record(
    rt: &Runtime,
    cluster: &crate::xds::ClusterView,
    endpoint: &Arc<Endpoint>,
    ok: bool,
) {
    if cluster.record(endpoint, ok) {
        tracing::warn!(cluster = %cluster.name, endpoint = %endpoint.pool.addr(), "endpoint ejected by outlier detection");
        rt.metrics
            .ejections
            .get_or_create(&ClusterLabels {
                cluster: Name(Some(Arc::clone(&cluster.name))),
            })
            .inc();
    }
}

/// The route's rate limit, if it has one, lets the request through.
pub(crate) fn admit(limiter: Option<&Limiter>, parts: &Parts) -> Result<(), GatewayError> {
    match limiter.map(|l| l.check(parts)) {
        Some(Err(retry_after)) => Err(GatewayError::RateLimited { retry_after }),
        _ => Ok(()),
    }
}
