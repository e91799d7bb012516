//! The ADS client and the snapshot server, on real sockets, both transports: the client gets
//! everything and is ready; pushes arrive; a bad update is NACKed with the resource named and
//! the last good state stays; and against a scripted server, the exact requests: ACK with
//! version and nonce, NACK with error_detail and the previous version, and the resubscription
//! after a reconnect.

use std::net::SocketAddr;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, Mutex};
use tokio_stream::wrappers::ReceiverStream;
use xds_core::bootstrap::{Bootstrap, Node};
use xds_core::client::{ClientOptions, XdsClient};
use xds_core::json::to_protobuf;
use xds_core::router::Request;
use xds_core::server::SnapshotServer;
use xds_core::snapshot::{Snapshot, CLUSTER, ENDPOINTS, LISTENER, ROUTE};

const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

fn document(version: &str, cluster: &str, endpoint_port: u16) -> Json {
    json!({"version": version, "resources": [
        {"@type": LISTENER, "name": "http", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}},
         "filter_chains": [{"filters": [{"name": "hcm", "typed_config": {"@type": HCM, "stat_prefix": "http",
            "rds": {"route_config_name": "routes", "config_source": {"ads": {}}}}}]}]},
        {"@type": ROUTE, "name": "routes", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "route": {"cluster": cluster}}]}]},
        {"@type": CLUSTER, "name": cluster, "type": "EDS", "eds_cluster_config": {"eds_config": {"ads": {}}}},
        {"@type": ENDPOINTS, "cluster_name": cluster, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": endpoint_port}}},
             "metadata": {"filter_metadata": {"dubbo": {"application": "shop", "revision": "r1"}}}}]}]}
    ]})
}

async fn serve(server: SnapshotServer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(server.serve(listener, std::future::pending()));
    addr
}

fn node(id: &str) -> Node {
    Node {
        id: id.into(),
        cluster: "test".into(),
        ..Default::default()
    }
}

