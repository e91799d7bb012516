//! hessian → JSON, for results and exceptions.
//!
//! The conventions (docs/http-mapping.md): `long`, `BigInteger` and `BigDecimal` become JSON
//! numbers whose text is exact (or, with [`JsonOptions::longs_as_strings`], longs become strings
//! for JavaScript callers); dates become ISO-8601 UTC with milliseconds; `byte[]` base64; enums
//! their constant name; map keys that are not strings their JSON text. A back-reference becomes
//! a copy of what it points at; a reference back into its own ancestors (a cycle, such as a
//! Java exception's `cause` pointing at itself) becomes `null`.

use std::collections::HashMap;

use base64::Engine;
use dubbo_codec::hessian::{java, Value};
use serde_json::{Map as JsonMap, Number, Value as Json};

use crate::time::format_millis;
use crate::types::TypeRegistry;

/// Choices a caller can make about the JSON it gets.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonOptions {
    /// Write `long` values as strings: JavaScript numbers lose precision past 2^53.
    pub longs_as_strings: bool,
}

/// Converts one hessian value (the root of a stream's reference numbering) to JSON.
pub fn to_json(value: &Value, registry: &TypeRegistry, options: JsonOptions) -> Json {
    let mut refs = Vec::new();
    index_refs(value, &mut refs);
    // Containers by address, to find a container's own number in O(1) while converting it.
    let numbers = refs
        .iter()
        .enumerate()
        .map(|(i, v)| (std::ptr::from_ref::<Value>(v) as usize, i))
        .collect();
    let mut active = vec![false; refs.len()];
    Converter {
        refs: &refs,
        numbers: &numbers,
        registry,
        options,
    }
    .convert(value, &mut active)
}

/// Lists, maps and objects in the order they start: the numbering `Value::Ref` uses.
fn index_refs<'v>(value: &'v Value, out: &mut Vec<&'v Value>) {
    match value {
        Value::List(l) => {
            out.push(value);
            l.items.iter().for_each(|v| index_refs(v, out));
        }
        Value::Map(m) => {
            out.push(value);
            for (k, v) in &m.entries {
                index_refs(k, out);
                index_refs(v, out);
            }
        }
        Value::Object(o) => {
            out.push(value);
            o.fields.iter().for_each(|v| index_refs(v, out));
        }
        _ => {}
    }
}

struct Converter<'a> {
    refs: &'a [&'a Value],
    numbers: &'a HashMap<usize, usize>,
    registry: &'a TypeRegistry,
    options: JsonOptions,
}

impl Converter<'_> {
    fn convert(&self, value: &Value, active: &mut [bool]) -> Json {
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Long(l) if self.options.longs_as_strings => Json::String(l.to_string()),
            Value::Long(l) => Json::from(*l),
            // JSON has no NaN or infinity.
            Value::Double(d) => Number::from_f64(*d).map_or(Json::Null, Json::Number),
            Value::Date(ms) => Json::String(format_millis(*ms)),
            Value::String(s) => Json::String(s.clone()),
            Value::Binary(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Value::Ref(i) => {
                let i = *i as usize;
                match (self.refs.get(i), active.get(i)) {
                    (Some(target), Some(false)) => self.convert(target, active),
                    _ => Json::Null,
                }
            }
            Value::List(l) => self.container(value, active, |me, active| {
                Json::Array(l.items.iter().map(|v| me.convert(v, active)).collect())
            }),
            Value::Map(m) => self.container(value, active, |me, active| {
                let mut out = JsonMap::with_capacity(m.entries.len());
                for (k, v) in &m.entries {
                    let key = match k {
                        Value::String(s) => s.clone(),
                        other => match me.convert(other, active) {
                            Json::String(s) => s,
                            json => json.to_string(),
                        },
                    };
                    out.insert(key, me.convert(v, active));
                }
                Json::Object(out)
            }),
            Value::Object(o) => {
                if let Some(text) = java::decimal_text(value) {
                    // Exact: with arbitrary precision the number keeps this text.
                    if let Ok(n) = text.parse::<Number>() {
                        return Json::Number(n);
                    }
                }
                let is_pojo = self.registry.class(&o.class.name).is_some();
                if let (false, Some(name)) = (is_pojo, java::enum_name(value)) {
                    return Json::String(name.to_owned());
                }
                self.container(value, active, |me, active| {
                    let mut out = JsonMap::with_capacity(o.fields.len());
                    for (name, v) in o.class.fields.iter().zip(&o.fields) {
                        out.insert(name.clone(), me.convert(v, active));
                    }
                    Json::Object(out)
                })
            }
        }
    }

    /// Marks the container as an ancestor while its contents convert, so a reference back to
    /// it is recognised as a cycle.
    fn container(
        &self,
        value: &Value,
        active: &mut [bool],
        body: impl FnOnce(&Self, &mut [bool]) -> Json,
    ) -> Json {
        let index = self
            .numbers
            .get(&(std::ptr::from_ref(value) as usize))
            .copied();
        if let Some(i) = index {
            active[i] = true;
        }
        let out = body(self, active);
        if let Some(i) = index {
            active[i] = false;
        }
        out
    }
}
