//! Every mapping style and type family of the HTTP mapping, end to end through the gateway to two
//! providers: our Rust sample provider and the npm `apache-dubbo-service` one (a third-party
//! hessian2 decoder and encoder). The `echo` method of the demo contract returns its argument, so
//! each case sends a JSON value converted by a declared Java type and checks what comes back.
//!
//! The npm package reads arguments without type information (class names are dropped), so a
//! `BigDecimal` or enum comes back from it as a map of the fields it received: that still proves
//! the bytes we sent were a well-formed object of that class with the right field values.

mod common;

use std::net::SocketAddr;

use http::{Method, StatusCode};
use serde_json::Value as Json;
use testkit::demo::DemoService;
use testkit::peers::NodeProvider;

use common::{gateway, post, rust_provider, send, SERVICE};

/// Signatures for the named-argument cases: `echo` overloaded by parameter name, `add` with two
/// named ints, and the classes they use.
fn config(clusters: &[&str]) -> String {
    let mut routes = String::new();
    for c in clusters {
        routes.push_str(&format!(
            "  - {{method: GET, path: '/{c}-api/users', cluster: {c}, interface: {SERVICE}, call: listUsers, params: [{{from: query.count, type: int}}]}}\n\
             \x20 - {{method: GET, path: '/{c}-api/hello/{{name}}', cluster: {c}, interface: {SERVICE}, call: sayHello, params: [{{from: path.name, type: java.lang.String}}]}}\n\
             \x20 - {{method: PUT, path: '/{c}-api/users/{{id}}', cluster: {c}, interface: {SERVICE}, call: echoUser, params: [{{from: body, type: org.apache.dubbo.demo.User}}]}}\n\
             \x20 - {{method: GET, path: '/{c}-api/greeting', cluster: {c}, interface: {SERVICE}, call: sayHello, params: [{{from: header.x-name, type: java.lang.String}}]}}\n"
        ));
    }
    format!(
        "{routes}services:
  - interface: {SERVICE}
    methods:
      - {{ name: add, params: [{{ name: a, type: int }}, {{ name: b, type: int }}] }}
      - {{ name: echo, params: [{{ name: decimal, type: java.math.BigDecimal }}] }}
      - {{ name: echo, params: [{{ name: color, type: org.apache.dubbo.demo.Color }}] }}
      - {{ name: echo, params: [{{ name: tags, type: 'java.util.Set<java.lang.String>' }}] }}
      - {{ name: echo, params: [{{ name: scores, type: 'java.util.Map<java.lang.String, java.lang.Long>' }}] }}
      - {{ name: echo, params: [{{ name: bytes, type: 'byte[]' }}] }}
      - {{ name: echo, params: [{{ name: when, type: java.util.Date }}] }}
      - {{ name: echo, params: [{{ name: users, type: 'java.util.List<org.apache.dubbo.demo.User>' }}] }}
types:
  - class: org.apache.dubbo.demo.User
    properties:
      - {{ name: id, type: long }}
      - {{ name: name, type: java.lang.String }}
      - {{ name: age, type: int }}
      - {{ name: email, type: java.lang.String }}
  - class: org.apache.dubbo.demo.Color
    constants: [RED, GREEN, BLUE]
"
    )
}

/// One call: the request body for `echo`, and the JSON text expected back from each provider
/// (`None` where the npm package cannot answer because of a documented bug of its own).
struct Case {
    name: &'static str,
    body: &'static str,
    rust: &'static str,
    npm: Option<&'static str>,
}

const fn case(
    name: &'static str,
    body: &'static str,
    rust: &'static str,
    npm: Option<&'static str>,
) -> Case {
    Case {
        name,
        body,
        rust,
        npm,
    }
}

