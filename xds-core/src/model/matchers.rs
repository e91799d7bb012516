//! String, header and query matchers of routes, validated (regexes compiled once).

use envoy_types::pb::envoy::config::route::v3 as pb;
use envoy_types::pb::envoy::r#type::matcher::v3 as matcher;
use regex::Regex;

/// A compiled `StringMatcher`.
#[derive(Debug, Clone)]
pub struct StringMatch {
    kind: StringKind,
    ignore_case: bool,
}

#[derive(Debug, Clone)]
enum StringKind {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
}

impl StringMatch {
    pub fn matches(&self, value: &str) -> bool {
        let fold = |s: &str| {
            if self.ignore_case {
                s.to_lowercase()
            } else {
                s.to_owned()
            }
        };
        match &self.kind {
            StringKind::Regex(re) => full_match(re, value),
            StringKind::Exact(e) => fold(value) == *e,
            StringKind::Prefix(p) => fold(value).starts_with(p.as_str()),
            StringKind::Suffix(s) => fold(value).ends_with(s.as_str()),
            StringKind::Contains(c) => fold(value).contains(c.as_str()),
        }
    }

    fn new(kind: StringKind, ignore_case: bool) -> Self {
        let lower = |s: String| if ignore_case { s.to_lowercase() } else { s };
        let kind = match kind {
            StringKind::Exact(s) => StringKind::Exact(lower(s)),
            StringKind::Prefix(s) => StringKind::Prefix(lower(s)),
            StringKind::Suffix(s) => StringKind::Suffix(lower(s)),
            StringKind::Contains(s) => StringKind::Contains(lower(s)),
            re @ StringKind::Regex(_) => re,
        };
        StringMatch { kind, ignore_case }
    }
}

/// Envoy's regexes match the whole value (RE2 `FullMatch`).
pub fn full_match(re: &Regex, value: &str) -> bool {
    re.find(value)
        .is_some_and(|m| m.start() == 0 && m.end() == value.len())
}

pub fn regex(m: &matcher::RegexMatcher) -> Result<Regex, String> {
    // Anchored, so that `find` agrees with a full match even when alternatives overlap.
    Regex::new(&format!("^(?:{})$", m.regex)).map_err(|e| format!("bad regex {:?}: {e}", m.regex))
}

pub fn string_match(m: &matcher::StringMatcher) -> Result<StringMatch, String> {
    use matcher::string_matcher::MatchPattern;
    let kind = match &m.match_pattern {
        Some(MatchPattern::Exact(s)) => StringKind::Exact(s.clone()),
        Some(MatchPattern::Prefix(s)) => StringKind::Prefix(s.clone()),
        Some(MatchPattern::Suffix(s)) => StringKind::Suffix(s.clone()),
        Some(MatchPattern::Contains(s)) => StringKind::Contains(s.clone()),
        Some(MatchPattern::SafeRegex(re)) => StringKind::Regex(regex(re)?),
        Some(MatchPattern::Custom(c)) => {
            return Err(format!(
                "custom string matcher {:?} is not supported",
                c.name
            ))
        }
        None => return Err("a string matcher needs a pattern".into()),
    };
    Ok(StringMatch::new(kind, m.ignore_case))
}

/// What a header matcher looks at: a header, or one of HTTP/2's pseudo-headers (Istio
/// matches `:authority` and `:method` this way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderKey {
    Header(http::HeaderName),
    Authority,
    Method,
    Path,
    Scheme,
}

impl HeaderKey {
    pub fn parse(name: &str) -> Result<HeaderKey, String> {
        Ok(match name.to_ascii_lowercase().as_str() {
            ":authority" | "host" => HeaderKey::Authority,
            ":method" => HeaderKey::Method,
            ":path" => HeaderKey::Path,
            ":scheme" => HeaderKey::Scheme,
            other => HeaderKey::Header(
                http::HeaderName::from_bytes(other.as_bytes())
                    .map_err(|_| format!("{name:?} is not a header name"))?,
            ),
        })
    }
}

