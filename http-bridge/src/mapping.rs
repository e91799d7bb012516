//! HTTP request body → a Dubbo call's parameter descriptor and arguments.
//!
//! The body forms (docs/http-mapping.md):
//! * a JSON array: positional arguments;
//! * a JSON object: named arguments, when the method's parameter names are known;
//! * pixiu's `{"types": "int,java.lang.String", "values": [1, "a"]}`, for migration;
//! * empty, `[]` or `{}`: a method without parameters.
//!
//! Types come from the method's signature when one is known (route config, or later the
//! metadata store), else from pixiu's `types`, else from the JSON itself (documented inference).
//! Overloads are chosen by argument count, then by the shape of the JSON (positional) or by the
//! names that cover the fields (named).

use dubbo_codec::hessian::Value;
use serde_json::Value as Json;

use crate::to_hessian::{ConversionError, ToHessian};
use crate::types::{InvalidType, TypeRef, TypeRegistry};

/// One declared parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Dubbo definitions carry no names; routes may add them. Unnamed parameters are `arg0`, …
    pub name: Option<String>,
    pub ty: TypeRef,
}

/// A method signature: its parameters in order.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSig {
    pub name: String,
    pub params: Vec<Param>,
}

impl MethodSig {
    /// The JVM parameter descriptor.
    pub fn descriptor(&self) -> String {
        self.params.iter().map(|p| p.ty.descriptor()).collect()
    }

    fn param_name(&self, i: usize) -> String {
        self.params[i]
            .name
            .clone()
            .unwrap_or_else(|| format!("arg{i}"))
    }
}

/// Why a body cannot become a call. All are the caller's to fix (HTTP 400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MappingError {
    #[error("request body is not valid JSON: {0}")]
    BadJson(String),
    #[error("{method} takes {expected} arguments, the request has {got}")]
    Arity {
        method: String,
        expected: String,
        got: usize,
    },
    #[error("{method} has no parameter named {name:?} (parameters: {known})")]
    UnknownArgument {
        method: String,
        name: String,
        known: String,
    },
    #[error("named arguments need the parameter names of {method}: send a JSON array of positional arguments, or declare the method's parameters in the route")]
    NamesUnknown { method: String },
    #[error("pixiu body: {0}")]
    Pixiu(String),
    #[error(transparent)]
    Type(#[from] InvalidType),
    #[error(transparent)]
    Conversion(#[from] ConversionError),
    #[error("the body must be a JSON array of arguments, an object of named arguments or pixiu's {{\"types\", \"values\"}}")]
    Shape,
}

/// A call ready to encode.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedCall {
    pub parameter_types: String,
    pub arguments: Vec<Value>,
}

/// Parses a body (empty means no arguments).
pub fn parse_body(body: &[u8]) -> Result<Json, MappingError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Json::Array(Vec::new()));
    }
    serde_json::from_slice(body).map_err(|e| MappingError::BadJson(e.to_string()))
}

