//! Our HTTP/2 client against a scripted provider that writes its frames by hand: flow control,
//! concurrency limits, GOAWAY, resets, trailers-only answers, padding, CONTINUATION, HPACK
//! indexing and Huffman strings, and the protocol errors a broken provider can make. The real
//! peers (grpcio, grpc-js, the Dubbo Python provider, hyper's server) are exercised through the
//! gateway's own suites.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Request;
use http_body_util::{BodyExt, Full};
use http_bridge::h2::{Client, ClientError};
use http_bridge::triple::Body;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PUSH_PROMISE: u8 = 5;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;
const PADDED: u8 = 8;

#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// The provider's side of one connection.
struct Peer {
    socket: TcpStream,
    buf: BytesMut,
}

impl Peer {
    /// Accepts a connection, checks the preface and our SETTINGS, and sends its own.
    async fn accept(listener: &TcpListener, settings: &[(u16, u32)]) -> Peer {
        let (socket, _) = listener.accept().await.expect("accept");
        let mut peer = Peer {
            socket,
            buf: BytesMut::new(),
        };
        while peer.buf.len() < 24 {
            assert!(peer.socket.read_buf(&mut peer.buf).await.expect("read") > 0);
        }
        assert_eq!(
            &peer.buf.split_to(24)[..],
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        );
        let first = peer.frame().await;
        assert_eq!(
            (first.kind, first.stream),
            (SETTINGS, 0),
            "SETTINGS come first"
        );
        let mut payload = Vec::new();
        for (id, value) in settings {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        peer.send(SETTINGS, 0, 0, &payload).await;
        peer
    }

    async fn frame(&mut self) -> Frame {
        loop {
            if self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16)
                    | (usize::from(self.buf[1]) << 8)
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let head = self.buf.split_to(9);
                    let payload = self.buf.split_to(len).to_vec();
                    return Frame {
                        kind: head[3],
                        flags: head[4],
                        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]),
                        payload,
                    };
                }
            }
            let n =
                tokio::time::timeout(Duration::from_secs(5), self.socket.read_buf(&mut self.buf))
                    .await
                    .expect("a frame within 5 s")
                    .expect("read");
            assert!(n > 0, "the client closed the connection");
        }
    }

    /// The next frame of `kind`, skipping others (SETTINGS acks, window updates, the DATA
    /// of calls the test does not look at) but never a reset or a GOAWAY.
    async fn next(&mut self, kind: u8) -> Frame {
        loop {
            let f = self.frame().await;
            if f.kind == kind {
                return f;
            }
            assert!(
                !matches!(f.kind, RST_STREAM | GOAWAY),
                "expected frame type {kind}, got {f:?}"
            );
        }
    }

    async fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        self.socket.write_all(&out).await.expect("write");
    }

    /// `:status 200` and `content-type: application/grpc`, then `message` and `grpc-status: 0`.
    async fn answer(&mut self, stream: u32, message: &[u8]) {
        let mut head = vec![0x88];
        head.extend(literal("content-type", "application/grpc"));
        self.send(HEADERS, END_HEADERS, stream, &head).await;
        self.send(DATA, 0, stream, message).await;
        self.send(
            HEADERS,
            END_HEADERS | END_STREAM,
            stream,
            &literal("grpc-status", "0"),
        )
        .await;
    }
}

/// A field as a literal without indexing, with a literal name (lengths under 127).
fn literal(name: &str, value: &str) -> Vec<u8> {
    let mut out = vec![0x00, name.len() as u8];
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
    out
}

fn body(bytes: &'static [u8]) -> Body {
    Full::new(Bytes::from_static(bytes))
        .map_err(|never| match never {})
        .boxed()
}

