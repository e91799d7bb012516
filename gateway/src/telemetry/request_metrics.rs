//! Requests and their durations by route, cluster and status class, counted with no write
//! shared between threads. Each thread has its own cells — plain atomics only it writes —
//! found through a thread-local cache keyed by the route and cluster names (by content: xDS
//! routing makes a fresh label per request); a scrape sums every thread's cells. (A shared histogram takes a lock on every observation,
//! and shared counters bounce their cache line between cores on every request.)

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::metrics::{Class, Name, RequestLabels};
use super::Tags;

/// Upper bounds of the duration buckets, seconds: 0.5 ms doubling to about 16 s.
const BOUNDS: [f64; 16] = {
    let mut bounds = [0.0005; 16];
    let mut i = 1;
    while i < 16 {
        bounds[i] = bounds[i - 1] * 2.0;
        i += 1;
    }
    bounds
};

/// Sums of one label set: count, seconds, observations per bucket.
type Totals = (u64, f64, [u64; 17]);
/// A label set as text: route, cluster, status class.
type LabelText = (String, String, u16);

/// The most cache entries a thread keeps before starting afresh (names replaced by reloads
/// would otherwise pile up).
const CACHE_LIMIT: usize = 4096;

/// One thread's counts for one label set.
#[derive(Debug, Default)]
struct Cell {
    sum_nanos: AtomicU64,
    /// Observations per bucket (not cumulative); the last is above every bound.
    buckets: [AtomicU64; 17],
}

impl Cell {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BOUNDS.iter().position(|b| seconds <= *b).unwrap_or(16);
        // Only this thread writes: a relaxed add is a plain add here.
        self.sum_nanos.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }
}

/// Every thread's cells, by the thread that owns them.
#[derive(Debug)]
pub struct RequestMetrics {
    /// Tells instances apart in the thread-local caches (never reused).
    id: u64,
    cells: Mutex<HashMap<(std::thread::ThreadId, RequestLabels), Arc<Cell>>>,
}

/// A thread's cache key: the instance, a hash of the names, the class.
type Key = (u64, u64, u16);
/// The names, to tell a hash collision from a hit.
type Cached = (Name, Name, Arc<Cell>);

thread_local! {
    static CACHE: RefCell<HashMap<Key, Cached>> = RefCell::new(HashMap::new());
}

fn hash(route: Option<&str>, cluster: Option<&str>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    route.hash(&mut hasher);
    cluster.hash(&mut hasher);
    hasher.finish()
}

impl RequestMetrics {
    pub fn new() -> Arc<RequestMetrics> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Arc::new(RequestMetrics {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            cells: Mutex::new(HashMap::new()),
        })
    }

    /// Counts one answered request.
    pub fn observe(&self, tags: &Tags, status: u16, elapsed: Duration) {
        // The names are compared, not cloned: cloning an `Arc` every worker shares would
        // bounce its count between cores on every request.
        let (route, cluster) = (tags.route.as_deref(), tags.cluster.as_deref());
        let key = (self.id, hash(route, cluster), status / 100);
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some((r, c, cell)) = cache.get(&key) {
                if r.0.as_deref() == route && c.0.as_deref() == cluster {
                    return cell.observe(elapsed);
                }
            }
            let route = Name(tags.route.clone());
            let cluster = Name(tags.cluster.clone());
            let class = Class::of(status);
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            let labels = RequestLabels {
                route: route.clone(),
                cluster: cluster.clone(),
                code: class,
            };
            let cell = self.cell(labels);
            cell.observe(elapsed);
            cache.insert(key, (route, cluster, cell));
        });
    }

    /// This thread's cell for `labels`, made on first use.
    fn cell(&self, labels: RequestLabels) -> Arc<Cell> {
        let me = std::thread::current().id();
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(cells.entry((me, labels)).or_default())
    }

    /// Every label set's sums over all threads: count, sum of seconds, buckets.
    fn totals(&self) -> BTreeMap<LabelText, Totals> {
        let cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        let mut totals: BTreeMap<LabelText, Totals> = BTreeMap::new();
        for ((_, labels), cell) in cells.iter() {
            let key = (
                labels.route.0.as_deref().unwrap_or("").to_owned(),
                labels.cluster.0.as_deref().unwrap_or("").to_owned(),
                labels.code.0,
            );
            let entry = totals.entry(key).or_insert((0, 0.0, [0; 17]));
            entry.1 += cell.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            for (sum, bucket) in entry.2.iter_mut().zip(&cell.buckets) {
                *sum += bucket.load(Ordering::Relaxed);
            }
            // The count is the buckets' sum: a scrape racing an observation still shows
            // `_count` equal to the `+Inf` bucket.
            entry.0 = entry.2.iter().sum();
        }
        totals
    }
}

