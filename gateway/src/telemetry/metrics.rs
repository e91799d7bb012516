//! Prometheus metrics (OpenMetrics text, served at the admin listener's `/metrics`) with the
//! official `prometheus-client` crate. Counters and histograms the request path updates live
//! here; gauges of state (in-flight calls, xDS connection, metadata store counters) are read
//! when scraped, so the hot path pays nothing for them. docs/operations.md lists every metric.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Tags;
use crate::runtime::Runtime;

/// A label value shared with the configuration (no copy per request).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Name(pub Option<Arc<str>>);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0.as_deref().unwrap_or(""))
    }
}

/// `1xx` … `5xx`: the hundreds digit of a status, so that 400 and 404 are one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Class(pub u16);

impl Class {
    pub fn of(status: u16) -> Class {
        Class(status / 100)
    }
}

impl EncodeLabelValue for Class {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        write!(encoder, "{}xx", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: Name,
    pub cluster: Name,
    pub code: Class,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ClusterLabels {
    pub cluster: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: Name,
}

/// The metrics the request path updates. Shared by every configuration a gateway runs (a
/// reload keeps the counts).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Arc<super::request_metrics::RequestMetrics>,
    pub upstream_timeouts: Family<ClusterLabels, Counter>,
    pub upstream_retries: Family<ClusterLabels, Counter>,
    pub upstream_connect_failures: Family<ClusterLabels, Counter>,
    pub circuit_open: Family<ClusterLabels, Counter>,
    pub ejections: Family<ClusterLabels, Counter>,
    pub rate_limited: Family<RouteLabels, Counter>,
    pub access_log_dropped: Counter,
    reloads: Family<OutcomeLabels, Counter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        // Requests and their durations: counted per thread, summed when scraped.
        let requests = super::request_metrics::RequestMetrics::new();
        registry.register_collector(Box::new(Arc::clone(&requests)));
        let per_cluster = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<ClusterLabels, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let upstream_timeouts = per_cluster(
            &mut registry,
            "gateway_upstream_timeouts",
            "Upstream calls that ran out of time",
        );
        let upstream_retries = per_cluster(
            &mut registry,
            "gateway_upstream_retries",
            "Retries made by route retry policies",
        );
        let upstream_connect_failures = per_cluster(
            &mut registry,
            "gateway_upstream_connect_failures",
            "Calls that found no reachable endpoint",
        );
        let circuit_open = per_cluster(
            &mut registry,
            "gateway_circuit_breaker_rejections",
            "Calls answered 503 at once because the cluster's circuit breaker was open",
        );
        let ejections = per_cluster(
            &mut registry,
            "gateway_upstream_ejections",
            "Endpoints ejected by outlier detection",
        );
        let rate_limited = Family::<RouteLabels, Counter>::default();
        registry.register(
            "gateway_rate_limited",
            "Requests answered 429 by a rate limit, by route",
            rate_limited.clone(),
        );
        let access_log_dropped = Counter::default();
        registry.register(
            "gateway_access_log_dropped",
            "Access log lines dropped because the writer fell behind",
            access_log_dropped.clone(),
        );
        let reloads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "gateway_config_reloads",
            "Configuration reloads, by outcome (applied or rejected)",
            reloads.clone(),
        );
        Metrics {
            reloads,
            registry,
            requests,
            upstream_timeouts,
            upstream_retries,
            upstream_connect_failures,
            circuit_open,
            ejections,
            rate_limited,
            access_log_dropped,
        }
    }

    /// Counts a configuration reload, `applied` or `rejected`.
    pub fn config_reloads(&self, outcome: &'static str) {
        self.reloads.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// Counts one answered request.
    pub fn observe(&self, tags: &Tags, status: u16, elapsed: Duration) {
        self.requests.observe(tags, status, elapsed);
    }

    pub fn cluster(name: &str) -> ClusterLabels {
        ClusterLabels {
            cluster: Name(Some(Arc::from(name))),
        }
    }

    /// The whole exposition: the live counters, then the state read now.
    pub fn encode(&self, rt: &Runtime) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(16 << 10);
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)?;
        prometheus_client::encoding::text::encode_registry(&mut out, &state(rt))?;
        prometheus_client::encoding::text::encode_eof(&mut out)?;
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct XdsTypeLabels {
    r#type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndpointLabels {
    cluster: String,
    endpoint: String,
}

