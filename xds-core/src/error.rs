//! The crate's error type: every rejected resource says which one and why, in words that can go
//! into a NACK's `error_detail` as they are.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A resource that cannot be used; `reason` names the field at fault.
    #[error("{kind} {name:?}: {reason}")]
    InvalidResource {
        kind: &'static str,
        name: String,
        reason: String,
    },
    /// Bytes or JSON that are not the message they claim to be.
    #[error("cannot decode {type_url}: {reason}")]
    Decode { type_url: String, reason: String },
}

impl Error {
    pub(crate) fn invalid(kind: &'static str, name: &str, reason: impl Into<String>) -> Self {
        Error::InvalidResource {
            kind,
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}
