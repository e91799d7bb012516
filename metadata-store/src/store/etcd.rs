//! etcd backend, for several gateway instances sharing one store. Values live under
//! `{prefix}m/{application}/{revision}` and `{prefix}d/{identifier}` in the record encoding of
//! the redb backend. A watch on the prefix reports every change, whichever instance made it,
//! so each instance's cache drops stale views at once; when the watch is lost it is
//! re-established with backoff and caches are told to resync.
//!
//! The client is generated from the subset of etcd's v3 API in `proto/etcd` (no protoc).

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use super::{Change, Key, Kind, Record, Store};
use crate::Error;

#[allow(clippy::all, missing_debug_implementations, dead_code)]
mod mvccpb {
    tonic::include_proto!("mvccpb");
}

#[allow(clippy::all, missing_debug_implementations, dead_code)]
mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

use etcdserverpb::kv_client::KvClient;
use etcdserverpb::watch_client::WatchClient;
use etcdserverpb::{compare, request_op, watch_request, Compare, RequestOp, TxnRequest};

/// Keys returned per Range call when listing: with values of up to 1 MiB (the registry's
/// limit), a page stays within the client's message limit below.
const PAGE: i64 = 64;

/// The largest etcd response accepted.
const MAX_MESSAGE: usize = 128 << 20;

/// Where the etcd cluster is and how to use it.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// `http://host:port` (or `host:port`) of one or more members.
    pub endpoints: Vec<String>,
    /// Prepended to every key, so several deployments can share a cluster.
    pub prefix: String,
    /// Deadline of each read or write.
    pub timeout: Duration,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: "/dubbo-gateway/metadata/".into(),
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug)]
pub struct EtcdStore {
    kv: KvClient<Channel>,
    prefix: String,
    endpoints: String,
    changes: broadcast::Sender<Change>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl EtcdStore {
    /// Prepares connections to the cluster (made lazily, so a gateway starts while etcd is
    /// down) and starts the watch. Must be called inside a Tokio runtime.
    pub fn connect(config: &EtcdConfig) -> Result<Self, Error> {
        let endpoints = config.endpoints.join(",");
        let invalid = |reason: String| Error::Invalid {
            what: "etcd endpoints",
            reason,
        };
        if config.endpoints.is_empty() {
            return Err(invalid("at least one endpoint is needed".into()));
        }
        // A prefix that is a prefix of another deployment's would make this store list, watch
        // and expire that deployment's keys.
        if !config.prefix.starts_with('/')
            || !config.prefix.ends_with('/')
            || config.prefix.len() < 2
        {
            return Err(Error::Invalid {
                what: "etcd prefix",
                reason: format!(
                    "{:?} must start and end with '/' and name something",
                    config.prefix
                ),
            });
        }
        let mut unary = Vec::new();
        let mut streaming = Vec::new();
        for endpoint in &config.endpoints {
            let url = if endpoint.contains("://") {
                endpoint.clone()
            } else {
                format!("http://{endpoint}")
            };
            let base = Endpoint::from_shared(url.clone())
                .map_err(|e| invalid(format!("{url}: {e}")))?
                .connect_timeout(config.timeout)
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(5))
                .keep_alive_while_idle(true);
            // The watch stream must not have a deadline; reads and writes must.
            streaming.push(base.clone());
            unary.push(base.timeout(config.timeout));
        }
        let kv = KvClient::new(Channel::balance_list(unary.into_iter()))
            .max_decoding_message_size(MAX_MESSAGE);
        let watch = WatchClient::new(Channel::balance_list(streaming.into_iter()));
        let changes = broadcast::channel(1024).0;
        let watcher = tokio::spawn(watch_loop(
            watch,
            config.prefix.clone(),
            changes.clone(),
            endpoints.clone(),
        ));
        Ok(EtcdStore {
            kv,
            prefix: config.prefix.clone(),
            endpoints,
            changes,
            watcher,
        })
    }

