//! Plain HTTP proxying: requests under an `http_routes` prefix reach an `http` cluster as they
//! are (method, path, query, headers and body streamed), hop-by-hop headers stay behind,
//! `x-forwarded-for` is added, HTTP/2 callers reach an HTTP/1.1 upstream, and the usual errors
//! and limits apply. The caller is curl.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;

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

/// curl's answer: (status, headers text, body).
fn curl(args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
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
    let call = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            curl(&args)
        })
        .await
        .expect("curl")
    };

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
