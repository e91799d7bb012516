//! Embedded durable backend on redb, the default. A publish is acknowledged only after the
//! transaction holding it has been committed with fsync.
//!
//! Writes go through one writer thread that commits everything queued behind the current
//! commit as one transaction (group commit): each publish still waits for its own fsync, but
//! concurrent publishers share them instead of queueing one fsync each.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Change, Key, Kind, Record, Store};
use crate::Error;

const METADATA: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("metadata_info");
const DEFINITIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("service_definitions");

/// The most writes folded into one transaction.
const MAX_BATCH: usize = 256;

#[derive(Debug)]
pub struct RedbStore {
    db: Arc<Database>,
    path: PathBuf,
    writes: mpsc::UnboundedSender<Write>,
    writer: Option<std::thread::JoinHandle<()>>,
    changes: broadcast::Sender<Change>,
}

impl Drop for RedbStore {
    /// Lets the writer finish what is queued and release the file, so the store can be
    /// reopened as soon as this returns.
    fn drop(&mut self) {
        drop(std::mem::replace(
            &mut self.writes,
            mpsc::unbounded_channel().0,
        ));
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

enum Write {
    Put {
        key: Key,
        record: Record,
        done: oneshot::Sender<Result<Option<Record>, Error>>,
    },
    Expire {
        cutoff_ms: u64,
        done: oneshot::Sender<Result<Vec<Key>, Error>>,
    },
}

fn unavailable(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("redb store {}: {e}", path.display()))
}

impl RedbStore {
    /// Opens (or creates) the store file, creating its directory if needed. A file left by a
    /// crash is repaired by redb while opening.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| unavailable(&path, e))?;
        }
        let db = Database::create(&path).map_err(|e| unavailable(&path, e))?;
        // Create both tables up front so readers never meet a missing table.
        let txn = db.begin_write().map_err(|e| unavailable(&path, e))?;
        txn.open_table(METADATA)
            .map_err(|e| unavailable(&path, e))?;
        txn.open_table(DEFINITIONS)
            .map_err(|e| unavailable(&path, e))?;
        txn.commit().map_err(|e| unavailable(&path, e))?;

