//! The gateway end to end, in process, over real sockets: HTTP client → gateway → Dubbo2
//! providers (our sample provider and the npm `apache-dubbo-service` one), and every row of the
//! error table.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use figment::providers::{Format, Yaml};
use figment::Figment;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value as Json};
use testkit::demo::DemoService;
use testkit::peers::NodeProvider;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

mod common;
use common::{gateway, post, rust_provider, send, SERVICE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_self_test_passes() {
    let (passed, failed) = gateway::demo::start_and_self_test()
        .await
        .expect("demo starts");
    assert_eq!((passed, failed), (13, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_gateway_to_the_npm_provider() {
    let Some(npm) = NodeProvider::start().await else {
        return;
    };
    let gw = gateway(&[("npm", SocketAddr::from(([127, 0, 0, 1], npm.port)))], "").await;
    // No signatures configured: types are inferred from the JSON.
    assert_eq!(
        post(gw, &format!("/npm/{SERVICE}/sayHello"), r#"["world"]"#).await,
        (StatusCode::OK, json!("Hello, world"))
    );
    let user = r#"[{"id": 7, "name": "alice", "age": 30, "email": "a@example.com"}]"#;
    let (status, body) = post(
        gw,
        &format!("/npm/{SERVICE}/echoUser"),
        &user
            .replace(
                "[{",
                r#"{"types": ["org.apache.dubbo.demo.User"], "values": [{"#,
            )
            .replace("}]", "}]}"),
    )
    .await;
    assert_eq!(
        (status, &body["age"]),
        (StatusCode::OK, &json!(31)),
        "{body}"
    );
    let (status, body) = post(gw, &format!("/npm/{SERVICE}/listUsers"), "[2]").await;
    assert_eq!(
        (status, body[1]["email"].clone()),
        (StatusCode::OK, json!("user1@example.com"))
    );
    let (status, body) = post(gw, &format!("/npm/{SERVICE}/fail"), r#"["boom"]"#).await;
    assert_eq!(
        (status, body["error"]["exception_message"].clone()),
        (StatusCode::INTERNAL_SERVER_ERROR, json!("boom"))
    );
    let (status, body) = post(gw, "/npm/org.apache.dubbo.demo.Nope/x", "[]").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("NOT_FOUND")),
        "{body}"
    );
}

/// A provider that answers every request with bytes that are not Dubbo.
async fn garbage_provider() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while s.read(&mut buf).await.unwrap_or(0) > 0 {
                    let _ = s
                        .write_all(
                            b"\xda\xbb\x02\x14\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01\x40",
                        )
                        .await;
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_error_table() {
    let ok = rust_provider(DemoService::default()).await;
    let slow = rust_provider(DemoService::slow(Duration::from_secs(2))).await;
    let down = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let bad = garbage_provider().await;
    let signatures = "services:\n  - {interface: org.apache.dubbo.demo.DemoService, methods: [{name: add, params: [{name: a, type: int}, {name: b, type: int}]}]}\n";
    let gw = gateway(
        &[("ok", ok), ("slow", slow), ("down", down), ("bad", bad)],
        signatures,
    )
    .await;
    let code = |b: &Json| b["error"]["code"].as_str().unwrap_or_default().to_owned();

    let (s, b) = post(gw, "/nowhere/x/y", "[]").await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "NOT_FOUND".into()));
    let (s, b) = send(gw, Method::GET, &format!("/ok/{SERVICE}/add"), "").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED".into())
    );
    let (s, b) = post(gw, &format!("/ok/{SERVICE}/add"), "[2, ").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT".into())
    );
    let (s, b) = post(gw, &format!("/ok/{SERVICE}/add"), r#"[2, "three"]"#).await;
    assert_eq!(
        (s, b["error"]["message"].clone()),
        (
            StatusCode::BAD_REQUEST,
            json!("b: expected a number (int), got string \"three\"")
        )
    );
    let (s, b) = post(
        gw,
        &format!("/ok/{SERVICE}/add"),
        &format!("[\"{}\"]", "x".repeat(5000)),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE".into())
    );
    let (s, b) = post(gw, &format!("/ok/{SERVICE}/fail"), r#"["boom"]"#).await;
    assert_eq!(
        (s, b["error"]["exception"].clone()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!("java.lang.IllegalArgumentException")
        )
    );
    assert!(
        b["error"].get("detail").is_none(),
        "no stack traces to the public"
    );
    let (s, b) = post(gw, &format!("/ok/{SERVICE}/nope"), "[]").await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "NOT_FOUND".into()));
    let (s, b) = post(gw, &format!("/bad/{SERVICE}/add"), "[1, 2]").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_GATEWAY, "BAD_GATEWAY".into()),
        "{b}"
    );
    let (s, b) = post(gw, &format!("/down/{SERVICE}/add"), "[1, 2]").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE".into())
    );
    let (s, b) = post(gw, &format!("/slow/{SERVICE}/add"), "[1, 2]").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::GATEWAY_TIMEOUT, "DEADLINE_EXCEEDED".into())
    );
    // The gateway is unharmed by all of the above.
    assert_eq!(
        post(gw, &format!("/ok/{SERVICE}/add"), r#"{"a": 2, "b": 3}"#).await,
        (StatusCode::OK, json!(5))
    );
}

