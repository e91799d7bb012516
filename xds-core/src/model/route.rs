//! `RouteConfiguration` as the gateway uses it: virtual hosts chosen by domain (most specific
//! wins), routes in order, each with a validated matcher and what to do on a match.

use std::collections::HashSet;
use std::time::Duration;

use envoy_types::pb::envoy::config::route::v3 as pb;
use regex::Regex;

use super::matchers::{self, HeaderMatch, QueryMatch};
use super::{duration, string_field};
use crate::Error;

const KIND: &str = "RouteConfiguration";

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
}

#[derive(Debug, Clone)]
pub struct VirtualHost {
    pub name: String,
    pub domains: Vec<Domain>,
    pub routes: Vec<Route>,
}

/// A virtual host domain. Host names compare case-insensitively (stored lower-case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    Exact(String),
    /// `*.example.com`: stored as `.example.com`; the wildcard matches at least one character.
    Suffix(String),
    /// `example.*`: stored as `example.`.
    Prefix(String),
    /// `*`.
    Any,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub matcher: RouteMatch,
    pub action: Action,
    /// `filter_metadata["dubbo"]` of the route: which Dubbo service it leads to.
    pub dubbo: Option<DubboRoute>,
}

/// What a route carries in `metadata.filter_metadata["dubbo"]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DubboRoute {
    pub interface: String,
    pub method: Option<String>,
    pub version: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub path: PathMatch,
    pub case_sensitive: bool,
    pub headers: Vec<HeaderMatch>,
    pub query: Vec<QueryMatch>,
    /// Matches this share of requests (numerator, denominator), from `runtime_fraction`'s
    /// default (the gateway has no runtime to override it).
    pub fraction: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(Regex),
    /// `/api` matches `/api`, `/api/...` and `/api?...`, not `/apis`.
    SeparatedPrefix(String),
    /// CONNECT requests (tunnels, as Istio's `connect_terminate` listener uses). Valid, kept,
    /// and never matched by [`crate::router`], which routes ordinary requests.
    Connect,
}

#[derive(Debug, Clone)]
pub enum Action {
    Forward(Forward),
    DirectResponse {
        status: u16,
        body: Option<String>,
    },
    Redirect(Redirect),
    /// A route that ends routing without forwarding (used by servers such as gRPC's).
    NonForwarding,
}

