//! Declared Java types, as service definitions and route configs write them, and the shapes of
//! the classes they name.
//!
//! A [`TypeRef`] is a parsed type name with its generic arguments (`java.util.Map<java.lang.String,
//! java.util.List<org.demo.User>>`, `long[]`); a [`TypeRegistry`] knows, for POJO classes, their
//! properties and types (Dubbo's service definition `types` list), and for enums, their
//! constants. Conversion uses both to turn JSON into exactly the hessian Java expects.

use std::collections::HashMap;
use std::fmt;

/// A Java type with its generic arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TypeRef {
    /// A primitive, boxed, library or user class, with generic arguments if any were written.
    Named { name: String, args: Vec<TypeRef> },
    /// `T[]`.
    Array(Box<TypeRef>),
}

/// Why a type name could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Java type {text:?}: {reason}")]
pub struct InvalidType {
    pub text: String,
    pub reason: &'static str,
}

const MAX_TYPE_DEPTH: usize = 32;

impl TypeRef {
    pub fn named(name: &str) -> TypeRef {
        TypeRef::Named {
            name: name.to_owned(),
            args: Vec::new(),
        }
    }

    /// Parses `java.util.List<Foo>`, `int[]`, `Map<K, V>[]`, and the `Class.getName()` array forms
    /// (`[I`, `[Ljava.lang.String;`). Wildcards (`? extends Foo`) read as their bound.
    pub fn parse(text: &str) -> Result<TypeRef, InvalidType> {
        let invalid = |reason| InvalidType {
            text: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.starts_with('[') {
            let ty = dubbo_codec::descriptor::JavaType::from_name(trimmed)
                .map_err(|_| invalid("malformed array type"))?;
            return Ok(Self::from_java_type(&ty));
        }
        let mut parser = Parser {
            text: trimmed,
            pos: 0,
            depth: 0,
        };
        let ty = parser.parse_type().map_err(invalid)?;
        parser.skip_ws();
        if parser.pos != trimmed.len() {
            return Err(invalid("unexpected text after the type"));
        }
        Ok(ty)
    }

    fn from_java_type(ty: &dubbo_codec::descriptor::JavaType) -> TypeRef {
        match ty {
            dubbo_codec::descriptor::JavaType::Array(inner) => {
                TypeRef::Array(Box::new(Self::from_java_type(inner)))
            }
            other => TypeRef::named(&other.to_string()),
        }
    }

    /// The class name without generics (`java.util.List`), or `None` for arrays.
    pub fn name(&self) -> Option<&str> {
        match self {
            TypeRef::Named { name, .. } => Some(name),
            TypeRef::Array(_) => None,
        }
    }

    /// The `n`-th generic argument, if written.
    pub fn arg(&self, n: usize) -> Option<&TypeRef> {
        match self {
            TypeRef::Named { args, .. } => args.get(n),
            TypeRef::Array(_) => None,
        }
    }

    /// The erased type as a descriptor element (`Ljava/util/List;`, `[J`).
    pub fn descriptor(&self) -> String {
        let mut out = String::new();
        self.write_descriptor(&mut out);
        out
    }

    fn write_descriptor(&self, out: &mut String) {
        use dubbo_codec::descriptor::JavaType;
        match self {
            TypeRef::Array(inner) => {
                out.push('[');
                inner.write_descriptor(out);
            }
            TypeRef::Named { name, .. } => {
                // A name that JavaType cannot read was rejected by the parser already.
                let ty =
                    JavaType::from_name(name).unwrap_or_else(|_| JavaType::Class(name.clone()));
                ty.write_descriptor(out);
            }
        }
    }
}

impl fmt::Display for TypeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeRef::Array(inner) => write!(f, "{inner}[]"),
            TypeRef::Named { name, args } if args.is_empty() => f.write_str(name),
            TypeRef::Named { name, args } => {
                write!(f, "{name}<")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(">")
            }
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.text[self.pos..].starts_with(char::is_whitespace) {
            self.pos += self.text[self.pos..]
                .chars()
                .next()
                .map_or(1, char::len_utf8);
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.text[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn parse_type(&mut self) -> Result<TypeRef, &'static str> {
        self.depth += 1;
        if self.depth > MAX_TYPE_DEPTH {
            return Err("nested too deeply");
        }
        self.skip_ws();
        if self.eat("?") {
            // `?`, `? extends T`, `? super T`: the bound is the best guess, else Object.
            self.skip_ws();
            let bound = if self.eat("extends") || self.eat("super") {
                self.parse_type()?
            } else {
                TypeRef::named("java.lang.Object")
            };
            self.depth -= 1;
            return Ok(bound);
        }
        let start = self.pos;
        let rest = &self.text[self.pos..];
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '.' | '$' | '_')))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err("expected a type name");
        }
        self.pos += len;
        let name = self.text[start..self.pos].to_owned();
        let mut args = Vec::new();
        if self.eat("<") {
            loop {
                args.push(self.parse_type()?);
                if self.eat(",") {
                    continue;
                }
                if self.eat(">") {
                    break;
                }
                return Err("expected ',' or '>' in generic arguments");
            }
        }
        let mut ty = TypeRef::Named { name, args };
        while self.eat("[") {
            if !self.eat("]") {
                return Err("expected ']'");
            }
            ty = TypeRef::Array(Box::new(ty));
        }
        if self.eat("...") {
            ty = TypeRef::Array(Box::new(ty));
        }
        self.depth -= 1;
        Ok(ty)
    }
}