fn options(delta: bool) -> ClientOptions {
    ClientOptions {
        delta,
        resource_timeout: Duration::from_millis(500),
        backoff: (Duration::from_millis(20), Duration::from_millis(200)),
        ..Default::default()
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not within 5 s: {what}");
}

async fn client_against_the_snapshot_server(delta: bool) {
    let server = SnapshotServer::new(
        Snapshot::from_document(&document("v1", "blue", 20880)).expect("valid"),
    );
    let addr = serve(server.clone()).await;
    let client = XdsClient::start(Bootstrap::new(addr.to_string(), node("n1")), options(delta))
        .expect("start");
    assert!(client.ready(Duration::from_secs(5)).await, "ready");
    let state = client.state();
    assert!(state.connected);
    let listener = &state.listeners["http"].resource;
    assert_eq!(listener.rds_names().collect::<Vec<_>>(), ["routes"]);
    let headers = http::HeaderMap::new();
    let decision = state.routes["routes"]
        .resource
        .route(&Request {
            method: "GET",
            authority: "x",
            path: "/a",
            headers: &headers,
            random: 0,
        })
        .expect("routed");
    let xds_core::model::Action::Forward(f) = &decision.route.action else {
        panic!("forward")
    };
    let cluster = f.pick_cluster(&headers, 0).expect("cluster");
    assert_eq!(cluster, "blue");
    let endpoints = state.endpoints_of(cluster).expect("endpoints");
    let e = endpoints.all().next().expect("endpoint");
    assert_eq!(e.address.port, 20880);
    assert_eq!(
        e.dubbo.as_ref().map(|d| d.revision.as_deref()),
        Some(Some("r1"))
    );

    // A typed watch sees the next push; the old cluster's endpoints go with it.
    let mut watch = client.watch_route("routes");
    assert!(watch.next().await.expect("open").is_some());
    server.set(Snapshot::from_document(&document("v2", "green", 20881)).expect("valid"));
    let routes = watch.next().await.expect("open").expect("present");
    assert!(format!("{routes:?}").contains("green"));
    eventually("green endpoints, blue gone", || {
        let s = client.state();
        s.endpoints_of("green").is_some()
            && !s.clusters.contains_key("blue")
            && !s.endpoints.contains_key("blue")
    })
    .await;

    // A bad route configuration is NACKed, naming it; the last good one stays in force.
    let mut bad = Snapshot::from_document(&document("v3", "green", 20881)).expect("valid");
    let broken = json!({"name": "routes", "virtual_hosts": [{"name": "v", "domains": ["a.*.b"]}]});
    bad.insert(
        ROUTE,
        "routes",
        to_protobuf(ROUTE, &broken).expect("encodes"),
    );
    bad.version = "v3".into();
    server.set(bad);
    eventually("a NACK reaches the server", || !server.nacks().is_empty()).await;
    let nack = &server.nacks()[0];
    assert_eq!(
        (
            nack.node.as_str(),
            nack.type_url.as_str(),
            nack.version.as_str()
        ),
        ("n1", ROUTE, "v3")
    );
    assert!(
        nack.detail.contains("\"routes\"") && nack.detail.contains("wildcard"),
        "{}",
        nack.detail
    );
    let state = client.state();
    assert!(state.nacks >= 1);
    assert!(
        format!("{:?}", state.routes["routes"].resource).contains("green"),
        "last good routes kept"
    );

    // The control plane going away stops nothing: the state stays, marked disconnected.
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_of_the_world_client_and_server() {
    client_against_the_snapshot_server(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_client_and_server() {
    client_against_the_snapshot_server(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_that_never_comes_is_absent_after_the_timeout() {
    // The listener needs routes "missing", which the snapshot lacks.
    let mut doc = document("v1", "blue", 20880);
    doc["resources"].as_array_mut().expect("list").remove(1);
    let server = SnapshotServer::new(Snapshot::from_document(&doc).expect("valid"));
    let addr = serve(server).await;
    let client = XdsClient::start(Bootstrap::new(addr.to_string(), node("n2")), options(false))
        .expect("start");
    assert!(
        client.ready(Duration::from_secs(5)).await,
        "ready once the timeout passed"
    );
    assert!(client
        .state()
        .absent
        .contains(&(ROUTE.to_owned(), "routes".to_owned())));
}

/// A control plane driven by the test: requests come out, responses go in.
#[derive(Clone)]
struct Scripted {
    requests: mpsc::UnboundedSender<DiscoveryRequest>,
    responses:
        std::sync::Arc<Mutex<mpsc::UnboundedReceiver<Result<DiscoveryResponse, tonic::Status>>>>,
    delta_requests: mpsc::UnboundedSender<DeltaDiscoveryRequest>,
    delta_responses: std::sync::Arc<
        Mutex<mpsc::UnboundedReceiver<Result<DeltaDiscoveryResponse, tonic::Status>>>,
    >,
}

type Out<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for Scripted {
    type StreamAggregatedResourcesStream = Out<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = Out<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: tonic::Request<tonic::Streaming<DiscoveryRequest>>,
    ) -> Result<tonic::Response<Self::StreamAggregatedResourcesStream>, tonic::Status> {
        let mut inbound = request.into_inner();
        let requests = self.requests.clone();
        tokio::spawn(async move {
            while let Ok(Some(r)) = inbound.message().await {
                let _ = requests.send(r);
            }
        });
        let (tx, rx) = mpsc::channel(16);
        let responses = self.responses.clone();
        tokio::spawn(async move {
            let mut responses = responses.lock().await;
            while let Some(r) = responses.recv().await {
                let end = r.is_err();
                if tx.send(r).await.is_err() || end {
                    return; // an Err ends this stream: the client must reconnect
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_aggregated_resources(
        &self,
        request: tonic::Request<tonic::Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<tonic::Response<Self::DeltaAggregatedResourcesStream>, tonic::Status> {
        let mut inbound = request.into_inner();
        let requests = self.delta_requests.clone();
        tokio::spawn(async move {
            while let Ok(Some(r)) = inbound.message().await {
                let _ = requests.send(r);
            }
        });
        let (tx, rx) = mpsc::channel(16);
        let responses = self.delta_responses.clone();
        tokio::spawn(async move {
            let mut responses = responses.lock().await;
            while let Some(r) = responses.recv().await {
                let end = r.is_err();
                if tx.send(r).await.is_err() || end {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

struct Script {
    addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<DiscoveryRequest>,
    responses: mpsc::UnboundedSender<Result<DiscoveryResponse, tonic::Status>>,
    delta_requests: mpsc::UnboundedReceiver<DeltaDiscoveryRequest>,
    delta_responses: mpsc::UnboundedSender<Result<DeltaDiscoveryResponse, tonic::Status>>,
}

async fn scripted() -> Script {
    let (req_tx, requests) = mpsc::unbounded_channel();
    let (responses, resp_rx) = mpsc::unbounded_channel();
    let (dreq_tx, delta_requests) = mpsc::unbounded_channel();
    let (delta_responses, dresp_rx) = mpsc::unbounded_channel();
    let service = Scripted {
        requests: req_tx,
        responses: std::sync::Arc::new(Mutex::new(resp_rx)),
        delta_requests: dreq_tx,
        delta_responses: std::sync::Arc::new(Mutex::new(dresp_rx)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AggregatedDiscoveryServiceServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    Script {
        addr,
        requests,
        responses,
        delta_requests,
        delta_responses,
    }
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a request within 5 s")
        .expect("open")
}

fn cluster_any(name: &str) -> envoy_types::pb::google::protobuf::Any {
    let json = json!({"name": name, "type": "STATIC", "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 20880}}}}]}]}});
    envoy_types::pb::google::protobuf::Any {
        type_url: CLUSTER.into(),
        value: to_protobuf(CLUSTER, &json).expect("encode"),
    }
}

fn bad_cluster_any(name: &str) -> envoy_types::pb::google::protobuf::Any {
    let json = json!({"name": name, "type": "STRICT_DNS"});
    envoy_types::pb::google::protobuf::Any {
        type_url: CLUSTER.into(),
        value: to_protobuf(CLUSTER, &json).expect("encode"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sotw_requests_ack_nack_and_resubscribe() {
    let mut s = scripted().await;
    let opts = ClientOptions {
        listeners: xds_core::client::Subscribe::Names(vec!["api".into()]),
        ..options(false)
    };
    let client =
        XdsClient::start(Bootstrap::new(s.addr.to_string(), node("n3")), opts).expect("start");
    let first = next(&mut s.requests).await;
    assert_eq!(
        (
            first.type_url.as_str(),
            first.version_info.as_str(),
            first.response_nonce.as_str()
        ),
        (CLUSTER, "", "")
    );
    assert!(first.resource_names.is_empty(), "CDS wildcard");
    assert_eq!(first.node.as_ref().map(|n| n.id.as_str()), Some("n3"));
    let lds = next(&mut s.requests).await;
    assert_eq!(
        (lds.type_url.as_str(), lds.resource_names.as_slice()),
        (LISTENER, &["api".to_owned()][..])
    );

    s.responses
        .send(Ok(DiscoveryResponse {
            version_info: "1".into(),
            type_url: CLUSTER.into(),
            nonce: "a".into(),
            resources: vec![cluster_any("c1")],
            ..Default::default()
        }))
        .expect("send");
    let ack = next(&mut s.requests).await;
    assert_eq!(
        (
            ack.type_url.as_str(),
            ack.version_info.as_str(),
            ack.response_nonce.as_str()
        ),
        (CLUSTER, "1", "a")
    );
    assert!(ack.error_detail.is_none());

    s.responses
        .send(Ok(DiscoveryResponse {
            version_info: "2".into(),
            type_url: CLUSTER.into(),
            nonce: "b".into(),
            resources: vec![cluster_any("c1"), bad_cluster_any("c2")],
            ..Default::default()
        }))
        .expect("send");
    let nack = next(&mut s.requests).await;
    assert_eq!(
        (nack.version_info.as_str(), nack.response_nonce.as_str()),
        ("1", "b"),
        "NACK keeps the accepted version"
    );
    let detail = nack.error_detail.expect("error_detail").message;
    assert!(
        detail.contains("\"c2\"") && detail.contains("needs endpoints"),
        "{detail}"
    );
    assert!(
        client.state().clusters.contains_key("c1") && !client.state().clusters.contains_key("c2")
    );

    // The stream breaks: the client reconnects and resubscribes with what it holds.
    s.responses
        .send(Err(tonic::Status::unavailable("restart")))
        .expect("send");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let r = next(&mut s.requests).await;
        if r.response_nonce.is_empty() {
            seen.push(r);
        }
    }
    let again = seen
        .iter()
        .find(|r| r.type_url == CLUSTER)
        .expect("CDS again");
    assert_eq!(
        again.version_info, "1",
        "resubscribes with the version it holds"
    );
    assert!(seen
        .iter()
        .any(|r| r.type_url == LISTENER && r.resource_names == ["api"]));
    assert!(
        client.state().clusters.contains_key("c1"),
        "kept through the reconnect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_requests_ack_nack_and_resubscribe() {
    use envoy_types::pb::envoy::service::discovery::v3::Resource;
    let mut s = scripted().await;
    let client = XdsClient::start(
        Bootstrap::new(s.addr.to_string(), node("n4")),
        options(true),
    )
    .expect("start");
    let cds = next(&mut s.delta_requests).await;
    assert_eq!(cds.type_url, CLUSTER);
    assert!(cds.resource_names_subscribe.is_empty() && cds.initial_resource_versions.is_empty());
    let _lds = next(&mut s.delta_requests).await;

    let resource = |name: &str, version: &str, any| Resource {
        name: name.into(),
        version: version.into(),
        resource: Some(any),
        ..Default::default()
    };
    s.delta_responses
        .send(Ok(DeltaDiscoveryResponse {
            type_url: CLUSTER.into(),
            nonce: "n1".into(),
            resources: vec![resource("c1", "x1", cluster_any("c1"))],
            ..Default::default()
        }))
        .expect("send");
    let ack = next(&mut s.delta_requests).await;
    assert_eq!(
        (ack.response_nonce.as_str(), ack.error_detail.is_none()),
        ("n1", true)
    );

    s.delta_responses
        .send(Ok(DeltaDiscoveryResponse {
            type_url: CLUSTER.into(),
            nonce: "n2".into(),
            resources: vec![resource("c2", "y1", bad_cluster_any("c2"))],
            ..Default::default()
        }))
        .expect("send");
    let nack = next(&mut s.delta_requests).await;
    assert_eq!(nack.response_nonce, "n2");
    assert!(nack
        .error_detail
        .expect("detail")
        .message
        .contains("\"c2\""));

    s.delta_responses
        .send(Ok(DeltaDiscoveryResponse {
            type_url: CLUSTER.into(),
            nonce: "n3".into(),
            removed_resources: vec!["c1".into()],
            ..Default::default()
        }))
        .expect("send");
    let _ = next(&mut s.delta_requests).await;
    eventually("c1 removed", || !client.state().clusters.contains_key("c1")).await;
    s.delta_responses
        .send(Ok(DeltaDiscoveryResponse {
            type_url: CLUSTER.into(),
            nonce: "n4".into(),
            resources: vec![resource("c3", "z1", cluster_any("c3"))],
            ..Default::default()
        }))
        .expect("send");
    let _ = next(&mut s.delta_requests).await;

    // Reconnect: the new stream says which versions the client holds.
    s.delta_responses
        .send(Err(tonic::Status::unavailable("restart")))
        .expect("send");
    let again = loop {
        let r = next(&mut s.delta_requests).await;
        if r.type_url == CLUSTER && r.response_nonce.is_empty() {
            break r;
        }
    };
    assert_eq!(
        again
            .initial_resource_versions
            .get("c3")
            .map(String::as_str),
        Some("z1")
    );
    assert!(!again.initial_resource_versions.contains_key("c1"));
}