        let db = Arc::new(db);
        let (writes, queue) = mpsc::unbounded_channel();
        let changes = broadcast::channel(1024).0;
        let writer = Writer {
            db: db.clone(),
            path: path.clone(),
            changes: changes.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("metadata-redb-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| unavailable(&path, e))?;
        Ok(RedbStore {
            db,
            path,
            writes,
            writer: Some(writer),
            changes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, redb::Error> + Send + 'static,
    ) -> Result<T, Error> {
        let db = self.db.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| unavailable(&path, e))?
            .map_err(|e| unavailable(&self.path, e))
    }

    fn writer_gone(&self) -> Error {
        unavailable(&self.path, "the writer thread has stopped")
    }

    fn not_committed(&self) -> Error {
        unavailable(
            &self.path,
            "the write was not committed (the error is in the log)",
        )
    }
}

#[async_trait]
impl Store for RedbStore {
    async fn put(&self, key: &Key, record: Record) -> Result<Option<Record>, Error> {
        let (done, answer) = oneshot::channel();
        let write = Write::Put {
            key: key.clone(),
            record,
            done,
        };
        self.writes.send(write).map_err(|_| self.writer_gone())?;
        answer.await.map_err(|_| self.not_committed())?
    }

    async fn get(&self, key: &Key) -> Result<Option<Record>, Error> {
        let key = key.clone();
        let bytes = self
            .read(move |db| {
                let txn = db.begin_read()?;
                Ok(match &key {
                    Key::Metadata {
                        application,
                        revision,
                    } => txn
                        .open_table(METADATA)?
                        .get((application.as_str(), revision.as_str()))?
                        .map(|v| v.value().to_vec()),
                    Key::Definition { identifier } => txn
                        .open_table(DEFINITIONS)?
                        .get(identifier.as_str())?
                        .map(|v| v.value().to_vec()),
                })
            })
            .await?;
        bytes.map(|b| Record::decode(&b)).transpose()
    }

    async fn list(&self, kind: Kind) -> Result<Vec<(Key, Record)>, Error> {
        let raw = self
            .read(move |db| {
                let txn = db.begin_read()?;
                let mut out = Vec::new();
                match kind {
                    Kind::Metadata => {
                        for entry in txn.open_table(METADATA)?.iter()? {
                            let (k, v) = entry?;
                            let (app, rev) = k.value();
                            out.push((Key::metadata(app, rev), v.value().to_vec()));
                        }
                    }
                    Kind::Definition => {
                        for entry in txn.open_table(DEFINITIONS)?.iter()? {
                            let (k, v) = entry?;
                            out.push((Key::definition(k.value()), v.value().to_vec()));
                        }
                    }
                }
                Ok(out)
            })
            .await?;
        Ok(raw
            .into_iter()
            .filter_map(|(key, bytes)| match Record::decode(&bytes) {
                Ok(record) => Some((key, record)),
                Err(e) => {
                    tracing::warn!(%key, error = %e, "skipping an unreadable record");
                    None
                }
            })
            .collect())
    }

    async fn remove_published_before(&self, cutoff_ms: u64) -> Result<Vec<Key>, Error> {
        let (done, answer) = oneshot::channel();
        self.writes
            .send(Write::Expire { cutoff_ms, done })
            .map_err(|_| self.writer_gone())?;
        answer.await.map_err(|_| self.not_committed())?
    }

    fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}

/// The writer thread's state.
struct Writer {
    db: Arc<Database>,
    path: PathBuf,
    changes: broadcast::Sender<Change>,
}

/// What a write answers once its transaction is committed (or failed).
enum Answer {
    Put(
        oneshot::Sender<Result<Option<Record>, Error>>,
        Option<Record>,
    ),
    Expire(oneshot::Sender<Result<Vec<Key>, Error>>, Vec<Key>),
}

impl Writer {
    fn run(self, mut queue: mpsc::UnboundedReceiver<Write>) {
        // Ends when every `RedbStore` handle is gone.
        while let Some(first) = queue.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
    }

    /// Applies a batch in one transaction and answers each write after the commit.
    fn commit(&self, batch: Vec<Write>) {
        let mut answers = Vec::with_capacity(batch.len());
        let mut changed = Vec::new();
        let result = (|| -> Result<(), redb::Error> {
            let txn = self.db.begin_write()?;
            {
                let mut metadata = txn.open_table(METADATA)?;
                let mut definitions = txn.open_table(DEFINITIONS)?;
                for write in batch {
                    match write {
                        Write::Put { key, record, done } => {
                            let bytes = record.encode();
                            let previous = match &key {
                                Key::Metadata {
                                    application,
                                    revision,
                                } => metadata
                                    .insert((application.as_str(), revision.as_str()), &bytes[..])?
                                    .map(|v| v.value().to_vec()),
                                Key::Definition { identifier } => definitions
                                    .insert(identifier.as_str(), &bytes[..])?
                                    .map(|v| v.value().to_vec()),
                            };
                            // An unreadable previous value is simply overwritten.
                            let previous = previous.and_then(|b| Record::decode(&b).ok());
                            changed.push(key);
                            answers.push(Answer::Put(done, previous));
                        }
                        Write::Expire { cutoff_ms, done } => {
                            let old = |v: &[u8]| {
                                Record::decode_published_at(v).is_none_or(|t| t < cutoff_ms)
                            };
                            let mut removed = Vec::new();
                            for entry in metadata.extract_if(|_, v| old(v))? {
                                let (k, _) = entry?;
                                let (app, rev) = k.value();
                                removed.push(Key::metadata(app, rev));
                            }
                            for entry in definitions.extract_if(|_, v| old(v))? {
                                let (k, _) = entry?;
                                removed.push(Key::definition(k.value()));
                            }
                            changed.extend(removed.iter().cloned());
                            answers.push(Answer::Expire(done, removed));
                        }
                    }
                }
            }
            txn.commit()?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                for key in changed {
                    let _ = self.changes.send(Change::Key(key));
                }
                for answer in answers {
                    match answer {
                        Answer::Put(done, previous) => drop(done.send(Ok(previous))),
                        Answer::Expire(done, removed) => drop(done.send(Ok(removed))),
                    }
                }
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "metadata commit failed");
                // Writes whose answers were not built yet are dropped with the batch; their
                // callers get "not committed", also an `Unavailable` error.
                for answer in answers {
                    let error = unavailable(&self.path, &e);
                    match answer {
                        Answer::Put(done, _) => drop(done.send(Err(error))),
                        Answer::Expire(done, _) => drop(done.send(Err(error))),
                    }
                }
            }
        }
    }
}
