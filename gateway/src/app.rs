//! Starting and stopping a gateway: bind every listener and the admin API, serve, and on
//! shutdown let requests in flight finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::validate::resolve;
use metadata_store::grpc::MetadataApi;
use metadata_store::store::{EtcdStore, MemoryStore, RedbStore, SharedStore};
use metadata_store::Registry;

use crate::admin;
use crate::config::{Config, Limits, MetadataBackend, MetadataConfig};
use crate::metadata::Typing;
use crate::runtime::{Runtime, Shared};
use crate::server::{serve, Handler};
use crate::telemetry::access_log::AccessLogger;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::trace::Tracing;

/// A gateway that is serving.
#[derive(Debug)]
pub struct Running {
    /// Bound addresses of the listeners, in configuration order (port 0 resolved).
    pub listeners: Vec<SocketAddr>,
    pub admin: Option<SocketAddr>,
    /// The gRPC metadata API, when enabled.
    pub metadata_grpc: Option<SocketAddr>,
    /// The metadata store the gateway types calls with.
    pub metadata: Arc<Registry>,
    /// The configuration in force, compiled; swapped whole by [`Running::reload`].
    current: Arc<ArcSwap<Runtime>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// The configuration in force.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.current.load_full()
    }

    /// Swaps in a new (validated) configuration atomically: requests already routed finish on
    /// the old one, every later request sees the new one, and connection pools and circuit
    /// breakers that still fit are kept. Settings bound at start (listeners, admin, header
    /// limits, metadata, xDS) cannot change this way: such a configuration is refused and the
    /// running one stays.
    pub fn reload(&self, config: Config) -> Result<(), String> {
        let old = self.current.load_full();
        let result = reload(&old, config);
        let outcome = if result.is_ok() {
            "applied"
        } else {
            "rejected"
        };
        old.metrics.config_reloads(outcome);
        let runtime = result?;
        runtime.apply_breaker_limits();
        self.current.store(Arc::new(runtime));
        Ok(())
    }

    /// Stops accepting, lets requests in flight finish (up to the drain timeout), and returns.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            let _ = task.await;
        }
        // Spans still buffered go out before the process ends.
        if let Some(tracing) = self.current.load().tracing.clone() {
            let _ = tokio::task::spawn_blocking(move || tracing.shutdown()).await;
        }
    }
}

/// Starts serving `config` (already validated).
pub async fn start(config: Config) -> Result<Running, String> {
    let registry = open_metadata(&config.metadata).await?;
    let typing = Arc::new(Typing::new(registry.clone()));
    let xds = if config.xds.enabled() {
        Some(Arc::new(crate::xds::XdsRouting::start(
            &config.xds,
            // Worker ids run 1..=count; 0 is every other thread.
            if config.xds.per_worker_connections {
                crate::workers::count(&config) + 1
            } else {
                1
            },
        )?))
    } else {
        None
    };
    let metrics = Arc::new(Metrics::new());
    let access_log = AccessLogger::start(&config.access_log, metrics.access_log_dropped.clone())?;
    let tracing = Tracing::start(&config.tracing)?.map(Arc::new);
    let shared = Shared {
        typing: Some(typing),
        xds,
        metrics,
        access_log,
        tracing,
    };
    let runtime = Arc::new(Runtime::build(config, shared, None)?);
    let current = Arc::new(ArcSwap::new(Arc::clone(&runtime)));
    let limits = runtime.config.limits.clone();
    let (stop, _) = watch::channel(false);
    let mut tasks = Vec::new();
    let stopped = |stop: &watch::Sender<bool>| {
        let mut stopped = stop.subscribe();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let sweep = Duration::from_secs(runtime.config.metadata.sweep_interval_secs);
    tasks.push(tokio::spawn(registry.clone().run(sweep, stopped(&stop))));
    let mut metadata_grpc = None;
    let grpc_address = &runtime.config.metadata.grpc_address;
    if !grpc_address.is_empty() {
        let listener = bind(grpc_address).await?;
        metadata_grpc = Some(listener.local_addr().map_err(|e| e.to_string())?);
        let api = MetadataApi::new(
            registry.clone(),
            runtime.config.metadata.publish_token.clone(),
        );
        let shutdown = stopped(&stop);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = api.serve(listener, shutdown).await {
                tracing::error!(error = %e, "the metadata gRPC listener failed");
            }
        }));
    }
    let mut listeners = Vec::new();
    let pins = crate::affinity::plan(
        runtime.config.pin_workers,
        crate::workers::count(&runtime.config),
        runtime.config.listeners.len(),
    );
    if let Some(cpus) = &pins {
        tracing::info!(?cpus, "worker threads pinned, one per CPU");
    }
    let group = Arc::new(crate::workers::Workers::pinned(pins));
    let workers = match runtime.config.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    for l in &runtime.config.listeners {
        let current = Arc::clone(&current);
        let handler: Handler =
            Arc::new(move |req| Box::pin(crate::pipeline::handle(current.load_full(), req)));
        let tls = match &l.tls {
            Some(files) => {
                let certs = crate::tls::Certificates::load(files)
                    .map_err(|e| format!("listener {:?}: {e}", l.name))?;
                tasks.push(tokio::spawn(Arc::clone(&certs).watch(
                    files.clone(),
                    Duration::from_secs(1),
                    stopped(&stop),
                )));
                Some(certs)
            }
            None => None,
        };
        let addr = resolve(&l.address)?;
        let (bound, served) =
            crate::workers::serve_on_workers(&group, addr, workers, handler, &limits, tls, &stop)
                .await?;
        listeners.push(bound);
        tasks.push(served);
    }
    let mut admin_addr = None;
    if !runtime.config.admin.address.is_empty() {
        let listener = bind(&runtime.config.admin.address).await?;
        admin_addr = Some(listener.local_addr().map_err(|e| e.to_string())?);
        let current = Arc::clone(&current);
        let served = Arc::new(listeners.clone());
        let handler: Handler = Arc::new(move |req| {
            let (rt, served) = (current.load_full(), Arc::clone(&served));
            Box::pin(async move { crate::server::boxed(admin::handle(&rt, &served, &req).await) })
        });
        tasks.push(spawn(listener, handler, &limits, None, &stop));
    }
    Ok(Running {
        listeners,
        admin: admin_addr,
        metadata_grpc,
        metadata: registry,
        current,
        stop,
        tasks,
    })
}

