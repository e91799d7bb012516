//! `ClusterLoadAssignment`: a cluster's endpoints by locality and priority, with weights,
//! health and the metadata naming the Dubbo application instance behind each.

use std::net::{IpAddr, SocketAddr};

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::endpoint::v3 as pb;

use super::string_field;
use crate::Error;

const KIND: &str = "ClusterLoadAssignment";

#[derive(Debug, Clone)]
pub struct Endpoints {
    pub cluster_name: String,
    pub localities: Vec<LocalityEndpoints>,
    /// Percent; 140 by default: a priority serves all its share until fewer than 1/1.4 of its
    /// endpoints are healthy.
    pub overprovisioning_factor: u32,
}

#[derive(Debug, Clone)]
pub struct LocalityEndpoints {
    pub locality: Locality,
    /// 0 is the highest priority.
    pub priority: u32,
    /// `load_balancing_weight` of the locality, when given.
    pub weight: Option<u32>,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Locality {
    pub region: String,
    pub zone: String,
    pub sub_zone: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub address: Address,
    pub health: Health,
    /// `load_balancing_weight`, 1 by default.
    pub weight: u32,
    /// `metadata.filter_metadata["dubbo"]`: which application instance this is.
    pub dubbo: Option<DubboEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// An IP address or a host name (DNS clusters); for a pipe its path, for an Envoy internal
    /// address the listener's name.
    pub host: String,
    /// 0 for pipes and internal addresses.
    pub port: u16,
    pub kind: AddressKind,
}

/// Valid in xDS, though only sockets can be dialled by this crate's users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKind {
    Socket,
    Pipe,
    EnvoyInternal,
}

impl Address {
    pub fn ip(&self) -> Option<IpAddr> {
        if self.kind != AddressKind::Socket {
            return None;
        }
        self.host.parse().ok()
    }

    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.ip().map(|ip| SocketAddr::new(ip, self.port))
    }
}

/// Health as EDS reports it, folded the way Envoy uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// HEALTHY or UNKNOWN.
    Healthy,
    /// DEGRADED: used only when not enough endpoints are healthy.
    Degraded,
    /// UNHEALTHY, DRAINING or TIMEOUT.
    Unhealthy,
}

/// `filter_metadata["dubbo"]` of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DubboEndpoint {
    pub application: String,
    pub revision: Option<String>,
    pub protocol: Option<String>,
    pub metadata_port: Option<u16>,
}

impl Endpoints {
    pub fn is_empty(&self) -> bool {
        self.localities.iter().all(|l| l.endpoints.is_empty())
    }

    /// Every endpoint, whatever its locality or priority.
    pub fn all(&self) -> impl Iterator<Item = &Endpoint> {
        self.localities.iter().flat_map(|l| l.endpoints.iter())
    }
}

impl TryFrom<&pb::ClusterLoadAssignment> for Endpoints {
    type Error = Error;

    fn try_from(cla: &pb::ClusterLoadAssignment) -> Result<Self, Error> {
        let invalid = |reason: String| Error::invalid(KIND, &cla.cluster_name, reason);
        let mut localities = Vec::with_capacity(cla.endpoints.len());
        for (i, l) in cla.endpoints.iter().enumerate() {
            let mut endpoints = Vec::with_capacity(l.lb_endpoints.len());
            for (j, e) in l.lb_endpoints.iter().enumerate() {
                let endpoint = endpoint(e, &cla.named_endpoints).map_err(|reason| {
                    invalid(format!("endpoints[{i}].lb_endpoints[{j}]: {reason}"))
                })?;
                endpoints.push(endpoint);
            }
            let weight = l.load_balancing_weight.as_ref().map(|w| w.value);
            if weight == Some(0) {
                return Err(invalid(format!(
                    "endpoints[{i}]: a locality weight must be at least 1"
                )));
            }
            localities.push(LocalityEndpoints {
                locality: l
                    .locality
                    .as_ref()
                    .map(|l| Locality {
                        region: l.region.clone(),
                        zone: l.zone.clone(),
                        sub_zone: l.sub_zone.clone(),
                    })
                    .unwrap_or_default(),
                priority: l.priority,
                weight,
                endpoints,
            });
        }
        // Priorities must be contiguous from 0 (Envoy refuses gaps).
        let mut priorities: Vec<u32> = localities.iter().map(|l| l.priority).collect();
        priorities.sort_unstable();
        priorities.dedup();
        if priorities.iter().enumerate().any(|(i, p)| *p as usize != i) {
            return Err(invalid(format!(
                "priorities {priorities:?} are not contiguous from 0"
            )));
        }
        let overprovisioning_factor = cla
            .policy
            .as_ref()
            .and_then(|p| p.overprovisioning_factor.as_ref())
            .map_or(140, |f| f.value);
        if overprovisioning_factor == 0 {
            return Err(invalid(
                "overprovisioning_factor must be greater than 0".into(),
            ));
        }
        Ok(Endpoints {
            cluster_name: cla.cluster_name.clone(),
            localities,
            overprovisioning_factor,
        })
    }
}

