//! The gateway's configuration: what the file says (this module's types), how it is read
//! ([`load`]: YAML or TOML, then `GATEWAY_*` environment variables on top), and whether it makes
//! sense ([`validate`](validate::validate): every problem, with its location).
//!
//! Every field is documented in docs/configuration.md; `configs/` holds runnable examples.

pub mod ops;
pub mod validate;

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml, Yaml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use ops::{AccessLog, CircuitBreaker, LimitKey, RateLimit, Tracing};
pub use validate::{validate, Problem};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listeners: Vec<Listener>,
    /// Threads serving the listeners, each with its own event loop (0: one per CPU).
    pub workers: usize,
    /// Whether each worker thread is pinned to a CPU of its own.
    pub pin_workers: PinWorkers,
    pub admin: Admin,
    pub limits: Limits,
    pub json: JsonConfig,
    /// Request headers forwarded to providers as Dubbo attachments (lower-case names).
    pub propagate_headers: Vec<String>,
    pub clusters: Vec<Cluster>,
    pub routes: Vec<Route>,
    /// gRPC calls (content type `application/grpc*`) by path prefix, to gRPC clusters.
    pub grpc_routes: Vec<GrpcRoute>,
    /// Plain HTTP proxying by path prefix, to `http` clusters.
    pub http_routes: Vec<HttpRoute>,
    /// Protobuf descriptor sets (`protoc --include_imports --descriptor_set_out`): with them,
    /// HTTP/JSON calls on a gRPC route's paths are transcoded to gRPC.
    pub descriptor_sets: Vec<String>,
    pub services: Vec<Service>,
    pub types: Vec<TypeDecl>,
    pub metadata: MetadataConfig,
    pub xds: XdsConfig,
    pub access_log: AccessLog,
    pub tracing: Tracing,
    /// The default rate limit of every route (routes may set their own); none by default.
    pub rate_limit: Option<RateLimit>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 0,
            pin_workers: PinWorkers::Auto,
            listeners: vec![Listener {
                name: "http".into(),
                address: "0.0.0.0:8080".into(),
                tls: None,
            }],
            admin: Admin::default(),
            limits: Limits::default(),
            json: JsonConfig::default(),
            propagate_headers: vec![
                "traceparent".into(),
                "tracestate".into(),
                "x-request-id".into(),
            ],
            clusters: Vec::new(),
            routes: Vec::new(),
            grpc_routes: Vec::new(),
            http_routes: Vec::new(),
            descriptor_sets: Vec::new(),
            services: Vec::new(),
            types: Vec::new(),
            metadata: MetadataConfig::default(),
            access_log: AccessLog::default(),
            tracing: Tracing::default(),
            rate_limit: None,
            xds: XdsConfig::default(),
        }
    }
}

/// Routes, clusters and endpoints from an xDS control plane (off unless `server` or
/// `bootstrap` is set). Routes in the file still match first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct XdsConfig {
    /// The control plane, `host:port`.
    pub server: String,
    /// A gRPC xDS bootstrap file, instead of `server` (its node is used; `node_id` and
    /// `node_cluster`, when set, replace only those fields).
    pub bootstrap: Option<String>,
    /// The node id sent to the control plane (`dubbo-gateway` without a bootstrap).
    pub node_id: Option<String>,
    pub node_cluster: Option<String>,
    /// Incremental (delta) xDS instead of state of the world.
    pub delta: bool,
    /// The Listener (by name) whose HTTP connection manager holds the gateway's routes.
    pub listener: String,
    /// A requested resource not sent within this long counts as absent.
    pub resource_timeout_ms: u64,
    /// Multiplexed Dubbo2 connections kept to each endpoint xDS names, by each worker.
    pub connections_per_endpoint: usize,
    /// Whether each worker keeps its own connections to xDS endpoints (see the clusters'
    /// setting of the same name).
    pub per_worker_connections: bool,
}

impl Default for XdsConfig {
    fn default() -> Self {
        XdsConfig {
            server: String::new(),
            bootstrap: None,
            node_id: None,
            node_cluster: None,
            delta: false,
            listener: "gateway".into(),
            resource_timeout_ms: 15_000,
            connections_per_endpoint: 2,
            per_worker_connections: true,
        }
    }
}

impl XdsConfig {
    pub fn enabled(&self) -> bool {
        !self.server.is_empty() || self.bootstrap.is_some()
    }
}

/// The embedded metadata store: where published Dubbo metadata lives and where providers
/// publish it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    pub backend: MetadataBackend,
    /// The redb file (backend `redb`).
    pub path: String,
    pub etcd: EtcdConfig,
    /// Entries not republished for this long are removed.
    pub ttl_secs: u64,
    /// How often expired entries are looked for.
    pub sweep_interval_secs: u64,
    /// Where the gRPC metadata API listens (loopback by default); empty disables it.
    pub grpc_address: String,
    /// When set, Publish calls must carry `authorization: Bearer <token>`.
    pub publish_token: Option<String>,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            backend: MetadataBackend::Redb,
            path: "data/metadata.redb".into(),
            etcd: EtcdConfig::default(),
            ttl_secs: 24 * 60 * 60,
            sweep_interval_secs: 60,
            grpc_address: "127.0.0.1:9902".into(),
            publish_token: None,
        }
    }
}

