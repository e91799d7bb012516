//! The routing decision: which virtual host serves the request's authority (exact domains
//! first, then the longest `*.suffix`, then the longest `prefix.*`, then `*`), and the first of
//! its routes whose every matcher holds.

use std::borrow::Cow;

use crate::model::matchers::{full_match, HeaderKey};
use crate::model::{
    ClusterChoice, Domain, Forward, PathMatch, Route, RouteConfig, RouteMatch, VirtualHost,
};

/// What routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `Host` / `:authority`.
    pub authority: &'a str,
    /// The HTTP method (for `:method` matchers).
    pub method: &'a str,
    /// Path with its query string, as received.
    pub path: &'a str,
    pub headers: &'a http::HeaderMap,
    /// A random number for runtime fractions and weighted clusters (the caller's generator, so
    /// tests can fix it).
    pub random: u64,
}

/// The outcome of routing.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'r> {
    pub virtual_host: &'r VirtualHost,
    pub route: &'r Route,
}

impl RouteConfig {
    /// The virtual host for `authority`, the most specific domain winning.
    pub fn virtual_host(&self, authority: &str) -> Option<&VirtualHost> {
        let host = authority.to_ascii_lowercase();
        let mut best: Option<(u8, usize, &VirtualHost)> = None;
        for vh in &self.virtual_hosts {
            for d in &vh.domains {
                // (class, length): lower class wins, then the longer pattern.
                let score = match d {
                    Domain::Exact(e) if *e == host => (0, e.len()),
                    Domain::Suffix(s) if host.len() > s.len() && host.ends_with(s.as_str()) => {
                        (1, s.len())
                    }
                    Domain::Prefix(p) if host.len() > p.len() && host.starts_with(p.as_str()) => {
                        (2, p.len())
                    }
                    Domain::Any => (3, 0),
                    _ => continue,
                };
                let better = best.is_none_or(|(c, l, _)| {
                    (score.0, std::cmp::Reverse(score.1)) < (c, std::cmp::Reverse(l))
                });
                if better {
                    best = Some((score.0, score.1, vh));
                }
            }
        }
        best.map(|(_, _, vh)| vh)
    }

    /// The route serving `request`, if any.
    pub fn route<'r>(&'r self, request: &Request<'_>) -> Option<Decision<'r>> {
        let virtual_host = self.virtual_host(request.authority)?;
        let route = virtual_host
            .routes
            .iter()
            .find(|r| matches(&r.matcher, request))?;
        Some(Decision {
            virtual_host,
            route,
        })
    }
}

fn matches(m: &RouteMatch, request: &Request<'_>) -> bool {
    let (path, query) = request.path.split_once('?').unwrap_or((request.path, ""));
    let path: Cow<'_, str> = if m.case_sensitive {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(path.to_lowercase())
    };
    let path_ok = match &m.path {
        PathMatch::Prefix(p) => path.starts_with(p.as_str()),
        PathMatch::Exact(p) => *path == **p,
        PathMatch::Regex(re) => full_match(re, request.path.split('?').next().unwrap_or_default()),
        PathMatch::Connect => false,
        PathMatch::SeparatedPrefix(p) => {
            path.starts_with(p.as_str())
                && matches!(path.as_bytes().get(p.len()), None | Some(b'/'))
        }
    };
    if !path_ok {
        return false;
    }
    let headers_ok = m.headers.iter().all(|h| {
        let name = match &h.name {
            HeaderKey::Header(name) => name,
            HeaderKey::Authority => return h.matches(Some(request.authority)),
            HeaderKey::Method => return h.matches(Some(request.method)),
            HeaderKey::Path => return h.matches(Some(request.path)),
            HeaderKey::Scheme => return h.matches(Some("http")),
        };
        let mut values = request
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let joined = match (values.next(), values.next()) {
            (None, _) => None,
            (Some(one), None) => Some(Cow::Borrowed(one)),
            (Some(a), Some(b)) => {
                let mut all = vec![a, b];
                all.extend(values);
                Some(Cow::Owned(all.join(",")))
            }
        };
        h.matches(joined.as_deref())
    });
    if !headers_ok {
        return false;
    }
    let query_ok = m.query.iter().all(|q| {
        let value = query
            .split('&')
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k) == q.name).then(|| decode(v))
            })
            .next();
        q.matches(value.as_deref())
    });
    if !query_ok {
        return false;
    }
    m.fraction.is_none_or(|(numerator, denominator)| {
        request.random % u64::from(denominator) < u64::from(numerator)
    })
}

impl Forward {
    /// The cluster for this request: the one named, one of the weighted ones by `random`, or
    /// the one a header names (`None` when the header is missing).
    pub fn pick_cluster<'a>(
        &'a self,
        headers: &'a http::HeaderMap,
        random: u64,
    ) -> Option<&'a str> {
        match &self.clusters {
            ClusterChoice::One(c) => Some(c),
            ClusterChoice::Header(h) => headers.get(h).and_then(|v| v.to_str().ok()),
            ClusterChoice::Weighted(clusters) => {
                let total: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
                let mut roll = random % total.max(1);
                for c in clusters {
                    if roll < u64::from(c.weight) {
                        return Some(&c.name);
                    }
                    roll -= u64::from(c.weight);
                }
                clusters.last().map(|c| c.name.as_str())
            }
        }
    }
}

/// A query component with `%XX` escapes and `+` decoded (invalid UTF-8 replaced).
fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}
