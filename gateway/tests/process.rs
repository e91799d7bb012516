//! The gateway as a process: the real binary's exit codes, SIGTERM letting a request in flight
//! finish, acknowledged metadata surviving SIGKILL, and two processes sharing one etcd store.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use http::{Method, StatusCode};
use testkit::demo::DemoService;

use common::{rust_provider, send, SERVICE};
use metadata_store::grpc::{pb, MetadataServiceClient, ServiceDefinitionServiceClient};

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

/// A `gateway run` child process and the addresses its startup log line reports.
struct Spawned {
    child: std::process::Child,
    http: SocketAddr,
    grpc: Option<SocketAddr>,
}

/// Starts `gateway run` on a config file and returns the child with its listener address, read
/// from the startup log line (logs go to stdout).
fn spawn_gateway(config: &std::path::Path) -> (std::process::Child, SocketAddr) {
    let s = spawn(config);
    (s.child, s.http)
}

fn spawn(config: &std::path::Path) -> Spawned {
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
                let grpc = line
                    .split("metadata_grpc=Some(")
                    .nth(1)
                    .and_then(|g| g.split(')').next())
                    .and_then(|g| g.parse().ok());
                if let Some(found) = found.take() {
                    let _ = found.send(addr.map(|a| (a, grpc)));
                }
            }
        }
    });
    let (http, grpc) = match addr.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => addr.expect("listener address in the serving line"),
        Err(_) => {
            let _ = child.kill();
            panic!("gateway did not log its listeners within 30 s");
        }
    };
    Spawned { child, http, grpc }
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

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gateway-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

fn publish_request(revision: &str) -> pb::PublishMetadataRequest {
    pb::PublishMetadataRequest {
        application_name: "shop".into(),
        revision: revision.into(),
        metadata_info: testkit::demo::metadata_info("shop", revision),
    }
}

async fn get(grpc: SocketAddr, application: &str, revision: &str) -> Result<String, tonic::Status> {
    let mut client = MetadataServiceClient::connect(format!("http://{grpc}"))
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    client
        .get(pb::GetMetadataRequest {
            application_name: application.into(),
            revision: revision.into(),
        })
        .await
        .map(|r| r.into_inner().metadata_info)
}

/// Publishes are acknowledged only once on disk: SIGKILL the gateway in the middle of a stream
/// of concurrent publishes, restart it on the same file, and every acknowledged one is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_publishes_survive_sigkill() {
    let dir = temp_dir("sigkill");
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            "listeners: [{{name: http, address: '127.0.0.1:0'}}]\n\
             admin: {{address: ''}}\n\
             metadata: {{backend: redb, path: '{}', grpc_address: '127.0.0.1:0'}}\n",
            dir.join("store/metadata.redb").display()
        ),
    )
    .expect("write config");
    let mut gateway = spawn(&config);
    let grpc = gateway.grpc.expect("metadata gRPC address");
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let publishers: Vec<_> = (0..8)
        .map(|p| {
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                let Ok(mut client) = MetadataServiceClient::connect(format!("http://{grpc}")).await
                else {
                    return;
                };
                for i in 0.. {
                    let revision = format!("p{p}-{i}");
                    match client.publish(publish_request(&revision)).await {
                        Ok(_) => acknowledged.lock().expect("lock").push(revision),
                        Err(_) => return, // the gateway is gone
                    }
                }
            })
        })
        .collect();
    // Let a few hundred publishes through, then kill without warning.
    for _ in 0..200 {
        if acknowledged.lock().expect("lock").len() >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway.child.kill().expect("SIGKILL");
    let _ = gateway.child.wait();
    for p in publishers {
        let _ = p.await;
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() >= 50,
        "only {} publishes before the kill",
        acknowledged.len()
    );

    // The store opens cleanly and holds every acknowledged publish, byte for byte.
    let mut restarted = spawn(&config);
    let grpc = restarted.grpc.expect("metadata gRPC address");
    for revision in &acknowledged {
        let got = get(grpc, "shop", revision).await;
        assert_eq!(
            got.as_deref().ok(),
            Some(testkit::demo::metadata_info("shop", revision).as_str()),
            "acknowledged publish {revision} lost: {got:?}"
        );
    }
    let _ = restarted.child.kill();
    let _ = restarted.child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two gateway processes on one etcd: metadata published to one types calls through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_etcd_store() {
    let Some(etcd) = testkit::etcd::Etcd::start().await else {
        return;
    };
    let provider = rust_provider(DemoService::default()).await;
    let dir = temp_dir("etcd-pair");
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            "listeners: [{{name: http, address: '127.0.0.1:0'}}]\n\
             admin: {{address: ''}}\n\
             metadata: {{backend: etcd, etcd: {{endpoints: ['{}'], prefix: /pair/}}, grpc_address: '127.0.0.1:0'}}\n\
             clusters: [{{name: demo, application: shop, revision: r1, endpoints: ['{provider}']}}]\n",
            etcd.client_url
        ),
    )
    .expect("write config");
    let mut a = spawn(&config);
    let mut b = spawn(&config);
    let (grpc_a, grpc_b) = (a.grpc.expect("a"), b.grpc.expect("b"));

    let named = r#"{"arg0": {"id": "7", "name": "alice", "age": 30, "email": "a@example.com"}}"#;
    let path = format!("/shop/{SERVICE}/echoUser");
    let (status, _) = send(b.http, Method::POST, &path, named).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "nothing published yet");

    let url = format!("http://{grpc_a}");
    let mut metadata = MetadataServiceClient::connect(url.clone())
        .await
        .expect("connect a");
    metadata
        .publish(publish_request("r1"))
        .await
        .expect("publish on a");
    ServiceDefinitionServiceClient::connect(url)
        .await
        .expect("connect a")
        .publish(pb::PublishServiceDefinitionRequest {
            identifier: testkit::demo::definition_identifier("shop"),
            service_definition: testkit::demo::service_definition(),
        })
        .await
        .expect("publish definition on a");

    // b serves what a stored, over gRPC and as typing for its own calls.
    assert_eq!(
        get(grpc_b, "shop", "r1").await.expect("get from b"),
        testkit::demo::metadata_info("shop", "r1")
    );
    // b learned "nothing published" before; it believes that until its watch reports the
    // publish (at once, normally) and for at most a second in any case.
    let mut answer = send(b.http, Method::POST, &path, named).await;
    for _ in 0..40 {
        if answer.0 == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer = send(b.http, Method::POST, &path, named).await;
    }
    let (status, body) = answer;
    assert_eq!(
        (status, &body["age"]),
        (StatusCode::OK, &serde_json::json!(31)),
        "{body}"
    );

    for child in [&mut a.child, &mut b.child] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    drop(etcd);
}
