//! Calls typed by published metadata, end to end: metadata and service definitions are
//! published through the gRPC API, then the npm `apache-dubbo-service` provider and our Rust
//! provider are called through routes nobody wrote, with named JSON arguments and nested POJOs
//! and no types anywhere in the request or the config. The admin listener's `/openapi.json`
//! describes what was published and passes a third-party OpenAPI validator.

mod common;

use std::net::SocketAddr;

use figment::providers::{Format, Yaml};
use figment::Figment;
use http::{Method, StatusCode};
use metadata_store::grpc::{pb, MetadataServiceClient, ServiceDefinitionServiceClient};
use serde_json::{json, Value as Json};
use testkit::demo::{self, DemoService};
use testkit::peers::NodeProvider;

use common::{post, rust_provider, send, SERVICE};

const TEAM: &str = "org.apache.dubbo.demo.Team";

/// The definition publishers of the npm provider send: the demo contract, with `echo` declared
/// as taking a `Team` (a POJO holding a `User` and a `List<User>`), so its reply shows what the
/// typed arguments became on the wire.
fn npm_definition() -> String {
    let mut def: Json = serde_json::from_str(&demo::service_definition()).expect("json");
    for m in def["methods"].as_array_mut().expect("methods") {
        if m["name"] == "echo" {
            m["parameterTypes"] = json!([TEAM]);
            m["returnType"] = json!(TEAM);
        }
    }
    def["types"].as_array_mut().expect("types").push(json!({
        "type": TEAM,
        "properties": {
            "name": "java.lang.String",
            "lead": "org.apache.dubbo.demo.User",
            "members": "java.util.List<org.apache.dubbo.demo.User>",
            "size": "long",
        }
    }));
    def.to_string()
}

struct Gateway {
    http: SocketAddr,
    admin: SocketAddr,
    grpc: SocketAddr,
}

async fn start(npm: SocketAddr, rust: SocketAddr) -> Gateway {
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\n\
         admin: {{address: '127.0.0.1:0'}}\n\
         metadata: {{backend: memory, grpc_address: '127.0.0.1:0', publish_token: t0ken}}\n\
         clusters:\n\
         \x20 - {{name: npm, application: npm-provider, revision: r1, endpoints: ['{npm}']}}\n\
         \x20 - {{name: rust, endpoints: [{{address: '{rust}', application: rust-provider, revision: r7}}]}}\n"
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let gw = Gateway {
        http: running.listeners[0],
        admin: running.admin.expect("admin"),
        grpc: running.metadata_grpc.expect("grpc"),
    };
    std::mem::forget(running);
    gw
}

fn authorized<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", "Bearer t0ken".parse().expect("value"));
    request
}

