//! A provider's header blocks as a response head or trailers (RFC 9113 §8.3): `:status`
//! first and once, no other pseudo-header, no connection-specific field, within the header
//! list limit.

use http::{HeaderMap, StatusCode};

use super::conn::{Head as ResponseHead, MAX_HEADER_LIST};
use super::hpack::{Field, FieldName};

pub(super) enum Parsed {
    Informational,
    Head(ResponseHead),
    Trailers(HeaderMap),
}

/// A response head: `:status` first and once, no other pseudo-header, no connection-specific
/// field.
pub(super) fn response_head(fields: &[Field], end_stream: bool) -> Result<Parsed, String> {
    let mut status = None;
    // Capped: a list of many tiny fields must not ask for a huge (or panicking) map before
    // its size is checked.
    let mut headers = HeaderMap::with_capacity(fields.len().min(64));
    let mut size = 0usize;
    for (i, f) in fields.iter().enumerate() {
        size += f.size();
        if let Some(why) = f.malformed() {
            return Err(why.to_owned());
        }
        if size > MAX_HEADER_LIST as usize {
            return Err(format!("headers over {} KiB", MAX_HEADER_LIST >> 10));
        }
        match &f.name {
            FieldName::Status if i == 0 => {
                status = Some(
                    StatusCode::from_bytes(f.value.as_bytes())
                        .map_err(|_| format!("the status {:?} is not a status", f.value))?,
                );
            }
            FieldName::Status => return Err("a second or late :status".into()),
            FieldName::OtherPseudo(name) => {
                return Err(format!(
                    "the pseudo-header {}",
                    String::from_utf8_lossy(name)
                ))
            }
            FieldName::Malformed(why) => return Err((*why).to_owned()),
            FieldName::Header(name) => {
                check_field(name)?;
                headers
                    .try_append(name.clone(), f.value.clone())
                    .map_err(|_| "too many fields".to_owned())?;
            }
        }
    }
    if size > MAX_HEADER_LIST as usize {
        return Err(format!("headers over {} KiB", MAX_HEADER_LIST >> 10));
    }
    let status = status.ok_or("no :status")?;
    if status.is_informational() {
        if end_stream {
            return Err("an informational status that ends the stream".into());
        }
        return Ok(Parsed::Informational);
    }
    Ok(Parsed::Head(ResponseHead { status, headers }))
}

/// Trailers: they must end the stream and carry no pseudo-header.
pub(super) fn trailers(fields: &[Field], end_stream: bool) -> Result<HeaderMap, String> {
    if !end_stream {
        return Err("a second header block that does not end the stream".into());
    }
    let mut map = HeaderMap::with_capacity(fields.len().min(64));
    let mut size = 0usize;
    for f in fields {
        if size > MAX_HEADER_LIST as usize {
            return Err(format!("trailers over {} KiB", MAX_HEADER_LIST >> 10));
        }
        let (FieldName::Header(name), true) = (&f.name, f.valid()) else {
            return Err("a pseudo-header or malformed field in trailers".into());
        };
        size += f.size();
        check_field(name)?;
        map.try_append(name.clone(), f.value.clone())
            .map_err(|_| "too many fields".to_owned())?;
    }
    if size > MAX_HEADER_LIST as usize {
        return Err(format!("trailers over {} KiB", MAX_HEADER_LIST >> 10));
    }
    Ok(map)
}

fn check_field(name: &http::HeaderName) -> Result<(), String> {
    match name.as_str() {
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" => {
            Err(format!("the connection-specific field {name}"))
        }
        _ => Ok(()),
    }
}
