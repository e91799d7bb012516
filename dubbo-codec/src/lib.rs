//! Apache Dubbo wire formats in pure Rust: no sockets, no runtime, no unsafe code.
//!
//! * [`hessian`] is a complete Hessian 2.0 implementation as Java (Caucho, Dubbo's hessian-lite)
//!   writes and reads it: every compact form, chunked strings and binaries, typed and untyped
//!   lists and maps, class definitions, back-references, and the Java types that travel as
//!   objects (`BigDecimal`, enums, …). Its [`Value`] keeps Java type names and reference
//!   structure, so a decoded value encodes back to the same bytes.
//! * [`dubbo2`] frames the Dubbo2 protocol: the 16-byte header, requests, responses with all six
//!   result flags, heartbeat events and status codes, with an incremental decoder that tells
//!   "need more bytes" apart from errors and bounds every frame.
//! * [`triple`] frames gRPC/Triple messages (the 5-byte prefix) and encodes Triple's wrapper
//!   messages, with which Dubbo3 carries hessian2 (or other) arguments and results over HTTP/2
//!   when a service has no IDL.
//! * [`descriptor`] parses and writes Java method parameter descriptors (`Ljava/lang/String;I[J`).
//!
//! Decoders never trust a length field: a declared length is checked against the bytes that are
//! really there before anything is allocated, nesting depth is bounded, and every error says what
//! was wrong and at which byte offset.
#![forbid(unsafe_code)]

pub mod descriptor;
pub mod dubbo2;
mod error;
pub mod hessian;
pub mod triple;

pub use error::Error;

// The examples in the user documentation are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/hessian2.md")]
mod user_docs {}
pub use hessian::{ClassDef, Decoder, Encoder, List, Map, Object, Value};
