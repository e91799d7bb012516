//! The gateway as a process: the real binary's exit codes, and SIGTERM letting a request in
//! flight finish before the process exits.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use http::{Method, StatusCode};
use testkit::demo::DemoService;

use common::{rust_provider, send, SERVICE};

#[test]
fn the_binary_validates_with_exit_64() {
    let dir = std::env::temp_dir().join(format!("gateway-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "clusters: [{name: a, endpoints: ['nope']}]\nroutes: [{cluster: zz}]\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["validate", "--config"])
        .arg(&bad)
        .output()
        .expect("run gateway");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("clusters[0].endpoints[0]") && stderr.contains("routes[0].cluster"),
        "{stderr}"
    );
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["validate", "--config"])
        .arg(&demo)
        .output()
        .expect("run gateway");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Environment variables override the file, and are validated like it.
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["validate", "--config"])
        .arg(&demo)
        .env("GATEWAY_LIMITS__MAX_BODY_BYTES", "0")
        .output()
        .expect("run gateway");
    assert_eq!(out.status.code(), Some(64));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `gateway run` on a config file and returns the child with its listener address, read
/// from the startup log line (logs go to stdout).
fn spawn_gateway(config: &std::path::Path) -> (std::process::Child, std::net::SocketAddr) {
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
    let (found, addr) = std::sync::mpsc::channel();
    // Reads the log until the serving line, then keeps draining it so the child never blocks on
    // a full pipe.
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listeners=[").nth(1) {
                let addr = rest.split([']', ',']).next().unwrap_or_default().parse();
                if let Some(found) = found.take() {
                    let _ = found.send(addr);
                }
            }
        }
    });
    let addr = match addr.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => addr.expect("listener address in the serving line"),
        Err(_) => {
            let _ = child.kill();
            panic!("gateway did not log its listeners within 30 s");
        }
    };
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish() {
    let provider = rust_provider(DemoService::slow(Duration::from_millis(800))).await;
    let dir = std::env::temp_dir().join(format!("gateway-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            "listeners: [{{name: http, address: '127.0.0.1:0'}}]\n\
             admin: {{address: ''}}\n\
             metadata: {{backend: memory, grpc_address: ''}}\n\
             clusters: [{{name: demo, endpoints: ['{provider}']}}]\n\
             routes: [{{application: demo, cluster: demo}}]\n"
        ),
    )
    .expect("write config");
    let (mut child, gw) = spawn_gateway(&config);

    let in_flight = tokio::spawn(async move {
        send(
            gw,
            Method::POST,
            &format!("/demo/{SERVICE}/sayHello"),
            r#"["drain"]"#,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());

    // The slow call started before the signal still gets its answer.
    let (status, body) = in_flight.await.expect("join");
    assert_eq!(
        (status, body),
        (StatusCode::OK, serde_json::json!("Hello, drain"))
    );
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
    // And nothing listens any more.
    assert!(tokio::net::TcpStream::connect(gw).await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
