//! [`Registry`]: the store as its users see it. It validates what is published, counts
//! conflicts, applies the TTL, and serves parsed views from an in-process cache in which a miss
//! reaches the backend once however many callers want the same key at the same moment.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::{broadcast, OnceCell};

use crate::clock::{Clock, SystemClock};
use crate::model::{MetadataInfo, ServiceDefinition};
use crate::store::{Change, Key, Kind, Record, SharedStore};
use crate::Error;

/// The default time an entry lives without being republished.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Longest accepted application name, revision or identifier, in bytes.
const MAX_KEY_BYTES: usize = 512;

/// Largest accepted published value (etcd refuses requests over 1.5 MiB by default).
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was stored under the key before.
    Created,
    /// The same content was there; its TTL starts again.
    Refreshed,
    /// Different content was there and has been replaced: a conflict.
    Replaced,
}

/// A stored value with its parsed view.
#[derive(Debug)]
pub struct Entry<T> {
    pub record: Record,
    pub view: T,
}

#[derive(Debug)]
enum View {
    Metadata(Arc<Entry<MetadataInfo>>),
    Definition(Arc<Entry<ServiceDefinition>>),
}

impl View {
    fn published_at_ms(&self) -> u64 {
        match self {
            View::Metadata(e) => e.record.published_at_ms,
            View::Definition(e) => e.record.published_at_ms,
        }
    }
}

type Slot = Arc<OnceCell<Option<View>>>;

/// Counters since start, for metrics and tests.
#[derive(Debug, Default)]
struct Counters {
    publishes: AtomicU64,
    conflicts: AtomicU64,
    lookups: AtomicU64,
    misses: AtomicU64,
    expired: AtomicU64,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub publishes: u64,
    /// Publishes that replaced different content under the same key.
    pub conflicts: u64,
    /// Cached lookups asked for.
    pub lookups: u64,
    /// Lookups that had to read the backend.
    pub misses: u64,
    /// Entries removed because they were not republished within the TTL.
    pub expired: u64,
}

#[derive(Debug)]
pub struct Registry {
    store: SharedStore,
    clock: Arc<dyn Clock>,
    ttl_ms: u64,
    cache: DashMap<Key, Slot>,
    counters: Counters,
    /// Moves on every change this registry sees (its publishes and sweeps, and the backend's
    /// change events), so callers can tell whether what they learned is still current.
    generation: AtomicU64,
}

impl Registry {
    pub fn new(store: SharedStore, ttl: Duration) -> Self {
        Self::with_clock(store, ttl, Arc::new(SystemClock))
    }

    pub fn with_clock(store: SharedStore, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Registry {
            store,
            clock,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            cache: DashMap::new(),
            counters: Counters::default(),
            generation: AtomicU64::new(0),
        }
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }

    /// Validates and stores a MetadataInfo JSON string for (`application`, `revision`).
    pub async fn publish_metadata(
        &self,
        application: &str,
        revision: &str,
        json: &str,
    ) -> Result<Outcome, Error> {
        check_key_part("application_name", application, true)?;
        check_key_part("revision", revision, true)?;
        MetadataInfo::parse(json, application, revision)?;
        self.publish(Key::metadata(application, revision), json)
            .await
    }

    /// Validates and stores a service definition JSON string under `identifier`.
    pub async fn publish_definition(&self, identifier: &str, json: &str) -> Result<Outcome, Error> {
        check_key_part("identifier", identifier, false)?;
        ServiceDefinition::parse(json)?;
        self.publish(Key::definition(identifier), json).await
    }

