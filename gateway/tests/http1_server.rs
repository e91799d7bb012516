//! The gateway's own HTTP/1.1 server, spoken to by real clients (Node's `http` client, curl)
//! and by a raw socket for what clients rarely send: pipelined requests, chunked uploads with
//! trailers, HTTP/1.0, malformed and oversized heads, suspect framing, bodies cut short or
//! left unread. Requests under `/` are proxied to Node's `http` server
//! (`peers/node/http_upstream.js`); anything else finds no route (404, body unread).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use figment::providers::{Format, Yaml};
use figment::Figment;
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Starts Node's upstream and a gateway in front of it (one worker, 4 KiB header limit).
async fn gateway_before_node(node: &std::path::Path) -> (SocketAddr, tokio::process::Child) {
    gateway_with_limits(node, "{max_header_bytes: 4096}").await
}

/// The same, with `limits` as given (YAML).
async fn gateway_with_limits(
    node: &std::path::Path,
    limits: &str,
) -> (SocketAddr, tokio::process::Child) {
    let raw = testkit::peers::free_port();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(node.join("http_upstream.js"))
        .arg("5000")
        .arg(raw.to_string());
    let (port, upstream) = testkit::peers::spawn_listening(command).await;
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         workers: 1\n\
         limits: {limits}\n\
         clusters: [{{name: node, protocol: http, endpoints: ['127.0.0.1:{port}']}}]\n\
         http_routes: [{{prefix: /conn, cluster: node}}, {{prefix: /echo, cluster: node}}, {{prefix: /big, cluster: node}}]\n"
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let addr = running.listeners[0];
    std::mem::forget(running);
    (addr, upstream)
}

/// One answer read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Reads one response (content-length or chunked framing) from `buf`, reading more as needed.
async fn read_answer(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Answer> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let lower = head.to_ascii_lowercase();
            let status = head.split(' ').nth(1)?.parse().ok()?;
            let mut rest = buf.split_off(end + 4);
            std::mem::swap(buf, &mut rest);
            let length = lower
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|n| n.trim().parse::<usize>().ok());
            let body = if lower.contains("transfer-encoding: chunked") {
                read_chunked(stream, buf).await?
            } else {
                let n = length.unwrap_or(0);
                while buf.len() < n {
                    read_more(stream, buf).await?;
                }
                buf.drain(..n).collect()
            };
            return Some(Answer { status, head, body });
        }
        read_more(stream, buf).await?;
    }
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        while !buf.windows(2).any(|w| w == b"\r\n") {
            read_more(stream, buf).await?;
        }
        let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).ok()?, 16).ok()?;
        while buf.len() < line_end + 2 + size + 2 {
            read_more(stream, buf).await?;
        }
        body.extend_from_slice(&buf[line_end + 2..line_end + 2 + size]);
        buf.drain(..line_end + 2 + size + 2);
        if size == 0 {
            return Some(body);
        }
    }
}

/// Reads more bytes; `None` at end of stream or after 5 s of silence.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 16 * 1024];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await {
        Ok(Ok(n)) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
        _ => None,
    }
}

/// Whether the gateway closed the connection (reads end of stream within 5 s).
async fn closed(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    buf.is_empty() && read_more(stream, buf).await.is_none() && buf.is_empty()
}

/// Sends `request` on a fresh connection and reads one answer.
async fn once(gw: SocketAddr, request: &[u8]) -> (Answer, TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(gw).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    let answer = read_answer(&mut stream, &mut buf).await.expect("an answer");
    (answer, stream, buf)
}

