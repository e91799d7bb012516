//! The crate's one error type.

/// What can go wrong publishing or reading metadata.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request or the published value is unusable; `reason` says why, for the publisher.
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// The backend cannot be reached or cannot write; retrying later may work.
    #[error("metadata backend unavailable: {0}")]
    Unavailable(String),
    /// A stored value cannot be read back (damaged or written by an incompatible version).
    #[error("stored metadata is corrupt: {0}")]
    Corrupt(String),
}
