//! Which configured route serves a request: generic routes by prefix and
//! `/{interface}/{method}`, declared routes by method and path template; and the percent- and
//! query-decoding they need.

use http::Method;
use http_bridge::mapping::MethodSig;

use super::{Matched, RouteKind, Runtime, Segment};

impl Runtime {
    /// The first route serving `path`, in configuration order.
    pub fn find(&self, method: &Method, path: &str) -> Option<Matched<'_>> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut wrong_method = None;
        for route in &self.routes {
            match &route.kind {
                RouteKind::Generic { prefix } => {
                    let Some(rest) = strip_path_prefix(path, prefix) else {
                        continue;
                    };
                    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
                    let [interface, call] = parts.as_slice() else {
                        continue;
                    };
                    if method != Method::POST {
                        wrong_method.get_or_insert(Method::POST);
                        continue;
                    }
                    return Some(Matched::Generic {
                        route,
                        interface: percent_decode(interface),
                        method: percent_decode(call),
                    });
                }
                RouteKind::Declared {
                    method: wanted,
                    template,
                    interface,
                    call,
                    params,
                } => {
                    if template.len() != segments.len() {
                        continue;
                    }
                    let mut vars = Vec::new();
                    let fits = template.iter().zip(&segments).all(|(t, s)| match t {
                        Segment::Literal(l) => l == s,
                        Segment::Var(v) => {
                            vars.push((v.clone(), percent_decode(s)));
                            true
                        }
                    });
                    if !fits {
                        continue;
                    }
                    if method != wanted {
                        wrong_method.get_or_insert(wanted.clone());
                        continue;
                    }
                    return Some(Matched::Declared {
                        route,
                        interface,
                        call,
                        params,
                        vars,
                    });
                }
            }
        }
        wrong_method.map(|allowed| Matched::WrongMethod { allowed })
    }

    /// Declared signatures of `interface.method`.
    pub fn overloads(&self, interface: &str, method: &str) -> &[MethodSig] {
        self.services
            .get(interface)
            .and_then(|m| m.get(method))
            .map_or(&[], Vec::as_slice)
    }
}

fn strip_path_prefix<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    if prefix.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// Decodes `%XX` escapes (and `+` as space when `plus` is set, for query strings).
pub fn decode_component(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_decode(s: &str) -> String {
    decode_component(s, false)
}

/// `a=1&b=x+y` → pairs, decoded.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_component(k, true), decode_component(v, true))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(decode_component("a%20b%2Fc", false), "a b/c");
        assert_eq!(decode_component("a+b%", true), "a b%");
        assert_eq!(decode_component("%zz%4", false), "%zz%4");
        assert_eq!(
            query_pairs("n=3&name=J%C3%BCrgen+M&flag"),
            vec![
                ("n".into(), "3".into()),
                ("name".into(), "Jürgen M".into()),
                ("flag".into(), String::new())
            ]
        );
    }
}
