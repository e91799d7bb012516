//! What an xDS client holds: the validated resources in force, by type and name, with their
//! versions, and how it got there (connection, ACKs, NACKs, resources that never came).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::model::{Cluster, Discovery, Endpoints, Listener, RouteConfig};
use crate::snapshot::{CLUSTER, ENDPOINTS, LISTENER, ROUTE};

/// A resource with the version it arrived with.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub version: String,
    pub resource: Arc<T>,
    /// A hash of the resource's bytes: an unchanged resource keeps its `Arc` across updates,
    /// so what users built from it (balancers, pools) can be kept too.
    pub digest: u64,
}

/// Everything the client has accepted. Replaced whole on every accepted update, so readers see
/// one consistent state.
#[derive(Debug, Clone, Default)]
pub struct XdsState {
    pub listeners: BTreeMap<String, Versioned<Listener>>,
    pub routes: BTreeMap<String, Versioned<RouteConfig>>,
    pub clusters: BTreeMap<String, Versioned<Cluster>>,
    pub endpoints: BTreeMap<String, Versioned<Endpoints>>,
    /// The last accepted version of each type (state of the world).
    pub versions: HashMap<String, String>,
    /// Requested by name but not sent within the resource timeout: taken as not existing.
    pub absent: BTreeSet<(String, String)>,
    /// Types whose first response (or timeout) has come.
    pub initialized: BTreeSet<String>,
    pub connected: bool,
    pub acks: u64,
    pub nacks: u64,
    /// ACKs and NACKs sent, by type URL.
    pub acks_by_type: BTreeMap<String, u64>,
    pub nacks_by_type: BTreeMap<String, u64>,
    /// Times the stream to the server was (re)established.
    pub connects: u64,
    /// The last NACK's detail, for diagnostics.
    pub last_nack: Option<String>,
    /// Set once every subscribed type and named resource has arrived or timed out.
    pub ready: bool,
}

impl XdsState {
    /// Counts an ACK (`accepted`) or NACK of a response of `type_url`.
    pub(crate) fn count(&mut self, type_url: &str, accepted: bool) {
        let (total, by_type) = if accepted {
            (&mut self.acks, &mut self.acks_by_type)
        } else {
            (&mut self.nacks, &mut self.nacks_by_type)
        };
        *total += 1;
        match by_type.get_mut(type_url) {
            Some(n) => *n += 1,
            None => {
                by_type.insert(type_url.to_owned(), 1);
            }
        }
    }

    /// RouteConfiguration names the listeners need.
    pub fn wanted_routes(&self) -> BTreeSet<String> {
        self.listeners
            .values()
            .flat_map(|l| {
                l.resource
                    .rds_names()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// ClusterLoadAssignment names the EDS clusters need.
    pub fn wanted_endpoints(&self) -> BTreeSet<String> {
        self.clusters
            .values()
            .filter_map(|c| match &c.resource.discovery {
                Discovery::Eds { service_name } => Some(service_name.clone()),
                _ => None,
            })
            .collect()
    }

    /// The endpoints of a cluster: from EDS, or inline for STATIC/DNS clusters.
    pub fn endpoints_of(&self, cluster: &str) -> Option<&Endpoints> {
        let c = self.clusters.get(cluster)?;
        match &c.resource.discovery {
            Discovery::Eds { service_name } => {
                self.endpoints.get(service_name).map(|e| &*e.resource)
            }
            _ => c.resource.load_assignment.as_ref(),
        }
    }

    pub(crate) fn has(&self, type_url: &str, name: &str) -> bool {
        match type_url {
            LISTENER => self.listeners.contains_key(name),
            ROUTE => self.routes.contains_key(name),
            CLUSTER => self.clusters.contains_key(name),
            ENDPOINTS => self.endpoints.contains_key(name),
            _ => false,
        }
    }

    pub(crate) fn names(&self, type_url: &str) -> Vec<String> {
        match type_url {
            LISTENER => self.listeners.keys().cloned().collect(),
            ROUTE => self.routes.keys().cloned().collect(),
            CLUSTER => self.clusters.keys().cloned().collect(),
            ENDPOINTS => self.endpoints.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn version_of(&self, type_url: &str, name: &str) -> Option<String> {
        match type_url {
            LISTENER => self.listeners.get(name).map(|v| v.version.clone()),
            ROUTE => self.routes.get(name).map(|v| v.version.clone()),
            CLUSTER => self.clusters.get(name).map(|v| v.version.clone()),
            ENDPOINTS => self.endpoints.get(name).map(|v| v.version.clone()),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, type_url: &str, name: &str) {
        match type_url {
            LISTENER => drop(self.listeners.remove(name)),
            ROUTE => drop(self.routes.remove(name)),
            CLUSTER => drop(self.clusters.remove(name)),
            ENDPOINTS => drop(self.endpoints.remove(name)),
            _ => {}
        }
    }
}

/// A decoded, validated resource of any of the four types.
#[derive(Debug, Clone)]
pub(crate) enum Any {
    Listener(Listener),
    Route(RouteConfig),
    Cluster(Cluster),
    Endpoints(Endpoints),
}

impl XdsState {
    pub(crate) fn put(&mut self, name: String, version: String, digest: u64, resource: Any) {
        fn put<T>(
            map: &mut BTreeMap<String, Versioned<T>>,
            name: String,
            version: String,
            digest: u64,
            resource: T,
        ) {
            let resource = match map.get(&name) {
                Some(old) if old.digest == digest => old.resource.clone(),
                _ => Arc::new(resource),
            };
            map.insert(
                name,
                Versioned {
                    version,
                    resource,
                    digest,
                },
            );
        }
        match resource {
            Any::Listener(r) => put(&mut self.listeners, name, version, digest, r),
            Any::Route(r) => put(&mut self.routes, name, version, digest, r),
            Any::Cluster(r) => put(&mut self.clusters, name, version, digest, r),
            Any::Endpoints(r) => put(&mut self.endpoints, name, version, digest, r),
        }
    }
}
