//! Rate limits with `governor` (GCRA token buckets): per route, counted per client key — the
//! remote address (IPv6 by /64, as one client usually holds a whole /64), a named header (an
//! API key), or one bucket for everyone.
//!
//! Memory stays bounded however many clients come: keys are hashed to 64 bits, each key's bucket
//! is forgotten once it has been idle long enough to be full again (nothing is lost: a new
//! bucket starts full), and while `max_keys` buckets are tracked, keys without one share a single
//! overflow bucket — clients already tracked keep their own, so a flood of new keys cannot take
//! anyone else's budget.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::request::Parts;

use crate::config::{LimitKey, RateLimit};
use crate::telemetry::RemoteAddr;

/// How often idle keys are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Limiter {
    /// What it was made from: a reload with the same settings keeps the buckets.
    pub config: RateLimit,
    key: LimitKey,
    quota: Quota,
    buckets: DashMap<u64, Bucket>,
    /// The global bucket, and where keys without a bucket go while the table is full.
    shared: DefaultDirectRateLimiter,
    max_keys: usize,
    /// How long a bucket must sit idle to be full again (then it can be forgotten).
    idle: Duration,
    hasher: std::collections::hash_map::RandomState,
    clock: DefaultClock,
    started: Instant,
    last_sweep_ms: AtomicU64,
}

#[derive(Debug)]
struct Bucket {
    limiter: DefaultDirectRateLimiter,
    /// Milliseconds since the limiter started, at the last check.
    last_seen_ms: AtomicU64,
}

impl Limiter {
    /// `None` for a limit of 0 requests per second (no limit).
    pub fn new(config: &RateLimit) -> Result<Option<Limiter>, String> {
        let Some(rate) = NonZeroU32::new(config.requests_per_second) else {
            return Ok(None);
        };
        let burst = match config.burst {
            Some(b) => NonZeroU32::new(b).ok_or("burst must be at least 1")?,
            None => rate,
        };
        let quota = Quota::per_second(rate).allow_burst(burst);
        let refill = Duration::from_secs_f64(f64::from(burst.get()) / f64::from(rate.get()));
        Ok(Some(Limiter {
            config: config.clone(),
            key: config.limit_key()?,
            quota,
            buckets: DashMap::new(),
            shared: RateLimiter::direct(quota),
            max_keys: config.max_keys.max(1),
            idle: refill.max(Duration::from_secs(1)),
            hasher: std::collections::hash_map::RandomState::new(),
            clock: DefaultClock::default(),
            started: Instant::now(),
            last_sweep_ms: AtomicU64::new(0),
        }))
    }

    /// Whether the request may go on; otherwise how long until it could.
    pub fn check(&self, parts: &Parts) -> Result<(), Duration> {
        let key = match &self.key {
            LimitKey::Global => None,
            LimitKey::RemoteAddress => parts
                .extensions
                .get::<RemoteAddr>()
                .map(|a| self.hasher.hash_one(client(a.0.ip()))),
            LimitKey::Header(name) => Some(
                parts
                    .headers
                    .get(name)
                    .map_or(0, |v| self.hasher.hash_one(v.as_bytes())),
            ),
        };
        let now = self.now_ms();
        self.sweep_if_due(now);
        let verdict = match key {
            None => self.shared.check(),
            Some(key) => match self.buckets.get(&key) {
                Some(bucket) => bucket.check(now),
                None if self.buckets.len() >= self.max_keys => self.shared.check(),
                None => self
                    .buckets
                    .entry(key)
                    .or_insert_with(|| Bucket {
                        limiter: RateLimiter::direct(self.quota),
                        last_seen_ms: AtomicU64::new(now),
                    })
                    .check(now),
            },
        };
        verdict.map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Forgets buckets idle long enough to be full again; one caller does it.
    fn sweep_if_due(&self, now: u64) {
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= SWEEP_EVERY.as_millis() as u64;
        if due
            && self
                .last_sweep_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let idle = self.idle.as_millis() as u64;
            self.buckets
                .retain(|_, b| now.saturating_sub(b.last_seen_ms.load(Ordering::Relaxed)) < idle);
            self.buckets.shrink_to_fit();
        }
    }