fn post(listener: &TcpListener, message: &'static [u8]) -> Request<Body> {
    let addr = listener.local_addr().expect("addr");
    Request::post(format!("http://{addr}/echo.Echo/Unary"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body(message))
        .expect("request")
}

async fn setup() -> (Client, TcpListener, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (Client::new(Duration::from_secs(2)), listener, addr)
}

/// What a whole answer came to: its body and trailers, or the error.
async fn outcome(
    client: &Client,
    addr: std::net::SocketAddr,
    req: Request<Body>,
) -> Result<(Bytes, http::HeaderMap), ClientError> {
    let response = client.request(addr, req).await?;
    let collected = response.into_body().collect().await?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    Ok((collected.to_bytes(), trailers))
}

#[tokio::test]
async fn a_unary_call_goes_out_whole_and_its_answer_comes_back_with_trailers() {
    let (client, listener, addr) = setup().await;
    let call = tokio::spawn({
        let client = client.clone();
        let req = post(&listener, b"\0\0\0\0\x02hi");
        async move { outcome(&client, addr, req).await }
    });
    let mut peer = Peer::accept(&listener, &[]).await;
    let headers = peer.next(HEADERS).await;
    assert_eq!(headers.stream, 1);
    assert_eq!(headers.flags & END_HEADERS, END_HEADERS);
    assert_eq!(headers.flags & END_STREAM, 0);
    let data = peer.next(DATA).await;
    assert_eq!(
        (data.stream, data.flags, &data.payload[..]),
        (1, END_STREAM, &b"\0\0\0\0\x02hi"[..])
    );
    peer.answer(1, b"\0\0\0\0\x02ok").await;
    let (message, trailers) = call.await.expect("join").expect("answer");
    assert_eq!(&message[..], b"\0\0\0\0\x02ok");
    assert_eq!(trailers["grpc-status"], "0");
}

#[tokio::test]
async fn a_body_larger_than_the_window_waits_for_window_updates() {
    let (client, listener, addr) = setup().await;
    let message: &'static [u8] = &[7u8; 40];
    let warmup = post(&listener, b"");
    let big = post(&listener, message);
    let calls = tokio::spawn({
        let client = client.clone();
        async move {
            // The first call lets the provider's SETTINGS (a 16-byte window) arrive first.
            outcome(&client, addr, warmup).await.expect("warm-up");
            outcome(&client, addr, big).await
        }
    });
    let mut peer = Peer::accept(&listener, &[(4, 16)]).await;
    let first = peer.next(HEADERS).await;
    peer.answer(first.stream, b"").await;
    let headers = peer.next(HEADERS).await;
    assert_eq!(headers.stream, 3);
    let mut got = peer.next(DATA).await.payload;
    assert_eq!(got.len(), 16, "no more than the window");
    // Nothing more until the window grows.
    let quiet = tokio::time::timeout(Duration::from_millis(200), peer.frame()).await;
    assert!(quiet.is_err(), "sent past the window: {quiet:?}");
    peer.send(WINDOW_UPDATE, 0, 3, &100u32.to_be_bytes()).await;
    let rest = peer.next(DATA).await;
    assert_eq!(rest.flags & END_STREAM, END_STREAM);
    got.extend(rest.payload);
    assert_eq!(got, message);
    peer.answer(3, b"done").await;
    assert_eq!(&calls.await.expect("join").expect("answer").0[..], b"done");
}

#[tokio::test]
async fn the_concurrency_limit_holds_calls_back_until_a_stream_ends() {
    let (client, listener, addr) = setup().await;
    let (warmup, a, b) = (
        post(&listener, b"w"),
        post(&listener, b"a"),
        post(&listener, b"b"),
    );
    let calls = tokio::spawn({
        let client = client.clone();
        async move {
            outcome(&client, addr, warmup).await.expect("warm-up");
            tokio::join!(outcome(&client, addr, a), outcome(&client, addr, b))
        }
    });
    let mut peer = Peer::accept(&listener, &[(3, 1)]).await;
    let w = peer.next(HEADERS).await;
    peer.answer(w.stream, b"w").await;
    let first = peer.next(HEADERS).await;
    peer.next(DATA).await;
    let quiet = tokio::time::timeout(Duration::from_millis(200), peer.next(HEADERS)).await;
    assert!(quiet.is_err(), "a second stream opened past the limit of 1");
    peer.answer(first.stream, b"1").await;
    let second = peer.next(HEADERS).await;
    assert_eq!(second.stream, first.stream + 2);
    peer.answer(second.stream, b"2").await;
    let (a, b) = calls.await.expect("join");
    let mut got = [a.expect("a").0, b.expect("b").0];
    got.sort();
    assert_eq!(got, [Bytes::from_static(b"1"), Bytes::from_static(b"2")]);
}

#[tokio::test]
async fn a_call_beyond_goaway_goes_again_on_a_new_connection() {
    let (client, listener, addr) = setup().await;
    let (a, b) = (post(&listener, b"a"), post(&listener, b"b"));
    let calls = tokio::spawn({
        let client = client.clone();
        async move { tokio::join!(outcome(&client, addr, a), outcome(&client, addr, b)) }
    });
    let mut peer = Peer::accept(&listener, &[]).await;
    let one = peer.next(HEADERS).await;
    let three = peer.next(HEADERS).await;
    assert_eq!((one.stream, three.stream), (1, 3));
    let mut goaway = 1u32.to_be_bytes().to_vec();
    goaway.extend_from_slice(&0u32.to_be_bytes());
    peer.send(GOAWAY, 0, 0, &goaway).await;
    peer.answer(1, b"taken").await;
    // Stream 3 was not taken: its whole message goes again, on a new connection.
    let mut fresh = Peer::accept(&listener, &[]).await;
    let h = fresh.next(HEADERS).await;
    assert_eq!(h.stream, 1, "a new connection starts at stream 1");
    let data = fresh.next(DATA).await;
    assert_eq!(&data.payload[..], b"b", "the same message");
    fresh.answer(1, b"again").await;
    let (a, b) = calls.await.expect("join");
    assert_eq!(&a.expect("stream 1 is still answered").0[..], b"taken");
    assert_eq!(&b.expect("sent again").0[..], b"again");
}

#[tokio::test]
async fn resets_say_whether_the_call_was_taken() {
    let (client, listener, addr) = setup().await;
    let (a, b) = (post(&listener, b"a"), post(&listener, b"b"));
    let calls = tokio::spawn({
        let client = client.clone();
        async move { tokio::join!(outcome(&client, addr, a), outcome(&client, addr, b)) }
    });
    let mut peer = Peer::accept(&listener, &[]).await;
    let one = peer.next(HEADERS).await.stream;
    let two = peer.next(HEADERS).await.stream;
    peer.send(RST_STREAM, 0, one, &7u32.to_be_bytes()).await; // REFUSED_STREAM
    peer.send(RST_STREAM, 0, two, &2u32.to_be_bytes()).await; // INTERNAL_ERROR
                                                              // A refused call is sent once more (the connection is still good); refused again, it
                                                              // fails as not taken.
    let again = peer.next(HEADERS).await.stream;
    assert!(again > two, "a new stream: {again}");
    peer.send(RST_STREAM, 0, again, &7u32.to_be_bytes()).await;
    let (a, b) = calls.await.expect("join");
    let (a, b) = (a.expect_err("refused"), b.expect_err("reset"));
    assert!(a.is_connect(), "{a}");
    assert!(
        !b.is_connect() && b.to_string().contains("INTERNAL_ERROR"),
        "{b}"
    );
    assert_eq!(b.reset_code(), Some(2), "the code, to pass on");
}

#[tokio::test]
async fn trailers_only_answers_padding_continuation_and_indexed_huffman_fields() {
    let (client, listener, addr) = setup().await;
    let (a, b) = (post(&listener, b"a"), post(&listener, b"b"));
    let calls = tokio::spawn({
        let client = client.clone();
        async move {
            let first = client.request(addr, a).await.expect("first");
            let status = first.headers()["grpc-status"].clone();
            let custom = first.headers()["x-custom"].clone();
            use hyper::body::Body as _;
            assert!(
                first.body().is_end_stream(),
                "a trailers-only answer has no body"
            );
            let second = outcome(&client, addr, b).await.expect("second");
            (status, custom, second)
        }
    });
    let mut peer = Peer::accept(&listener, &[]).await;
    let one = peer.next(HEADERS).await.stream;
    // Trailers-only: :status 200, grpc-status 5 (literal), and x-custom added to the dynamic
    // table with a Huffman-coded value ("www.example.com", RFC 7541 C.4.1).
    let mut block = vec![0x88];
    block.extend(literal("grpc-status", "5"));
    block.extend([0x40, 0x08]);
    block.extend_from_slice(b"x-custom");
    block.extend([
        0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
    ]);
    peer.send(HEADERS, END_HEADERS | END_STREAM, one, &block)
        .await;
    let two = peer.next(HEADERS).await.stream;
    // The second answer: its head split over CONTINUATION, the indexed field by index (62),
    // a padded DATA frame, then trailers.
    let head = [0x88, 0xbe];
    peer.send(HEADERS, 0, two, &head[..1]).await;
    peer.send(CONTINUATION, END_HEADERS, two, &head[1..]).await;
    let mut padded = vec![3];
    padded.extend_from_slice(b"msg");
    padded.extend_from_slice(&[0, 0, 0]);
    peer.send(DATA, PADDED, two, &padded).await;
    peer.send(
        HEADERS,
        END_HEADERS | END_STREAM,
        two,
        &literal("grpc-status", "0"),
    )
    .await;
    let (status, custom, (message, trailers)) = calls.await.expect("join");
    assert_eq!(status, "5");
    assert_eq!(custom, "www.example.com");
    assert_eq!(&message[..], b"msg");
    assert_eq!(trailers["grpc-status"], "0");
}

#[tokio::test]
async fn a_dropped_call_resets_its_stream() {
    let (client, listener, addr) = setup().await;
    let req = post(&listener, b"slow");
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(addr, req).await.map(|_| ()) }
    });
    let mut peer = Peer::accept(&listener, &[]).await;
    let stream = peer.next(HEADERS).await.stream;
    call.abort();
    let rst = peer.next(RST_STREAM).await;
    assert_eq!(
        (rst.stream, &rst.payload[..]),
        (stream, &8u32.to_be_bytes()[..]),
        "CANCEL"
    );
}

