//! Thread-per-core serving, as nginx does it: each listener is served by `workers` threads,
//! each running its own single-threaded Tokio runtime and accepting from the one listening
//! socket they share; a worker with more than its share of connections lets the others take
//! the next ones ([`crate::server::Spread`]). (`SO_REUSEPORT`, one socket per worker, was
//! tried: the kernel spreads connections by a hash of their addresses, and a few long-lived
//! connections split by luck, 6/2 for 8, left one worker with most of the load.) A request, the upstream connection it
//! uses and their wakeups stay on one thread: no work stealing, no cross-thread wakeups on the
//! hot path. Upstream clients that pool connections keep one pool per worker (see
//! [`id`]). The admin API, the metadata API and xDS stay on the main runtime.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Limits;
use crate::server::{serve, Handler};

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Worker numbers handed out so far: unique across listeners (each listener has its own
/// worker threads and event loops, and per-worker pools must not mix them).
static NUMBERED: AtomicUsize = AtomicUsize::new(0);

/// This thread's worker number: 1..=listeners×workers on worker threads, 0 elsewhere.
pub fn id() -> usize {
    WORKER.with(Cell::get)
}

/// Worker threads in all for `config`: `workers` (0: one per CPU) for each listener. Worker
/// ids run 1..=this.
pub fn count(config: &crate::config::Config) -> usize {
    let workers = match config.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    workers * config.listeners.len().max(1)
}

/// Every worker of a gateway, so that none stops its event loop before all have drained.
/// Upstream connections are per worker (Dubbo2 pool lanes, Triple and gRPC clients, HTTP
/// pools by [`id`]), but a connection is only as alive as the loop driving its tasks, and a
/// stray one opened elsewhere must not lose its calls: a worker that finished early keeps
/// driving its loop while the rest drain.
#[derive(Debug)]
pub struct Workers {
    running: AtomicUsize,
    drained: watch::Sender<bool>,
    /// Each worker's CPU (by worker number − 1, modulo), when pinned.
    pins: Option<Vec<usize>>,
}

impl Default for Workers {
    fn default() -> Self {
        Workers::pinned(None)
    }
}

impl Workers {
    /// A group whose workers are pinned to `pins` (see [`crate::affinity`]).
    pub fn pinned(pins: Option<Vec<usize>>) -> Workers {
        Workers {
            running: AtomicUsize::new(0),
            drained: watch::channel(false).0,
            pins,
        }
    }

    fn started(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
    }

    /// This worker has drained; waits (driving its loop) until every worker has.
    async fn finished(&self) {
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            // `send_replace`, not `send`: with nobody subscribed yet (a single worker), `send`
            // would drop the value and this worker would wait forever.
            self.drained.send_replace(true);
        }
        let mut drained = self.drained.subscribe();
        let _ = drained.wait_for(|d| *d).await;
    }
}

/// A listening socket for `addr`, to be shared by every worker of a listener.
fn shared_listener(addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(listener)
}

/// Serves `addr` on `workers` threads until `stop` turns true; returns, once every worker
/// listens, the bound address (port 0 resolved) and a task that ends once every worker has
/// drained and stopped.
pub async fn serve_on_workers(
    group: &Arc<Workers>,
    addr: SocketAddr,
    workers: usize,
    handler: Handler,
    limits: &Limits,
    tls: Option<Arc<crate::tls::Certificates>>,
    stop: &watch::Sender<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), String> {
    let shared = shared_listener(addr)?;
    let bound = shared.local_addr().map_err(|e| e.to_string())?;
    let mut sockets = Vec::new();
    for _ in 0..workers.max(1) {
        sockets.push(shared.try_clone().map_err(|e| e.to_string())?);
    }
    let drain = std::time::Duration::from_millis(limits.drain_timeout_ms);
    let conn_limits = crate::server::ConnLimits::of(limits);
    let mut done = Vec::new();
    let mut listening = Vec::new();
    let spreads = crate::server::Spread::new(workers);
    for (i, socket) in sockets.into_iter().enumerate() {
        let (ready, is_ready) = tokio::sync::oneshot::channel::<Result<(), String>>();
        listening.push(is_ready);
        let (handler, tls, spread) = (Arc::clone(&handler), tls.clone(), Arc::clone(&spreads));
        let mut stopped = stop.subscribe();
        let (finished, wait) = tokio::sync::oneshot::channel::<()>();
        done.push(wait);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("worker runtime: {e}"))?;
        let group = Arc::clone(group);
        group.started();
        std::thread::Builder::new()
            .name(format!("worker-{}", i + 1))
            .spawn(move || {
                let number = NUMBERED.fetch_add(1, Ordering::Relaxed) + 1;
                WORKER.with(|w| w.set(number));
                if let Some(pins) = group.pins.as_ref().filter(|p| !p.is_empty()) {
                    let cpu = pins[(number - 1) % pins.len()];
                    if let Err(e) = crate::affinity::pin_current_thread(cpu) {
                        tracing::warn!(cpu, error = %e, "a worker could not be pinned");
                    }
                }
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(socket) {
                        Ok(listener) => {
                            let _ = ready.send(Ok(()));
                            let shutdown = async move {
                                let _ = stopped.wait_for(|s| *s).await;
                            };
                            let spread = (spread, i);
                            serve(listener, handler, conn_limits, drain, tls, spread, shutdown)
                                .await;
                        }
                        Err(e) => {
                            let _ = ready.send(Err(format!("cannot listen on {bound}: {e}")));
                        }
                    }
                    group.finished().await;
                });
                // Its tasks end here, before the gateway reports itself stopped.
                drop(runtime);
                let _ = finished.send(());
            })
            .map_err(|e| format!("worker thread: {e}"))?;
    }
    for is_ready in listening {
        is_ready
            .await
            .map_err(|_| "a worker thread ended before listening".to_owned())??;
    }
    let all = tokio::spawn(async move {
        for wait in done {
            let _ = wait.await;
        }
    });
    Ok((bound, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lone_worker_is_not_left_waiting_for_the_others() {
        let group = Workers::default();
        group.started();
        let finished = tokio::time::timeout(std::time::Duration::from_secs(5), group.finished());
        assert!(
            finished.await.is_ok(),
            "the last worker to drain must not wait"
        );
    }
}
