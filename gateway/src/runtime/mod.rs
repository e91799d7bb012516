//! A validated configuration compiled into what requests use: routes ready to match, clusters
//! with their pools, method signatures by interface, and the type registry.
//!
//! * this module: the compiled types and [`Runtime::build`] (reusing what a previous runtime
//!   holds across a reload);
//! * [`matching`]: which route serves a request path, and path/query decoding;
//! * [`prefix_routes`]: the gRPC and HTTP proxying routes;
//! * [`state`]: what operators see of it (breakers, connections, endpoint health).

mod matching;
mod prefix_routes;
mod state;

pub use matching::{decode_component, query_pairs};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use http_bridge::dubbo2::{self, Cluster, PoolConfig};
use http_bridge::mapping::{MethodSig, Param};
use http_bridge::to_json::JsonOptions;
use http_bridge::triple::{TripleCluster, TripleEndpoint};
use http_bridge::types::{TypeRef, TypeRegistry};

use crate::breaker::Breaker;
use crate::config::{self, validate::resolve, Config};
use crate::http_proxy::HttpCluster;
use crate::metadata::Typing;
use crate::rate_limit::Limiter;
use crate::telemetry::access_log::AccessLogger;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::trace::Tracing;

/// Everything a request needs, built once per configuration.
#[derive(Debug)]
pub struct Runtime {
    pub config: Config,
    pub routes: Vec<CompiledRoute>,
    /// Configured clusters by name.
    pub clusters: HashMap<String, Arc<UpstreamCluster>>,
    pub services: HashMap<String, HashMap<String, Vec<MethodSig>>>,
    pub registry: TypeRegistry,
    pub json: JsonOptions,
    pub propagate_headers: Vec<http::HeaderName>,
    pub max_body_bytes: usize,
    /// Types from published metadata, when a metadata store is running.
    pub typing: Option<Arc<Typing>>,
    /// Routes, clusters and endpoints from xDS, when configured.
    pub xds: Option<Arc<crate::xds::XdsRouting>>,
    /// gRPC routes by path prefix, in configuration order.
    pub grpc_routes: Vec<GrpcRoute>,
    /// HTTP proxying routes by path prefix, in configuration order.
    pub http_routes: Vec<HttpRoute>,
    /// Protobuf descriptors for HTTP/JSON → gRPC, when descriptor sets are configured.
    pub descriptors: Option<prost_reflect::DescriptorPool>,
    /// Descriptors learnt by server reflection, by cluster name.
    pub reflected: dashmap::DashMap<String, Arc<crate::reflection::Reflected>>,
    /// Shared by every configuration the gateway runs.
    pub metrics: Arc<Metrics>,
    pub access_log: Option<AccessLogger>,
    /// OpenTelemetry tracing, when enabled.
    pub tracing: Option<Arc<Tracing>>,
    /// The top-level rate limit: routes without their own, xDS routes, gRPC routes.
    pub default_limit: Option<Arc<Limiter>>,
}

/// An HTTP proxying route, compiled.
#[derive(Debug)]
pub struct HttpRoute {
    pub prefix: String,
    pub cluster: Arc<HttpCluster>,
    pub upstream: Arc<UpstreamCluster>,
    /// Time allowed for the upstream's response head.
    pub timeout: Duration,
    pub limit: RouteLimit,
    pub label: Arc<str>,
}

/// A gRPC route, compiled.
#[derive(Debug)]
pub struct GrpcRoute {
    pub prefix: String,
    pub cluster: Arc<TripleCluster>,
    /// The cluster as HTTP routes see it (its name label and circuit breaker).
    pub upstream: Arc<UpstreamCluster>,
    /// Deadline of HTTP/JSON calls transcoded on this route.
    pub timeout: Duration,
    pub limit: RouteLimit,
    pub label: Arc<str>,
}

