//! The runtime as operators see it: circuit breakers, open connections, endpoint health, and
//! the limits a reload hands over.

use std::sync::Arc;

use crate::breaker::Breaker;
use crate::rate_limit::Limiter;

use super::{RouteLimit, Runtime, UpstreamKind};

impl Runtime {
    /// Gives every configured cluster's circuit breaker (some shared with the runtime this one
    /// replaces) the limits of this configuration.
    pub fn apply_breaker_limits(&self) {
        for c in &self.config.clusters {
            if let Some(upstream) = self.clusters.get(&c.name) {
                upstream.breaker.set_limits(c.circuit_breaker);
            }
        }
    }

    /// The rate limiter a route's requests pass, if any.
    pub fn limiter<'a>(&'a self, limit: &'a RouteLimit) -> Option<&'a Limiter> {
        match limit {
            RouteLimit::Default => self.default_limit.as_deref(),
            RouteLimit::Own(l) => Some(l),
            RouteLimit::Exempt => None,
        }
    }

    /// Every cluster's circuit breaker, configured and from xDS.
    pub fn breakers(&self) -> Vec<(String, Arc<Breaker>)> {
        let mut out: Vec<(String, Arc<Breaker>)> = self
            .clusters
            .iter()
            .map(|(name, c)| (name.clone(), Arc::clone(&c.breaker)))
            .collect();
        if let Some(xds) = &self.xds {
            for (name, view) in &xds.view().clusters {
                out.push((name.clone(), Arc::clone(&view.breaker)));
            }
        }
        out
    }

    /// Open Dubbo2 connections per cluster (configured and from xDS). Triple/gRPC connections
    /// live in the HTTP/2 clients, which do not count them.
    pub fn open_connections(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = self
            .clusters
            .iter()
            .filter_map(|(name, c)| match &c.kind {
                UpstreamKind::Dubbo2(cluster) => Some((
                    name.clone(),
                    cluster
                        .endpoints()
                        .iter()
                        .map(|e| e.pool.open_connections())
                        .sum(),
                )),
                UpstreamKind::Triple { .. } | UpstreamKind::Http(_) => None,
            })
            .collect();
        if let Some(xds) = &self.xds {
            for (name, view) in &xds.view().clusters {
                if !view.speaks_triple() {
                    let open = view
                        .endpoints
                        .iter()
                        .flatten()
                        .map(|e| e.pool.open_connections());
                    out.push((name.clone(), open.sum()));
                }
            }
        }
        out
    }

    /// `(cluster, endpoint, usable)` for every endpoint the gateway knows.
    pub fn endpoint_health(&self) -> Vec<(String, String, bool)> {
        let mut out = Vec::new();
        for (name, cluster) in &self.clusters {
            match &cluster.kind {
                UpstreamKind::Dubbo2(c) => {
                    for e in c.endpoints() {
                        out.push((name.clone(), e.pool.addr().to_string(), !e.pool.is_down()));
                    }
                }
                UpstreamKind::Triple { cluster, .. } => {
                    for e in cluster.endpoints() {
                        out.push((name.clone(), e.addr.to_string(), true));
                    }
                }
                UpstreamKind::Http(cluster) => {
                    for e in cluster.endpoints() {
                        out.push((name.clone(), e.to_string(), true));
                    }
                }
            }
        }
        if let Some(xds) = &self.xds {
            for (name, view) in &xds.view().clusters {
                for (i, e) in view.endpoints.iter().enumerate() {
                    if let Some(e) = e {
                        let usable = !xds_core::lb::EndpointState::ejected(view.as_ref(), i);
                        out.push((name.clone(), e.pool.addr().to_string(), usable));
                    }
                }
            }
        }
        out
    }
}
