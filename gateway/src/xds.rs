//! Routes, clusters and endpoints from xDS. An [`XdsRouting`] follows the client's accepted
//! state and keeps a ready-to-use [`View`] of it: the gateway's route table (from the named
//! Listener), and per cluster a load balancer over endpoints whose connection pools survive
//! updates (keyed by address), so an update neither drops nor reconnects calls in flight.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use http_bridge::dubbo2::{DubboIdentity, Endpoint, EndpointPool, PoolConfig};
use xds_core::bootstrap::{Bootstrap, Node};
use xds_core::client::{ClientOptions, Subscribe, XdsClient, XdsState};
use xds_core::lb::{EndpointState, LoadBalancer, Outliers};
use xds_core::model::{AddressKind, Cluster, Discovery, Endpoints, RouteConfig, RouteSource};

use crate::breaker::Breaker;
use crate::config::{CircuitBreaker, XdsConfig};

/// One cluster, ready for picking.
#[derive(Debug)]
pub struct ClusterView {
    pub cluster: Arc<Cluster>,
    pub balancer: LoadBalancer,
    /// Aligned with `balancer.endpoints()`; `None` for endpoints that cannot be dialled
    /// (pipes, internal addresses, unresolved names).
    pub endpoints: Vec<Option<Arc<Endpoint>>>,
    /// The cluster's circuit breaker (its thresholds from the Cluster resource), kept across
    /// updates by cluster name so calls in flight stay counted.
    pub breaker: Arc<Breaker>,
    /// The cluster's name, shared with metrics labels.
    pub name: Arc<str>,
    /// Outlier detection, when the cluster asks for it (indexed like `endpoints`).
    pub outliers: Option<Outliers>,
}

impl EndpointState for ClusterView {
    fn ejected(&self, index: usize) -> bool {
        self.endpoints
            .get(index)
            .and_then(Option::as_ref)
            .is_none_or(|e| e.pool.is_down())
            || self.is_ejected(index)
    }

    fn active_requests(&self, index: usize) -> usize {
        self.endpoints
            .get(index)
            .and_then(Option::as_ref)
            .map_or(0, |e| e.in_flight())
    }
}

impl ClusterView {
    /// Whether the cluster is a Triple/gRPC one (`filter_metadata["dubbo"].protocol`).
    pub fn speaks_triple(&self) -> bool {
        matches!(
            self.cluster.protocol.as_deref(),
            Some("tri" | "triple" | "grpc")
        )
    }

    /// Whether outlier detection has ejected endpoint `index` for now.
    pub fn is_ejected(&self, index: usize) -> bool {
        self.outliers
            .as_ref()
            .is_some_and(|o| o.is_ejected(index, Instant::now()))
    }

    /// Records a call's outcome on `endpoint` for outlier detection; `true` when this
    /// failure ejected it.
    pub fn record(&self, endpoint: &Arc<Endpoint>, ok: bool) -> bool {
        let Some(outliers) = &self.outliers else {
            return false;
        };
        let Some(index) = self
            .endpoints
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| Arc::ptr_eq(e, endpoint)))
        else {
            return false;
        };
        let now = Instant::now();
        let before = outliers.is_ejected(index, now);
        outliers.record(index, ok, now);
        !before && outliers.is_ejected(index, now)
    }

    /// An endpoint to call, by the cluster's policy; `hash` is the request's hash for ring hash
    /// and Maglev clusters (from the route's hash policy).
    pub fn pick(&self, hash: Option<u64>) -> Option<Arc<Endpoint>> {
        let mut rng = fastrand::Rng::new();
        let index = self.balancer.pick(&mut rng, hash, self)?;
        self.endpoints.get(index).cloned().flatten()
    }
}

/// Host names of DNS clusters, resolved: `(host, port)` → addresses.
type Resolved = HashMap<(String, u16), Vec<SocketAddr>>;

/// How often DNS clusters' names are resolved again (Envoy's default `dns_refresh_rate`).
const DNS_REFRESH: Duration = Duration::from_secs(5);