/// Worker threads pinned to CPUs: `auto` when there is one worker per CPU the gateway may use
/// (and no CPU quota below that), `always`, or `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PinWorkers {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum MetadataBackend {
    /// Embedded and durable: a publish is acknowledged once it is on disk.
    #[default]
    Redb,
    /// Lost on restart; for tests and demos.
    Memory,
    /// Shared by every gateway instance pointing at the same cluster and prefix.
    Etcd,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdConfig {
    /// Members, `host:port` or `http://host:port`.
    pub endpoints: Vec<String>,
    /// Key prefix; instances sharing it share the store.
    pub prefix: String,
    pub timeout_ms: u64,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            endpoints: vec!["127.0.0.1:2379".into()],
            prefix: "/dubbo-gateway/metadata/".into(),
            timeout_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    /// `host:port`; HTTP/1.1 and HTTP/2 (cleartext, prior knowledge) share the port.
    pub address: String,
    /// TLS termination (HTTP/2 or HTTP/1.1 by ALPN); cleartext when absent.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// PEM files of a listener's certificate chain and private key, read again when they change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// Loopback by default: the admin API is not for the internet. Empty disables it.
    pub address: String,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            address: "127.0.0.1:9901".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Larger request bodies are answered 413.
    pub max_body_bytes: usize,
    /// The most header bytes an HTTP/1 request may carry (HTTP/2: the header list size).
    pub max_header_bytes: usize,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub drain_timeout_ms: u64,
    /// How long a client connection may stay open with no request in progress: HTTP/1
    /// between requests, HTTP/2 with no stream open (then closed with GOAWAY).
    pub idle_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_header_bytes: 16 << 10,
            drain_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct JsonConfig {
    /// Write Java `long`s as JSON strings (JavaScript loses precision past 2^53).
    pub longs_as_strings: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LbPolicy {
    #[default]
    RoundRobin,
    Random,
    LeastRequest,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub name: String,
    /// Provider addresses: `host:port`, or `{address, application, revision}`.
    pub endpoints: Vec<EndpointConfig>,
    /// The Dubbo application of the endpoints that do not name their own.
    #[serde(default)]
    pub application: Option<String>,
    /// The metadata revision of the endpoints that do not name their own.
    #[serde(default)]
    pub revision: Option<String>,
    /// `dubbo` (Dubbo2) or `grpc` (gRPC or Dubbo3 Triple; `tri` is accepted too).
    #[serde(default)]
    pub protocol: ClusterProtocol,
    #[serde(default)]
    pub lb_policy: LbPolicy,
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Default per-call timeout; a route may set its own.
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "defaults::connections")]
    pub connections_per_endpoint: usize,
    /// Whether each worker keeps its own connections to each endpoint (calls never cross
    /// threads), or all workers share one set (fewer connections, for providers that cannot
    /// take many).
    #[serde(default = "defaults::yes")]
    pub per_worker_connections: bool,
    /// Heartbeat period on idle connections; 0 disables heartbeats.
    #[serde(default = "defaults::heartbeat_ms")]
    pub heartbeat_ms: u64,
    #[serde(default = "defaults::max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// How HTTP/JSON routes call a `grpc`/`tri` cluster's methods that no descriptor set
    /// describes: `hessian2` (Triple's wrapper messages, types from metadata) or `json` (the
    /// body passed through for providers using a custom JSON serialization).
    #[serde(default)]
    pub serialization: Serialization,
    #[serde(default)]
    pub circuit_breaker: CircuitBreaker,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Serialization {
    #[default]
    Hessian2,
    Json,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClusterProtocol {
    #[default]
    Dubbo,
    #[serde(alias = "tri", alias = "triple")]
    Grpc,
    /// Plain HTTP/1.1 upstreams, proxied as they are (`http_routes`).
    Http,
}

/// A gRPC route: calls whose path starts with `prefix` (e.g. `/greeter.Greeter/`) go to
/// `cluster`, proxied as they are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GrpcRoute {
    pub prefix: String,
    pub cluster: String,
    /// Deadline of HTTP/JSON calls transcoded to gRPC (gRPC callers bring their own).
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
    /// This route's rate limit instead of the top-level default.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// Plain HTTP proxying: requests whose path starts with `prefix` go to `cluster` (protocol
/// `http`) as they are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpRoute {
    pub prefix: String,
    pub cluster: String,
    /// Time allowed for the upstream's response head.
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// A provider endpoint: an address alone, or with the application instance it is (the key to
/// its published metadata).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum EndpointConfig {
    Address(String),
    Detailed(EndpointDetail),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EndpointDetail {
    pub address: String,
    #[serde(default)]
    pub application: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
}

impl EndpointConfig {
    pub fn address(&self) -> &str {
        match self {
            EndpointConfig::Address(a) => a,
            EndpointConfig::Detailed(d) => &d.address,
        }
    }

    /// Its application and revision, falling back to the cluster's.
    pub fn identity<'c>(&'c self, cluster: &'c Cluster) -> (Option<&'c str>, Option<&'c str>) {
        let own = match self {
            EndpointConfig::Address(_) => (None, None),
            EndpointConfig::Detailed(d) => (d.application.as_deref(), d.revision.as_deref()),
        };
        (
            own.0.or(cluster.application.as_deref()),
            own.1.or(cluster.revision.as_deref()),
        )
    }
}

mod defaults {
    pub fn connect_timeout_ms() -> u64 {
        3000
    }
    pub fn timeout_ms() -> u64 {
        5000
    }
    pub fn connections() -> usize {
        2
    }
    pub fn yes() -> bool {
        true
    }
    pub fn heartbeat_ms() -> u64 {
        60_000
    }
    pub fn max_frame_bytes() -> usize {
        dubbo_codec::dubbo2::DEFAULT_MAX_FRAME
    }
}

/// A route. Generic routes (no `path`) serve `POST {prefix}/{interface}/{method}`, where the
/// prefix is `/{application}` unless given; declared routes map one HTTP method and path
/// template onto one Dubbo method.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    pub cluster: String,
    /// Generic: the application whose services this route exposes.
    pub application: Option<String>,
    /// Generic: the path prefix before `/{interface}/{method}` (default `/{application}`).
    pub prefix: Option<String>,
    /// Declared: HTTP method (default GET).
    pub method: Option<String>,
    /// Declared: path template, e.g. `/users/{id}`.
    pub path: Option<String>,
    /// Declared: the Dubbo interface and method called.
    pub interface: Option<String>,
    pub call: Option<String>,
    /// Declared: where each argument comes from, in order.
    pub params: Vec<DeclaredParam>,
    /// Service version and group sent to the provider (request headers override).
    pub version: Option<String>,
    pub group: Option<String>,
    /// Per-call timeout; the cluster's when absent.
    pub timeout_ms: Option<u64>,
    /// This route's rate limit, instead of the top-level default (`requests_per_second: 0`
    /// exempts it).
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeclaredParam {
    /// `path.NAME`, `query.NAME`, `header.NAME`, `body` (the whole body) or `body.FIELD`.
    pub from: String,
    /// The Java type, e.g. `long`, `java.lang.String`, `org.demo.User`.
    #[serde(rename = "type")]
    pub ty: String,
}

/// Method signatures of one interface, for typed conversion and named arguments.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub interface: String,
    #[serde(default)]
    pub methods: Vec<Method>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Method {
    pub name: String,
    #[serde(default)]
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Param {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub ty: String,
}

/// A user class: a POJO with `properties`, or an enum with `constants`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TypeDecl {
    pub class: String,
    #[serde(default)]
    pub properties: Vec<Param>,
    #[serde(default)]
    pub constants: Vec<String>,
}

/// A configuration that could not be read: a problem per line, each with its location.
#[derive(Debug)]
pub struct LoadError(pub Vec<Problem>);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.0 {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Reads `file` (YAML, or TOML for `.toml`), applies `GATEWAY_*` variables
/// (`GATEWAY_ADMIN__ADDRESS=…`, `__` separating levels), and validates the result.
pub fn load(file: &Path) -> Result<Config, LoadError> {
    let location = file.display().to_string();
    if !file.is_file() {
        return Err(LoadError(vec![Problem::new(&location, "no such file")]));
    }
    let figment = Figment::from(Serialized::defaults(Config::default()));
    let figment = match file.extension().and_then(|e| e.to_str()) {
        Some("toml") => figment.merge(Toml::file(file)),
        _ => figment.merge(Yaml::file(file)),
    };
    from_figment(
        figment.merge(Env::prefixed("GATEWAY_").split("__")),
        &location,
    )
}

/// Extracts and validates a configuration from any figment (used by `load` and the demo).
pub fn from_figment(figment: Figment, location: &str) -> Result<Config, LoadError> {
    let config: Config = figment.extract().map_err(|errors| {
        LoadError(
            errors
                .into_iter()
                .map(|e| {
                    let at = if e.path.is_empty() {
                        location.to_owned()
                    } else {
                        format!("{location}: {}", e.path.join("."))
                    };
                    Problem::new(&at, &e.kind.to_string())
                })
                .collect(),
        )
    })?;
    let problems = validate(&config);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(LoadError(
            problems.into_iter().map(|p| p.within(location)).collect(),
        ))
    }
}
