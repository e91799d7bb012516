//! A stored value and its byte encoding, shared by the backends that write bytes.

use std::sync::Arc;

use crate::Error;

/// A published raw string and when it was last published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub value: Arc<str>,
    /// Milliseconds since the Unix epoch.
    pub published_at_ms: u64,
}

/// Format version byte; anything else is refused rather than misread.
const V1: u8 = 1;

impl Record {
    pub fn new(value: impl Into<Arc<str>>, published_at_ms: u64) -> Self {
        Record {
            value: value.into(),
            published_at_ms,
        }
    }

    /// `[1][published_at_ms: u64 BE][value: UTF-8]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.value.len());
        out.push(V1);
        out.extend_from_slice(&self.published_at_ms.to_be_bytes());
        out.extend_from_slice(self.value.as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let corrupt = |reason: &str| Error::Corrupt(reason.to_owned());
        let (&version, rest) = bytes.split_first().ok_or_else(|| corrupt("empty record"))?;
        if version != V1 {
            return Err(corrupt(&format!("unknown record format {version}")));
        }
        let (time, value) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt("record shorter than its header"))?;
        let value = std::str::from_utf8(value).map_err(|_| corrupt("record is not UTF-8"))?;
        Ok(Record::new(value, u64::from_be_bytes(*time)))
    }

    /// Time only, without copying the value (for expiry scans).
    pub fn decode_published_at(bytes: &[u8]) -> Option<u64> {
        match bytes {
            [V1, rest @ ..] => rest.first_chunk::<8>().map(|t| u64::from_be_bytes(*t)),
            _ => None,
        }
    }
}
