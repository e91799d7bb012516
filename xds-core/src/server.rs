//! A snapshot ADS server, state of the world and delta, serving one current [`Snapshot`] to
//! any number of clients and pushing each new one to every stream.
//!
//! Per stream and type it keeps what the client subscribed to and what it was sent; a request
//! carrying the last nonce is an ACK (or a NACK with `error_detail`, recorded and not retried
//! until the snapshot changes); a request with an older nonce is stale and ignored, as the
//! protocol says.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse, Resource,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use crate::snapshot::{is_wildcard_type, Snapshot};

/// A NACK a client sent: which type, which version it refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    pub node: String,
    pub type_url: String,
    pub version: String,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct SnapshotServer {
    snapshots: watch::Sender<Arc<Snapshot>>,
    nacks: Arc<Mutex<Vec<Nack>>>,
}

impl SnapshotServer {
    pub fn new(initial: Snapshot) -> Self {
        SnapshotServer {
            snapshots: watch::channel(Arc::new(initial)).0,
            nacks: Arc::default(),
        }
    }

    /// Makes `snapshot` current and pushes it to every connected client.
    pub fn set(&self, snapshot: Snapshot) {
        self.snapshots.send_replace(Arc::new(snapshot));
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// NACKs received so far (the last 1000).
    pub fn nacks(&self) -> Vec<Nack> {
        self.nacks.lock().map(|n| n.clone()).unwrap_or_default()
    }

    pub fn service(self) -> AggregatedDiscoveryServiceServer<Self> {
        AggregatedDiscoveryServiceServer::new(self).max_decoding_message_size(64 << 20)
    }

    /// Serves ADS on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), tonic::transport::Error> {
        tonic::transport::Server::builder()
            .add_service(self.service())
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                shutdown,
            )
            .await
    }

    fn record_nack(&self, nack: Nack) {
        tracing::warn!(node = %nack.node, type_url = %nack.type_url, version = %nack.version, detail = %nack.detail, "client NACKed");
        if let Ok(mut nacks) = self.nacks.lock() {
            if nacks.len() >= 1000 {
                nacks.remove(0);
            }
            nacks.push(nack);
        }
    }
}

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

