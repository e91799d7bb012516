//! Route configurations: Istio's real output converts without rejecting anything valid and
//! routes as Envoy would; every matcher, domain rule and action on hand-written resources; and
//! invalid resources refused with a reason naming the field.

use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use serde_json::{json, Value as Json};
use xds_core::json::{config_dump_resources, decode, parse_text};
use xds_core::model::{Action, ClusterChoice, RouteConfig};
use xds_core::router::Request;
use xds_core::Error;

const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

fn fixture(name: &str) -> Json {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    parse_text(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .expect("parse")
}

fn route_configs(dump: &Json) -> Vec<RouteConfig> {
    config_dump_resources(dump)
        .into_iter()
        .filter(|(t, _)| t == ROUTE_TYPE)
        .map(|(t, json)| {
            let wire: RouteConfiguration = decode(&t, &json).expect("decodes");
            RouteConfig::try_from(&wire).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

fn config(json: Json) -> Result<RouteConfig, Error> {
    let wire: RouteConfiguration = decode(ROUTE_TYPE, &json)?;
    RouteConfig::try_from(&wire)
}

fn request<'a>(authority: &'a str, path: &'a str, headers: &'a http::HeaderMap) -> Request<'a> {
    Request {
        method: "GET",
        authority,
        path,
        headers,
        random: 0,
    }
}

fn cluster_of(
    rc: &RouteConfig,
    authority: &str,
    path: &str,
    headers: &http::HeaderMap,
) -> Option<String> {
    let decision = rc.route(&request(authority, path, headers))?;
    match &decision.route.action {
        Action::Forward(f) => f.pick_cluster(headers, 0).map(str::to_owned),
        other => Some(format!("{other:?}")),
    }
}

#[test]
fn every_istio_route_configuration_converts() {
    let mut total = 0;
    for file in [
        "istio-describe-http_config.json",
        "istio-describe-tls_config.json",
        "istio-gateway-http-route-prefix-configdump.json",
        "istio-k8s-gateway-http-route-path-prefix-configdump.json",
        "istio-waypoint-config_dump.json",
        "istio-waypoint-compare-configdump.json",
    ] {
        total += route_configs(&fixture(file)).len();
    }
    assert_eq!(total, 1 + 1 + 3 + 3 + 1 + 1);
}

#[test]
fn istio_ingress_routes_route_like_envoy() {
    let configs = route_configs(&fixture("istio-describe-http_config.json"));
    let rc = &configs[0];
    assert_eq!(rc.name, "http.8080");
    let none = http::HeaderMap::new();
    let productpage = Some("outbound|9080||productpage.default.svc.cluster.local".to_owned());
    for path in [
        "/productpage",
        "/static/css/x.css",
        "/login",
        "/logout?next=/",
        "/api/v1/products/1",
    ] {
        assert_eq!(
            cluster_of(rc, "bookinfo.example.com", path, &none),
            productpage,
            "{path}"
        );
    }
    for path in ["/productpage/x", "/loginx", "/api/v2", "/"] {
        assert_eq!(
            cluster_of(rc, "bookinfo.example.com", path, &none),
            None,
            "{path}"
        );
    }

    // Kubernetes Gateway API: path_separated_prefix, and an exact domain.
    let configs = route_configs(&fixture(
        "istio-k8s-gateway-http-route-path-prefix-configdump.json",
    ));
    let rc = configs
        .iter()
        .find(|c| c.name == "http.80")
        .expect("http.80");
    let httpbin = Some("outbound|8000||httpbin.default.svc.cluster.local".to_owned());
    for path in ["/get", "/get/anything", "/get?x=1"] {
        assert_eq!(
            cluster_of(rc, "httpbin.example.com", path, &none),
            httpbin,
            "{path}"
        );
    }
    assert_eq!(cluster_of(rc, "httpbin.example.com", "/getx", &none), None);
    assert_eq!(cluster_of(rc, "other.example.com", "/get", &none), None);
    assert_eq!(
        cluster_of(rc, "HTTPBIN.example.com", "/get", &none),
        httpbin,
        "hosts ignore case"
    );
}

fn vh(name: &str, domains: &[&str], cluster: &str) -> Json {
    json!({"name": name, "domains": domains, "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": cluster}}
    ]})
}

