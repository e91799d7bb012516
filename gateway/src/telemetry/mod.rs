//! What operators see: Prometheus metrics ([`metrics`]), access logs ([`access_log`]) and
//! OpenTelemetry traces ([`trace`]).
//!
//! Every request passes through [`crate::pipeline`], which measures it and reads the [`Tags`]
//! the handlers put on the response (route, cluster, endpoint): labels come from the
//! configuration (route and cluster names), never from request data, so their number is
//! bounded.

pub mod access_log;
pub mod metrics;
pub mod request_metrics;
pub mod trace;

use std::net::SocketAddr;
use std::sync::Arc;

/// The client's address, put on each request by the server.
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub SocketAddr);

/// Where a request went, as far as it got: put on the response by the handler.
#[derive(Debug, Clone, Default)]
pub struct Tags {
    /// The route's label (configured name, path template or prefix); empty when none matched.
    pub route: Option<Arc<str>>,
    pub cluster: Option<Arc<str>>,
    /// The endpoint of the last attempt.
    pub endpoint: Option<SocketAddr>,
}
