//! Picking an endpoint of a cluster: priorities with Envoy's overprovisioning arithmetic,
//! locality weights, endpoint weights, health, outlier ejection, and the cluster's policy.
//!
//! Ring hash and Maglev are both served by weighted rendezvous hashing: the same key keeps
//! reaching the same endpoint, and adding or removing an endpoint moves only the keys that
//! belonged to it — the properties callers rely on — without building a ring or table per
//! update.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::{Endpoint, Endpoints, Health, LbPolicy, OutlierDetection};

/// A cluster's endpoints, arranged for picking. Cheap to rebuild on every EDS update.
#[derive(Debug)]
pub struct LoadBalancer {
    policy: LbPolicy,
    endpoints: Vec<Endpoint>,
    /// Per priority, its localities: (weight, endpoint indices).
    priorities: Vec<Vec<(Option<u32>, Vec<usize>)>>,
    overprovisioning: u64,
    next: AtomicUsize,
}

/// Overall health (percent, after overprovisioning) below which health is disregarded.
const PANIC_THRESHOLD: u64 = 50;

/// What the balancer asks of the caller about live endpoints.
pub trait EndpointState {
    /// Ejected by outlier detection (or otherwise unusable for now).
    fn ejected(&self, index: usize) -> bool;
    /// Requests in flight, for least-request.
    fn active_requests(&self, index: usize) -> usize;
}

/// No ejections, no load: for callers that track nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stateless;

impl EndpointState for Stateless {
    fn ejected(&self, _: usize) -> bool {
        false
    }
    fn active_requests(&self, _: usize) -> usize {
        0
    }
}

