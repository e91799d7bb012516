//! Connections to Dubbo2 endpoints: pick, connect (trying the next endpoint when a connect
//! fails, since nothing was sent), and count the wait against the circuit breaker.

use std::sync::Arc;

use http_bridge::dubbo2::{Connection, Endpoint, InFlight};

use crate::breaker::Breaker;
use crate::errors::GatewayError;
use crate::runtime::Runtime;

use super::filters::record;

/// A connection to an endpoint of an xDS cluster (see [`connect_with`]); endpoints that
/// cannot be reached count as failures for outlier detection.
pub(super) async fn connect_xds(
    rt: &Runtime,
    cluster: &crate::xds::ClusterView,
    hash: Option<u64>,
) -> Result<(Connection, InFlight, Arc<Endpoint>), GatewayError> {
    let attempts = cluster.endpoints.len().clamp(1, 3);
    let failed = |e: &Arc<Endpoint>| record(rt, cluster, e, false);
    connect_with(
        || cluster.pick(hash),
        failed,
        attempts,
        &cluster.breaker,
        &cluster.name,
    )
    .await
}

/// A connection to an endpoint of a configured cluster (see [`connect_with`]).
pub(super) async fn connect(
    cluster: &http_bridge::dubbo2::Cluster,
    breaker: &Arc<Breaker>,
) -> Result<(Connection, InFlight, Arc<Endpoint>), GatewayError> {
    let attempts = cluster.endpoints().len().clamp(1, 3);
    connect_with(|| cluster.pick(), |_| {}, attempts, breaker, &cluster.name).await
}

/// A connection to some endpoint the picker gives: up to `attempts` endpoints are tried when
/// connects fail, since nothing was sent yet. Calls themselves are never retried here (they
/// may not be idempotent; route retry policies decide). Waiting for a connection counts
/// against the breaker's pending ceiling.
async fn connect_with(
    mut pick: impl FnMut() -> Option<Arc<Endpoint>>,
    failed: impl Fn(&Arc<Endpoint>),
    attempts: usize,
    breaker: &Arc<Breaker>,
    cluster: &str,
) -> Result<(Connection, InFlight, Arc<Endpoint>), GatewayError> {
    let _pending = breaker.wait_for_connection().map_err(|open| {
        GatewayError::CircuitOpen(format!(
            "the circuit breaker of cluster {cluster:?} is open: {open}"
        ))
    })?;
    let mut last = String::from("the cluster has no usable endpoint");
    for _ in 0..attempts {
        let Some(endpoint) = pick() else {
            break;
        };
        let in_flight = endpoint.start_call();
        match endpoint.pool.get(crate::workers::id()).await {
            Ok(conn) => return Ok((conn, in_flight, endpoint)),
            Err(e) => {
                failed(&endpoint);
                last = e.to_string();
            }
        }
    }
    Err(GatewayError::Unavailable(format!(
        "no endpoint of cluster {cluster:?} is reachable: {last}"
    )))
}
