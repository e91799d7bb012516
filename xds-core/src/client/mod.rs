//! An ADS client: one stream to the control plane (state of the world or delta), ACK/NACK with
//! reasons, the last good configuration kept through bad updates and disconnections,
//! reconnection with exponential backoff and jitter, on-demand RDS and EDS subscriptions, an
//! absence timeout for resources that never come, and a readiness signal.
//!
//! Readers get the whole accepted state ([`XdsState`]) through a `watch` channel, or typed
//! watches on one resource ([`Watch`]).

mod decode;
mod delta;
mod session;
mod sotw;
mod state;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use tokio::sync::watch;
use tonic::transport::Endpoint;

pub use state::{Versioned, XdsState};

use crate::bootstrap::Bootstrap;
use crate::model::{Cluster, Endpoints, Listener, RouteConfig};
use crate::Error;

/// Which resources of a wildcard-capable type (LDS, CDS) to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscribe {
    /// All of them.
    Wildcard,
    /// These, by name (as gRPC clients ask for listeners).
    Names(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Incremental (delta) xDS instead of state of the world.
    pub delta: bool,
    pub listeners: Subscribe,
    pub clusters: Subscribe,
    /// A requested resource that has not come after this long is taken as not existing.
    pub resource_timeout: Duration,
    /// Reconnection backoff: first delay and ceiling (plus up to 50% jitter).
    pub backoff: (Duration, Duration),
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            delta: false,
            listeners: Subscribe::Wildcard,
            clusters: Subscribe::Wildcard,
            resource_timeout: Duration::from_secs(15),
            backoff: (Duration::from_millis(100), Duration::from_secs(30)),
        }
    }
}

/// A running client; dropping it closes the stream.
#[derive(Debug)]
pub struct XdsClient {
    state: watch::Receiver<Arc<XdsState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for XdsClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl XdsClient {
    /// Starts talking to the bootstrap's first server. Must be called inside a Tokio runtime.
    pub fn start(bootstrap: Bootstrap, options: ClientOptions) -> Result<XdsClient, Error> {
        // Plaintext only, for now: a bootstrap asking for TLS or cloud credentials must not
        // silently get plaintext.
        if let Some(server) = bootstrap.servers.first() {
            let kinds: Vec<&str> = server
                .channel_creds
                .iter()
                .map(|c| c.kind.as_str())
                .collect();
            if !kinds.is_empty() && !kinds.contains(&"insecure") {
                return Err(Error::InvalidResource {
                    kind: "bootstrap",
                    name: String::new(),
                    reason: format!("channel_creds {kinds:?}: only \"insecure\" is supported"),
                });
            }
        }
        let url = bootstrap
            .server_url()
            .ok_or_else(|| Error::InvalidResource {
                kind: "bootstrap",
                name: String::new(),
                reason: "no xds_servers".into(),
            })?;
        let endpoint = Endpoint::from_shared(url.clone()).map_err(|e| Error::InvalidResource {
            kind: "bootstrap",
            name: String::new(),
            reason: format!("server_uri {url:?}: {e}"),
        })?;
        let (publish, state) = watch::channel(Arc::new(XdsState::default()));
        let node = decode::node(&bootstrap.node);
        let task = tokio::spawn(run(endpoint, node, options, publish));
        Ok(XdsClient { state, task })
    }

    /// The state in force now.
    pub fn state(&self) -> Arc<XdsState> {
        self.state.borrow().clone()
    }

    /// Every accepted change, as whole states.
    pub fn updates(&self) -> watch::Receiver<Arc<XdsState>> {
        self.state.clone()
    }

    /// Waits until the initial resources are in (or known absent); false on timeout.
    pub async fn ready(&self, timeout: Duration) -> bool {
        let mut rx = self.state.clone();
        tokio::time::timeout(timeout, rx.wait_for(|s| s.ready))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub fn watch_listener(&self, name: &str) -> Watch<Listener> {
        Watch::new(self.state.clone(), name, |s, n| s.listeners.get(n).cloned())
    }

    pub fn watch_route(&self, name: &str) -> Watch<RouteConfig> {
        Watch::new(self.state.clone(), name, |s, n| s.routes.get(n).cloned())
    }

    pub fn watch_cluster(&self, name: &str) -> Watch<Cluster> {
        Watch::new(self.state.clone(), name, |s, n| s.clusters.get(n).cloned())
    }

    pub fn watch_endpoints(&self, name: &str) -> Watch<Endpoints> {
        Watch::new(self.state.clone(), name, |s, n| s.endpoints.get(n).cloned())
    }
}

/// Updates of one resource: each call to [`Watch::next`] returns when its version changes (or
/// it appears or disappears).
#[derive(Debug)]
pub struct Watch<T> {
    rx: watch::Receiver<Arc<XdsState>>,
    name: String,
    get: fn(&XdsState, &str) -> Option<Versioned<T>>,
    seen: Option<Option<String>>,
}

impl<T> Watch<T> {
    fn new(
        rx: watch::Receiver<Arc<XdsState>>,
        name: &str,
        get: fn(&XdsState, &str) -> Option<Versioned<T>>,
    ) -> Self {
        Watch {
            rx,
            name: name.to_owned(),
            get,
            seen: None,
        }
    }

    /// The next version of the resource (`Some(None)`: it is gone or known absent); `None` once
    /// the client has stopped.
    pub async fn next(&mut self) -> Option<Option<Arc<T>>> {
        loop {
            let current = {
                let state = self.rx.borrow_and_update();
                (self.get)(&state, &self.name)
            };
            let version = current.as_ref().map(|v| v.version.clone());
            if self.seen.as_ref() != Some(&version) && (current.is_some() || self.seen.is_some()) {
                self.seen = Some(version);
                return Some(current.map(|v| v.resource));
            }
            self.rx.changed().await.ok()?;
        }
    }
}

async fn run(
    endpoint: Endpoint,
    node: envoy_types::pb::envoy::config::core::v3::Node,
    options: ClientOptions,
    publish: watch::Sender<Arc<XdsState>>,
) {
    let endpoint = endpoint
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    let mut backoff = options.backoff.0;
    loop {
        let mut got_response = false;
        let reason = match endpoint.connect().await {
            Ok(channel) => {
                let mut client = AggregatedDiscoveryServiceClient::new(channel)
                    .max_decoding_message_size(256 << 20);
                let mut session = session::Session::new(&publish, &options);
                session.publish();
                let reason = if options.delta {
                    delta::run(&mut client, &mut session, node.clone(), &mut got_response).await
                } else {
                    sotw::run(&mut client, &mut session, node.clone(), &mut got_response).await
                };
                session.disconnected();
                reason
            }
            Err(e) => format!("cannot connect: {e}"),
        };
        if got_response {
            backoff = options.backoff.0;
        }
        let delay = backoff + backoff.mul_f64(fastrand::f64() / 2.0);
        tracing::warn!(%reason, retry_in = ?delay, "xDS stream ended; the last accepted configuration stays in force");
        tokio::time::sleep(delay).await;
        backoff = (backoff * 2).min(options.backoff.1);
    }
}
