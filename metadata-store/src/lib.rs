//! Dubbo3 application-level metadata: `MetadataInfo` published by (application, revision) and
//! service definitions by identifier, kept in a durable store and served over gRPC.
//!
//! Not built yet: this crate is reserved in the workspace layout and gains its store, backends and
//! gRPC services in a later change.
#![forbid(unsafe_code)]
