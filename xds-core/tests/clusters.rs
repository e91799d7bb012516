//! Clusters and endpoints: Istio's output converts (37 assignments, EDS clusters with their
//! circuit breakers and outlier settings), hand-written resources cover every policy and field,
//! and the load balancer honours priorities, weights, health, localities and ejection.

use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::cluster::v3::Cluster as WireCluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use serde_json::{json, Value as Json};
use xds_core::json::{config_dump_resources, decode, parse_text};
use xds_core::lb::{EndpointState, LoadBalancer, Outliers, Stateless};
use xds_core::model::{Cluster, Discovery, Endpoints, Health, LbPolicy, OutlierDetection};
use xds_core::Error;

const CLA: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

fn fixture(name: &str) -> Json {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    parse_text(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .expect("parse")
}

fn endpoints(json: Json) -> Result<Endpoints, Error> {
    Endpoints::try_from(&decode::<ClusterLoadAssignment>(CLA, &json)?)
}

fn cluster(json: Json) -> Result<Cluster, Error> {
    Cluster::try_from(&decode::<WireCluster>(CLUSTER, &json)?)
}

#[test]
fn istio_endpoints_and_clusters_convert() {
    let dump = fixture("istio-sidecar-eds-configdump.json");
    let all: Vec<Endpoints> = config_dump_resources(&dump)
        .into_iter()
        .filter(|(t, _)| t == CLA)
        .map(|(t, j)| {
            Endpoints::try_from(&decode::<ClusterLoadAssignment>(&t, &j).expect("decode"))
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    assert_eq!(all.len(), 37);
    let reviews = all
        .iter()
        .find(|e| e.cluster_name == "outbound|9080||reviews.default.svc.cluster.local")
        .expect("reviews");
    assert_eq!(reviews.overprovisioning_factor, 140);
    assert_eq!(reviews.localities.len(), 1);
    assert_eq!(reviews.localities[0].weight, Some(3));
    let addrs: Vec<String> = reviews
        .all()
        .map(|e| format!("{}:{}", e.address.host, e.address.port))
        .collect();
    assert_eq!(
        addrs,
        [
            "10.244.0.192:9080",
            "10.244.0.193:9080",
            "10.244.0.195:9080"
        ]
    );
    assert!(reviews
        .all()
        .all(|e| e.health == Health::Healthy && e.weight == 1));

    let mut clusters = 0;
    for file in [
        "istio-describe-http_config.json",
        "istio-waypoint-config_dump.json",
        "istio-waypoint-compare-configdump.json",
    ] {
        for (t, j) in config_dump_resources(&fixture(file))
            .into_iter()
            .filter(|(t, _)| t == CLUSTER)
        {
            let c = Cluster::try_from(&decode::<WireCluster>(&t, &j).expect("decode"))
                .unwrap_or_else(|e| panic!("{e}"));
            clusters += 1;
            if c.name == "outbound|9080|v1|productpage.default.svc.cluster.local" {
                assert_eq!(
                    c.discovery,
                    Discovery::Eds {
                        service_name: c.name.clone()
                    }
                );
            }
        }
    }
    assert!(clusters >= 3, "{clusters}");
}

#[test]
fn cluster_fields_and_refusals() {
    let c = cluster(json!({
        "name": "users", "type": "EDS", "eds_cluster_config": {"service_name": "users-eds", "eds_config": {"ads": {}}},
        "lb_policy": "LEAST_REQUEST", "least_request_lb_config": {"choice_count": 3},
        "connect_timeout": "0.25s",
        "circuit_breakers": {"thresholds": [{"max_requests": 50, "max_pending_requests": 10}]},
        "outlier_detection": {"consecutive_5xx": 3, "base_ejection_time": "5s", "max_ejection_percent": 50},
        "metadata": {"filter_metadata": {"dubbo": {"protocol": "tri"}}}
    }))
    .expect("valid");
    assert_eq!(
        c.discovery,
        Discovery::Eds {
            service_name: "users-eds".into()
        }
    );
    assert_eq!(c.lb_policy, LbPolicy::LeastRequest { choice_count: 3 });
    assert_eq!(c.connect_timeout, Duration::from_millis(250));
    assert_eq!(
        (
            c.thresholds.max_requests,
            c.thresholds.max_pending_requests,
            c.thresholds.max_connections
        ),
        (50, 10, 1024)
    );
    let o = c.outlier_detection.expect("outlier");
    assert_eq!(
        (
            o.consecutive_5xx,
            o.base_ejection_time,
            o.max_ejection_percent
        ),
        (3, Duration::from_secs(5), 50)
    );
    assert_eq!(c.protocol.as_deref(), Some("tri"));

    let s = cluster(json!({"name": "s", "type": "STATIC", "lb_policy": "RING_HASH", "load_assignment": {"cluster_name": "s", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 20880}}}}]}]}}))
        .expect("static");
    assert!(matches!(s.lb_policy, LbPolicy::RingHash { .. }));
    assert_eq!(s.load_assignment.expect("endpoints").all().count(), 1);

    // Valid Istio shapes: an empty STATIC cluster (BlackHoleCluster), ORIGINAL_DST with
    // CLUSTER_PROVIDED (PassthroughCluster).
    cluster(json!({"name": "BlackHoleCluster", "type": "STATIC"})).expect("empty static");
    let passthrough = cluster(json!({"name": "PassthroughCluster", "type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED"})).expect("original dst");
    assert_eq!(passthrough.discovery, Discovery::OriginalDst);
    for (json, needle) in [
        (
            json!({"name": "a", "type": "STRICT_DNS"}),
            "needs endpoints",
        ),
        (
            json!({"name": "b", "type": "STATIC", "load_assignment": {"cluster_name": "b", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "db.local", "port_value": 1}}}}]}]}}),
            "IP addresses",
        ),
        (
            json!({"name": "c", "type": "EDS", "lb_policy": "RING_HASH", "ring_hash_lb_config": {"minimum_ring_size": 10, "maximum_ring_size": 5}}),
            "not a range",
        ),
        (json!({"name": "", "type": "EDS"}), "needs a name"),
    ] {
        let err = cluster(json.clone()).expect_err(&json.to_string());
        assert!(err.to_string().contains(needle), "{err} / {needle}");
    }
}

