//! HTTP serving: HTTP/1.1 and HTTP/2 on one port (detected per connection; over TLS, chosen by
//! ALPN), keep-alive, header size limits, and graceful shutdown that lets requests in flight
//! finish.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

/// A response body: a whole JSON document, or a stream passed through (gRPC).
pub type Body = BoxBody<Bytes, BoxError>;

/// A body's error: hyper's own, or the proxy client's I/O error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A whole body as a [`Body`].
pub fn boxed(response: Response<Full<Bytes>>) -> Response<Body> {
    response.map(|b| b.map_err(|never| match never {}).boxed())
}

/// What serves each request.
pub type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync,
>;

/// Connections open on each worker of one listener. The workers accept from one shared
/// socket; whichever wakes first could take a whole burst of new connections (a client
/// opening 8 at once), so a worker holding more than its share pauses before accepting
/// again and lets the others take the next ones.
#[derive(Debug)]
pub struct Spread {
    open: Vec<AtomicUsize>,
}

impl Spread {
    pub fn new(workers: usize) -> Arc<Spread> {
        Arc::new(Spread {
            open: (0..workers.max(1)).map(|_| AtomicUsize::new(0)).collect(),
        })
    }

    /// Whether worker `me` holds more than one connection above the average.
    fn over_share(&self, me: usize) -> bool {
        let n = self.open.len();
        let total: usize = self.open.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        n > 1 && self.open[me].load(Ordering::Relaxed) * n > total + n
    }

    fn opened(self: &Arc<Self>, me: usize) -> Opened {
        self.open[me].fetch_add(1, Ordering::Relaxed);
        Opened {
            spread: Arc::clone(self),
            me,
        }
    }
}

/// One open connection, counted until dropped.
struct Opened {
    spread: Arc<Spread>,
    me: usize,
}

impl Drop for Opened {
    fn drop(&mut self) {
        self.spread.open[self.me].fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long a worker over its share waits before accepting again (others take connections
/// meanwhile; a worker alone, or all of them busy, only loses this much).
const SPREAD_PAUSE: Duration = Duration::from_millis(1);

/// How long a TLS client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `listener` (with TLS when `tls` is given) until `shutdown`, then waits up to `drain`
/// for requests in flight. `spread`: this worker's number among the listener's workers, and
/// their connection counts.
pub async fn serve(
    listener: TcpListener,
    handler: Handler,
    max_header_bytes: usize,
    drain: Duration,
    tls: Option<Arc<crate::tls::Certificates>>,
    (spread, me): (Arc<Spread>, usize),
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .timer(TokioTimer::new())
        // Headers that do not fit the read buffer are answered 431.
        .max_buf_size(max_header_bytes.max(8192))
        .header_read_timeout(Duration::from_secs(30));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(accepted) => accepted,
                    // Out of descriptors and the like: back off briefly, keep serving.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let opened = spread.opened(me);
                let handler = Arc::clone(&handler);
                let service = service_fn(move |mut req: Request<Incoming>| {
                    let handler = Arc::clone(&handler);
                    req.extensions_mut().insert(crate::telemetry::RemoteAddr(remote));
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let Some(tls) = &tls else {
                    let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
                    tokio::spawn(async move {
                        let _ = conn.await;
                        drop(opened);
                    });
                    if spread.over_share(me) {
                        tokio::time::sleep(SPREAD_PAUSE).await;
                    }
                    continue;
                };
                // The handshake runs on the connection's own task: a slow client never holds
                // up the accept loop.
                let acceptor = tls.acceptor();
                let (builder, watcher) = (builder.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%remote, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let _ = watcher.watch(conn).await;
                    drop(opened);
                });
                if spread.over_share(me) {
                    tokio::time::sleep(SPREAD_PAUSE).await;
                }
            }
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(drain) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::Spread;

    #[test]
    fn a_worker_over_its_share_of_connections_lets_others_accept() {
        let spread = Spread::new(2);
        let a: Vec<_> = (0..3).map(|_| spread.opened(0)).collect();
        assert!(
            spread.over_share(0),
            "3 of 3: more than one above the average"
        );
        assert!(!spread.over_share(1));
        let b: Vec<_> = (0..2).map(|_| spread.opened(1)).collect();
        assert!(!spread.over_share(0), "3 of 5 is within one of the average");
        drop(b);
        assert!(spread.over_share(0), "closed connections count no more");
        drop(a);
        let alone = Spread::new(1);
        let _many: Vec<_> = (0..10).map(|_| alone.opened(0)).collect();
        assert!(!alone.over_share(0), "a lone worker never waits");
    }
}
