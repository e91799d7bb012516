//! The gateway's own HTTP/2 server, spoken to frame by frame for what real clients (grpcio,
//! grpc-js, curl, hyper, h2load — see the other suites) rarely do: tiny flow-control windows,
//! resets mid-answer, malformed requests, oversized heads and broken frames. Requests under
//! `/big`, `/echo` and `/chunked` are proxied to Node's `http` server
//! (`peers/node/http_upstream.js`); `http2_lifecycle.rs` has abuse, stalls, shutdown and idle.

mod h2_frames;

use std::time::Duration;

use bytes::BytesMut;
use h2_frames::*;
use http_bridge::h2::hpack::Indexing;

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
        assert!(
            c.closed_within(2).await.is_ok(),
            "{name}: the connection stays open"
        );
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
