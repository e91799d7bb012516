//! An OpenAPI 3.1 document of what published metadata exposes: one `POST
//! /{application}/{interface}/{method}` operation per published method, its body the
//! positional arguments (or the named ones), its answer the return type, with POJOs and enums
//! from the definitions' `types` as component schemas. Served on the admin listener as
//! `/openapi.json`, so people can see (and, with any OpenAPI tool, try) what is reachable.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use http_bridge::types::TypeRef;
use metadata_store::model::ServiceDefinition;
use serde_json::{json, Map, Value as Json};

use crate::errors::GatewayError;
use crate::runtime::Runtime;

pub async fn document(rt: &Runtime, listeners: &[SocketAddr]) -> Result<Json, GatewayError> {
    let Some(typing) = &rt.typing else {
        return Ok(empty(listeners));
    };
    let registry = &typing.registry;
    let unavailable =
        |e: metadata_store::Error| GatewayError::Unavailable(format!("metadata store: {e}"));
    let mut all = registry.all_metadata().await.map_err(unavailable)?;
    // The newest revision of an application describes a path when several publish it.
    all.sort_by_key(|(_, e)| std::cmp::Reverse(e.record.published_at_ms));
    let mut paths = BTreeMap::new();
    let mut schemas = BTreeMap::new();
    for (_, entry) in &all {
        let info = &entry.view;
        for service in info.services.values() {
            if service.protocol.as_deref().is_some_and(|p| p != "dubbo") {
                continue; // reachable over Dubbo2 only, for now
            }
            let identifier = service.definition_identifier(&info.application);
            let Some(definition) = registry
                .definition(&identifier)
                .await
                .map_err(unavailable)?
            else {
                continue;
            };
            let def = &definition.view;
            add_schemas(def, &mut schemas);
            for method in &def.methods {
                let path = format!("/{}/{}/{}", info.application, service.name, method.name);
                if paths.contains_key(&path) {
                    continue; // an overload, or an older revision: the first one describes it
                }
                let names = crate::metadata::parameter_names(
                    rt,
                    &def.canonical_name,
                    &method.name,
                    &method.parameter_types,
                );
                let operation = operation(&info.application, service, method, def, &names);
                paths.insert(path, json!({ "post": operation }));
            }
        }
    }
    // A class a definition names but does not describe still gets a (loose) schema, so that
    // every `$ref` resolves.
    let mut refs = Vec::new();
    collect_refs(&json!(paths), &mut refs);
    collect_refs(&json!(schemas), &mut refs);
    for name in refs {
        schemas.entry(name).or_insert_with(|| {
            json!({ "type": "object", "description": "not described by the published definition" })
        });
    }
    let mut doc = empty(listeners);
    doc["paths"] = json!(paths);
    doc["components"] = json!({ "schemas": schemas });
    Ok(doc)
}

fn collect_refs(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::Object(map) => {
            if let Some(Json::String(r)) = map.get("$ref") {
                if let Some(name) = r.strip_prefix("#/components/schemas/") {
                    out.push(name.to_owned());
                }
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Json::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn empty(listeners: &[SocketAddr]) -> Json {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Dubbo services published to the gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Generated from the Dubbo metadata providers published. Arguments go in the body as a JSON array (positional) or object (named: as the configuration names the parameters, else arg0, arg1, ...).",
        },
        "servers": listeners.iter().map(|a| json!({ "url": format!("http://{a}") })).collect::<Vec<_>>(),
        "paths": {},
    })
}

fn operation(
    application: &str,
    service: &metadata_store::model::ServiceInfo,
    method: &metadata_store::model::MethodDefinition,
    def: &ServiceDefinition,
    names: &[String],
) -> Json {
    let overloads = def.methods_named(&method.name).count();
    let items: Vec<Json> = method.parameter_types.iter().map(|t| schema(t)).collect();
    let named: Map<String, Json> = names.iter().cloned().zip(items.iter().cloned()).collect();
    let n = items.len();
    let mut parameters = Vec::new();
    for (header, value) in [
        ("x-dubbo-group", service.group.as_deref()),
        ("x-dubbo-version", service.version.as_deref()),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            parameters.push(json!({
                "name": header, "in": "header", "required": false,
                "schema": { "type": "string", "default": value },
            }));
        }
    }
    json!({
        // Unique even when application names hold dots: the path itself.
        "operationId": format!("{application}/{}/{}", service.name, method.name),
        "tags": [service.name],
        "summary": format!("{}({}) → {}", method.name, method.parameter_types.join(", "), method.return_type),
        "description": if overloads > 1 {
            format!("{overloads} overloads: the one taking as many arguments as the body holds is called; the first is described here.")
        } else {
            String::new()
        },
        "parameters": parameters,
        "requestBody": {
            "required": n > 0,
            "content": { "application/json": { "schema": {
                "oneOf": [
                    { "type": "array", "prefixItems": items, "minItems": n, "maxItems": n },
                    { "type": "object", "properties": named },
                ]
            } } }
        },
        "responses": {
            "200": { "description": "the return value", "content": { "application/json": { "schema": schema(&method.return_type) } } },
            "default": { "description": "an error (see the gateway's error table)", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
        },
    })
}

