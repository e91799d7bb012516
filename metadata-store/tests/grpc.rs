//! The gRPC API on a real socket: our tonic client for every status, and Python `grpcio` (a
//! client we did not write, with stubs generated from our `.proto`) publishing and getting.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use metadata_store::grpc::pb;
use metadata_store::grpc::{MetadataApi, MetadataServiceClient, ServiceDefinitionServiceClient};
use metadata_store::Registry;
use serde_json::{json, Value};
use support::{demo_definition, demo_metadata, TestStore, DEMO_APP, DEMO_REVISION};
use tonic::{Code, Request};

const ID: &str = "org.apache.dubbo.demo.DemoService:::provider:demo-provider";

async fn serve(token: Option<&str>) -> (SocketAddr, Arc<TestStore>) {
    let store = Arc::new(TestStore::default());
    let registry = Arc::new(Registry::new(store.clone(), Duration::from_secs(3600)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let api = MetadataApi::new(registry, token.map(str::to_owned));
    tokio::spawn(api.serve(listener, std::future::pending()));
    (addr, store)
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = format!("Bearer {token}").parse().expect("header value");
    request.metadata_mut().insert("authorization", value);
    request
}

#[tokio::test]
async fn publish_and_get_with_every_status() {
    let (addr, store) = serve(Some("s3cret")).await;
    let url = format!("http://{addr}");
    let mut meta = MetadataServiceClient::connect(url.clone())
        .await
        .expect("connect");
    let mut defs = ServiceDefinitionServiceClient::connect(url)
        .await
        .expect("connect");
    let publish = pb::PublishMetadataRequest {
        application_name: DEMO_APP.into(),
        revision: DEMO_REVISION.into(),
        metadata_info: demo_metadata(),
    };

    // Publishing needs the token; reading does not.
    let err = meta.publish(publish.clone()).await.expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = meta
        .publish(with_token(publish.clone(), "guess"))
        .await
        .expect_err("bad token");
    assert_eq!(err.code(), Code::Unauthenticated);

    let done = meta
        .publish(with_token(publish.clone(), "s3cret"))
        .await
        .expect("publish");
    assert_eq!(done.into_inner().outcome(), pb::PublishOutcome::Created);
    let done = meta
        .publish(with_token(publish.clone(), "s3cret"))
        .await
        .expect("publish");
    assert_eq!(done.into_inner().outcome(), pb::PublishOutcome::Refreshed);

    let got = meta
        .get(pb::GetMetadataRequest {
            application_name: DEMO_APP.into(),
            revision: DEMO_REVISION.into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.metadata_info, demo_metadata(), "byte for byte");
    assert!(got.published_at_ms > 1_700_000_000_000);

    let err = meta
        .get(pb::GetMetadataRequest {
            application_name: DEMO_APP.into(),
            revision: "nope".into(),
        })
        .await
        .expect_err("unknown revision");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("\"nope\""), "{}", err.message());

    let bad = pb::PublishMetadataRequest {
        metadata_info: "{\"app\": 1}".into(),
        ..publish.clone()
    };
    let err = meta
        .publish(with_token(bad, "s3cret"))
        .await
        .expect_err("bad json");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("metadata_info"), "{}", err.message());

    let def = pb::PublishServiceDefinitionRequest {
        identifier: ID.into(),
        service_definition: demo_definition(),
    };
    defs.publish(with_token(def, "s3cret"))
        .await
        .expect("publish definition");
    let got = defs
        .get(pb::GetServiceDefinitionRequest {
            identifier: ID.into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.service_definition, demo_definition());
    let err = defs
        .get(pb::GetServiceDefinitionRequest {
            identifier: "x".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);

    store.down.store(true, Ordering::SeqCst);
    let err = defs
        .get(pb::GetServiceDefinitionRequest {
            identifier: "y".into(),
        })
        .await
        .expect_err("down");
    assert_eq!(err.code(), Code::Unavailable);
    let err = meta
        .publish(with_token(publish, "s3cret"))
        .await
        .expect_err("down");
    assert_eq!(err.code(), Code::Unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_publishes_and_gets() {
    let Some(python) =
        testkit::peers::require("python grpcio", testkit::peers::python_with("grpc_tools"))
    else {
        return;
    };
    let (addr, _) = serve(Some("tok")).await;
    let script = testkit::peers::repo_root().join("peers/python/metadata_client.py");
    let commands = [
        json!({"call": "publish_metadata", "application_name": DEMO_APP, "revision": DEMO_REVISION, "metadata_info": demo_metadata()}),
        json!({"call": "get_metadata", "application_name": DEMO_APP, "revision": DEMO_REVISION}),
        json!({"call": "publish_definition", "identifier": ID, "service_definition": demo_definition()}),
        json!({"call": "get_definition", "identifier": ID}),
        json!({"call": "get_metadata", "application_name": DEMO_APP, "revision": "missing"}),
        json!({"call": "publish_definition", "identifier": ID, "service_definition": "[]"}),
    ];
    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(addr.to_string())
        .args(["--token", "tok"])
        .args(commands.iter().map(Value::to_string))
        .output()
        .await
        .expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(
        lines[0],
        json!({"ok": true, "response": {"outcome": "PUBLISH_OUTCOME_CREATED"}})
    );
    assert_eq!(
        lines[1]["response"]["metadata_info"],
        json!(demo_metadata())
    );
    assert_eq!(
        lines[2],
        json!({"ok": true, "response": {"outcome": "PUBLISH_OUTCOME_CREATED"}})
    );
    assert_eq!(
        lines[3]["response"]["service_definition"],
        json!(demo_definition())
    );
    assert_eq!(lines[4]["code"], "NOT_FOUND");
    assert_eq!(lines[5]["code"], "INVALID_ARGUMENT");
    assert!(lines[5]["details"]
        .as_str()
        .is_some_and(|d| d.contains("service_definition")));
}
