//! `gateway demo`: the sample DemoService provider (built on dubbo-codec) and a gateway in front
//! of it, in one process, configured by `configs/demo.yaml`. Prints calls to paste; with
//! `--self-test` makes them itself and checks every answer.

use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use figment::providers::{Format, Yaml};
use figment::Figment;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metadata_store::grpc::{pb, MetadataServiceClient, ServiceDefinitionServiceClient};
use serde_json::{json, Value as Json};
use testkit::demo::{self, DemoService};
use tokio::net::TcpListener;

use crate::config;

const DEMO_CONFIG: &str = include_str!("../../configs/demo.yaml");
const SERVICE: &str = "/demo/org.apache.dubbo.demo.DemoService";
/// The provider's application and revision, as `configs/demo.yaml` names them.
const APPLICATION: &str = "demo-provider";
const REVISION: &str = "demo-r1";

/// One call the demo shows, with the answer it must get.
struct Call {
    title: &'static str,
    method: Method,
    path: String,
    body: Option<&'static str>,
    status: StatusCode,
    check: fn(&Json) -> bool,
}

fn calls() -> Vec<Call> {
    let post = |title, method: &str, body, status, check| Call {
        title,
        method: Method::POST,
        path: format!("{SERVICE}/{method}"),
        body: Some(body),
        status,
        check,
    };
    let get = |title, path: &str, check| Call {
        title,
        method: Method::GET,
        path: path.to_owned(),
        body: None,
        status: StatusCode::OK,
        check,
    };
    vec![
        post(
            "positional arguments",
            "sayHello",
            r#"["world"]"#,
            StatusCode::OK,
            |b| b == "Hello, world",
        ),
        post(
            "named arguments",
            "sayHello",
            r#"{"name": "world"}"#,
            StatusCode::OK,
            |b| b == "Hello, world",
        ),
        post("two ints", "add", "[2, 3]", StatusCode::OK, |b| b == 5),
        post(
            "pixiu's types/values body",
            "add",
            r#"{"types": "int,int", "values": [2, 3]}"#,
            StatusCode::OK,
            |b| b == 5,
        ),
        post(
            "a POJO in and out",
            "echoUser",
            r#"[{"id": 7, "name": "alice", "age": 30, "email": "a@example.com"}]"#,
            StatusCode::OK,
            |b| b["age"] == 31 && b["id"] == 7,
        ),
        post("a list of POJOs", "listUsers", "[3]", StatusCode::OK, |b| {
            b.as_array()
                .is_some_and(|a| a.len() == 3 && a[2]["name"] == "user2")
        }),
        post("a date", "now", "[]", StatusCode::OK, |b| {
            b.as_str()
                .is_some_and(|s| s.ends_with('Z') && s.len() == 24)
        }),
        get("declared route, path variable", "/hello/gateway", |b| {
            b == "Hello, gateway"
        }),
        get("declared route, query parameter", "/users?count=2", |b| {
            b.as_array().is_some_and(|a| a.len() == 2)
        }),
        post(
            "a Java exception",
            "fail",
            r#"["boom"]"#,
            StatusCode::INTERNAL_SERVER_ERROR,
            |b| {
                b["error"]["exception"] == "java.lang.IllegalArgumentException"
                    && b["error"]["exception_message"] == "boom"
            },
        ),
        post(
            "wrong argument type",
            "add",
            r#"["two", 3]"#,
            StatusCode::BAD_REQUEST,
            |b| b["error"]["code"] == "INVALID_ARGUMENT",
        ),
        post("unknown method", "nope", "[]", StatusCode::NOT_FOUND, |b| {
            b["error"]["code"] == "NOT_FOUND"
        }),
        Call {
            title: "no route written: typed by the metadata the provider published",
            method: Method::POST,
            path: format!("/{APPLICATION}/{}/echoUser", demo::INTERFACE),
            body: Some(
                r#"{"user": {"id": "7", "name": "bob", "age": 40, "email": "b@example.com"}}"#,
            ),
            status: StatusCode::OK,
            check: |b| b["age"] == 41 && b["id"] == 7,
        },
    ]
}