/// Maps a generic-call body onto `method`, given the overloads known for it (possibly none).
pub fn map_generic(
    method: &str,
    body: &Json,
    overloads: &[MethodSig],
    registry: &TypeRegistry,
) -> Result<MappedCall, MappingError> {
    if let Some((types, values)) = pixiu_form(body)? {
        let sig = MethodSig {
            name: method.to_owned(),
            params: types
                .iter()
                .map(|t| {
                    Ok(Param {
                        name: None,
                        ty: TypeRef::parse(t)?,
                    })
                })
                .collect::<Result<_, InvalidType>>()?,
        };
        // The caller's explicit types choose the overload, as in Dubbo's generic invocation. A
        // declared overload with the same erased types is used for its generic arguments
        // (`List<User>` where the caller wrote `java.util.List`).
        let wanted = sig.descriptor();
        let sig = overloads
            .iter()
            .find(|s| s.descriptor() == wanted)
            .unwrap_or(&sig);
        return positional(sig, values, registry);
    }
    match body {
        Json::Array(values) => {
            if choose(method, overloads, values.len())?.is_none() {
                return inferred(values, registry);
            }
            by_shape(overloads, values, registry)
        }
        Json::Object(fields) => {
            if fields.is_empty() {
                return map_generic(method, &Json::Array(Vec::new()), overloads, registry);
            }
            if overloads.is_empty() {
                return Err(MappingError::NamesUnknown {
                    method: method.to_owned(),
                });
            }
            // Among the overloads whose names cover the fields, the one leaving fewest
            // parameters out (`{"arg0": x}` calls `f(a)`, not `f(a, b)` with a null `b`).
            let sig = overloads
                .iter()
                .filter(|s| {
                    fields
                        .keys()
                        .all(|k| (0..s.params.len()).any(|i| s.param_name(i) == *k))
                })
                .min_by_key(|s| s.params.len().saturating_sub(fields.len()))
                .ok_or_else(|| {
                    let sig = &overloads[0];
                    let unknown = fields
                        .keys()
                        .find(|k| !(0..sig.params.len()).any(|i| sig.param_name(i) == **k))
                        .cloned()
                        .unwrap_or_default();
                    MappingError::UnknownArgument {
                        method: method.to_owned(),
                        name: unknown,
                        known: (0..sig.params.len())
                            .map(|i| sig.param_name(i))
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                })?;
            let mut conv = ToHessian::new(registry);
            let mut arguments = Vec::with_capacity(sig.params.len());
            for (i, param) in sig.params.iter().enumerate() {
                let name = sig.param_name(i);
                let json = fields.get(&name).unwrap_or(&Json::Null);
                arguments.push(conv.argument(i, Some(&name), json, Some(&param.ty))?);
            }
            Ok(MappedCall {
                parameter_types: sig.descriptor(),
                arguments,
            })
        }
        _ => Err(MappingError::Shape),
    }
}

/// `{"types": ..., "values": [...]}` with exactly those keys; `types` a comma-separated string
/// or an array of type names.
/// Pixiu's type names and values.
type PixiuForm<'a> = (Vec<String>, &'a Vec<Json>);

fn pixiu_form(body: &Json) -> Result<Option<PixiuForm<'_>>, MappingError> {
    let Json::Object(fields) = body else {
        return Ok(None);
    };
    if fields.len() != 2 || !fields.contains_key("types") || !fields.contains_key("values") {
        return Ok(None);
    }
    let values = match &fields["values"] {
        Json::Array(values) => values,
        _ => return Err(MappingError::Pixiu("\"values\" must be an array".into())),
    };
    let types: Vec<String> = match &fields["types"] {
        Json::String(s) if s.trim().is_empty() => Vec::new(),
        Json::String(s) => split_types(s),
        Json::Array(items) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| MappingError::Pixiu("\"types\" must hold strings".into()))?,
        _ => {
            return Err(MappingError::Pixiu(
                "\"types\" must be a string or an array of strings".into(),
            ))
        }
    };
    if types.len() != values.len() {
        return Err(MappingError::Pixiu(format!(
            "{} types for {} values",
            types.len(),
            values.len()
        )));
    }
    Ok(Some((types, values)))
}

/// Splits `a,b<c,d>,e` at top-level commas only.
fn split_types(s: &str) -> Vec<String> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim().to_owned());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim().to_owned());
    out
}

/// The overload taking `count` arguments; `None` when nothing is declared; an error when
/// overloads are declared but none has that arity.
fn choose<'s>(
    method: &str,
    overloads: &'s [MethodSig],
    count: usize,
) -> Result<Option<&'s MethodSig>, MappingError> {
    if overloads.is_empty() {
        return Ok(None);
    }
    match overloads.iter().find(|s| s.params.len() == count) {
        Some(sig) => Ok(Some(sig)),
        None => {
            let mut arities: Vec<String> = overloads
                .iter()
                .map(|s| s.params.len().to_string())
                .collect();
            arities.dedup();
            Err(MappingError::Arity {
                method: method.to_owned(),
                expected: arities.join(" or "),
                got: count,
            })
        }
    }
}

