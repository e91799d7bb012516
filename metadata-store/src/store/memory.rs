//! In-memory backend: for tests and for gateways that rebuild their metadata from publishers
//! after every restart.

use async_trait::async_trait;
use dashmap::DashMap;
use tokio::sync::broadcast;

use super::{Change, Key, Kind, Record, Store};
use crate::Error;

#[derive(Debug)]
pub struct MemoryStore {
    entries: DashMap<Key, Record>,
    changes: broadcast::Sender<Change>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            entries: DashMap::new(),
            changes: broadcast::channel(1024).0,
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn put(&self, key: &Key, record: Record) -> Result<Option<Record>, Error> {
        let previous = self.entries.insert(key.clone(), record);
        let _ = self.changes.send(Change::Key(key.clone()));
        Ok(previous)
    }

    async fn get(&self, key: &Key) -> Result<Option<Record>, Error> {
        Ok(self.entries.get(key).map(|r| r.clone()))
    }

    async fn list(&self, kind: Kind) -> Result<Vec<(Key, Record)>, Error> {
        Ok(self
            .entries
            .iter()
            .filter(|e| e.key().kind() == kind)
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect())
    }

    async fn remove_published_before(&self, cutoff_ms: u64) -> Result<Vec<Key>, Error> {
        let mut removed = Vec::new();
        self.entries.retain(|key, record| {
            let keep = record.published_at_ms >= cutoff_ms;
            if !keep {
                removed.push(key.clone());
            }
            keep
        });
        for key in &removed {
            let _ = self.changes.send(Change::Key(key.clone()));
        }
        Ok(removed)
    }

    fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}
