//! The Triple (and plain gRPC) upstream client: a cluster of HTTP/2 endpoints with one
//! [`crate::h2`] client per event loop, and unary calls with Triple's headers, `grpc-timeout`
//! deadlines and the answer's `grpc-status` read from trailers or from a trailers-only
//! response.
//!
//! * [`cluster`]: endpoints (address and Dubbo identity), round-robin pick, the clients.
//! * [`call`]: one unary call and its typed outcome ([`TripleError`]).
//! * [`reflection`]: protobuf descriptors fetched from a provider by gRPC server reflection.
//! * [`wrapper`]: hessian2 arguments and results in Triple's wrapper messages, for services
//!   without IDL.

pub mod call;
pub mod cluster;
pub mod reflection;
pub mod wrapper;

pub use call::{grpc_message_decode, TripleError, UnaryCall};
pub use cluster::{Body, TripleCluster, TripleEndpoint};
