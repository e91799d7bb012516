//! Metadata store costs, each beside an anchor measured in the same run:
//! - `get/cached`: a cached MetadataInfo lookup through the registry, beside a bare DashMap
//!   lookup of the same key (the least any cache could cost);
//! - `publish/redb`: one publish acknowledged after fsync, beside the in-memory store, and 64
//!   concurrent publishes sharing commits;
//! - `open/redb_100k`: opening a store that holds 100,000 revisions and answering the first
//!   lookup, beside the same for an empty store.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use dashmap::DashMap;
use metadata_store::store::{Key, MemoryStore, Record, RedbStore, SharedStore, Store};
use metadata_store::Registry;

const APP: &str = "shop";

/// MetadataInfo as Dubbo's cache file holds it: without a `revision` field, so one string can
/// be published under any revision.
fn metadata() -> String {
    format!(
        r#"{{"app":"{APP}","services":{{"org.example.Cart:dubbo":{{"name":"org.example.Cart","protocol":"dubbo","path":"org.example.Cart","params":{{"methods":"add,list,remove","timeout":"3000","side":"provider"}}}}}}}}"#
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("metadata-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn get(c: &mut Criterion) {
    let rt = runtime();
    let registry = Registry::new(Arc::new(MemoryStore::new()), Duration::from_secs(3600));
    rt.block_on(registry.publish_metadata(APP, "r1", &metadata()))
        .expect("publish");
    let mut group = c.benchmark_group("get");
    group.bench_function("cached", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(registry.metadata(black_box(APP), black_box("r1")).await).ok();
                }
                start.elapsed()
            })
        })
    });
    let map: DashMap<Key, Arc<String>> = DashMap::new();
    map.insert(Key::metadata(APP, "r1"), Arc::new(metadata()));
    group.bench_function("dashmap_anchor", |b| {
        b.iter(|| {
            let key = Key::metadata(black_box(APP), black_box("r1"));
            black_box(map.get(&key).map(|v| v.clone()))
        })
    });
    group.finish();
}

fn publish(c: &mut Criterion) {
    let rt = runtime();
    let dir = temp("publish");
    let redb: SharedStore = Arc::new(RedbStore::open(dir.join("m.redb")).expect("open"));
    let on_disk = Arc::new(Registry::new(redb, Duration::from_secs(3600)));
    let in_memory = Registry::new(Arc::new(MemoryStore::new()), Duration::from_secs(3600));
    let json = metadata();
    let mut group = c.benchmark_group("publish");
    group.sample_size(20);
    let mut n = 0u64;
    group.bench_function("redb", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(on_disk.publish_metadata(APP, &format!("r{n}"), &json))
                .expect("publish")
        })
    });
    group.bench_function("memory_anchor", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(in_memory.publish_metadata(APP, &format!("r{n}"), &json))
                .expect("publish")
        })
    });
    // 64 publishers at once: each still waits for its fsync, but they share commits.
    group.bench_function("redb_64_concurrent", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..64)
                    .map(|_| {
                        n += 1;
                        let (registry, json, rev) =
                            (on_disk.clone(), json.clone(), format!("r{n}"));
                        tokio::spawn(
                            async move { registry.publish_metadata(APP, &rev, &json).await },
                        )
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("join").expect("publish");
                }
            })
        })
    });
    group.finish();
    drop(on_disk);
    let _ = std::fs::remove_dir_all(&dir);
}

fn open(c: &mut Criterion) {
    let rt = runtime();
    let dir = temp("open");
    let full = dir.join("full.redb");
    let empty = dir.join("empty.redb");
    drop(RedbStore::open(&empty).expect("create"));
    {
        let store = Arc::new(RedbStore::open(&full).expect("create"));
        let json = metadata();
        rt.block_on(async {
            for chunk in 0..(100_000 / 250) {
                let tasks: Vec<_> = (0..250)
                    .map(|i| {
                        let (store, record) = (store.clone(), Record::new(json.as_str(), 1));
                        let key =
                            Key::metadata(format!("app{}", i % 100), format!("rev{chunk}-{i}"));
                        tokio::spawn(async move { store.put(&key, record).await })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("join").expect("put");
                }
            }
        });
    }
    let size = std::fs::metadata(&full).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "store with 100,000 revisions: {:.1} MiB",
        size as f64 / (1 << 20) as f64
    );
    let mut group = c.benchmark_group("open");
    group.sample_size(20);
    for (name, path) in [("redb_100k", &full), ("redb_empty_anchor", &empty)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let store = RedbStore::open(path).expect("open");
                let key = Key::metadata("app7", "rev123-7");
                black_box(rt.block_on(store.get(&key)).expect("get"));
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, get, publish, open);
criterion_main!(benches);
