//! Plain HTTP proxying: requests under an `http_routes` prefix reach an `http` cluster as they
//! are (method, path, query, headers and body streamed), hop-by-hop headers stay behind,
//! `x-forwarded-for` is added, HTTP/2 callers reach an HTTP/1.1 upstream, and the usual errors
//! and limits apply. The caller is curl.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use figment::providers::{Format, Yaml};
use figment::Figment;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Value as Json};

/// An HTTP/1.1 upstream that answers with what it received, as JSON.
async fn echo_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let headers: serde_json::Map<String, Json> = parts
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("?"))))
                        .collect();
                    let seen = json!({
                        "method": parts.method.as_str(),
                        "uri": parts.uri.to_string(),
                        "version": format!("{:?}", parts.version),
                        "headers": headers,
                        "body": String::from_utf8_lossy(&body),
                    });
                    let mut response = Response::new(Full::new(Bytes::from(seen.to_string())));
                    response
                        .headers_mut()
                        .insert("x-upstream", "echo".parse().expect("value"));
                    response
                        .headers_mut()
                        .insert("content-type", "application/json".parse().expect("value"));
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_are_proxied_as_they_are() {
    if testkit::peers::require("curl", testkit::peers::which("curl")).is_none() {
        return;
    }
    let upstream = echo_upstream().await;
    let down = testkit::peers::free_port();
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         clusters:\n\
         \x20 - {{name: web, protocol: http, endpoints: ['{upstream}']}}\n\
         \x20 - {{name: gone, protocol: http, endpoints: ['127.0.0.1:{down}'], connect_timeout_ms: 300}}\n\
         http_routes:\n\
         \x20 - {{prefix: /web/, cluster: web}}\n\
         \x20 - {{prefix: /gone/, cluster: gone}}\n\
         \x20 - {{prefix: /limited/, cluster: web, rate_limit: {{requests_per_second: 1, burst: 1, key: global}}}}\n"
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let base = format!("http://{}", running.listeners[0]);
    let call = common::curl;

    // A POST with a query, a body, an end-to-end header and hop-by-hop ones.
    let (status, head, body) = call(vec![
        "-X".into(),
        "PUT".into(),
        "-H".into(),
        "x-custom: kept".into(),
        "-H".into(),
        "connection: keep-alive, x-hop".into(),
        "-H".into(),
        "x-hop: dropped".into(),
        "-H".into(),
        "x-forwarded-for: 203.0.113.9".into(),
        "--data-binary".into(),
        "payload bytes".into(),
        format!("{base}/web/items/7?q=a%20b&x=1"),
    ])
    .await;
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase().contains("x-upstream: echo"),
        "{head}"
    );
    let seen: Json = serde_json::from_str(&body).expect("json");
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["uri"], "/web/items/7?q=a%20b&x=1");
    assert_eq!(seen["body"], "payload bytes");
    assert_eq!(seen["headers"]["x-custom"], "kept");
    assert_eq!(
        seen["headers"]["x-hop"],
        Json::Null,
        "named in Connection: hop-by-hop"
    );
    assert_eq!(seen["headers"]["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(
        seen["headers"]["host"],
        running.listeners[0].to_string(),
        "the caller's Host"
    );

    // HTTP/2 (prior knowledge) in, HTTP/1.1 out.
    let (status, _, body) = call(vec![
        "--http2-prior-knowledge".into(),
        format!("{base}/web/h2"),
    ])
    .await;
    assert_eq!(status, 200);
    let seen: Json = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (seen["method"].as_str(), seen["version"].as_str()),
        (Some("GET"), Some("HTTP/1.1"))
    );

    // The upstream is down: 503 with the JSON error.
    let (status, _, body) = call(vec![format!("{base}/gone/x")]).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("UNAVAILABLE"), "{body}");
    // Rate limited: 429 with Retry-After.
    assert_eq!(call(vec![format!("{base}/limited/a")]).await.0, 200);
    let (status, head, _) = call(vec![format!("{base}/limited/b")]).await;
    assert_eq!(status, 429);
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    running.shutdown().await;
}

