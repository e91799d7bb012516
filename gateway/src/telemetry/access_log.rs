//! Access logs: one JSON object per line per request, to stdout or a file.
//!
//! Lines are formatted on the request's task and handed to one writer task through a bounded
//! queue; a request never waits for the disk. If the writer falls behind, lines are dropped and
//! counted (`gateway_access_log_dropped_total`) rather than slowing traffic down.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::AccessLog;

/// Lines queued before dropping starts.
const QUEUE: usize = 16_384;

/// One request, as logged. Field names are documented in docs/operations.md.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub remote: Option<SocketAddr>,
    pub method: &'a str,
    pub path: &'a str,
    pub protocol: &'a str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<&'a str>,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
    pub route: Option<&'a str>,
    pub cluster: Option<&'a str>,
    pub upstream: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
}

/// Where lines go.
#[derive(Debug, Clone)]
pub struct AccessLogger {
    lines: mpsc::Sender<Vec<u8>>,
}

impl AccessLogger {
    /// Opens the destination and starts the writer; `None` when access logs are off.
    pub fn start(config: &AccessLog) -> Result<Option<AccessLogger>, String> {
        if !config.enabled {
            return Ok(None);
        }
        let mut out: Box<dyn std::io::Write + Send> = if config.path.is_empty() {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&config.path)
                    .map_err(|e| format!("access_log.path: {}: {e}", config.path))?,
            )
        };
        let (lines, mut queue) = mpsc::channel::<Vec<u8>>(QUEUE);
        // A blocking thread: file writes block, and this keeps them off the runtime's workers.
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(64 << 10);
                while let Some(line) = queue.blocking_recv() {
                    batch.extend_from_slice(&line);
                    while batch.len() < (64 << 10) {
                        match queue.try_recv() {
                            Ok(more) => batch.extend_from_slice(&more),
                            Err(_) => break,
                        }
                    }
                    // Whole lines in one write: they never interleave with other output.
                    let _ = out.write_all(&batch).and_then(|()| out.flush());
                    batch.clear();
                }
            })
            .map_err(|e| format!("access log writer: {e}"))?;
        Ok(Some(AccessLogger { lines }))
    }

    /// Queues a line; `false` if it was dropped.
    pub fn log(&self, entry: &Entry<'_>) -> bool {
        let mut line = Vec::with_capacity(320);
        if serde_json::to_writer(&mut line, entry).is_err() {
            return false;
        }
        line.push(b'\n');
        self.lines.try_send(line).is_ok()
    }
}

/// RFC 3339 UTC with milliseconds, for log lines.
pub fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let millis = i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
    http_bridge::time::format_millis(millis)
}
