//! One received resource: decoded and validated, or the reason it was rejected.

use envoy_types::pb::envoy::config::cluster::v3::Cluster as WireCluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener as WireListener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::google::protobuf;
use prost::Message;

use super::state::Any;
use crate::model::{Cluster, Endpoints, Listener, RouteConfig};
use crate::snapshot::{CLUSTER, ENDPOINTS, LISTENER, ROUTE};

/// (name, resource), or (name if known, reason).
pub(crate) fn resource(
    type_url: &str,
    any: &protobuf::Any,
) -> Result<(String, Any), (String, String)> {
    if any.type_url != type_url {
        return Err((
            String::new(),
            format!("a {} in a {type_url} response", any.type_url),
        ));
    }
    let bytes = any.value.as_slice();
    let bad = |name: &str, e: String| (name.to_owned(), e);
    match type_url {
        LISTENER => {
            let w = WireListener::decode(bytes).map_err(|e| bad("", e.to_string()))?;
            let r = Listener::try_from(&w).map_err(|e| bad(&w.name, e.to_string()))?;
            named(w.name, Any::Listener(r))
        }
        ROUTE => {
            let w = RouteConfiguration::decode(bytes).map_err(|e| bad("", e.to_string()))?;
            let r = RouteConfig::try_from(&w).map_err(|e| bad(&w.name, e.to_string()))?;
            named(w.name, Any::Route(r))
        }
        CLUSTER => {
            let w = WireCluster::decode(bytes).map_err(|e| bad("", e.to_string()))?;
            let r = Cluster::try_from(&w).map_err(|e| bad(&w.name, e.to_string()))?;
            named(w.name, Any::Cluster(r))
        }
        ENDPOINTS => {
            let w = ClusterLoadAssignment::decode(bytes).map_err(|e| bad("", e.to_string()))?;
            let r = Endpoints::try_from(&w).map_err(|e| bad(&w.cluster_name, e.to_string()))?;
            named(w.cluster_name, Any::Endpoints(r))
        }
        other => Err((
            String::new(),
            format!("{other} is not a type this client subscribes to"),
        )),
    }
}

fn named(name: String, r: Any) -> Result<(String, Any), (String, String)> {
    if name.is_empty() {
        Err((name, "a resource needs a name".into()))
    } else {
        Ok((name, r))
    }
}

/// The node as the wire wants it.
pub(crate) fn node(n: &crate::bootstrap::Node) -> envoy_types::pb::envoy::config::core::v3::Node {
    use envoy_types::pb::envoy::config::core::v3 as core;
    core::Node {
        id: n.id.clone(),
        cluster: n.cluster.clone(),
        locality: Some(core::Locality {
            region: n.locality.region.clone(),
            zone: n.locality.zone.clone(),
            sub_zone: n.locality.sub_zone.clone(),
        }),
        metadata: Some(to_struct(&n.metadata)),
        user_agent_name: "xds-core".into(),
        ..Default::default()
    }
}

fn to_struct(map: &serde_json::Map<String, serde_json::Value>) -> protobuf::Struct {
    protobuf::Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
    }
}

fn to_value(v: &serde_json::Value) -> protobuf::Value {
    use protobuf::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.to_string().parse().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(items) => Kind::ListValue(protobuf::ListValue {
            values: items.iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    protobuf::Value { kind: Some(kind) }
}