#[test]
fn the_most_specific_domain_wins() {
    let rc = config(json!({"name": "d", "virtual_hosts": [
        vh("any", &["*"], "any"),
        vh("prefix-short", &["api.*"], "prefix-short"),
        vh("prefix-long", &["api.example.*"], "prefix-long"),
        vh("suffix-short", &["*.com"], "suffix-short"),
        vh("suffix-long", &["*.example.com"], "suffix-long"),
        vh("exact", &["api.example.com", "api.example.com:8080"], "exact"),
    ]}))
    .expect("valid");
    let none = http::HeaderMap::new();
    let pick = |host| cluster_of(&rc, host, "/", &none).expect("routed");
    assert_eq!(pick("api.example.com"), "exact");
    assert_eq!(pick("api.example.com:8080"), "exact");
    assert_eq!(pick("www.example.com"), "suffix-long");
    assert_eq!(pick("shop.com"), "suffix-short");
    assert_eq!(pick("api.example.org"), "prefix-long");
    assert_eq!(pick("api.other.org"), "prefix-short");
    assert_eq!(pick("example.org"), "any");
    // The wildcard stands for at least one character.
    assert_eq!(pick("example.com"), "suffix-short");
}

#[test]
fn every_matcher_kind() {
    let routes = json!([
        {"name": "exact-header", "match": {"prefix": "/", "headers": [{"name": "x-env", "string_match": {"exact": "canary"}}]}, "route": {"cluster": "canary"}},
        {"name": "prefix-header", "match": {"prefix": "/", "headers": [{"name": "x-user", "string_match": {"prefix": "admin-"}}]}, "route": {"cluster": "admin"}},
        {"name": "suffix", "match": {"prefix": "/", "headers": [{"name": "x-user", "string_match": {"suffix": "@corp", "ignore_case": true}}]}, "route": {"cluster": "corp"}},
        {"name": "contains", "match": {"prefix": "/", "headers": [{"name": "user-agent", "string_match": {"contains": "curl"}}]}, "route": {"cluster": "curl"}},
        {"name": "regex", "match": {"prefix": "/", "headers": [{"name": "x-id", "string_match": {"safe_regex": {"regex": "[0-9]{3}"}}}]}, "route": {"cluster": "three-digits"}},
        {"name": "range", "match": {"prefix": "/", "headers": [{"name": "x-n", "range_match": {"start": "10", "end": "20"}}]}, "route": {"cluster": "teen"}},
        {"name": "absent", "match": {"prefix": "/", "headers": [{"name": "x-debug", "present_match": true, "invert_match": true}, {"name": "x-only-without-debug", "present_match": true}]}, "route": {"cluster": "no-debug"}},
        {"name": "query", "match": {"prefix": "/", "query_parameters": [{"name": "v", "string_match": {"exact": "2"}}]}, "route": {"cluster": "v2"}},
        {"name": "query-present", "match": {"prefix": "/", "query_parameters": [{"name": "beta", "present_match": true}]}, "route": {"cluster": "beta"}},
        {"name": "regex-path", "match": {"safe_regex": {"regex": "/users/[0-9]+"}}, "route": {"cluster": "users"}},
        {"name": "case", "match": {"path": "/CaseLess", "case_sensitive": false}, "route": {"cluster": "caseless"}},
        {"name": "fraction", "match": {"prefix": "/sample", "runtime_fraction": {"default_value": {"numerator": 25, "denominator": "HUNDRED"}, "runtime_key": "k"}}, "route": {"cluster": "sampled"}},
        {"name": "direct", "match": {"path": "/health"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}},
        {"name": "fallback", "match": {"prefix": "/"}, "route": {"cluster": "default"}},
    ]);
    let rc = config(json!({"name": "m", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]}))
        .expect("valid");
    let pick = |path: &str, headers: &[(&str, &str)]| {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        cluster_of(&rc, "h", path, &map).expect("routed")
    };
    assert_eq!(pick("/", &[("x-env", "canary")]), "canary");
    assert_eq!(pick("/", &[("x-env", "Canary")]), "default");
    assert_eq!(pick("/", &[("x-user", "admin-ann")]), "admin");
    assert_eq!(pick("/", &[("x-user", "Bob@CORP")]), "corp");
    assert_eq!(pick("/", &[("user-agent", "curl/8.0")]), "curl");
    assert_eq!(pick("/", &[("x-id", "123")]), "three-digits");
    assert_eq!(
        pick("/", &[("x-id", "1234")]),
        "default",
        "regexes match whole values"
    );
    assert_eq!(pick("/", &[("x-n", "15")]), "teen");
    assert_eq!(
        pick("/", &[("x-n", "20")]),
        "default",
        "ranges are half-open"
    );
    assert_eq!(pick("/", &[("x-only-without-debug", "1")]), "no-debug");
    assert_eq!(
        pick("/", &[("x-only-without-debug", "1"), ("x-debug", "1")]),
        "default"
    );
    assert_eq!(pick("/?v=2", &[]), "v2");
    assert_eq!(pick("/?a=1&beta", &[]), "beta");
    assert_eq!(pick("/users/42", &[]), "users");
    assert_eq!(pick("/users/42/x", &[]), "default");
    assert_eq!(pick("/caseless", &[]), "caseless");
    assert!(pick("/health", &[]).contains("DirectResponse"));

    // Runtime fraction: 25 of every 100 rolls.
    let none = http::HeaderMap::new();
    let sampled = (0..100u64)
        .filter(|r| {
            let req = Request {
                method: "GET",
                authority: "h",
                path: "/sample",
                headers: &none,
                random: *r,
            };
            rc.route(&req).is_some_and(|d| d.route.name == "fraction")
        })
        .count();
    assert_eq!(sampled, 25);
}

