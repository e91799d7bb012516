//! HTTP ↔ Dubbo translation: request mapping, JSON ↔ hessian2 by declared Java types, error
//! mapping, and the Dubbo2 and Triple upstream clients.
//!
//! Not built yet: this crate is reserved in the workspace layout and gains the bridge in a later
//! change.
#![forbid(unsafe_code)]
