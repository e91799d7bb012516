//! The gateway's own HTTP/2 server, spoken to frame by frame for what real clients (grpcio,
//! grpc-js, curl, hyper, h2load — see the other suites) rarely do: tiny flow-control windows,
//! resets mid-answer, malformed requests, oversized heads, broken frames, pings and a drain
//! on shutdown. Requests under `/big`, `/echo` and `/chunked` are proxied to Node's `http`
//! server (`peers/node/http_upstream.js`).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use figment::providers::{Format, Yaml};
use figment::Figment;
use http_bridge::h2::hpack::{Decoder, Encoder, FieldName, Indexing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;

async fn gateway(node: &std::path::Path) -> (gateway::app::Running, tokio::process::Child) {
    gateway_with_limits(node, "{max_header_bytes: 4096}").await
}

/// The same, with `limits` as given (YAML).
async fn gateway_with_limits(
    node: &std::path::Path,
    limits: &str,
) -> (gateway::app::Running, tokio::process::Child) {
    let mut command = tokio::process::Command::new("node");
    command
        .arg(node.join("http_upstream.js"))
        .arg("5000")
        .arg(testkit::peers::free_port().to_string());
    let (port, upstream) = testkit::peers::spawn_listening(command).await;
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         workers: 1\n\
         limits: {limits}\n\
         clusters: [{{name: node, protocol: http, endpoints: ['127.0.0.1:{port}']}}]\n\
         http_routes: [{{prefix: /big, cluster: node}}, {{prefix: /echo, cluster: node}}, {{prefix: /chunked, cluster: node}}, {{prefix: /slow, cluster: node}}, {{prefix: /aborted, cluster: node}}]\n"
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    (gateway::app::start(config).await.expect("start"), upstream)
}

#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// A client connection, frame by frame.
struct Client {
    socket: TcpStream,
    buf: BytesMut,
    encoder: Encoder,
    decoder: Decoder,
    /// The server's SETTINGS, as (id, value).
    settings: Vec<(u16, u32)>,
}

impl Client {
    /// Connects with the preface and `settings`, and reads the server's SETTINGS.
    async fn connect(addr: SocketAddr, settings: &[(u16, u32)]) -> Client {
        let socket = TcpStream::connect(addr).await.expect("connect");
        let mut c = Client {
            socket,
            buf: BytesMut::new(),
            encoder: Encoder::default(),
            decoder: Decoder::new(4096),
            settings: Vec::new(),
        };
        c.socket
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .expect("preface");
        let payload: Vec<u8> = settings
            .iter()
            .flat_map(|(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes()))
            .collect();
        c.send(SETTINGS, 0, 0, &payload).await;
        let first = c.frame().await;
        assert_eq!(
            (first.kind, first.stream),
            (SETTINGS, 0),
            "the server's SETTINGS first"
        );
        c.settings = first
            .payload
            .chunks(6)
            .map(|s| {
                (
                    u16::from_be_bytes([s[0], s[1]]),
                    u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                )
            })
            .collect();
        c
    }

    async fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        self.socket.write_all(&out).await.expect("write");
    }

    async fn frame(&mut self) -> Frame {
        loop {
            if self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16)
                    | (usize::from(self.buf[1]) << 8)
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let head = self.buf.split_to(9);
                    return Frame {
                        kind: head[3],
                        flags: head[4],
                        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]),
                        payload: self.buf.split_to(len).to_vec(),
                    };
                }
            }
            let n =
                tokio::time::timeout(Duration::from_secs(5), self.socket.read_buf(&mut self.buf))
                    .await
                    .expect("a frame within 5 s")
                    .expect("read");
            assert!(n > 0, "the server closed the connection");
        }
    }

    /// The next frame on `stream` (or of `kind` on stream 0), skipping the rest.
    async fn next(&mut self, stream: u32, kind: Option<u8>) -> Frame {
        loop {
            let f = self.frame().await;
            if f.stream == stream && kind.is_none_or(|k| k == f.kind) {
                return f;
            }
        }
    }

    /// Sends a request's HEADERS: the pseudo-headers, then `extra`.
    async fn request(
        &mut self,
        stream: u32,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        end: bool,
    ) {
        let mut block = BytesMut::new();
        self.encoder.begin(&mut block);
        for (n, v) in [
            (":method", method),
            (":scheme", "http"),
            (":authority", "gw"),
            (":path", path),
        ]
        .iter()
        .chain(extra)
        {
            self.encoder
                .field(n.as_bytes(), v.as_bytes(), Indexing::Yes, &mut block);
        }
        let flags = END_HEADERS | if end { END_STREAM } else { 0 };
        self.send(HEADERS, flags, stream, &block).await;
    }

    /// The `:status` of a HEADERS frame, and its fields.
    fn head(&mut self, f: &Frame) -> (u16, Vec<(String, String)>) {
        assert_eq!(f.kind, HEADERS, "{f:?}");
        let (mut status, mut fields) = (0, Vec::new());
        self.decoder
            .decode(&f.payload, |field| match field.name {
                FieldName::Status => {
                    status = field.value.to_str().unwrap_or("0").parse().unwrap_or(0)
                }
                FieldName::Header(n) => fields.push((
                    n.to_string(),
                    field.value.to_str().unwrap_or("?").to_owned(),
                )),
                FieldName::OtherPseudo(_) => panic!("a pseudo-header in a response"),
                FieldName::Malformed(why) => panic!("a malformed field in a response: {why}"),
            })
            .expect("valid HPACK");
        (status, fields)
    }

    /// Reads a whole answer on `stream`: (status, body).
    async fn answer(&mut self, stream: u32) -> (u16, Vec<u8>) {
        let head = self.next(stream, Some(HEADERS)).await;
        let status = self.head(&head).0;
        let mut body = Vec::new();
        if head.flags & END_STREAM != 0 {
            return (status, body);
        }
        loop {
            let f = self.next(stream, None).await;
            match f.kind {
                // Answers here are small: the default window holds them.
                DATA => body.extend_from_slice(&f.payload),
                HEADERS => {
                    self.head(&f);
                }
                other => panic!("frame type {other} on stream {stream}"),
            }
            if f.flags & END_STREAM != 0 {
                return (status, body);
            }
        }
    }
}