async fn publish(grpc: SocketAddr, application: &str, revision: &str, definition: String) {
    let url = format!("http://{grpc}");
    MetadataServiceClient::connect(url.clone())
        .await
        .expect("connect")
        .publish(authorized(pb::PublishMetadataRequest {
            application_name: application.into(),
            revision: revision.into(),
            metadata_info: demo::metadata_info(application, revision),
        }))
        .await
        .expect("publish metadata");
    ServiceDefinitionServiceClient::connect(url)
        .await
        .expect("connect")
        .publish(authorized(pb::PublishServiceDefinitionRequest {
            identifier: demo::definition_identifier(application),
            service_definition: definition,
        }))
        .await
        .expect("publish definition");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_typed_by_published_metadata() {
    let Some(npm) = NodeProvider::start().await else {
        return;
    };
    let npm = SocketAddr::from(([127, 0, 0, 1], npm.port));
    let rust = rust_provider(DemoService::default()).await;
    let gw = start(npm, rust).await;
    let user = json!({"id": "7", "name": "alice", "age": 30, "email": "a@example.com"});
    let named_user = json!({ "arg0": user }).to_string();

    // Nothing published yet: the automatic route exists, but named arguments have no names.
    let path = format!("/npm-provider/{SERVICE}/echoUser");
    let (status, body) = post(gw.http, &path, &named_user).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    publish(gw.grpc, "npm-provider", "r1", npm_definition()).await;
    publish(gw.grpc, "rust-provider", "r7", demo::service_definition()).await;

    // Named arguments, a POJO converted by the published User shape ("7" becomes a long).
    let (status, body) = post(gw.http, &path, &named_user).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"id": 7, "name": "alice", "age": 31, "email": "a@example.com"})
        )
    );
    let rust_path = format!("/rust-provider/{SERVICE}/echoUser");
    let (status, body) = post(gw.http, &rust_path, &named_user).await;
    assert_eq!(
        (status, &body["age"], &body["id"]),
        (StatusCode::OK, &json!(31), &json!(7))
    );

    // Nested POJOs: a Team holding a User and a List<User>; the npm provider returns what it
    // decoded, so every nested field shows its declared type (strings became longs).
    let team = json!({"arg0": {
        "name": "core",
        "lead": {"id": "1", "name": "ann", "age": 41, "email": "ann@example.com"},
        "members": [{"id": "2", "name": "bo", "age": 22, "email": "bo@example.com"}],
        "size": "2",
    }});
    let (status, body) = post(
        gw.http,
        &format!("/npm-provider/{SERVICE}/echo"),
        &team.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "name": "core",
            "lead": {"id": 1, "name": "ann", "age": 41, "email": "ann@example.com"},
            "members": [{"id": 2, "name": "bo", "age": 22, "email": "bo@example.com"}],
            "size": 2,
        })
    );
    // A wrong nested type is refused by the gateway, naming where it is.
    let bad = team.to_string().replace("\"age\":22", "\"age\":\"old\"");
    let (status, body) = post(gw.http, &format!("/npm-provider/{SERVICE}/echo"), &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("members")),
        "{body}"
    );

    // Republishing (same content: a refresh; then different content) keeps calls working: the
    // compiled definition is reused or rebuilt, never deadlocked on.
    publish(gw.grpc, "rust-provider", "r7", demo::service_definition()).await;
    let again = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        post(gw.http, &rust_path, &named_user),
    )
    .await
    .expect("a call after a refresh answers");
    assert_eq!(again.0, StatusCode::OK, "{}", again.1);
    let changed =
        demo::service_definition().replace("\"returnType\":\"int\"", "\"returnType\":\"long\"");
    publish(gw.grpc, "rust-provider", "r7", changed).await;
    let again = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        post(gw.http, &rust_path, &named_user),
    )
    .await
    .expect("a call after a change answers");
    assert_eq!(again.0, StatusCode::OK, "{}", again.1);

    // Positional arguments work as well, typed the same way.
    let (status, body) = post(gw.http, &rust_path, &json!([user]).to_string()).await;
    assert_eq!((status, &body["id"]), (StatusCode::OK, &json!(7)));

    // What the revision does not export, or the definition does not declare, is 404.
    let (status, body) = post(gw.http, "/npm-provider/org.example.Missing/x", "[]").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not export")),
        "{body}"
    );
    let (status, body) = post(gw.http, &format!("/npm-provider/{SERVICE}/nope"), "[]").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("published definition")),
        "{body}"
    );
    // An application no cluster serves has no route.
    let (status, _) = post(gw.http, &format!("/nobody/{SERVICE}/sayHello"), "[]").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The configuration dump does not reveal the publish token.
    let (_, dump) = send(gw.admin, Method::GET, "/config_dump", "").await;
    assert_eq!(dump["config"]["metadata"]["publish_token"], "<redacted>");
    assert!(!dump.to_string().contains("t0ken"));

    // The admin API lists what is published, with the store's counters.
    let (status, summary) = send(gw.admin, Method::GET, "/metadata", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(summary["stats"]["publishes"], 8);
    assert_eq!(summary["stats"]["conflicts"], 1, "the changed definition");
    let mut apps: Vec<&str> = summary["revisions"]
        .as_array()
        .expect("revisions")
        .iter()
        .filter_map(|r| r["application"].as_str())
        .collect();
    apps.sort_unstable();
    assert_eq!(apps, ["npm-provider", "rust-provider"]);

    // The OpenAPI document describes both applications' methods and their classes.
    let (status, doc) = send(gw.admin, Method::GET, "/openapi.json", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for app in ["npm-provider", "rust-provider"] {
        for method in ["sayHello", "echoUser", "listUsers", "now"] {
            assert!(
                paths.contains_key(&format!("/{app}/{SERVICE}/{method}")),
                "{app} {method}"
            );
        }
    }
    let echo = &doc["paths"][format!("/npm-provider/{SERVICE}/echo")]["post"];
    assert_eq!(
        echo["requestBody"]["content"]["application/json"]["schema"]["oneOf"][0]["prefixItems"][0]
            ["$ref"],
        format!("#/components/schemas/{TEAM}")
    );
    assert_eq!(
        doc["components"]["schemas"][TEAM]["properties"]["members"]["items"]["$ref"],
        "#/components/schemas/org.apache.dubbo.demo.User"
    );
    assert_eq!(doc["servers"][0]["url"], format!("http://{}", gw.http));

    // A third-party validator accepts it.
    let Some(python) = testkit::peers::require(
        "python openapi-spec-validator",
        testkit::peers::python_with("openapi_spec_validator"),
    ) else {
        return;
    };
    let script = testkit::peers::repo_root().join("peers/python/validate_openapi.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run validator");
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(doc.to_string().as_bytes())
        .await
        .expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("validator");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