/// A POJO class: its properties, in the order Java serializes them, with their types.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassShape {
    pub properties: Vec<(String, TypeRef)>,
}

/// What is known about user classes.
#[derive(Debug, Clone, Default)]
pub struct TypeRegistry {
    classes: HashMap<String, ClassShape>,
    enums: HashMap<String, Vec<String>>,
}

impl TypeRegistry {
    pub fn add_class(&mut self, name: &str, properties: Vec<(String, TypeRef)>) {
        self.classes
            .insert(name.to_owned(), ClassShape { properties });
    }

    pub fn add_enum(&mut self, name: &str, constants: Vec<String>) {
        self.enums.insert(name.to_owned(), constants);
    }

    pub fn class(&self, name: &str) -> Option<&ClassShape> {
        self.classes.get(name)
    }

    pub fn enum_constants(&self, name: &str) -> Option<&[String]> {
        self.enums.get(name).map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_generics_arrays_and_wildcards() {
        let t = TypeRef::parse("java.util.Map<java.lang.String, java.util.List<org.demo.User>>")
            .expect("valid");
        assert_eq!(t.name(), Some("java.util.Map"));
        assert_eq!(
            t.arg(1).and_then(|l| l.arg(0)).and_then(TypeRef::name),
            Some("org.demo.User")
        );
        assert_eq!(
            t.to_string(),
            "java.util.Map<java.lang.String, java.util.List<org.demo.User>>"
        );
        assert_eq!(t.descriptor(), "Ljava/util/Map;");
        assert_eq!(
            TypeRef::parse("long[][]").expect("valid").descriptor(),
            "[[J"
        );
        assert_eq!(
            TypeRef::parse("[Ljava.lang.String;")
                .expect("valid")
                .to_string(),
            "java.lang.String[]"
        );
        assert_eq!(
            TypeRef::parse("List<? extends Number>")
                .expect("valid")
                .arg(0)
                .and_then(TypeRef::name),
            Some("Number")
        );
        assert_eq!(TypeRef::parse("int").expect("valid").descriptor(), "I");
        for bad in ["", "List<", "Map<A,>", "int[", "a b", "<>"] {
            assert!(TypeRef::parse(bad).is_err(), "{bad:?}");
        }
        assert!(TypeRef::parse(&format!("{}X{}", "L<".repeat(100), ">".repeat(100))).is_err());
    }
}
