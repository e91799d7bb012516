//! The gateway's own HTTP/2 server over a connection's life, frame by frame: floods of rapid
//! resets and empty frames cut off, a client that stops reading and vanishes, the two-phase
//! drain on shutdown, and the idle timeout. Requests are proxied to Node's `http` server
//! (`peers/node/http_upstream.js`); `http2_server.rs` has requests and frames.

mod h2_frames;

use std::time::Duration;

use bytes::BytesMut;
use h2_frames::*;
use http_bridge::h2::hpack::Indexing;
use tokio::io::AsyncWriteExt;

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
    assert!(
        c.closed_within(5).await.is_ok(),
        "the connection stays open"
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
    assert!(
        c.closed_within(5).await.is_ok(),
        "the connection stays open"
    );
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
    let end = c.closed_within(5).await.expect("the connection closes");
    assert!(end.is_ok(), "{end:?}");
}
