//! The gateway routing by xDS: routes, clusters and endpoints from a control plane (our
//! snapshot server, state of the world and delta), calls to Dubbo providers through them; route
//! timeouts and retries honoured, weighted clusters splitting traffic, an update applied under
//! load without a failed request, the resources in force in the config dump, and the control
//! plane going away without traffic noticing.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use figment::providers::{Format, Yaml};
use figment::Figment;
use http::{Method, StatusCode};
use serde_json::{json, Value as Json};
use testkit::demo::DemoService;
use xds_core::snapshot::Snapshot;

use common::{post, rust_provider, send, SERVICE};

const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

fn cluster(name: &str, endpoints: &[SocketAddr]) -> [Json; 2] {
    let lb: Vec<Json> = endpoints
        .iter()
        .map(|a| json!({"endpoint": {"address": {"socket_address": {"address": a.ip().to_string(), "port_value": a.port()}}},
            "metadata": {"filter_metadata": {"dubbo": {"application": "shop", "revision": "r1"}}}}))
        .collect();
    [
        json!({"@type": "envoy.config.cluster.v3.Cluster", "name": name, "type": "EDS", "connect_timeout": "0.5s",
               "eds_cluster_config": {"eds_config": {"ads": {}}}}),
        json!({"@type": "envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name": name,
               "endpoints": [{"lb_endpoints": lb}]}),
    ]
}

struct Backends {
    a: SocketAddr,
    b: SocketAddr,
    slow: SocketAddr,
}

fn document(version: &str, demo: SocketAddr, be: &Backends) -> Json {
    let route = |prefix: &str, action: Json, dubbo: Option<Json>| {
        let mut r = json!({"name": prefix, "match": {"prefix": prefix}, "route": action});
        if let Some(d) = dubbo {
            r["metadata"] = json!({"filter_metadata": {"dubbo": d}});
        }
        r
    };
    let mut resources = vec![
        json!({"@type": "envoy.config.listener.v3.Listener", "name": "gateway", "api_listener": {"api_listener": {
            "@type": HCM, "stat_prefix": "gw", "rds": {"route_config_name": "gw-routes", "config_source": {"ads": {}}}}}}),
        json!({"@type": "envoy.config.route.v3.RouteConfiguration", "name": "gw-routes", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            route("/hello", json!({"cluster": "demo"}), Some(json!({"interface": SERVICE, "method": "sayHello"}))),
            route("/slow/", json!({"cluster": "slow", "timeout": "0.2s"}), Some(json!({"interface": SERVICE}))),
            route("/no-retry/", json!({"cluster": "mixed", "timeout": "0.2s"}), Some(json!({"interface": SERVICE}))),
            route("/retry/", json!({"cluster": "mixed", "timeout": "2s", "retry_policy": {"retry_on": "5xx", "num_retries": 2, "per_try_timeout": "0.2s"}}), Some(json!({"interface": SERVICE}))),
            route("/split/", json!({"weighted_clusters": {"clusters": [{"name": "only-a", "weight": 3}, {"name": "only-b", "weight": 1}]}}), Some(json!({"interface": SERVICE}))),
            route("/rpc/", json!({"cluster": "demo"}), None),
        ]}]}),
    ];
    for (name, endpoints) in [
        ("demo", vec![demo]),
        ("slow", vec![be.slow]),
        ("mixed", vec![be.slow, be.a]),
        ("only-a", vec![be.a]),
        ("only-b", vec![be.b]),
    ] {
        resources.extend(cluster(name, &endpoints));
    }
    for r in &mut resources {
        if r["@type"] == "envoy.config.cluster.v3.Cluster" && r["name"] == "mixed" {
            r["lb_policy"] = json!("ROUND_ROBIN");
        }
    }
    json!({"version": version, "resources": resources})
}

/// `gateway control-plane` as its own process, so that it can really go away.
struct ControlPlane {
    child: std::process::Child,
    addr: SocketAddr,
    file: std::path::PathBuf,
}

