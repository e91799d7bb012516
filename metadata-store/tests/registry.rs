//! The registry over a backend: validation, conflicts, TTL with controlled time, the cache and
//! its single-flight misses.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use metadata_store::clock::ManualClock;
use metadata_store::{Error, Outcome, Registry};
use support::{demo_definition, demo_metadata, TestStore, DEMO_APP, DEMO_REVISION};

const HOUR: Duration = Duration::from_secs(3600);

fn registry(ttl: Duration) -> (Arc<Registry>, Arc<TestStore>, Arc<ManualClock>) {
    let store = Arc::new(TestStore::default());
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let registry = Registry::with_clock(store.clone(), ttl, clock.clone());
    (Arc::new(registry), store, clock)
}

#[tokio::test]
async fn republishing_refreshes_and_different_content_is_a_counted_conflict() {
    let (registry, _, _) = registry(HOUR);
    let json = demo_metadata();
    let publish = |json: String| {
        let registry = registry.clone();
        async move {
            registry
                .publish_metadata(DEMO_APP, DEMO_REVISION, &json)
                .await
        }
    };
    assert_eq!(
        publish(json.clone()).await.expect("publish"),
        Outcome::Created
    );
    assert_eq!(
        publish(json.clone()).await.expect("publish"),
        Outcome::Refreshed
    );
    assert_eq!(registry.stats().conflicts, 0);

    // Same revision, different content (one param changed): it replaces the old one.
    let changed = json.replace("\"timeout\":\"3000\"", "\"timeout\":\"4000\"");
    assert_ne!(changed, json);
    assert_eq!(
        publish(changed.clone()).await.expect("publish"),
        Outcome::Replaced
    );
    let stats = registry.stats();
    assert_eq!((stats.publishes, stats.conflicts), (3, 1));
    let entry = registry
        .metadata(DEMO_APP, DEMO_REVISION)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(&*entry.record.value, changed);
    let service = entry
        .view
        .service("org.apache.dubbo.demo.DemoService", None, None)
        .expect("service");
    assert_eq!(service.params["timeout"], "4000");
}

#[tokio::test]
async fn entries_expire_after_the_ttl_unless_republished() {
    let (registry, _, clock) = registry(HOUR);
    registry
        .publish_metadata(DEMO_APP, DEMO_REVISION, &demo_metadata())
        .await
        .expect("publish");
    registry
        .publish_definition(
            "org.apache.dubbo.demo.DemoService:::provider:demo-provider",
            &demo_definition(),
        )
        .await
        .expect("publish");
    clock.advance(Duration::from_secs(59 * 60));
    // Republishing the metadata restarts its TTL; the definition is not republished.
    registry
        .publish_metadata(DEMO_APP, DEMO_REVISION, &demo_metadata())
        .await
        .expect("republish");
    clock.advance(Duration::from_secs(2 * 60));

    // Past its TTL an entry is gone for readers at once, before any sweep.
    let id = "org.apache.dubbo.demo.DemoService:::provider:demo-provider";
    assert!(registry.definition(id).await.expect("get").is_none());
    assert!(registry
        .metadata(DEMO_APP, DEMO_REVISION)
        .await
        .expect("get")
        .is_some());

    assert_eq!(registry.sweep().await.expect("sweep"), 1);
    assert_eq!(registry.stats().expired, 1);
    assert!(registry
        .store()
        .get(&metadata_store::store::Key::definition(id))
        .await
        .expect("get")
        .is_none());

    clock.advance(HOUR);
    assert_eq!(registry.sweep().await.expect("sweep"), 1);
    assert!(registry
        .metadata(DEMO_APP, DEMO_REVISION)
        .await
        .expect("get")
        .is_none());
    assert_eq!(registry.sweep().await.expect("sweep"), 0);

    // Publishing over an entry that expired but was not swept yet creates it anew.
    registry
        .publish_metadata(DEMO_APP, DEMO_REVISION, &demo_metadata())
        .await
        .expect("publish");
    clock.advance(2 * HOUR);
    let changed = demo_metadata().replace("\"timeout\":\"3000\"", "\"timeout\":\"1\"");
    let conflicts = registry.stats().conflicts;
    assert_eq!(
        registry
            .publish_metadata(DEMO_APP, DEMO_REVISION, &changed)
            .await
            .expect("publish"),
        Outcome::Created
    );
    assert_eq!(registry.stats().conflicts, conflicts);
}

