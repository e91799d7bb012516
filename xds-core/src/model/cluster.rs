//! `Cluster`: how a group of endpoints is discovered, balanced and protected.

use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3 as pb;

use super::endpoints::Endpoints;
use super::{duration, string_field};
use crate::Error;

const KIND: &str = "Cluster";

#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub discovery: Discovery,
    pub lb_policy: LbPolicy,
    pub connect_timeout: Duration,
    /// Default-priority circuit-breaker thresholds.
    pub thresholds: Thresholds,
    pub outlier_detection: Option<OutlierDetection>,
    /// Endpoints given inline (STATIC and DNS clusters; EDS clusters get theirs by name).
    pub load_assignment: Option<Endpoints>,
    /// The upstream protocol, from `metadata.filter_metadata["dubbo"].protocol`
    /// (`dubbo` or `tri`); `None` when not said.
    pub protocol: Option<String>,
    /// How a Triple cluster's methods without IDL are serialized, from
    /// `filter_metadata["dubbo"].serialization` (`hessian2`, `json`); `None` when not said.
    pub serialization: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// Endpoints from EDS under this name (the cluster's name unless `service_name` says).
    Eds {
        service_name: String,
    },
    Static,
    StrictDns,
    LogicalDns,
    /// ORIGINAL_DST (Istio's passthrough): valid, kept, never picked by this crate's users.
    OriginalDst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    RoundRobin,
    /// Picks the least loaded of `choice_count` random endpoints.
    LeastRequest {
        choice_count: u32,
    },
    Random,
    RingHash {
        minimum_ring_size: u64,
        maximum_ring_size: u64,
    },
    Maglev {
        table_size: u64,
    },
}

/// Circuit-breaker thresholds (Envoy's defaults when unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub max_connections: u32,
    pub max_pending_requests: u32,
    pub max_requests: u32,
    pub max_retries: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
        }
    }
}

/// Consecutive-failure ejection (Envoy's defaults when unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierDetection {
    pub consecutive_5xx: u32,
    pub interval: Duration,
    pub base_ejection_time: Duration,
    pub max_ejection_percent: u32,
}

impl TryFrom<&pb::Cluster> for Cluster {
    type Error = Error;

    fn try_from(c: &pb::Cluster) -> Result<Self, Error> {
        let invalid = |reason: String| Error::invalid(KIND, &c.name, reason);
        if c.name.is_empty() {
            return Err(invalid("a cluster needs a name".into()));
        }
        use pb::cluster::ClusterDiscoveryType as T;
        let discovery = match &c.cluster_discovery_type {
            None | Some(T::Type(0)) => Discovery::Static,
            Some(T::Type(1)) => Discovery::StrictDns,
            Some(T::Type(2)) => Discovery::LogicalDns,
            Some(T::Type(3)) => Discovery::Eds {
                service_name: c
                    .eds_cluster_config
                    .as_ref()
                    .map(|e| e.service_name.clone())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| c.name.clone()),
            },
            Some(T::Type(4)) => Discovery::OriginalDst,
            Some(T::Type(other)) => {
                return Err(invalid(format!("discovery type {other} is not supported")))
            }
            Some(T::ClusterType(custom)) => {
                return Err(invalid(format!(
                    "custom cluster type {:?} is not supported",
                    custom.name
                )))
            }
        };
        let lb_policy = lb_policy(c).map_err(invalid)?;
        let load_assignment = c
            .load_assignment
            .as_ref()
            .map(Endpoints::try_from)
            .transpose()
            .map_err(|e| invalid(format!("load_assignment: {e}")))?;
        // STATIC clusters may be empty (Istio's BlackHoleCluster); DNS ones need names.
        if matches!(discovery, Discovery::StrictDns | Discovery::LogicalDns)
            && load_assignment.as_ref().is_none_or(|l| l.is_empty())
        {
            return Err(invalid(format!(
                "a {discovery:?} cluster needs endpoints in load_assignment"
            )));
        }
        if discovery == Discovery::Static {
            if let Some(la) = &load_assignment {
                // Pipes and internal addresses are fine; host names need a DNS cluster.
                let named = la.all().find(|e| {
                    e.address.kind == super::AddressKind::Socket && e.address.ip().is_none()
                });
                if let Some(e) = named {
                    return Err(invalid(format!(
                        "a STATIC cluster needs IP addresses, not {:?}",
                        e.address.host
                    )));
                }
            }
        }
        let thresholds = c
            .circuit_breakers
            .as_ref()
            .and_then(|cb| cb.thresholds.iter().find(|t| t.priority == 0))
            .map(|t| {
                let d = Thresholds::default();
                Thresholds {
                    max_connections: t
                        .max_connections
                        .as_ref()
                        .map_or(d.max_connections, |v| v.value),
                    max_pending_requests: t
                        .max_pending_requests
                        .as_ref()
                        .map_or(d.max_pending_requests, |v| v.value),
                    max_requests: t.max_requests.as_ref().map_or(d.max_requests, |v| v.value),
                    max_retries: t.max_retries.as_ref().map_or(d.max_retries, |v| v.value),
                }
            })
            .unwrap_or_default();
        let outlier_detection = c.outlier_detection.as_ref().map(|o| OutlierDetection {
            consecutive_5xx: o.consecutive_5xx.as_ref().map_or(5, |v| v.value),
            interval: o
                .interval
                .as_ref()
                .map_or(Duration::from_secs(10), duration),
            base_ejection_time: o
                .base_ejection_time
                .as_ref()
                .map_or(Duration::from_secs(30), duration),
            max_ejection_percent: o
                .max_ejection_percent
                .as_ref()
                .map_or(10, |v| v.value.min(100)),
        });
        let dubbo_field = |field: &str| {
            c.metadata
                .as_ref()
                .and_then(|m| m.filter_metadata.get("dubbo"))
                .and_then(|s| string_field(s, field))
        };
        Ok(Cluster {
            name: c.name.clone(),
            discovery,
            lb_policy,
            connect_timeout: c
                .connect_timeout
                .as_ref()
                .map_or(Duration::from_secs(5), duration),
            thresholds,
            outlier_detection,
            load_assignment,
            protocol: dubbo_field("protocol"),
            serialization: dubbo_field("serialization"),
        })
    }
}

