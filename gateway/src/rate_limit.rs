//! Rate limits with `governor` (GCRA token buckets): per route, counted per client key — the
//! remote address, a named header (an API key), or one bucket for everyone.
//!
//! Memory stays bounded however many clients come: keys are hashed to 64 bits, idle keys are
//! swept every few seconds, and once `max_keys` are tracked, newcomers share one overflow
//! bucket until a sweep makes room.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::request::Parts;

use crate::config::{LimitKey, RateLimit};
use crate::telemetry::RemoteAddr;

/// How often idle keys are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Limiter {
    key: LimitKey,
    keyed: DefaultKeyedRateLimiter<u64>,
    /// The global bucket, and where newcomers go while the key table is full.
    shared: DefaultDirectRateLimiter,
    max_keys: usize,
    hasher: std::collections::hash_map::RandomState,
    clock: DefaultClock,
    started: Instant,
    last_sweep_ms: AtomicU64,
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
        Ok(Some(Limiter {
            key: config.limit_key()?,
            keyed: RateLimiter::keyed(quota),
            shared: RateLimiter::direct(quota),
            max_keys: config.max_keys.max(1),
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
                .map(|a| self.hash(normalize(a.0.ip()))),
            LimitKey::Header(name) => Some(
                parts
                    .headers
                    .get(name)
                    .map_or(0, |v| self.hash(v.as_bytes())),
            ),
        };
        self.sweep_if_due();
        let verdict = match key {
            Some(key) if self.keyed.len() < self.max_keys => self.keyed.check_key(&key),
            _ => self.shared.check(),
        };
        verdict.map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    fn hash<T: Hash>(&self, value: T) -> u64 {
        self.hasher.hash_one(value)
    }

    /// Forgets keys whose buckets are full again (idle clients); one caller does it.
    fn sweep_if_due(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= SWEEP_EVERY.as_millis() as u64;
        if due
            && self
                .last_sweep_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.keyed.retain_recent();
            self.keyed.shrink_to_fit();
        }
    }

    pub fn tracked_keys(&self) -> usize {
        self.keyed.len()
    }
}

/// IPv4 clients seen over IPv6 sockets count as their IPv4 address.
fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
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
    fn the_key_table_is_bounded() {
        let l = limit("remote_address", 10);
        for i in 0..1000 {
            let _ = l.check(&request(&format!("10.0.{}.{}:1", i / 256, i % 256), None));
        }
        assert!(l.tracked_keys() <= 10, "{}", l.tracked_keys());
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
