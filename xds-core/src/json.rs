//! Envoy v3 resources from JSON or YAML (proto3 JSON mapping, both field spellings), as control
//! planes print them and as snapshot files hold them, decoded into the `envoy-types` messages.
//!
//! The descriptors are those `envoy-types` was generated from (`descriptors/envoy.bin`, the
//! subset xds-core reads). Extensions the set does not know (Istio's own filters, Wasm configs,
//! ...) are kept as empty `google.protobuf.Empty` values: they are not ours to interpret, and a
//! resource must not be refused for carrying them.

use std::sync::LazyLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage};
use serde_json::Value as Json;

use crate::Error;

static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(&include_bytes!("../descriptors/envoy.bin")[..])
        .map_err(|e| e.to_string())
});

const EMPTY: &str = "type.googleapis.com/google.protobuf.Empty";

fn pool() -> Result<&'static DescriptorPool, Error> {
    POOL.as_ref().map_err(|reason| Error::Decode {
        type_url: "descriptors/envoy.bin".into(),
        reason: reason.clone(),
    })
}

/// The message name of a type URL (`type.googleapis.com/envoy.config.route.v3.Route` → the last
/// segment).
pub fn message_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

/// Decodes one resource given as JSON into `M`, whose full protobuf name is `type_url`'s.
pub fn decode<M: Message + Default>(type_url: &str, json: &Json) -> Result<M, Error> {
    let bytes = to_protobuf(type_url, json)?;
    M::decode(bytes.as_slice()).map_err(|e| Error::Decode {
        type_url: type_url.to_owned(),
        reason: e.to_string(),
    })
}

/// Encodes one resource given as JSON into protobuf bytes (what an `Any` carries).
pub fn to_protobuf(type_url: &str, json: &Json) -> Result<Vec<u8>, Error> {
    let fail = |reason: String| Error::Decode {
        type_url: type_url.to_owned(),
        reason,
    };
    let pool = pool()?;
    let descriptor = pool
        .get_message_by_name(message_name(type_url))
        .ok_or_else(|| fail("not a type this crate reads".into()))?;
    let mut json = json.clone();
    if let Json::Object(fields) = &mut json {
        fields.remove("@type");
    }
    blank_unknown_any(pool, &mut json);
    // Through text: serde_json's exact-number mode would otherwise hand numbers to the
    // deserializer as maps.
    let text = json.to_string();
    let mut de = serde_json::Deserializer::from_str(&text);
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let message = DynamicMessage::deserialize_with_options(descriptor, &mut de, &options)
        .map_err(|e| fail(e.to_string()))?;
    Ok(message.encode_to_vec())
}

/// Replaces every `Any` whose type is not in the pool by an empty one.
fn blank_unknown_any(pool: &DescriptorPool, json: &mut Json) {
    match json {
        Json::Object(fields) => {
            let unknown = fields
                .get("@type")
                .and_then(Json::as_str)
                .is_some_and(|t| pool.get_message_by_name(message_name(t)).is_none());
            if unknown {
                fields.clear();
                fields.insert("@type".into(), Json::String(EMPTY.into()));
                // A well-known type inside an `Any` carries its JSON form under "value".
                fields.insert("value".into(), Json::Object(serde_json::Map::new()));
                return;
            }
            fields.values_mut().for_each(|v| blank_unknown_any(pool, v));
        }
        Json::Array(items) => items.iter_mut().for_each(|v| blank_unknown_any(pool, v)),
        _ => {}
    }
}

/// Reads JSON or YAML text into a JSON value.
pub fn parse_text(text: &str) -> Result<Json, Error> {
    let fail = |reason: String| Error::Decode {
        type_url: "document".into(),
        reason,
    };
    if text.trim_start().starts_with('{') || text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| fail(e.to_string()))
    } else {
        serde_yaml::from_str(text).map_err(|e| fail(e.to_string()))
    }
}

/// Every resource in an Envoy admin `/config_dump` document, as (type URL, JSON): the values
/// under `dynamic_active_clusters[].cluster`, `static_clusters[].cluster`,
/// `dynamic_listeners[].active_state.listener`, `static_listeners[].listener`,
/// `dynamic_route_configs[].route_config`, `static_route_configs[].route_config`,
/// `dynamic_endpoint_configs[].endpoint_config` and `static_endpoint_configs[].endpoint_config`.
pub fn config_dump_resources(dump: &Json) -> Vec<(String, Json)> {
    const PATHS: [(&str, &[&str]); 8] = [
        ("dynamic_active_clusters", &["cluster"]),
        ("static_clusters", &["cluster"]),
        ("dynamic_listeners", &["active_state", "listener"]),
        ("static_listeners", &["listener"]),
        ("dynamic_route_configs", &["route_config"]),
        ("static_route_configs", &["route_config"]),
        ("dynamic_endpoint_configs", &["endpoint_config"]),
        ("static_endpoint_configs", &["endpoint_config"]),
    ];
    let mut out = Vec::new();
    let configs = dump["configs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for config in configs {
        for (list, path) in PATHS {
            for entry in config[list]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let resource = path.iter().fold(entry, |v, key| &v[*key]);
                if let Some(type_url) = resource["@type"].as_str() {
                    out.push((type_url.to_owned(), resource.clone()));
                }
            }
        }
    }
    out
}