pub async fn run(port: Option<u16>, self_test: bool) -> ExitCode {
    match start(port).await {
        Ok((running, provider)) => {
            let Some(&gateway) = running.listeners.first() else {
                return ExitCode::FAILURE;
            };
            let admin = running.admin.map_or_else(
                || "disabled".to_owned(),
                |a| format!("http://{a}/metrics, http://{a}/clusters, http://{a}/openapi.json"),
            );
            let grpc = running
                .metadata_grpc
                .map_or_else(|| "disabled".to_owned(), |a| a.to_string());
            println!("Dubbo2 provider of org.apache.dubbo.demo.DemoService on dubbo://{provider}");
            println!("gateway on http://{gateway}  (admin: {admin})");
            println!("metadata gRPC API (pixiu.pkg.metadata) on {grpc}\n");
            if self_test {
                let code = self_test_calls(gateway).await;
                running.shutdown().await;
                return code;
            }
            println!("Try:");
            for call in calls() {
                println!("  # {}", call.title);
                match call.body {
                    Some(body) => println!("  curl -s -X POST http://{gateway}{} -H 'content-type: application/json' -d '{body}'", call.path),
                    None => println!("  curl -s 'http://{gateway}{}'", call.path),
                }
            }
            println!("\nCtrl-C to stop.");
            let _ = tokio::signal::ctrl_c().await;
            running.shutdown().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo could not start: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the provider and the gateway; returns the serving gateway and the provider address.
async fn start(port: Option<u16>) -> Result<(crate::app::Running, SocketAddr), String> {
    // The provider takes 20880 (Dubbo's port) when free, else any port.
    let provider = match TcpListener::bind("127.0.0.1:20880").await {
        Ok(l) => l,
        Err(_) => TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?,
    };
    let provider_addr = provider.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(testkit::provider::serve(
        provider,
        DemoService::default().services(),
        std::future::pending(),
    ));

    // Well-known ports when free (so the docs' examples work), else any; tests pass `Some(0)`.
    let free = |p: u16| port != Some(0) && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let gateway_port = match port {
        Some(p) => p,
        None if free(8080) => 8080,
        None => 0,
    };
    let admin_port = if free(9901) { 9901 } else { 0 };
    let grpc_port = if free(9902) { 9902 } else { 0 };
    let yaml = DEMO_CONFIG
        .replace("127.0.0.1:20880", &provider_addr.to_string())
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{gateway_port}"))
        .replace("127.0.0.1:9901", &format!("127.0.0.1:{admin_port}"))
        .replace("127.0.0.1:9902", &format!("127.0.0.1:{grpc_port}"));
    // `GATEWAY_*` variables override the demo's file as they do any other (e.g.
    // GATEWAY_ACCESS_LOG__ENABLED=false for benchmarks).
    let config = config::from_figment(
        Figment::new()
            .merge(Yaml::string(&yaml))
            .merge(figment::providers::Env::prefixed("GATEWAY_").split("__")),
        "configs/demo.yaml",
    )
    .map_err(|e| e.to_string())?;
    let running = crate::app::start(config).await?;
    if let Some(grpc) = running.metadata_grpc {
        publish_metadata(grpc).await?;
    }
    Ok((running, provider_addr))
}

/// Publishes the provider's metadata through the gRPC API, as a Dubbo 3 provider does at start.
async fn publish_metadata(grpc: SocketAddr) -> Result<(), String> {
    let url = format!("http://{grpc}");
    let failed = |e: &dyn std::fmt::Display| format!("publishing the demo's metadata: {e}");
    let mut metadata = MetadataServiceClient::connect(url.clone())
        .await
        .map_err(|e| failed(&e))?;
    metadata
        .publish(pb::PublishMetadataRequest {
            application_name: APPLICATION.into(),
            revision: REVISION.into(),
            metadata_info: demo::metadata_info(APPLICATION, REVISION),
        })
        .await
        .map_err(|e| failed(&e))?;
    let mut definitions = ServiceDefinitionServiceClient::connect(url)
        .await
        .map_err(|e| failed(&e))?;
    definitions
        .publish(pb::PublishServiceDefinitionRequest {
            identifier: demo::definition_identifier(APPLICATION),
            service_definition: demo::service_definition(),
        })
        .await
        .map_err(|e| failed(&e))?;
    Ok(())
}

async fn self_test_calls(gateway: SocketAddr) -> ExitCode {
    let (_, failed) = self_test(gateway).await;
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Starts the demo on free ports and runs its calls: `(passed, failed)`. For tests.
pub async fn start_and_self_test() -> Result<(usize, usize), String> {
    let (running, _) = start(Some(0)).await?;
    let gateway = running.listeners.first().copied().ok_or("no listener")?;
    let result = self_test(gateway).await;
    running.shutdown().await;
    Ok(result)
}

/// Makes every demo call against `gateway` and prints a line each: `(passed, failed)`.
async fn self_test(gateway: SocketAddr) -> (usize, usize) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let (mut passed, mut failed) = (0, 0);
    for call in calls() {
        let request = Request::builder()
            .method(call.method.clone())
            .uri(format!("http://{gateway}{}", call.path))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                call.body.unwrap_or("").as_bytes(),
            )));
        let outcome = match request {
            Ok(req) => match client.request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let json: Json = serde_json::from_slice(&body).unwrap_or(json!(null));
                    if status == call.status && (call.check)(&json) {
                        Ok(())
                    } else {
                        Err(format!("got {status} {}", String::from_utf8_lossy(&body)))
                    }
                }
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("PASS  {} {} ({})", call.method, call.path, call.title);
            }
            Err(why) => {
                failed += 1;
                println!(
                    "FAIL  {} {} ({}): {why}",
                    call.method, call.path, call.title
                );
            }
        }
    }
    println!("\nself-test: {passed} passed, {failed} failed");
    (passed, failed)
}