/// Gauges and counters of state, read at scrape time into a registry of their own.
fn state(rt: &Runtime) -> Registry {
    let mut registry = Registry::default();
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: i64| {
        let g = Gauge::<i64>::default();
        g.set(value);
        registry.register(name, help, g);
    };
    let counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        registry.register(name, help, c);
    };

    // Upstream calls in flight and pending, by cluster (configured and from xDS).
    let in_flight = Family::<ClusterLabels, Gauge>::default();
    let pending = Family::<ClusterLabels, Gauge>::default();
    let endpoints_up = Family::<EndpointLabels, Gauge>::default();
    for (name, breaker) in rt.breakers() {
        let labels = Metrics::cluster(&name);
        in_flight
            .get_or_create(&labels)
            .set(i64::from(breaker.in_flight()));
        pending
            .get_or_create(&labels)
            .set(i64::from(breaker.pending()));
    }
    for (cluster, endpoint, up) in rt.endpoint_health() {
        endpoints_up
            .get_or_create(&EndpointLabels { cluster, endpoint })
            .set(i64::from(up));
    }
    let connections = Family::<ClusterLabels, Gauge>::default();
    for (name, open) in rt.open_connections() {
        connections
            .get_or_create(&Metrics::cluster(&name))
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }
    registry.register(
        "gateway_upstream_connections",
        "Dubbo2 connections open to each cluster's endpoints",
        connections,
    );
    registry.register(
        "gateway_upstream_requests_in_flight",
        "Calls in flight to each cluster",
        in_flight,
    );
    registry.register(
        "gateway_upstream_requests_pending",
        "Calls waiting for a connection, by cluster",
        pending,
    );
    registry.register(
        "gateway_upstream_endpoint_up",
        "1 when an endpoint is usable (connected or not in connect backoff, not ejected)",
        endpoints_up,
    );

    // xDS.
    if let Some(xds) = &rt.xds {
        let state = xds.state();
        gauge(
            &mut registry,
            "gateway_xds_connected",
            "1 while the stream to the xDS server is up",
            i64::from(state.connected),
        );
        counter(
            &mut registry,
            "gateway_xds_connects",
            "Streams established to the xDS server",
            state.connects,
        );
        let acks = Family::<XdsTypeLabels, Counter>::default();
        let nacks = Family::<XdsTypeLabels, Counter>::default();
        for (family, counts) in [(&acks, &state.acks_by_type), (&nacks, &state.nacks_by_type)] {
            for (type_url, n) in counts {
                let short = type_url.rsplit('.').next().unwrap_or(type_url).to_owned();
                family
                    .get_or_create(&XdsTypeLabels { r#type: short })
                    .inc_by(*n);
            }
        }
        registry.register("gateway_xds_acks", "xDS responses accepted, by type", acks);
        registry.register(
            "gateway_xds_nacks",
            "xDS responses rejected, by type",
            nacks,
        );
    }

    // The metadata store.
    if let Some(typing) = &rt.typing {
        let stats = typing.registry.stats();
        for (name, help, value) in [
            (
                "gateway_metadata_publishes",
                "Metadata and definitions published",
                stats.publishes,
            ),
            (
                "gateway_metadata_conflicts",
                "Publishes that replaced different content",
                stats.conflicts,
            ),
            (
                "gateway_metadata_lookups",
                "Metadata lookups",
                stats.lookups,
            ),
            (
                "gateway_metadata_misses",
                "Lookups that had to read the backend",
                stats.misses,
            ),
            (
                "gateway_metadata_expired",
                "Entries expired after their TTL",
                stats.expired,
            ),
        ] {
            counter(&mut registry, name, help, value);
        }
    }
    registry
}