/// Among the overloads taking as many arguments as given, the one the JSON fits best: the most
/// arguments whose JSON kind is the type's natural one (a string for `String`, a number for
/// `long`, ...) first, published order breaking ties; one whose conversion fails is passed over
/// for the next. When none converts, the best fit's error is the answer.
fn by_shape(
    overloads: &[MethodSig],
    values: &[Json],
    registry: &TypeRegistry,
) -> Result<MappedCall, MappingError> {
    let mut candidates: Vec<(usize, &MethodSig)> = overloads
        .iter()
        .filter(|s| s.params.len() == values.len())
        .map(|s| {
            let fit = s
                .params
                .iter()
                .zip(values)
                .filter(|(p, v)| natural_fit(&p.ty, v, registry))
                .count();
            (fit, s)
        })
        .collect();
    candidates.sort_by_key(|(fit, _)| std::cmp::Reverse(*fit));
    let mut first_error = None;
    for (_, sig) in candidates {
        match positional(sig, values, registry) {
            Ok(call) => return Ok(call),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(MappingError::Shape))
}

/// Whether `json` is the kind of JSON value `ty` is naturally written as.
fn natural_fit(ty: &TypeRef, json: &Json, registry: &TypeRegistry) -> bool {
    let name = match ty {
        TypeRef::Array(inner) if inner.name() == Some("byte") => return json.is_string(),
        TypeRef::Array(_) => return json.is_array(),
        TypeRef::Named { name, .. } => name.as_str(),
    };
    // Fully qualified: a user's `org.x.String` is not `java.lang.String`.
    let java = |simple: &[&str]| {
        ["java.lang.", "java.util.", "java.math."]
            .iter()
            .find_map(|package| name.strip_prefix(package))
            .is_some_and(|s| simple.contains(&s))
    };
    let primitive = |names: &[&str]| names.contains(&name);
    match json {
        Json::Null => !primitive(&[
            "int", "long", "short", "byte", "double", "float", "boolean", "char",
        ]),
        Json::Bool(_) => primitive(&["boolean"]) || java(&["Boolean"]),
        Json::Number(_) => {
            primitive(&["int", "long", "short", "byte", "double", "float"])
                || java(&[
                    "Integer",
                    "Long",
                    "Short",
                    "Byte",
                    "Double",
                    "Float",
                    "BigDecimal",
                    "BigInteger",
                    "Number",
                ])
        }
        Json::String(_) => {
            primitive(&["char"])
                || java(&["String", "Character", "CharSequence"])
                || registry.enum_constants(name).is_some()
        }
        Json::Array(_) => java(&[
            "List",
            "ArrayList",
            "LinkedList",
            "Collection",
            "Set",
            "HashSet",
            "LinkedHashSet",
            "TreeSet",
            "Iterable",
        ]),
        Json::Object(_) => {
            java(&["Map", "HashMap", "LinkedHashMap", "TreeMap"]) || registry.class(name).is_some()
        }
    }
}

fn positional(
    sig: &MethodSig,
    values: &[Json],
    registry: &TypeRegistry,
) -> Result<MappedCall, MappingError> {
    if sig.params.len() != values.len() {
        return Err(MappingError::Arity {
            method: sig.name.clone(),
            expected: sig.params.len().to_string(),
            got: values.len(),
        });
    }
    let mut conv = ToHessian::new(registry);
    let arguments = sig
        .params
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (p, v))| conv.argument(i, p.name.as_deref(), v, Some(&p.ty)))
        .collect::<Result<_, _>>()?;
    Ok(MappedCall {
        parameter_types: sig.descriptor(),
        arguments,
    })
}

/// No declared types: each argument's Java type is inferred from its JSON (the rule in
/// docs/http-mapping.md), and the value converted by that type.
fn inferred(values: &[Json], registry: &TypeRegistry) -> Result<MappedCall, MappingError> {
    let params: Vec<Param> = values
        .iter()
        .map(|v| Param {
            name: None,
            ty: TypeRef::named(inferred_type(v)),
        })
        .collect();
    positional(
        &MethodSig {
            name: String::new(),
            params,
        },
        values,
        registry,
    )
}

/// The documented inference: `boolean`, `int` (or `long` when it does not fit), `double`,
/// `java.lang.String`, `java.util.List`, `java.util.Map`, and `java.lang.Object` for null.
pub fn inferred_type(json: &Json) -> &'static str {
    match json {
        Json::Null => "java.lang.Object",
        Json::Bool(_) => "boolean",
        Json::Number(n) => match n.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => "int",
            Some(_) => "long",
            None => "double",
        },
        Json::String(_) => "java.lang.String",
        Json::Array(_) => "java.util.List",
        Json::Object(_) => "java.util.Map",
    }
}