impl LoadBalancer {
    pub fn new(policy: LbPolicy, assignment: &Endpoints) -> Self {
        let mut endpoints = Vec::new();
        let levels = assignment
            .localities
            .iter()
            .map(|l| l.priority as usize + 1)
            .max()
            .unwrap_or(0);
        let mut priorities: Vec<Vec<(Option<u32>, Vec<usize>)>> = vec![Vec::new(); levels];
        for locality in &assignment.localities {
            let start = endpoints.len();
            endpoints.extend(locality.endpoints.iter().cloned());
            priorities[locality.priority as usize]
                .push((locality.weight, (start..endpoints.len()).collect()));
        }
        LoadBalancer {
            policy,
            endpoints,
            priorities,
            overprovisioning: u64::from(assignment.overprovisioning_factor),
            next: AtomicUsize::new(0),
        }
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The index of the endpoint for one request. `hash` is the request's hash for ring hash
    /// and Maglev (from the route's hash policy); `None` picks at random.
    pub fn pick(
        &self,
        rng: &mut fastrand::Rng,
        hash: Option<u64>,
        state: &impl EndpointState,
    ) -> Option<usize> {
        // With a hash, the priority and locality rolls come from it too, so a key stays on one
        // endpoint across priorities and weighted localities.
        let mut seeded;
        let rng = match hash {
            Some(h) => {
                seeded = fastrand::Rng::with_seed(h);
                &mut seeded
            }
            None => rng,
        };
        let usable = |i: &usize| self.endpoints[*i].health == Health::Healthy && !state.ejected(*i);
        // Each priority's health in percent, scaled by the overprovisioning factor.
        let health: Vec<u64> = self
            .priorities
            .iter()
            .map(|localities| {
                let all: Vec<usize> = localities
                    .iter()
                    .flat_map(|l| l.1.iter().copied())
                    .collect();
                if all.is_empty() {
                    return 0;
                }
                let up = all.iter().filter(|i| usable(i)).count() as u64;
                (self.overprovisioning * up / all.len() as u64).min(100)
            })
            .collect();
        let total: u64 = health.iter().sum::<u64>().min(100);
        let priority = if total == 0 {
            // Nothing healthy anywhere: panic mode on the first priority with endpoints.
            self.priorities
                .iter()
                .position(|p| p.iter().any(|l| !l.1.is_empty()))?
        } else {
            // Envoy's priority load: each level takes its normalized health, in order.
            let roll = rng.u64(..100);
            let mut remaining = 100u64;
            let mut cumulative = 0u64;
            let mut chosen = None;
            for (p, h) in health.iter().enumerate() {
                let load = (h * 100).checked_div(total).unwrap_or(0).min(remaining);
                remaining -= load;
                cumulative += load;
                if roll < cumulative {
                    chosen = Some(p);
                    break;
                }
            }
            chosen.or_else(|| health.iter().position(|h| *h > 0))?
        };
        let localities = &self.priorities[priority];
        // Localities by weight (scaled by their share of usable endpoints), when weighted.
        let candidates: Vec<usize> = if localities.iter().any(|l| l.0.is_some()) {
            let effective: Vec<u64> = localities
                .iter()
                .map(|(w, members)| {
                    let up = members.iter().filter(|i| usable(i)).count() as u64;
                    let scaled = u128::from(w.unwrap_or(0)) * u128::from(up) * 1000
                        / (members.len().max(1) as u128);
                    u64::try_from(scaled).unwrap_or(u64::MAX / 1024)
                })
                .collect();
            let sum: u64 = effective.iter().sum();
            if sum == 0 {
                localities
                    .iter()
                    .flat_map(|l| l.1.iter().copied())
                    .collect()
            } else {
                let mut roll = rng.u64(..sum);
                let index = effective
                    .iter()
                    .position(|w| {
                        if roll < *w {
                            true
                        } else {
                            roll -= w;
                            false
                        }
                    })
                    .unwrap_or(0);
                localities[index].1.clone()
            }
        } else {
            localities
                .iter()
                .flat_map(|l| l.1.iter().copied())
                .collect()
        };
        // Below Envoy's default panic threshold (50% healthy overall), health is disregarded:
        // better to spread over everything than to crush the few healthy endpoints.
        let panic = total < PANIC_THRESHOLD;
        let up: Vec<usize> = if panic {
            candidates.clone()
        } else {
            candidates.iter().copied().filter(|i| usable(i)).collect()
        };
        // Degraded endpoints before unusable ones; everything when nothing else is left.
        let pool = if !up.is_empty() {
            up
        } else {
            let degraded: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|i| self.endpoints[*i].health == Health::Degraded && !state.ejected(*i))
                .collect();
            if degraded.is_empty() {
                candidates
            } else {
                degraded
            }
        };
        self.choose(&pool, rng, hash, state)
    }

    fn choose(
        &self,
        pool: &[usize],
        rng: &mut fastrand::Rng,
        hash: Option<u64>,
        state: &impl EndpointState,
    ) -> Option<usize> {
        if pool.is_empty() {
            return None;
        }
        let weight = |i: usize| u64::from(self.endpoints[i].weight);
        let equal = pool.iter().all(|i| weight(*i) == weight(pool[0]));
        let weighted_random = |rng: &mut fastrand::Rng| {
            let sum: u64 = pool.iter().map(|i| weight(*i)).sum();
            let mut roll = rng.u64(..sum.max(1));
            for i in pool {
                if roll < weight(*i) {
                    return *i;
                }
                roll -= weight(*i);
            }
            pool[pool.len() - 1]
        };
        Some(match self.policy {
            LbPolicy::RoundRobin if equal => {
                pool[self.next.fetch_add(1, Ordering::Relaxed) % pool.len()]
            }
            LbPolicy::RoundRobin | LbPolicy::Random => weighted_random(rng),
            LbPolicy::LeastRequest { choice_count } => {
                let mut best = weighted_random(rng);
                for _ in 1..choice_count.max(2) {
                    let other = weighted_random(rng);
                    if state.active_requests(other) < state.active_requests(best) {
                        best = other;
                    }
                }
                best
            }
            LbPolicy::RingHash { .. } | LbPolicy::Maglev { .. } => match hash {
                Some(key) => rendezvous(pool, key, |i| weight(i).max(1), |i| &self.endpoints[i]),
                None => weighted_random(rng),
            },
        })
    }
}

