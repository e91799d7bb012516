//! Service definitions: Dubbo's `FullServiceDefinition` (canonical name, methods with
//! parameter and return types, and the `types` list describing POJO properties).
//!
//! Two generations exist in the wild and both are read: Dubbo 3 writes property types as
//! type-name strings (`"properties": {"next": "a.b.Node"}`), Dubbo 2.7 as nested type objects
//! (`"properties": {"value": {"type": "char[]"}}`). Nested objects are flattened into the
//! `types` list by name, so a parsed definition always looks like Dubbo 3's.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDefinition {
    /// The interface, e.g. `org.apache.dubbo.demo.DemoService`.
    pub canonical_name: String,
    pub code_source: Option<String>,
    pub methods: Vec<MethodDefinition>,
    pub types: Vec<TypeDefinition>,
    /// The provider URL's parameters (FullServiceDefinition only).
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodDefinition {
    pub name: String,
    /// Java type names, e.g. `java.lang.String`, `int[]`, `java.util.List<a.b.User>`.
    pub parameter_types: Vec<String>,
    pub return_type: String,
}

/// One Java type and what the definition says of its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDefinition {
    pub name: String,
    /// Element types of arrays and collections, key and value types of maps.
    pub items: Vec<String>,
    /// The constants of an enum.
    pub enums: Vec<String>,
    /// A POJO's properties (field name → type name), in the order published.
    pub properties: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDefinition {
    canonical_name: Option<String>,
    #[serde(default)]
    code_source: Option<String>,
    #[serde(default)]
    methods: Vec<WireMethod>,
    #[serde(default)]
    types: Vec<WireType>,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMethod {
    name: String,
    #[serde(default)]
    parameter_types: Vec<String>,
    #[serde(default)]
    return_type: Option<String>,
}

#[derive(Deserialize)]
struct WireType {
    #[serde(rename = "type")]
    name: String,
    #[serde(default)]
    items: Vec<WireTypeRef>,
    #[serde(default)]
    enums: Vec<String>,
    #[serde(default)]
    properties: serde_json::Map<String, serde_json::Value>,
}

/// A type named by string (Dubbo 3) or described inline (Dubbo 2.7).
#[derive(Deserialize)]
#[serde(untagged)]
enum WireTypeRef {
    Name(String),
    Inline(Box<WireType>),
}

impl ServiceDefinition {
    /// Parses a (Full)ServiceDefinition JSON string.
    pub fn parse(json: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Invalid {
            what: "service_definition",
            reason,
        };
        let wire: WireDefinition =
            serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        let canonical_name = wire
            .canonical_name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("missing field `canonicalName`".into()))?;
        let mut methods = Vec::with_capacity(wire.methods.len());
        for method in wire.methods {
            if method.name.is_empty() {
                return Err(invalid("a method has an empty `name`".into()));
            }
            if let Some(bad) = method.parameter_types.iter().find(|t| t.is_empty()) {
                return Err(invalid(format!(
                    "method {:?} has an empty parameter type {bad:?}",
                    method.name
                )));
            }
            methods.push(MethodDefinition {
                name: method.name,
                parameter_types: method.parameter_types,
                return_type: method.return_type.unwrap_or_else(|| "void".into()),
            });
        }
        let mut types = Vec::with_capacity(wire.types.len());
        for ty in wire.types {
            flatten(ty, &mut types).map_err(invalid)?;
        }
        Ok(ServiceDefinition {
            canonical_name,
            code_source: wire.code_source,
            methods,
            types,
            parameters: wire.parameters,
        })
    }

    /// The overloads named `name`, in published order.
    pub fn methods_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a MethodDefinition> {
        self.methods.iter().filter(move |m| m.name == name)
    }

    /// The description of `name` in the `types` list.
    pub fn type_named(&self, name: &str) -> Option<&TypeDefinition> {
        self.types.iter().find(|t| t.name == name)
    }
}

/// Adds `ty` (and any type described inline inside it) to `out`, once per name.
fn flatten(ty: WireType, out: &mut Vec<TypeDefinition>) -> Result<String, String> {
    if ty.name.is_empty() {
        return Err("a type has an empty `type`".into());
    }
    let mut items = Vec::with_capacity(ty.items.len());
    for item in ty.items {
        items.push(match item {
            WireTypeRef::Name(name) => name,
            WireTypeRef::Inline(inline) => flatten(*inline, out)?,
        });
    }
    let mut properties = Vec::with_capacity(ty.properties.len());
    for (field, value) in ty.properties {
        let type_name = match value {
            serde_json::Value::String(name) => name,
            object @ serde_json::Value::Object(_) => {
                let inline: WireType = serde_json::from_value(object)
                    .map_err(|e| format!("property {field:?} of {:?}: {e}", ty.name))?;
                flatten(inline, out)?
            }
            other => {
                return Err(format!(
                    "property {field:?} of {:?} is {other}, not a type name or object",
                    ty.name
                ))
            }
        };
        properties.push((field, type_name));
    }
    let name = ty.name;
    let def = TypeDefinition {
        name: name.clone(),
        items,
        enums: ty.enums,
        properties,
    };
    // The first full description of a name wins; inline 2.7 mentions of a type that is also
    // listed at the top level are usually the bare `{"type": ...}` form.
    match out.iter_mut().find(|t| t.name == name) {
        Some(existing) if existing.is_bare() => *existing = def,
        Some(_) => {}
        None => out.push(def),
    }
    Ok(name)
}

impl TypeDefinition {
    fn is_bare(&self) -> bool {
        self.items.is_empty() && self.enums.is_empty() && self.properties.is_empty()
    }
}
