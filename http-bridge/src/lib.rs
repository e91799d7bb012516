//! HTTP ↔ Dubbo translation: request mapping, JSON ↔ hessian2 by declared Java types, error
//! mapping, and the Dubbo upstream clients.
//!
//! Built so far: [`dubbo2::Connection`], one multiplexed Dubbo2 connection to a provider (many
//! calls in flight, matched by request id; heartbeats both ways; timeouts). The request mapping,
//! JSON conversion and connection pooling arrive with the gateway.
#![forbid(unsafe_code)]

pub mod dubbo2;
