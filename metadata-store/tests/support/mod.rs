//! A store wrapper for tests: counts backend reads, can be slowed down or taken down.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use metadata_store::store::{Change, Key, Kind, MemoryStore, Record, Store};
use metadata_store::Error;
use tokio::sync::broadcast;

#[derive(Debug, Default)]
pub struct TestStore {
    inner: MemoryStore,
    pub gets: AtomicUsize,
    pub down: AtomicBool,
    pub get_delay_ms: AtomicUsize,
}

impl TestStore {
    fn check(&self) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("test backend is down".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for TestStore {
    async fn put(&self, key: &Key, record: Record) -> Result<Option<Record>, Error> {
        self.check()?;
        self.inner.put(key, record).await
    }

    async fn get(&self, key: &Key) -> Result<Option<Record>, Error> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let delay = self.get_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        self.check()?;
        self.inner.get(key).await
    }

    async fn list(&self, kind: Kind) -> Result<Vec<(Key, Record)>, Error> {
        self.check()?;
        self.inner.list(kind).await
    }

    async fn remove_published_before(&self, cutoff_ms: u64) -> Result<Vec<Key>, Error> {
        self.check()?;
        self.inner.remove_published_before(cutoff_ms).await
    }

    fn changes(&self) -> broadcast::Receiver<Change> {
        self.inner.changes()
    }
}

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub const DEMO_APP: &str = "demo-provider";
pub const DEMO_REVISION: &str = "da3be833baa2088c5f6776fb7ab1a436";

pub fn demo_metadata() -> String {
    fixture("zk-metadata-demo-provider-da3be833baa2088c5f6776fb7ab1a436.json")
}

pub fn demo_definition() -> String {
    fixture("zk-metadata-org.apache.dubbo.demo.DemoService-provider-demo-provider.json")
}