#[tokio::test]
async fn protocol_errors_fail_the_calls_and_send_goaway() {
    for (name, kind, flags, payload) in [
        ("push", PUSH_PROMISE, END_HEADERS, vec![0, 0, 0, 2, 0x82]),
        ("bad HPACK index", HEADERS, END_HEADERS, vec![0xc6]),
        ("zero window increment", WINDOW_UPDATE, 0, vec![0, 0, 0, 0]),
    ] {
        let (client, listener, addr) = setup().await;
        let req = post(&listener, b"x");
        let call = tokio::spawn({
            let client = client.clone();
            async move { outcome(&client, addr, req).await }
        });
        let mut peer = Peer::accept(&listener, &[]).await;
        let stream = peer.next(HEADERS).await.stream;
        let on = if kind == WINDOW_UPDATE { 0 } else { stream };
        peer.send(kind, flags, on, &payload).await;
        let goaway = peer.next(GOAWAY).await;
        assert_ne!(
            &goaway.payload[4..8],
            &[0, 0, 0, 0],
            "{name}: an error code"
        );
        let e = call.await.expect("join").expect_err(name);
        assert!(e.to_string().contains("broke HTTP/2"), "{name}: {e}");
    }
}

#[tokio::test]
async fn a_connection_closed_mid_answer_fails_the_body_and_a_dead_address_is_a_connect_error() {
    let (client, listener, addr) = setup().await;
    let req = post(&listener, b"x");
    let call = tokio::spawn({
        let client = client.clone();
        async move { outcome(&client, addr, req).await }
    });
    let mut peer = Peer::accept(&listener, &[]).await;
    let stream = peer.next(HEADERS).await.stream;
    peer.send(HEADERS, END_HEADERS, stream, &[0x88]).await;
    peer.send(DATA, 0, stream, b"part").await;
    drop(peer);
    let e = call.await.expect("join").expect_err("cut short");
    // A close with our frames unread may reach us as a reset instead of a FIN.
    let told = e.to_string();
    assert!(
        !e.is_connect() && (told.contains("closed") || told.contains("reset")),
        "{e}"
    );

    drop(listener);
    let e = client
        .request(
            addr,
            Request::post(format!("http://{addr}/x"))
                .body(body(b""))
                .expect("req"),
        )
        .await
        .expect_err("nobody listens");
    assert!(e.is_connect(), "{e}");
}

