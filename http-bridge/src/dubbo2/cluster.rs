//! A set of endpoints and the policy that spreads calls over them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::pool::{EndpointPool, PoolConfig};

/// How a cluster picks an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LbPolicy {
    #[default]
    RoundRobin,
    Random,
    /// The less loaded of two random endpoints ("power of two choices"): near-optimal spread
    /// without scanning every endpoint.
    LeastRequest,
}

/// Which Dubbo application instance an endpoint is, as service discovery (an xDS endpoint's
/// `filter_metadata["dubbo"]`, or the config) says: the key to its published metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DubboIdentity {
    pub application: Option<Arc<str>>,
    /// The metadata revision the instance runs.
    pub revision: Option<Arc<str>>,
}

/// One provider endpoint: its pool, the calls it is carrying, and who it is.
#[derive(Debug)]
pub struct Endpoint {
    pub pool: Arc<EndpointPool>,
    pub identity: DubboIdentity,
    in_flight: AtomicUsize,
}

impl Endpoint {
    /// An endpoint over an existing pool (shared, e.g., across configuration updates).
    pub fn new(pool: Arc<EndpointPool>, identity: DubboIdentity) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            pool,
            identity,
            in_flight: AtomicUsize::new(0),
        })
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a call as in flight until the guard drops.
    pub fn start_call(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }
}

/// Marks a call in flight on an endpoint; dropping it ends the call.
#[derive(Debug)]
pub struct InFlight(Arc<Endpoint>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
pub struct Cluster {
    pub name: String,
    pub policy: LbPolicy,
    endpoints: Vec<Arc<Endpoint>>,
    next: AtomicUsize,
}

impl Cluster {
    pub fn new(
        name: &str,
        addrs: &[std::net::SocketAddr],
        policy: LbPolicy,
        pool: &PoolConfig,
    ) -> Cluster {
        let endpoints: Vec<_> = addrs
            .iter()
            .map(|&a| (a, DubboIdentity::default()))
            .collect();
        Self::with_identities(name, &endpoints, policy, pool)
    }

    /// A cluster whose endpoints say which application instance (and revision) they are.
    pub fn with_identities(
        name: &str,
        endpoints: &[(std::net::SocketAddr, DubboIdentity)],
        policy: LbPolicy,
        pool: &PoolConfig,
    ) -> Cluster {
        let endpoints = endpoints
            .iter()
            .map(|(a, identity)| {
                Arc::new(Endpoint {
                    pool: EndpointPool::new(*a, pool.clone()),
                    identity: identity.clone(),
                    in_flight: AtomicUsize::new(0),
                })
            })
            .collect();
        Cluster {
            name: name.to_owned(),
            policy,
            endpoints,
            next: AtomicUsize::new(0),
        }
    }

    /// A cluster over endpoints made elsewhere (e.g. with pools kept across configuration
    /// reloads).
    pub fn from_endpoints(name: &str, endpoints: Vec<Arc<Endpoint>>, policy: LbPolicy) -> Cluster {
        Cluster {
            name: name.to_owned(),
            policy,
            endpoints,
            next: AtomicUsize::new(0),
        }
    }

    pub fn endpoints(&self) -> &[Arc<Endpoint>] {
        &self.endpoints
    }

    /// Picks an endpoint by the cluster's policy, among those not in connect backoff (or among
    /// all, when every one is down, so the caller learns why); `None` for an empty cluster.
    /// Allocation-free: it runs once per request.
    pub fn pick(&self) -> Option<Arc<Endpoint>> {
        let n = self.endpoints.len();
        if n == 0 {
            return None;
        }
        let up = self.endpoints.iter().filter(|e| !e.pool.is_down()).count();
        // All down: choose among all; the pool of the one chosen reports why it is down.
        let (usable, count): (fn(&Arc<Endpoint>) -> bool, usize) = if up == 0 {
            (|_| true, n)
        } else {
            (|e| !e.pool.is_down(), up)
        };
        // The `i`-th usable endpoint, so that the spread stays even over those that are up.
        let nth = |i: usize| self.endpoints.iter().filter(|e| usable(e)).nth(i % count);
        let chosen = match self.policy {
            LbPolicy::RoundRobin => nth(self.next.fetch_add(1, Ordering::Relaxed)),
            LbPolicy::Random => nth(fastrand::usize(..count)),
            LbPolicy::LeastRequest => {
                let (a, b) = (nth(fastrand::usize(..count)), nth(fastrand::usize(..count)));
                match (a, b) {
                    (Some(a), Some(b)) if b.in_flight() < a.in_flight() => Some(b),
                    (a, _) => a,
                }
            }
        };
        chosen.map(Arc::clone)
    }
}
