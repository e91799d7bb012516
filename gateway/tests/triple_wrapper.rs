//! HTTP/JSON → Dubbo3 Triple without IDL: the gateway sends Triple's hessian2 wrapper messages,
//! typed by the metadata the provider's application published, to a provider built from
//! third-party parts (@grpc/grpc-js + hessian.js, `peers/node/triple_wrapper_provider.js`),
//! on routes nobody wrote — and the same errors as for Dubbo2.

mod common;

use std::net::SocketAddr;

use figment::providers::{Format, Yaml};
use figment::Figment;
use http::StatusCode;
use metadata_store::grpc::{pb, MetadataServiceClient, ServiceDefinitionServiceClient};
use serde_json::{json, Value as Json};
use testkit::demo;
use testkit::peers::{free_port, require};

use common::post;

const APP: &str = "wrapper-provider";
const BASE: &str = "/wrapper-provider/org.apache.dubbo.demo.DemoService";

/// The demo contract plus `slow(int)`, as the provider's application publishes it, with
/// Triple as the service's protocol.
async fn publish(grpc: SocketAddr) {
    let mut definition: Json = serde_json::from_str(&demo::service_definition()).expect("json");
    definition["methods"]
        .as_array_mut()
        .expect("methods")
        .push(json!({"name": "slow", "parameterTypes": ["int"], "returnType": "java.lang.String"}));
    let mut info: Json = serde_json::from_str(&demo::metadata_info(APP, "r1")).expect("json");
    for service in info["services"]
        .as_object_mut()
        .expect("services")
        .values_mut()
    {
        service["protocol"] = json!("tri");
    }
    let url = format!("http://{grpc}");
    MetadataServiceClient::connect(url.clone())
        .await
        .expect("connect")
        .publish(pb::PublishMetadataRequest {
            application_name: APP.into(),
            revision: "r1".into(),
            metadata_info: info.to_string(),
        })
        .await
        .expect("publish metadata");
    ServiceDefinitionServiceClient::connect(url)
        .await
        .expect("connect")
        .publish(pb::PublishServiceDefinitionRequest {
            identifier: demo::definition_identifier(APP),
            service_definition: definition.to_string(),
        })
        .await
        .expect("publish definition");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hessian2_wrapper_calls_typed_by_metadata() {
    let Some(node) = require("node peers", testkit::peers::node_dir()) else {
        return;
    };
    let mut command = tokio::process::Command::new("node");
    command
        .arg(node.join("triple_wrapper_provider.js"))
        .arg("0");
    let (port, _provider) = testkit::peers::spawn_listening(command).await;
    let down = free_port();
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: '127.0.0.1:0'}}\n\
         clusters:\n\
         \x20 - {{name: tri, protocol: tri, application: {APP}, revision: r1, timeout_ms: 400, endpoints: ['127.0.0.1:{port}']}}\n\
         \x20 - {{name: gone, protocol: tri, application: gone-app, endpoints: ['127.0.0.1:{down}']}}\n"
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let gw = running.listeners[0];
    publish(running.metadata_grpc.expect("metadata grpc")).await;

    // The wire as the provider saw it: hessian2 ("hessian4") and Java class names.
    assert_eq!(
        post(gw, &format!("{BASE}/sayHello"), r#"["world"]"#).await,
        (
            StatusCode::OK,
            json!("Hello world [java.lang.String; hessian4]")
        )
    );
    // Named arguments (argN: the definition has no names) and ints typed by the definition.
    assert_eq!(
        post(gw, &format!("{BASE}/add"), r#"{"arg0": 2, "arg1": 3}"#).await,
        (StatusCode::OK, json!(5))
    );
    // A POJO typed by the published User shape: "7" becomes a long, and comes back a number.
    let user = json!({"id": "7", "name": "ann", "age": 30, "email": "a@example.org"});
    assert_eq!(
        post(gw, &format!("{BASE}/echoUser"), &json!([user]).to_string()).await,
        (
            StatusCode::OK,
            json!({"id": 7, "name": "ann", "age": 30, "email": "a@example.org"})
        )
    );
    let (status, body) = post(gw, &format!("{BASE}/listUsers"), "[2]").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[1]["name"], "user2");
    assert_eq!(body[1]["age"], 21);

    // Errors: the provider threw (UNKNOWN) → 500 with its message.
    let (status, body) = post(gw, &format!("{BASE}/fail"), r#"["thing"]"#).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "PROVIDER_EXCEPTION");
    assert_eq!(body["error"]["message"], "no thing");
    // A wrong argument type is the gateway's 400, naming the argument.
    let (status, body) = post(gw, &format!("{BASE}/add"), r#"["two", 3]"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Malformed JSON.
    let (status, _) = post(gw, &format!("{BASE}/add"), "[2,").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A method the definition does not have: 404 before anything is sent.
    let (status, body) = post(gw, &format!("{BASE}/nope"), "[]").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Deadline: the cluster's 400 ms.
    let (status, body) = post(gw, &format!("{BASE}/slow"), "[2000]").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    // …and the connection is still good afterwards.
    assert_eq!(
        post(gw, &format!("{BASE}/slow"), "[10]").await,
        (StatusCode::OK, json!("slept 10"))
    );
    // Provider down: 503, with types given explicitly (nothing is published for gone-app).
    let (status, body) = post(
        gw,
        "/gone-app/org.apache.dubbo.demo.DemoService/sayHello",
        r#"{"types": "java.lang.String", "values": ["x"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    running.shutdown().await;
}

/// The same provider behind routes, clusters and endpoints from xDS: the cluster's
/// `filter_metadata["dubbo"].protocol: tri` makes HTTP/JSON calls go as wrapper messages, and
/// the endpoint's `application`/`revision` type them by the published metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hessian2_wrapper_routed_by_xds() {
    let Some(node) = require("node peers", testkit::peers::node_dir()) else {
        return;
    };
    let mut command = tokio::process::Command::new("node");
    command
        .arg(node.join("triple_wrapper_provider.js"))
        .arg("0");
    let (port, _provider) = testkit::peers::spawn_listening(command).await;
    let resources = vec![
        common::api_listener(),
        json!({"@type": "envoy.config.route.v3.RouteConfiguration", "name": "r", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/users/"}, "route": {"cluster": "users", "timeout": "2s"},
             "metadata": {"filter_metadata": {"dubbo": {"interface": "org.apache.dubbo.demo.DemoService"}}}}
        ]}]}),
        json!({"@type": "envoy.config.cluster.v3.Cluster", "name": "users", "type": "STATIC",
               "metadata": {"filter_metadata": {"dubbo": {"protocol": "tri"}}},
               "load_assignment": {"cluster_name": "users", "endpoints": [{"lb_endpoints": [
                   {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}},
                    "metadata": {"filter_metadata": {"dubbo": {"application": APP, "revision": "r1"}}}}]}]}}),
    ];
    let xds = common::xds_server(resources).await;
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: '127.0.0.1:0'}}\n\
         xds: {{server: '{xds}', listener: gateway}}\n"
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let gw = running.listeners[0];
    publish(running.metadata_grpc.expect("metadata grpc")).await;
    let user = json!([{"id": "9", "name": "bo", "age": 40, "email": "b@example.org"}]).to_string();
    let mut answer = (StatusCode::IM_A_TEAPOT, Json::Null);
    for _ in 0..50 {
        answer = post(gw, "/users/echoUser", &user).await;
        if answer.0 == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        answer,
        (
            StatusCode::OK,
            json!({"id": 9, "name": "bo", "age": 40, "email": "b@example.org"})
        )
    );
    assert_eq!(
        post(gw, "/users/sayHello", r#"["xds"]"#).await,
        (
            StatusCode::OK,
            json!("Hello xds [java.lang.String; hessian4]")
        )
    );
    running.shutdown().await;
}
