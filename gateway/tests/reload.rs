//! Hot reload of the real binary under load: `wrk` keeps calling while the configuration file
//! is rewritten and SIGHUP is sent, several times; not one request fails, and traffic follows
//! the new configuration. A configuration that does not validate, or that changes what takes a
//! restart, is refused with the reason logged, and nothing changes.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use testkit::demo::DemoService;

use common::{post, rust_provider, SERVICE};

struct Gateway {
    child: std::process::Child,
    http: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn logged(&self, needle: &str) -> usize {
        self.log
            .lock()
            .map(|l| l.iter().filter(|line| line.contains(needle)).count())
            .unwrap_or(0)
    }
}

fn spawn(config: &std::path::Path) -> Gateway {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["run", "--config"])
        .arg(config)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn gateway");
    let stdout = child.stdout.take().expect("stdout");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (found, addr) = std::sync::mpsc::channel();
    let lines = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listeners=[").nth(1) {
                let addr = rest.split([']', ',']).next().unwrap_or_default().parse();
                if let Some(found) = found.take() {
                    let _ = found.send(addr);
                }
            }
            if let Ok(mut l) = lines.lock() {
                l.push(line);
            }
        }
    });
    let http = match addr.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => addr.expect("listener address"),
        Err(_) => {
            let _ = child.kill();
            panic!("gateway did not log its listeners within 30 s");
        }
    };
    Gateway { child, http, log }
}

fn config(port: u16, endpoints: &[SocketAddr], timeout_ms: u64) -> String {
    let endpoints: Vec<String> = endpoints.iter().map(|e| format!("'{e}'")).collect();
    format!(
        "listeners: [{{name: http, address: '127.0.0.1:{port}'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         clusters: [{{name: c, endpoints: [{}], timeout_ms: {timeout_ms}}}]\n\
         routes: [{{application: demo, cluster: c}}]\n",
        endpoints.join(", ")
    )
}

async fn whoami(gw: SocketAddr) -> serde_json::Value {
    let (status, body) = post(gw, &format!("/demo/{SERVICE}/whoami"), "[]").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Writes the file so the gateway never reads half of it: a temporary file renamed over it.
fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_fail_nothing() {
    let Some(wrk) = testkit::peers::require("wrk", testkit::peers::which("wrk")) else {
        return;
    };
    let a = rust_provider(DemoService::named("a")).await;
    let b = rust_provider(DemoService::named("b")).await;
    let dir = std::env::temp_dir().join(format!("gateway-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("gateway.yaml");
    let port = testkit::peers::free_port();
    write_atomically(&path, &config(port, &[a], 3000));
    let gw = spawn(&path);
    assert_eq!(whoami(gw.http).await, json!("a"));

    let script = dir.join("post.lua");
    std::fs::write(
        &script,
        "wrk.method = \"POST\"\nwrk.body = \"[]\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )
    .expect("script");
    let load = std::process::Command::new(wrk)
        .args(["-t1", "-c8", "-d5s", "-s"])
        .arg(&script)
        .arg(format!("http://{}/demo/{SERVICE}/whoami", gw.http))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk");
    // Five reloads while wrk runs: file changes (endpoints and timeouts) and a SIGHUP.
    let steps: [(&[SocketAddr], u64); 4] =
        [(&[b], 2000), (&[a, b], 2500), (&[a], 3000), (&[b], 3500)];
    for (endpoints, timeout) in steps {
        tokio::time::sleep(Duration::from_millis(800)).await;
        write_atomically(&path, &config(port, endpoints, timeout));
    }
    // Past the next file check (every second), so the SIGHUP is a reload of its own.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let pid = gw.child.id().to_string();
    let hup = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(hup.success());
    let out = load.wait_with_output().expect("wrk output");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{report}");
    assert!(
        !report.contains("Non-2xx"),
        "some requests failed across reloads:\n{report}"
    );
    assert!(
        !report.contains("Socket errors"),
        "connection errors across reloads:\n{report}"
    );
    let requests: u64 = report
        .lines()
        .find_map(|l| l.trim().split(" requests in").next()?.trim().parse().ok())
        .unwrap_or(0);
    assert!(requests > 1000, "{report}");
    assert!(
        gw.logged("configuration reloaded") >= 5,
        "{:?}",
        gw.log.lock().map(|l| l.clone())
    );
    // Traffic follows the last configuration.
    assert_eq!(whoami(gw.http).await, json!("b"));

    // A file that does not parse: refused, logged, and the running configuration stays.
    let rejected = gw.logged("reload rejected");
    write_atomically(&path, "clusters: [\n");
    for _ in 0..40 {
        if gw.logged("reload rejected") > rejected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gw.logged("reload rejected"), rejected + 1);
    assert_eq!(whoami(gw.http).await, json!("b"));
    // A valid file that changes the listener's address takes a restart: refused too.
    let other = testkit::peers::free_port();
    write_atomically(&path, &config(other, &[a], 3000));
    for _ in 0..40 {
        if gw.logged("reload rejected") > rejected + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = gw.log.lock().map(|l| l.join("\n")).unwrap_or_default();
    assert!(
        log.contains("listeners changed, which takes a restart"),
        "{log}"
    );
    assert_eq!(whoami(gw.http).await, json!("b"));
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
}