    fn key_bytes(&self, key: &Key) -> Vec<u8> {
        encode_key(&self.prefix, key)
    }

    fn unavailable(&self, status: tonic::Status) -> Error {
        Error::Unavailable(format!(
            "etcd {}: {} {}",
            self.endpoints,
            status.code(),
            status.message()
        ))
    }

    /// Every key-value under `{prefix}{tag}`, a page at a time.
    async fn scan(&self, tag: &str) -> Result<Vec<mvccpb::KeyValue>, Error> {
        let start = format!("{}{tag}", self.prefix).into_bytes();
        let end = prefix_end(&start);
        let mut from = start;
        let mut out = Vec::new();
        loop {
            let page = self
                .kv
                .clone()
                .range(etcdserverpb::RangeRequest {
                    key: from.clone(),
                    range_end: end.clone(),
                    limit: PAGE,
                    ..Default::default()
                })
                .await
                .map_err(|s| self.unavailable(s))?
                .into_inner();
            let more = page.more;
            if let Some(last) = page.kvs.last() {
                from = last.key.clone();
                from.push(0);
            }
            out.extend(page.kvs);
            if !more {
                return Ok(out);
            }
        }
    }
}

fn encode_key(prefix: &str, key: &Key) -> Vec<u8> {
    match key {
        Key::Metadata {
            application,
            revision,
        } => format!("{prefix}m/{application}/{revision}"),
        Key::Definition { identifier } => format!("{prefix}d/{identifier}"),
    }
    .into_bytes()
}

fn decode_key(prefix: &str, bytes: &[u8]) -> Option<Key> {
    let rest = std::str::from_utf8(bytes).ok()?.strip_prefix(prefix)?;
    if let Some(pair) = rest.strip_prefix("m/") {
        let (application, revision) = pair.split_once('/')?;
        // No key the registry writes has a '/' in its revision.
        if revision.contains('/') {
            return None;
        }
        Some(Key::metadata(application, revision))
    } else {
        rest.strip_prefix("d/").map(Key::definition)
    }
}

/// The end of the range of keys starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

#[async_trait]
impl Store for EtcdStore {
    async fn put(&self, key: &Key, record: Record) -> Result<Option<Record>, Error> {
        let response = self
            .kv
            .clone()
            .put(etcdserverpb::PutRequest {
                key: self.key_bytes(key),
                value: record.encode(),
                prev_kv: true,
                ..Default::default()
            })
            .await
            .map_err(|s| self.unavailable(s))?
            .into_inner();
        // An unreadable previous value is simply overwritten.
        Ok(response
            .prev_kv
            .and_then(|kv| Record::decode(&kv.value).ok()))
    }

    async fn get(&self, key: &Key) -> Result<Option<Record>, Error> {
        let response = self
            .kv
            .clone()
            .range(etcdserverpb::RangeRequest {
                key: self.key_bytes(key),
                ..Default::default()
            })
            .await
            .map_err(|s| self.unavailable(s))?
            .into_inner();
        response
            .kvs
            .first()
            .map(|kv| Record::decode(&kv.value))
            .transpose()
    }

    async fn list(&self, kind: Kind) -> Result<Vec<(Key, Record)>, Error> {
        let tag = match kind {
            Kind::Metadata => "m/",
            Kind::Definition => "d/",
        };
        let mut out = Vec::new();
        for kv in self.scan(tag).await? {
            let Some(key) = decode_key(&self.prefix, &kv.key) else {
                continue;
            };
            match Record::decode(&kv.value) {
                Ok(record) => out.push((key, record)),
                Err(e) => tracing::warn!(%key, error = %e, "skipping an unreadable record"),
            }
        }
        Ok(out)
    }