/// Resolves the host names STRICT_DNS and LOGICAL_DNS clusters name, all at once. With
/// `only_new`, names already in `known` keep their addresses (xDS updates must not wait on
/// DNS); a failed lookup keeps the last good addresses, as Envoy does.
async fn resolve_names(state: &XdsState, known: &Resolved, only_new: bool) -> Resolved {
    let mut names = Vec::new();
    for c in state.clusters.values() {
        if !matches!(
            c.resource.discovery,
            Discovery::StrictDns | Discovery::LogicalDns
        ) {
            continue;
        }
        let Some(assignment) = &c.resource.load_assignment else {
            continue;
        };
        for e in assignment.all() {
            if e.address.kind == AddressKind::Socket && e.address.ip().is_none() {
                names.push((e.address.host.clone(), e.address.port));
            }
        }
    }
    names.sort_unstable();
    names.dedup();
    let mut out = Resolved::new();
    let mut lookups = tokio::task::JoinSet::new();
    for key in names {
        match known.get(&key) {
            Some(addrs) if only_new => drop(out.insert(key, addrs.clone())),
            _ => {
                lookups.spawn(async move {
                    let lookup = tokio::net::lookup_host((key.0.as_str(), key.1));
                    let found = match tokio::time::timeout(Duration::from_secs(2), lookup).await {
                        Ok(Ok(addrs)) => Some(addrs.collect::<Vec<_>>()),
                        Ok(Err(err)) => {
                            tracing::warn!(host = %key.0, error = %err, "cannot resolve");
                            None
                        }
                        Err(_) => None,
                    };
                    (key, found)
                });
            }
        }
    }
    while let Some(Ok((key, found))) = lookups.join_next().await {
        let addrs = match found {
            Some(mut addrs) => {
                addrs.sort_unstable();
                addrs
            }
            None => known.get(&key).cloned().unwrap_or_default(),
        };
        out.insert(key, addrs);
    }
    out
}

/// The assignment with host names replaced by their addresses: every address for STRICT_DNS,
/// the first for LOGICAL_DNS.
fn expand(assignment: &Endpoints, discovery: &Discovery, resolved: &Resolved) -> Endpoints {
    let mut out = assignment.clone();
    for locality in &mut out.localities {
        let mut expanded = Vec::with_capacity(locality.endpoints.len());
        for e in &locality.endpoints {
            if e.address.kind != AddressKind::Socket || e.address.ip().is_some() {
                expanded.push(e.clone());
                continue;
            }
            let addrs = resolved
                .get(&(e.address.host.clone(), e.address.port))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let take = if *discovery == Discovery::LogicalDns {
                1
            } else {
                addrs.len()
            };
            for addr in addrs.iter().take(take) {
                let mut copy = e.clone();
                copy.address.host = addr.ip().to_string();
                expanded.push(copy);
            }
        }
        locality.endpoints = expanded;
    }
    out
}

/// Connection pools by address and endpoint wrappers by (address, identity), kept across
/// updates: calls in flight keep their connections, and least-request keeps counting them.
#[derive(Debug, Default)]
struct Pools {
    pools: HashMap<SocketAddr, Arc<EndpointPool>>,
    endpoints: HashMap<(SocketAddr, DubboIdentity), Arc<Endpoint>>,
    breakers: HashMap<String, Arc<Breaker>>,
}

/// What requests use, rebuilt on every accepted xDS update.
#[derive(Debug, Default)]
pub struct View {
    pub state: Arc<XdsState>,
    pub routes: Option<Arc<RouteConfig>>,
    pub clusters: HashMap<String, Arc<ClusterView>>,
}