/// What every configuration a gateway runs shares: the metadata store, xDS, metrics, the
/// access log writer and the trace exporter.
#[derive(Debug, Clone)]
pub struct Shared {
    pub typing: Option<Arc<Typing>>,
    pub xds: Option<Arc<crate::xds::XdsRouting>>,
    pub metrics: Arc<Metrics>,
    pub access_log: Option<AccessLogger>,
    pub tracing: Option<Arc<Tracing>>,
}

/// A route's rate limit.
#[derive(Debug, Clone)]
pub enum RouteLimit {
    /// The top-level one, if any.
    Default,
    Own(Arc<Limiter>),
    /// `requests_per_second: 0` on the route.
    Exempt,
}

impl RouteLimit {
    pub(super) fn compile(config: Option<&config::RateLimit>) -> Result<RouteLimit, String> {
        Ok(match config {
            None => RouteLimit::Default,
            Some(c) => match Limiter::new(c)? {
                Some(l) => RouteLimit::Own(Arc::new(l)),
                None => RouteLimit::Exempt,
            },
        })
    }
}

#[derive(Debug)]
pub struct UpstreamCluster {
    pub kind: UpstreamKind,
    pub timeout: Duration,
    /// The cluster's name, shared with metrics labels.
    pub label: Arc<str>,
    pub breaker: Arc<Breaker>,
}

/// The protocol a cluster speaks, with what calling it needs.
#[derive(Debug)]
pub enum UpstreamKind {
    Dubbo2(Cluster),
    Triple {
        cluster: Arc<TripleCluster>,
        serialization: config::Serialization,
    },
    Http(Arc<HttpCluster>),
}

impl UpstreamCluster {
    pub fn name(&self) -> &str {
        match &self.kind {
            UpstreamKind::Dubbo2(c) => &c.name,
            UpstreamKind::Triple { cluster, .. } => &cluster.name,
            UpstreamKind::Http(cluster) => &cluster.name,
        }
    }
}

#[derive(Debug)]
pub struct CompiledRoute {
    pub kind: RouteKind,
    pub cluster: Arc<UpstreamCluster>,
    pub version: Option<String>,
    pub group: Option<String>,
    pub timeout: Duration,
    /// Made by the gateway for an application its clusters know, not written in the config.
    pub automatic: bool,
    /// How metrics and access logs name the route: its prefix, or method and path template.
    pub label: Arc<str>,
    pub limit: RouteLimit,
}

#[derive(Debug)]
pub enum RouteKind {
    /// `POST {prefix}/{interface}/{method}`.
    Generic { prefix: String },
    /// One HTTP method and path template onto one Dubbo method.
    Declared {
        method: Method,
        template: Vec<Segment>,
        interface: String,
        call: String,
        params: Vec<(Source, TypeRef)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Literal(String),
    Var(String),
}

/// Where a declared argument comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Path(String),
    Query(String),
    Header(http::HeaderName),
    Body,
    BodyField(String),
}

/// What a request path matched.
#[derive(Debug)]
pub enum Matched<'r> {
    Generic {
        route: &'r CompiledRoute,
        interface: String,
        method: String,
    },
    Declared {
        route: &'r CompiledRoute,
        interface: &'r str,
        call: &'r str,
        params: &'r [(Source, TypeRef)],
        vars: Vec<(String, String)>,
    },
    /// The path is served, but not with this HTTP method.
    WrongMethod { allowed: Method },
}

impl Matched<'_> {
    /// The route matched, unless only the HTTP method was wrong.
    pub fn route(&self) -> Option<&CompiledRoute> {
        match self {
            Matched::Generic { route, .. } | Matched::Declared { route, .. } => Some(route),
            Matched::WrongMethod { .. } => None,
        }
    }
}

