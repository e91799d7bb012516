//! Measures how long this crate's client takes to receive and apply a large configuration, and
//! its peak memory: `bench/xds_scale.sh` runs it beside Envoy against the same control plane.
//!
//!     scale_client ADDR CLUSTERS ENDPOINTS [--delta]
//!
//! Subscribes to every cluster (and, on demand, their endpoints) and prints one JSON line when
//! it holds CLUSTERS clusters with ENDPOINTS endpoints in all: milliseconds since start, and
//! the peak resident set size (VmHWM) in KiB.

use std::time::{Duration, Instant};

use xds_core::bootstrap::{Bootstrap, Node};
use xds_core::client::{ClientOptions, Subscribe, XdsClient};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, clusters, endpoints, rest @ ..] = args.as_slice() else {
        return Err("usage: scale_client ADDR CLUSTERS ENDPOINTS [--delta]".into());
    };
    let (clusters, endpoints): (usize, usize) = (clusters.parse()?, endpoints.parse()?);
    let options = ClientOptions {
        delta: rest.iter().any(|a| a == "--delta"),
        listeners: Subscribe::Names(Vec::new()),
        resource_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let node = Node {
        id: "scale-client".into(),
        ..Default::default()
    };
    let client = XdsClient::start(Bootstrap::new(addr.clone(), node), options)?;
    let mut updates = client.updates();
    let applied = tokio::time::timeout(
        Duration::from_secs(300),
        updates.wait_for(|s| {
            s.clusters.len() >= clusters
                && s.endpoints
                    .values()
                    .map(|e| e.resource.all().count())
                    .sum::<usize>()
                    >= endpoints
        }),
    )
    .await;
    let elapsed = start.elapsed();
    if !matches!(applied, Ok(Ok(_))) {
        return Err("not all resources arrived within 300 s".into());
    }
    println!(
        "{{\"applied_ms\": {}, \"peak_rss_kib\": {}}}",
        elapsed.as_millis(),
        peak_rss_kib()
    );
    Ok(())
}
