//! xDS for Rust services: the validated model of Envoy v3 resources and the decisions a data
//! plane makes with them, usable on its own for proxyless service mesh.
//!
//! - [`model`]: listeners' routes ([`RouteConfig`](model::RouteConfig)), converted from the
//!   `envoy-types` wire messages with typed errors fit for a NACK's `error_detail`.
//! - [`router`]: `route(request)` → the virtual host, the route and what to do.
//! - [`json`]: resources from JSON/YAML (proto3 JSON mapping) and Envoy config dumps, for
//!   snapshot files and tests.
//!
//! Nothing here knows about the gateway: Dubbo appears only as the `filter_metadata["dubbo"]`
//! conventions of routes and endpoints.

#![forbid(unsafe_code)]

mod error;
pub mod json;
pub mod model;
pub mod router;

pub use error::Error;