impl Runtime {
    /// Compiles a configuration that `config::validate` accepted. Spawns the pools' keepalive
    /// tasks, so it must run inside the runtime.
    pub fn build(
        config: Config,
        shared: Shared,
        previous: Option<&Runtime>,
    ) -> Result<Runtime, String> {
        let Shared {
            typing,
            xds,
            metrics,
            access_log,
            tracing,
        } = shared;
        // Worker threads in all: each listener has its own.
        let threads = crate::workers::count(&config);
        // Event loops with connections of their own to a cluster's endpoints: each worker
        // (ids 1..=threads) and everything else (0), unless the cluster wants them shared.
        let loops = |c: &config::Cluster| {
            if c.per_worker_connections {
                threads + 1
            } else {
                1
            }
        };
        // A reload keeps what still fits: connection pools by (address, settings), so calls
        // in flight keep their connections and new calls need no reconnect; circuit breakers
        // by cluster name, so calls in flight stay counted.
        let old_pools: HashMap<SocketAddr, Arc<dubbo2::EndpointPool>> = previous
            .map(|p| {
                p.clusters
                    .values()
                    .filter_map(|c| match &c.kind {
                        UpstreamKind::Dubbo2(cluster) => Some(cluster.endpoints()),
                        UpstreamKind::Triple { .. } | UpstreamKind::Http(_) => None,
                    })
                    .flatten()
                    .map(|e| (e.pool.addr(), Arc::clone(&e.pool)))
                    .collect()
            })
            .unwrap_or_default();
        // An old breaker takes the new limits only once the new runtime is swapped in
        // ([`Runtime::apply_breaker_limits`]): a rejected reload must change nothing.
        let breaker = |c: &config::Cluster| match previous.and_then(|p| p.clusters.get(&c.name)) {
            Some(old) => Arc::clone(&old.breaker),
            None => Breaker::new(c.circuit_breaker),
        };
        // Rate limits with unchanged settings keep their buckets (a reload is no free burst).
        let kept_limit = |label: &str, config: Option<&config::RateLimit>| {
            let previous = previous?;
            let config = config?;
            let old = previous.routes.iter().find(|r| &*r.label == label)?;
            match &old.limit {
                RouteLimit::Own(l) if l.config == *config => Some(RouteLimit::Own(Arc::clone(l))),
                _ => None,
            }
        };
        let mut clusters = HashMap::new();
        let mut grpc_clusters = HashMap::new();
        for c in &config.clusters {
            let endpoints = c
                .endpoints
                .iter()
                .map(|e| {
                    let (application, revision) = e.identity(c);
                    let identity = dubbo2::DubboIdentity {
                        application: application.map(Arc::from),
                        revision: revision.map(Arc::from),
                    };
                    Ok((resolve(e.address())?, identity))
                })
                .collect::<Result<Vec<_>, String>>()?;
            if c.protocol == config::ClusterProtocol::Http {
                let addrs: Vec<SocketAddr> = endpoints.into_iter().map(|(addr, _)| addr).collect();
                let connect_timeout = Duration::from_millis(c.connect_timeout_ms);
                // Unchanged across a reload: the same cluster, its pools and connections.
                let kept =
                    previous
                        .and_then(|p| p.clusters.get(&c.name))
                        .and_then(|old| match &old.kind {
                            UpstreamKind::Http(h)
                                if h.same_as(&addrs, connect_timeout, threads) =>
                            {
                                Some(Arc::clone(h))
                            }
                            _ => None,
                        });
                let http = kept.unwrap_or_else(|| {
                    Arc::new(HttpCluster::new(&c.name, addrs, connect_timeout, threads))
                });
                let upstream = UpstreamCluster {
                    kind: UpstreamKind::Http(http),
                    timeout: Duration::from_millis(c.timeout_ms),
                    label: Arc::from(c.name.as_str()),
                    breaker: breaker(c),
                };
                clusters.insert(c.name.clone(), Arc::new(upstream));
                continue;
            }
            if c.protocol == config::ClusterProtocol::Grpc {
                let endpoints = endpoints
                    .into_iter()
                    .map(|(addr, identity)| TripleEndpoint { addr, identity })
                    .collect();
                let triple = Arc::new(TripleCluster::new(
                    &c.name,
                    endpoints,
                    Duration::from_millis(c.connect_timeout_ms),
                    c.max_frame_bytes,
                    loops(c),
                ));
                grpc_clusters.insert(c.name.clone(), Arc::clone(&triple));
                let upstream = UpstreamCluster {
                    kind: UpstreamKind::Triple {
                        cluster: triple,
                        serialization: c.serialization,
                    },
                    timeout: Duration::from_millis(c.timeout_ms),
                    label: Arc::from(c.name.as_str()),
                    breaker: breaker(c),
                };
                clusters.insert(c.name.clone(), Arc::new(upstream));
                continue;
            }
            let pool = PoolConfig {
                connections: c.connections_per_endpoint,
                loops: loops(c),
                connect_timeout: Duration::from_millis(c.connect_timeout_ms),
                max_frame: c.max_frame_bytes,
                heartbeat: (c.heartbeat_ms > 0).then(|| Duration::from_millis(c.heartbeat_ms)),
            };
            let policy = match c.lb_policy {
                config::LbPolicy::RoundRobin => dubbo2::LbPolicy::RoundRobin,
                config::LbPolicy::Random => dubbo2::LbPolicy::Random,
                config::LbPolicy::LeastRequest => dubbo2::LbPolicy::LeastRequest,
            };
            let endpoints = endpoints
                .into_iter()
                .map(|(addr, identity)| {
                    let pool = match old_pools.get(&addr) {
                        Some(old) if *old.config() == pool => Arc::clone(old),
                        _ => dubbo2::EndpointPool::new(addr, pool.clone()),
                    };
                    dubbo2::Endpoint::new(pool, identity)
                })
                .collect();
            let upstream = UpstreamCluster {
                kind: UpstreamKind::Dubbo2(Cluster::from_endpoints(&c.name, endpoints, policy)),
                timeout: Duration::from_millis(c.timeout_ms),
                label: Arc::from(c.name.as_str()),
                breaker: breaker(c),
            };
            clusters.insert(c.name.clone(), Arc::new(upstream));
        }
        let mut routes = Vec::new();
        for r in &config.routes {
            let cluster = Arc::clone(
                clusters
                    .get(&r.cluster)
                    .ok_or_else(|| format!("no cluster {:?}", r.cluster))?,
            );
            let kind = match &r.path {
                None => RouteKind::Generic {
                    prefix: r
                        .prefix
                        .clone()
                        .or_else(|| r.application.as_ref().map(|a| format!("/{a}")))
                        .unwrap_or_default()
                        .trim_end_matches('/')
                        .to_owned(),
                },
                Some(path) => RouteKind::Declared {
                    method: Method::from_bytes(
                        r.method
                            .as_deref()
                            .unwrap_or("GET")
                            .to_ascii_uppercase()
                            .as_bytes(),
                    )
                    .map_err(|e| e.to_string())?,
                    template: path
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(
                            |s| match s.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
                                Some(var) => Segment::Var(var.to_owned()),
                                None => Segment::Literal(s.to_owned()),
                            },
                        )
                        .collect(),
                    interface: r.interface.clone().unwrap_or_default(),
                    call: r.call.clone().unwrap_or_default(),
                    params: r
                        .params
                        .iter()
                        .map(|p| {
                            Ok((
                                source(&p.from)?,
                                TypeRef::parse(&p.ty).map_err(|e| e.to_string())?,
                            ))
                        })
                        .collect::<Result<_, String>>()?,
                },
            };
            let timeout = r.timeout_ms.map_or(cluster.timeout, Duration::from_millis);
            let label = match &kind {
                RouteKind::Generic { prefix } if prefix.is_empty() => "/".to_owned(),
                RouteKind::Generic { prefix } => prefix.clone(),
                RouteKind::Declared { method, .. } => {
                    format!("{method} {}", r.path.as_deref().unwrap_or_default())
                }
            };
            routes.push(CompiledRoute {
                kind,
                cluster,
                version: r.version.clone(),
                group: r.group.clone(),
                timeout,
                automatic: false,
                limit: match kept_limit(&label, r.rate_limit.as_ref()) {
                    Some(kept) => kept,
                    None => RouteLimit::compile(r.rate_limit.as_ref())?,
                },
                label: Arc::from(label),
            });
        }
        // Every application the clusters' endpoints name is reachable at
        // `POST /{application}/{interface}/{method}` without a route written for it; routes in
        // the config come first.
        for c in config
            .clusters
            .iter()
            .filter(|c| c.protocol != config::ClusterProtocol::Http)
        {
            for e in &c.endpoints {
                let Some(application) = e.identity(c).0 else {
                    continue;
                };
                let prefix = format!("/{application}");
                let taken = routes
                    .iter()
                    .any(|r| matches!(&r.kind, RouteKind::Generic { prefix: p } if *p == prefix));
                if taken {
                    continue;
                }
                let cluster = Arc::clone(&clusters[&c.name]);
                routes.push(CompiledRoute {
                    label: Arc::from(prefix.as_str()),
                    kind: RouteKind::Generic { prefix },
                    timeout: cluster.timeout,
                    cluster,
                    version: None,
                    group: None,
                    automatic: true,
                    limit: RouteLimit::Default,
                });
            }
        }
        let mut services: HashMap<String, HashMap<String, Vec<MethodSig>>> = HashMap::new();
        for s in &config.services {
            for m in &s.methods {
                let params = m
                    .params
                    .iter()
                    .map(|p| {
                        Ok(Param {
                            name: p.name.clone(),
                            ty: TypeRef::parse(&p.ty).map_err(|e| e.to_string())?,
                        })
                    })
                    .collect::<Result<_, String>>()?;
                services
                    .entry(s.interface.clone())
                    .or_default()
                    .entry(m.name.clone())
                    .or_default()
                    .push(MethodSig {
                        name: m.name.clone(),
                        params,
                    });
            }
        }
        let mut registry = TypeRegistry::default();
        for t in &config.types {
            if t.constants.is_empty() {
                let props = t
                    .properties
                    .iter()
                    .map(|p| {
                        Ok((
                            p.name.clone().unwrap_or_default(),
                            TypeRef::parse(&p.ty).map_err(|e| e.to_string())?,
                        ))
                    })
                    .collect::<Result<_, String>>()?;
                registry.add_class(&t.class, props);
            } else {
                registry.add_enum(&t.class, t.constants.clone());
            }
        }
        let propagate_headers = config
            .propagate_headers
            .iter()
            .filter_map(|h| http::HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).ok())
            .collect();
        let grpc_routes = prefix_routes::grpc(&config, &grpc_clusters, &clusters, previous)?;
        let http_routes = prefix_routes::http(&config, &clusters, previous)?;
        Ok(Runtime {
            routes,
            http_routes,
            clusters,
            services,
            registry,
            json: JsonOptions {
                longs_as_strings: config.json.longs_as_strings,
            },
            propagate_headers,
            max_body_bytes: config.limits.max_body_bytes,
            typing,
            xds,
            descriptors: crate::transcode::load(&config.descriptor_sets)?,
            reflected: dashmap::DashMap::new(),
            metrics,
            access_log,
            tracing,
            default_limit: match (
                &config.rate_limit,
                previous.and_then(|p| p.default_limit.as_ref()),
            ) {
                (Some(c), Some(old)) if old.config == *c => Some(Arc::clone(old)),
                (Some(c), _) => Limiter::new(c)?.map(Arc::new),
                (None, _) => None,
            },
            grpc_routes,
            config,
        })
    }
}

fn source(from: &str) -> Result<Source, String> {
    Ok(match from.split_once('.') {
        Some(("path", v)) => Source::Path(v.to_owned()),
        Some(("query", v)) => Source::Query(v.to_owned()),
        Some(("header", v)) => Source::Header(
            http::HeaderName::from_bytes(v.to_ascii_lowercase().as_bytes())
                .map_err(|e| e.to_string())?,
        ),
        Some(("body", v)) => Source::BodyField(v.to_owned()),
        None if from == "body" => Source::Body,
        _ => return Err(format!("bad parameter source {from:?}")),
    })
}