#[tokio::test(start_paused = true)]
async fn the_sweeper_runs_on_its_own() {
    let (registry, _, clock) = registry(HOUR);
    registry
        .publish_metadata(DEMO_APP, DEMO_REVISION, &demo_metadata())
        .await
        .expect("publish");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(registry.clone().run(Duration::from_secs(60), async {
        let _ = stopped.await;
    }));
    clock.advance(2 * HOUR);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(registry.stats().expired, 1);
    stop.send(()).expect("stop");
    task.await.expect("sweeper stops on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_reaches_the_backend_once_under_concurrency() {
    let (registry, store, _) = registry(HOUR);
    registry
        .publish_metadata(DEMO_APP, DEMO_REVISION, &demo_metadata())
        .await
        .expect("publish");
    store.get_delay_ms.store(100, Ordering::SeqCst);
    let lookups: Vec<_> = (0..64)
        .map(|_| {
            let registry = registry.clone();
            tokio::spawn(async move { registry.metadata(DEMO_APP, DEMO_REVISION).await })
        })
        .collect();
    for lookup in lookups {
        assert!(lookup.await.expect("join").expect("get").is_some());
    }
    assert_eq!(store.gets.load(Ordering::SeqCst), 1);
    // Later lookups are served from the cache.
    registry
        .metadata(DEMO_APP, DEMO_REVISION)
        .await
        .expect("get");
    assert_eq!(store.gets.load(Ordering::SeqCst), 1);
    let stats = registry.stats();
    assert_eq!((stats.lookups, stats.misses), (65, 1));

    // A publish replaces the cached view at once.
    let changed = demo_metadata().replace("\"timeout\":\"3000\"", "\"timeout\":\"9\"");
    registry
        .publish_metadata(DEMO_APP, DEMO_REVISION, &changed)
        .await
        .expect("publish");
    let entry = registry
        .metadata(DEMO_APP, DEMO_REVISION)
        .await
        .expect("get")
        .expect("some");
    assert_eq!(&*entry.record.value, changed);
}

#[tokio::test]
async fn unknown_keys_are_not_cached_and_errors_are_not_remembered() {
    let (registry, store, _) = registry(HOUR);
    for _ in 0..3 {
        assert!(registry
            .metadata("nobody", "1")
            .await
            .expect("get")
            .is_none());
    }
    assert_eq!(store.gets.load(Ordering::SeqCst), 3);

    store.down.store(true, Ordering::SeqCst);
    let err = registry.metadata("nobody", "1").await.expect_err("down");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    let err = registry
        .publish_metadata(DEMO_APP, DEMO_REVISION, &demo_metadata())
        .await
        .expect_err("down");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    store.down.store(false, Ordering::SeqCst);
    registry
        .publish_metadata(DEMO_APP, DEMO_REVISION, &demo_metadata())
        .await
        .expect("publish once the backend is back");
}

#[tokio::test]
async fn bad_publishes_say_what_is_wrong() {
    let (registry, _, _) = registry(HOUR);
    let cases: Vec<(Result<Outcome, Error>, &str)> = vec![
        (
            registry.publish_metadata("", "1", "{}").await,
            "application_name: must not be empty",
        ),
        (
            registry.publish_metadata("a/b", "1", "{}").await,
            "must not contain '/'",
        ),
        (
            registry.publish_metadata("a", &"r".repeat(600), "{}").await,
            "longer than 512",
        ),
        (
            registry.publish_metadata("a", "1\n", "{}").await,
            "control characters",
        ),
        (
            registry
                .publish_metadata(DEMO_APP, "other", &demo_metadata())
                .await,
            "published as revision \"other\"",
        ),
        (
            registry
                .publish_definition("x", "{\"canonicalName\": 5}")
                .await,
            "invalid service_definition",
        ),
        (
            registry.publish_definition("", "{}").await,
            "identifier: must not be empty",
        ),
    ];
    for (result, needle) in cases {
        match result {
            Err(e @ Error::Invalid { .. }) => {
                assert!(e.to_string().contains(needle), "{e} / {needle}")
            }
            other => panic!("{needle}: expected Invalid, got {other:?}"),
        }
    }
    assert_eq!(registry.stats().publishes, 0);
}
