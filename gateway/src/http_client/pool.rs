//! Idle keep-alive connections, per worker and endpoint.
//!
//! Each worker keeps its own idle connections, so a connection is only ever driven by the
//! event loop that opened it (no cross-thread wake-ups), and the lock around a worker's lists
//! is never contended on the hot path. Connections are reused most-recently-used first (warm
//! ones), and the oldest are closed after the idle timeout — by the sweeper, and whenever a
//! list is touched. An idle connection that turned readable was closed by the upstream (or
//! sent something unasked) and is dropped instead of reused; that check reads the readiness
//! the event loop already has, so it costs no system call.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

#[derive(Debug)]
struct Idle {
    stream: TcpStream,
    since: Instant,
}

/// Idle connections of one cluster: `[worker][endpoint]`.
#[derive(Debug)]
pub struct Pool {
    idle: Vec<Mutex<Vec<VecDeque<Idle>>>>,
    idle_timeout: Duration,
    max_idle: usize,
}

impl Pool {
    /// A pool for `endpoints` endpoints used by `slots` workers (see [`crate::workers::id`]).
    pub fn new(slots: usize, endpoints: usize, idle_timeout: Duration, max_idle: usize) -> Pool {
        Pool {
            idle: (0..slots.max(1))
                .map(|_| Mutex::new((0..endpoints).map(|_| VecDeque::new()).collect()))
                .collect(),
            idle_timeout,
            max_idle,
        }
    }

    pub fn slots(&self) -> usize {
        self.idle.len()
    }

    fn mine(&self) -> std::sync::MutexGuard<'_, Vec<VecDeque<Idle>>> {
        self.idle[crate::workers::id() % self.idle.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A live idle connection to `endpoint`, most recently used first.
    pub fn take(&self, endpoint: usize) -> Option<TcpStream> {
        let mut lists = self.mine();
        let list = lists.get_mut(endpoint)?;
        let now = Instant::now();
        while let Some(idle) = list.pop_back() {
            if now.duration_since(idle.since) < self.idle_timeout && alive(&idle.stream) {
                return Some(idle.stream);
            }
        }
        None
    }

    /// Keeps a connection whose last exchange ended cleanly.
    pub fn put(&self, endpoint: usize, stream: TcpStream) {
        let mut lists = self.mine();
        let Some(list) = lists.get_mut(endpoint) else {
            return;
        };
        let now = Instant::now();
        while list
            .front()
            .is_some_and(|oldest| now.duration_since(oldest.since) >= self.idle_timeout)
        {
            list.pop_front();
        }
        if list.len() < self.max_idle {
            list.push_back(Idle { stream, since: now });
        }
    }

    /// Closes connections idle too long or closed by the upstream.
    pub fn sweep(&self) {
        let now = Instant::now();
        for worker in &self.idle {
            let mut lists = worker.lock().unwrap_or_else(PoisonError::into_inner);
            for list in lists.iter_mut() {
                list.retain(|idle| {
                    now.duration_since(idle.since) < self.idle_timeout && alive(&idle.stream)
                });
            }
        }
    }

    /// Idle connections now (for tests and `/clusters`).
    pub fn idle_count(&self) -> usize {
        self.idle
            .iter()
            .map(|w| {
                w.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .map(VecDeque::len)
                    .sum::<usize>()
            })
            .sum()
    }
}

/// Runs [`Pool::sweep`] every few seconds for as long as the pool exists.
pub fn spawn_sweeper(pool: Weak<Pool>, every: Duration) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match pool.upgrade() {
                Some(pool) => pool.sweep(),
                None => return,
            }
        }
    });
}

/// Whether an idle connection can carry a request: nothing to read (no EOF, no stray bytes).
///
/// `try_read` answers `WouldBlock` without a system call while the event loop has seen
/// nothing on the socket, and only asks the socket when it has (readiness can also outlive
/// the data). Unlike `poll_read_ready` it is not subject to the task's cooperative budget,
/// which would report a closed connection as alive once the budget runs out.
fn alive(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}
