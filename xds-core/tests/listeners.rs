//! Listeners: Istio's 29 sidecar listeners convert (HTTP ones expose their RDS names, TCP ones
//! have no HTTP part, internal ones no socket); API listeners as gRPC clients get them; bad ones
//! are refused with the reason.

use envoy_types::pb::envoy::config::listener::v3::Listener as WireListener;
use serde_json::json;
use xds_core::json::{config_dump_resources, decode, parse_text};
use xds_core::model::{Listener, RouteSource};

const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

fn listener(json: serde_json::Value) -> Result<Listener, xds_core::Error> {
    Listener::try_from(&decode::<WireListener>(LISTENER, &json)?)
}

#[test]
fn istio_sidecar_listeners_convert() {
    let path = format!(
        "{}/tests/fixtures/istio-sidecar-lds-configdump.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let dump = parse_text(&std::fs::read_to_string(path).expect("read")).expect("yaml");
    let listeners: Vec<Listener> = config_dump_resources(&dump)
        .into_iter()
        .filter(|(t, _)| t == LISTENER)
        .map(|(t, j)| {
            Listener::try_from(&decode::<WireListener>(&t, &j).expect("decode"))
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    assert_eq!(listeners.len(), 29);
    let http9080 = listeners
        .iter()
        .find(|l| l.name == "0.0.0.0_9080")
        .expect("0.0.0.0_9080");
    assert_eq!(http9080.rds_names().collect::<Vec<_>>(), ["9080"]);
    let address = http9080.address.as_ref().expect("socket");
    assert_eq!((address.host.as_str(), address.port), ("0.0.0.0", 9080));
    let outbound = listeners
        .iter()
        .find(|l| l.name == "virtualOutbound")
        .expect("virtualOutbound");
    assert!(outbound.http.is_empty(), "tcp_proxy only");
    let internal = listeners
        .iter()
        .find(|l| l.name == "main_internal")
        .expect("main_internal");
    assert!(internal.address.is_none());
    let inbound = listeners
        .iter()
        .find(|l| l.name == "virtualInbound")
        .expect("virtualInbound");
    assert!(!inbound.http.is_empty());
}

#[test]
fn api_listeners_inline_routes_and_refusals() {
    let api = listener(json!({"name": "greeter.example.com", "api_listener": {"api_listener": {
        "@type": HCM, "rds": {"route_config_name": "greeter-routes", "config_source": {"ads": {}}},
        "http_filters": [{"name": "router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
    }}}))
    .expect("api listener");
    assert!(api.address.is_none());
    assert_eq!(api.rds_names().collect::<Vec<_>>(), ["greeter-routes"]);

    let inline = listener(json!({"name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 8080}},
        "filter_chains": [{"filters": [{"name": "hcm", "typed_config": {"@type": HCM, "stat_prefix": "x",
            "route_config": {"name": "inline", "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "c"}}]}]}}}]}]}))
    .expect("inline");
    assert!(matches!(&inline.http[0].routes, RouteSource::Inline(rc) if rc.name == "inline"));

    for (json, needle) in [
        (
            json!({"name": "noaddr", "filter_chains": []}),
            "needs an address",
        ),
        (
            json!({"name": "nords", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 1}},
            "filter_chains": [{"filters": [{"name": "hcm", "typed_config": {"@type": HCM, "stat_prefix": "x"}}]}]}),
            "needs routes",
        ),
        (
            json!({"name": "badroute", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 1}},
            "filter_chains": [{"filters": [{"name": "hcm", "typed_config": {"@type": HCM, "stat_prefix": "x",
                "route_config": {"name": "r", "virtual_hosts": [{"name": "v", "domains": ["a.*.b"]}]}}}]}]}),
            "wildcard",
        ),
    ] {
        let err = listener(json.clone()).expect_err(&json.to_string());
        let name = json["name"].as_str().unwrap_or_default();
        assert!(
            err.to_string().contains(needle) && err.to_string().contains(&format!("{name:?}")),
            "{err} / {needle}"
        );
    }
}

#[test]
fn grpc_bootstrap_from_istio_and_from_the_caller() {
    use xds_core::bootstrap::{Bootstrap, Locality, Node};
    let path = format!(
        "{}/tests/fixtures/istio-grpcgen-xds_bootstrap.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let b =
        Bootstrap::from_file(std::path::Path::new(&path)).expect("valid, misspelt keys ignored");
    assert_eq!(b.servers[0].server_uri, "localhost:14057");
    assert_eq!(b.servers[0].channel_creds[0].kind, "insecure");
    assert_eq!(b.servers[0].server_features, ["xds_v3"]);
    assert_eq!(b.node.id, "sidecar~127.0.1.1~echo.test~cluster.local");
    assert_eq!(b.node.metadata["GENERATOR"], "grpc");
    assert_eq!(
        b.server_listener_resource_name_template.as_deref(),
        Some("xds.istio.io/grpc/lds/inbound/%s")
    );
    assert!(b.certificate_providers.contains_key("default"));
    assert_eq!(b.server_url().as_deref(), Some("http://localhost:14057"));

    let node = Node {
        id: "gateway-1".into(),
        cluster: "edge".into(),
        locality: Locality {
            region: "eu".into(),
            zone: "eu-1a".into(),
            sub_zone: String::new(),
        },
        metadata: Default::default(),
    };
    let mine = b.with_node(node.clone());
    assert_eq!(mine.node, node);
    let b2 = Bootstrap::new("127.0.0.1:18000", node);
    assert_eq!(
        Bootstrap::from_json(&serde_json::to_string(&b2).expect("json")).expect("round trip"),
        b2
    );
    for bad in [
        r#"{"xds_servers": []}"#,
        r#"{"xds_servers": [{"server_uri": " "}]}"#,
        "{",
        r#"{"node": {}}"#,
    ] {
        assert!(Bootstrap::from_json(bad).is_err(), "{bad}");
    }
}
