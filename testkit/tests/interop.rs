//! Interop on real sockets, both directions:
//! * our client (`http-bridge`'s Dubbo2 connection on `dubbo-codec`) against the npm
//!   `apache-dubbo-service` provider, quirks included, and against our own provider;
//! * our provider (`testkit` on `dubbo-codec`) answering `apache-dubbo-consumer`, `dubbo2.js`
//!   and `dubbo-ssl-python`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dubbo_codec::dubbo2::{Invocation, Outcome, Response, Status};
use dubbo_codec::hessian::{java, Value};
use http_bridge::dubbo2::{CallError, Connection};
use serde_json::json;
use testkit::demo::{self, DemoService, INTERFACE};
use testkit::peers::{Consumer, NodeProvider};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(5);

async fn start_rust_provider(service: DemoService) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(testkit::provider::serve(
        listener,
        service.services(),
        std::future::pending(),
    ));
    port
}

async fn connect(port: u16) -> Connection {
    Connection::connect(("127.0.0.1", port), TIMEOUT, 8 << 20)
        .await
        .expect("connect")
}

async fn call(conn: &Connection, method: &str, desc: &str, args: Vec<Value>) -> Response {
    conn.call(Invocation::new(INTERFACE, method, desc, args), TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

fn alice() -> Value {
    demo::user(&demo::user_class(), 7, "alice", 30, "a@example.com")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// The calls every provider must answer the same way. Unknown services are where they differ:
/// the npm provider answers 60 (SERVICE_NOT_FOUND), Java and ours 70 (SERVICE_ERROR).
async fn common_calls(conn: &Connection, unknown_service_status: Status) {
    assert_eq!(
        call(conn, "sayHello", "Ljava/lang/String;", vec!["world".into()])
            .await
            .outcome,
        Outcome::Value("Hello, world".into())
    );

    let echoed = call(
        conn,
        "echoUser",
        "Lorg/apache/dubbo/demo/User;",
        vec![alice()],
    )
    .await;
    let Outcome::Value(user) = echoed.outcome else {
        panic!("echoUser: {echoed:?}")
    };
    let user = user.as_object().expect("a User object");
    assert_eq!(user.class.name, demo::USER_CLASS);
    assert_eq!(user.get("age").and_then(Value::as_i64), Some(31));
    assert_eq!(user.get("id").and_then(Value::as_i64), Some(7));
    assert_eq!(user.get("email"), Some(&Value::from("a@example.com")));

    let listed = call(conn, "listUsers", "I", vec![Value::Int(3)]).await;
    let Outcome::Value(Value::List(users)) = listed.outcome else {
        panic!("listUsers: {listed:?}")
    };
    assert_eq!(users.items.len(), 3);
    let third = users.items[2].as_object().expect("user");
    assert_eq!(third.get("name"), Some(&Value::from("user2")));
    assert_eq!(third.get("age").and_then(Value::as_i64), Some(22));

    let now = call(conn, "now", "", vec![]).await;
    let Outcome::Value(Value::Date(ms)) = now.outcome else {
        panic!("now: {now:?}")
    };
    assert!(
        (ms - now_ms()).abs() < 60_000,
        "provider clock {ms} vs ours"
    );

    let unknown = conn
        .call(
            Invocation::new("org.apache.dubbo.demo.Nope", "x", "", vec![]),
            TIMEOUT,
        )
        .await
        .expect("answered");
    assert_eq!(unknown.status, unknown_service_status);
    let Outcome::Error(message) = unknown.outcome else {
        panic!("an error status carries a message")
    };
    assert!(message.contains("org.apache.dubbo.demo.Nope"), "{message}");

    conn.heartbeat(TIMEOUT).await.expect("heartbeat answered");

    // Many calls in flight on one connection, answered by request id.
    let calls = (0..50).map(|i| {
        let conn = conn.clone();
        async move {
            conn.call(
                Invocation::new(
                    INTERFACE,
                    "sayHello",
                    "Ljava/lang/String;",
                    vec![format!("c{i}").into()],
                ),
                TIMEOUT,
            )
            .await
        }
    });
    let results = futures_join_all(calls).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(
            r.expect("call").outcome,
            Outcome::Value(format!("Hello, c{i}").into())
        );
    }
    assert!(conn.is_open());
}

async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn our_client_against_the_npm_provider() {
    let Some(provider) = NodeProvider::start().await else {
        return;
    };
    let conn = connect(provider.port).await;
    common_calls(&conn, Status::SERVICE_NOT_FOUND).await;

    // It sends exceptions as plain strings, not Throwables.
    let failed = call(&conn, "fail", "Ljava/lang/String;", vec!["boom".into()]).await;
    assert_eq!(failed.outcome, Outcome::Exception("boom".into()));
    assert!(
        failed.attachments.is_some(),
        "dubbo 2.0.2 callers get the *_WITH_ATTACHMENTS flags"
    );

    // Its descriptor bug: `II` is read as one argument. We must get an answer, not a hang, and
    // the connection must stay usable.
    let added = call(&conn, "add", "II", vec![Value::Int(2), Value::Int(3)]).await;
    assert!(
        matches!(added.outcome, Outcome::Exception(_) | Outcome::Error(_)),
        "{added:?}"
    );
    assert_eq!(
        call(
            &conn,
            "sayHello",
            "Ljava/lang/String;",
            vec!["again".into()]
        )
        .await
        .outcome,
        Outcome::Value("Hello, again".into())
    );
}

#[tokio::test]
async fn our_client_against_our_provider() {
    let port = start_rust_provider(DemoService::default()).await;
    let conn = connect(port).await;
    common_calls(&conn, Status::SERVICE_ERROR).await;

    let added = call(&conn, "add", "II", vec![Value::Int(2), Value::Int(3)]).await;
    assert_eq!(added.outcome, Outcome::Value(Value::Int(5)));
    let failed = call(&conn, "fail", "Ljava/lang/String;", vec!["boom".into()]).await;
    let Outcome::Exception(e) = &failed.outcome else {
        panic!("{failed:?}")
    };
    assert_eq!(
        java::throwable(e),
        Some(("java.lang.IllegalArgumentException", Some("boom")))
    );
    let missing = call(&conn, "noSuchMethod", "", vec![]).await;
    assert_eq!(missing.status, Status::SERVICE_ERROR);
    assert!(
        matches!(&missing.outcome, Outcome::Error(m) if m.contains("noSuchMethod")),
        "{missing:?}"
    );
}

#[tokio::test]
async fn slow_provider_times_out_and_the_connection_survives() {
    let port = start_rust_provider(DemoService::slow(Duration::from_millis(400))).await;
    let conn = connect(port).await;
    let inv = || {
        Invocation::new(
            INTERFACE,
            "sayHello",
            "Ljava/lang/String;",
            vec!["slow".into()],
        )
    };
    assert!(matches!(
        conn.call(inv(), Duration::from_millis(50)).await,
        Err(CallError::Timeout(_))
    ));
    // The late reply to the abandoned call is dropped; the next call gets its own answer.
    assert_eq!(
        conn.call(inv(), TIMEOUT)
            .await
            .expect("second call")
            .outcome,
        Outcome::Value("Hello, slow".into())
    );
}

#[tokio::test]
async fn provider_down_and_garbage_replies_are_clear_errors() {
    // Nothing listening: bind, take the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let err = Connection::connect(("127.0.0.1", port), TIMEOUT, 1 << 20)
        .await
        .expect_err("refused");
    assert!(matches!(err, CallError::Connect(_)), "{err}");

    // A server that answers with HTTP instead of Dubbo.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let conn = connect(port).await;
    let err = conn
        .call(
            Invocation::new(
                INTERFACE,
                "sayHello",
                "Ljava/lang/String;",
                vec!["x".into()],
            ),
            TIMEOUT,
        )
        .await
        .expect_err("garbage");
    let message = err.to_string();
    assert!(
        matches!(err, CallError::Closed(_)) && message.contains("bad magic"),
        "{message}"
    );
    assert!(!conn.is_open());
}

/// What each consumer must report against our provider.
fn check_report(consumer: Consumer, report: &serde_json::Value) {
    let ctx = |key: &str| format!("{consumer:?} {key}: {report}");
    assert_eq!(
        report["sayHello"],
        json!("Hello, world"),
        "{}",
        ctx("sayHello")
    );
    assert_eq!(report["add"], json!(5), "{}", ctx("add"));
    assert_eq!(
        report["echoUser"],
        json!({"id": 7, "name": "alice", "age": 31, "email": "a@example.com"}),
        "{}",
        ctx("echoUser")
    );
    let users = report["listUsers"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", ctx("listUsers")));
    assert_eq!(users.len(), 3, "{}", ctx("listUsers"));
    assert_eq!(
        users[1],
        json!({"id": 1, "name": "user1", "age": 21, "email": "user1@example.com"}),
        "{}",
        ctx("listUsers")
    );
    let error = report["fail"]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", ctx("fail")));
    assert!(error.contains("boom"), "{}", ctx("fail"));
    let now = report["now"]
        .as_i64()
        .unwrap_or_else(|| panic!("{}", ctx("now")));
    assert!((now - now_ms()).abs() < 120_000, "{}", ctx("now"));
    let concurrent = report["concurrent"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", ctx("concurrent")));
    let expected: Vec<_> = (0..20).map(|i| json!(format!("Hello, c{i}"))).collect();
    assert_eq!(concurrent, &expected, "{}", ctx("concurrent"));
}

async fn consumer_against_our_provider(consumer: Consumer) {
    let port = start_rust_provider(DemoService::default()).await;
    if let Some(report) = consumer.run(port).await {
        check_report(consumer, &report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_dubbo_js_consumer_against_our_provider() {
    consumer_against_our_provider(Consumer::ApacheDubboJs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dubbo2_js_consumer_against_our_provider() {
    consumer_against_our_provider(Consumer::Dubbo2Js).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_consumer_against_our_provider() {
    consumer_against_our_provider(Consumer::Python).await;
}
