//! Pools and clusters against real providers on loopback: lazy connects, reuse, reconnects,
//! backoff for dead endpoints, and how each policy spreads calls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dubbo_codec::dubbo2::{Invocation, Outcome};
use http_bridge::dubbo2::{CallError, Cluster, EndpointPool, LbPolicy, PoolConfig};
use testkit::demo::{DemoService, INTERFACE};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

async fn provider() -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(testkit::provider::serve(
        listener,
        DemoService::default().services(),
        async {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

fn config() -> PoolConfig {
    PoolConfig {
        connections: 2,
        connect_timeout: Duration::from_secs(1),
        heartbeat: None,
        ..PoolConfig::default()
    }
}

async fn hello(pool: &EndpointPool) -> Result<Outcome, CallError> {
    let conn = pool.get(0).await?;
    let inv = Invocation::new(
        INTERFACE,
        "sayHello",
        "Ljava/lang/String;",
        vec!["p".into()],
    );
    Ok(conn.call(inv, Duration::from_secs(2)).await?.outcome)
}

#[tokio::test]
async fn pool_connects_lazily_and_reuses() {
    let (addr, _stop) = provider().await;
    let pool = EndpointPool::new(addr, config());
    let a = pool.get(0).await.expect("first");
    let b = pool.get(0).await.expect("second slot");
    let c = pool.get(0).await.expect("first slot again");
    assert!(!a.same_as(&b), "two slots, two connections");
    assert!(a.same_as(&c), "slots are reused");
    // Another event loop's lane has connections of its own.
    let lanes = EndpointPool::new(
        addr,
        PoolConfig {
            connections: 1,
            loops: 3,
            ..config()
        },
    );
    let one = lanes.get(1).await.expect("lane 1");
    let two = lanes.get(2).await.expect("lane 2");
    assert!(!one.same_as(&two), "each lane its own connection");
    assert!(one.same_as(&lanes.get(1).await.expect("lane 1 again")));
    assert!(one.same_as(&lanes.get(4).await.expect("lane 4 is lane 1")));
    assert_eq!(
        lanes.open_connections(),
        2,
        "lane 0 never asked: never opened"
    );
    assert_eq!(
        hello(&pool).await.expect("call"),
        Outcome::Value("Hello, p".into())
    );
}

#[tokio::test]
async fn dead_endpoint_fails_fast_then_recovers() {
    // A port with nothing behind it.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let pool = EndpointPool::new(dead, config());
    assert!(matches!(pool.get(0).await, Err(CallError::Connect(_))));
    assert!(pool.is_down());
    let err = pool.get(0).await.expect_err("in backoff");
    assert!(err.to_string().contains("is down"), "{err}");

    // The provider comes up on that port; after the backoff the pool connects.
    let listener = TcpListener::bind(dead).await.expect("rebind the same port");
    tokio::spawn(testkit::provider::serve(
        listener,
        DemoService::default().services(),
        std::future::pending(),
    ));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!pool.is_down());
    assert_eq!(
        hello(&pool).await.expect("recovered"),
        Outcome::Value("Hello, p".into())
    );
}

/// A provider that answers one call per connection, then closes it.
async fn one_call_per_connection() -> SocketAddr {
    use bytes::BytesMut;
    use dubbo_codec::dubbo2::{FrameDecoder, Response};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut served = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            served += 1;
            let mut buf = BytesMut::new();
            let frame = loop {
                if let Ok(Some(frame)) = FrameDecoder::default().decode(&mut buf) {
                    break frame;
                }
                if socket.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
            };
            let mut out = BytesMut::new();
            Response::value(frame.header.id, format!("connection {served}").into(), None)
                .encode(&mut out)
                .expect("enc");
            let _ = socket.write_all(&out).await;
        }
    });
    addr
}

#[tokio::test]
async fn closed_connections_are_replaced() {
    let addr = one_call_per_connection().await;
    let pool = EndpointPool::new(
        addr,
        PoolConfig {
            connections: 1,
            ..config()
        },
    );
    let first = pool.get(0).await.expect("open");
    let inv = Invocation::new(
        INTERFACE,
        "sayHello",
        "Ljava/lang/String;",
        vec!["p".into()],
    );
    let answer = first
        .call(inv, Duration::from_secs(2))
        .await
        .expect("first call")
        .outcome;
    assert_eq!(answer, Outcome::Value("connection 1".into()));
    for _ in 0..100 {
        if !first.is_open() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!first.is_open(), "the provider closed it");
    assert_eq!(
        hello(&pool).await.expect("reconnected"),
        Outcome::Value("connection 2".into())
    );
}

#[tokio::test]
async fn round_robin_spreads_evenly_and_skips_dead_endpoints() {
    let (a, _sa) = provider().await;
    let (b, _sb) = provider().await;
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let cluster = Cluster::new("demo", &[a, b, dead], LbPolicy::RoundRobin, &config());
    let mut counts = std::collections::HashMap::new();
    let mut failures = 0;
    for _ in 0..30 {
        let endpoint = cluster.pick().expect("endpoint");
        match hello(&endpoint.pool).await {
            Ok(_) => *counts.entry(endpoint.pool.addr()).or_insert(0) += 1,
            Err(_) => failures += 1,
        }
    }
    assert_eq!(
        failures, 1,
        "the dead endpoint is tried once, then skipped while in backoff"
    );
    assert_eq!(counts.len(), 2);
    assert!(counts.values().all(|&n| n >= 14), "{counts:?}");
}

#[tokio::test]
async fn least_request_prefers_the_idle_endpoint() {
    let (a, _sa) = provider().await;
    let (b, _sb) = provider().await;
    let cluster = Cluster::new("demo", &[a, b], LbPolicy::LeastRequest, &config());
    let busy = Arc::clone(&cluster.endpoints()[0]);
    let _held: Vec<_> = (0..10).map(|_| busy.start_call()).collect();
    let picks_of_busy = (0..200)
        .filter(|_| cluster.pick().expect("endpoint").pool.addr() == a)
        .count();
    // Only when both random choices land on the busy endpoint (p = 1/4) is it picked.
    assert!(
        picks_of_busy < 100,
        "busy endpoint picked {picks_of_busy} of 200 times"
    );
    let random = Cluster::new("r", &[a, b], LbPolicy::Random, &config());
    let picks = (0..200)
        .filter(|_| random.pick().expect("endpoint").pool.addr() == a)
        .count();
    assert!(
        (40..160).contains(&picks),
        "random picked one endpoint {picks} of 200 times"
    );
}

#[tokio::test]
async fn silent_connections_are_dropped_by_heartbeats_all_at_once() {
    // A provider that accepts and reads, and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            held.push(tokio::spawn(async move {
                let mut sink = [0u8; 1024];
                while tokio::io::AsyncReadExt::read(&mut socket, &mut sink)
                    .await
                    .is_ok_and(|n| n > 0)
                {}
            }));
        }
    });
    let period = Duration::from_millis(200);
    let pool = EndpointPool::new(
        addr,
        PoolConfig {
            connections: 20,
            heartbeat: Some(period),
            ..config()
        },
    );
    for _ in 0..20 {
        pool.get(0).await.expect("connected");
    }
    assert_eq!(pool.open_connections(), 20);
    // One round: the tick at 200 ms, then one heartbeat timeout (200 ms) for all twenty, about
    // 0.4 s. One after another they would take 4.2 s.
    let started = std::time::Instant::now();
    while pool.open_connections() > 0 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pool.open_connections(), 0, "silent connections dropped");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "in one round, not one after another: {:?}",
        started.elapsed()
    );
}
