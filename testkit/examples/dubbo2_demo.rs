//! The Dubbo2 demo: a real provider on loopback TCP and a real client calling it, both built on
//! `dubbo-codec`. It makes every kind of call once and prints what went over the wire, then
//! keeps the provider up for other Dubbo2 clients until Ctrl-C (or exits with `--once`).
//!
//!     cargo run -p testkit --example dubbo2_demo [-- --port 20880] [--once]

use std::time::{Duration, Instant};

use bytes::BytesMut;
use dubbo_codec::dubbo2::{Invocation, Outcome, Request, RequestKind};
use dubbo_codec::hessian::Value;
use http_bridge::dubbo2::Connection;
use testkit::demo::{self, DemoService, INTERFACE};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let once = args.iter().any(|a| a == "--once");
    let port: u16 = match args.iter().position(|a| a == "--port") {
        Some(i) => args.get(i + 1).ok_or("--port needs a number")?.parse()?,
        None => 0,
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(testkit::provider::serve(
        listener,
        DemoService::default().services(),
        std::future::pending(),
    ));
    println!("Dubbo2 provider of {INTERFACE} listening on dubbo://{addr}\n");

    let conn = Connection::connect(addr, Duration::from_secs(3), 8 << 20).await?;
    let calls = [
        ("sayHello", "Ljava/lang/String;", vec![Value::from("world")]),
        ("add", "II", vec![Value::Int(2), Value::Int(3)]),
        (
            "echoUser",
            "Lorg/apache/dubbo/demo/User;",
            vec![demo::user(
                &demo::user_class(),
                7,
                "alice",
                30,
                "a@example.com",
            )],
        ),
        ("listUsers", "I", vec![Value::Int(2)]),
        ("now", "", vec![]),
        ("fail", "Ljava/lang/String;", vec![Value::from("boom")]),
    ];
    let mut failures = 0;
    for (method, desc, args) in calls {
        let invocation = Invocation::new(INTERFACE, method, desc, args);
        let mut frame = BytesMut::new();
        Request {
            id: 0,
            two_way: true,
            kind: RequestKind::Invocation(invocation.clone()),
        }
        .encode(&mut frame)?;
        let started = Instant::now();
        let response = conn.call(invocation, Duration::from_secs(3)).await?;
        let shown = match &response.outcome {
            Outcome::Value(v) => format!("returned {v}"),
            Outcome::Null => "returned null".into(),
            Outcome::Exception(e) => match dubbo_codec::hessian::java::throwable(e) {
                Some((class, message)) => format!("threw {class}: {}", message.unwrap_or("")),
                None => format!("threw {e:?}"),
            },
            Outcome::Error(message) => {
                failures += 1;
                format!("failed with status {}: {message}", response.status)
            }
            Outcome::Heartbeat => "heartbeat".into(),
        };
        println!(
            "{method}({desc}) [{} request bytes, {:?}]\n    {shown}",
            frame.len(),
            started.elapsed()
        );
    }
    conn.heartbeat(Duration::from_secs(3)).await?;
    println!("heartbeat answered");
    if failures > 0 {
        return Err(format!("{failures} calls failed").into());
    }
    if once {
        return Ok(());
    }
    println!(
        "\nThe provider stays up for other Dubbo2 clients, e.g.\n    node peers/node/consumer.js --lib apache-dubbo-consumer --port {}\nCtrl-C to stop.",
        addr.port()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