#[derive(Debug, Clone)]
pub struct Forward {
    pub clusters: ClusterChoice,
    /// `None`: Envoy's default of 15 s; `Some(ZERO)`: no timeout.
    pub timeout: Option<Duration>,
    pub retry: Option<RetryPolicy>,
    pub hash_policy: Vec<HashPolicy>,
    pub prefix_rewrite: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ClusterChoice {
    One(String),
    Weighted(Vec<WeightedCluster>),
    /// The cluster named by this request header.
    Header(http::HeaderName),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedCluster {
    pub name: String,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Conditions, as Envoy spells them (`5xx`, `connect-failure`, `reset`, ...).
    pub retry_on: Vec<String>,
    pub num_retries: u32,
    pub per_try_timeout: Option<Duration>,
    pub retriable_status_codes: Vec<u16>,
    pub base_interval: Duration,
    pub max_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashPolicy {
    pub on: HashOn,
    /// Stop at this policy when it produced a hash.
    pub terminal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOn {
    Header(http::HeaderName),
    Cookie(String),
    SourceIp,
    QueryParameter(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub status: u16,
    pub https: bool,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub prefix_rewrite: Option<String>,
    pub strip_query: bool,
}

impl TryFrom<&pb::RouteConfiguration> for RouteConfig {
    type Error = Error;

    fn try_from(rc: &pb::RouteConfiguration) -> Result<Self, Error> {
        let invalid = |reason: String| Error::invalid(KIND, &rc.name, reason);
        let mut seen = HashSet::new();
        let mut virtual_hosts = Vec::with_capacity(rc.virtual_hosts.len());
        for (i, vh) in rc.virtual_hosts.iter().enumerate() {
            let at = format!("virtual_hosts[{i}] ({:?})", vh.name);
            if vh.domains.is_empty() {
                return Err(invalid(format!(
                    "{at}: a virtual host needs at least one domain"
                )));
            }
            let mut domains = Vec::with_capacity(vh.domains.len());
            for d in &vh.domains {
                let lower = d.to_ascii_lowercase();
                if !seen.insert(lower.clone()) {
                    return Err(invalid(format!(
                        "{at}: domain {d:?} is used by two virtual hosts"
                    )));
                }
                domains.push(domain(&lower).map_err(|e| invalid(format!("{at}: {e}")))?);
            }
            let mut routes = Vec::with_capacity(vh.routes.len());
            for (j, r) in vh.routes.iter().enumerate() {
                let route = route(r)
                    .map_err(|e| invalid(format!("{at}.routes[{j}] ({:?}): {e}", r.name)))?;
                routes.push(route);
            }
            virtual_hosts.push(VirtualHost {
                name: vh.name.clone(),
                domains,
                routes,
            });
        }
        Ok(RouteConfig {
            name: rc.name.clone(),
            virtual_hosts,
        })
    }
}

fn domain(d: &str) -> Result<Domain, String> {
    if d == "*" {
        return Ok(Domain::Any);
    }
    let stars = d.matches('*').count();
    if stars == 0 {
        return Ok(Domain::Exact(d.to_owned()));
    }
    if stars == 1 {
        if let Some(rest) = d.strip_prefix('*').filter(|r| !r.is_empty()) {
            return Ok(Domain::Suffix(rest.to_owned()));
        }
        if let Some(rest) = d.strip_suffix('*').filter(|r| !r.is_empty()) {
            return Ok(Domain::Prefix(rest.to_owned()));
        }
    }
    Err(format!(
        "domain {d:?}: a wildcard may only be a whole leading or trailing part"
    ))
}

fn route(r: &pb::Route) -> Result<Route, String> {
    let m = r.r#match.as_ref().ok_or("a route needs a match")?;
    let matcher = route_match(m)?;
    let action = match &r.action {
        Some(pb::route::Action::Route(a)) => Action::Forward(forward(a)?),
        Some(pb::route::Action::DirectResponse(d)) => Action::DirectResponse {
            status: u16::try_from(d.status)
                .ok()
                .filter(|s| (200..600).contains(s))
                .ok_or_else(|| {
                    format!("direct response status {} is not an HTTP status", d.status)
                })?,
            body: d.body.as_ref().and_then(inline_body),
        },
        Some(pb::route::Action::Redirect(rd)) => Action::Redirect(redirect(rd)?),
        Some(pb::route::Action::NonForwardingAction(_)) => Action::NonForwarding,
        Some(pb::route::Action::FilterAction(_)) => {
            return Err("filter_action routes are not supported".into())
        }
        None => return Err("a route needs an action".into()),
    };
    let dubbo = r
        .metadata
        .as_ref()
        .and_then(|m| m.filter_metadata.get("dubbo"))
        .map(|s| -> Result<DubboRoute, String> {
            Ok(DubboRoute {
                interface: string_field(s, "interface")
                    .ok_or("filter_metadata.dubbo needs a string `interface`")?,
                method: string_field(s, "method"),
                version: string_field(s, "version"),
                group: string_field(s, "group"),
            })
        })
        .transpose()?;
    Ok(Route {
        name: r.name.clone(),
        matcher,
        action,
        dubbo,
    })
}

fn inline_body(d: &envoy_types::pb::envoy::config::core::v3::DataSource) -> Option<String> {
    use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
    match &d.specifier {
        Some(Specifier::InlineString(s)) => Some(s.clone()),
        Some(Specifier::InlineBytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn route_match(m: &pb::RouteMatch) -> Result<RouteMatch, String> {
    use pb::route_match::PathSpecifier as P;
    let case_sensitive = m.case_sensitive.as_ref().is_none_or(|b| b.value);
    let fold = |s: &String| {
        if case_sensitive {
            s.clone()
        } else {
            s.to_lowercase()
        }
    };
    let path = match &m.path_specifier {
        Some(P::Prefix(p)) => PathMatch::Prefix(fold(p)),
        Some(P::Path(p)) => PathMatch::Exact(fold(p)),
        Some(P::SafeRegex(re)) => PathMatch::Regex(matchers::regex(re)?),
        Some(P::PathSeparatedPrefix(p)) => {
            if p.ends_with('/') || p.contains(['?', '#']) {
                return Err(format!(
                    "path_separated_prefix {p:?} must not end in '/' or hold '?' or '#'"
                ));
            }
            PathMatch::SeparatedPrefix(fold(p))
        }
        Some(P::ConnectMatcher(_)) => PathMatch::Connect,
        Some(P::PathMatchPolicy(p)) => {
            return Err(format!("path match policy {:?} is not supported", p.name))
        }
        None => return Err("a route match needs a path specifier".into()),
    };
    let headers = m
        .headers
        .iter()
        .map(matchers::header_match)
        .collect::<Result<_, _>>()?;
    let query = m
        .query_parameters
        .iter()
        .map(matchers::query_match)
        .collect::<Result<_, _>>()?;
    let fraction = m
        .runtime_fraction
        .as_ref()
        .and_then(|f| f.default_value.as_ref())
        .map(|p| {
            let denominator = match p.denominator {
                0 => 100,
                1 => 10_000,
                2 => 1_000_000,
                other => return Err(format!("unknown fraction denominator {other}")),
            };
            Ok((p.numerator.min(denominator), denominator))
        })
        .transpose()?;
    Ok(RouteMatch {
        path,
        case_sensitive,
        headers,
        query,
        fraction,
    })
}

fn forward(a: &pb::RouteAction) -> Result<Forward, String> {
    use pb::route_action::ClusterSpecifier as C;
    let clusters = match &a.cluster_specifier {
        Some(C::Cluster(c)) if !c.is_empty() => ClusterChoice::One(c.clone()),
        Some(C::Cluster(_)) => return Err("the cluster name is empty".into()),
        Some(C::ClusterHeader(h)) => ClusterChoice::Header(
            http::HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes())
                .map_err(|_| format!("{h:?} is not a header name"))?,
        ),
        Some(C::WeightedClusters(w)) => {
            let mut clusters = Vec::with_capacity(w.clusters.len());
            for c in &w.clusters {
                if c.name.is_empty() {
                    return Err(
                        "weighted clusters naming clusters by header are not supported".into(),
                    );
                }
                clusters.push(WeightedCluster {
                    name: c.name.clone(),
                    weight: c.weight.as_ref().map_or(0, |w| w.value),
                });
            }
            let total: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
            if total == 0 {
                return Err("weighted clusters with a total weight of 0".into());
            }
            if total > u64::from(u32::MAX) {
                return Err("weighted clusters' total weight exceeds 2^32".into());
            }
            ClusterChoice::Weighted(clusters)
        }
        Some(C::ClusterSpecifierPlugin(_) | C::InlineClusterSpecifierPlugin(_)) => {
            return Err("cluster specifier plugins are not supported".into())
        }
        None => return Err("a route action needs a cluster".into()),
    };
    let retry = a.retry_policy.as_ref().map(retry_policy).transpose()?;
    let hash_policy = a
        .hash_policy
        .iter()
        .filter_map(|h| hash_policy(h).transpose())
        .collect::<Result<_, _>>()?;
    Ok(Forward {
        clusters,
        timeout: a.timeout.as_ref().map(duration),
        retry,
        hash_policy,
        prefix_rewrite: Some(a.prefix_rewrite.clone()).filter(|p| !p.is_empty()),
    })
}

fn retry_policy(p: &pb::RetryPolicy) -> Result<RetryPolicy, String> {
    let backoff = p.retry_back_off.as_ref();
    let base = backoff
        .and_then(|b| b.base_interval.as_ref())
        .map_or(Duration::from_millis(25), duration);
    let max = backoff
        .and_then(|b| b.max_interval.as_ref())
        .map_or_else(|| base.saturating_mul(10), duration);
    if base.is_zero() || max < base {
        return Err("retry back-off needs 0 < base_interval <= max_interval".into());
    }
    Ok(RetryPolicy {
        retry_on: p
            .retry_on
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        num_retries: p.num_retries.as_ref().map_or(1, |n| n.value),
        per_try_timeout: p.per_try_timeout.as_ref().map(duration),
        retriable_status_codes: p
            .retriable_status_codes
            .iter()
            .filter_map(|c| u16::try_from(*c).ok())
            .collect(),
        base_interval: base,
        max_interval: max,
    })
}

/// `None` for hash inputs the gateway does not have (filter state).
fn hash_policy(h: &pb::route_action::HashPolicy) -> Result<Option<HashPolicy>, String> {
    use pb::route_action::hash_policy::PolicySpecifier as S;
    let on = match &h.policy_specifier {
        Some(S::Header(header)) => match super::matchers::HeaderKey::parse(&header.header_name)? {
            super::matchers::HeaderKey::Header(name) => HashOn::Header(name),
            super::matchers::HeaderKey::Authority => HashOn::Header(http::header::HOST),
            // The method, path or scheme: inputs this crate does not hash on.
            _ => return Ok(None),
        },
        Some(S::Cookie(c)) => HashOn::Cookie(c.name.clone()),
        Some(S::ConnectionProperties(p)) if p.source_ip => HashOn::SourceIp,
        Some(S::QueryParameter(q)) => HashOn::QueryParameter(q.name.clone()),
        _ => return Ok(None),
    };
    Ok(Some(HashPolicy {
        on,
        terminal: h.terminal,
    }))
}

fn redirect(r: &pb::RedirectAction) -> Result<Redirect, String> {
    use pb::redirect_action::{PathRewriteSpecifier as P, SchemeRewriteSpecifier as S};
    let status = match r.response_code {
        0 => 301,
        1 => 302,
        2 => 303,
        3 => 307,
        4 => 308,
        other => return Err(format!("unknown redirect response code {other}")),
    };
    let (path, prefix_rewrite) = match &r.path_rewrite_specifier {
        Some(P::PathRedirect(p)) => (Some(p.clone()), None),
        Some(P::PrefixRewrite(p)) => (None, Some(p.clone())),
        Some(_) => return Err("regex path redirects are not supported".into()),
        None => (None, None),
    };
    Ok(Redirect {
        status,
        https: matches!(&r.scheme_rewrite_specifier, Some(S::HttpsRedirect(true)))
            || matches!(&r.scheme_rewrite_specifier, Some(S::SchemeRedirect(s)) if s == "https"),
        host: Some(r.host_redirect.clone()).filter(|h| !h.is_empty()),
        port: u16::try_from(r.port_redirect).ok().filter(|p| *p != 0),
        path,
        prefix_rewrite,
        strip_query: r.strip_query,
    })
}