#[test]
fn endpoint_fields_and_refusals() {
    let e = endpoints(json!({"cluster_name": "shop", "endpoints": [
        {"locality": {"region": "eu", "zone": "a"}, "load_balancing_weight": 2, "lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 20880}}},
             "health_status": "DRAINING", "load_balancing_weight": 5,
             "metadata": {"filter_metadata": {"dubbo": {"application": "shop", "revision": "abc", "metadata_port": 20881}}}}]},
        {"priority": 1, "lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "10.0.0.2", "port_value": 20880}}}, "health_status": "DEGRADED"}]}
    ]}))
    .expect("valid");
    let first = e.all().next().expect("one");
    assert_eq!((first.health, first.weight), (Health::Unhealthy, 5));
    let dubbo = first.dubbo.as_ref().expect("dubbo");
    assert_eq!(
        (
            dubbo.application.as_str(),
            dubbo.revision.as_deref(),
            dubbo.metadata_port
        ),
        ("shop", Some("abc"), Some(20881))
    );
    assert_eq!(e.localities[1].priority, 1);
    assert_eq!(e.all().nth(1).map(|e| e.health), Some(Health::Degraded));

    for (json, needle) in [
        (
            json!({"cluster_name": "gap", "endpoints": [{"priority": 1, "lb_endpoints": []}]}),
            "not contiguous",
        ),
        (
            json!({"cluster_name": "port", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 70000}}}}]}]}),
            "out of range",
        ),
        (
            json!({"cluster_name": "pipe", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"pipe": {"path": ""}}}}]}]}),
            "needs a path",
        ),
        (
            json!({"cluster_name": "app", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 1}}}, "metadata": {"filter_metadata": {"dubbo": {"revision": "x"}}}}]}]}),
            "`application`",
        ),
    ] {
        let err = endpoints(json.clone()).expect_err(&json.to_string());
        let name = json["cluster_name"].as_str().unwrap_or_default();
        assert!(
            err.to_string().contains(needle) && err.to_string().contains(&format!("{name:?}")),
            "{err} / {needle}"
        );
    }
}

fn lb_endpoint(ip: &str, health: &str, weight: u32) -> Json {
    json!({"endpoint": {"address": {"socket_address": {"address": ip, "port_value": 20880}}}, "health_status": health, "load_balancing_weight": weight})
}