    pub fn tracked_keys(&self) -> usize {
        self.buckets.len()
    }
}

impl Bucket {
    fn check(&self, now: u64) -> Result<(), governor::NotUntil<<DefaultClock as Clock>::Instant>> {
        self.last_seen_ms.store(now, Ordering::Relaxed);
        self.limiter.check()
    }
}

/// The client an address stands for: IPv4 as is (also when mapped into IPv6), IPv6 by its /64.
fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// Seconds for `Retry-After`: the wait rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(remote: &str, api_key: Option<&str>) -> Parts {
        let mut builder = http::Request::get("/");
        if let Some(k) = api_key {
            builder = builder.header("x-api-key", k);
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        parts.extensions.insert(RemoteAddr(remote.parse().unwrap()));
        parts
    }

    fn limit(key: &str, max_keys: usize) -> Limiter {
        Limiter::new(&RateLimit {
            requests_per_second: 1,
            burst: Some(2),
            key: key.into(),
            max_keys,
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn each_client_has_its_own_bucket() {
        let l = limit("remote_address", 100);
        let a = request("10.0.0.1:5000", None);
        assert!(l.check(&a).is_ok());
        assert!(
            l.check(&request("10.0.0.1:5001", None)).is_ok(),
            "same IP, other port"
        );
        let wait = l.check(&a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(l.check(&request("10.0.0.2:5000", None)).is_ok());
    }

    #[test]
    fn header_keys_and_the_global_bucket() {
        let l = limit("header:x-api-key", 100);
        for _ in 0..2 {
            assert!(l.check(&request("10.0.0.1:1", Some("k1"))).is_ok());
        }
        assert!(
            l.check(&request("10.0.0.9:1", Some("k1"))).is_err(),
            "the key, not the address"
        );
        assert!(l.check(&request("10.0.0.1:1", Some("k2"))).is_ok());
        let g = limit("global", 100);
        assert!(g.check(&request("10.0.0.1:1", None)).is_ok());
        assert!(g.check(&request("10.0.0.2:1", None)).is_ok());
        assert!(g.check(&request("10.0.0.3:1", None)).is_err());
    }

    #[test]
    fn the_key_table_is_bounded_and_tracked_clients_keep_their_bucket() {
        let l = limit("header:x-api-key", 10);
        let known = request("10.0.0.1:1", Some("known"));
        assert!(l.check(&known).is_ok());
        // A flood of new keys fills the table, then shares one overflow bucket…
        let mut refused = 0;
        for i in 0..1000 {
            if l.check(&request("10.0.0.2:1", Some(&format!("k{i}"))))
                .is_err()
            {
                refused += 1;
            }
        }
        assert_eq!(l.tracked_keys(), 10);
        // 9 newcomers got a bucket of their own, the other 991 share a burst of 2.
        assert!(refused >= 985, "{refused}");
        // …while the client tracked before it still has its own (burst 2, one used).
        assert!(l.check(&known).is_ok());
        assert!(l.check(&known).is_err());
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let l = limit("remote_address", 100);
        assert!(l.check(&request("[2001:db8::1]:1", None)).is_ok());
        assert!(l.check(&request("[2001:db8::ffff:2]:1", None)).is_ok());
        assert!(
            l.check(&request("[2001:db8::3]:1", None)).is_err(),
            "same /64"
        );
        assert!(
            l.check(&request("[2001:db8:0:1::1]:1", None)).is_ok(),
            "another /64"
        );
        assert!(l.check(&request("[::ffff:10.0.0.9]:1", None)).is_ok());
        assert!(l.check(&request("10.0.0.9:1", None)).is_ok());
        assert!(
            l.check(&request("10.0.0.9:2", None)).is_err(),
            "IPv4-mapped is the IPv4"
        );
    }

    #[test]
    fn zero_means_no_limit_and_bad_keys_are_refused() {
        let off = RateLimit {
            requests_per_second: 0,
            burst: None,
            key: "global".into(),
            max_keys: 1,
        };
        assert!(Limiter::new(&off).unwrap().is_none());
        let bad = RateLimit {
            requests_per_second: 1,
            key: "cookie".into(),
            ..off
        };
        assert!(Limiter::new(&bad).is_err());
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(2500)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