fn lb_policy(c: &pb::Cluster) -> Result<LbPolicy, String> {
    use pb::cluster::LbConfig;
    // The typed `load_balancing_policy` (as gRPC clients are given it) wins when present: its
    // first policy this crate knows.
    if let Some(policy) = &c.load_balancing_policy {
        for p in &policy.policies {
            let Some(ext) = &p.typed_extension_config else {
                continue;
            };
            let type_url = ext
                .typed_config
                .as_ref()
                .map_or("", |a| a.type_url.as_str());
            let known = [
                ("round_robin", LbPolicy::RoundRobin),
                ("least_request", LbPolicy::LeastRequest { choice_count: 2 }),
                ("random", LbPolicy::Random),
                (
                    "ring_hash",
                    LbPolicy::RingHash {
                        minimum_ring_size: 1024,
                        maximum_ring_size: 8 << 20,
                    },
                ),
                ("maglev", LbPolicy::Maglev { table_size: 65537 }),
                // Weighted round robin over localities (what gRPC control planes send).
                ("wrr_locality", LbPolicy::RoundRobin),
                ("pick_first", LbPolicy::RoundRobin),
            ];
            if let Some((_, policy)) = known
                .iter()
                .find(|(n, _)| type_url.contains(&format!(".{n}.")) || ext.name.contains(n))
            {
                return Ok(*policy);
            }
        }
        return Err("none of load_balancing_policy's policies is supported".into());
    }
    Ok(match c.lb_policy {
        0 => LbPolicy::RoundRobin,
        1 => LbPolicy::LeastRequest {
            choice_count: match &c.lb_config {
                Some(LbConfig::LeastRequestLbConfig(l)) => {
                    l.choice_count.as_ref().map_or(2, |v| v.value.max(2))
                }
                _ => 2,
            },
        },
        2 => {
            let (min, max) = match &c.lb_config {
                Some(LbConfig::RingHashLbConfig(r)) => (
                    r.minimum_ring_size.as_ref().map_or(1024, |v| v.value),
                    r.maximum_ring_size.as_ref().map_or(8 << 20, |v| v.value),
                ),
                _ => (1024, 8 << 20),
            };
            if min == 0 || min > max {
                return Err(format!("ring hash sizes {min}..{max} are not a range"));
            }
            LbPolicy::RingHash {
                minimum_ring_size: min,
                maximum_ring_size: max,
            }
        }
        3 => LbPolicy::Random,
        5 => LbPolicy::Maglev {
            table_size: match &c.lb_config {
                Some(LbConfig::MaglevLbConfig(m)) => {
                    m.table_size.as_ref().map_or(65537, |v| v.value)
                }
                _ => 65537,
            },
        },
        // The cluster type picks (ORIGINAL_DST): nothing to balance here.
        6 => LbPolicy::RoundRobin,
        other => return Err(format!("lb_policy {other} is not supported")),
    })
}
