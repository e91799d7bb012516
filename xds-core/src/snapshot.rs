//! Versioned snapshots of xDS resources: what a control plane serves. A snapshot holds encoded
//! resources by type and name, each with its own version (a hash of its bytes, so unchanged
//! resources keep their version across snapshots, which delta clients rely on).

use std::collections::{BTreeMap, HashMap};

use envoy_types::pb::envoy::config::cluster::v3::Cluster as WireCluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener as WireListener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use serde_json::Value as Json;

use crate::json::{message_name, to_protobuf};
use crate::model::{Cluster, Endpoints, Listener, RouteConfig};
use crate::Error;

pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINTS: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

/// The four resource types, in the order a client should apply them.
pub const TYPES: [&str; 4] = [CLUSTER, ENDPOINTS, LISTENER, ROUTE];

/// Whether a type is subscribed to as a whole when no names are given (LDS and CDS).
pub fn is_wildcard_type(type_url: &str) -> bool {
    type_url == LISTENER || type_url == CLUSTER
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub version: String,
    pub resource: Any,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub version: String,
    resources: HashMap<String, BTreeMap<String, Entry>>,
}

impl Snapshot {
    pub fn new(version: impl Into<String>) -> Self {
        Snapshot {
            version: version.into(),
            resources: HashMap::new(),
        }
    }

    /// Adds one encoded resource.
    pub fn insert(&mut self, type_url: &str, name: &str, bytes: Vec<u8>) {
        let version = format!("{:016x}", fnv(&bytes));
        self.resources
            .entry(type_url.to_owned())
            .or_default()
            .insert(
                name.to_owned(),
                Entry {
                    version,
                    resource: Any {
                        type_url: type_url.to_owned(),
                        value: bytes,
                    },
                },
            );
    }

    pub fn resources(&self, type_url: &str) -> impl Iterator<Item = (&String, &Entry)> {
        self.resources
            .get(type_url)
            .into_iter()
            .flat_map(|m| m.iter())
    }

    pub fn get(&self, type_url: &str, name: &str) -> Option<&Entry> {
        self.resources.get(type_url).and_then(|m| m.get(name))
    }

    pub fn len(&self) -> usize {
        self.resources.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A hash of every resource (name and content), independent of the version string.
    pub fn digest(&self) -> u64 {
        let mut all: Vec<(&str, &str, &str)> = self
            .resources
            .iter()
            .flat_map(|(t, m)| {
                m.iter()
                    .map(move |(n, e)| (t.as_str(), n.as_str(), e.version.as_str()))
            })
            .collect();
        all.sort_unstable();
        let text: Vec<String> = all.iter().map(|(t, n, v)| format!("{t}/{n}@{v}")).collect();
        fnv(text.join(",").as_bytes())
    }

    /// A snapshot from a document: `{"version": "...", "resources": [ {"@type": ..., ...} ]}`
    /// (JSON or YAML, proto3 JSON mapping). Every resource is validated as a client would:
    /// a file with a bad resource is refused whole, naming it.
    pub fn from_document(doc: &Json) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidResource {
            kind: "snapshot",
            name: String::new(),
            reason,
        };
        let version = match &doc["version"] {
            Json::String(v) if !v.is_empty() => v.clone(),
            Json::Number(n) => n.to_string(),
            Json::Null => String::new(),
            other => return Err(invalid(format!("version must be a string, not {other}"))),
        };
        let resources = doc["resources"]
            .as_array()
            .ok_or_else(|| invalid("`resources` must be a list".into()))?;
        let mut snapshot = Snapshot::new(version);
        for (i, r) in resources.iter().enumerate() {
            let type_url = r["@type"]
                .as_str()
                .ok_or_else(|| invalid(format!("resources[{i}] has no @type")))?;
            let type_url = if type_url.contains('/') {
                type_url.to_owned()
            } else {
                format!("type.googleapis.com/{type_url}")
            };
            let bytes = to_protobuf(&type_url, r)?;
            let name = validate(&type_url, &bytes).map_err(|e| {
                invalid(format!("resources[{i}] ({}): {e}", message_name(&type_url)))
            })?;
            if snapshot.get(&type_url, &name).is_some() {
                return Err(invalid(format!(
                    "resources[{i}]: two {} named {name:?}",
                    message_name(&type_url)
                )));
            }
            snapshot.insert(&type_url, &name, bytes);
        }
        if snapshot.version.is_empty() {
            // Unversioned documents are versioned by content.
            let mut all: Vec<&str> = snapshot
                .resources
                .values()
                .flat_map(|m| m.values().map(|e| e.version.as_str()))
                .collect();
            all.sort_unstable();
            snapshot.version = format!("{:016x}", fnv(all.join(",").as_bytes()));
        }
        Ok(snapshot)
    }
}

/// Decodes and validates one resource, returning its name.
pub fn validate(type_url: &str, bytes: &[u8]) -> Result<String, Error> {
    let decode_err = |e: prost::DecodeError| Error::Decode {
        type_url: type_url.to_owned(),
        reason: e.to_string(),
    };
    let named = |name: &str| {
        if name.is_empty() {
            Err(Error::InvalidResource {
                kind: "resource",
                name: String::new(),
                reason: format!("a {} needs a name", message_name(type_url)),
            })
        } else {
            Ok(name.to_owned())
        }
    };
    match type_url {
        LISTENER => {
            let wire = WireListener::decode(bytes).map_err(decode_err)?;
            Listener::try_from(&wire)?;
            named(&wire.name)
        }
        ROUTE => {
            let wire = RouteConfiguration::decode(bytes).map_err(decode_err)?;
            RouteConfig::try_from(&wire)?;
            named(&wire.name)
        }
        CLUSTER => {
            let wire = WireCluster::decode(bytes).map_err(decode_err)?;
            Cluster::try_from(&wire)?;
            named(&wire.name)
        }
        ENDPOINTS => {
            let wire = ClusterLoadAssignment::decode(bytes).map_err(decode_err)?;
            Endpoints::try_from(&wire)?;
            named(&wire.cluster_name)
        }
        other => Err(Error::Decode {
            type_url: other.to_owned(),
            reason: "not a resource type this crate serves".into(),
        }),
    }
}

pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}
