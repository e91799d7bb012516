//! Java parameter descriptors, as Dubbo2 requests carry them (`Ljava/lang/String;I[J`).
//!
//! The JVM grammar: `Z B C S I J F D V` for primitives and void, `Lpkg/Name;` for classes, and a
//! `[` prefix per array dimension. [`JavaType`] also reads the names people and Dubbo's service
//! definitions write (`int`, `java.lang.String`, `long[]`, `java.util.List<Foo>`, `[I`).

use std::borrow::Cow;
use std::fmt;

use crate::Error;

/// The JVM's limit on array dimensions. Also what keeps hostile descriptors from nesting types
/// deep enough to overflow the stack when they are dropped or printed.
pub const MAX_ARRAY_DIMENSIONS: usize = 255;

/// A Java type as it appears in a method signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JavaType {
    Boolean,
    Byte,
    Char,
    Short,
    Int,
    Long,
    Float,
    Double,
    Void,
    /// A class or interface, by its dotted binary name (`java.lang.String`, `a.B$C`).
    Class(String),
    Array(Box<JavaType>),
}

impl JavaType {
    pub fn class(name: impl Into<String>) -> Self {
        JavaType::Class(name.into())
    }

    /// Reads a type name in source form (`int`, `java.lang.String`, `long[][]`, generics
    /// ignored) or in `Class.getName()` form for arrays (`[I`, `[Ljava.lang.String;`).
    pub fn from_name(name: &str) -> Result<JavaType, Error> {
        let trimmed = name.trim();
        if trimmed.starts_with('[') {
            let mut types = parse_descriptor(&trimmed.replace('.', "/"))?;
            return match (types.pop(), types.is_empty()) {
                (Some(t), true) => Ok(t),
                _ => Err(invalid(name, 0, "expected exactly one type")),
            };
        }
        let stripped = strip_generics(trimmed);
        let (mut base, mut dims) = (stripped.as_ref(), 0);
        while let Some(inner) = base.strip_suffix("[]") {
            base = inner.trim_end();
            dims += 1;
        }
        if let Some(inner) = base.strip_suffix("...") {
            base = inner.trim_end();
            dims += 1;
        }
        if dims > MAX_ARRAY_DIMENSIONS {
            return Err(invalid(name, 0, "more than 255 array dimensions"));
        }
        let mut ty = match base {
            "boolean" => JavaType::Boolean,
            "byte" => JavaType::Byte,
            "char" => JavaType::Char,
            "short" => JavaType::Short,
            "int" => JavaType::Int,
            "long" => JavaType::Long,
            "float" => JavaType::Float,
            "double" => JavaType::Double,
            "void" => JavaType::Void,
            "" => return Err(invalid(name, 0, "empty type name")),
            class
                if class
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '.' | '$' | '_')) =>
            {
                JavaType::Class(class.to_owned())
            }
            _ => return Err(invalid(name, 0, "not a Java type name")),
        };
        for _ in 0..dims {
            ty = JavaType::Array(Box::new(ty));
        }
        Ok(ty)
    }

    /// Appends this type's descriptor.
    pub fn write_descriptor(&self, out: &mut String) {
        match self {
            JavaType::Boolean => out.push('Z'),
            JavaType::Byte => out.push('B'),
            JavaType::Char => out.push('C'),
            JavaType::Short => out.push('S'),
            JavaType::Int => out.push('I'),
            JavaType::Long => out.push('J'),
            JavaType::Float => out.push('F'),
            JavaType::Double => out.push('D'),
            JavaType::Void => out.push('V'),
            JavaType::Class(name) => {
                out.push('L');
                out.extend(name.chars().map(|c| if c == '.' { '/' } else { c }));
                out.push(';');
            }
            JavaType::Array(inner) => {
                out.push('[');
                inner.write_descriptor(out);
            }
        }
    }

    /// The name `Class.getName()` gives: `int`, `java.lang.String`, and for arrays the
    /// descriptor with dots (`[I`, `[Ljava.lang.String;`). Triple's wrapper messages carry
    /// argument types in this form.
    pub fn class_name(&self) -> String {
        match self {
            JavaType::Array(_) => {
                let mut out = String::new();
                self.write_descriptor(&mut out);
                out.replace('/', ".")
            }
            other => other.to_string(),
        }
    }

    pub fn is_primitive(&self) -> bool {
        !matches!(self, JavaType::Class(_) | JavaType::Array(_))
    }
}

/// Source-form name: `int`, `java.lang.String`, `long[]`.
impl fmt::Display for JavaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JavaType::Boolean => f.write_str("boolean"),
            JavaType::Byte => f.write_str("byte"),
            JavaType::Char => f.write_str("char"),
            JavaType::Short => f.write_str("short"),
            JavaType::Int => f.write_str("int"),
            JavaType::Long => f.write_str("long"),
            JavaType::Float => f.write_str("float"),
            JavaType::Double => f.write_str("double"),
            JavaType::Void => f.write_str("void"),
            JavaType::Class(name) => f.write_str(name),
            JavaType::Array(inner) => write!(f, "{inner}[]"),
        }
    }
}

