//! Circuit breaking per cluster, as Envoy does it: a ceiling on calls in flight and on calls
//! waiting for a connection. Beyond either, a call is answered 503 at once — a struggling
//! cluster gets no queue piling up in front of it, and callers learn quickly.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::config::CircuitBreaker;

#[derive(Debug)]
pub struct Breaker {
    max_requests: AtomicU32,
    max_pending: AtomicU32,
    in_flight: AtomicU32,
    pending: AtomicU32,
}

/// Which ceiling was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    Requests(u32),
    Pending(u32),
}

impl std::fmt::Display for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Open::Requests(n) => write!(f, "{n} calls in flight (max_requests)"),
            Open::Pending(n) => write!(
                f,
                "{n} calls waiting for a connection (max_pending_requests)"
            ),
        }
    }
}

/// A call counted in flight (or pending) until dropped.
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<Breaker>,
    pending: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let counter = if self.pending {
            &self.breaker.pending
        } else {
            &self.breaker.in_flight
        };
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Breaker {
    pub fn new(limits: CircuitBreaker) -> Arc<Breaker> {
        Arc::new(Breaker {
            max_requests: AtomicU32::new(limits.max_requests),
            max_pending: AtomicU32::new(limits.max_pending_requests),
            in_flight: AtomicU32::new(0),
            pending: AtomicU32::new(0),
        })
    }

    /// New thresholds (an xDS update) for the calls that come next.
    pub fn set_limits(&self, limits: CircuitBreaker) {
        self.max_requests
            .store(limits.max_requests, Ordering::Relaxed);
        self.max_pending
            .store(limits.max_pending_requests, Ordering::Relaxed);
    }

    /// A call may start, or the breaker is open.
    pub fn request(self: &Arc<Self>) -> Result<Permit, Open> {
        Self::enter(self, &self.in_flight, &self.max_requests, false).map_err(Open::Requests)
    }

    /// A call may wait for a connection, or too many already do.
    pub fn wait_for_connection(self: &Arc<Self>) -> Result<Permit, Open> {
        Self::enter(self, &self.pending, &self.max_pending, true).map_err(Open::Pending)
    }

    fn enter(
        this: &Arc<Self>,
        counter: &AtomicU32,
        max: &AtomicU32,
        pending: bool,
    ) -> Result<Permit, u32> {
        let max = max.load(Ordering::Relaxed);
        let mut current = counter.load(Ordering::Relaxed);
        loop {
            if current >= max {
                return Err(current);
            }
            match counter.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Ok(Permit {
                        breaker: Arc::clone(this),
                        pending,
                    })
                }
                Err(now) => current = now,
            }
        }
    }

    pub fn limits(&self) -> CircuitBreaker {
        CircuitBreaker {
            max_requests: self.max_requests.load(Ordering::Relaxed),
            max_pending_requests: self.max_pending.load(Ordering::Relaxed),
        }
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn pending(&self) -> u32 {
        self.pending.load(Ordering::Relaxed)
    }
}

/// A response body that keeps a call's permit until the body ends (or is dropped): a stream
/// or a long download counts as in flight while it lasts.
#[derive(Debug)]
pub struct Held<B> {
    inner: B,
    _permit: Permit,
}

impl<B> Held<B> {
    pub fn new(inner: B, permit: Permit) -> Self {
        Held {
            inner,
            _permit: permit,
        }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Held<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn opens_at_the_ceiling_and_closes_as_calls_end() {
        let breaker = Breaker::new(CircuitBreaker {
            max_requests: 2,
            max_pending_requests: 1,
        });
        let a = breaker.request().unwrap();
        let _b = breaker.request().unwrap();
        assert_eq!(breaker.request().unwrap_err(), Open::Requests(2));
        drop(a);
        assert_eq!(breaker.in_flight(), 1);
        let _c = breaker.request().unwrap();
        let p = breaker.wait_for_connection().unwrap();
        assert_eq!(breaker.wait_for_connection().unwrap_err(), Open::Pending(1));
        drop(p);
        assert_eq!(breaker.pending(), 0);
        breaker.set_limits(CircuitBreaker {
            max_requests: 3,
            max_pending_requests: 1,
        });
        assert!(breaker.request().is_ok());
    }
}