#[test]
fn actions_weights_headers_retries_and_dubbo_metadata() {
    let rc = config(json!({"name": "a", "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"name": "split", "match": {"prefix": "/split"}, "route": {
            "weighted_clusters": {"clusters": [{"name": "blue", "weight": 3}, {"name": "green", "weight": 1}]},
            "timeout": "2.5s",
            "retry_policy": {"retry_on": "5xx,connect-failure", "num_retries": 3, "per_try_timeout": "0.5s", "retriable_status_codes": [503]},
            "hash_policy": [{"header": {"header_name": "x-user"}, "terminal": true}, {"connection_properties": {"source_ip": true}}],
            "prefix_rewrite": "/v2"
        }},
        {"name": "by-header", "match": {"prefix": "/h"}, "route": {"cluster_header": "X-Cluster"}},
        {"name": "dubbo", "match": {"prefix": "/users"}, "route": {"cluster": "users"},
         "metadata": {"filter_metadata": {"dubbo": {"interface": "org.example.UserService", "method": "getUser", "version": "1.0.0"}}}},
        {"name": "moved", "match": {"prefix": "/old"}, "redirect": {"path_redirect": "/new", "https_redirect": true, "response_code": "PERMANENT_REDIRECT"}}
    ]}]}))
    .expect("valid");
    let route = |name: &str| {
        rc.virtual_hosts[0]
            .routes
            .iter()
            .find(|r| r.name == name)
            .expect("route")
    };
    let Action::Forward(split) = &route("split").action else {
        panic!("forward")
    };
    assert_eq!(split.timeout, Some(std::time::Duration::from_millis(2500)));
    assert_eq!(split.prefix_rewrite.as_deref(), Some("/v2"));
    let retry = split.retry.as_ref().expect("retry");
    assert_eq!(retry.retry_on, ["5xx", "connect-failure"]);
    assert_eq!(
        (retry.num_retries, retry.retriable_status_codes.as_slice()),
        (3, &[503u16][..])
    );
    assert_eq!(split.hash_policy.len(), 2);
    let none = http::HeaderMap::new();
    let blue = (0..4u64)
        .filter(|r| split.pick_cluster(&none, *r) == Some("blue"))
        .count();
    assert_eq!(blue, 3, "weights 3:1");

    let Action::Forward(by_header) = &route("by-header").action else {
        panic!("forward")
    };
    assert!(matches!(by_header.clusters, ClusterChoice::Header(_)));
    let mut headers = http::HeaderMap::new();
    headers.insert("x-cluster", "picked".parse().expect("value"));
    assert_eq!(by_header.pick_cluster(&headers, 0), Some("picked"));
    assert_eq!(by_header.pick_cluster(&none, 0), None);

    let dubbo = route("dubbo").dubbo.as_ref().expect("dubbo metadata");
    assert_eq!(
        (
            dubbo.interface.as_str(),
            dubbo.method.as_deref(),
            dubbo.version.as_deref(),
            dubbo.group.as_deref()
        ),
        (
            "org.example.UserService",
            Some("getUser"),
            Some("1.0.0"),
            None
        )
    );
    let Action::Redirect(moved) = &route("moved").action else {
        panic!("redirect")
    };
    assert_eq!(
        (moved.status, moved.https, moved.path.as_deref()),
        (308, true, Some("/new"))
    );
}

