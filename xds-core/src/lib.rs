//! A reusable xDS client (ADS, state of the world and delta), the validated domain model of
//! listeners, routes, clusters and endpoints, routing and load-balancing decisions, and a snapshot
//! ADS server.
//!
//! Not built yet: this crate is reserved in the workspace layout and gains its client, model and
//! server in a later change.
#![forbid(unsafe_code)]
