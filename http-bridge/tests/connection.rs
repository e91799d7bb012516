//! The Dubbo2 connection against scripted providers: what it does when calls are abandoned, when
//! the provider announces a shutdown, and when the provider calls back.

use std::time::Duration;

use bytes::BytesMut;
use dubbo_codec::dubbo2::{
    FrameDecoder, Invocation, Outcome, Request, RequestKind, Response, Status,
};
use dubbo_codec::hessian::Value;
use http_bridge::dubbo2::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn scripted_provider() -> (Connection, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (conn, accepted) = tokio::join!(
        Connection::connect(addr, Duration::from_secs(2), 1 << 20),
        listener.accept()
    );
    (conn.expect("connect"), accepted.expect("accept").0)
}

async fn read_frame(socket: &mut TcpStream, buf: &mut BytesMut) -> dubbo_codec::dubbo2::Frame {
    let mut decoder = FrameDecoder::default();
    loop {
        if let Some(frame) = decoder.decode(buf).expect("valid frame") {
            return frame;
        }
        assert!(
            socket.read_buf(buf).await.expect("read") > 0,
            "client closed"
        );
    }
}

fn hello() -> Invocation {
    Invocation::new(
        "demo.S",
        "hello",
        "Ljava/lang/String;",
        vec![Value::from("x")],
    )
}

#[tokio::test]
async fn abandoned_calls_leave_nothing_behind() {
    let (conn, mut provider) = scripted_provider().await;
    let caller = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.call(hello(), Duration::from_secs(30)).await })
    };
    let mut buf = BytesMut::new();
    let request = read_frame(&mut provider, &mut buf).await;
    assert_eq!(conn.in_flight(), 1);
    caller.abort(); // the HTTP client went away
    let _ = caller.await;
    assert_eq!(conn.in_flight(), 0);
    // The late reply finds no caller and is dropped; the connection carries on.
    let mut out = BytesMut::new();
    Response::value(request.header.id, "late".into(), None)
        .encode(&mut out)
        .expect("enc");
    provider.write_all(&out).await.expect("write");
    let next = tokio::spawn({
        let conn = conn.clone();
        async move { conn.call(hello(), Duration::from_secs(5)).await }
    });
    let request = read_frame(&mut provider, &mut buf).await;
    out.clear();
    Response::value(request.header.id, "fresh".into(), None)
        .encode(&mut out)
        .expect("enc");
    provider.write_all(&out).await.expect("write");
    assert_eq!(
        next.await.expect("task").expect("call").outcome,
        Outcome::Value("fresh".into())
    );
}

#[tokio::test]
async fn readonly_event_takes_the_connection_out_of_rotation() {
    let (conn, mut provider) = scripted_provider().await;
    assert!(conn.is_open());
    let mut out = BytesMut::new();
    Request {
        id: 1,
        two_way: false,
        kind: RequestKind::Event("R".into()),
    }
    .encode(&mut out)
    .expect("enc");
    provider.write_all(&out).await.expect("write");
    for _ in 0..100 {
        if !conn.is_open() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("a provider shutting down must not get new calls");
}

#[tokio::test]
async fn provider_heartbeats_are_answered_and_callbacks_refused() {
    let (_conn, mut provider) = scripted_provider().await;
    let mut out = BytesMut::new();
    Request {
        id: 77,
        two_way: true,
        kind: RequestKind::Heartbeat,
    }
    .encode(&mut out)
    .expect("enc");
    Request {
        id: 78,
        two_way: true,
        kind: RequestKind::Invocation(hello()),
    }
    .encode(&mut out)
    .expect("enc");
    provider.write_all(&out).await.expect("write");
    let mut buf = BytesMut::new();
    let beat = Response::decode(&read_frame(&mut provider, &mut buf).await).expect("response");
    assert_eq!(
        (beat.id, beat.status, beat.outcome),
        (77, Status::OK, Outcome::Heartbeat)
    );
    let refused = Response::decode(&read_frame(&mut provider, &mut buf).await).expect("response");
    assert_eq!((refused.id, refused.status), (78, Status::SERVICE_ERROR));
}

#[tokio::test]
async fn provider_closing_fails_calls_in_flight() {
    let (conn, provider) = scripted_provider().await;
    let caller = tokio::spawn({
        let conn = conn.clone();
        async move { conn.call(hello(), Duration::from_secs(30)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(provider);
    let err = caller.await.expect("task").expect_err("closed");
    assert!(err.to_string().contains("closed"), "{err}");
    assert!(!conn.is_open());
    assert_eq!(conn.in_flight(), 0);
}

/// A connection opened on a worker's runtime, after that runtime is gone: its tasks were
/// dropped without closing it, and it must not be handed out again.
#[test]
fn a_connection_whose_runtime_is_gone_is_not_open() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let worker = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let conn = worker
        .block_on(Connection::connect(addr, Duration::from_secs(1), 1 << 20))
        .expect("connect");
    assert!(conn.is_open());
    drop(worker);
    assert!(!conn.is_open(), "its writer is gone with the runtime");
}