    async fn remove_published_before(&self, cutoff_ms: u64) -> Result<Vec<Key>, Error> {
        let mut removed = Vec::new();
        for tag in ["m/", "d/"] {
            for kv in self.scan(tag).await? {
                let old = Record::decode_published_at(&kv.value).is_none_or(|t| t < cutoff_ms);
                let Some(key) = decode_key(&self.prefix, &kv.key).filter(|_| old) else {
                    continue;
                };
                // Delete only if nobody republished it since we read it.
                let txn = TxnRequest {
                    compare: vec![Compare {
                        result: etcdserverpb::compare::CompareResult::Equal as i32,
                        target: etcdserverpb::compare::CompareTarget::Mod as i32,
                        key: kv.key.clone(),
                        target_union: Some(compare::TargetUnion::ModRevision(kv.mod_revision)),
                    }],
                    success: vec![RequestOp {
                        request: Some(request_op::Request::RequestDeleteRange(
                            etcdserverpb::DeleteRangeRequest {
                                key: kv.key.clone(),
                                ..Default::default()
                            },
                        )),
                    }],
                    failure: vec![],
                };
                let done = self
                    .kv
                    .clone()
                    .txn(txn)
                    .await
                    .map_err(|s| self.unavailable(s))?
                    .into_inner();
                if done.succeeded {
                    removed.push(key);
                }
            }
        }
        Ok(removed)
    }

    fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}

/// Watches the prefix for as long as the store lives, re-establishing the watch with backoff.
async fn watch_loop(
    client: WatchClient<Channel>,
    prefix: String,
    changes: broadcast::Sender<Change>,
    endpoints: String,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match watch_once(client.clone(), &prefix, &changes).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(reason) => {
                tracing::warn!(etcd = %endpoints, %reason, retry_in = ?backoff, "etcd watch lost");
            }
        }
        // Whatever happened while unwatched is unknown.
        let _ = changes.send(Change::Resync);
        // Up to half again, so that many instances do not reconnect in lockstep.
        let jitter = backoff.mul_f64(fastrand::f64() / 2.0);
        tokio::time::sleep(backoff + jitter).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn watch_once(
    mut client: WatchClient<Channel>,
    prefix: &str,
    changes: &broadcast::Sender<Change>,
) -> Result<(), String> {
    let (requests, stream) = mpsc::channel(1);
    let create = etcdserverpb::WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            etcdserverpb::WatchCreateRequest {
                key: prefix.as_bytes().to_vec(),
                range_end: prefix_end(prefix.as_bytes()),
                ..Default::default()
            },
        )),
    };
    requests.send(create).await.map_err(|e| e.to_string())?;
    // `hasleader`: a member cut off from the leader cancels the watch instead of keeping it
    // open and silent (what etcd's own clients ask for with WithRequireLeader).
    let mut request = tonic::Request::new(ReceiverStream::new(stream));
    request.metadata_mut().insert(
        "hasleader",
        tonic::metadata::MetadataValue::from_static("true"),
    );
    let mut responses = client
        .watch(request)
        .await
        .map_err(|s| s.to_string())?
        .into_inner();
    // `requests` stays alive for the whole loop: dropping it would end the stream.
    while let Some(response) = responses.message().await.map_err(|s| s.to_string())? {
        if response.created {
            // Changes made before the watch existed were not seen.
            let _ = changes.send(Change::Resync);
        }
        if response.canceled {
            return Err(format!("watch canceled: {}", response.cancel_reason));
        }
        for event in response.events {
            if let Some(key) = event.kv.and_then(|kv| decode_key(prefix, &kv.key)) {
                let _ = changes.send(Change::Key(key));
            }
        }
    }
    drop(requests);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_etcd_form() {
        for key in [
            Key::metadata("shop", "abc123"),
            Key::definition("a.B:1.0:g/x:provider:shop"),
        ] {
            let bytes = encode_key("/p/", &key);
            assert_eq!(decode_key("/p/", &bytes), Some(key));
        }
        assert_eq!(decode_key("/p/", b"/q/m/a/b"), None);
        assert_eq!(prefix_end(b"/p/"), b"/p0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
    }
}
