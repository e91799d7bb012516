//! Configuration of what operations teams tune: access logs, rate limits and circuit breakers.

use serde::{Deserialize, Serialize};

/// One JSON line per request (docs/operations.md lists the fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLog {
    pub enabled: bool,
    /// A file to append to; empty means stdout.
    pub path: String,
}

/// A token bucket: `requests_per_second` sustained, `burst` at once, counted per `key`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained rate; 0 turns limiting off (e.g. to exempt one route from the default).
    pub requests_per_second: u32,
    /// Requests allowed at once above the sustained rate (default: one second's worth).
    #[serde(default)]
    pub burst: Option<u32>,
    /// `remote_address` (the default), `header:NAME` (e.g. an API key; requests without the
    /// header share one bucket), or `global` (one bucket for everyone).
    #[serde(default = "remote_address")]
    pub key: String,
    /// The most client keys tracked at once; beyond it, new keys share one bucket until idle
    /// keys are swept. Bounds memory whatever the number of clients.
    #[serde(default = "max_keys")]
    pub max_keys: usize,
}

fn remote_address() -> String {
    "remote_address".into()
}

fn max_keys() -> usize {
    100_000
}

/// What a rate limit counts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitKey {
    RemoteAddress,
    Header(http::HeaderName),
    Global,
}

impl RateLimit {
    pub fn limit_key(&self) -> Result<LimitKey, String> {
        match self.key.as_str() {
            "remote_address" => Ok(LimitKey::RemoteAddress),
            "global" => Ok(LimitKey::Global),
            other => match other.strip_prefix("header:") {
                Some(name) => http::HeaderName::from_bytes(name.trim().as_bytes())
                    .map(LimitKey::Header)
                    .map_err(|_| format!("{name:?} is not a header name")),
                None => Err(format!(
                    "{other:?}: expected remote_address, global or header:NAME"
                )),
            },
        }
    }
}

/// Envoy's circuit-breaker thresholds for one cluster (its defaults too): beyond them, calls
/// are answered 503 at once instead of queueing.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitBreaker {
    /// Calls in flight to the cluster.
    pub max_requests: u32,
    /// Calls waiting for a connection to be established.
    pub max_pending_requests: u32,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker {
            max_requests: 1024,
            max_pending_requests: 1024,
        }
    }
}

/// OpenTelemetry tracing: spans per request and per upstream call, exported over OTLP/gRPC.
/// Off by default, and then it costs nothing (no span is made).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Tracing {
    pub enabled: bool,
    /// The OTLP/gRPC collector (an OpenTelemetry Collector, Jaeger, Tempo, …).
    pub otlp_endpoint: String,
    /// Share of traces started here that are recorded (0.0–1.0); a caller's sampled flag in
    /// `traceparent` is followed.
    pub sampling_ratio: f64,
    pub service_name: String,
    pub export_timeout_ms: u64,
}

impl Default for Tracing {
    fn default() -> Self {
        Tracing {
            enabled: false,
            otlp_endpoint: "http://127.0.0.1:4317".into(),
            sampling_ratio: 1.0,
            service_name: "dubbo-gateway".into(),
            export_timeout_ms: 10_000,
        }
    }
}
