//! JSON → hessian by declared Java type.
//!
//! Each JSON value is converted by the Java type its position declares (a method parameter, a
//! POJO property, a generic argument), so the provider receives exactly what a Java consumer
//! would send: ints range-checked, longs and big numbers without precision loss, dates from
//! ISO-8601 or epoch milliseconds, `byte[]` from base64, enums by name, POJOs with their class
//! names and declared property order. Where nothing is declared (`Object`, or no type at all),
//! types are inferred from the JSON itself, as docs/http-mapping.md describes.
//!
//! Every error names the path of the offending value (`arg0.address.zip`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use dubbo_codec::hessian::{java, ClassDef, List, Map, Object, Value};
use serde_json::{Number, Value as Json};

use crate::time::parse_iso8601;
use crate::types::{TypeRef, TypeRegistry};

/// Where in the request a value sits, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A method argument, by position and, when known, by name.
    Arg(usize, Option<String>),
    Field(String),
    Index(usize),
    Key(String),
}

/// A value that does not fit its declared type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ConversionError {
    pub path: String,
    pub reason: String,
}

fn path_text(path: &[Segment]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Segment::Arg(_, Some(name)) => out.push_str(name),
            Segment::Arg(i, None) => out.push_str(&format!("arg{i}")),
            Segment::Field(f) => {
                out.push('.');
                out.push_str(f);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
            Segment::Key(k) => out.push_str(&format!("[{k:?}]")),
        }
    }
    if out.is_empty() {
        out.push_str("body");
    }
    out
}

/// Nesting beyond this is refused (JSON parsers stop at 128 too).
const MAX_DEPTH: usize = 128;

/// Converts the arguments of one call. Class definitions are shared across all of them, as they
/// will be in the request's hessian stream.
#[derive(Debug)]
pub struct ToHessian<'r> {
    registry: &'r TypeRegistry,
    classes: HashMap<String, Arc<ClassDef>>,
    path: Vec<Segment>,
}

struct Described<'a>(&'a Json);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "boolean {b}"),
            Json::Number(n) => write!(f, "number {n}"),
            Json::String(s) if s.len() > 40 => {
                write!(f, "a string of {} characters", s.chars().count())
            }
            Json::String(s) => write!(f, "string {s:?}"),
            Json::Array(a) => write!(f, "an array of {}", a.len()),
            Json::Object(_) => f.write_str("an object"),
        }
    }
}

impl<'r> ToHessian<'r> {
    pub fn new(registry: &'r TypeRegistry) -> Self {
        ToHessian {
            registry,
            classes: HashMap::new(),
            path: Vec::new(),
        }
    }

    /// Converts argument `index` (named `name` if known) of declared type `ty` (`None`: infer).
    pub fn argument(
        &mut self,
        index: usize,
        name: Option<&str>,
        json: &Json,
        ty: Option<&TypeRef>,
    ) -> Result<Value, ConversionError> {
        self.path.clear();
        self.path.push(Segment::Arg(index, name.map(str::to_owned)));
        let value = self.convert(json, ty)?;
        self.path.pop();
        Ok(value)
    }

    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, ConversionError> {
        Err(ConversionError {
            path: path_text(&self.path),
            reason: reason.into(),
        })
    }

    fn expected<T>(&self, what: &str, json: &Json) -> Result<T, ConversionError> {
        self.fail(format!("expected {what}, got {}", Described(json)))
    }

    fn nested<T>(
        &mut self,
        seg: Segment,
        f: impl FnOnce(&mut Self) -> Result<T, ConversionError>,
    ) -> Result<T, ConversionError> {
        if self.path.len() > MAX_DEPTH {
            return self.fail(format!("nested more than {MAX_DEPTH} levels deep"));
        }
        self.path.push(seg);
        let out = f(self);
        self.path.pop();
        out
    }