const ECHO_CASES: &[Case] = &[
    // Positional arguments typed by pixiu's `{types, values}`.
    case(
        "int",
        r#"{"types": "int", "values": [42]}"#,
        "42",
        Some("42"),
    ),
    case(
        "negative long beyond 2^53, exact",
        r#"{"types": "long", "values": ["-9007199254740993"]}"#,
        "-9007199254740993",
        // hessian.js turns unsafe longs into strings: the exact digits still arrive.
        Some(r#""-9007199254740993""#),
    ),
    case(
        "double",
        r#"{"types": "double", "values": [1.5]}"#,
        "1.5",
        Some("1.5"),
    ),
    case(
        "boolean",
        r#"{"types": ["boolean"], "values": [true]}"#,
        "true",
        Some("true"),
    ),
    case(
        "string with non-BMP characters",
        r#"{"types": "java.lang.String", "values": ["héllo 🌍"]}"#,
        r#""héllo 🌍""#,
        Some(r#""héllo 🌍""#),
    ),
    case(
        "boxed null",
        r#"{"types": "java.lang.Integer", "values": [null]}"#,
        "null",
        Some("null"),
    ),
    case(
        "int array",
        r#"{"types": "int[]", "values": [[1, -2, 300000]]}"#,
        "[1, -2, 300000]",
        Some("[1, -2, 300000]"),
    ),
    case(
        "BigInteger from a string",
        r#"{"types": "java.math.BigInteger", "values": ["-123456789012345678901234567890"]}"#,
        "-123456789012345678901234567890",
        None, // hessian.js reads Java's BigInteger fields as they are (signum, mag words)
    ),
    case(
        "Date from epoch milliseconds",
        r#"{"types": "java.util.Date", "values": [1700000000123]}"#,
        r#""2023-11-14T22:13:20.123Z""#,
        Some(r#""2023-11-14T22:13:20.123Z""#),
    ),
    // Named arguments: the overload is chosen by the parameter name.
    case(
        "BigDecimal, exact",
        r#"{"decimal": "12345678901234567890.123456789"}"#,
        "12345678901234567890.123456789",
        Some(r#"{"value": "12345678901234567890.123456789"}"#),
    ),
    case(
        "enum by name",
        r#"{"color": "GREEN"}"#,
        r#""GREEN""#,
        Some(r#"{"name": "GREEN"}"#),
    ),
    case(
        "Set<String>",
        r#"{"tags": ["b", "a"]}"#,
        r#"["b", "a"]"#,
        Some(r#"["b", "a"]"#),
    ),
    case(
        "Map<String, Long>",
        r#"{"scores": {"x": 1, "y": 12345678901}}"#,
        r#"{"x": 1, "y": 12345678901}"#,
        Some(r#"{"x": 1, "y": 12345678901}"#),
    ),
    case(
        "byte[] as base64",
        r#"{"bytes": "AAEC/w=="}"#,
        r#""AAEC/w==""#,
        Some(r#""AAEC/w==""#),
    ),
    case(
        "Date from ISO-8601 with an offset",
        r#"{"when": "2026-11-22T11:00:00.5+01:00"}"#,
        r#""2026-11-22T10:00:00.500Z""#,
        Some(r#""2026-11-22T10:00:00.500Z""#),
    ),
    case(
        "List of nested POJOs, missing properties defaulted",
        r#"{"users": [{"id": 1, "name": "a"}, {"id": 2, "email": "b@x"}]}"#,
        r#"[{"id": 1, "name": "a", "age": 0, "email": null},
            {"id": 2, "name": null, "age": 0, "email": "b@x"}]"#,
        Some(
            r#"[{"id": 1, "name": "a", "age": 0, "email": null},
                {"id": 2, "name": null, "age": 0, "email": "b@x"}]"#,
        ),
    ),
];

fn parse(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad expectation {text}: {e}"))
}

async fn check_echo(gw: SocketAddr, cluster: &str, expect: impl Fn(&Case) -> Option<&str>) {
    let mut failures = Vec::new();
    for case in ECHO_CASES {
        let Some(expected) = expect(case) else {
            continue;
        };
        let (status, body) = post(gw, &format!("/{cluster}/{SERVICE}/echo"), case.body).await;
        if (status, &body) != (StatusCode::OK, &parse(expected)) {
            failures.push(format!(
                "{cluster}: {}: sent {} got {status} {body}, expected {expected}",
                case.name, case.body
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Declared routes: arguments from the path, the query, a header and the whole body.
async fn check_declared(gw: SocketAddr, cluster: &str) {
    let (status, body) = send(
        gw,
        Method::GET,
        &format!("/{cluster}-api/users?count=2"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[1]["email"], "user1@example.com", "{body}");

    let (status, body) = send(
        gw,
        Method::GET,
        &format!("/{cluster}-api/hello/w%C3%B6rld"),
        "",
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, parse(r#""Hello, wörld""#)));

    let (status, body) = send(
        gw,
        Method::PUT,
        &format!("/{cluster}-api/users/7"),
        r#"{"id": 7, "name": "alice", "age": 30}"#,
    )
    .await;
    assert_eq!(
        (status, &body["age"]),
        (StatusCode::OK, &parse("31")),
        "{body}"
    );

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::get(format!("http://{gw}/{cluster}-api/greeting"))
        .header("x-name", "header")
        .body(Default::default())
        .expect("request");
    let resp = client.request(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&bytes[..], br#""Hello, header""#);

    // The query parameter is required and typed.
    let (status, body) = send(
        gw,
        Method::GET,
        &format!("/{cluster}-api/users?count=x"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_family_through_the_rust_provider() {
    let rust = rust_provider(DemoService::default()).await;
    let gw = gateway(&[("rust", rust)], &config(&["rust"])).await;
    check_echo(gw, "rust", |c| Some(c.rust)).await;
    check_declared(gw, "rust").await;
    // Named arguments for a two-parameter method, in any order.
    assert_eq!(
        post(gw, &format!("/rust/{SERVICE}/add"), r#"{"b": 3, "a": 2}"#).await,
        (StatusCode::OK, parse("5"))
    );
    // A no-argument method with an empty body.
    let (status, body) = post(gw, &format!("/rust/{SERVICE}/now"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.as_str().is_some_and(|s| s.ends_with('Z')), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_family_through_the_npm_provider() {
    let Some(npm) = NodeProvider::start().await else {
        return;
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], npm.port));
    let gw = gateway(&[("npm", addr)], &config(&["npm"])).await;
    check_echo(gw, "npm", |c| c.npm).await;
    check_declared(gw, "npm").await;

    let (status, body) = post(gw, &format!("/npm/{SERVICE}/now"), "[]").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.as_str().is_some_and(|s| s.ends_with('Z')), "{body}");

    // The version header reaches the provider: the package serves version 0.0.0 only.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(format!("http://{gw}/npm/{SERVICE}/sayHello"))
        .header("x-dubbo-version", "9.9.9")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"[\"x\"]",
        )))
        .expect("request");
    let resp = client.request(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Errors decided by the gateway before the provider is called, and by the provider.
    for (body, status) in [
        (r#"{"color": "PINK"}"#, StatusCode::BAD_REQUEST),
        (r#"{"decimal": "1.2.3"}"#, StatusCode::BAD_REQUEST),
        (
            r#"{"types": "int", "values": [2147483648]}"#,
            StatusCode::BAD_REQUEST,
        ),
        (r#"{"scores": {"x": "y"}}"#, StatusCode::BAD_REQUEST),
        (r#"["#, StatusCode::BAD_REQUEST),
    ] {
        let (got, reply) = post(gw, &format!("/npm/{SERVICE}/echo"), body).await;
        assert_eq!(got, status, "{body} → {reply}");
        assert!(reply["error"]["message"].as_str().is_some(), "{reply}");
    }
    let (status, reply) = post(gw, &format!("/npm/{SERVICE}/noSuchMethod"), "[1]").await;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (StatusCode::NOT_FOUND, &Json::from("NOT_FOUND")),
        "{reply}"
    );
}
