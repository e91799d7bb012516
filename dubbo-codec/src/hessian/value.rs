//! The Hessian value model.
//!
//! It mirrors the wire, not a Rust data model: lists and maps keep their Java type names, objects
//! share their class definition, and a back-reference stays a [`Value::Ref`] to the n-th list,
//! map or object of the stream (numbered in the order they start, as Java numbers them). Keeping
//! references as indices, instead of rebuilding a shared graph, is what makes cyclic Java objects
//! decodable without `Rc` cycles and lets a decoded value encode back to the same bytes.

use std::sync::Arc;

/// One Hessian value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Java `int` (and `short`, `byte`, which travel as ints).
    Int(i32),
    /// Java `long`.
    Long(i64),
    /// Java `double` (and `float`, which travels as a double).
    Double(f64),
    /// `java.util.Date`: milliseconds since the Unix epoch, UTC.
    Date(i64),
    /// `java.lang.String` (and `char`, which travels as a one-character string).
    String(String),
    /// `byte[]`.
    Binary(Vec<u8>),
    List(List),
    Map(Map),
    Object(Object),
    /// A back-reference to the n-th list, map or object of the stream, counted from 0 in the
    /// order they start (a container's number is taken before its children's).
    Ref(u32),
}

/// A list or Java array, with its type name when the writer gave one (`[int`, `java.util.List`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct List {
    pub type_name: Option<Arc<str>>,
    pub items: Vec<Value>,
    /// Written with an end marker (`U`/`W` … `Z`) rather than a length up front. Java writes
    /// fixed lengths; this is kept only so foreign streams re-encode to the same bytes.
    pub variable_length: bool,
}

/// A map, with its Java type name when the writer gave one (`java.util.Hashtable`). Entries keep
/// their wire order; keys can be any value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    pub type_name: Option<Arc<str>>,
    pub entries: Vec<(Value, Value)>,
}

/// An instance of a Java class: field values in the order of its class definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub class: Arc<ClassDef>,
    pub fields: Vec<Value>,
}

/// A class definition (`C`): the Java class name and its serialized field names, in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClassDef {
    pub name: String,
    pub fields: Vec<String>,
}

impl ClassDef {
    pub fn new(
        name: impl Into<String>,
        fields: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        ClassDef {
            name: name.into(),
            fields: fields.into_iter().map(Into::into).collect(),
        }
    }

    /// Position of a field by name.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f == name)
    }
}

impl Object {
    /// The value of a field by name.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.class
            .field_index(field)
            .and_then(|i| self.fields.get(i))
    }
}

impl List {
    pub fn untyped(items: Vec<Value>) -> Self {
        List {
            type_name: None,
            items,
            variable_length: false,
        }
    }

    pub fn typed(type_name: &str, items: Vec<Value>) -> Self {
        List {
            type_name: Some(type_name.into()),
            items,
            variable_length: false,
        }
    }
}

impl Map {
    pub fn untyped(entries: Vec<(Value, Value)>) -> Self {
        Map {
            type_name: None,
            entries,
        }
    }

    pub fn typed(type_name: &str, entries: Vec<(Value, Value)>) -> Self {
        Map {
            type_name: Some(type_name.into()),
            entries,
        }
    }

    /// The value for a string key, for maps used as records.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

impl Value {
    /// Builds an object of a class given by name and `(field, value)` pairs in wire order.
    pub fn object(class: &str, fields: Vec<(&str, Value)>) -> Value {
        let (names, values): (Vec<&str>, Vec<Value>) = fields.into_iter().unzip();
        Value::Object(Object {
            class: Arc::new(ClassDef::new(class, names)),
            fields: values,
        })
    }

    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer, for `Int` and `Long` alike.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i64::from(i)),
            Value::Long(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Double(d) => Some(d),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&List> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The Java type name carried on the wire, if any (class name, list or map type).
    pub fn type_name(&self) -> Option<&str> {
        match self {
            Value::List(l) => l.type_name.as_deref(),
            Value::Map(m) => m.type_name.as_deref(),
            Value::Object(o) => Some(&o.class.name),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i)
    }
}

impl From<i64> for Value {
    fn from(l: i64) -> Self {
        Value::Long(l)
    }
}

impl From<f64> for Value {
    fn from(d: f64) -> Self {
        Value::Double(d)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Binary(b)
    }
}

/// A compact, Java-flavoured rendering for logs and tools: `User{id: 7L, name: "alice"}`,
/// `[1, 2]`, `java.util.TreeMap{"a": 1}`, `@0` for a back-reference.
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn items<T>(
            f: &mut std::fmt::Formatter<'_>,
            items: &[T],
            mut each: impl FnMut(&mut std::fmt::Formatter<'_>, &T) -> std::fmt::Result,
        ) -> std::fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                each(f, item)?;
            }
            Ok(())
        }
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Long(l) => write!(f, "{l}L"),
            Value::Double(d) => write!(f, "{d:?}"),
            Value::Date(ms) => write!(f, "Date({ms})"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Binary(b) => write!(f, "byte[{}]", b.len()),
            Value::Ref(i) => write!(f, "@{i}"),
            Value::List(l) => {
                f.write_str(l.type_name.as_deref().unwrap_or(""))?;
                f.write_str("[")?;
                items(f, &l.items, |f, v| write!(f, "{v}"))?;
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str(m.type_name.as_deref().unwrap_or(""))?;
                f.write_str("{")?;
                items(f, &m.entries, |f, (k, v)| write!(f, "{k}: {v}"))?;
                f.write_str("}")
            }
            Value::Object(o) => {
                write!(f, "{}{{", o.class.name)?;
                let pairs: Vec<_> = o.class.fields.iter().zip(&o.fields).collect();
                items(f, &pairs, |f, (name, v)| write!(f, "{name}: {v}"))?;
                f.write_str("}")
            }
        }
    }
}