impl Collector for RequestMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals = self.totals();
        let labels_of = |(route, cluster, code): &LabelText| RequestLabels {
            route: Name(Some(Arc::from(route.as_str()))),
            cluster: Name(Some(Arc::from(cluster.as_str()))),
            code: Class(*code),
        };
        let mut counters = encoder.encode_descriptor(
            "gateway_requests",
            "Requests answered, by route, cluster and HTTP status class",
            None,
            MetricType::Counter,
        )?;
        for (key, (count, _, _)) in &totals {
            counters
                .encode_family(&labels_of(key))?
                .encode_counter::<NoLabelSet, _, u64>(count, None)?;
        }
        let mut histograms = encoder.encode_descriptor(
            "gateway_request_duration_seconds",
            "Time from request head to response head, by route, cluster and status class",
            None,
            MetricType::Histogram,
        )?;
        for (key, (count, sum, buckets)) in &totals {
            let bounds: Vec<(f64, u64)> = BOUNDS
                .iter()
                .copied()
                .chain(std::iter::once(f64::INFINITY))
                .zip(buckets.iter().copied())
                .collect();
            histograms
                .encode_family(&labels_of(key))?
                .encode_histogram::<NoLabelSet>(*sum, *count, &bounds, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn threads_count_apart_and_scrapes_add_them_up() {
        let metrics = RequestMetrics::new();
        let route: Arc<str> = Arc::from("/r");
        let tags = Tags {
            route: Some(Arc::clone(&route)),
            ..Tags::default()
        };
        metrics.observe(&tags, 200, Duration::from_micros(300));
        metrics.observe(&tags, 201, Duration::from_millis(3));
        let other = Arc::clone(&metrics);
        let tags2 = tags.clone();
        std::thread::spawn(move || other.observe(&tags2, 204, Duration::from_secs(100)))
            .join()
            .unwrap();
        // The same name under a new Arc (a reload) lands on the same label set.
        let reloaded = Tags {
            route: Some(Arc::from("/r")),
            ..Tags::default()
        };
        metrics.observe(&reloaded, 500, Duration::from_millis(1));
        let totals = metrics.totals();
        let ok = &totals[&("/r".to_owned(), String::new(), 2)];
        assert_eq!(ok.0, 3, "three 2xx from two threads");
        assert_eq!(ok.2[0], 1, "0.3 ms in the first bucket");
        assert_eq!(ok.2[3], 1, "3 ms under 4 ms");
        assert_eq!(ok.2[16], 1, "100 s above every bound");
        assert!((ok.1 - 100.0033).abs() < 1e-6);
        assert_eq!(totals[&("/r".to_owned(), String::new(), 5)].0, 1);
        assert_eq!(
            metrics.cells.lock().unwrap().len(),
            3,
            "cells per thread and label set"
        );
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Arc::clone(&metrics)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let counter = r#"gateway_requests_total{route="/r",cluster="",code="2xx"} 3"#;
        assert!(text.contains(counter), "{text}");
        let inf = r#"gateway_request_duration_seconds_bucket{le="+Inf",route="/r",cluster="",code="2xx"} 3"#;
        assert!(text.contains(inf), "{text}");
    }
}
