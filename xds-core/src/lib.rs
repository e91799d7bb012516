//! xDS for Rust services: the validated model of Envoy v3 resources and the decisions a data
//! plane makes with them, usable on its own for proxyless service mesh.
//!
//! - [`model`]: routes ([`RouteConfig`](model::RouteConfig)), clusters
//!   ([`Cluster`](model::Cluster)) and endpoints ([`Endpoints`](model::Endpoints)), converted
//!   from the `envoy-types` wire messages with typed errors fit for a NACK's `error_detail`.
//! - [`router`]: `route(request)` → the virtual host, the route and what to do.
//! - [`lb`]: pick an endpoint with the cluster's policy, honouring priorities, locality and
//!   endpoint weights, health and outlier ejection.
//! - [`client`]: the ADS client (state of the world or delta) with typed watches and a
//!   readiness signal.
//! - [`bootstrap`]: the gRPC xDS bootstrap (servers, node identity), from a file, the
//!   environment or the caller.
//! - [`json`]: resources from JSON/YAML (proto3 JSON mapping) and Envoy config dumps, for
//!   snapshot files and tests.
//! - [`snapshot`] and [`server`]: versioned snapshots and an ADS server (state of the world and
//!   delta) that serves them to any number of clients — for tests and small control planes.
//!
//! Nothing here knows about the gateway: Dubbo appears only as the `filter_metadata["dubbo"]`
//! conventions of routes and endpoints.

#![forbid(unsafe_code)]

pub mod bootstrap;
pub mod client;
mod error;
pub mod json;
pub mod lb;
pub mod model;
pub mod router;
pub mod server;
pub mod snapshot;

pub use error::Error;
