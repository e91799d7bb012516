//! The metadata store of Dubbo3 application-level service discovery.
//!
//! Providers publish their `MetadataInfo` by (application, revision) and their service
//! definitions by identifier; consumers (the gateway) read them back to learn method signatures
//! and parameter types. The crate divides the work so:
//!
//! - [`model`]: Dubbo's JSON (`MetadataInfo`, `FullServiceDefinition`, both the 2.7 and 3.x
//!   shapes) parsed into domain types.
//! - [`store`]: the [`Store`](store::Store) trait over raw strings with their publish time, and
//!   its backends: in memory, embedded and durable (redb, the default), and etcd for several
//!   instances sharing one store.
//! - [`Registry`]: validation, conflicts, expiry (TTL and a sweeper), and a parsed-view cache
//!   with single-flight misses.
//! - [`grpc`]: the `pixiu.pkg.metadata` gRPC services (Publish and Get), with an optional
//!   bearer token for publishers.
//!
//! It knows nothing of the gateway and can serve as a metadata center on its own.

#![forbid(unsafe_code)]

pub mod clock;
mod error;
pub mod grpc;
pub mod model;
mod registry;
pub mod store;

pub use error::Error;
pub use registry::{check_key_part, Entry, Outcome, Registry, Stats, DEFAULT_TTL, MAX_VALUE_BYTES};
