//! gRPC ingress: real gRPC clients (Python `grpcio`, Node `@grpc/grpc-js`) call through the
//! gateway to real gRPC servers — unary and every streaming kind, metadata and trailers, a
//! server error status, a deadline, an unknown service and an unreachable cluster.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use figment::providers::{Format, Yaml};
use figment::Figment;
use serde_json::{json, Value as Json};
use testkit::peers::{free_port, require};

async fn listening(command: tokio::process::Command) -> (u16, tokio::process::Child) {
    testkit::peers::spawn_listening(command).await
}

/// Starts `peers/python/grpc_echo.py server`; its port and the child.
async fn echo_server(python: &std::path::Path) -> (u16, tokio::process::Child) {
    let mut server = tokio::process::Command::new(python);
    server
        .arg(testkit::peers::repo_root().join("peers/python/grpc_echo.py"))
        .arg("server");
    listening(server).await
}

/// `peers/proto/echo.proto` as a descriptor-set file (what `protoc --include_imports
/// --descriptor_set_out` writes), in a fresh directory named after `tag`: (directory, file).
fn echo_descriptor_set(tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    use prost::Message;
    let proto_dir = testkit::peers::repo_root().join("peers/proto");
    let set =
        protox::compile([proto_dir.join("echo.proto")], [&proto_dir]).expect("compile echo.proto");
    let dir = std::env::temp_dir().join(format!("gw-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("echo.pb");
    std::fs::write(&file, set.encode_to_vec()).expect("write descriptor set");
    (dir, file)
}

async fn gateway(clusters: &[(&str, u16)], routes: &[(&str, &str)]) -> SocketAddr {
    let mut yaml = String::from(
        "listeners: [{name: http, address: '127.0.0.1:0'}]\nadmin: {address: ''}\nmetadata: {backend: memory, grpc_address: ''}\nclusters:\n",
    );
    for (name, port) in clusters {
        yaml.push_str(&format!("  - {{name: {name}, protocol: grpc, endpoints: ['127.0.0.1:{port}'], connect_timeout_ms: 300}}\n"));
    }
    yaml.push_str("grpc_routes:\n");
    for (prefix, cluster) in routes {
        yaml.push_str(&format!("  - {{prefix: '{prefix}', cluster: {cluster}}}\n"));
    }
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let running = gateway::app::start(config).await.expect("start");
    let addr = running.listeners[0];
    std::mem::forget(running);
    addr
}

async fn python_client(python: &std::path::Path, target: &str) -> Json {
    let script = testkit::peers::repo_root().join("peers/python/grpc_echo.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .args(["client", target])
        .output()
        .await
        .expect("run client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("{e}: {stdout}{}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_through_the_gateway_every_call_kind() {
    let Some(python) = require("python grpcio", testkit::peers::python_with("grpc_tools")) else {
        return;
    };
    let (port, _server) = echo_server(&python).await;
    let dead = free_port();
    let gw = gateway(
        &[("echo", port), ("gone", dead)],
        &[("/echo.Echo/", "echo"), ("/gone.", "gone")],
    )
    .await;

    let through = python_client(&python, &gw.to_string()).await;
    assert_eq!(through["unary"], "unary:hi");
    assert_eq!(
        through["trailer"], "t-1",
        "request metadata in, trailing metadata out"
    );
    assert_eq!(through["server_stream"], json!(["s0", "s1", "s2"]));
    assert_eq!(through["client_stream"], "a,b,c");
    assert_eq!(through["bidi"], json!(["bidi:x", "bidi:y"]));
    assert_eq!(
        through["fail"],
        json!({"code": "NOT_FOUND", "details": "no thing"})
    );
    assert_eq!(through["deadline"]["code"], "DEADLINE_EXCEEDED");
    // The same calls made directly give the same answers.
    let direct = python_client(&python, &format!("127.0.0.1:{port}")).await;
    assert_eq!(direct, through);

    // A grpc-js unary call to a grpc-js server, through the gateway.
    if let Some(node) = require("node peers", testkit::peers::node_dir()) {
        let mut greeter = tokio::process::Command::new("node");
        greeter
            .arg(node.join("xds_greeter.js"))
            .args(["server", "js"]);
        let (gport, _greeter) = listening(greeter).await;
        let gw2 = gateway(&[("greeter", gport)], &[("/greeter.Greeter/", "greeter")]).await;
        let out = tokio::process::Command::new("node")
            .arg(node.join("xds_greeter.js"))
            .args(["client", &format!("dns:///{gw2}"), "5"])
            .output()
            .await
            .expect("grpc-js client");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let result: Json =
            serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect("json");
        assert_eq!(result["ok"], 5, "{result}");
        assert_eq!(result["answers"]["js"], 5, "{result}");
    }

    // The gateway's own errors, the gRPC way: unknown service, unreachable cluster.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    for (path, code) in [("/nobody.Nowhere/Call", "12"), ("/gone.Service/Call", "14")] {
        let req = http::Request::post(format!("http://{gw}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(&[
                0, 0, 0, 0, 0,
            ])))
            .expect("request");
        let resp = client.request(req).await.expect("response");
        assert_eq!(resp.status(), http::StatusCode::OK);
        assert_eq!(resp.headers()["grpc-status"], code, "{path}");
        assert!(resp.headers().contains_key("grpc-message"));
    }
}

/// HTTP/JSON → gRPC by descriptors: JSON in, the unary call, JSON out; errors by the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_transcoded_to_grpc() {
    let Some(python) = require("python grpcio", testkit::peers::python_with("grpc_tools")) else {
        return;
    };
    let (port, _server) = echo_server(&python).await;
    let (dir, set_file) = echo_descriptor_set("transcode");
    let dead = free_port();
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         descriptor_sets: ['{}']\n\
         clusters:\n  - {{name: echo, protocol: grpc, endpoints: ['127.0.0.1:{port}']}}\n  - {{name: gone, protocol: tri, endpoints: ['127.0.0.1:{dead}'], connect_timeout_ms: 300}}\n\
         grpc_routes:\n  - {{prefix: /echo.Echo/, cluster: echo, timeout_ms: 300}}\n  - {{prefix: /gone/, cluster: gone}}\n",
        set_file.display()
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let running = gateway::app::start(config).await.expect("start");
    let gw = running.listeners[0];
    use common::post;
    assert_eq!(
        post(gw, "/echo.Echo/Unary", r#"{"text": "json"}"#).await,
        (http::StatusCode::OK, json!({"text": "unary:json"}))
    );
    // Empty body: the default message.
    assert_eq!(
        post(gw, "/echo.Echo/Unary", "").await.1,
        json!({"text": "unary:"})
    );
    let (status, body) = post(gw, "/echo.Echo/Fail", r#"{"text": "thing"}"#).await;
    assert_eq!(
        (
            status,
            &body["error"]["message"],
            &body["error"]["grpc_status"]
        ),
        (http::StatusCode::NOT_FOUND, &json!("no thing"), &json!(5))
    );
    let (status, _) = post(gw, "/echo.Echo/Slow", r#"{"count": 2000}"#).await;
    assert_eq!(
        status,
        http::StatusCode::GATEWAY_TIMEOUT,
        "the route's 300 ms"
    );
    let (status, body) = post(gw, "/echo.Echo/Unary", r#"{"text": 5}"#).await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = post(gw, "/echo.Echo/Nope", "{}").await;
    assert_eq!(status, http::StatusCode::NOT_FOUND);
    let (status, body) = post(gw, "/echo.Echo/ServerStream", "{}").await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = post(gw, "/gone/Echo", "{}").await;
    assert_eq!(
        status,
        http::StatusCode::NOT_FOUND,
        "no such service in the descriptors"
    );
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// No descriptor set configured: the gateway learns `echo.Echo` (and the well-known type it
/// imports) from the grpcio server by gRPC server reflection (v1 refused, v1alpha served), then
/// transcodes as with a descriptor set. A service the provider does not know is a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_by_server_reflection() {
    let Some(python) = require(
        "python grpcio",
        testkit::peers::python_with("grpc_reflection"),
    ) else {
        return;
    };
    let (port, _server) = echo_server(&python).await;
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         clusters: [{{name: echo, protocol: grpc, endpoints: ['127.0.0.1:{port}']}}]\n\
         grpc_routes: [{{prefix: /echo., cluster: echo}}]\n"
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let gw = running.listeners[0];
    use common::post;
    let body = r#"{"text": "refl", "at": "2026-11-30T12:00:00.250Z"}"#;
    assert_eq!(
        post(gw, "/echo.Echo/Unary", body).await,
        (
            http::StatusCode::OK,
            json!({"text": "unary:refl", "at": "2026-11-30T12:00:00.250Z"})
        )
    );
    // Learnt once, used again (and the proto3 JSON rules still apply: a wrong type is a 400).
    let (status, body) = post(gw, "/echo.Echo/Unary", r#"{"text": 5}"#).await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = post(gw, "/echo.Nope/Unary", "{}").await;
    assert_eq!(status, http::StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("reflection")),
        "{body}"
    );
    running.shutdown().await;
}

/// A real Dubbo3 Triple provider (the official Python `apache-dubbo`), reached by HTTP/JSON
/// transcoded by descriptors: its answer, and a handler exception as a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dubbo_triple_provider_by_json() {
    let Some(python) = require("python apache-dubbo", testkit::peers::python_with("dubbo")) else {
        return;
    };
    let port = free_port();
    let mut provider = tokio::process::Command::new(&python);
    provider
        .arg(testkit::peers::repo_root().join("peers/python/dubbo_triple_provider.py"))
        .arg(port.to_string())
        .stderr(std::process::Stdio::null());
    let (_, _provider) = listening(provider).await;
    let (dir, set_file) = echo_descriptor_set("triple");
    // One cluster, with one connection shared by the workers (the provider hangs with two
    // connections at once), serves both paths: methods the descriptors describe go as
    // protobuf; the generic route's calls go as JSON.
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         descriptor_sets: ['{}']\n\
         clusters: [{{name: triple, protocol: tri, serialization: json, per_worker_connections: false, endpoints: ['127.0.0.1:{port}']}}]\n\
         grpc_routes: [{{prefix: /echo.Echo/, cluster: triple}}]\n\
         routes: [{{prefix: /py, cluster: triple, timeout_ms: 3000}}]\n",
        set_file.display()
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let gw = running.listeners[0];
    use common::post;
    assert_eq!(
        post(gw, "/echo.Echo/Unary", r#"{"text": "json"}"#).await,
        (http::StatusCode::OK, json!({"text": "triple:json"}))
    );
    // Its handler threw: grpc-status 13, the exception's message, 500.
    let (status, body) = post(gw, "/echo.Echo/Fail", r#"{"text": "thing"}"#).await;
    assert_eq!(status, http::StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "PROVIDER_EXCEPTION");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no thing")),
        "{body}"
    );
    // A method with Python Dubbo's custom JSON serialization: the body is the message, the
    // reply message is the answer, both as they are.
    let (status, body) = post(
        gw,
        "/py/echo.Echo/Greet",
        r#"{"name": "ann", "n": 12345678901234567890}"#,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            http::StatusCode::OK,
            json!({"greeting": "hello ann", "received": {"name": "ann", "n": 12345678901234567890u64}})
        )
    );
    // The provider's deserializer refuses what is not its shape: its exception, 500.
    let (status, body) = post(gw, "/py/echo.Echo/Greet", r#"["ann"]"#).await;
    assert_eq!(status, http::StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("greet takes")),
        "{body}"
    );
    // Malformed JSON never leaves the gateway.
    let (status, _) = post(gw, "/py/echo.Echo/Greet", r#"{"name": "#).await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST);
    // An unknown method: the provider's UNIMPLEMENTED, 404.
    let (status, body) = post(gw, "/py/echo.Echo/Nope", "{}").await;
    assert_eq!(status, http::StatusCode::NOT_FOUND, "{body}");
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// gRPC routes and clusters from xDS: the cluster's `filter_metadata["dubbo"].protocol` makes
/// it a gRPC/Triple cluster; a Dubbo cluster is not reachable by gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_routed_by_xds() {
    let Some(python) = require("python grpcio", testkit::peers::python_with("grpc_tools")) else {
        return;
    };
    let (port, _server) = echo_server(&python).await;
    let cluster = |name: &str, protocol: &str, port: u16| {
        [
            json!({"@type": "envoy.config.cluster.v3.Cluster", "name": name, "type": "STATIC",
                   "metadata": {"filter_metadata": {"dubbo": {"protocol": protocol}}},
                   "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                       {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}),
        ]
    };
    let mut resources = vec![
        common::api_listener(),
        json!({"@type": "envoy.config.route.v3.RouteConfiguration", "name": "r", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/echo.Echo/"}, "route": {"cluster": "echo-tri"}},
            {"match": {"prefix": "/dubbo.Only/"}, "route": {"cluster": "dubbo2"}}
        ]}]}),
    ];
    resources.extend(cluster("echo-tri", "tri", port));
    resources.extend(cluster("dubbo2", "dubbo", free_port()));
    let xds = common::xds_server(resources).await;
    let (dir, set_file) = echo_descriptor_set("xds");
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\nxds: {{server: '{xds}', listener: gateway}}\n\
         descriptor_sets: ['{}']\n",
        set_file.display()
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let gw = running.listeners[0];
    let mut through = json!(null);
    for _ in 0..50 {
        through = python_client(&python, &gw.to_string()).await;
        if through["unary"] == "unary:hi" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(through["unary"], "unary:hi", "{through}");
    assert_eq!(through["server_stream"], json!(["s0", "s1", "s2"]));
    assert_eq!(through["bidi"], json!(["bidi:x", "bidi:y"]));

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(format!("http://{gw}/dubbo.Only/Call"))
        .header("content-type", "application/grpc")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(&[
            0, 0, 0, 0, 0,
        ])))
        .expect("request");
    let resp = client.request(req).await.expect("response");
    assert_eq!(resp.headers()["grpc-status"], "12");
    // HTTP/JSON on the same xDS route: transcoded by the descriptors, as protobuf.
    assert_eq!(
        common::post(gw, "/echo.Echo/Unary", r#"{"text": "xds-json"}"#).await,
        (http::StatusCode::OK, json!({"text": "unary:xds-json"}))
    );
    let (status, body) = common::post(gw, "/echo.Echo/Fail", r#"{"text": "it"}"#).await;
    assert_eq!(
        (status, &body["error"]["message"]),
        (http::StatusCode::NOT_FOUND, &json!("no it"))
    );
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