fn endpoint(
    e: &pb::LbEndpoint,
    named: &std::collections::HashMap<String, pb::Endpoint>,
) -> Result<Endpoint, String> {
    use pb::lb_endpoint::HostIdentifier;
    let ep = match &e.host_identifier {
        Some(HostIdentifier::Endpoint(ep)) => ep,
        Some(HostIdentifier::EndpointName(name)) => named
            .get(name)
            .ok_or_else(|| format!("names endpoint {name:?}, which named_endpoints lacks"))?,
        None => return Err("an endpoint needs an address".into()),
    };
    let address = address(ep.address.as_ref())?;
    let health = match e.health_status {
        0 | 1 => Health::Healthy,
        5 => Health::Degraded,
        _ => Health::Unhealthy,
    };
    let weight = e.load_balancing_weight.as_ref().map_or(1, |w| w.value);
    if weight == 0 {
        return Err("an endpoint weight must be at least 1".into());
    }
    let dubbo = e
        .metadata
        .as_ref()
        .and_then(|m| m.filter_metadata.get("dubbo"))
        .map(|s| -> Result<DubboEndpoint, String> {
            Ok(DubboEndpoint {
                application: string_field(s, "application")
                    .ok_or("filter_metadata.dubbo needs a string `application`")?,
                revision: string_field(s, "revision"),
                protocol: string_field(s, "protocol"),
                metadata_port: port_field(s, "metadata_port")?,
            })
        })
        .transpose()?;
    Ok(Endpoint {
        address,
        health,
        weight,
        dubbo,
    })
}

/// A port given as a number or a numeric string.
fn port_field(
    s: &envoy_types::pb::google::protobuf::Struct,
    name: &str,
) -> Result<Option<u16>, String> {
    use envoy_types::pb::google::protobuf::value::Kind;
    let bad = || format!("filter_metadata.dubbo.{name} is not a port");
    match s.fields.get(name).and_then(|v| v.kind.as_ref()) {
        None => Ok(None),
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && *n >= 1.0 && *n <= 65535.0 => {
            Ok(Some(*n as u16))
        }
        Some(Kind::StringValue(t)) => t.parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

pub(crate) fn address(a: Option<&core::Address>) -> Result<Address, String> {
    use core::address::Address as A;
    use core::socket_address::PortSpecifier;
    match a.and_then(|a| a.address.as_ref()) {
        Some(A::SocketAddress(s)) => {
            let port = match &s.port_specifier {
                Some(PortSpecifier::PortValue(p)) => u16::try_from(*p)
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("port {p} is out of range"))?,
                Some(PortSpecifier::NamedPort(n)) => {
                    return Err(format!("named port {n:?} is not supported"))
                }
                None => return Err("a socket address needs a port".into()),
            };
            if s.address.is_empty() {
                return Err("a socket address needs an address".into());
            }
            Ok(Address {
                host: s.address.clone(),
                port,
                kind: AddressKind::Socket,
            })
        }
        Some(A::Pipe(p)) if !p.path.is_empty() => Ok(Address {
            host: p.path.clone(),
            port: 0,
            kind: AddressKind::Pipe,
        }),
        Some(A::Pipe(_)) => Err("a pipe address needs a path".into()),
        Some(A::EnvoyInternalAddress(i)) => {
            use core::envoy_internal_address::AddressNameSpecifier;
            let Some(AddressNameSpecifier::ServerListenerName(name)) = &i.address_name_specifier
            else {
                return Err("an internal address needs a listener name".into());
            };
            Ok(Address {
                host: name.clone(),
                port: 0,
                kind: AddressKind::EnvoyInternal,
            })
        }
        None => Err("an endpoint needs an address".into()),
    }
}
