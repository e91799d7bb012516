//! The validated domain model: xDS resources converted from their wire types with typed errors
//! that say which resource and which field are at fault.

pub mod cluster;
pub mod endpoints;
pub mod listener;
pub mod matchers;
pub mod route;

use std::time::Duration;

use envoy_types::pb::google::protobuf;

pub use cluster::{Cluster, Discovery, LbPolicy, OutlierDetection, Thresholds};
pub use endpoints::{
    Address, AddressKind, DubboEndpoint, Endpoint, Endpoints, Health, Locality, LocalityEndpoints,
};
pub use listener::{HttpConnectionManager, Listener, RouteSource};
pub use route::{
    Action, ClusterChoice, Domain, DubboRoute, Forward, HashOn, HashPolicy, PathMatch, Redirect,
    RetryPolicy, Route, RouteConfig, RouteMatch, VirtualHost, WeightedCluster,
};

/// The largest duration protobuf allows (10,000 years).
const MAX_SECONDS: u64 = 315_576_000_000;

/// A protobuf duration; negative ones count as zero, and none exceeds protobuf's range (so
/// arithmetic on it cannot overflow).
pub(crate) fn duration(d: &protobuf::Duration) -> Duration {
    let secs = u64::try_from(d.seconds).unwrap_or(0).min(MAX_SECONDS);
    let nanos = u32::try_from(d.nanos).unwrap_or(0).min(999_999_999);
    Duration::new(secs, nanos)
}

/// A string field of a `google.protobuf.Struct` (filter metadata).
pub(crate) fn string_field(s: &protobuf::Struct, name: &str) -> Option<String> {
    match s.fields.get(name).and_then(|v| v.kind.as_ref()) {
        Some(protobuf::value::Kind::StringValue(v)) if !v.is_empty() => Some(v.clone()),
        _ => None,
    }
}