    fn convert(&mut self, json: &Json, ty: Option<&TypeRef>) -> Result<Value, ConversionError> {
        let Some(ty) = ty else {
            return self.infer(json);
        };
        let name = match ty {
            TypeRef::Array(elem) => return self.array(json, elem),
            TypeRef::Named { name, .. } => name.as_str(),
        };
        if json.is_null() {
            return match name {
                "boolean" | "byte" | "short" | "int" | "long" | "float" | "double" | "char" => {
                    self.fail(format!("{name} cannot be null"))
                }
                _ => Ok(Value::Null),
            };
        }
        match name {
            "boolean" | "java.lang.Boolean" => match json {
                Json::Bool(b) => Ok(Value::Bool(*b)),
                Json::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
                _ => self.expected("a boolean", json),
            },
            "byte" | "java.lang.Byte" => {
                self.int_in(json, name, i64::from(i8::MIN), i64::from(i8::MAX))
            }
            "short" | "java.lang.Short" => {
                self.int_in(json, name, i64::from(i16::MIN), i64::from(i16::MAX))
            }
            "int" | "java.lang.Integer" => {
                self.int_in(json, name, i64::from(i32::MIN), i64::from(i32::MAX))
            }
            "long" | "java.lang.Long" => Ok(Value::Long(self.integer(json, name)?)),
            "float" | "java.lang.Float" | "double" | "java.lang.Double" => {
                Ok(Value::Double(self.double(json, name)?))
            }
            "char" | "java.lang.Character" => match json {
                Json::String(s)
                    if s.chars().count() == 1 && s.chars().all(|c| c.len_utf16() == 1) =>
                {
                    Ok(Value::String(s.clone()))
                }
                _ => self.expected("a one-character string", json),
            },
            "java.lang.String" | "java.lang.CharSequence" => match json {
                Json::String(s) => Ok(Value::String(s.clone())),
                _ => self.expected("a string", json),
            },
            "java.math.BigDecimal" => {
                let text = self.numeric_text(json, "java.math.BigDecimal")?;
                if !is_decimal(&text) {
                    return self.fail(format!("{text:?} is not a decimal number"));
                }
                Ok(java::big_decimal(&text))
            }
            "java.math.BigInteger" => {
                let text = self.numeric_text(json, "java.math.BigInteger")?;
                match java::big_integer(&text) {
                    Some(v) => Ok(v),
                    None => self.fail(format!(
                        "{text:?} is not an integer (of at most {} digits)",
                        java::BIG_INTEGER_MAX_DIGITS
                    )),
                }
            }
            "java.util.Date" => match json {
                Json::Number(_) => Ok(Value::Date(self.integer(json, "epoch milliseconds")?)),
                Json::String(s) => match parse_iso8601(s).or_else(|| s.parse().ok()) {
                    Some(ms) => Ok(Value::Date(ms)),
                    None => self.fail(format!(
                        "{s:?} is not an ISO-8601 date-time nor epoch milliseconds"
                    )),
                },
                _ => self.expected("an ISO-8601 date-time or epoch milliseconds", json),
            },
            "java.lang.Object" | "java.io.Serializable" => self.infer(json),
            _ => {
                if let Some(list_type) = collection_type(name) {
                    return self.list(json, list_type, ty.arg(0));
                }
                if let Some(map_type) = map_type(name) {
                    return self.map(json, map_type, ty.arg(0), ty.arg(1));
                }
                self.class(json, name)
            }
        }
    }

    fn int_in(
        &mut self,
        json: &Json,
        name: &str,
        min: i64,
        max: i64,
    ) -> Result<Value, ConversionError> {
        let n = self.integer(json, name)?;
        if n < min || n > max {
            return self.fail(format!("{n} is out of range for {name} ({min}..={max})"));
        }
        Ok(Value::Int(n as i32))
    }

    /// An integer from a JSON number (or numeric string) with no fractional part.
    fn integer(&self, json: &Json, name: &str) -> Result<i64, ConversionError> {
        let text = self.numeric_text(json, name)?;
        if let Ok(n) = text.parse::<i64>() {
            return Ok(n);
        }
        // 5.0 or 5e3 are whole numbers too; 5.5 and 1e30 are not integers of this range.
        match text.parse::<f64>() {
            Ok(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => Ok(f as i64),
            Ok(f) if f.fract() == 0.0 => self.fail(format!("{text} is out of range for {name}")),
            Ok(_) => self.fail(format!("expected a whole number for {name}, got {text}")),
            Err(_) => self.expected(&format!("a number ({name})"), json),
        }
    }

    fn double(&self, json: &Json, name: &str) -> Result<f64, ConversionError> {
        let text = self.numeric_text(json, name)?;
        match text.parse::<f64>() {
            // "NaN" and "Infinity" can only arrive as strings, and Java accepts them.
            Ok(f) if f.is_finite() || matches!(json, Json::String(_)) => Ok(f),
            _ => self.expected(&format!("a number ({name})"), json),
        }
    }

    /// The text of a JSON number, or of a string meant as one (query parameters, big numbers).
    fn numeric_text(&self, json: &Json, name: &str) -> Result<String, ConversionError> {
        match json {
            Json::Number(n) => Ok(n.to_string()),
            Json::String(s) => Ok(s.trim().to_owned()),
            _ => self.expected(&format!("a number ({name})"), json),
        }
    }

    fn array(&mut self, json: &Json, elem: &TypeRef) -> Result<Value, ConversionError> {
        if elem.name() == Some("byte") {
            return match json {
                Json::String(s) => match base64::engine::general_purpose::STANDARD.decode(s.trim())
                {
                    Ok(bytes) => Ok(Value::Binary(bytes)),
                    Err(e) => self.fail(format!("byte[] must be base64: {e}")),
                },
                Json::Array(items) => {
                    let mut bytes = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let b = self
                            .nested(Segment::Index(i), |me| me.int_in(item, "byte", -128, 255))?;
                        bytes.push(b.as_i64().unwrap_or(0) as u8);
                    }
                    Ok(Value::Binary(bytes))
                }
                Json::Null => Ok(Value::Null),
                _ => self.expected("a base64 string (byte[])", json),
            };
        }
        let type_name = array_type_name(elem);
        self.list(json, Some(&type_name), Some(elem))
    }

