//! The Dubbo2 protocol: frames on a TCP stream, each a 16-byte [`Header`] and a hessian2 body.
//!
//! * [`frame`]: [`FrameDecoder`] cuts frames out of a byte stream incrementally, bounding their
//!   size; it reads only headers, so a reader can route or reject a frame before parsing it.
//! * [`message`]: [`Request`] and [`Response`] bodies (invocations, results, exceptions,
//!   heartbeats, error statuses) encoded and decoded as Java's `DubboCodec` does.
//!
//! ```text
//! 0      2      3       4           12          16
//! | magic | flags | status | request id | body len | body …
//!  0xdabb  req|2way|event|serialization id (2 = hessian2)
//! ```

mod frame;
mod header;
mod message;

pub use frame::{Frame, FrameDecoder, DEFAULT_MAX_FRAME};
pub use header::{Header, Status, HEADER_LEN, HESSIAN2, MAGIC};
pub use message::{
    Attachments, Invocation, Outcome, Request, RequestKind, Response, ResponseFlag,
    DEFAULT_SERVICE_VERSION, DUBBO_VERSION,
};
