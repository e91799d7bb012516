//! The gateway: HTTP/JSON in, Apache Dubbo out.
//!
//! * [`config`]: the configuration file (figment: YAML/TOML plus `GATEWAY_*` variables) and its
//!   validation, every problem reported with its location.
//! * [`runtime`]: a configuration compiled into routes, clusters and signatures.
//! * [`metadata`]: calls typed by the Dubbo metadata providers publish into the embedded
//!   store (served over gRPC by [`app`]); [`openapi`]: what is published, as OpenAPI 3.
//! * [`proxy`]: one request end to end; [`errors`]: failures as HTTP responses, in one place.
//! * [`server`]: HTTP/1.1 ([`http1`]) and HTTP/2 ([`http2`]), both our own, on one port (h2c,
//!   or TLS with ALPN by [`tls`]), graceful shutdown; [`admin`]: `/live`,
//!   `/ready`, `/config_dump`, `/metadata`, `/openapi.json`.
//! * [`xds`], [`xds_route`]: routes, clusters and endpoints from an xDS control plane, kept
//!   ready for requests across updates.
//! * [`http_proxy`]: plain HTTP proxied as it is to `http` clusters, over [`http_client`]
//!   (a task-less HTTP/1.1 client with per-worker idle pools);
//! * [`grpc_proxy`]: gRPC/Triple calls proxied as they are to gRPC clusters; [`transcode`]:
//!   HTTP/JSON calls turned into unary gRPC calls by protobuf descriptors; [`triple_call`]:
//!   HTTP/JSON routes onto Triple clusters without IDL (hessian2 wrappers, or JSON as is);
//!   [`reflection`]: descriptors learnt from providers by gRPC server reflection.
//! * [`pipeline`]: every request — dispatch, then [`telemetry`] (Prometheus metrics, access
//!   logs); [`rate_limit`]: governor token buckets per route and client key; [`breaker`]:
//!   circuit breaking per cluster.
//! * [`workers`]: thread-per-core serving (one event loop per worker thread, one shared
//!   listening socket).
//! * [`app`]: start and stop a configured gateway; [`demo`]: the self-contained demo;
//!   [`control_plane`]: the file-driven xDS control plane (`gateway control-plane`).
#![forbid(unsafe_code)]

pub mod admin;
pub mod affinity;
pub mod app;
pub mod breaker;
pub mod config;
pub mod control_plane;
pub mod demo;
pub mod errors;
pub mod grpc_proxy;
pub mod http1;
pub mod http2;
pub mod http_client;
pub mod http_proxy;
pub mod metadata;
pub mod openapi;
pub mod pipeline;
pub mod proxy;
pub mod rate_limit;
pub mod reflection;
pub mod runtime;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod transcode;
pub mod triple_call;
pub mod workers;
pub mod xds;
pub mod xds_route;
