//! Starting and stopping a gateway: bind every listener and the admin API, serve, and on
//! shutdown let requests in flight finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::validate::resolve;
use crate::config::{Config, Limits};
use crate::runtime::Runtime;
use crate::server::{serve, Handler};
use crate::{admin, proxy};

/// A gateway that is serving.
#[derive(Debug)]
pub struct Running {
    /// Bound addresses of the listeners, in configuration order (port 0 resolved).
    pub listeners: Vec<SocketAddr>,
    pub admin: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish (up to the drain timeout), and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts serving `config` (already validated).
pub async fn start(config: Config) -> Result<Running, String> {
    let runtime = Arc::new(Runtime::build(config)?);
    let limits = runtime.config.limits.clone();
    let (stop, _) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut listeners = Vec::new();
    for l in &runtime.config.listeners {
        let listener = bind(&l.address).await?;
        listeners.push(listener.local_addr().map_err(|e| e.to_string())?);
        let rt = Arc::clone(&runtime);
        let handler: Handler = Arc::new(move |req| {
            let rt = Arc::clone(&rt);
            Box::pin(proxy::handle(rt, req))
        });
        tasks.push(spawn(listener, handler, &limits, &stop));
    }
    let mut admin_addr = None;
    if !runtime.config.admin.address.is_empty() {
        let listener = bind(&runtime.config.admin.address).await?;
        admin_addr = Some(listener.local_addr().map_err(|e| e.to_string())?);
        let rt = Arc::clone(&runtime);
        let handler: Handler = Arc::new(move |req| {
            let response = admin::handle(&rt, &req);
            Box::pin(async move { response })
        });
        tasks.push(spawn(listener, handler, &limits, &stop));
    }
    Ok(Running {
        listeners,
        admin: admin_addr,
        stop,
        tasks,
    })
}

/// Serves `listener` until `stop` turns true.
fn spawn(
    listener: TcpListener,
    handler: Handler,
    limits: &Limits,
    stop: &watch::Sender<bool>,
) -> JoinHandle<()> {
    let mut stopped = stop.subscribe();
    let drain = Duration::from_millis(limits.drain_timeout_ms);
    tokio::spawn(serve(
        listener,
        handler,
        limits.max_header_bytes,
        drain,
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        },
    ))
}

async fn bind(address: &str) -> Result<TcpListener, String> {
    let addr = resolve(address)?;
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))
}