    async fn publish(&self, key: Key, json: &str) -> Result<Outcome, Error> {
        if json.len() > MAX_VALUE_BYTES {
            return Err(Error::Invalid {
                what: match key.kind() {
                    Kind::Metadata => "metadata_info",
                    Kind::Definition => "service_definition",
                },
                reason: format!(
                    "{} bytes is over the limit of {MAX_VALUE_BYTES}",
                    json.len()
                ),
            });
        }
        let record = Record::new(json, self.clock.now_ms());
        let previous = self.store.put(&key, record).await?;
        self.cache.remove(&key);
        self.generation.fetch_add(1, Ordering::Release);
        self.counters.publishes.fetch_add(1, Ordering::Relaxed);
        Ok(match previous {
            // An expired entry not swept yet is gone for readers, so this creates it anew.
            None => Outcome::Created,
            Some(p) if self.expired(p.published_at_ms) => Outcome::Created,
            Some(p) if p.value.as_ref() == json => Outcome::Refreshed,
            Some(_) => {
                self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%key, "republished with different content; the new content replaces the old");
                Outcome::Replaced
            }
        })
    }

    /// The MetadataInfo of (`application`, `revision`), if published and not expired.
    pub async fn metadata(
        &self,
        application: &str,
        revision: &str,
    ) -> Result<Option<Arc<Entry<MetadataInfo>>>, Error> {
        check_key_part("application_name", application, true)?;
        check_key_part("revision", revision, true)?;
        let key = Key::metadata(application, revision);
        match self.lookup(key).await? {
            Some(View::Metadata(entry)) => Ok(Some(entry)),
            _ => Ok(None),
        }
    }

    /// The service definition published under `identifier`, if any and not expired.
    pub async fn definition(
        &self,
        identifier: &str,
    ) -> Result<Option<Arc<Entry<ServiceDefinition>>>, Error> {
        check_key_part("identifier", identifier, false)?;
        match self.lookup(Key::definition(identifier)).await? {
            Some(View::Definition(entry)) => Ok(Some(entry)),
            _ => Ok(None),
        }
    }

    async fn lookup(&self, key: Key) -> Result<Option<View>, Error> {
        self.counters.lookups.fetch_add(1, Ordering::Relaxed);
        let slot = self.cache.entry(key.clone()).or_default().clone();
        let view = slot
            .get_or_try_init(|| async {
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                let record = self.store.get(&key).await?;
                record.map(|r| parse(&key, r)).transpose()
            })
            .await;
        let view = match view {
            Ok(view) => view,
            Err(e) => {
                // No slot stays behind for a failed read: errors must not fill the cache.
                self.cache.remove_if(&key, |_, s| Arc::ptr_eq(s, &slot));
                return Err(e);
            }
        };
        let live = view
            .as_ref()
            .filter(|v| !self.expired(v.published_at_ms()))
            .map(View::clone_arc);
        if live.is_none() {
            // Absent or expired: keep no slot for it, so unknown keys cannot fill the cache.
            self.cache.remove_if(&key, |_, s| Arc::ptr_eq(s, &slot));
        }
        Ok(live)
    }

    fn expired(&self, published_at_ms: u64) -> bool {
        published_at_ms.saturating_add(self.ttl_ms) < self.clock.now_ms()
    }

    /// Every unexpired MetadataInfo in the backend with its revision (not cached; for
    /// listings).
    pub async fn all_metadata(&self) -> Result<Vec<(String, Arc<Entry<MetadataInfo>>)>, Error> {
        let mut out = Vec::new();
        for (key, record) in self.store.list(Kind::Metadata).await? {
            if self.expired(record.published_at_ms) {
                continue;
            }
            let Key::Metadata { revision, .. } = &key else {
                continue;
            };
            let revision = revision.clone();
            match parse(&key, record) {
                Ok(View::Metadata(entry)) => out.push((revision, entry)),
                Ok(_) => {}
                Err(e) => tracing::warn!(%key, error = %e, "skipping unreadable metadata"),
            }
        }
        Ok(out)
    }

    /// Removes entries not republished within the TTL; returns how many.
    pub async fn sweep(&self) -> Result<usize, Error> {
        let cutoff = self.clock.now_ms().saturating_sub(self.ttl_ms);
        let removed = self.store.remove_published_before(cutoff).await?;
        for key in &removed {
            tracing::info!(%key, "expired: not republished within the TTL");
            self.cache.remove(key);
        }
        if !removed.is_empty() {
            self.generation.fetch_add(1, Ordering::Release);
        }
        self.counters
            .expired
            .fetch_add(removed.len() as u64, Ordering::Relaxed);
        Ok(removed.len())
    }

    /// Runs until `shutdown` resolves: sweeps expired entries every `sweep_every`, and drops
    /// cached views of keys the backend reports changed (by this process or another one
    /// sharing the backend).
    pub async fn run(self: Arc<Self>, sweep_every: Duration, shutdown: impl Future<Output = ()>) {
        let mut changes = self.store.changes();
        let mut ticker = tokio::time::interval(sweep_every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = ticker.tick() => {
                    if let Err(e) = self.sweep().await {
                        tracing::warn!(error = %e, "metadata sweep failed; will retry");
                    }
                }
                change = changes.recv() => match change {
                    Ok(Change::Key(key)) => {
                        self.cache.remove(&key);
                        self.generation.fetch_add(1, Ordering::Release);
                    }
                    Ok(Change::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.cache.clear();
                        self.generation.fetch_add(1, Ordering::Release);
                    }
                    Err(broadcast::error::RecvError::Closed) => changes = self.store.changes(),
                },
            }
        }
    }

    /// A number that changes whenever anything stored may have changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether the backend answers now (a read of a key nobody publishes), for readiness
    /// probes: an unreachable etcd shows here before calls notice it.
    pub async fn ping(&self) -> Result<(), Error> {
        self.store.get(&Key::metadata("-", "-")).await.map(|_| ())
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            publishes: c.publishes.load(Ordering::Relaxed),
            conflicts: c.conflicts.load(Ordering::Relaxed),
            lookups: c.lookups.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            expired: c.expired.load(Ordering::Relaxed),
        }
    }
}

impl View {
    fn clone_arc(&self) -> View {
        match self {
            View::Metadata(e) => View::Metadata(e.clone()),
            View::Definition(e) => View::Definition(e.clone()),
        }
    }
}

fn parse(key: &Key, record: Record) -> Result<View, Error> {
    // A stored value was valid when published; failing now means damage or a format change.
    let corrupt = |e: Error| Error::Corrupt(format!("{key}: {e}"));
    Ok(match key {
        Key::Metadata {
            application,
            revision,
        } => {
            let view =
                MetadataInfo::parse(&record.value, application, revision).map_err(corrupt)?;
            View::Metadata(Arc::new(Entry { record, view }))
        }
        Key::Definition { .. } => {
            let view = ServiceDefinition::parse(&record.value).map_err(corrupt)?;
            View::Definition(Arc::new(Entry { record, view }))
        }
    })
}

/// Keys are compared exactly and end up in file and etcd keys: refuse what would be ambiguous
/// there. Public so that configurations naming applications and revisions can apply the same
/// rules.
pub fn check_key_part(what: &'static str, value: &str, no_slash: bool) -> Result<(), Error> {
    let invalid = |reason: &str| {
        Err(Error::Invalid {
            what,
            reason: reason.to_owned(),
        })
    };
    if value.is_empty() {
        return invalid("must not be empty");
    }
    if value.len() > MAX_KEY_BYTES {
        return invalid(&format!("is longer than {MAX_KEY_BYTES} bytes"));
    }
    if value.chars().any(char::is_control) {
        return invalid("must not contain control characters");
    }
    if no_slash && value.contains('/') {
        return invalid("must not contain '/'");
    }
    Ok(())
}