fn strip_generics(name: &str) -> Cow<'_, str> {
    match (name.find('<'), name.rfind('>')) {
        (Some(start), Some(end)) if end > start => {
            // `List<Foo>[]` keeps its array suffix.
            let suffix = name[end + 1..].trim();
            if suffix.is_empty() {
                Cow::Borrowed(name[..start].trim_end())
            } else {
                Cow::Owned(format!("{}{}", name[..start].trim_end(), suffix))
            }
        }
        _ => Cow::Borrowed(name),
    }
}

/// Parses a parameter descriptor (the empty string is a method without parameters).
pub fn parse_descriptor(descriptor: &str) -> Result<Vec<JavaType>, Error> {
    let bytes = descriptor.as_bytes();
    let mut types = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let (ty, next) = parse_one(descriptor, i)?;
        types.push(ty);
        i = next;
    }
    Ok(types)
}

fn parse_one(descriptor: &str, start: usize) -> Result<(JavaType, usize), Error> {
    let bytes = descriptor.as_bytes();
    let mut dims = 0;
    let mut i = start;
    while bytes.get(i) == Some(&b'[') {
        dims += 1;
        i += 1;
        if dims > MAX_ARRAY_DIMENSIONS {
            return Err(invalid(descriptor, i, "more than 255 array dimensions"));
        }
    }
    let code = *bytes
        .get(i)
        .ok_or_else(|| invalid(descriptor, i, "array without element type"))?;
    let (mut ty, next) = match code {
        b'Z' => (JavaType::Boolean, i + 1),
        b'B' => (JavaType::Byte, i + 1),
        b'C' => (JavaType::Char, i + 1),
        b'S' => (JavaType::Short, i + 1),
        b'I' => (JavaType::Int, i + 1),
        b'J' => (JavaType::Long, i + 1),
        b'F' => (JavaType::Float, i + 1),
        b'D' => (JavaType::Double, i + 1),
        b'V' if dims == 0 => (JavaType::Void, i + 1),
        b'L' => {
            let end = descriptor[i..]
                .find(';')
                .map(|e| i + e)
                .ok_or_else(|| invalid(descriptor, i, "class name without ';'"))?;
            let name = &descriptor[i + 1..end];
            if name.is_empty() || name.contains(['.', '[', '<']) {
                return Err(invalid(descriptor, i + 1, "malformed class name"));
            }
            (JavaType::Class(name.replace('/', ".")), end + 1)
        }
        _ => return Err(invalid(descriptor, i, "unknown type code")),
    };
    for _ in 0..dims {
        ty = JavaType::Array(Box::new(ty));
    }
    Ok((ty, next))
}

/// Writes the descriptor of a parameter list.
pub fn to_descriptor<'a>(types: impl IntoIterator<Item = &'a JavaType>) -> String {
    let mut out = String::new();
    for ty in types {
        ty.write_descriptor(&mut out);
    }
    out
}

fn invalid(descriptor: &str, offset: usize, reason: &'static str) -> Error {
    Error::InvalidDescriptor {
        descriptor: descriptor.to_owned(),
        offset,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_the_jvm_grammar() {
        let desc = "Ljava/lang/String;I[J[[Lorg/Foo$Bar;ZBCSFD";
        let types = parse_descriptor(desc).expect("valid");
        assert_eq!(types.len(), 10);
        assert_eq!(types[0], JavaType::class("java.lang.String"));
        assert_eq!(types[2], JavaType::Array(Box::new(JavaType::Long)));
        assert_eq!(types[3].to_string(), "org.Foo$Bar[][]");
        assert_eq!(to_descriptor(&types), desc);
        assert_eq!(
            parse_descriptor("").expect("empty is no parameters"),
            vec![]
        );
    }

    #[test]
    fn reads_source_and_class_names() {
        let cases = [
            ("int", "I"),
            ("java.lang.String", "Ljava/lang/String;"),
            ("long[]", "[J"),
            ("java.util.List<org.demo.User>", "Ljava/util/List;"),
            (
                "java.util.Map<java.lang.String, java.util.List<java.lang.Long>>[]",
                "[Ljava/util/Map;",
            ),
            ("[I", "[I"),
            ("[Ljava.lang.String;", "[Ljava/lang/String;"),
            ("java.lang.Object...", "[Ljava/lang/Object;"),
        ];
        for (name, desc) in cases {
            let ty = JavaType::from_name(name).expect(name);
            assert_eq!(to_descriptor([&ty]), desc, "{name}");
        }
    }

    #[test]
    fn rejects_malformed_descriptors_with_position() {
        for (bad, offset) in [
            ("Ljava/lang/String", 0),
            ("[", 1),
            ("Q", 0),
            ("I[V", 2),
            ("L;", 1),
            ("Ljava.lang.String;", 1),
        ] {
            match parse_descriptor(bad) {
                Err(Error::InvalidDescriptor { offset: at, .. }) => assert_eq!(at, offset, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(JavaType::from_name("").is_err());
        let deep = format!("{}I", "[".repeat(1_000_000));
        assert!(matches!(
            parse_descriptor(&deep),
            Err(Error::InvalidDescriptor { offset: 256, .. })
        ));
        assert!(JavaType::from_name(&format!("int{}", "[]".repeat(300))).is_err());
        assert!(parse_descriptor(&format!("{}I", "[".repeat(255))).is_ok());
        assert!(JavaType::from_name("not a type").is_err());
    }
}
