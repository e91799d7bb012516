//! The Dubbo2 upstream client: one multiplexed [`Connection`], a pool of them per endpoint,
//! and clusters of endpoints with a load-balancing policy.

mod cluster;
mod connection;
mod pool;

pub use cluster::{Cluster, DubboIdentity, Endpoint, InFlight, LbPolicy};
pub use connection::{CallError, Connection};
pub use pool::{EndpointPool, PoolConfig};