/// What Node's `http_upstream.js` sends for `/chunked` and `/big`: "a".."z" repeating.
fn pattern(n: usize) -> String {
    (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

/// The proxy's own HTTP/1.1 client against Node's `http` server and a raw TCP server: body
/// framings (content-length, chunked, until close, none), uploads buffered and streamed,
/// connection reuse, idle connections the upstream closed, and broken answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_http_upstreams_are_spoken_to_correctly() {
    let (Some(_), Some(node)) = (
        testkit::peers::require("curl", testkit::peers::which("curl")),
        testkit::peers::require("node", testkit::peers::node_dir()),
    ) else {
        return;
    };
    let raw = testkit::peers::free_port();
    let mut command = tokio::process::Command::new("node");
    // Node closes connections idle for 300 ms (+1 s): the gateway must notice, not fail.
    command
        .arg(node.join("http_upstream.js"))
        .arg("300")
        .arg(raw.to_string());
    let (port, _upstream) = testkit::peers::spawn_listening(command).await;
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         workers: 1\n\
         clusters:\n\
         \x20 - {{name: node, protocol: http, endpoints: ['127.0.0.1:{port}']}}\n\
         \x20 - {{name: raw, protocol: http, endpoints: ['127.0.0.1:{raw}']}}\n\
         http_routes:\n\
         \x20 - {{prefix: /raw/, cluster: raw}}\n\
         \x20 - {{prefix: /, cluster: node}}\n"
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let base = format!("http://{}", running.listeners[0]);
    let get = |path: &str| common::curl(vec![format!("{base}{path}")]);

    // Content-length.
    let (status, head, body) = get("/len").await;
    assert_eq!((status, body.as_str()), (200, "fixed body"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 10"),
        "{head}"
    );
    // Chunked, many chunks: relayed chunked, every byte in order.
    let (status, head, body) = get("/chunked?n=200&size=1000").await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(body.len(), 200_000);
    assert_eq!(body, pattern(1000).repeat(200));
    // A 3 MB body read in many pieces.
    let (status, head, body) = get("/big?bytes=3000000").await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, pattern(3_000_000));
    // HEAD and 204: no body to wait for (curl -I prints the head twice here: once for -D).
    let (status, head, body) =
        common::curl(vec!["-I".into(), format!("{base}/big?bytes=5000")]).await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 5000"),
        "{head}"
    );
    assert!(!body.contains("abcdef"), "{body}");
    assert_eq!(get("/nocontent").await.0, 204);

    // Uploads: small (sent with the head), large (streamed with its length), chunked, empty.
    let echo = |args: Vec<String>| async move {
        let (status, head, body) = common::curl(args).await;
        assert_eq!(status, 200, "{head}\n{body}");
        serde_json::from_str::<Json>(&body).expect("json")
    };
    let seen = echo(vec![
        "--data-binary".into(),
        "small body".into(),
        format!("{base}/echo"),
    ])
    .await;
    assert_eq!(
        (seen["method"].as_str(), seen["length"].as_u64()),
        (Some("POST"), Some(10))
    );
    assert_eq!(seen["headers"]["content-length"], "10");
    let file = std::env::temp_dir().join(format!("gateway-upload-{}", std::process::id()));
    std::fs::write(&file, pattern(300_000)).expect("write upload");
    let upload = format!("@{}", file.display());
    let seen = echo(vec![
        "--data-binary".into(),
        upload.clone(),
        format!("{base}/echo"),
    ])
    .await;
    assert_eq!(seen["length"], 300_000);
    assert_eq!(seen["headers"]["content-length"], "300000");
    assert_eq!(
        (seen["head"].as_str(), seen["tail"].as_str()),
        (
            Some(&pattern(16)[..]),
            Some(&pattern(300_000)[300_000 - 16..])
        )
    );
    assert!(
        seen["headers"].get("expect").is_none(),
        "Expect stays with the caller"
    );
    let seen = echo(vec![
        "-H".into(),
        "transfer-encoding: chunked".into(),
        "--data-binary".into(),
        upload,
        format!("{base}/echo"),
    ])
    .await;
    assert_eq!(seen["length"], 300_000);
    assert_eq!(seen["headers"]["transfer-encoding"], "chunked");
    let _ = std::fs::remove_file(&file);
    let seen = echo(vec!["-X".into(), "POST".into(), format!("{base}/echo")]).await;
    assert_eq!(
        (
            seen["length"].as_u64(),
            seen["headers"]["content-length"].as_str()
        ),
        (Some(0), Some("0"))
    );

    // Connection reuse: one upstream connection serves calls in turn (one worker: pools are
    // per worker).
    let port_of = |path: &'static str| {
        let base = base.clone();
        async move {
            let (status, _, body) = common::curl(vec![format!("{base}{path}")]).await;
            assert_eq!(status, 200, "{body}");
            serde_json::from_str::<Json>(&body).expect("json")["port"].as_u64()
        }
    };
    let first = port_of("/conn").await;
    assert_eq!(
        port_of("/conn").await,
        first,
        "the pooled connection is reused"
    );
    // Node closes it once idle for 300 ms (plus Node's own 1 s grace): the next call
    // notices and opens another.
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    assert_ne!(port_of("/conn").await, first);
    // `connection: close` answers are read whole and their connection not pooled.
    let (status, _, body) = get("/close").await;
    assert_eq!((status, body.as_str()), (200, "bye"));
    assert!(port_of("/conn").await.is_some());

    // A body delimited by the connection closing.
    let (status, _, body) = get("/raw/until-close").await;
    assert_eq!((status, body.as_str()), (200, "read until the end"));
    // A body cut short: the caller sees the head, then a broken transfer (never 100 bytes).
    let (status, _, body) = get("/raw/cut").await;
    assert_eq!(status, 200);
    assert!(body.len() < 100, "{body}");
    // Transfer-Encoding and Content-Length both: the chunked body, whole.
    let (status, head, body) = get("/raw/te-and-cl").await;
    assert_eq!((status, body.as_str()), (200, "hello"), "{head}");
    // An upstream refusing a large upload before reading it: its 413 reaches the caller.
    let file = std::env::temp_dir().join(format!("gateway-early-{}", std::process::id()));
    std::fs::write(&file, pattern(4_000_000)).expect("write upload");
    let (status, _, body) = common::curl(vec![
        "--data-binary".into(),
        format!("@{}", file.display()),
        format!("{base}/raw/early"),
    ])
    .await;
    let _ = std::fs::remove_file(&file);
    // (curl sent `Expect: 100-continue`: its "body" starts with the final head.)
    assert_eq!(status, 413, "{body}");
    assert!(body.ends_with("\r\n\r\ntoo big\n"), "{body}");
    // Not HTTP: 502; closed without a word: 503 with the JSON error.
    let (status, _, body) = get("/raw/garbage").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("BAD_GATEWAY"), "{body}");
    let (status, _, body) = get("/raw/silent-close").await;
    assert_eq!(status, 503, "{body}");
    // And the gateway still serves.
    assert_eq!(get("/len").await.0, 200);
    running.shutdown().await;
}
