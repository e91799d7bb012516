//! Access logs: one JSON object per line per request, to stdout or a file.
//!
//! Lines are formatted on the request's task and handed to one writer task through a bounded
//! queue; a request never waits for the disk. If the writer falls behind, lines are dropped and
//! counted (`gateway_access_log_dropped_total`) rather than slowing traffic down.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::AccessLog;

/// Lines queued before dropping starts.
const QUEUE: usize = 16_384;
/// Request-controlled fields (path, user agent, request id) are cut to this many bytes, so a
/// full queue stays small (under ~50 MiB) whatever clients send.
pub const MAX_FIELD: usize = 1024;

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
    /// Lines lost: queue full, or the destination refused the write.
    dropped: Counter,
}

impl AccessLogger {
    /// Opens the destination and starts the writer; `None` when access logs are off.
    pub fn start(config: &AccessLog, dropped: Counter) -> Result<Option<AccessLogger>, String> {
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
        let lost = dropped.clone();
        // A blocking thread: file writes block, and this keeps them off the runtime's workers.
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(64 << 10);
                while let Some(line) = queue.blocking_recv() {
                    batch.extend_from_slice(&line);
                    let mut count = 1;
                    while batch.len() < (64 << 10) {
                        match queue.try_recv() {
                            Ok(more) => {
                                batch.extend_from_slice(&more);
                                count += 1;
                            }
                            Err(_) => break,
                        }
                    }
                    // Whole lines in one write: they never interleave with other output.
                    if out.write_all(&batch).and_then(|()| out.flush()).is_err() {
                        lost.inc_by(count);
                    }
                    batch.clear();
                }
            })
            .map_err(|e| format!("access log writer: {e}"))?;
        Ok(Some(AccessLogger { lines, dropped }))
    }

    /// Queues a line (or counts it as dropped).
    pub fn log(&self, entry: &Entry<'_>) {
        let mut line = Vec::with_capacity(320);
        if serde_json::to_writer(&mut line, entry).is_err() {
            self.dropped.inc();
            return;
        }
        line.push(b'\n');
        if self.lines.try_send(line).is_err() {
            self.dropped.inc();
        }
    }
}

/// `text` cut to at most [`MAX_FIELD`] bytes, on a character boundary.
pub fn clip(text: &str) -> &str {
    if text.len() <= MAX_FIELD {
        return text;
    }
    let mut end = MAX_FIELD;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// RFC 3339 UTC with milliseconds, for log lines.
pub fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let millis = i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
    http_bridge::time::format_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_fields_are_clipped_on_a_character_boundary() {
        assert_eq!(clip("/short"), "/short");
        let long = "é".repeat(MAX_FIELD); // 2 bytes each
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_FIELD && clipped.len() >= MAX_FIELD - 1);
        assert!(clipped.chars().all(|c| c == 'é'));
    }
}