#[test]
fn validate_reports_every_problem_with_its_location() {
    let yaml = "listeners: [{name: http, address: 'nowhere'}]\nclusters: [{name: a, endpoints: []}, {name: a, endpoints: ['127.0.0.1:1']}]\nroutes: [{cluster: b}, {cluster: a, path: '/x/{id}', params: [{from: 'path.nope', type: 'List<'}]}]\nlimits: {idle_timeout_ms: 0}\n";
    let err = gateway::config::from_figment(Figment::new().merge(Yaml::string(yaml)), "test.yaml")
        .expect_err("invalid")
        .to_string();
    for expected in [
        "test.yaml: listeners[0].address",
        "test.yaml: clusters[0].endpoints: a cluster needs at least one endpoint",
        "test.yaml: clusters[1].name: cluster \"a\" is defined twice",
        "test.yaml: routes[0].cluster: no cluster is named \"b\"",
        "test.yaml: routes[0]: a generic route needs an application or a prefix",
        "test.yaml: routes[1].interface",
        "test.yaml: routes[1].params[0].type: invalid Java type",
        "test.yaml: routes[1].params[0].from: the path template has no {nope}",
        "test.yaml: limits.idle_timeout_ms: must be at least 100",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let typo =
        gateway::config::from_figment(Figment::new().merge(Yaml::string("clustrs: []")), "t.yaml")
            .expect_err("unknown field")
            .to_string();
    assert!(typo.contains("clustrs"), "{typo}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_cleartext_and_header_limits_on_one_port() {
    let ok = rust_provider(DemoService::default()).await;
    let gw = gateway(&[("ok", ok)], "").await;
    // HTTP/2 with prior knowledge, on the same port as HTTP/1.1.
    let h2 = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let req = Request::post(format!("http://{gw}/ok/{SERVICE}/sayHello"))
        .body(Full::new(Bytes::from_static(b"[\"h2\"]")))
        .expect("request");
    let resp = h2.request(req).await.expect("h2 response");
    assert_eq!(
        (resp.version(), resp.status()),
        (http::Version::HTTP_2, StatusCode::OK)
    );
    assert_eq!(
        &resp.into_body().collect().await.expect("body").to_bytes()[..],
        b"\"Hello, h2\""
    );
    // Headers beyond the limit (16 KiB by default) are refused with 431.
    let h1 = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = Request::post(format!("http://{gw}/ok/{SERVICE}/sayHello"))
        .header("x-big", "a".repeat(20_000))
        .body(Full::new(Bytes::from_static(b"[\"x\"]")))
        .expect("request");
    assert_eq!(
        h1.request(req).await.expect("response").status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

/// A provider that answers every call with what it received: service version, attachments and
/// arguments, as a map.
async fn capture_provider() -> SocketAddr {
    use bytes::BytesMut;
    use dubbo_codec::dubbo2::{FrameDecoder, Request as DubboRequest, RequestKind, Response};
    use dubbo_codec::hessian::{List, Map, Value};
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut buf, mut decoder) = (BytesMut::new(), FrameDecoder::default());
                loop {
                    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
                        let Ok(DubboRequest {
                            id,
                            kind: RequestKind::Invocation(inv),
                            ..
                        }) = DubboRequest::decode(&frame)
                        else {
                            continue;
                        };
                        let attachments = inv
                            .attachments
                            .0
                            .into_iter()
                            .map(|(k, v)| (Value::String(k), v))
                            .collect();
                        let seen = Value::Map(Map::untyped(vec![
                            (
                                "version".into(),
                                inv.service_version.map_or(Value::Null, Value::String),
                            ),
                            ("types".into(), inv.parameter_types.into()),
                            ("attachments".into(), Value::Map(Map::untyped(attachments))),
                            ("args".into(), Value::List(List::untyped(inv.arguments))),
                        ]));
                        let mut out = BytesMut::new();
                        Response::value(id, seen, None)
                            .encode(&mut out)
                            .expect("enc");
                        let _ = s.write_all(&out).await;
                    }
                    if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_become_version_group_and_attachments() {
    let capture = capture_provider().await;
    let declared = "  - {method: POST, path: '/orders/{id}', cluster: cap, interface: demo.Orders, call: place, version: '2.0.0', params: [{from: path.id, type: long}, {from: header.x-user, type: java.lang.String}, {from: body.item, type: java.lang.String}, {from: query.qty, type: int}]}\n";
    // Declared routes go in the routes list, so this gateway's YAML is written out in full.
    let yaml = format!("listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\nmetadata: {{backend: memory, grpc_address: ''}}\nclusters: [{{name: cap, endpoints: ['{capture}']}}]\nroutes:\n  - {{application: cap, cluster: cap}}\n{declared}");
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let gw = running.listeners[0];

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = Request::post(format!("http://{gw}/cap/demo.S/m"))
        .header("x-dubbo-version", "1.2.3")
        .header("x-dubbo-service-group", "blue")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Full::new(Bytes::from_static(b"[1]")))
        .expect("request");
    let resp = client.request(req).await.expect("response");
    let seen: Json =
        serde_json::from_slice(&resp.into_body().collect().await.expect("body").to_bytes())
            .expect("json");
    assert_eq!(seen["version"], json!("1.2.3"));
    assert_eq!(seen["attachments"]["group"], json!("blue"));
    assert_eq!(seen["attachments"]["version"], json!("1.2.3"));
    assert_eq!(
        seen["attachments"]["traceparent"],
        json!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(seen["attachments"]["path"], json!("demo.S"));

    let req = Request::post(format!("http://{gw}/orders/42?qty=3"))
        .header("x-user", "alice")
        .body(Full::new(Bytes::from_static(br#"{"item": "pen"}"#)))
        .expect("request");
    let resp = client.request(req).await.expect("response");
    let seen: Json =
        serde_json::from_slice(&resp.into_body().collect().await.expect("body").to_bytes())
            .expect("json");
    assert_eq!(
        seen["types"],
        json!("JLjava/lang/String;Ljava/lang/String;I")
    );
    assert_eq!(seen["args"], json!([42, "alice", "pen", 3]));
    assert_eq!(
        seen["version"],
        json!("2.0.0"),
        "the route's version when no header overrides it"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_and_graceful_shutdown() {
    let slow = rust_provider(DemoService::slow(Duration::from_millis(500))).await;
    let yaml = format!("listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: '127.0.0.1:0'}}\nmetadata: {{backend: memory, grpc_address: ''}}\nclusters: [{{name: slow, endpoints: ['{slow}']}}]\nroutes: [{{application: slow, cluster: slow}}]\n");
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .expect("valid");
    let running = gateway::app::start(config).await.expect("start");
    let (gw, admin) = (running.listeners[0], running.admin.expect("admin"));
    assert_eq!(
        send(admin, Method::GET, "/live", "").await,
        (StatusCode::OK, json!({"live": true}))
    );
    assert_eq!(
        send(admin, Method::GET, "/ready", "").await,
        (StatusCode::OK, json!({"ready": true}))
    );
    let (status, dump) = send(admin, Method::GET, "/config_dump", "").await;
    assert_eq!(
        (status, dump["config"]["clusters"][0]["name"].clone()),
        (StatusCode::OK, json!("slow"))
    );
    assert_eq!(
        send(admin, Method::GET, "/nope", "").await.0,
        StatusCode::NOT_FOUND
    );

    // A request in flight when shutdown begins still gets its answer.
    let in_flight =
        tokio::spawn(
            async move { post(gw, &format!("/slow/{SERVICE}/sayHello"), r#"["late"]"#).await },
        );
    tokio::time::sleep(Duration::from_millis(100)).await;
    running.shutdown().await;
    assert_eq!(
        in_flight.await.expect("task"),
        (StatusCode::OK, json!("Hello, late"))
    );
    // And nothing new is accepted.
    assert!(
        tokio::net::TcpStream::connect(gw).await.is_err(),
        "the listener is closed"
    );
}

#[test]
fn every_example_config_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("configs/") {
        let path = entry.expect("entry").path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "toml")
        ) {
            gateway::config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} example configs");
}
