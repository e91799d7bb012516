//! Operations, end to end: `/metrics` read by Prometheus' own OpenMetrics parser (PyPI
//! `prometheus-client`), access log lines, rate limits (429 + Retry-After, per key, exempt
//! routes, gRPC's RESOURCE_EXHAUSTED), circuit breaking (503 at once when open) and `/clusters`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use figment::providers::{Format, Yaml};
use figment::Figment;
use http::{Method, StatusCode};
use serde_json::{json, Value as Json};
use testkit::demo::DemoService;

use common::{post, rust_provider, send, SERVICE};

async fn start(yaml: &str) -> gateway::app::Running {
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    gateway::app::start(config).await.expect("start")
}

async fn admin_get(admin: SocketAddr, path: &str) -> (StatusCode, String, String) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let resp = client
        .get(format!("http://{admin}{path}").parse().expect("uri"))
        .await
        .expect("admin");
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, ctype, String::from_utf8_lossy(&body).into_owned())
}

/// `/metrics` as the Prometheus client's parser reads it: family → {type, samples}.
async fn scrape(python: &std::path::Path, admin: SocketAddr) -> Json {
    let (status, ctype, text) = admin_get(admin, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let mut child = tokio::process::Command::new(python)
        .arg(testkit::peers::repo_root().join("peers/python/parse_metrics.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("parser");
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, text.as_bytes())
        .await
        .expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("parser output");
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The value of the sample `name` whose labels include all of `labels`.
fn sample(metrics: &Json, family: &str, name: &str, labels: &Json) -> Option<f64> {
    metrics[family]["samples"]
        .as_array()?
        .iter()
        .find(|s| {
            s["name"] == name
                && labels
                    .as_object()
                    .is_some_and(|want| want.iter().all(|(k, v)| &s["labels"][k] == v))
        })
        .and_then(|s| s["value"].as_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_access_logs() {
    let Some(python) = testkit::peers::require(
        "python prometheus-client",
        testkit::peers::python_with("prometheus_client"),
    ) else {
        return;
    };
    let provider = rust_provider(DemoService::default()).await;
    let log = std::env::temp_dir().join(format!("gw-access-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: '127.0.0.1:0'}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         access_log: {{enabled: true, path: '{}'}}\n\
         clusters: [{{name: demo, endpoints: ['{provider}']}}]\n\
         routes: [{{application: demo, cluster: demo}}]\n",
        log.display()
    );
    let running = start(&yaml).await;
    let (gw, admin) = (running.listeners[0], running.admin.expect("admin"));
    let hello = format!("/demo/{SERVICE}/sayHello");
    for _ in 0..3 {
        assert_eq!(post(gw, &hello, r#"["m"]"#).await.0, StatusCode::OK);
    }
    assert_eq!(
        post(gw, &format!("/demo/{SERVICE}/nope"), "[]").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post(gw, &format!("/demo/{SERVICE}/add"), "[1,").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(post(gw, "/nowhere", "[]").await.0, StatusCode::NOT_FOUND);

    let metrics = scrape(&python, admin).await;
    let at = |code: &str| json!({"route": "/demo", "cluster": "demo", "code": code});
    assert_eq!(metrics["gateway_requests"]["type"], "counter");
    assert_eq!(
        sample(
            &metrics,
            "gateway_requests",
            "gateway_requests_total",
            &at("2xx")
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "gateway_requests",
            "gateway_requests_total",
            &at("4xx")
        ),
        Some(2.0)
    );
    // No route matched: empty route and cluster labels, bounded whatever the path.
    assert_eq!(
        sample(
            &metrics,
            "gateway_requests",
            "gateway_requests_total",
            &json!({"route": "", "code": "4xx"})
        ),
        Some(1.0)
    );
    let histogram = "gateway_request_duration_seconds";
    assert_eq!(metrics[histogram]["type"], "histogram");
    assert_eq!(
        sample(
            &metrics,
            histogram,
            &format!("{histogram}_count"),
            &at("2xx")
        ),
        Some(3.0)
    );
    let inf = json!({"route": "/demo", "code": "2xx", "le": "+Inf"});
    assert_eq!(
        sample(&metrics, histogram, &format!("{histogram}_bucket"), &inf),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "gateway_upstream_requests_in_flight",
            "gateway_upstream_requests_in_flight",
            &json!({"cluster": "demo"})
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "gateway_upstream_endpoint_up",
            "gateway_upstream_endpoint_up",
            &json!({"cluster": "demo", "endpoint": provider.to_string()})
        ),
        Some(1.0)
    );
    assert!(
        metrics["gateway_metadata_lookups"]["samples"].is_array(),
        "{metrics}"
    );

    // One JSON line per request, written off the request path: wait for the writer.
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Json>(l).expect("a JSON line"))
            .collect();
        if lines.len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lines.len(), 6, "{lines:?}");
    let first = &lines[0];
    assert_eq!(
        (
            &first["method"],
            &first["path"],
            &first["status"],
            &first["route"],
            &first["cluster"]
        ),
        (
            &json!("POST"),
            &json!(hello),
            &json!(200),
            &json!("/demo"),
            &json!("demo")
        )
    );
    assert_eq!(first["upstream"], provider.to_string());
    assert!(
        first["remote"]
            .as_str()
            .is_some_and(|r| r.starts_with("127.0.0.1:")),
        "{first}"
    );
    assert!(
        first["duration_ms"].as_f64().is_some_and(|d| d > 0.0),
        "{first}"
    );
    assert!(
        first["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{first}"
    );
    assert_eq!(lines[5]["status"], 404);
    assert_eq!(lines[5]["route"], Json::Null);
    running.shutdown().await;
    let _ = std::fs::remove_file(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits() {
    let provider = rust_provider(DemoService::default()).await;
    let closed = testkit::peers::free_port();
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         rate_limit: {{requests_per_second: 1, burst: 1, key: global}}\n\
         clusters:\n\
         \x20 - {{name: demo, endpoints: ['{provider}']}}\n\
         \x20 - {{name: grpc, protocol: grpc, endpoints: ['127.0.0.1:{closed}'], connect_timeout_ms: 200}}\n\
         routes:\n\
         \x20 - {{application: demo, cluster: demo, rate_limit: {{requests_per_second: 1, burst: 2, key: 'header:x-api-key'}}}}\n\
         \x20 - {{prefix: /free, cluster: demo, rate_limit: {{requests_per_second: 0}}}}\n\
         \x20 - {{prefix: /other, cluster: demo}}\n\
         grpc_routes: [{{prefix: /echo.Echo/, cluster: grpc, rate_limit: {{requests_per_second: 1, burst: 1, key: global}}}}]\n"
    );
    let running = start(&yaml).await;
    let gw = running.listeners[0];
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let call = |path: String, key: &'static str| {
        let client = client.clone();
        async move {
            let req = http::Request::post(format!("http://{gw}{path}"))
                .header("x-api-key", key)
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    b"[\"r\"]",
                )))
                .expect("request");
            let resp = client.request(req).await.expect("response");
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or("").to_owned());
            let status = resp.status();
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .expect("body")
                .to_bytes();
            (
                status,
                retry,
                serde_json::from_slice::<Json>(&body).unwrap_or(Json::Null),
            )
        }
    };
    let hello = |prefix: &str| format!("{prefix}/{SERVICE}/sayHello");
    // Per API key: a burst of 2, then 429 with Retry-After and a JSON error.
    assert_eq!(call(hello("/demo"), "k1").await.0, StatusCode::OK);
    assert_eq!(call(hello("/demo"), "k1").await.0, StatusCode::OK);
    let (status, retry, body) = call(hello("/demo"), "k1").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        retry
            .as_deref()
            .and_then(|r| r.parse::<u64>().ok())
            .is_some_and(|r| r >= 1),
        "{retry:?}"
    );
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    // Another key has its own bucket.
    assert_eq!(call(hello("/demo"), "k2").await.0, StatusCode::OK);
    // An exempt route, whatever the default says.
    for _ in 0..5 {
        assert_eq!(call(hello("/free"), "k1").await.0, StatusCode::OK);
    }
    // A route without its own limit gets the default (one global bucket of 1).
    assert_eq!(call(hello("/other"), "k1").await.0, StatusCode::OK);
    assert_eq!(
        call(hello("/other"), "k9").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );

    // gRPC callers get RESOURCE_EXHAUSTED (the first call passes the limit and finds no
    // provider: UNAVAILABLE).
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let mut codes = Vec::new();
    for _ in 0..2 {
        let req = http::Request::post(format!("http://{gw}/echo.Echo/Unary"))
            .header("content-type", "application/grpc")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(&[
                0, 0, 0, 0, 0,
            ])))
            .expect("request");
        let resp = h2.request(req).await.expect("response");
        codes.push(
            resp.headers()["grpc-status"]
                .to_str()
                .expect("status")
                .to_owned(),
        );
    }
    assert_eq!(codes, ["14", "8"]);

    // A reload with the same limits keeps the buckets: a spent key stays spent.
    assert_eq!(call(hello("/demo"), "k3").await.0, StatusCode::OK);
    assert_eq!(call(hello("/demo"), "k3").await.0, StatusCode::OK);
    assert_eq!(
        call(hello("/demo"), "k3").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let same = yaml.replace(
        "{prefix: /other, cluster: demo}",
        "{prefix: /other, cluster: demo, timeout_ms: 4000}",
    );
    let same = gateway::config::from_figment(Figment::new().merge(Yaml::string(&same)), "test")
        .expect("valid");
    running.reload(same).expect("reload");
    assert_eq!(
        call(hello("/demo"), "k3").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_and_clusters() {
    let provider = rust_provider(DemoService::slow(Duration::from_millis(600))).await;
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: '127.0.0.1:0'}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         clusters: [{{name: slow, application: slow-app, endpoints: ['{provider}'], timeout_ms: 5000, circuit_breaker: {{max_requests: 2}}}}]\n"
    );
    let running = start(&yaml).await;
    let (gw, admin) = (running.listeners[0], running.admin.expect("admin"));
    let hello = format!("/slow-app/{SERVICE}/sayHello");
    let calls: Vec<_> = (0..2)
        .map(|_| {
            let hello = hello.clone();
            tokio::spawn(async move { post(gw, &hello, r#"["a"]"#).await })
        })
        .collect();
    // Wait until both are in flight, as /clusters shows.
    let mut clusters = Json::Null;
    for _ in 0..100 {
        clusters = serde_json::from_str(&admin_get(admin, "/clusters").await.2).expect("json");
        if clusters["clusters"][0]["circuit_breaker"]["in_flight"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let slow = &clusters["clusters"][0];
    assert_eq!(slow["name"], "slow");
    assert_eq!(slow["circuit_breaker"]["in_flight"], 2, "{clusters}");
    assert_eq!(slow["circuit_breaker"]["max_requests"], 2);
    assert_eq!(slow["circuit_breaker"]["open"], true);
    assert_eq!(slow["endpoints"][0]["address"], provider.to_string());
    assert_eq!(slow["endpoints"][0]["in_flight"], 2);
    assert_eq!(slow["endpoints"][0]["identity"]["application"], "slow-app");
    // A third call is answered at once.
    let (status, body) = post(gw, &hello, r#"["b"]"#).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "CIRCUIT_OPEN");
    for call in calls {
        assert_eq!(call.await.expect("task").0, StatusCode::OK);
    }
    // Closed again once they are done.
    assert_eq!(post(gw, &hello, r#"["c"]"#).await.0, StatusCode::OK);
    let (_, _, text) = admin_get(admin, "/metrics").await;
    assert!(
        text.contains("gateway_circuit_breaker_rejections_total{cluster=\"slow\"} 1"),
        "{text}"
    );
    let (status, _) = send(gw, Method::GET, "/x", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A reload with new thresholds: the same breaker (its counts go on) takes them.
    let reloaded = gateway::config::from_figment(
        Figment::new().merge(Yaml::string(
            &yaml.replace("max_requests: 2", "max_requests: 5"),
        )),
        "test",
    )
    .expect("valid");
    running.reload(reloaded).expect("reload");
    let clusters: Json =
        serde_json::from_str(&admin_get(admin, "/clusters").await.2).expect("json");
    assert_eq!(
        clusters["clusters"][0]["circuit_breaker"]["max_requests"],
        5
    );
    // One that needs a restart is refused and changes nothing.
    let moved = gateway::config::from_figment(
        Figment::new().merge(Yaml::string(
            &yaml.replace("admin: {address: '127.0.0.1:0'}", "admin: {address: ''}"),
        )),
        "test",
    )
    .expect("valid");
    let err = running.reload(moved).expect_err("admin changed");
    assert!(err.contains("admin changed"), "{err}");
    let clusters: Json =
        serde_json::from_str(&admin_get(admin, "/clusters").await.2).expect("json");
    assert_eq!(
        clusters["clusters"][0]["circuit_breaker"]["max_requests"],
        5
    );
    running.shutdown().await;
}

/// `/ready` is true only when the metadata store answers: an etcd nobody listens on keeps the
/// gateway unready (while it serves what needs no metadata).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_for_the_metadata_store() {
    let closed = testkit::peers::free_port();
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: '127.0.0.1:0'}}\n\
         metadata: {{backend: etcd, grpc_address: '', etcd: {{endpoints: ['http://127.0.0.1:{closed}'], timeout_ms: 300}}}}\n"
    );
    let running = start(&yaml).await;
    let (status, _, body) = admin_get(running.admin.expect("admin"), "/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("the metadata store"), "{body}");
    running.shutdown().await;

    let yaml =
        "listeners: [{name: http, address: '127.0.0.1:0'}]\nadmin: {address: '127.0.0.1:0'}\n\
                metadata: {backend: memory, grpc_address: ''}\n";
    let running = start(yaml).await;
    let (status, _, body) = admin_get(running.admin.expect("admin"), "/ready").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"ready":true}"#)
    );
    running.shutdown().await;
}

/// Outlier detection from xDS: an endpoint that keeps timing out is ejected after
/// `consecutive_5xx` failures, traffic goes to the rest, and `/clusters` and `/metrics` show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outlier_ejection_from_xds() {
    let good = rust_provider(DemoService::default()).await;
    let bad = rust_provider(DemoService::slow(Duration::from_secs(2))).await;
    let endpoint = |addr: SocketAddr| json!({"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": addr.port()}}}});
    let resources = vec![
        common::api_listener(),
        json!({"@type": "envoy.config.route.v3.RouteConfiguration", "name": "r", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "route": {"cluster": "demo", "timeout": "0.2s"}}
        ]}]}),
        json!({"@type": "envoy.config.cluster.v3.Cluster", "name": "demo", "type": "STATIC", "lb_policy": "ROUND_ROBIN",
               "outlier_detection": {"consecutive_5xx": 2, "base_ejection_time": "30s", "max_ejection_percent": 50},
               "load_assignment": {"cluster_name": "demo", "endpoints": [{"lb_endpoints": [endpoint(good), endpoint(bad)]}]}}),
    ];
    let xds = common::xds_server(resources).await;
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: '127.0.0.1:0'}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\nxds: {{server: '{xds}', listener: gateway}}\n"
    );
    let running = start(&yaml).await;
    let (gw, admin) = (running.listeners[0], running.admin.expect("admin"));
    let hello = format!("/{SERVICE}/sayHello");
    for _ in 0..50 {
        if admin_get(admin, "/ready").await.0 == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Round robin: every other call reaches the slow endpoint and times out.
    let mut timeouts = 0;
    for _ in 0..4 {
        if post(gw, &hello, r#"["x"]"#).await.0 == StatusCode::GATEWAY_TIMEOUT {
            timeouts += 1;
        }
    }
    assert_eq!(timeouts, 2);
    for _ in 0..10 {
        assert_eq!(
            post(gw, &hello, r#"["x"]"#).await.0,
            StatusCode::OK,
            "ejected: only the good endpoint"
        );
    }
    let clusters: Json =
        serde_json::from_str(&admin_get(admin, "/clusters").await.2).expect("json");
    let demo = clusters["clusters"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "demo"))
        .cloned()
        .unwrap_or_default();
    let state = |addr: SocketAddr| {
        demo["endpoints"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["address"] == addr.to_string()))
            .map(|e| (e["ejected"].clone(), e["usable"].clone()))
    };
    assert_eq!(state(bad), Some((json!(true), json!(false))), "{demo}");
    assert_eq!(state(good), Some((json!(false), json!(true))), "{demo}");
    let (_, _, text) = admin_get(admin, "/metrics").await;
    assert!(
        text.contains("gateway_upstream_ejections_total{cluster=\"demo\"} 1"),
        "{text}"
    );
    running.shutdown().await;
}
