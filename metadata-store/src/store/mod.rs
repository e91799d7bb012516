//! Where published values live: the [`Store`] trait and its backends. A backend stores raw
//! strings with their publish time and knows nothing of Dubbo; parsing, caching, expiry policy
//! and conflict counting live in [`crate::Registry`] above it.

mod etcd;
mod memory;
mod record;
mod redb;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;

pub use self::etcd::{EtcdConfig, EtcdStore};
pub use self::memory::MemoryStore;
pub use self::redb::RedbStore;
pub use record::Record;

use crate::Error;

/// What a value is stored under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// A MetadataInfo of one revision of an application.
    Metadata {
        application: String,
        revision: String,
    },
    /// A service definition by its identifier.
    Definition { identifier: String },
}

impl Key {
    pub fn metadata(application: impl Into<String>, revision: impl Into<String>) -> Self {
        Key::Metadata {
            application: application.into(),
            revision: revision.into(),
        }
    }

    pub fn definition(identifier: impl Into<String>) -> Self {
        Key::Definition {
            identifier: identifier.into(),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Key::Metadata { .. } => Kind::Metadata,
            Key::Definition { .. } => Kind::Definition,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Metadata {
                application,
                revision,
            } => write!(f, "metadata {application}/{revision}"),
            Key::Definition { identifier } => write!(f, "service definition {identifier}"),
        }
    }
}

/// A change reported by a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The value under this key was written or removed.
    Key(Key),
    /// Changes may have been missed (a watch was lost and re-established): forget everything
    /// derived from the backend.
    Resync,
}

/// The two kinds of values, for listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Metadata,
    Definition,
}

/// A durable home for published values. Implementations are cheap to share (`Arc<dyn Store>`)
/// and safe to call concurrently.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Stores `record` under `key` and returns what was there before. When this returns `Ok`
    /// the write is as durable as the backend promises (on disk for redb, on a quorum for etcd).
    async fn put(&self, key: &Key, record: Record) -> Result<Option<Record>, Error>;

    async fn get(&self, key: &Key) -> Result<Option<Record>, Error>;

    /// Every entry of a kind (for listings such as the OpenAPI document).
    async fn list(&self, kind: Kind) -> Result<Vec<(Key, Record)>, Error>;

    /// Removes every entry last published before `cutoff_ms` and returns their keys. An entry
    /// republished concurrently is kept.
    async fn remove_published_before(&self, cutoff_ms: u64) -> Result<Vec<Key>, Error>;

    /// Changes from now on, including those by other processes sharing the backend, so caches
    /// above can drop what is stale. A lagging receiver should treat it as [`Change::Resync`].
    fn changes(&self) -> broadcast::Receiver<Change>;
}

/// A shared store.
pub type SharedStore = Arc<dyn Store>;