/// A compiled `HeaderMatcher`.
#[derive(Debug, Clone)]
pub struct HeaderMatch {
    pub name: HeaderKey,
    test: HeaderTest,
    invert: bool,
    missing_as_empty: bool,
}

#[derive(Debug, Clone)]
enum HeaderTest {
    Value(StringMatch),
    Present(bool),
    Range { start: i64, end: i64 },
}

impl HeaderMatch {
    /// `value` is the request's header (several values joined with `,`, as Envoy does).
    pub fn matches(&self, value: Option<&str>) -> bool {
        let value = match value {
            None if self.missing_as_empty => Some(""),
            v => v,
        };
        let hit = match (&self.test, value) {
            (HeaderTest::Present(want), v) => v.is_some() == *want,
            // As Envoy: a missing header matches no value matcher, inverted or not (unless
            // `treat_missing_header_as_empty`).
            (_, None) => return false,
            (HeaderTest::Value(m), Some(v)) => m.matches(v),
            (HeaderTest::Range { start, end }, Some(v)) => v
                .trim()
                .parse::<i64>()
                .is_ok_and(|n| *start <= n && n < *end),
        };
        hit != self.invert
    }
}

// The deprecated specifiers (`exact_match`, ...) are still what many control planes send.
#[allow(deprecated)]
pub fn header_match(h: &pb::HeaderMatcher) -> Result<HeaderMatch, String> {
    use pb::header_matcher::HeaderMatchSpecifier as S;
    let name = HeaderKey::parse(&h.name)?;
    let exact = |s: &str, kind: fn(String) -> StringKind| {
        HeaderTest::Value(StringMatch::new(kind(s.to_owned()), false))
    };
    let test = match &h.header_match_specifier {
        Some(S::ExactMatch(s)) => exact(s, StringKind::Exact),
        Some(S::PrefixMatch(s)) => exact(s, StringKind::Prefix),
        Some(S::SuffixMatch(s)) => exact(s, StringKind::Suffix),
        Some(S::ContainsMatch(s)) => exact(s, StringKind::Contains),
        Some(S::SafeRegexMatch(re)) => {
            HeaderTest::Value(StringMatch::new(StringKind::Regex(regex(re)?), false))
        }
        Some(S::StringMatch(m)) => HeaderTest::Value(string_match(m)?),
        Some(S::PresentMatch(p)) => HeaderTest::Present(*p),
        Some(S::RangeMatch(r)) => {
            if r.start >= r.end {
                return Err(format!(
                    "header {:?}: empty range [{}, {})",
                    h.name, r.start, r.end
                ));
            }
            HeaderTest::Range {
                start: r.start,
                end: r.end,
            }
        }
        // No specifier: the header must be present.
        None => HeaderTest::Present(true),
    };
    Ok(HeaderMatch {
        name,
        test,
        invert: h.invert_match,
        missing_as_empty: h.treat_missing_header_as_empty,
    })
}

/// A compiled `QueryParameterMatcher`.
#[derive(Debug, Clone)]
pub struct QueryMatch {
    pub name: String,
    /// `None`: present with any value.
    test: Option<StringMatch>,
    present: bool,
}

impl QueryMatch {
    pub fn matches(&self, value: Option<&str>) -> bool {
        match (&self.test, value) {
            (None, v) => v.is_some() == self.present,
            (Some(m), Some(v)) => m.matches(v),
            (Some(_), None) => false,
        }
    }
}

pub fn query_match(q: &pb::QueryParameterMatcher) -> Result<QueryMatch, String> {
    use pb::query_parameter_matcher::QueryParameterMatchSpecifier as S;
    let (test, present) = match &q.query_parameter_match_specifier {
        Some(S::StringMatch(m)) => (Some(string_match(m)?), true),
        Some(S::PresentMatch(p)) => (None, *p),
        None => (None, true),
    };
    if q.name.is_empty() {
        return Err("a query parameter matcher needs a name".into());
    }
    Ok(QueryMatch {
        name: q.name.clone(),
        test,
        present,
    })
}
