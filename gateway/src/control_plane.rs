//! `gateway control-plane --snapshot FILE`: a small file-driven xDS control plane. It serves
//! the resources in a YAML or JSON snapshot file over ADS (state of the world and delta) and
//! pushes a new snapshot to every client when the file changes. A file that does not parse or
//! holds an invalid resource is refused with the reason, and the last good snapshot stays.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use xds_core::json::parse_text;
use xds_core::server::SnapshotServer;
use xds_core::snapshot::Snapshot;

/// Reads and validates a snapshot file.
pub fn load(path: &Path) -> Result<Snapshot, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc = parse_text(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Snapshot::from_document(&doc).map_err(|e| format!("{}: {e}", path.display()))
}

/// A running control plane.
#[derive(Debug)]
pub struct ControlPlane {
    pub address: SocketAddr,
    pub server: SnapshotServer,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `snapshot` on `address` and follows the file (checked every `poll`).
pub async fn start(
    snapshot: PathBuf,
    address: &str,
    poll: Duration,
) -> Result<ControlPlane, String> {
    let initial = load(&snapshot)?;
    tracing::info!(version = %initial.version, resources = initial.len(), "snapshot loaded");
    let server = SnapshotServer::new(initial);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let serving = server.clone();
    let watching = server.clone();
    let task = tokio::spawn(async move {
        let serve = serving.serve(listener, std::future::pending());
        let follow = follow(snapshot, watching, poll);
        tokio::select! {
            result = serve => if let Err(e) = result { tracing::error!(error = %e, "ADS listener failed") },
            () = follow => {}
        }
    });
    Ok(ControlPlane {
        address: bound,
        server,
        task,
    })
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reloads the file when its modification time or size changes.
async fn follow(path: PathBuf, server: SnapshotServer, poll: Duration) {
    let mut last = stamp(&path);
    loop {
        tokio::time::sleep(poll).await;
        let now = stamp(&path);
        if now == last {
            continue;
        }
        last = now;
        match load(&path) {
            Ok(mut snapshot) => {
                if snapshot.version == server.current().version {
                    if snapshot.digest() == server.current().digest() {
                        continue;
                    }
                    // Changed content under the same version would be ignored by clients.
                    tracing::warn!(version = %snapshot.version, "the file changed but its version did not; bump `version` — pushing with a content suffix");
                    snapshot.version =
                        format!("{}+{:08x}", snapshot.version, snapshot.digest() as u32);
                }
                tracing::info!(version = %snapshot.version, resources = snapshot.len(), "snapshot changed; pushing");
                server.set(snapshot);
            }
            Err(e) => tracing::error!(error = %e, "snapshot refused; the last good one stays"),
        }
    }
}