/// Weighted rendezvous hashing: the endpoint with the highest `weight / -ln(u)`, `u` a uniform
/// number derived from (key, endpoint address).
fn rendezvous<'e>(
    pool: &[usize],
    key: u64,
    weight: impl Fn(usize) -> u64,
    endpoint: impl Fn(usize) -> &'e Endpoint,
) -> usize {
    let mut best = (f64::NEG_INFINITY, pool[0]);
    for &i in pool {
        let e = endpoint(i);
        let h = mix(key ^ fnv(e.address.host.as_bytes()) ^ (u64::from(e.address.port) << 48));
        // In (0, 1): never 0, so the logarithm is finite.
        let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let score = weight(i) as f64 / -u.ln();
        if score > best.0 {
            best = (score, i);
        }
    }
    best.1
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// SplitMix64's finalizer: spreads nearby inputs over the whole range.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Consecutive-failure outlier detection for one cluster: an endpoint failing
/// `consecutive_5xx` times in a row is ejected for `base_ejection_time` × the number of times
/// it has been ejected, never more than `max_ejection_percent` of the endpoints at once (at
/// least one may always be ejected, as in Envoy).
#[derive(Debug)]
pub struct Outliers {
    config: OutlierDetection,
    hosts: Mutex<Vec<HostRecord>>,
}

#[derive(Debug, Clone, Default)]
struct HostRecord {
    consecutive_failures: u32,
    ejections: u32,
    ejected_until: Option<Instant>,
}

impl Outliers {
    pub fn new(config: OutlierDetection, endpoints: usize) -> Self {
        Outliers {
            config,
            hosts: Mutex::new(vec![HostRecord::default(); endpoints]),
        }
    }

    /// Records a call's outcome on endpoint `index` (`ok` false for 5xx-like failures).
    pub fn record(&self, index: usize, ok: bool, now: Instant) {
        let Ok(mut hosts) = self.hosts.lock() else {
            return;
        };
        let total = hosts.len();
        let ejected_now = hosts
            .iter()
            .filter(|h| h.ejected_until.is_some_and(|t| t > now))
            .count();
        let Some(host) = hosts.get_mut(index) else {
            return;
        };
        if ok {
            host.consecutive_failures = 0;
            return;
        }
        host.consecutive_failures += 1;
        let limit = (total * self.config.max_ejection_percent as usize / 100).max(1);
        let already = host.ejected_until.is_some_and(|t| t > now);
        if host.consecutive_failures >= self.config.consecutive_5xx
            && !already
            && ejected_now < limit
        {
            host.ejections += 1;
            host.consecutive_failures = 0;
            let time = self.config.base_ejection_time * host.ejections;
            host.ejected_until =
                Some(now + time.min(Duration::from_secs(300).max(self.config.base_ejection_time)));
        }
    }

    /// Takes over what `from` knows of the endpoints that carry on: `old_index(i)` is endpoint
    /// `i`'s index in `from`, if it was there. An update to a cluster's endpoints then neither
    /// lets an ejected endpoint back early nor forgets a run of failures.
    pub fn inherit(&self, from: &Outliers, old_index: impl Fn(usize) -> Option<usize>) {
        let (Ok(mut hosts), Ok(old)) = (self.hosts.lock(), from.hosts.lock()) else {
            return;
        };
        for (i, host) in hosts.iter_mut().enumerate() {
            if let Some(record) = old_index(i).and_then(|j| old.get(j)) {
                *host = record.clone();
            }
        }
    }

    pub fn is_ejected(&self, index: usize, now: Instant) -> bool {
        self.hosts
            .lock()
            .ok()
            .and_then(|h| h.get(index).and_then(|h| h.ejected_until))
            .is_some_and(|t| t > now)
    }
}
