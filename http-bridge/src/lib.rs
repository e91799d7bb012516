//! HTTP ↔ Dubbo translation: JSON ↔ hessian2 by declared Java types, and the Dubbo upstream
//! clients.
//!
//! * [`types`]: declared Java types with generics ([`types::TypeRef`]) and what is known of user
//!   classes and enums ([`types::TypeRegistry`]).
//! * [`to_hessian`]: JSON arguments → hessian values by declared type, with errors naming the
//!   argument path.
//! * [`to_json`]: hessian results → JSON, following the documented conventions.
//! * [`mapping`]: an HTTP body (positional, named or pixiu form) → descriptor and arguments.
//! * [`time`]: `java.util.Date` ↔ ISO-8601.
//! * [`dubbo2`]: one multiplexed Dubbo2 connection to a provider (many calls in flight, matched
//!   by request id; heartbeats both ways; timeouts; graceful-shutdown notices).
//! * [`h2`]: our own HTTP/2 client (and the frame and HPACK formats the gateway's HTTP/2 server
//!   shares).
//! * [`triple`]: the Triple/gRPC upstream client (HTTP/2 by [`h2`], unary calls with Triple's
//!   headers and deadlines) and hessian2 calls in Triple's wrapper messages.
//!
//! The HTTP request mapping, connection pooling and load balancing arrive with the gateway.
#![forbid(unsafe_code)]

pub mod deadline;
pub mod dubbo2;
pub mod h2;
pub mod mapping;
pub mod time;
pub mod to_hessian;
pub mod to_json;
pub mod triple;
pub mod types;
