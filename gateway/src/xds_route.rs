//! Routing a request by the xDS route table: virtual host and route, the cluster (weighted or
//! by header), and which Dubbo method it calls — from the route's `filter_metadata["dubbo"]`
//! (`interface`, optionally `method`, `version`, `group`), or else from the path's last
//! segments (`.../{interface}/{method}`).

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use xds_core::model::{Action, HashOn, HashPolicy, RetryPolicy};
use xds_core::router::Request;

use crate::errors::GatewayError;
use crate::runtime::decode_component;
use crate::xds::{ClusterView, XdsRouting};

/// Envoy's route timeout when the route gives none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// What "no timeout" (`timeout: 0s`) means here: long, not forever.
const NO_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct Routed {
    pub interface: String,
    pub method: String,
    pub version: Option<String>,
    pub group: Option<String>,
    pub timeout: Duration,
    pub cluster: Arc<ClusterView>,
    pub retry: Option<RetryPolicy>,
    /// The request's hash by the route's hash policy (ring hash and Maglev clusters).
    pub hash: Option<u64>,
    /// How metrics and logs name the route: its name, or `xds:{cluster}` for unnamed ones.
    pub label: Arc<str>,
}

pub fn route(xds: &XdsRouting, parts: &Parts) -> Result<Routed, GatewayError> {
    let no_route = || GatewayError::NoRoute {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
    };
    let view = xds.view();
    let routes = view.routes.as_ref().ok_or_else(no_route)?;
    let authority = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let random = fastrand::u64(..);
    let request = Request {
        method: parts.method.as_str(),
        authority,
        path,
        headers: &parts.headers,
        random,
    };
    let decision = routes.route(&request).ok_or_else(no_route)?;
    let forward = match &decision.route.action {
        Action::Forward(f) => f,
        Action::DirectResponse { status, .. } => {
            return Err(GatewayError::NotFound(format!(
                "route {:?} answers {status} directly, which this gateway does not do",
                decision.route.name
            )))
        }
        Action::Redirect(_) | Action::NonForwarding => {
            return Err(GatewayError::NotFound(format!(
                "route {:?} does not lead to a Dubbo service",
                decision.route.name
            )))
        }
    };
    let cluster_name = forward
        .pick_cluster(&parts.headers, random)
        .ok_or_else(|| {
            GatewayError::BadRequest(
                "the route picks its cluster by a header this request lacks".into(),
            )
        })?;
    let cluster = view.clusters.get(cluster_name).cloned().ok_or_else(|| {
        GatewayError::Unavailable(format!("cluster {cluster_name:?} has no endpoints (yet)"))
    })?;
    let segments: Vec<&str> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let last = |n: usize| {
        segments
            .len()
            .checked_sub(n)
            .and_then(|i| segments.get(i))
            .map(|s| decode_component(s, false))
    };
    let dubbo = decision.route.dubbo.as_ref();
    let (interface, method) = match dubbo {
        Some(d) => (
            d.interface.clone(),
            d.method
                .clone()
                .or_else(|| last(1))
                .ok_or_else(|| GatewayError::NotFound("the path names no method".into()))?,
        ),
        None => match (last(2), last(1)) {
            (Some(i), Some(m)) => (i, m),
            _ => return Err(GatewayError::NotFound(
                "the route gives no Dubbo interface and the path is not .../{interface}/{method}"
                    .into(),
            )),
        },
    };
    let timeout = match forward.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) if t.is_zero() => NO_TIMEOUT,
        Some(t) => t,
    };
    let hash = request_hash(&forward.hash_policy, parts);
    let label: Arc<str> = if decision.route.name.is_empty() {
        Arc::from(format!("xds:{cluster_name}"))
    } else {
        Arc::from(decision.route.name.as_str())
    };
    Ok(Routed {
        hash,
        label,
        interface,
        method,
        version: dubbo.and_then(|d| d.version.clone()),
        group: dubbo.and_then(|d| d.group.clone()),
        timeout,
        cluster,
        retry: forward.retry.clone(),
    })
}

/// Envoy's hash policy: each policy that yields a value is folded in; a terminal one that
/// yields stops there. Source-IP policies yield nothing here (the request's peer is not known
/// at this layer).
fn request_hash(policies: &[HashPolicy], parts: &Parts) -> Option<u64> {
    let mut hash: Option<u64> = None;
    for p in policies {
        let value: Option<String> = match &p.on {
            HashOn::Header(name) => parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            HashOn::QueryParameter(name) => parts.uri.query().and_then(|q| {
                q.split('&').find_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (k == name).then(|| decode_component(v, true))
                })
            }),
            HashOn::Cookie(name) => parts
                .headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .find_map(|c| {
                    let (k, v) = c.trim().split_once('=')?;
                    (k == name).then(|| v.to_owned())
                }),
            HashOn::SourceIp => None,
        };
        if let Some(v) = value {
            let h = v.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
            hash = Some(hash.map_or(h, |prev| prev.rotate_left(1) ^ h));
            if p.terminal {
                break;
            }
        }
    }
    hash
}
