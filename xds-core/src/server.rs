//! A snapshot ADS server, state of the world and delta, serving one current [`Snapshot`] to
//! any number of clients and pushing each new one to every stream.
//!
//! Per stream and type it keeps what the client subscribed to and what it was sent; a request
//! carrying the last nonce is an ACK (or a NACK with `error_detail`, recorded and not retried
//! until the snapshot changes); a request with an older nonce is stale and ignored, as the
//! protocol says.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

use crate::snapshot::{is_wildcard_type, Snapshot, CLUSTER, TYPES};

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
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let stream = SotwStream {
            server: self.clone(),
            snapshots: self.snapshots.subscribe(),
            tx,
            subs: HashMap::new(),
            nonce: 0,
            node: String::new(),
            queue: VecDeque::new(),
            awaiting: None,
            held_clusters: BTreeMap::new(),
        };
        tokio::spawn(stream.run(inbound));
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
                        // Clusters, endpoints, listeners, routes: the order clients need.
                        to_send.extend(TYPES.iter().filter(|t| subs.contains_key(**t)).map(|t| (*t).to_owned()));
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

/// One state-of-the-world stream. A new snapshot is pushed make-before-break: clusters first
/// (still including those about to go), then endpoints, listeners and routes, each type sent
/// only once the client has answered the previous one; clusters no longer used go last. So a
/// client never routes to a cluster it does not have yet, nor loses one still routed to.
struct SotwStream {
    server: SnapshotServer,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    subs: HashMap<String, Subscription>,
    nonce: u64,
    node: String,
    /// Types still to push for the current snapshot, in order.
    queue: VecDeque<Push>,
    /// The nonce of the pushed response the client has not answered yet.
    awaiting: Option<(String, Instant)>,
    /// The clusters last sent to this client, by name: what it holds now, and so what a push
    /// must keep until routes have moved off them.
    held_clusters: BTreeMap<String, crate::snapshot::Entry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Push {
    Type(&'static str),
    /// Clusters of the new snapshot plus those it drops (removed at the end of the push).
    KeepingOld,
}

/// How long a push waits for the client's answer before going on anyway.
const PUSH_WAIT: Duration = Duration::from_secs(5);

impl SotwStream {
    async fn run(mut self, mut inbound: Streaming<DiscoveryRequest>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                message = inbound.message() => {
                    let Ok(Some(req)) = message else { return };
                    if !self.request(req).await {
                        return;
                    }
                }
                changed = self.snapshots.changed() => {
                    if changed.is_err() { return }
                    let snapshot = self.snapshots.borrow_and_update().clone();
                    self.plan(&snapshot);
                }
                _ = tick.tick() => {
                    if self.awaiting.as_ref().is_some_and(|(_, since)| since.elapsed() > PUSH_WAIT) {
                        self.awaiting = None;
                    }
                }
            }
            if self.awaiting.is_none() && !self.push_next().await {
                return;
            }
        }
    }

    /// Handles one request; false when the stream is gone.
    async fn request(&mut self, req: DiscoveryRequest) -> bool {
        if let Some(n) = &req.node {
            self.node.clone_from(&n.id);
        }
        let snapshot = self.snapshots.borrow().clone();
        let sub = self.subs.entry(req.type_url.clone()).or_default();
        if !req.response_nonce.is_empty() && req.response_nonce != sub.nonce {
            return true; // stale: answers an older response
        }
        if !req.response_nonce.is_empty()
            && self
                .awaiting
                .as_ref()
                .is_some_and(|(n, _)| *n == req.response_nonce)
        {
            self.awaiting = None;
        }
        if let Some(error) = &req.error_detail {
            self.server.record_nack(Nack {
                node: self.node.clone(),
                type_url: req.type_url.clone(),
                version: sub.sent_version.clone().unwrap_or_default(),
                detail: error.message.clone(),
            });
        }
        let wildcard = is_wildcard_type(&req.type_url)
            && (req.resource_names.is_empty() || req.resource_names.iter().any(|n| n == "*"));
        let names =
            (!wildcard).then(|| req.resource_names.iter().cloned().collect::<BTreeSet<_>>());
        let changed = names != sub.names;
        sub.names = names;
        let first = sub.sent_version.is_none();
        // A new subscription is answered at once; a change of snapshot goes through the push
        // order instead (`plan`), and a NACKed version is not sent again.
        let queued = self.queue.iter().any(|p| p.type_url() == req.type_url);
        if changed || (first && !queued) {
            let type_url = req.type_url.clone();
            return self.send(&type_url, &snapshot, false).await.is_some();
        }
        true
    }

    /// Orders the push of a new snapshot.
    fn plan(&mut self, snapshot: &Snapshot) {
        self.queue.clear();
        let mut drop_clusters = false;
        for type_url in TYPES {
            let Some(sub) = self.subs.get(type_url) else {
                continue;
            };
            if sub.sent_version.as_deref() == Some(snapshot.version.as_str()) {
                continue;
            }
            if type_url == CLUSTER {
                let dropped = self
                    .held_clusters
                    .keys()
                    .any(|name| snapshot.get(CLUSTER, name).is_none());
                if dropped {
                    self.queue.push_back(Push::KeepingOld);
                    drop_clusters = true;
                    continue;
                }
            }
            self.queue.push_back(Push::Type(type_url));
        }
        if drop_clusters {
            self.queue.push_back(Push::Type(CLUSTER));
        }
    }

    /// Sends the next queued type; false when the stream is gone.
    async fn push_next(&mut self) -> bool {
        let Some(push) = self.queue.pop_front() else {
            return true;
        };
        let snapshot = self.snapshots.borrow().clone();
        let sent = self
            .send(push.type_url(), &snapshot, push == Push::KeepingOld)
            .await;
        let Some(nonce) = sent else { return false };
        self.awaiting = Some((nonce, Instant::now()));
        true
    }

    /// Sends the snapshot's resources of a type; the nonce, or `None` if the stream is gone.
    async fn send(
        &mut self,
        type_url: &str,
        snapshot: &Snapshot,
        keep_old: bool,
    ) -> Option<String> {
        let Some(sub) = self.subs.get_mut(type_url) else {
            return Some(String::new());
        };
        self.nonce += 1;
        sub.nonce = self.nonce.to_string();
        let wanted = |name: &String| sub.names.as_ref().is_none_or(|n| n.contains(name));
        let mut sent: Vec<(String, crate::snapshot::Entry)> = snapshot
            .resources(type_url)
            .filter(|(name, _)| wanted(name))
            .map(|(name, e)| (name.clone(), e.clone()))
            .collect();
        let version = if keep_old {
            sent.extend(
                self.held_clusters
                    .iter()
                    .filter(|(name, _)| wanted(name) && snapshot.get(type_url, name).is_none())
                    .map(|(name, e)| (name.clone(), e.clone())),
            );
            format!("{}+previous", snapshot.version)
        } else {
            snapshot.version.clone()
        };
        let resources = sent.iter().map(|(_, e)| e.resource.clone()).collect();
        if type_url == CLUSTER {
            self.held_clusters = sent.into_iter().collect();
        }
        sub.sent_version = Some(version.clone());
        let response = DiscoveryResponse {
            version_info: version,
            resources,
            type_url: type_url.to_owned(),
            nonce: sub.nonce.clone(),
            ..Default::default()
        };
        let nonce = sub.nonce.clone();
        self.tx.send(Ok(response)).await.ok()?;
        Some(nonce)
    }
}

impl Push {
    fn type_url(&self) -> &'static str {
        match self {
            Push::Type(t) => t,
            Push::KeepingOld => CLUSTER,
        }
    }
}
