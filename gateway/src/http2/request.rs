//! A client's header block as a request head (RFC 9113 §8.3): pseudo-headers first and each
//! once, no connection-specific field, `te` only as `trailers`, split cookies joined.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_bridge::h2::hpack::{Field, FieldName};

/// A request head from its fields (RFC 9113 §8.3): the pseudo-headers first, each once;
/// `:method`, `:scheme` and `:path` present (CONNECT is not served); no connection-specific
/// field; `te` only as `trailers`. Returns the request and its content-length.
pub(super) fn request(fields: &[Field]) -> Result<(Request<()>, Option<u64>), &'static str> {
    let (mut method, mut scheme, mut authority, mut path) = (None, None, None, None);
    let mut headers = HeaderMap::with_capacity(fields.len().min(64));
    let mut regular = false;
    for f in fields {
        if let Some(why) = f.malformed() {
            return Err(why);
        }
        match &f.name {
            FieldName::OtherPseudo(name) => {
                if regular {
                    return Err("a pseudo-header after a regular field");
                }
                let slot = match &name[..] {
                    b":method" => &mut method,
                    b":scheme" => &mut scheme,
                    b":authority" => &mut authority,
                    b":path" => &mut path,
                    _ => return Err("an unknown pseudo-header"),
                };
                if slot.replace(&f.value).is_some() {
                    return Err("a repeated pseudo-header");
                }
            }
            FieldName::Status => return Err(":status in a request"),
            FieldName::Malformed(why) => return Err(why),
            FieldName::Header(name) => {
                regular = true;
                check_field(name, &f.value)?;
                headers
                    .try_append(name.clone(), f.value.clone())
                    .map_err(|_| "too many fields")?;
            }
        }
    }
    let method =
        Method::from_bytes(method.ok_or("no :method")?.as_bytes()).map_err(|_| "a bad :method")?;
    if method == Method::CONNECT {
        return Err("CONNECT is not served");
    }
    let scheme = scheme.ok_or("no :scheme")?;
    let path = path.filter(|p| !p.is_empty()).ok_or("no :path")?;
    let authority = authority.or_else(|| headers.get(http::header::HOST));
    let mut uri = Uri::builder();
    if let Some(authority) = authority.filter(|a| !a.is_empty()) {
        uri = uri
            .scheme(scheme.as_bytes())
            .authority(authority.as_bytes());
    }
    let uri = uri
        .path_and_query(path.as_bytes())
        .build()
        .map_err(|_| "a bad :path or :authority")?;
    // Cookies may arrive split into several fields (RFC 9113 §8.2.3); handlers see one.
    if headers
        .get_all(http::header::COOKIE)
        .iter()
        .nth(1)
        .is_some()
    {
        let joined = headers
            .get_all(http::header::COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect::<Vec<_>>()
            .join(&b"; "[..]);
        let joined = HeaderValue::from_bytes(&joined).map_err(|_| "a bad cookie")?;
        headers.insert(http::header::COOKIE, joined);
    }
    let content_length = match headers.get(http::header::CONTENT_LENGTH) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or("a bad content-length")?,
        ),
        None => None,
    };
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = http::Version::HTTP_2;
    *request.headers_mut() = headers;
    Ok((request, content_length))
}

pub(super) fn check_field(name: &HeaderName, value: &HeaderValue) -> Result<(), &'static str> {
    match name.as_str() {
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" => {
            Err("a connection-specific field")
        }
        "te" if value != "trailers" => Err("te other than trailers"),
        _ => Ok(()),
    }
}
