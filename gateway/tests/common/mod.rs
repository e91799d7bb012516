//! Helpers shared by the gateway's end-to-end suites: a Rust provider, a gateway built from a
//! YAML snippet, and a small HTTP client.
#![allow(dead_code)] // each suite uses a different subset

use std::net::SocketAddr;

use bytes::Bytes;
use figment::providers::{Format, Yaml};
use figment::Figment;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value as Json};
use testkit::demo::DemoService;
use tokio::net::TcpListener;

pub const SERVICE: &str = "org.apache.dubbo.demo.DemoService";

pub async fn rust_provider(service: DemoService) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(testkit::provider::serve(
        listener,
        service.services(),
        std::future::pending(),
    ));
    addr
}

/// A gateway with one generic route per cluster (`/{cluster}/{interface}/{method}`).
pub async fn gateway(clusters: &[(&str, SocketAddr)], extra: &str) -> SocketAddr {
    let mut yaml = String::from("listeners: [{name: http, address: '127.0.0.1:0'}]\nadmin: {address: ''}\nmetadata: {backend: memory, grpc_address: ''}\nlimits: {max_body_bytes: 4096}\nclusters:\n");
    for (name, addr) in clusters {
        yaml.push_str(&format!("  - {{name: {name}, endpoints: ['{addr}'], timeout_ms: 300, connect_timeout_ms: 300}}\n"));
    }
    yaml.push_str("routes:\n");
    for (name, _) in clusters {
        yaml.push_str(&format!("  - {{application: {name}, cluster: {name}}}\n"));
    }
    yaml.push_str(extra);
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let running = gateway::app::start(config).await.expect("start");
    let addr = running.listeners[0];
    std::mem::forget(running);
    addr
}

pub async fn send(gw: SocketAddr, method: Method, path: &str, body: &str) -> (StatusCode, Json) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{gw}{path}"))
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let resp = client.request(req).await.expect("response");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes))),
    )
}

pub async fn post(gw: SocketAddr, path: &str, body: &str) -> (StatusCode, Json) {
    send(gw, Method::POST, path, body).await
}

/// An API listener named `gateway` whose routes come by RDS name `r`: what the gateway's xDS
/// config (`listener: gateway`) subscribes to.
pub fn api_listener() -> Json {
    json!({"@type": "envoy.config.listener.v3.Listener", "name": "gateway", "api_listener": {"api_listener": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "gw", "rds": {"route_config_name": "r", "config_source": {"ads": {}}}}}})
}

/// A snapshot ADS server (xds-core's) serving `resources` at version 1; its address.
pub async fn xds_server(resources: Vec<Json>) -> SocketAddr {
    let snapshot = xds_core::snapshot::Snapshot::from_document(
        &json!({"version": "1", "resources": resources}),
    )
    .expect("valid snapshot");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        xds_core::server::SnapshotServer::new(snapshot).serve(listener, std::future::pending()),
    );
    addr
}

/// curl's answer: (status, headers text, body).
fn curl_blocking(args: &[&str]) -> (u16, String, String) {
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-D",
            "-",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (rest, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
    let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    (
        code.trim().parse().unwrap_or(0),
        head.to_owned(),
        body.to_owned(),
    )
}

/// [`curl_blocking`] off the async runtime.
pub async fn curl(args: Vec<String>) -> (u16, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl_blocking(&args)
    })
    .await
    .expect("curl")
}
