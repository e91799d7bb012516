//! The protocol-independent part of a client stream: what is wanted, what arrived, when to
//! give up waiting for a resource, and when the client is ready.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use super::state::{Any, XdsState};
use super::{ClientOptions, Subscribe};
use crate::snapshot::{CLUSTER, ENDPOINTS, LISTENER, ROUTE, TYPES};

/// What the client asks for of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Interest {
    Wildcard,
    Names(BTreeSet<String>),
}

impl Interest {
    pub(crate) fn names(&self) -> Vec<String> {
        match self {
            Interest::Wildcard => Vec::new(),
            Interest::Names(n) => n.iter().cloned().collect(),
        }
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        match self {
            Interest::Wildcard => true,
            Interest::Names(n) => n.contains(name),
        }
    }
}

pub(crate) struct Session<'a> {
    pub(crate) state: XdsState,
    publish: &'a watch::Sender<Arc<XdsState>>,
    options: &'a ClientOptions,
    /// When each named resource (or a wildcard type, under "*") was first asked for.
    requested_at: HashMap<(String, String), Instant>,
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        publish: &'a watch::Sender<Arc<XdsState>>,
        options: &'a ClientOptions,
    ) -> Self {
        let mut state = (**publish.borrow()).clone();
        state.connected = true;
        state.connects += 1;
        Session {
            state,
            publish,
            options,
            requested_at: HashMap::new(),
        }
    }

    pub(crate) fn interest(&self, type_url: &str) -> Interest {
        let from = |s: &Subscribe| match s {
            Subscribe::Wildcard => Interest::Wildcard,
            Subscribe::Names(n) => Interest::Names(n.iter().cloned().collect()),
        };
        match type_url {
            LISTENER => from(&self.options.listeners),
            CLUSTER => from(&self.options.clusters),
            ROUTE => Interest::Names(self.state.wanted_routes()),
            ENDPOINTS => Interest::Names(self.state.wanted_endpoints()),
            _ => Interest::Names(BTreeSet::new()),
        }
    }

    /// Notes that `interest` is being asked for now (for the absence timeout).
    pub(crate) fn asked(&mut self, type_url: &str, interest: &Interest) {
        let now = Instant::now();
        let keys: Vec<String> = match interest {
            Interest::Wildcard => vec!["*".into()],
            Interest::Names(n) => n.iter().cloned().collect(),
        };
        for name in keys {
            self.requested_at
                .entry((type_url.to_owned(), name))
                .or_insert(now);
        }
    }

    /// Applies accepted resources. `complete`: the response lists every resource of the type
    /// (state of the world with a wildcard), so what it omits is gone.
    pub(crate) fn apply(
        &mut self,
        type_url: &str,
        accepted: Vec<(String, String, u64, Any)>,
        removed: &[String],
        complete: bool,
    ) {
        if complete {
            let keep: BTreeSet<&str> = accepted.iter().map(|(n, _, _, _)| n.as_str()).collect();
            for name in self.state.names(type_url) {
                if !keep.contains(name.as_str()) {
                    self.state.remove(type_url, &name);
                }
            }
        }
        for name in removed {
            self.state.remove(type_url, name);
        }
        for (name, version, digest, resource) in accepted {
            self.state
                .absent
                .remove(&(type_url.to_owned(), name.clone()));
            self.state.put(name, version, digest, resource);
        }
        self.state.initialized.insert(type_url.to_owned());
        self.prune();
    }

    /// Drops routes and endpoints nothing refers to any more.
    fn prune(&mut self) {
        for type_url in [ROUTE, ENDPOINTS] {
            let interest = self.interest(type_url);
            for name in self.state.names(type_url) {
                if !interest.contains(&name) {
                    self.state.remove(type_url, &name);
                }
            }
        }
    }

    /// Marks what did not come within the timeout as absent; true if anything changed.
    pub(crate) fn expire(&mut self) -> bool {
        let now = Instant::now();
        let mut changed = false;
        // Forget what is no longer wanted or has arrived, so that asking again later starts a
        // fresh timeout. Interests are computed once per tick.
        let interests: HashMap<&str, Interest> =
            TYPES.iter().map(|t| (*t, self.interest(t))).collect();
        let state = &self.state;
        self.requested_at.retain(|(type_url, name), _| {
            name == "*"
                || interests
                    .get(type_url.as_str())
                    .is_some_and(|i| i.contains(name) && !state.has(type_url, name))
        });
        for ((type_url, name), since) in &self.requested_at {
            if now.duration_since(*since) < self.options.resource_timeout {
                continue;
            }
            if name == "*" {
                changed |= self.state.initialized.insert(type_url.clone());
            } else if !self.state.has(type_url, name) {
                changed |= self.state.absent.insert((type_url.clone(), name.clone()));
                changed |= self.state.initialized.insert(type_url.clone());
            }
        }
        changed
    }

    /// Publishes the state (with readiness recomputed).
    pub(crate) fn publish(&mut self) {
        let ready = TYPES.iter().all(|t| {
            let interest = self.interest(t);
            let initialized = self.state.initialized.contains(*t)
                || matches!(&interest, Interest::Names(n) if n.is_empty());
            initialized
                && interest.names().iter().all(|n| {
                    self.state.has(t, n)
                        || self.state.absent.contains(&((*t).to_owned(), n.clone()))
                })
        });
        self.state.ready |= ready;
        self.publish.send_replace(Arc::new(self.state.clone()));
    }

    pub(crate) fn disconnected(mut self) {
        self.state.connected = false;
        self.publish.send_replace(Arc::new(self.state));
    }
}
