//! A Triple/gRPC cluster: its endpoints and, per event loop, an HTTP/2 client pooling
//! connections to them. The clients are also what the gateway uses to proxy gRPC calls as
//! they are.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::h2::Client;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;

use crate::dubbo2::DubboIdentity;

/// Request bodies of the client: boxed, so proxied streams and whole messages travel the same
/// way; the error is whatever the caller's own body can fail with.
pub type Body = BoxBody<Bytes, BodyError>;

/// A request body's error.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// One provider: where it listens and which application and revision it runs.
#[derive(Debug, Clone)]
pub struct TripleEndpoint {
    pub addr: SocketAddr,
    pub identity: DubboIdentity,
}

#[derive(Debug)]
pub struct TripleCluster {
    pub name: String,
    endpoints: Vec<Arc<TripleEndpoint>>,
    next: AtomicUsize,
    /// One HTTP/2 client per event loop.
    clients: Vec<Client>,
    /// The largest reply message accepted.
    pub max_message: usize,
}

impl TripleCluster {
    pub fn new(
        name: &str,
        endpoints: Vec<TripleEndpoint>,
        connect_timeout: Duration,
        max_message: usize,
        loops: usize,
    ) -> Self {
        TripleCluster {
            name: name.to_owned(),
            endpoints: endpoints.into_iter().map(Arc::new).collect(),
            next: AtomicUsize::new(0),
            clients: (0..loops.max(1))
                .map(|_| http2_client(connect_timeout))
                .collect(),
            max_message,
        }
    }

    /// The client of event loop `slot` (taken modulo the number of loops). Each loop has its
    /// own, so an HTTP/2 connection is only ever driven by the thread that opened it: a call
    /// never waits for another thread to be woken up to write its frames or hand back its
    /// answer.
    pub fn client(&self, slot: usize) -> &Client {
        &self.clients[slot % self.clients.len()]
    }

    pub fn endpoints(&self) -> &[Arc<TripleEndpoint>] {
        &self.endpoints
    }

    /// The next endpoint, round robin; `None` for a cluster without endpoints.
    pub fn pick(&self) -> Option<&Arc<TripleEndpoint>> {
        let n = self.endpoints.len();
        (n > 0).then(|| &self.endpoints[self.next.fetch_add(1, Ordering::Relaxed) % n])
    }
}

/// An HTTP/2 client for providers: our own ([`crate::h2`]), with Nagle off and keep-alive
/// pings on idle connections.
pub fn http2_client(connect_timeout: Duration) -> Client {
    Client::new(connect_timeout)
}