/// State-of-the-world subscription of one type on one stream.
#[derive(Debug, Default)]
struct Subscription {
    /// `None`: everything of the type (wildcard).
    names: Option<BTreeSet<String>>,
    sent_version: Option<String>,
    nonce: String,
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for SnapshotServer {
    type StreamAggregatedResourcesStream = Stream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = Stream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let mut snapshots = self.snapshots.subscribe();
        let server = self.clone();
        tokio::spawn(async move {
            let mut subs: HashMap<String, Subscription> = HashMap::new();
            let mut nonce = 0u64;
            let mut node = String::new();
            loop {
                // Not `borrow_and_update`: a change must still wake the `changed` branch, so
                // that every subscribed type (not only the one asking) gets it.
                let snapshot = snapshots.borrow().clone();
                let mut to_send = Vec::new();
                tokio::select! {
                    message = inbound.message() => {
                        let Ok(Some(req)) = message else { return };
                        if let Some(n) = &req.node {
                            node.clone_from(&n.id);
                        }
                        let sub = subs.entry(req.type_url.clone()).or_default();
                        if !req.response_nonce.is_empty() && req.response_nonce != sub.nonce {
                            continue; // stale: answers an older response
                        }
                        if let Some(error) = &req.error_detail {
                            server.record_nack(Nack {
                                node: node.clone(),
                                type_url: req.type_url.clone(),
                                version: sub.sent_version.clone().unwrap_or_default(),
                                detail: error.message.clone(),
                            });
                        }
                        let wildcard = is_wildcard_type(&req.type_url)
                            && (req.resource_names.is_empty() || req.resource_names.iter().any(|n| n == "*"));
                        let names = (!wildcard).then(|| req.resource_names.iter().cloned().collect::<BTreeSet<_>>());
                        let changed = names != sub.names;
                        sub.names = names;
                        // A NACK is not answered with the same version again.
                        let unsent = sub.sent_version.as_deref() != Some(snapshot.version.as_str())
                            && req.error_detail.is_none();
                        if changed || unsent || sub.sent_version.is_none() {
                            to_send.push(req.type_url.clone());
                        }
                    }
                    changed = snapshots.changed() => {
                        if changed.is_err() { return }
                        let snapshot = snapshots.borrow_and_update().clone();
                        for (type_url, sub) in &subs {
                            if sub.sent_version.as_deref() != Some(snapshot.version.as_str()) {
                                to_send.push(type_url.clone());
                            }
                        }
                    }
                }
                let snapshot = snapshots.borrow().clone();
                for type_url in to_send {
                    let Some(sub) = subs.get_mut(&type_url) else {
                        continue;
                    };
                    nonce += 1;
                    sub.nonce = nonce.to_string();
                    sub.sent_version = Some(snapshot.version.clone());
                    let resources = snapshot
                        .resources(&type_url)
                        .filter(|(name, _)| sub.names.as_ref().is_none_or(|n| n.contains(*name)))
                        .map(|(_, e)| e.resource.clone())
                        .collect();
                    let response = DiscoveryResponse {
                        version_info: snapshot.version.clone(),
                        resources,
                        type_url,
                        nonce: sub.nonce.clone(),
                        ..Default::default()
                    };
                    if tx.send(Ok(response)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let mut snapshots = self.snapshots.subscribe();
        let server = self.clone();
        tokio::spawn(async move {
            let mut subs: HashMap<String, DeltaSubscription> = HashMap::new();
            let mut nonce = 0u64;
            let mut node = String::new();
            loop {
                let mut to_send = Vec::new();
                tokio::select! {
                    message = inbound.message() => {
                        let Ok(Some(req)) = message else { return };
                        if let Some(n) = &req.node {
                            node.clone_from(&n.id);
                        }
                        let first = !subs.contains_key(&req.type_url);
                        let sub = subs.entry(req.type_url.clone()).or_default();
                        if first {
                            sub.wildcard = is_wildcard_type(&req.type_url) && req.resource_names_subscribe.is_empty();
                            sub.known = req.initial_resource_versions.clone();
                        }
                        for name in &req.resource_names_subscribe {
                            if name == "*" {
                                sub.wildcard = true;
                            } else {
                                sub.names.insert(name.clone());
                            }
                        }
                        for name in &req.resource_names_unsubscribe {
                            if name == "*" {
                                sub.wildcard = false;
                            }
                            sub.names.remove(name);
                            sub.known.remove(name);
                        }
                        if let Some(error) = &req.error_detail {
                            if req.response_nonce == sub.nonce {
                                server.record_nack(Nack {
                                    node: node.clone(),
                                    type_url: req.type_url.clone(),
                                    version: sub.sent_version.clone(),
                                    detail: error.message.clone(),
                                });
                            }
                            continue;
                        }
                        to_send.push(req.type_url.clone());
                    }
                    changed = snapshots.changed() => {
                        if changed.is_err() { return }
                        snapshots.borrow_and_update();
                        to_send.extend(subs.keys().cloned());
                    }
                }
                let snapshot = snapshots.borrow().clone();
                for type_url in to_send {
                    let Some(sub) = subs.get_mut(&type_url) else {
                        continue;
                    };
                    let mut resources = Vec::new();
                    for (name, entry) in snapshot.resources(&type_url) {
                        let wanted = sub.wildcard || sub.names.contains(name);
                        if wanted && sub.known.get(name) != Some(&entry.version) {
                            sub.known.insert(name.clone(), entry.version.clone());
                            resources.push(Resource {
                                name: name.clone(),
                                version: entry.version.clone(),
                                resource: Some(entry.resource.clone()),
                                ..Default::default()
                            });
                        }
                    }
                    let gone: Vec<String> = sub
                        .known
                        .keys()
                        .filter(|name| {
                            snapshot.get(&type_url, name).is_none()
                                || !(sub.wildcard || sub.names.contains(*name))
                        })
                        .cloned()
                        .collect();
                    for name in &gone {
                        sub.known.remove(name);
                    }
                    if resources.is_empty() && gone.is_empty() {
                        continue;
                    }
                    nonce += 1;
                    sub.nonce = nonce.to_string();
                    sub.sent_version.clone_from(&snapshot.version);
                    let response = DeltaDiscoveryResponse {
                        system_version_info: snapshot.version.clone(),
                        resources,
                        type_url,
                        removed_resources: gone,
                        nonce: sub.nonce.clone(),
                        ..Default::default()
                    };
                    if tx.send(Ok(response)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Delta subscription of one type on one stream.
#[derive(Debug, Default)]
struct DeltaSubscription {
    wildcard: bool,
    names: BTreeSet<String>,
    /// Versions the client holds, by name.
    known: HashMap<String, String>,
    sent_version: String,
    nonce: String,
}
