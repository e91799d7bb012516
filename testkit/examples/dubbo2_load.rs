//! A Dubbo2 load generator on our client: `concurrency` workers call `sayHello` back to back
//! over `connections` multiplexed connections for `duration` seconds, then print one JSON line
//! with requests per second and latency percentiles. The anchor of `bench/gateway.sh`.
//!
//!     cargo run --release -p testkit --example dubbo2_load -- --addr 127.0.0.1:20880 \
//!         [--concurrency 32] [--connections 2] [--duration 10]

use std::time::{Duration, Instant};

use dubbo_codec::dubbo2::{Invocation, Outcome};
use http_bridge::dubbo2::Connection;
use testkit::demo::INTERFACE;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let addr: String = arg(&args, "--addr", "127.0.0.1:20880".to_owned());
    let concurrency: usize = arg(&args, "--concurrency", 32);
    let connections: usize = arg(&args, "--connections", 2);
    let duration = Duration::from_secs(arg(&args, "--duration", 10));
    let mut conns = Vec::new();
    for _ in 0..connections.max(1) {
        conns.push(Connection::connect(addr.as_str(), Duration::from_secs(3), 8 << 20).await?);
    }
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let conn = conns[w % conns.len()].clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let inv = Invocation::new(
                        INTERFACE,
                        "sayHello",
                        "Ljava/lang/String;",
                        vec!["world".into()],
                    );
                    let t = Instant::now();
                    match conn.call(inv, Duration::from_secs(5)).await {
                        Ok(r) if matches!(r.outcome, Outcome::Value(_)) => {
                            latencies.push(t.elapsed().as_micros() as u32)
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await?;
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "{{\"requests\":{},\"errors\":{errors},\"rps\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        all.len(),
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
    Ok(())
}