fn counts(
    lb: &LoadBalancer,
    n: usize,
    hash: impl Fn(usize) -> Option<u64>,
    state: &impl EndpointState,
) -> Vec<usize> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut counts = vec![0; lb.endpoints().len()];
    for i in 0..n {
        counts[lb.pick(&mut rng, hash(i), state).expect("picked")] += 1;
    }
    counts
}

#[test]
fn weights_health_and_policies() {
    let e = endpoints(json!({"cluster_name": "w", "endpoints": [{"lb_endpoints": [
        lb_endpoint("10.0.0.1", "HEALTHY", 1), lb_endpoint("10.0.0.2", "HEALTHY", 3), lb_endpoint("10.0.0.3", "UNHEALTHY", 1)
    ]}]}))
    .expect("valid");
    for policy in [
        LbPolicy::RoundRobin,
        LbPolicy::Random,
        LbPolicy::LeastRequest { choice_count: 2 },
    ] {
        let c = counts(&LoadBalancer::new(policy, &e), 4000, |_| None, &Stateless);
        assert_eq!(c[2], 0, "{policy:?}: unhealthy endpoints get nothing");
        let ratio = c[1] as f64 / c[0] as f64;
        assert!(
            (2.5..3.5).contains(&ratio),
            "{policy:?}: weights 1:3 gave {c:?}"
        );
    }
    // Equal weights, round robin: exact alternation.
    let even = endpoints(json!({"cluster_name": "e", "endpoints": [{"lb_endpoints": [lb_endpoint("10.0.0.1", "HEALTHY", 1), lb_endpoint("10.0.0.2", "HEALTHY", 1)]}]})).expect("valid");
    assert_eq!(
        counts(
            &LoadBalancer::new(LbPolicy::RoundRobin, &even),
            10,
            |_| None,
            &Stateless
        ),
        [5, 5]
    );

    // Least request prefers the idle endpoint.
    struct Busy;
    impl EndpointState for Busy {
        fn ejected(&self, _: usize) -> bool {
            false
        }
        fn active_requests(&self, i: usize) -> usize {
            if i == 0 {
                100
            } else {
                0
            }
        }
    }
    let c = counts(
        &LoadBalancer::new(LbPolicy::LeastRequest { choice_count: 2 }, &even),
        1000,
        |_| None,
        &Busy,
    );
    assert!(c[1] > 700, "{c:?}");

    // Consistent hashing: a key always lands on the same endpoint; removing another endpoint
    // does not move it.
    let three = endpoints(json!({"cluster_name": "h", "endpoints": [{"lb_endpoints": [lb_endpoint("10.0.0.1", "HEALTHY", 1), lb_endpoint("10.0.0.2", "HEALTHY", 1), lb_endpoint("10.0.0.3", "HEALTHY", 1)]}]})).expect("valid");
    let ring = LoadBalancer::new(
        LbPolicy::RingHash {
            minimum_ring_size: 1024,
            maximum_ring_size: 8 << 20,
        },
        &three,
    );
    let mut rng = fastrand::Rng::with_seed(1);
    let spread = counts(&ring, 3000, |i| Some(i as u64 * 7919), &Stateless);
    assert!(spread.iter().all(|c| *c > 800), "{spread:?}");
    struct Gone(usize);
    impl EndpointState for Gone {
        fn ejected(&self, i: usize) -> bool {
            i == self.0
        }
        fn active_requests(&self, _: usize) -> usize {
            0
        }
    }
    for key in 0..200u64 {
        let before = ring.pick(&mut rng, Some(key), &Stateless).expect("pick");
        assert_eq!(ring.pick(&mut rng, Some(key), &Stateless), Some(before));
        let other = (before + 1) % 3;
        assert_eq!(
            ring.pick(&mut rng, Some(key), &Gone(other)),
            Some(before),
            "key {key} moved"
        );
    }
}

