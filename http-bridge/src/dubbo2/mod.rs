//! The Dubbo2 upstream client.

mod connection;

pub use connection::{CallError, Connection};