    fn list(
        &mut self,
        json: &Json,
        type_name: Option<&str>,
        elem: Option<&TypeRef>,
    ) -> Result<Value, ConversionError> {
        let items = match json {
            Json::Array(items) => items,
            Json::Null => return Ok(Value::Null),
            _ => return self.expected("an array", json),
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(self.nested(Segment::Index(i), |me| me.convert(item, elem))?);
        }
        Ok(Value::List(List {
            type_name: type_name.map(Into::into),
            items: out,
            variable_length: false,
        }))
    }

    fn map(
        &mut self,
        json: &Json,
        type_name: Option<&str>,
        key: Option<&TypeRef>,
        value: Option<&TypeRef>,
    ) -> Result<Value, ConversionError> {
        let Json::Object(fields) = json else {
            return self.expected("an object", json);
        };
        let mut entries = Vec::with_capacity(fields.len());
        for (k, v) in fields {
            let (key, value) = self.nested(Segment::Key(k.clone()), |me| {
                // JSON keys are strings; a declared non-string key type is parsed from them.
                let key = match key.and_then(TypeRef::name) {
                    None
                    | Some("java.lang.String" | "java.lang.Object" | "java.lang.CharSequence") => {
                        Value::String(k.clone())
                    }
                    Some(_) => me.convert(&Json::String(k.clone()), key)?,
                };
                Ok((key, me.convert(v, value)?))
            })?;
            entries.push((key, value));
        }
        Ok(Value::Map(Map {
            type_name: type_name.map(Into::into),
            entries,
        }))
    }

    /// A user class: an enum by name, a POJO by its known shape, or by the JSON's own fields.
    fn class(&mut self, json: &Json, name: &str) -> Result<Value, ConversionError> {
        if let Some(constants) = self.registry.enum_constants(name) {
            return match json {
                Json::String(s) if constants.iter().any(|c| c == s) => {
                    Ok(java::enum_value(name, s))
                }
                Json::String(s) => self.fail(format!(
                    "{s:?} is not a constant of enum {name} (one of {})",
                    constants.join(", ")
                )),
                _ => self.expected(&format!("the name of a constant of enum {name}"), json),
            };
        }
        match json {
            Json::Object(fields) => match self.registry.class(name).cloned() {
                Some(shape) => {
                    for key in fields.keys() {
                        if !shape.properties.iter().any(|(p, _)| p == key) {
                            return self.nested(Segment::Field(key.clone()), |me| {
                                me.fail(format!("{name} has no property {key:?}"))
                            });
                        }
                    }
                    let class = self.class_def(name, || {
                        shape.properties.iter().map(|(p, _)| p.clone()).collect()
                    });
                    let mut values = Vec::with_capacity(shape.properties.len());
                    for (prop, ty) in &shape.properties {
                        let value = match fields.get(prop) {
                            Some(v) => self.nested(Segment::Field(prop.clone()), |me| {
                                me.convert(v, Some(ty))
                            })?,
                            None => default_of(ty),
                        };
                        values.push(value);
                    }
                    Ok(Value::Object(Object {
                        class,
                        fields: values,
                    }))
                }
                None => {
                    // Unknown shape: the JSON's own fields, inferred, under the declared class.
                    let class = self.class_def_exact(name, fields.keys().cloned().collect());
                    let mut values = Vec::with_capacity(fields.len());
                    for (k, v) in fields {
                        values.push(self.nested(Segment::Field(k.clone()), |me| me.infer(v))?);
                    }
                    Ok(Value::Object(Object {
                        class,
                        fields: values,
                    }))
                }
            },
            // A string where an unknown class is declared is most likely an enum constant.
            Json::String(s) if self.registry.class(name).is_none() => Ok(java::enum_value(name, s)),
            _ => self.expected(&format!("an object ({name})"), json),
        }
    }