fn node_dir() -> Option<std::path::PathBuf> {
    testkit::peers::require("node", testkit::peers::node_dir())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_respect_a_tiny_window_and_bodies_stream_in() {
    let Some(node) = node_dir() else { return };
    let (gw, _upstream) = gateway(&node).await;
    let addr = gw.listeners[0];
    // A 1,000-byte stream window: the server may send no more until we give it window.
    let mut c = Client::connect(addr, &[(4, 1000)]).await;
    assert!(
        c.settings.contains(&(3, 256)),
        "256 concurrent streams: {:?}",
        c.settings
    );
    c.request(1, "GET", "/big?bytes=50000", &[], true).await;
    let head = c.next(1, Some(HEADERS)).await;
    assert_eq!(c.head(&head).0, 200);
    let mut got = 0;
    while got < 1000 {
        let f = c.next(1, Some(DATA)).await;
        got += f.payload.len();
    }
    assert_eq!(got, 1000, "exactly the window");
    let quiet = tokio::time::timeout(Duration::from_millis(300), c.next(1, Some(DATA))).await;
    assert!(quiet.is_err(), "data past the window");
    c.send(WINDOW_UPDATE, 0, 1, &49_000u32.to_be_bytes()).await;
    while got < 50_000 {
        let f = c.next(1, Some(DATA)).await;
        got += f.payload.len();
        if f.flags & END_STREAM != 0 {
            break;
        }
    }
    assert_eq!(got, 50_000);

    // A body in three DATA frames with its content-length reaches the upstream whole, and
    // split cookie fields arrive joined (RFC 9113 §8.2.3).
    let fields = [
        ("content-length", "12"),
        ("cookie", "a=1"),
        ("cookie", "b=2"),
    ];
    c.request(3, "POST", "/echo", &fields, false).await;
    for (part, end) in [(&b"abcd"[..], 0), (b"efgh", 0), (b"ijkl", END_STREAM)] {
        c.send(DATA, end, 3, part).await;
    }
    let (status, body) = c.answer(3).await;
    assert_eq!(status, 200);
    let echo: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(echo["length"], 12, "{echo}");
    assert_eq!(echo["headers"]["cookie"], "a=1; b=2", "{echo}");
    // The body's length went upstream as a length (not chunked).
    assert_eq!(echo["headers"]["content-length"], "12", "{echo}");
    assert!(echo["headers"]["transfer-encoding"].is_null(), "{echo}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rapid_reset_flood_is_cut_off() {
    let Some(node) = node_dir() else { return };
    let (gw, _upstream) = gateway(&node).await;
    let mut c = Client::connect(gw.listeners[0], &[]).await;
    // Open and reset 1,100 streams (CVE-2023-44487): more than 1,000 in one tick.
    let mut flood = Vec::new();
    for i in 0..1100u32 {
        let id = 2 * i + 1;
        let mut block = BytesMut::new();
        c.encoder.begin(&mut block);
        for (n, v) in [
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "gw"),
            (":path", "/none"),
        ] {
            c.encoder
                .field(n.as_bytes(), v.as_bytes(), Indexing::Yes, &mut block);
        }
        for (kind, flags, payload) in [
            (HEADERS, END_HEADERS | END_STREAM, &block[..]),
            (RST_STREAM, 0, &8u32.to_be_bytes()[..]),
        ] {
            flood.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
            flood.extend_from_slice(&[kind, flags]);
            flood.extend_from_slice(&id.to_be_bytes());
            flood.extend_from_slice(payload);
        }
    }
    // The server may close mid-write: what matters is its GOAWAY.
    let _ = c.socket.write_all(&flood).await;
    let goaway = c.next(0, Some(GOAWAY)).await;
    assert_eq!(
        goaway.payload[4..8],
        11u32.to_be_bytes(),
        "ENHANCE_YOUR_CALM"
    );
    // Then the connection closes (drained, or cut).
    let mut rest = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), c.socket.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection stays open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_stream_cancels_its_upstream_call_and_the_connection_goes_on() {
    let Some(node) = node_dir() else { return };
    let (gw, _upstream) = gateway(&node).await;
    let mut c = Client::connect(gw.listeners[0], &[]).await;
    // An answer that takes 2 s (a chunk every 20 ms): reset after its head.
    c.request(1, "GET", "/slow?n=100&ms=20", &[], true).await;
    let head = c.next(1, Some(HEADERS)).await;
    assert_eq!(c.head(&head).0, 200);
    c.send(RST_STREAM, 0, 1, &8u32.to_be_bytes()).await;
    // The upstream call is abandoned (Node sees its answer cut off), and the connection
    // serves the next request.
    let mut id = 3;
    let aborted = loop {
        c.request(id, "GET", "/aborted", &[], true).await;
        let (status, body) = c.answer(id).await;
        assert_eq!(status, 200);
        let seen: serde_json::Value = serde_json::from_slice(&body).expect("json");
        if seen["aborted"] == 1 || id > 200 {
            break seen["aborted"].clone();
        }
        id += 2;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        aborted, 1,
        "the upstream answer was not abandoned within ~2 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_reset_and_oversized_heads_get_431() {
    let Some(node) = node_dir() else { return };
    let (gw, _upstream) = gateway(&node).await;
    let mut c = Client::connect(gw.listeners[0], &[]).await;
    let cases: [(&str, &[(&str, &str)]); 5] = [
        // Indexed: the connection's tables must stay in step for what follows.
        ("an uppercase field name", &[("X-Upper", "1")]),
        ("a control character in a value", &[("x-bad", "a\u{1}b")]),
        (
            "a connection-specific field",
            &[("connection", "keep-alive")],
        ),
        ("te other than trailers", &[("te", "gzip")]),
        ("content-length with no body", &[("content-length", "5")]),
    ];
    let mut id = 1;
    for (name, extra) in cases {
        c.request(id, "POST", "/echo", extra, true).await;
        let rst = c.next(id, Some(RST_STREAM)).await;
        assert_eq!(rst.payload, 1u32.to_be_bytes(), "{name}: PROTOCOL_ERROR");
        id += 2;
    }
    // No :path at all.
    let mut block = BytesMut::new();
    c.encoder.begin(&mut block);
    c.encoder
        .field(b":method", b"GET", Indexing::Yes, &mut block);
    c.encoder
        .field(b":scheme", b"http", Indexing::Yes, &mut block);
    c.send(HEADERS, END_HEADERS | END_STREAM, id, &block).await;
    assert_eq!(
        c.next(id, Some(RST_STREAM)).await.payload,
        1u32.to_be_bytes()
    );
    id += 2;
    // A body longer than its content-length.
    c.request(id, "POST", "/echo", &[("content-length", "2")], false)
        .await;
    c.send(DATA, END_STREAM, id, b"abc").await;
    assert_eq!(
        c.next(id, Some(RST_STREAM)).await.payload,
        1u32.to_be_bytes()
    );
    id += 2;
    // A body cut short by trailers.
    c.request(id, "POST", "/echo", &[("content-length", "5")], false)
        .await;
    c.send(DATA, 0, id, b"ab").await;
    let mut block = BytesMut::new();
    c.encoder.begin(&mut block);
    c.encoder
        .field(b"x-trailer", b"1", Indexing::Yes, &mut block);
    c.send(HEADERS, END_HEADERS | END_STREAM, id, &block).await;
    assert_eq!(
        c.next(id, Some(RST_STREAM)).await.payload,
        1u32.to_be_bytes()
    );
    id += 2;
    // A head over the listener's 4 KiB limit.
    let big = "x".repeat(5000);
    c.request(id, "GET", "/big?bytes=1", &[("x-big", &big)], true)
        .await;
    assert_eq!(c.answer(id).await.0, 431);
    id += 2;
    // Priorities are ignored, but a PRIORITY frame that is not 5 bytes, or makes a stream
    // depend on itself, is its stream's error (RFC 9113 §6.3, §5.3.1).
    c.request(id, "POST", "/echo", &[], false).await;
    c.send(2, 0, id, &[0; 4]).await;
    let rst = c.next(id, Some(RST_STREAM)).await;
    assert_eq!(rst.payload, 6u32.to_be_bytes(), "FRAME_SIZE_ERROR");
    id += 2;
    c.request(id, "POST", "/echo", &[], false).await;
    let mut itself = id.to_be_bytes().to_vec();
    itself.push(16); // the weight
    c.send(2, 0, id, &itself).await;
    let rst = c.next(id, Some(RST_STREAM)).await;
    assert_eq!(rst.payload, 1u32.to_be_bytes(), "PROTOCOL_ERROR");
    id += 2;
    // The connection is still good.
    c.request(id, "GET", "/big?bytes=3", &[], true).await;
    assert_eq!(c.answer(id).await, (200, b"abc".to_vec()));
    // PING is answered with its payload.
    c.send(PING, 0, 0, b"12345678").await;
    let pong = c.next(0, Some(PING)).await;
    assert_eq!((pong.flags, &pong.payload[..]), (1, &b"12345678"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_frames_close_the_connection_with_goaway() {
    let Some(node) = node_dir() else { return };
    let (gw, _upstream) = gateway(&node).await;
    let addr = gw.listeners[0];
    for (name, kind, flags, stream, payload, code) in [
        ("DATA on stream 0", DATA, 0, 0, vec![1, 2], 1u32),
        ("PRIORITY on stream 0", 2, 0, 0, vec![0; 5], 1),
        (
            "a 4-byte PRIORITY on an idle stream",
            2,
            0,
            9,
            vec![0; 4],
            6,
        ),
        ("a frame over 16 KiB", DATA, 0, 1, vec![0; 20_000], 6),
        (
            "a zero window increment",
            WINDOW_UPDATE,
            0,
            0,
            vec![0, 0, 0, 0],
            1,
        ),
        (
            "a connection window past 2^31-1",
            WINDOW_UPDATE,
            0,
            0,
            0x7fff_ffffu32.to_be_bytes().to_vec(),
            3,
        ),
        (
            "a bad HPACK index",
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            vec![0xff, 0x7f],
            9,
        ),
        ("SETTINGS of 5 bytes", SETTINGS, 0, 0, vec![0; 5], 6),
    ] {
        let mut c = Client::connect(addr, &[]).await;
        c.send(kind, flags, stream, &payload).await;
        let goaway = c.next(0, Some(GOAWAY)).await;
        assert_eq!(goaway.payload[4..8], code.to_be_bytes(), "{name}");
        // Then the server closes.
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(2), c.socket.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "{name}: the connection stays open");
    }
    // Stream ids only go up: a request on a lower one than already seen.
    let mut c = Client::connect(addr, &[]).await;
    c.request(5, "GET", "/big?bytes=1", &[], true).await;
    c.request(3, "GET", "/big?bytes=1", &[], true).await;
    let goaway = c.next(0, Some(GOAWAY)).await;
    assert_eq!(
        goaway.payload[..8],
        [0, 0, 0, 5, 0, 0, 0, 1],
        "last stream 5, PROTOCOL_ERROR"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_frame_floods_are_cut_off() {
    let Some(node) = node_dir() else { return };
    let (gw, _upstream) = gateway(&node).await;
    let mut c = Client::connect(gw.listeners[0], &[]).await;
    c.request(1, "POST", "/echo", &[], false).await;
    // CVE-2019-9518: empty DATA frames cost work and carry nothing.
    let empty: Vec<u8> = (0..2100)
        .flat_map(|_| [0, 0, 0, DATA, 0, 0, 0, 0, 1])
        .collect();
    let _ = c.socket.write_all(&empty).await;
    let goaway = c.next(0, Some(GOAWAY)).await;
    assert_eq!(
        goaway.payload[4..8],
        11u32.to_be_bytes(),
        "ENHANCE_YOUR_CALM"
    );
    // Then the connection closes (drained, or cut).
    let mut rest = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), c.socket.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection stays open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_then_vanishes_does_not_stall_the_worker() {
    let Some(node) = node_dir() else { return };
    let (gw, _upstream) = gateway(&node).await; // one worker
    let addr = gw.listeners[0];
    let c = Client::connect(addr, &[]).await;
    // Pings whose answers it never reads: far more than the socket buffers and our 1 MiB
    // of queued answers hold, so the server stops reading from it.
    let pings: Vec<u8> = (0..600_000u32)
        .flat_map(|i| {
            let mut f = vec![0, 0, 8, PING, 0, 0, 0, 0, 0];
            f.extend_from_slice(&u64::from(i).to_be_bytes());
            f
        })
        .collect();
    let mut socket = c.socket;
    let writer = tokio::spawn(async move {
        let wrote = tokio::time::timeout(Duration::from_secs(3), socket.write_all(&pings)).await;
        (wrote.is_ok(), socket)
    });
    let (finished, socket) = writer.await.expect("join");
    assert!(
        !finished,
        "the server kept reading: the state under test was not reached"
    );
    // Then it vanishes with a reset: the server's writes fail with answers still queued.
    // Linger 0: closing resets at once (nothing blocks).
    #[allow(deprecated)]
    socket.set_linger(Some(Duration::ZERO)).expect("linger");
    drop(socket);
    // The worker still serves others, again and again while the dead connection is torn
    // down (a spinning reader would starve the one worker).
    for _ in 0..10 {
        let mut other = Client::connect(addr, &[]).await;
        other.request(1, "GET", "/big?bytes=3", &[], true).await;
        assert_eq!(other.answer(1).await, (200, b"abc".to_vec()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_goaway_and_finishes_the_stream_in_flight() {
    let Some(node) = node_dir() else { return };
    let (gw, _upstream) = gateway(&node).await;
    let mut c = Client::connect(gw.listeners[0], &[]).await;
    // A request whose body is still coming when the gateway stops.
    c.request(1, "POST", "/echo", &[], false).await;
    c.send(DATA, 0, 1, b"first").await;
    let stopping = tokio::spawn(gw.shutdown());
    // First the announcement (any stream may still come) with a PING; once that is
    // answered, the final GOAWAY names the last stream taken.
    let first = c.next(0, Some(GOAWAY)).await;
    assert_eq!(first.payload[..8], [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    let ping = c.next(0, Some(PING)).await;
    c.send(PING, 1, 0, &ping.payload).await;
    let goaway = c.next(0, Some(GOAWAY)).await;
    assert_eq!(
        goaway.payload[..4],
        1u32.to_be_bytes(),
        "the last stream it will answer"
    );
    assert_eq!(goaway.payload[4..8], 0u32.to_be_bytes(), "NO_ERROR");
    // A stream opened now is refused.
    c.request(3, "GET", "/big?bytes=1", &[], true).await;
    let refused = c.next(3, Some(RST_STREAM)).await;
    assert_eq!(refused.payload, 7u32.to_be_bytes(), "REFUSED_STREAM");
    c.send(DATA, END_STREAM, 1, b"-last").await;
    let (status, body) = c.answer(1).await;
    assert_eq!(status, 200);
    let echo: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(echo["length"], 10, "{echo}");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the drain ends once the stream is answered")
        .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_idle_for_the_timeout_is_closed_but_not_while_a_stream_runs() {
    let Some(node) = node_dir() else { return };
    let (gw, _upstream) =
        gateway_with_limits(&node, "{max_header_bytes: 4096, idle_timeout_ms: 500}").await;
    let mut c = Client::connect(gw.listeners[0], &[]).await;
    // An answer that takes 1.4 s with 700 ms pauses, longer than the idle timeout: the
    // connection is busy while a stream is open, quiet or not.
    c.request(1, "GET", "/slow?n=3&ms=700", &[], true).await;
    let mut body = 0;
    loop {
        let f = c.frame().await;
        assert_ne!(f.kind, GOAWAY, "closed while a stream was open");
        if f.stream == 1 && f.kind == DATA {
            body += f.payload.len();
        }
        if f.stream == 1 && f.flags & END_STREAM != 0 {
            break;
        }
    }
    assert_eq!(body, 3000);
    let answered = std::time::Instant::now();
    // Then idle: closed as on shutdown, announced with a PING first.
    let first = c.next(0, Some(GOAWAY)).await;
    // Half the timeout: only "closed at once" must fail, not a slow machine.
    assert!(
        answered.elapsed() >= Duration::from_millis(250),
        "kept open for the idle timeout first: {:?}",
        answered.elapsed()
    );
    assert_eq!(first.payload[..8], [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    let ping = c.next(0, Some(PING)).await;
    c.send(PING, 1, 0, &ping.payload).await;
    let last = c.next(0, Some(GOAWAY)).await;
    assert_eq!(
        last.payload[..8],
        [0, 0, 0, 1, 0, 0, 0, 0],
        "last stream 1, NO_ERROR"
    );
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(5), c.socket.read_to_end(&mut rest))
        .await
        .expect("the connection closes");
    assert!(end.is_ok(), "{end:?}");
}
