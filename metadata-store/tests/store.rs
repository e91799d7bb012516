//! The backends behave alike (memory and redb here; etcd in `etcd.rs`), and redb keeps every
//! acknowledged write across reopening.

use std::sync::Arc;

use metadata_store::store::{Key, Kind, MemoryStore, Record, RedbStore, Store};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("metadata-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

async fn behaves_like_a_store(store: &dyn Store) {
    let mut changes = store.changes();
    let app = Key::metadata("shop", "r1");
    let def = Key::definition("a.B:::provider:shop");
    assert_eq!(store.get(&app).await.expect("get"), None);
    assert_eq!(
        store.put(&app, Record::new("one", 10)).await.expect("put"),
        None
    );
    assert_eq!(
        store.put(&app, Record::new("two", 20)).await.expect("put"),
        Some(Record::new("one", 10))
    );
    store.put(&def, Record::new("def", 30)).await.expect("put");
    store
        .put(&Key::metadata("shop", "r2"), Record::new("three", 40))
        .await
        .expect("put");
    assert_eq!(
        store.get(&app).await.expect("get"),
        Some(Record::new("two", 20))
    );
    assert_eq!(
        store.get(&def).await.expect("get"),
        Some(Record::new("def", 30))
    );

    let mut listed = store.list(Kind::Metadata).await.expect("list");
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        listed,
        [
            (app.clone(), Record::new("two", 20)),
            (Key::metadata("shop", "r2"), Record::new("three", 40))
        ]
    );
    assert_eq!(store.list(Kind::Definition).await.expect("list").len(), 1);

    let mut removed = store.remove_published_before(35).await.expect("expire");
    removed.sort();
    assert_eq!(removed, [app.clone(), def.clone()]);
    assert_eq!(store.get(&app).await.expect("get"), None);
    assert!(store
        .get(&Key::metadata("shop", "r2"))
        .await
        .expect("get")
        .is_some());

    // Every write and removal was announced.
    let mut seen = Vec::new();
    while let Ok(key) = changes.try_recv() {
        seen.push(key);
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
}

#[tokio::test]
async fn memory_store() {
    behaves_like_a_store(&MemoryStore::new()).await;
}

#[tokio::test]
async fn redb_store() {
    let dir = temp_dir("redb-basic");
    behaves_like_a_store(&RedbStore::open(dir.join("m.redb")).expect("open")).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_keeps_every_acknowledged_write_across_reopening() {
    let dir = temp_dir("redb-reopen");
    let path = dir.join("nested/dir/m.redb");
    {
        let store = Arc::new(RedbStore::open(&path).expect("open"));
        // Concurrent publishers share commits; each still returns only once on disk.
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let key = Key::metadata(format!("app{}", i % 7), format!("rev{i}"));
                    store.put(&key, Record::new(format!("value {i}"), i)).await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("join").expect("put");
        }
    }
    let store = RedbStore::open(&path).expect("reopen");
    assert_eq!(store.list(Kind::Metadata).await.expect("list").len(), 200);
    for i in [0u64, 57, 199] {
        let key = Key::metadata(format!("app{}", i % 7), format!("rev{i}"));
        assert_eq!(
            store.get(&key).await.expect("get"),
            Some(Record::new(format!("value {i}"), i))
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_opener_gets_a_clear_error() {
    let dir = temp_dir("redb-lock");
    let path = dir.join("m.redb");
    let _first = RedbStore::open(&path).expect("open");
    let err = RedbStore::open(&path).expect_err("second open");
    assert!(err.to_string().contains("m.redb"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn records_refuse_what_they_cannot_read() {
    let record = Record::new("héllo", 1_700_000_000_000);
    assert_eq!(Record::decode(&record.encode()).expect("decode"), record);
    for bad in [
        &b""[..],
        &[2, 0, 0][..],
        &[1, 0, 0, 0][..],
        &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff][..],
    ] {
        assert!(Record::decode(bad).is_err(), "{bad:?}");
    }
}