    fn class_def(&mut self, name: &str, fields: impl FnOnce() -> Vec<String>) -> Arc<ClassDef> {
        Arc::clone(self.classes.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(ClassDef {
                name: name.to_owned(),
                fields: fields(),
            })
        }))
    }

    fn class_def_exact(&mut self, name: &str, fields: Vec<String>) -> Arc<ClassDef> {
        match self.classes.get(name) {
            Some(c) if c.fields == fields => Arc::clone(c),
            _ => Arc::new(ClassDef {
                name: name.to_owned(),
                fields,
            }),
        }
    }

    /// No declared type: JSON's own types, the way Java's generic invocation reads them.
    fn infer(&mut self, json: &Json) -> Result<Value, ConversionError> {
        Ok(match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => infer_number(n),
            Json::String(s) => Value::String(s.clone()),
            Json::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.nested(Segment::Index(i), |me| me.infer(item))?);
                }
                Value::List(List::untyped(out))
            }
            Json::Object(fields) => {
                let mut entries = Vec::with_capacity(fields.len());
                for (k, v) in fields {
                    entries.push((
                        Value::String(k.clone()),
                        self.nested(Segment::Key(k.clone()), |me| me.infer(v))?,
                    ));
                }
                Value::Map(Map::untyped(entries))
            }
        })
    }
}

/// Integers that fit an int are ints, larger ones longs, larger still and fractions doubles.
fn infer_number(n: &Number) -> Value {
    let text = n.to_string();
    if let Ok(i) = text.parse::<i64>() {
        return match i32::try_from(i) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Long(i),
        };
    }
    Value::Double(text.parse().unwrap_or(f64::NAN))
}

/// What Java leaves in a property the JSON did not mention.
fn default_of(ty: &TypeRef) -> Value {
    match ty.name() {
        Some("boolean") => Value::Bool(false),
        Some("byte" | "short" | "int" | "char") => Value::Int(0),
        Some("long") => Value::Long(0),
        Some("float" | "double") => Value::Double(0.0),
        _ => Value::Null,
    }
}

/// `Some(type name on the wire)` for collection types: `None` inside for the untyped ones Java
/// writes without a name (`ArrayList`) and for interfaces, which any list satisfies.
fn collection_type(name: &str) -> Option<Option<&str>> {
    Some(match name {
        "java.util.List"
        | "java.util.ArrayList"
        | "java.util.Collection"
        | "java.lang.Iterable"
        | "java.util.AbstractList" => None,
        "java.util.Set" | "java.util.HashSet" => Some("java.util.HashSet"),
        "java.util.LinkedHashSet"
        | "java.util.TreeSet"
        | "java.util.SortedSet"
        | "java.util.LinkedList"
        | "java.util.Vector"
        | "java.util.ArrayDeque"
        | "java.util.Queue"
        | "java.util.Deque"
        | "java.util.concurrent.CopyOnWriteArrayList" => Some(match name {
            "java.util.SortedSet" => "java.util.TreeSet",
            "java.util.Queue" | "java.util.Deque" => "java.util.ArrayDeque",
            other => other,
        }),
        _ => return None,
    })
}

fn map_type(name: &str) -> Option<Option<&str>> {
    Some(match name {
        "java.util.Map" | "java.util.HashMap" | "java.util.AbstractMap" => None,
        "java.util.SortedMap" | "java.util.NavigableMap" => Some("java.util.TreeMap"),
        "java.util.LinkedHashMap"
        | "java.util.TreeMap"
        | "java.util.Hashtable"
        | "java.util.concurrent.ConcurrentHashMap"
        | "java.util.concurrent.ConcurrentMap"
        | "java.util.Properties" => Some(match name {
            "java.util.concurrent.ConcurrentMap" => "java.util.concurrent.ConcurrentHashMap",
            other => other,
        }),
        _ => return None,
    })
}

/// The type Java's array serializer writes: `[int`, `[string`, `[object`, `[java.lang.Long`, and
/// `[[int` for nested arrays.
fn array_type_name(elem: &TypeRef) -> String {
    let inner = match elem {
        TypeRef::Array(inner) => return format!("[{}", array_type_name(inner)),
        TypeRef::Named { name, .. } => name.as_str(),
    };
    match inner {
        "java.lang.String" => "[string".to_owned(),
        "java.lang.Object" => "[object".to_owned(),
        "java.util.Date" => "[date".to_owned(),
        other => format!("[{other}"),
    }
}

/// What `new java.math.BigDecimal(String)` accepts.
fn is_decimal(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = (!int.is_empty() || !frac.is_empty()) && digits(int) && digits(frac);
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.len() <= 9 && digits(e)
    });
    mantissa_ok && exponent_ok
}