fn json(answer: &Answer) -> Json {
    serde_json::from_slice(&answer.body)
        .unwrap_or_else(|_| panic!("{}{}", answer.head, String::from_utf8_lossy(&answer.body)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_http1_requests_are_framed_exactly() {
    let Some(node) = testkit::peers::require("node", testkit::peers::node_dir()) else {
        return;
    };
    let (gw, _upstream) = gateway_before_node(&node).await;

    // Three pipelined requests in one write: answered in order, the last one closing.
    let mut stream = TcpStream::connect(gw).await.expect("connect");
    stream
        .write_all(
            b"GET /conn HTTP/1.1\r\nHost: x\r\n\r\n\
              POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
              HEAD /big?bytes=777 HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /echo?last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await
        .expect("write");
    let mut buf = Vec::new();
    let first = read_answer(&mut stream, &mut buf).await.expect("first");
    assert_eq!(first.status, 200, "{}", first.head);
    let second = read_answer(&mut stream, &mut buf).await.expect("second");
    let seen = json(&second);
    assert_eq!(
        (seen["method"].as_str(), seen["length"].as_u64()),
        (Some("POST"), Some(5))
    );
    assert_eq!(seen["head"], "hello");
    // HEAD: the length is announced, no body follows (the next answer parses cleanly).
    let mut head_only = Vec::new();
    let third_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        read_more(&mut stream, &mut buf).await.expect("third");
    };
    head_only.extend(buf.drain(..third_end + 4));
    let third = String::from_utf8_lossy(&head_only).to_ascii_lowercase();
    assert!(
        third.starts_with("http/1.1 200") && third.contains("content-length: 777"),
        "{third}"
    );
    let fourth = read_answer(&mut stream, &mut buf).await.expect("fourth");
    assert_eq!(json(&fourth)["url"], "/echo?last");
    assert!(
        fourth
            .head
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{}",
        fourth.head
    );
    assert!(
        closed(&mut stream, &mut buf).await,
        "closed after `Connection: close`"
    );

    // A chunked upload with an extension and a trailer arrives whole.
    let (answer, _, _) = once(
        gw,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    )
    .await;
    let seen = json(&answer);
    assert_eq!(
        (seen["length"].as_u64(), seen["head"].as_str()),
        (Some(11), Some("hello world"))
    );

    // HTTP/1.0: closed after the answer unless it asks for keep-alive.
    let (answer, mut stream, mut buf) = once(gw, b"GET /conn HTTP/1.0\r\n\r\n").await;
    assert!(answer.head.starts_with("HTTP/1.0 200"), "{}", answer.head);
    assert!(
        closed(&mut stream, &mut buf).await,
        "HTTP/1.0 closes by default"
    );
    let (answer, mut stream, mut buf) =
        once(gw, b"GET /conn HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await;
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("connection: keep-alive"),
        "{}",
        answer.head
    );
    stream
        .write_all(b"GET /conn HTTP/1.0\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(
        read_answer(&mut stream, &mut buf)
            .await
            .expect("again")
            .status,
        200
    );

    // Refused heads: a clear status, then the connection closes.
    let refused: [(&[u8], u16); 9] = [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET /conn HTTP/1.1\r\n\r\n", 400),
        (b"GET /conn HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc", 400),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n", 400),
        (b"GET / HTTP/3.0\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n", 400),
    ];
    for (request, status) in refused {
        let (answer, mut stream, mut buf) = once(gw, request).await;
        assert_eq!(
            answer.status,
            status,
            "{}\n{}",
            String::from_utf8_lossy(request),
            answer.head
        );
        assert!(closed(&mut stream, &mut buf).await);
    }
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(5000)
    );
    let (answer, _, _) = once(gw, big.as_bytes()).await;
    assert_eq!(answer.status, 431);

    // A body cut short: the handler sees an error, the client an error status, no hang.
    let mut stream = TcpStream::connect(gw).await.expect("connect");
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nonly this")
        .await
        .expect("write");
    stream.shutdown().await.expect("half-close");
    let mut buf = Vec::new();
    let answer = read_answer(&mut stream, &mut buf).await.expect("an answer");
    assert!(answer.status >= 400, "{}", answer.head);

    // An unread body: small ones are read past and the connection serves on; large ones close it.
    let (answer, mut stream, mut buf) = once(
        gw,
        b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
    )
    .await;
    assert_eq!(answer.status, 404, "{}", answer.head);
    stream
        .write_all(b"GET /conn HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(
        read_answer(&mut stream, &mut buf)
            .await
            .expect("reused")
            .status,
        200
    );
    let (answer, mut stream, mut buf) = once(
        gw,
        b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\nstart",
    )
    .await;
    assert_eq!(answer.status, 404);
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{}",
        answer.head
    );
    assert!(closed(&mut stream, &mut buf).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_http_clients_are_served() {
    let (Some(_), Some(node)) = (
        testkit::peers::require("curl", testkit::peers::which("curl")),
        testkit::peers::require("node", testkit::peers::node_dir()),
    ) else {
        return;
    };
    let (gw, _upstream) = gateway_before_node(&node).await;

    // Node's client: keep-alive, 100-continue, a chunked upload, a large download.
    let out = tokio::process::Command::new("node")
        .arg(node.join("http1_client.js"))
        .arg(gw.port().to_string())
        .output()
        .await
        .expect("node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Json = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        seen["reused"], 19,
        "twenty requests on one connection: {seen}"
    );
    assert_eq!(seen["continue"]["status"], 200, "{seen}");
    assert_eq!(
        seen["continue"]["continued"], true,
        "100 Continue was sent: {seen}"
    );
    assert_eq!(seen["continue"]["seen"]["length"], 200_000, "{seen}");
    assert_eq!(seen["chunked"]["seen"]["length"], 10_000, "{seen}");
    assert_eq!(
        seen["chunked"]["seen"]["head"], "aaaaaaaaaaaaaaaa",
        "{seen}"
    );
    assert_eq!(
        seen["chunked"]["seen"]["tail"], "jjjjjjjjjjjjjjjj",
        "{seen}"
    );
    assert_eq!(seen["big"]["length"], 2_000_000, "{seen}");
    assert_eq!(seen["big"]["hash_matches"], true, "{seen}");

    // curl: HTTP/1.0, and HTTP/2 with prior knowledge on the same port.
    let (status, head, _) =
        common::curl(vec!["--http1.0".into(), format!("http://{gw}/conn")]).await;
    assert_eq!(status, 200, "{head}");
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    let (status, head, body) = common::curl(vec![
        "--http2-prior-knowledge".into(),
        "--data-binary".into(),
        "over h2".into(),
        format!("http://{gw}/echo"),
    ])
    .await;
    assert_eq!(status, 200, "{head}");
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert_eq!(
        serde_json::from_str::<Json>(&body).expect("json")["length"],
        7
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let Some(node) = testkit::peers::require("node", testkit::peers::node_dir()) else {
        return;
    };
    let (gw, _upstream) =
        gateway_with_limits(&node, "{max_header_bytes: 4096, idle_timeout_ms: 400}").await;
    let (answer, mut stream, _) = once(gw, b"GET /echo HTTP/1.1\r\nhost: gw\r\n\r\n").await;
    assert_eq!(answer.status, 200);
    let answered = std::time::Instant::now();
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
        .await
        .expect("closed within 5 s (the default would keep it 60 s)")
        .expect("read");
    assert_eq!(n, 0, "closed without a word");
    // The timer starts when the answer has been written, a moment before it was read here
    // (half the timeout: only "closed at once" must fail, not a slow machine).
    assert!(
        answered.elapsed() >= Duration::from_millis(200),
        "kept open for the idle timeout first: {:?}",
        answered.elapsed()
    );
}