#[test]
fn invalid_resources_are_refused_with_the_field_at_fault() {
    let cases = [
        (
            json!({"name": "dup", "virtual_hosts": [vh("a", &["x.com"], "a"), vh("b", &["X.com"], "b")]}),
            "domain \"X.com\" is used by two virtual hosts",
        ),
        (
            json!({"name": "mid", "virtual_hosts": [vh("a", &["a.*.com"], "a")]}),
            "wildcard",
        ),
        (
            json!({"name": "nodomain", "virtual_hosts": [{"name": "a", "domains": []}]}),
            "at least one domain",
        ),
        (
            json!({"name": "re", "virtual_hosts": [{"name": "a", "domains": ["*"], "routes": [{"name": "r", "match": {"safe_regex": {"regex": "(["}}, "route": {"cluster": "c"}}]}]}),
            "routes[0] (\"r\"): bad regex",
        ),
        (
            json!({"name": "w", "virtual_hosts": [{"name": "a", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"weighted_clusters": {"clusters": [{"name": "x", "weight": 0}]}}}]}]}),
            "total weight of 0",
        ),
        (
            json!({"name": "noaction", "virtual_hosts": [{"name": "a", "domains": ["*"], "routes": [{"match": {"prefix": "/"}}]}]}),
            "needs an action",
        ),
        (
            json!({"name": "range", "virtual_hosts": [{"name": "a", "domains": ["*"], "routes": [{"match": {"prefix": "/", "headers": [{"name": "n", "range_match": {"start": "5", "end": "5"}}]}, "route": {"cluster": "c"}}]}]}),
            "empty range",
        ),
        (
            json!({"name": "dubbo", "virtual_hosts": [{"name": "a", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "c"}, "metadata": {"filter_metadata": {"dubbo": {"method": "m"}}}}]}]}),
            "needs a string `interface`",
        ),
    ];
    for (json, needle) in cases {
        let name = json["name"].as_str().unwrap_or_default().to_owned();
        match config(json) {
            Err(e @ Error::InvalidResource { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains(needle) && text.contains(&format!("{name:?}")),
                    "{text} / {needle}"
                );
            }
            other => panic!("{name}: expected InvalidResource, got {other:?}"),
        }
    }
    // Not even a RouteConfiguration.
    let err = decode::<RouteConfiguration>(ROUTE_TYPE, &json!({"virtual_hosts": 5}))
        .expect_err("bad json");
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

#[test]
fn pseudo_headers_inverted_matchers_and_encoded_queries() {
    let rc = config(json!({"name": "p", "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        // Istio writes VirtualService authority and method matches as pseudo-header matchers.
        {"name": "authority", "match": {"prefix": "/", "headers": [{"name": ":authority", "string_match": {"prefix": "api."}}]}, "route": {"cluster": "api"}},
        {"name": "method", "match": {"prefix": "/", "headers": [{"name": ":method", "string_match": {"exact": "DELETE"}}]}, "route": {"cluster": "deletes"}},
        {"name": "not-beta", "match": {"prefix": "/", "headers": [{"name": "x-beta", "string_match": {"exact": "1"}, "invert_match": true}]}, "route": {"cluster": "stable"}},
        {"name": "q", "match": {"prefix": "/", "query_parameters": [{"name": "who", "string_match": {"exact": "a b"}}]}, "route": {"cluster": "encoded"}},
        {"name": "rest", "match": {"prefix": "/"}, "route": {"cluster": "rest"}}
    ]}]}))
    .expect("valid, pseudo-headers included");
    let pick = |authority: &str, method: &str, path: &str, headers: &[(&str, &str)]| {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        let req = Request {
            method,
            authority,
            path,
            headers: &map,
            random: 0,
        };
        rc.route(&req)
            .map(|d| d.route.name.clone())
            .expect("routed")
    };
    assert_eq!(pick("api.example.com", "GET", "/", &[]), "authority");
    assert_eq!(pick("www", "DELETE", "/", &[]), "method");
    // Inverted value matchers match a present, different value — not a missing header.
    assert_eq!(pick("www", "GET", "/", &[("x-beta", "0")]), "not-beta");
    assert_eq!(pick("www", "GET", "/", &[("x-beta", "1")]), "rest");
    assert_eq!(
        pick("www", "GET", "/?who=a%20b", &[]),
        "q",
        "missing x-beta: the inverted matcher does not match; the query is decoded"
    );
    let rc2 = config(json!({"name": "q", "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"name": "q", "match": {"prefix": "/", "query_parameters": [{"name": "who", "string_match": {"exact": "a b"}}]}, "route": {"cluster": "encoded"}}
    ]}]}))
    .expect("valid");
    let none = http::HeaderMap::new();
    for path in ["/?who=a%20b", "/?who=a+b"] {
        let req = Request {
            method: "GET",
            authority: "h",
            path,
            headers: &none,
            random: 0,
        };
        assert!(rc2.route(&req).is_some(), "{path}");
    }
}
