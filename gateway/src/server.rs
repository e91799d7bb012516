//! HTTP serving: HTTP/1.1 ([`crate::http1`]) and HTTP/2 ([`crate::http2`]), both our own, on one port — a
//! connection that opens with the HTTP/2 preface is HTTP/2, with or without TLS — keep-alive,
//! header size limits, and graceful shutdown that lets requests in flight finish.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use crate::http1::body::RequestBody;
use crate::http1::conn::{self, Ended};

/// A response body: a whole JSON document, or a stream passed through (gRPC).
pub type Body = BoxBody<Bytes, BoxError>;

/// A body's error: an upstream's (HTTP/2 reset, I/O) or a request body's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A whole body as a [`Body`].
pub fn boxed(response: Response<Full<Bytes>>) -> Response<Body> {
    response.map(|b| b.map_err(|never| match never {}).boxed())
}

/// What serves each request.
pub type Handler = Arc<
    dyn Fn(Request<RequestBody>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>>
        + Send
        + Sync,
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

/// What bounds each client connection of a listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// The most bytes a request head (HTTP/2: header list) may take.
    pub max_head: usize,
    /// How long a connection may stay open with no request in progress.
    pub idle: Duration,
}

impl ConnLimits {
    pub fn of(limits: &crate::config::Limits) -> ConnLimits {
        ConnLimits {
            max_head: limits.max_header_bytes,
            idle: Duration::from_millis(limits.idle_timeout_ms),
        }
    }
}

/// Serves `listener` (with TLS when `tls` is given) until `shutdown`, then waits up to `drain`
/// for requests in flight. `spread`: this worker's number among the listener's workers, and
/// their connection counts.
pub async fn serve(
    listener: TcpListener,
    handler: Handler,
    limits: ConnLimits,
    drain: Duration,
    tls: Option<Arc<crate::tls::Certificates>>,
    (spread, me): (Arc<Spread>, usize),
    shutdown: impl Future<Output = ()>,
) {
    // Every connection holds a receiver: once all are gone, everything has drained.
    let (stopping, stop) = watch::channel(false);
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
                let cx = conn::Context {
                    handler: Arc::clone(&handler),
                    remote,
                    max_head: limits.max_head,
                    idle: limits.idle,
                };
                let stop = stop.clone();
                match &tls {
                    None => {
                        tokio::spawn(async move {
                            connection(stream, cx, stop).await;
                            drop(opened);
                        });
                    }
                    // The handshake runs on the connection's own task: a slow client never
                    // holds up the accept loop.
                    Some(tls) => {
                        let acceptor = tls.acceptor();
                        tokio::spawn(async move {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => connection(stream, cx, stop).await,
                                Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                                Err(_) => {}
                            }
                            drop(opened);
                        });
                    }
                }
                if spread.over_share(me) {
                    tokio::time::sleep(SPREAD_PAUSE).await;
                }
            }
        }
    }
    drop(listener);
    drop(stop);
    stopping.send_replace(true);
    let _ = tokio::time::timeout(drain, stopping.closed()).await;
}

/// One connection, HTTP/1 until it opens with the HTTP/2 preface.
async fn connection<IO>(mut io: IO, cx: conn::Context, mut stop: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let read = match conn::serve(&mut io, &cx, &mut stop).await {
        Ended::Closed => return,
        Ended::Http2(read) => read,
    };
    crate::http2::serve(io, read, cx, stop).await;
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