#[tokio::test]
async fn a_queued_call_that_gives_up_does_not_strand_the_others() {
    let (client, listener, addr) = setup().await;
    let warmup = post(&listener, b"w");
    let (a, b, c) = (
        post(&listener, b"a"),
        post(&listener, b"b"),
        post(&listener, b"c"),
    );
    let calls = tokio::spawn({
        let client = client.clone();
        async move {
            outcome(&client, addr, warmup).await.expect("warm-up");
            let first = tokio::spawn({
                let client = client.clone();
                async move { outcome(&client, addr, a).await }
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
            let second = tokio::spawn({
                let client = client.clone();
                async move { outcome(&client, addr, b).await }
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
            // The newest waiter gives up while queued.
            let third =
                tokio::time::timeout(Duration::from_millis(50), outcome(&client, addr, c)).await;
            assert!(third.is_err(), "the third call was queued");
            (first.await.expect("join"), second.await.expect("join"))
        }
    });
    let mut peer = Peer::accept(&listener, &[(3, 1)]).await;
    let w = peer.next(HEADERS).await;
    peer.answer(w.stream, b"w").await;
    let first = peer.next(HEADERS).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    peer.answer(first.stream, b"1").await;
    let second = peer.next(HEADERS).await;
    peer.answer(second.stream, b"2").await;
    let (first, second) = calls.await.expect("join");
    assert_eq!(&first.expect("first").0[..], b"1");
    assert_eq!(&second.expect("second").0[..], b"2");
}