fn add_schemas(def: &ServiceDefinition, schemas: &mut BTreeMap<String, Json>) {
    schemas.entry("Error".into()).or_insert_with(|| {
        json!({ "type": "object", "properties": { "error": { "type": "object", "properties": {
            "code": { "type": "string" }, "message": { "type": "string" } } } } })
    });
    for ty in &def.types {
        if ty.name.starts_with("java.") || !ty.name.contains('.') {
            continue;
        }
        if !ty.enums.is_empty() {
            schemas.insert(
                ty.name.clone(),
                json!({ "type": "string", "enum": ty.enums }),
            );
        } else if !ty.properties.is_empty() {
            let properties: Map<String, Json> = ty
                .properties
                .iter()
                .map(|(field, t)| (field.clone(), schema(t)))
                .collect();
            schemas.insert(
                ty.name.clone(),
                json!({ "type": "object", "properties": properties }),
            );
        }
    }
}

/// OpenAPI component names allow `[a-zA-Z0-9._-]` only: inner classes (`a.B$C`) and the like
/// get `_` for the rest.
fn component_key(class: &str) -> String {
    class
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The JSON schema of a Java type, by the gateway's JSON conventions (docs/http-mapping.md).
fn schema(java: &str) -> Json {
    match TypeRef::parse(java) {
        Ok(t) => schema_of(&t),
        Err(_) => json!({}),
    }
}

fn schema_of(t: &TypeRef) -> Json {
    let element = |i: usize| t.arg(i).map_or(json!({}), schema_of);
    match t {
        TypeRef::Array(inner) if inner.name() == Some("byte") => {
            json!({ "type": "string", "contentEncoding": "base64" })
        }
        TypeRef::Array(inner) => json!({ "type": "array", "items": schema_of(inner) }),
        TypeRef::Named { name, .. } => match name.as_str() {
            "int" | "short" | "byte" | "java.lang.Integer" | "java.lang.Short"
            | "java.lang.Byte" => {
                json!({ "type": "integer", "format": "int32" })
            }
            "long" | "java.lang.Long" => {
                json!({ "type": ["integer", "string"], "format": "int64" })
            }
            "float" | "double" | "java.lang.Float" | "java.lang.Double" => {
                json!({ "type": "number" })
            }
            "java.math.BigDecimal" | "java.math.BigInteger" => {
                json!({ "type": ["number", "string"] })
            }
            "boolean" | "java.lang.Boolean" => json!({ "type": "boolean" }),
            "char" | "java.lang.Character" | "java.lang.String" => json!({ "type": "string" }),
            "java.util.Date" | "java.sql.Timestamp" => {
                json!({ "type": ["string", "integer"], "format": "date-time" })
            }
            "void" | "java.lang.Void" => json!({ "type": "null" }),
            "java.util.List"
            | "java.util.ArrayList"
            | "java.util.LinkedList"
            | "java.util.Collection" => json!({ "type": "array", "items": element(0) }),
            "java.util.Set"
            | "java.util.HashSet"
            | "java.util.LinkedHashSet"
            | "java.util.TreeSet" => {
                json!({ "type": "array", "items": element(0), "uniqueItems": true })
            }
            "java.util.Map"
            | "java.util.HashMap"
            | "java.util.LinkedHashMap"
            | "java.util.TreeMap" => {
                json!({ "type": "object", "additionalProperties": element(1) })
            }
            "java.util.concurrent.CompletableFuture" => element(0),
            other if other.starts_with("java.") => json!({}),
            other => json!({ "$ref": format!("#/components/schemas/{}", component_key(other)) }),
        },
    }
}
