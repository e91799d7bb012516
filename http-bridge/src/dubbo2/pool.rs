//! Connections to one provider endpoint.
//!
//! Dubbo multiplexes, so a few connections per provider carry any load; the pool keeps
//! `connections` of them for each event loop (`loops`), opened on first use and replaced when
//! they close. A caller passes its loop's number (its lane) and uses that loop's connections,
//! so a connection's reader and writer tasks run on the thread that calls through it: a call
//! never waits for another thread to be woken up to send it or to hand back its answer. A failed connect puts
//! the endpoint in backoff (doubling from 500 ms to 30 s) so that a dead provider costs callers
//! a fast error instead of a connect timeout each, and the load balancer can skip it. Idle
//! connections are kept alive with heartbeats; one that misses its heartbeat is dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::connection::{CallError, Connection};

/// How an endpoint's connections are made and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Connections per event loop.
    pub connections: usize,
    /// Event loops calling through the pool (lanes `0..loops`; any lane is taken modulo).
    pub loops: usize,
    pub connect_timeout: Duration,
    pub max_frame: usize,
    /// Heartbeat period for each connection; `None` disables heartbeats.
    pub heartbeat: Option<Duration>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            connections: 2,
            loops: 1,
            connect_timeout: Duration::from_secs(3),
            max_frame: dubbo_codec::dubbo2::DEFAULT_MAX_FRAME,
            heartbeat: Some(Duration::from_secs(60)),
        }
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Slots {
    conns: Vec<Option<Connection>>,
    /// Until when connects are not attempted, and the delay to use after the next failure.
    down_until: Option<Instant>,
    backoff: Duration,
    last_error: String,
}

/// The connections to one endpoint.
#[derive(Debug)]
pub struct EndpointPool {
    addr: SocketAddr,
    config: PoolConfig,
    slots: Mutex<Slots>,
    /// Serialises connects so a burst of callers opens one connection, not one each.
    connecting: tokio::sync::Mutex<()>,
    next: AtomicUsize,
}

impl EndpointPool {
    pub fn new(addr: SocketAddr, config: PoolConfig) -> Arc<EndpointPool> {
        let slots = Slots {
            // Lanes are made on first use: most loops never call most endpoints.
            conns: Vec::new(),
            ..Slots::default()
        };
        let pool = Arc::new(EndpointPool {
            addr,
            config,
            slots: Mutex::new(slots),
            connecting: tokio::sync::Mutex::new(()),
            next: AtomicUsize::new(0),
        });
        if let Some(period) = pool.config.heartbeat {
            tokio::spawn(keepalive(Arc::downgrade(&pool), period));
        }
        pool
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the endpoint is in connect backoff after a failure.
    pub fn is_down(&self) -> bool {
        self.lock().down_until.is_some_and(|t| t > Instant::now())
    }

    /// A connection of event loop `lane` to use, opening one if its slot is empty or closed.
    pub async fn get(&self, lane: usize) -> Result<Connection, CallError> {
        let per_loop = self.config.connections.max(1);
        let slot = (lane % self.config.loops.max(1)) * per_loop
            + self.next.fetch_add(1, Ordering::Relaxed) % per_loop;
        if let Some(conn) = self.open_in(slot)? {
            return Ok(conn);
        }
        let _guard = self.connecting.lock().await;
        // Someone may have connected while we waited.
        if let Some(conn) = self.open_in(slot)? {
            return Ok(conn);
        }
        match Connection::connect(
            self.addr,
            self.config.connect_timeout,
            self.config.max_frame,
        )
        .await
        {
            Ok(conn) => {
                let mut slots = self.lock();
                slots.conns[slot] = Some(conn.clone());
                slots.down_until = None;
                slots.backoff = Duration::ZERO;
                Ok(conn)
            }
            Err(e) => {
                let mut slots = self.lock();
                slots.backoff = (slots.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                slots.down_until = Some(Instant::now() + slots.backoff);
                slots.last_error = e.to_string();
                Err(e)
            }
        }
    }

    /// The open connection in `slot`, or `None` to connect; an error while in backoff.
    fn open_in(&self, slot: usize) -> Result<Option<Connection>, CallError> {
        let mut slots = self.lock();
        if slots.conns.len() <= slot {
            let per_loop = self.config.connections.max(1);
            slots.conns.resize((slot / per_loop + 1) * per_loop, None);
        }
        if let Some(conn) = slots.conns[slot].as_ref().filter(|c| c.is_open()) {
            return Ok(Some(conn.clone()));
        }
        // Any other open connection serves while this slot is being refilled.
        if let Some(conn) = slots.conns.iter().flatten().find(|c| c.is_open()) {
            if slots.down_until.is_some_and(|t| t > Instant::now()) {
                return Ok(Some(conn.clone()));
            }
        }
        match slots.down_until {
            Some(until) if until > Instant::now() => Err(CallError::Connect(format!(
                "{} is down ({}); next attempt in {:?}",
                self.addr,
                slots.last_error,
                until - Instant::now()
            ))),
            _ => Ok(None),
        }
    }

    /// Connections open now (for metrics).
    pub fn open_connections(&self) -> usize {
        self.lock()
            .conns
            .iter()
            .flatten()
            .filter(|c| c.is_open())
            .count()
    }

    fn connections(&self) -> Vec<Connection> {
        self.lock()
            .conns
            .iter()
            .flatten()
            .filter(|c| c.is_open())
            .cloned()
            .collect()
    }
}

async fn keepalive(pool: Weak<EndpointPool>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tick.tick().await;
        // The task ends with the pool.
        let Some(conns) = pool.upgrade().map(|p| p.connections()) else {
            return;
        };
        // All at once: a provider gone silent costs one heartbeat timeout per round, not one
        // per connection (lanes × connections of them).
        let mut beats = tokio::task::JoinSet::new();
        for conn in conns {
            if conn.in_flight() == 0 {
                beats.spawn(async move {
                    let alive = conn
                        .heartbeat(period.min(Duration::from_secs(10)))
                        .await
                        .is_ok();
                    (conn, alive)
                });
            }
        }
        // The pool is not held meanwhile: one removed from its cluster goes at once.
        while let Some(beat) = beats.join_next().await {
            let Ok((conn, false)) = beat else { continue };
            let Some(pool) = pool.upgrade() else { return };
            let mut slots = pool.lock();
            for slot in slots.conns.iter_mut() {
                if slot.as_ref().is_some_and(|c| c.same_as(&conn)) {
                    *slot = None;
                }
            }
        }
    }
}
