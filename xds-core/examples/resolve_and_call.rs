//! Proxyless service mesh in a few lines: resolve a service through xDS alone and call it.
//!
//! Run it self-contained (it starts a tiny TCP "greeter" and a snapshot ADS server describing
//! it):
//!
//!     cargo run -p xds-core --example resolve_and_call
//!
//! or against a real control plane, e.g. `gateway control-plane --snapshot FILE`, naming the
//! Listener to resolve and a path:
//!
//!     cargo run -p xds-core --example resolve_and_call -- 127.0.0.1:18000 gateway /hello
//!
//! The steps are the ones any Rust service would take: bootstrap (who am I, where is the
//! control plane), subscribe to the Listener by name, wait until ready, route the request,
//! pick an endpoint with the cluster's load balancer, connect.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xds_core::bootstrap::{Bootstrap, Node};
use xds_core::client::{ClientOptions, Subscribe, XdsClient};
use xds_core::lb::{LoadBalancer, Stateless};
use xds_core::model::{Action, RouteSource};
use xds_core::router::Request;
use xds_core::server::SnapshotServer;
use xds_core::snapshot::Snapshot;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (control_plane, listener_name, path) = match args.as_slice() {
        [cp, listener, path] => (cp.clone(), listener.clone(), path.clone()),
        _ => (
            self_contained().await?,
            "greeter".to_owned(),
            "/hello".to_owned(),
        ),
    };

    // 1. Bootstrap: the caller says who it is; nothing is read from the environment.
    let node = Node {
        id: "example-client".into(),
        cluster: "examples".into(),
        ..Default::default()
    };
    let options = ClientOptions {
        listeners: Subscribe::Names(vec![listener_name.clone()]),
        ..Default::default()
    };
    let client = XdsClient::start(Bootstrap::new(control_plane.clone(), node), options)?;
    if !client.ready(Duration::from_secs(10)).await {
        return Err(format!("no xDS resources from {control_plane} within 10 s").into());
    }
    let state = client.state();

    // 2. The Listener's routes (by RDS name or inline).
    let listener = state
        .listeners
        .get(&listener_name)
        .ok_or("no such listener")?;
    let routes = match &listener
        .resource
        .http
        .first()
        .ok_or("not an HTTP listener")?
        .routes
    {
        RouteSource::Rds(name) => state
            .routes
            .get(name)
            .ok_or("routes not received")?
            .resource
            .clone(),
        RouteSource::Inline(rc) => std::sync::Arc::new(rc.clone()),
    };

    // 3. Route the request, pick the cluster, then an endpoint.
    let headers = http::HeaderMap::new();
    let random = fastrand::u64(..);
    let request = Request {
        method: "GET",
        authority: &listener_name,
        path: &path,
        headers: &headers,
        random,
    };
    let decision = routes.route(&request).ok_or("no route matches")?;
    let Action::Forward(forward) = &decision.route.action else {
        return Err("the route does not forward".into());
    };
    let cluster_name = forward.pick_cluster(&headers, random).ok_or("no cluster")?;
    let cluster = state.clusters.get(cluster_name).ok_or("unknown cluster")?;
    let endpoints = state.endpoints_of(cluster_name).ok_or("no endpoints")?;
    let balancer = LoadBalancer::new(cluster.resource.lb_policy, endpoints);
    let index = balancer
        .pick(&mut fastrand::Rng::new(), None, &Stateless)
        .ok_or("no endpoint")?;
    let endpoint = &balancer.endpoints()[index];
    let addr = endpoint
        .address
        .socket_addr()
        .ok_or("not a socket address")?;
    println!(
        "{path} → route {:?} → cluster {cluster_name} → {addr}",
        decision.route.name
    );

    // 4. Call it (here: a line-based TCP greeter).
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(b"world\n").await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    println!("{}", reply.trim());
    Ok(())
}

/// A TCP greeter and a control plane describing it; returns the control plane's address.
async fn self_contained() -> Result<String, Box<dyn std::error::Error>> {
    let greeter = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = greeter.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = greeter.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let name = String::from_utf8_lossy(&buf[..n]).trim().to_owned();
                let _ = s.write_all(format!("Hello, {name}\n").as_bytes()).await;
            });
        }
    });
    let hcm = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
    let snapshot = Snapshot::from_document(&json!({"version": "1", "resources": [
        {"@type": "envoy.config.listener.v3.Listener", "name": "greeter", "api_listener": {"api_listener": {
            "@type": hcm, "stat_prefix": "greeter", "rds": {"route_config_name": "greeter", "config_source": {"ads": {}}}}}},
        {"@type": "envoy.config.route.v3.RouteConfiguration", "name": "greeter", "virtual_hosts": [
            {"name": "greeter", "domains": ["greeter"], "routes": [{"name": "hello", "match": {"prefix": "/hello"}, "route": {"cluster": "greeter"}}]}]},
        {"@type": "envoy.config.cluster.v3.Cluster", "name": "greeter", "type": "EDS", "eds_cluster_config": {"eds_config": {"ads": {}}}},
        {"@type": "envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name": "greeter", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}
    ]}))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(SnapshotServer::new(snapshot).serve(listener, std::future::pending()));
    Ok(addr.to_string())
}