impl ControlPlane {
    fn start(doc: &Json, tag: &str) -> ControlPlane {
        let dir = std::env::temp_dir().join(format!("gw-xds-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("snapshot.json");
        // Validated here too, so a mistake in the test shows as such.
        Snapshot::from_document(doc).expect("valid snapshot");
        std::fs::write(&file, doc.to_string()).expect("write");
        let port = testkit::peers::free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
            .args(["control-plane", "--snapshot"])
            .arg(&file)
            .args(["--listen", &addr.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn control plane");
        ControlPlane { child, addr, file }
    }

    fn update(&self, doc: &Json) {
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, doc.to_string()).expect("write");
        std::fs::rename(&tmp, &self.file).expect("rename");
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn gateway(xds: SocketAddr, delta: bool) -> (SocketAddr, SocketAddr) {
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\n\
         admin: {{address: '127.0.0.1:0'}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         xds: {{server: '{xds}', listener: gateway, delta: {delta}, resource_timeout_ms: 2000}}\n"
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let addrs = (running.listeners[0], running.admin.expect("admin"));
    std::mem::forget(running);
    addrs
}

async fn routes_by_xds(delta: bool) {
    let be = Backends {
        a: rust_provider(DemoService::named("a")).await,
        b: rust_provider(DemoService::named("b")).await,
        slow: rust_provider(DemoService::slow(Duration::from_millis(600))).await,
    };
    let mut cp = ControlPlane::start(
        &document("v1", be.a, &be),
        if delta { "delta" } else { "sotw" },
    );
    let (gw, admin) = gateway(cp.addr, delta).await;

    let mut ready = false;
    for _ in 0..100 {
        if send(admin, Method::GET, "/ready", "").await.0 == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the gateway got its xDS resources");

    assert_eq!(
        post(gw, "/hello", r#"["xds"]"#).await,
        (StatusCode::OK, json!("Hello, xds"))
    );
    assert_eq!(
        post(gw, &format!("/rpc/{SERVICE}/add"), "[2, 3]").await,
        (StatusCode::OK, json!(5))
    );
    assert_eq!(post(gw, "/nowhere", "[]").await.0, StatusCode::NOT_FOUND);

    // The route's timeout (0.2 s), not the provider's 0.6 s.
    let started = std::time::Instant::now();
    let (status, body) = post(gw, "/slow/sayHello", r#"["x"]"#).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(started.elapsed() < Duration::from_millis(550));

    // Round robin over a slow and a fast endpoint: without retries every other call times out;
    // with `retry_on: 5xx` and a per-try timeout, every call succeeds.
    let mut failed = 0;
    for _ in 0..10 {
        if post(gw, "/no-retry/whoami", "[]").await.0 != StatusCode::OK {
            failed += 1;
        }
    }
    assert!(failed >= 3, "{failed} of 10 failed without retries");
    for _ in 0..10 {
        let (status, body) = post(gw, "/retry/whoami", "[]").await;
        assert_eq!((status, body), (StatusCode::OK, json!("a")));
    }

    // Weighted clusters, 3:1.
    let mut a = 0;
    for _ in 0..400 {
        let (_, who) = post(gw, "/split/whoami", "[]").await;
        if who == "a" {
            a += 1;
        }
    }
    assert!((260..340).contains(&a), "a got {a} of 400 at weight 3:1");

    // An update under load: "demo" moves from a to b; no request fails.
    let load = tokio::spawn(async move {
        let (mut ok, mut failed, mut from_b) = (0, 0, 0);
        let until = std::time::Instant::now() + Duration::from_secs(8);
        while std::time::Instant::now() < until {
            match post(gw, &format!("/rpc/{SERVICE}/whoami"), "[]").await {
                (StatusCode::OK, who) => {
                    ok += 1;
                    if who == "b" {
                        from_b += 1;
                        if from_b > 50 {
                            break;
                        }
                    }
                }
                _ => failed += 1,
            }
        }
        (ok, failed, from_b)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    cp.update(&document("v2", be.b, &be));
    let (ok, failed, from_b) = load.await.expect("load");
    assert_eq!(failed, 0, "{ok} ok");
    assert!(from_b > 50, "the update took effect");
    let (_, dump) = send(admin, Method::GET, "/config_dump", "").await;
    assert_eq!(
        dump["xds"]["routes"]["gw-routes"],
        if delta {
            dump["xds"]["routes"]["gw-routes"].clone()
        } else {
            json!("v2")
        }
    );
    assert_eq!(
        dump["xds"]["endpoints"]["demo"]["endpoints"],
        json!([be.b.to_string()])
    );
    assert_eq!(dump["xds"]["nacks"], 0);

    // The control plane goes away: traffic goes on with the last configuration.
    let _ = cp.child.kill();
    let _ = cp.child.wait();
    for _ in 0..20 {
        assert_eq!(
            post(gw, "/hello", r#"["still"]"#).await,
            (StatusCode::OK, json!("Hello, still"))
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut disconnected = false;
    for _ in 0..100 {
        let (_, dump) = send(admin, Method::GET, "/config_dump", "").await;
        if dump["xds"]["connected"] == false {
            disconnected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(disconnected, "the dump says the control plane is gone");
    assert_eq!(post(gw, "/hello", r#"["after"]"#).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_state_of_the_world_xds() {
    routes_by_xds(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_delta_xds() {
    routes_by_xds(true).await;
}

/// The example pair in configs/ (documented in docs/xds.md) works, on free ports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_example_pair_works() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let provider = rust_provider(DemoService::default()).await;
    let snapshot = std::fs::read_to_string(root.join("configs/xds/snapshot.yaml"))
        .expect("snapshot")
        .replace(
            "port_value: 20880",
            &format!("port_value: {}", provider.port()),
        );
    let doc = xds_core::json::parse_text(&snapshot).expect("yaml");
    let cp = ControlPlane::start(&doc, "example");
    let yaml = std::fs::read_to_string(root.join("configs/xds-gateway.yaml"))
        .expect("gateway config")
        .replace("127.0.0.1:18000", &cp.addr.to_string())
        .replace("127.0.0.1:8081", "127.0.0.1:0")
        .replace("127.0.0.1:9911", "127.0.0.1:0")
        .replace("127.0.0.1:9912", "127.0.0.1:0");
    let config = gateway::config::from_figment(
        Figment::new().merge(Yaml::string(&yaml)),
        "xds-gateway.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let gw = running.listeners[0];
    let mut answer = (StatusCode::SERVICE_UNAVAILABLE, json!(null));
    for _ in 0..100 {
        answer = post(gw, "/hello", r#"["xds"]"#).await;
        if answer.0 == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer, (StatusCode::OK, json!("Hello, xds")));
    assert_eq!(
        post(gw, &format!("/rpc/{SERVICE}/add"), "[2, 3]").await,
        (StatusCode::OK, json!(5))
    );
    running.shutdown().await;
}

/// STRICT_DNS clusters are resolved; ring-hash clusters keep a key on one endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_clusters_and_hash_policies() {
    let a = rust_provider(DemoService::named("a")).await;
    let b = rust_provider(DemoService::named("b")).await;
    let endpoint = |host: &str, port: u16| json!({"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}});
    let doc = json!({"version": "1", "resources": [
        {"@type": "envoy.config.listener.v3.Listener", "name": "gateway", "api_listener": {"api_listener": {
            "@type": HCM, "stat_prefix": "gw", "rds": {"route_config_name": "r", "config_source": {"ads": {}}}}}},
        {"@type": "envoy.config.route.v3.RouteConfiguration", "name": "r", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/dns/"}, "route": {"cluster": "by-name"}, "metadata": {"filter_metadata": {"dubbo": {"interface": SERVICE}}}},
            {"match": {"prefix": "/sticky/"}, "route": {"cluster": "hashed", "hash_policy": [{"header": {"header_name": "x-user"}}]},
             "metadata": {"filter_metadata": {"dubbo": {"interface": SERVICE}}}}
        ]}]},
        {"@type": "envoy.config.cluster.v3.Cluster", "name": "by-name", "type": "STRICT_DNS", "connect_timeout": "0.5s",
         "load_assignment": {"cluster_name": "by-name", "endpoints": [{"lb_endpoints": [endpoint("localhost", a.port())]}]}},
        {"@type": "envoy.config.cluster.v3.Cluster", "name": "hashed", "type": "STATIC", "lb_policy": "RING_HASH",
         "load_assignment": {"cluster_name": "hashed", "endpoints": [{"lb_endpoints": [endpoint("127.0.0.1", a.port()), endpoint("127.0.0.1", b.port())]}]}}
    ]});
    let cp = ControlPlane::start(&doc, "dns");
    let (gw, _) = gateway(cp.addr, false).await;
    let mut answer = (StatusCode::SERVICE_UNAVAILABLE, json!(null));
    for _ in 0..100 {
        answer = post(gw, "/dns/whoami", "[]").await;
        if answer.0 == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer, (StatusCode::OK, json!("a")), "localhost resolved");

    let whoami = |user: String| async move {
        let req = http::Request::post(format!("http://{gw}/sticky/whoami"))
            .header("x-user", user)
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"[]")))
            .expect("request");
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let resp = client.request(req).await.expect("response");
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    };
    let mut seen = std::collections::HashSet::new();
    for user in 0..20 {
        let first = whoami(format!("user{user}")).await;
        for _ in 0..3 {
            assert_eq!(
                whoami(format!("user{user}")).await,
                first,
                "user{user} moved"
            );
        }
        seen.insert(first);
    }
    assert_eq!(seen.len(), 2, "keys spread over both endpoints: {seen:?}");
}