#[derive(Debug)]
pub struct XdsRouting {
    pub client: XdsClient,
    /// HTTP/2 connections to gRPC/Triple endpoints, pooled per address, one client per event
    /// loop (see [`XdsRouting::grpc_client`]).
    grpc_clients: Vec<GrpcClient>,
    view: Arc<RwLock<Arc<View>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for XdsRouting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type GrpcClient = http_bridge::h2::Client;

impl XdsRouting {
    /// Starts the xDS client; `loops`: how many event loops call upstreams (each gets its own
    /// gRPC client).
    pub fn start(config: &XdsConfig, loops: usize) -> Result<XdsRouting, String> {
        let mut bootstrap = match &config.bootstrap {
            Some(path) => {
                Bootstrap::from_file(std::path::Path::new(path)).map_err(|e| e.to_string())?
            }
            None => Bootstrap::new(
                config.server.clone(),
                Node {
                    id: "dubbo-gateway".into(),
                    cluster: "dubbo-gateway".into(),
                    ..Default::default()
                },
            ),
        };
        // Only the fields given replace the bootstrap's (its locality and metadata stay).
        if let Some(id) = &config.node_id {
            bootstrap.node.id.clone_from(id);
        }
        if let Some(cluster) = &config.node_cluster {
            bootstrap.node.cluster.clone_from(cluster);
        }
        let options = ClientOptions {
            delta: config.delta,
            listeners: Subscribe::Names(vec![config.listener.clone()]),
            clusters: Subscribe::Wildcard,
            resource_timeout: Duration::from_millis(config.resource_timeout_ms),
            ..Default::default()
        };
        let client = XdsClient::start(bootstrap, options).map_err(|e| e.to_string())?;
        let view = Arc::new(RwLock::new(Arc::new(View::default())));
        let mut updates = client.updates();
        let listener = config.listener.clone();
        let connections = config.connections_per_endpoint;
        let shared = view.clone();
        let task = tokio::spawn(async move {
            let mut pools = Pools::default();
            let mut resolved = Resolved::new();
            // Addresses a periodic re-resolution found changed, to apply on the next build.
            let mut refreshed: Option<Resolved> = None;
            let mut refresh = tokio::time::interval(DNS_REFRESH);
            refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let state = updates.borrow_and_update().clone();
                let names = match refreshed.take() {
                    Some(fresh) => fresh,
                    None => resolve_names(&state, &resolved, true).await,
                };
                let dns_changed = names != resolved;
                resolved = names;
                let previous = shared.read().map(|v| v.clone()).unwrap_or_default();
                let next = build(
                    &state,
                    &previous,
                    &listener,
                    (connections, loops),
                    &mut pools,
                    &resolved,
                    dns_changed,
                );
                if let Ok(mut slot) = shared.write() {
                    *slot = Arc::new(next);
                }
                // Wait for the next xDS update, or re-resolve DNS clusters' names now and then.
                loop {
                    tokio::select! {
                        changed = updates.changed() => {
                            if changed.is_err() { return }
                            break;
                        }
                        _ = refresh.tick() => {
                            let state = updates.borrow().clone();
                            let dns = state.clusters.values().any(|c| {
                                matches!(c.resource.discovery, Discovery::StrictDns | Discovery::LogicalDns)
                            });
                            if dns {
                                let fresh = resolve_names(&state, &resolved, false).await;
                                if fresh != resolved {
                                    refreshed = Some(fresh);
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        });
        let grpc_clients = (0..loops.max(1))
            .map(|_| http_bridge::triple::cluster::http2_client(Duration::from_secs(3)))
            .collect();
        Ok(XdsRouting {
            client,
            grpc_clients,
            view,
            task,
        })
    }

    /// This event loop's gRPC client: an HTTP/2 connection is only ever driven by the thread
    /// that opened it.
    pub fn grpc_client(&self) -> &GrpcClient {
        &self.grpc_clients[crate::workers::id() % self.grpc_clients.len()]
    }

    /// What the xDS client holds now (connection, versions, ACK/NACK counts).
    pub fn state(&self) -> Arc<XdsState> {
        self.client.state()
    }

    /// The view in force.
    pub fn view(&self) -> Arc<View> {
        self.view.read().map(|v| v.clone()).unwrap_or_default()
    }

    pub async fn ready(&self, timeout: Duration) -> bool {
        self.client.ready(timeout).await
    }
}

fn build(
    state: &Arc<XdsState>,
    previous: &View,
    listener: &str,
    (connections, loops): (usize, usize),
    pools: &mut Pools,
    resolved: &Resolved,
    dns_changed: bool,
) -> View {
    let routes = match state.listeners.get(listener) {
        // The listener is gone (or not there yet): no xDS routes.
        None => None,
        Some(l) => match l.resource.http.first().map(|hcm| &hcm.routes) {
            Some(RouteSource::Rds(name)) => match state.routes.get(name) {
                Some(r) => Some(r.resource.clone()),
                // Switched to a RouteConfiguration not received yet: keep routing by the old
                // one meanwhile, as Envoy does while the new one warms.
                None => previous.routes.clone(),
            },
            Some(RouteSource::Inline(rc)) => Some(Arc::new(rc.clone())),
            None => None,
        },
    };
    let mut clusters = HashMap::new();
    let mut in_use = std::collections::HashSet::new();
    for (name, versioned) in &state.clusters {
        let Some(assignment) = state.endpoints_of(name) else {
            // Endpoints for a new EDS name not received yet: keep the cluster's previous view.
            if let Some(old) = previous.clusters.get(name) {
                for e in old.endpoints.iter().flatten() {
                    in_use.insert(e.pool.addr());
                }
                clusters.insert(name.clone(), old.clone());
            }
            continue;
        };
        let cluster = &versioned.resource;
        let dns = matches!(
            cluster.discovery,
            Discovery::StrictDns | Discovery::LogicalDns
        );
        // Unchanged cluster and endpoints: keep the view (and its balancer's state).
        if let Some(old) = previous
            .clusters
            .get(name)
            .filter(|_| !(dns && dns_changed))
        {
            let same_endpoints = previous
                .state
                .endpoints_of(name)
                .is_some_and(|e| std::ptr::eq(e, assignment));
            if Arc::ptr_eq(&old.cluster, cluster) && same_endpoints {
                for e in old.endpoints.iter().flatten() {
                    in_use.insert(e.pool.addr());
                }

                clusters.insert(name.clone(), old.clone());
                continue;
            }
        }
        let balancer = if dns {
            LoadBalancer::new(
                cluster.lb_policy,
                &expand(assignment, &cluster.discovery, resolved),
            )
        } else {
            LoadBalancer::new(cluster.lb_policy, assignment)
        };
        let pool_config = PoolConfig {
            connections,
            loops,
            connect_timeout: cluster.connect_timeout,
            ..PoolConfig::default()
        };
        let endpoints = balancer
            .endpoints()
            .iter()
            .map(|e| {
                let addr = (e.address.kind == AddressKind::Socket)
                    .then(|| e.address.socket_addr())
                    .flatten()?;
                in_use.insert(addr);
                let identity = DubboIdentity {
                    application: e.dubbo.as_ref().map(|d| Arc::from(d.application.as_str())),
                    revision: e
                        .dubbo
                        .as_ref()
                        .and_then(|d| d.revision.as_deref())
                        .map(Arc::from),
                };
                let pool = pools
                    .pools
                    .entry(addr)
                    .or_insert_with(|| EndpointPool::new(addr, pool_config.clone()))
                    .clone();
                Some(
                    pools
                        .endpoints
                        .entry((addr, identity.clone()))
                        .or_insert_with(|| Endpoint::new(pool, identity))
                        .clone(),
                )
            })
            .collect();
        let thresholds = CircuitBreaker {
            max_requests: cluster.thresholds.max_requests,
            max_pending_requests: cluster.thresholds.max_pending_requests,
        };
        let breaker = pools
            .breakers
            .entry(name.clone())
            .or_insert_with(|| Breaker::new(thresholds))
            .clone();
        breaker.set_limits(thresholds);
        let outliers = cluster.outlier_detection.map(|config| {
            let outliers = Outliers::new(config, balancer.endpoints().len());
            // Endpoints that carry on keep their record, matched by address.
            if let Some((old_view, old)) = previous
                .clusters
                .get(name)
                .and_then(|v| v.outliers.as_ref().map(|o| (v, o)))
            {
                let old_addresses = old_view.balancer.endpoints();
                outliers.inherit(old, |i| {
                    let address = &balancer.endpoints()[i].address;
                    old_addresses.iter().position(|e| &e.address == address)
                });
            }
            outliers
        });
        clusters.insert(
            name.clone(),
            Arc::new(ClusterView {
                cluster: cluster.clone(),
                balancer,
                endpoints,
                breaker,
                name: Arc::from(name.as_str()),
                outliers,
            }),
        );
    }
    // Pools no endpoint uses any more go; calls in flight keep theirs alive until done.
    pools.pools.retain(|addr, _| in_use.contains(addr));
    pools.endpoints.retain(|(addr, _), _| in_use.contains(addr));
    pools.breakers.retain(|name, _| clusters.contains_key(name));
    View {
        state: state.clone(),
        routes,
        clusters,
    }
}
