//! The etcd backend against a real etcd 3.4: it behaves like the other backends, two instances
//! sharing it see each other's publishes (their caches follow through the watch), expiry
//! works across instances, and a cluster that is down is UNAVAILABLE, not a hang.

mod support;

use std::sync::Arc;
use std::time::Duration;

use metadata_store::clock::ManualClock;
use metadata_store::grpc::{pb, MetadataApi, MetadataServiceClient};
use metadata_store::store::{EtcdConfig, EtcdStore, Key, Kind, Record, Store};
use metadata_store::{Error, Outcome, Registry};
use support::{demo_metadata, DEMO_APP, DEMO_REVISION};
use testkit::etcd::Etcd;

fn config(etcd: &Etcd, prefix: &str) -> EtcdConfig {
    EtcdConfig {
        endpoints: vec![etcd.client_url.clone()],
        prefix: prefix.into(),
        timeout: Duration::from_secs(5),
    }
}

/// Polls until `check` holds (watch events arrive asynchronously), for at most 10 s.
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 10 s: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_backend_against_a_real_etcd() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };

    // Plain store operations, including paging past one Range page.
    let store = EtcdStore::connect(&config(&etcd, "/t1/")).expect("connect");
    let key = Key::metadata("shop", "r1");
    assert_eq!(store.get(&key).await.expect("get"), None);
    assert_eq!(
        store.put(&key, Record::new("one", 10)).await.expect("put"),
        None
    );
    assert_eq!(
        store.put(&key, Record::new("two", 20)).await.expect("put"),
        Some(Record::new("one", 10))
    );
    for i in 0..1500 {
        store
            .put(
                &Key::metadata("bulk", format!("r{i:04}")),
                Record::new("x", 100),
            )
            .await
            .expect("put");
    }
    store
        .put(&Key::definition("a.B:::provider:shop"), Record::new("d", 5))
        .await
        .expect("put");
    assert_eq!(store.list(Kind::Metadata).await.expect("list").len(), 1501);
    assert_eq!(store.list(Kind::Definition).await.expect("list").len(), 1);
    let mut removed = store.remove_published_before(50).await.expect("expire");
    removed.sort();
    assert_eq!(
        removed,
        [key.clone(), Key::definition("a.B:::provider:shop")]
    );
    assert_eq!(store.list(Kind::Metadata).await.expect("list").len(), 1500);

    // Two instances (registries with their own caches and gRPC listeners) share one prefix.
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let instance = |clock: Arc<ManualClock>| {
        let store = Arc::new(EtcdStore::connect(&config(&etcd, "/shared/")).expect("connect"));
        let registry = Arc::new(Registry::with_clock(
            store,
            Duration::from_secs(3600),
            clock,
        ));
        tokio::spawn(
            registry
                .clone()
                .run(Duration::from_secs(3600), std::future::pending()),
        );
        registry
    };
    let a = instance(clock.clone());
    let b = instance(clock.clone());
    assert!(b
        .metadata(DEMO_APP, DEMO_REVISION)
        .await
        .expect("get")
        .is_none());
    assert_eq!(
        a.publish_metadata(DEMO_APP, DEMO_REVISION, &demo_metadata())
            .await
            .expect("publish"),
        Outcome::Created
    );
    let seen = b
        .metadata(DEMO_APP, DEMO_REVISION)
        .await
        .expect("get")
        .expect("published on a");
    assert_eq!(&*seen.record.value, demo_metadata());

    // b has it cached; a republishes different content; b's cache follows the watch.
    let changed = demo_metadata().replace("\"timeout\":\"3000\"", "\"timeout\":\"7\"");
    assert_eq!(
        a.publish_metadata(DEMO_APP, DEMO_REVISION, &changed)
            .await
            .expect("publish"),
        Outcome::Replaced
    );
    eventually("b serves a's new content", || async {
        let entry = b.metadata(DEMO_APP, DEMO_REVISION).await.expect("get");
        entry.is_some_and(|e| *e.record.value == *changed)
    })
    .await;

    // Through the gRPC API: publish on a's listener, get from b's.
    let listener_a = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let listener_b = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (addr_a, addr_b) = (
        listener_a.local_addr().expect("a"),
        listener_b.local_addr().expect("b"),
    );
    tokio::spawn(MetadataApi::new(a.clone(), None).serve(listener_a, std::future::pending()));
    tokio::spawn(MetadataApi::new(b.clone(), None).serve(listener_b, std::future::pending()));
    let mut to_a = MetadataServiceClient::connect(format!("http://{addr_a}"))
        .await
        .expect("a");
    let mut to_b = MetadataServiceClient::connect(format!("http://{addr_b}"))
        .await
        .expect("b");
    let info = demo_metadata().replace(DEMO_REVISION, "rev2");
    to_a.publish(pb::PublishMetadataRequest {
        application_name: DEMO_APP.into(),
        revision: "rev2".into(),
        metadata_info: info.clone(),
    })
    .await
    .expect("publish on a");
    let got = to_b
        .get(pb::GetMetadataRequest {
            application_name: DEMO_APP.into(),
            revision: "rev2".into(),
        })
        .await
        .expect("get from b")
        .into_inner();
    assert_eq!(got.metadata_info, info);

    // Expiry by one instance is seen by the other.
    clock.advance(Duration::from_secs(7200));
    assert_eq!(a.sweep().await.expect("sweep"), 2);
    eventually("b forgets expired entries", || async {
        b.metadata(DEMO_APP, "rev2").await.expect("get").is_none()
    })
    .await;
    drop(etcd);
}

#[tokio::test]
async fn a_cluster_that_is_down_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let store = EtcdStore::connect(&EtcdConfig {
        endpoints: vec![format!("127.0.0.1:{port}")],
        prefix: "/x/".into(),
        timeout: Duration::from_millis(500),
    })
    .expect("connect is lazy");
    let err = store.get(&Key::metadata("a", "1")).await.expect_err("down");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    let err = EtcdStore::connect(&EtcdConfig {
        endpoints: vec![],
        ..EtcdConfig::default()
    })
    .expect_err("no endpoints");
    assert!(err.to_string().contains("at least one endpoint"), "{err}");
}