/// The runtime of a new configuration, built beside the old one.
fn reload(old: &Runtime, config: Config) -> Result<Runtime, String> {
    let before = &old.config;
    let fixed = [
        ("listeners", before.listeners != config.listeners),
        ("workers", before.workers != config.workers),
        ("pin_workers", before.pin_workers != config.pin_workers),
        ("admin", before.admin != config.admin),
        (
            "limits.max_header_bytes",
            before.limits.max_header_bytes != config.limits.max_header_bytes,
        ),
        (
            "limits.idle_timeout_ms",
            before.limits.idle_timeout_ms != config.limits.idle_timeout_ms,
        ),
        (
            "limits.drain_timeout_ms",
            before.limits.drain_timeout_ms != config.limits.drain_timeout_ms,
        ),
        ("metadata", before.metadata != config.metadata),
        ("xds", before.xds != config.xds),
        ("tracing", before.tracing != config.tracing),
    ];
    let changed: Vec<&str> = fixed.iter().filter(|(_, c)| *c).map(|(n, _)| *n).collect();
    if !changed.is_empty() {
        return Err(format!(
            "{} changed, which takes a restart; the running configuration stays",
            changed.join(", ")
        ));
    }
    let access_log = if config.access_log == before.access_log {
        old.access_log.clone()
    } else {
        AccessLogger::start(&config.access_log, old.metrics.access_log_dropped.clone())?
    };
    let shared = Shared {
        typing: old.typing.clone(),
        xds: old.xds.clone(),
        metrics: Arc::clone(&old.metrics),
        access_log,
        tracing: old.tracing.clone(),
    };
    Runtime::build(config, shared, Some(old))
}

/// Serves `listener` until `stop` turns true.
fn spawn(
    listener: TcpListener,
    handler: Handler,
    limits: &Limits,
    tls: Option<Arc<crate::tls::Certificates>>,
    stop: &watch::Sender<bool>,
) -> JoinHandle<()> {
    let mut stopped = stop.subscribe();
    let drain = Duration::from_millis(limits.drain_timeout_ms);
    tokio::spawn(serve(
        listener,
        handler,
        crate::server::ConnLimits::of(limits),
        drain,
        tls,
        (crate::server::Spread::new(1), 0),
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        },
    ))
}

/// Opens the configured metadata backend.
async fn open_metadata(config: &MetadataConfig) -> Result<Arc<Registry>, String> {
    let store: SharedStore = match config.backend {
        MetadataBackend::Memory => Arc::new(MemoryStore::new()),
        MetadataBackend::Redb => {
            let path = config.path.clone();
            // Opening may repair a file left by a crash: keep it off the async threads.
            let store = tokio::task::spawn_blocking(move || RedbStore::open(path))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("metadata.path: {e}"))?;
            Arc::new(store)
        }
        MetadataBackend::Etcd => Arc::new(
            EtcdStore::connect(&metadata_store::store::EtcdConfig {
                endpoints: config.etcd.endpoints.clone(),
                prefix: config.etcd.prefix.clone(),
                timeout: Duration::from_millis(config.etcd.timeout_ms),
            })
            .map_err(|e| format!("metadata.etcd: {e}"))?,
        ),
    };
    Ok(Arc::new(Registry::new(
        store,
        Duration::from_secs(config.ttl_secs),
    )))
}

async fn bind(address: &str) -> Result<TcpListener, String> {
    let addr = resolve(address)?;
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))
}
