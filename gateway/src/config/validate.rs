//! Semantic checks on a parsed configuration. Every problem is reported, not just the first,
//! each with the location of the value at fault (`routes[2].cluster`), so one `validate` run
//! shows everything to fix.

use std::collections::HashSet;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

use http_bridge::types::TypeRef;

use super::{Config, Route};

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: String,
    pub message: String,
}

impl Problem {
    pub fn new(at: &str, message: &str) -> Problem {
        Problem {
            at: at.to_owned(),
            message: message.to_owned(),
        }
    }

    /// Prefixes the location with the file it is in.
    pub fn within(self, file: &str) -> Problem {
        Problem {
            at: format!("{file}: {}", self.at),
            message: self.message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Resolves `host:port` (names included, e.g. `localhost:20880`).
pub fn resolve(address: &str) -> Result<SocketAddr, String> {
    match address.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{address:?} resolves to no address")),
        Err(e) => Err(format!("{address:?} is not a host:port address ({e})")),
    }
}

pub fn validate(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut bad = |at: String, message: String| problems.push(Problem { at, message });

    if config.workers > 1024 {
        bad(
            "workers".into(),
            "at most 1024 (0 means one per CPU)".into(),
        );
    }
    // Two listeners on one address: say so here, not as a bind error at start.
    for (i, l) in config.listeners.iter().enumerate() {
        if config.listeners[..i].iter().any(|o| o.address == l.address) {
            bad(
                format!("listeners[{i}].address"),
                format!("{} is already another listener's address", l.address),
            );
        }
    }
    if config.listeners.is_empty() {
        bad("listeners".into(), "at least one listener is needed".into());
    }
    for (i, l) in config.listeners.iter().enumerate() {
        if let Some(tls) = &l.tls {
            if let Err(e) = crate::tls::server_config(tls) {
                bad(format!("listeners[{i}].tls"), e);
            }
        }
        if let Err(e) = resolve(&l.address) {
            bad(format!("listeners[{i}].address"), e);
        }
    }
    if !config.admin.address.is_empty() {
        if let Err(e) = resolve(&config.admin.address) {
            bad("admin.address".into(), e);
        }
    }
    if config.limits.max_body_bytes == 0 {
        bad(
            "limits.max_body_bytes".into(),
            "must be greater than 0".into(),
        );
    }
    if config.limits.max_header_bytes < 1024 {
        bad(
            "limits.max_header_bytes".into(),
            "must be at least 1024".into(),
        );
    }
    // Shorter would close connections before clients get their first request out.
    if config.limits.idle_timeout_ms < 100 {
        bad(
            "limits.idle_timeout_ms".into(),
            "must be at least 100".into(),
        );
    }

    let mut clusters = HashSet::new();
    for (i, c) in config.clusters.iter().enumerate() {
        if !clusters.insert(c.name.as_str()) {
            bad(
                format!("clusters[{i}].name"),
                format!("cluster {:?} is defined twice", c.name),
            );
        }
        if c.endpoints.is_empty() {
            bad(
                format!("clusters[{i}].endpoints"),
                "a cluster needs at least one endpoint".into(),
            );
        }
        for (j, e) in c.endpoints.iter().enumerate() {
            let at = match e {
                super::EndpointConfig::Address(_) => format!("clusters[{i}].endpoints[{j}]"),
                super::EndpointConfig::Detailed(_) => {
                    format!("clusters[{i}].endpoints[{j}].address")
                }
            };
            if let Err(e) = resolve(e.address()) {
                bad(at, e);
            }
            let (application, revision) = e.identity(c);
            if let (None, Some(_)) = (application, revision) {
                bad(
                    format!("clusters[{i}].endpoints[{j}]"),
                    "a revision needs an application to belong to".into(),
                );
            }
            // The same rules as the metadata store's keys: anything else could never match.
            for (what, value) in [("application", application), ("revision", revision)] {
                if let Some(Err(e)) = value.map(|v| metadata_store::check_key_part(what, v, true)) {
                    bad(format!("clusters[{i}].endpoints[{j}]"), e.to_string());
                }
            }
        }
        // Automatic routes send `/{application}/...` to the cluster: all of it must be that
        // application.
        let applications: HashSet<&str> =
            c.endpoints.iter().filter_map(|e| e.identity(c).0).collect();
        if applications.len() > 1 {
            let mut names: Vec<&str> = applications.into_iter().collect();
            names.sort_unstable();
            bad(
                format!("clusters[{i}]"),
                format!("its endpoints belong to several applications ({}); give each application its own cluster", names.join(", ")),
            );
        }
        if c.timeout_ms == 0 || c.connect_timeout_ms == 0 {
            bad(
                format!("clusters[{i}]"),
                "timeouts must be greater than 0".into(),
            );
        }
        if c.connections_per_endpoint == 0 || c.connections_per_endpoint > 64 {
            bad(
                format!("clusters[{i}].connections_per_endpoint"),
                "must be between 1 and 64".into(),
            );
        }
        if c.max_frame_bytes < 1024 {
            bad(
                format!("clusters[{i}].max_frame_bytes"),
                "must be at least 1024".into(),
            );
        }
    }

    metadata(&config.metadata, &mut bad);
    xds(&config.xds, &mut bad);

    let mut limit = |at: String, l: &super::RateLimit| {
        if let Err(e) = crate::rate_limit::Limiter::new(l) {
            bad(at, e);
        }
    };
    if let Some(l) = &config.rate_limit {
        limit("rate_limit".into(), l);
    }
    for (i, r) in config.routes.iter().enumerate() {
        if let Some(l) = &r.rate_limit {
            limit(format!("routes[{i}].rate_limit"), l);
        }
    }
    for (i, r) in config.grpc_routes.iter().enumerate() {
        if let Some(l) = &r.rate_limit {
            limit(format!("grpc_routes[{i}].rate_limit"), l);
        }
    }
    if !(0.0..=1.0).contains(&config.tracing.sampling_ratio) {
        bad(
            "tracing.sampling_ratio".into(),
            "must be between 0.0 and 1.0".into(),
        );
    }
    if config.tracing.enabled && !config.tracing.otlp_endpoint.starts_with("http") {
        bad(
            "tracing.otlp_endpoint".into(),
            "must be an http:// or https:// URL".into(),
        );
    }
    for (i, c) in config.clusters.iter().enumerate() {
        if c.serialization != super::Serialization::Hessian2
            && c.protocol == super::ClusterProtocol::Dubbo
        {
            bad(
                format!("clusters[{i}].serialization"),
                "Dubbo2 clusters speak hessian2; `serialization` applies to grpc/tri clusters"
                    .into(),
            );
        }
    }
    let protocol = |name: &str| {
        config
            .clusters
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.protocol)
    };
    for (i, r) in config.routes.iter().enumerate() {
        route(&format!("routes[{i}]"), r, &clusters, &mut bad);
        if protocol(&r.cluster) == Some(super::ClusterProtocol::Http) {
            bad(
                format!("routes[{i}].cluster"),
                format!(
                    "{:?} is an http cluster: proxy to it with http_routes",
                    r.cluster
                ),
            );
        }
    }
    for (i, r) in config.http_routes.iter().enumerate() {
        if !r.prefix.starts_with('/') {
            bad(
                format!("http_routes[{i}].prefix"),
                "must start with '/'".into(),
            );
        }
        match protocol(&r.cluster) {
            None => bad(
                format!("http_routes[{i}].cluster"),
                format!("no cluster is named {:?}", r.cluster),
            ),
            Some(super::ClusterProtocol::Http) => {}
            Some(_) => bad(
                format!("http_routes[{i}].cluster"),
                format!(
                    "{:?} is not an http cluster; give it `protocol: http`",
                    r.cluster
                ),
            ),
        }
        if let Some(l) = &r.rate_limit {
            if let Err(e) = crate::rate_limit::Limiter::new(l) {
                bad(format!("http_routes[{i}].rate_limit"), e);
            }
        }
    }
    for (i, file) in config.descriptor_sets.iter().enumerate() {
        if let Err(e) = crate::transcode::load(std::slice::from_ref(file)) {
            bad(format!("descriptor_sets[{i}]"), e);
        }
    }
    for (i, r) in config.grpc_routes.iter().enumerate() {
        if !r.prefix.starts_with('/') {
            bad(
                format!("grpc_routes[{i}].prefix"),
                "must start with '/' (e.g. /greeter.Greeter/)".into(),
            );
        }
        match protocol(&r.cluster) {
            None => bad(
                format!("grpc_routes[{i}].cluster"),
                format!("no cluster is named {:?}", r.cluster),
            ),
            Some(super::ClusterProtocol::Dubbo | super::ClusterProtocol::Http) => bad(
                format!("grpc_routes[{i}].cluster"),
                format!(
                    "{:?} is not a gRPC cluster; give it `protocol: grpc`",
                    r.cluster
                ),
            ),
            Some(super::ClusterProtocol::Grpc) => {}
        }
    }

    let type_error = |ty: &str| TypeRef::parse(ty).err().map(|e| e.to_string());
    for (i, s) in config.services.iter().enumerate() {
        for (j, m) in s.methods.iter().enumerate() {
            for (k, p) in m.params.iter().enumerate() {
                if let Some(e) = type_error(&p.ty) {
                    bad(format!("services[{i}].methods[{j}].params[{k}].type"), e);
                }
            }
        }
    }
    for (i, t) in config.types.iter().enumerate() {
        for (k, p) in t.properties.iter().enumerate() {
            if let Some(e) = type_error(&p.ty) {
                bad(format!("types[{i}].properties[{k}].type"), e);
            }
        }
        if !t.properties.is_empty() && !t.constants.is_empty() {
            bad(
                format!("types[{i}]"),
                "a type has properties (a POJO) or constants (an enum), not both".into(),
            );
        }
        if t.properties.iter().any(|p| p.name.is_none()) {
            bad(
                format!("types[{i}].properties"),
                "every property needs a name".into(),
            );
        }
    }
    problems
}

fn metadata(m: &super::MetadataConfig, bad: &mut impl FnMut(String, String)) {
    use super::MetadataBackend;
    if m.backend == MetadataBackend::Redb && m.path.trim().is_empty() {
        bad(
            "metadata.path".into(),
            "the redb backend needs a file path".into(),
        );
    }
    if m.backend == MetadataBackend::Etcd {
        let p = &m.etcd.prefix;
        if !p.starts_with('/') || !p.ends_with('/') || p.len() < 2 {
            bad(
                "metadata.etcd.prefix".into(),
                "must start and end with '/' and name something (e.g. /prod/dubbo-metadata/)"
                    .into(),
            );
        }
        if m.etcd.endpoints.is_empty() {
            bad(
                "metadata.etcd.endpoints".into(),
                "the etcd backend needs at least one endpoint".into(),
            );
        }
        if m.etcd.timeout_ms == 0 {
            bad(
                "metadata.etcd.timeout_ms".into(),
                "must be greater than 0".into(),
            );
        }
    }
    if m.ttl_secs == 0 {
        bad("metadata.ttl_secs".into(), "must be greater than 0".into());
    }
    if m.sweep_interval_secs == 0 {
        bad(
            "metadata.sweep_interval_secs".into(),
            "must be greater than 0".into(),
        );
    }
    if !m.grpc_address.is_empty() {
        if let Err(e) = resolve(&m.grpc_address) {
            bad("metadata.grpc_address".into(), e);
        }
    }
    if m.publish_token.as_deref() == Some("") {
        bad(
            "metadata.publish_token".into(),
            "an empty token would accept anyone; leave it out instead".into(),
        );
    }
}

fn xds(x: &super::XdsConfig, bad: &mut impl FnMut(String, String)) {
    if !x.server.is_empty() && x.bootstrap.is_some() {
        bad(
            "xds".into(),
            "give `server` or `bootstrap`, not both".into(),
        );
    }
    if !x.server.is_empty() && !x.server.contains(':') {
        bad(
            "xds.server".into(),
            format!("{:?} is not host:port", x.server),
        );
    }
    if let Some(path) = &x.bootstrap {
        if let Err(e) = xds_core::bootstrap::Bootstrap::from_file(std::path::Path::new(path)) {
            bad("xds.bootstrap".into(), e.to_string());
        }
    }
    if x.enabled() {
        if x.listener.is_empty() {
            bad(
                "xds.listener".into(),
                "name the Listener that holds the gateway's routes".into(),
            );
        }
        if x.resource_timeout_ms == 0 {
            bad(
                "xds.resource_timeout_ms".into(),
                "must be greater than 0".into(),
            );
        }
        if x.connections_per_endpoint == 0 || x.connections_per_endpoint > 64 {
            bad(
                "xds.connections_per_endpoint".into(),
                "must be between 1 and 64".into(),
            );
        }
    }
}

fn route(at: &str, r: &Route, clusters: &HashSet<&str>, bad: &mut impl FnMut(String, String)) {
    if r.cluster.is_empty() {
        bad(format!("{at}.cluster"), "a route needs a cluster".into());
    } else if !clusters.contains(r.cluster.as_str()) {
        bad(
            format!("{at}.cluster"),
            format!("no cluster is named {:?}", r.cluster),
        );
    }
    if r.timeout_ms == Some(0) {
        bad(format!("{at}.timeout_ms"), "must be greater than 0".into());
    }
    let Some(path) = &r.path else {
        // Generic route.
        if r.application.is_none() && r.prefix.is_none() {
            bad(at.to_owned(), "a generic route needs an application or a prefix (or a path, for a declared route)".into());
        }
        if let Some(p) = &r.prefix {
            if !p.starts_with('/') {
                bad(format!("{at}.prefix"), "must start with '/'".into());
            }
        }
        for field in [
            ("call", r.call.is_some()),
            ("params", !r.params.is_empty()),
            ("method", r.method.is_some()),
        ] {
            if field.1 {
                bad(
                    format!("{at}.{}", field.0),
                    "only declared routes (with a path) take this".into(),
                );
            }
        }
        return;
    };
    if !path.starts_with('/') {
        bad(format!("{at}.path"), "must start with '/'".into());
    }
    let vars: Vec<&str> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|v| v.strip_suffix('}')))
        .collect();
    if r.interface.is_none() {
        bad(
            format!("{at}.interface"),
            "a declared route needs the interface it calls".into(),
        );
    }
    if r.call.is_none() {
        bad(
            format!("{at}.call"),
            "a declared route needs the method it calls".into(),
        );
    }
    if let Some(m) = &r.method {
        if http::Method::from_bytes(m.to_ascii_uppercase().as_bytes()).is_err() {
            bad(
                format!("{at}.method"),
                format!("{m:?} is not an HTTP method"),
            );
        }
    }
    for (k, p) in r.params.iter().enumerate() {
        let pat = format!("{at}.params[{k}]");
        if let Err(e) = TypeRef::parse(&p.ty) {
            bad(format!("{pat}.type"), e.to_string());
        }
        match p.from.split_once('.') {
            Some(("path", var)) if !vars.contains(&var) => bad(
                format!("{pat}.from"),
                format!("the path template has no {{{var}}}"),
            ),
            Some(("path" | "query" | "header" | "body", name)) if !name.is_empty() => {}
            None if p.from == "body" => {}
            _ => bad(
                format!("{pat}.from"),
                format!(
                    "{:?} is not path.NAME, query.NAME, header.NAME, body or body.FIELD",
                    p.from
                ),
            ),
        }
    }
}