#[test]
fn priorities_spill_over_by_health_and_localities_by_weight() {
    // P0: 1 of 2 healthy → health 140 × 1/2 = 70%; P1 takes the remaining 30%.
    let e = endpoints(json!({"cluster_name": "p", "endpoints": [
        {"lb_endpoints": [lb_endpoint("10.0.0.1", "HEALTHY", 1), lb_endpoint("10.0.0.2", "UNHEALTHY", 1)]},
        {"priority": 1, "lb_endpoints": [lb_endpoint("10.0.1.1", "HEALTHY", 1)]}
    ]}))
    .expect("valid");
    let c = counts(
        &LoadBalancer::new(LbPolicy::Random, &e),
        10_000,
        |_| None,
        &Stateless,
    );
    assert_eq!(c[1], 0);
    let p1 = c[2] as f64 / 10_000.0;
    assert!((0.27..0.33).contains(&p1), "{c:?}");

    // Nothing healthy anywhere: panic mode still answers from the first priority.
    let dead = endpoints(json!({"cluster_name": "d", "endpoints": [{"lb_endpoints": [lb_endpoint("10.0.0.1", "UNHEALTHY", 1)]}]})).expect("valid");
    assert_eq!(
        counts(
            &LoadBalancer::new(LbPolicy::Random, &dead),
            10,
            |_| None,
            &Stateless
        ),
        [10]
    );

    // Locality weights 1:3 split traffic between localities of equal size.
    let l = endpoints(json!({"cluster_name": "l", "endpoints": [
        {"locality": {"zone": "a"}, "load_balancing_weight": 1, "lb_endpoints": [lb_endpoint("10.0.0.1", "HEALTHY", 1)]},
        {"locality": {"zone": "b"}, "load_balancing_weight": 3, "lb_endpoints": [lb_endpoint("10.0.0.2", "HEALTHY", 1)]}
    ]}))
    .expect("valid");
    let c = counts(
        &LoadBalancer::new(LbPolicy::RoundRobin, &l),
        4000,
        |_| None,
        &Stateless,
    );
    let ratio = c[1] as f64 / c[0] as f64;
    assert!((2.5..3.5).contains(&ratio), "{c:?}");
}

#[test]
fn outlier_detection_ejects_and_brings_back() {
    let config = OutlierDetection {
        consecutive_5xx: 3,
        interval: Duration::from_secs(10),
        base_ejection_time: Duration::from_secs(30),
        max_ejection_percent: 50,
    };
    let outliers = Outliers::new(config, 4);
    let t0 = Instant::now();
    outliers.record(0, false, t0);
    outliers.record(0, false, t0);
    outliers.record(0, true, t0); // a success resets the streak
    outliers.record(0, false, t0);
    outliers.record(0, false, t0);
    assert!(!outliers.is_ejected(0, t0));
    outliers.record(0, false, t0);
    assert!(outliers.is_ejected(0, t0));
    assert!(
        !outliers.is_ejected(0, t0 + Duration::from_secs(31)),
        "back after base_ejection_time"
    );
    // At most 50% of 4 endpoints at once.
    for i in 1..4 {
        for _ in 0..3 {
            outliers.record(i, false, t0);
        }
    }
    let ejected = (0..4).filter(|i| outliers.is_ejected(*i, t0)).count();
    assert_eq!(ejected, 2);
    // A second ejection lasts twice as long.
    let t1 = t0 + Duration::from_secs(40);
    for _ in 0..3 {
        outliers.record(0, false, t1);
    }
    assert!(outliers.is_ejected(0, t1 + Duration::from_secs(59)));
    assert!(!outliers.is_ejected(0, t1 + Duration::from_secs(61)));
}

#[test]
fn outlier_records_carry_over_to_a_new_endpoint_list() {
    let config = OutlierDetection {
        consecutive_5xx: 2,
        interval: Duration::from_secs(10),
        base_ejection_time: Duration::from_secs(30),
        max_ejection_percent: 100,
    };
    let t0 = Instant::now();
    let old = Outliers::new(config, 3);
    old.record(1, false, t0);
    old.record(1, false, t0); // ejected
    old.record(2, false, t0); // one failure in a run
                              // The update drops endpoint 0 and puts the others first, then adds one.
    let new = Outliers::new(config, 3);
    new.inherit(&old, |i| [Some(1), Some(2), None][i]);
    assert!(new.is_ejected(0, t0), "still ejected after the update");
    assert!(!new.is_ejected(1, t0));
    new.record(1, false, t0);
    assert!(new.is_ejected(1, t0), "its run of failures went on");
    assert!(!new.is_ejected(2, t0), "a new endpoint starts clean");
}
