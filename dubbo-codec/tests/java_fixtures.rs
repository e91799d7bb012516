//! Hessian 2.0 vectors written by Java (the hessian.js fixture set, see fixtures/hessian2/README.md):
//! every file decodes to the value its name gives, and encoding that value gives the file's bytes
//! back, except the one file Java itself would no longer write that way.

use std::path::PathBuf;

use dubbo_codec::hessian::{self, java, Value};

fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hessian2/v2")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files(dir: &str) -> Vec<(String, Vec<u8>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hessian2/v2")
        .join(dir);
    let mut out: Vec<_> = std::fs::read_dir(&path)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("utf-8 name")
                .to_owned();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {dir}");
    out
}

/// Decodes the whole file, checks the value, and checks our encoding reproduces the bytes.
fn check(name: &str, bytes: &[u8], expected: &Value) {
    let decoded = hessian::from_slice(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(&decoded, expected, "{name}: decoded value");
    let encoded = hessian::to_bytes(expected).expect("encodable");
    assert!(
        encoded[..] == *bytes,
        "{name}: encoding differs\n ours: {:02x?}\njava: {:02x?}",
        &encoded[..encoded.len().min(40)],
        &bytes[..bytes.len().min(40)]
    );
}

#[test]
fn ints() {
    for (name, bytes) in files("number") {
        check(&name, &bytes, &Value::Int(name.parse().expect("int name")));
    }
}

#[test]
fn longs() {
    for (name, bytes) in files("long") {
        check(
            &name,
            &bytes,
            &Value::Long(name.parse().expect("long name")),
        );
    }
}

#[test]
fn doubles() {
    for (name, bytes) in files("double") {
        let v = match name.as_str() {
            "-0x800000" => -8_388_608.0,
            "-0x80000000" => -2_147_483_648.0,
            n => n.parse().expect("double name"),
        };
        check(&name, &bytes, &Value::Double(v));
    }
}

#[test]
fn dates() {
    for (name, bytes) in files("date") {
        let ms = if name == "now" {
            1_398_280_514_000
        } else {
            name.parse().expect("date name")
        };
        check(&name, &bytes, &Value::Date(ms));
    }
}

#[test]
fn strings() {
    for (name, bytes) in files("string") {
        let expected = match name.as_str() {
            "empty" => String::new(),
            "foo" => "foo".into(),
            "chinese" => "中文 Chinese".into(),
            n if n.starts_with("large_string_") => "A".repeat(n[13..].parse().expect("len")),
            n if n.starts_with("utf8_") => "锋".repeat(n[5..].parse().expect("len")),
            digits => digits.to_owned(),
        };
        if name == "01234567890123456789012345678901" {
            // Written by an old Java as `S 0020`; today's Java and we write the compact `30 20`.
            assert_eq!(
                hessian::from_slice(&bytes).expect("decodes"),
                Value::String(expected.clone())
            );
            assert_eq!(
                &hessian::to_bytes(&Value::String(expected.clone())).expect("enc")[..2],
                &[0x30, 0x20]
            );
            continue;
        }
        check(&name, &bytes, &Value::String(expected));
    }
}

#[test]
fn binaries() {
    for (name, bytes) in files("bytes") {
        check(
            &name,
            &bytes,
            &Value::Binary(vec![0x41; name.parse().expect("len")]),
        );
    }
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn texts(items: &[&str]) -> Vec<Value> {
    items.iter().map(|v| s(v)).collect()
}

#[test]
fn lists() {
    use hessian::List;
    let eight = texts(&["1", "2", "3", "4", "5", "6", "7", "8"]);
    let cases = [
        ("untyped_[]", Value::List(List::untyped(vec![]))),
        (
            "untyped_list",
            Value::List(List::untyped(vec![Value::Int(1), Value::Int(2), s("foo")])),
        ),
        (
            "untyped_<String>[foo,bar]",
            Value::List(List::untyped(texts(&["foo", "bar"]))),
        ),
        ("untyped_list_8", Value::List(List::untyped(eight.clone()))),
        (
            "typed_list",
            Value::List(List::typed(
                "hessian.demo.SomeArrayList",
                texts(&["ok", "some list"]),
            )),
        ),
        (
            "typed_list_8",
            Value::List(List::typed("hessian.demo.SomeArrayList", eight)),
        ),
        (
            "[int",
            Value::List(List::typed(
                "[int",
                vec![Value::Int(1), Value::Int(2), Value::Int(3)],
            )),
        ),
        (
            "[string",
            Value::List(List::typed("[string", texts(&["1", "@", "3"]))),
        ),
    ];
    for (name, expected) in cases {
        check(name, &fixture(&format!("list/{name}.bin")), &expected);
    }
}

fn car(model: &str) -> Value {
    Value::object(
        "hessian.demo.Car",
        vec![
            ("a", s("a")),
            ("c", s("c")),
            ("b", s("b")),
            ("model", s(model)),
            ("color", s("aquamarine")),
            ("mileage", Value::Int(65536)),
        ],
    )
}

#[test]
fn maps_and_objects() {
    use hessian::{List, Map};
    let cases = [
        (
            "foo_empty",
            Value::Map(Map::untyped(vec![(s("foo"), s(""))])),
        ),
        (
            "foo_bar",
            Value::Map(Map::untyped(vec![
                (s("123"), Value::Int(456)),
                (s("foo"), s("bar")),
                (s("zero"), Value::Int(0)),
                (s("中文key"), s("中文哈哈value")),
            ])),
        ),
        (
            "hashtable",
            Value::Map(Map::typed(
                "java.util.Hashtable",
                vec![(s("中文key"), s("中文哈哈value")), (s("foo"), s("bar"))],
            )),
        ),
        (
            "generic",
            Value::Map(Map::untyped(vec![
                (Value::Long(123), Value::Int(123_456)),
                (Value::Long(123_456), Value::Int(123)),
            ])),
        ),
        ("car", car("Beetle")),
        (
            "one_car_list",
            Value::List(List::untyped(vec![car("model 1")])),
        ),
        (
            "two_car_list",
            Value::List(List::untyped(vec![car("model 1"), car("model 2")])),
        ),
        (
            "car_list",
            Value::List(List::untyped(vec![
                car("model 1"),
                car("model 2"),
                car("model 3"),
            ])),
        ),
        (
            "car1",
            Value::object(
                "hessian.demo.Car",
                vec![
                    ("model", s("Beetle")),
                    ("color", s("aquamarine")),
                    ("mileage", Value::Int(65536)),
                    ("self", Value::Ref(0)),
                    ("prev", Value::Null),
                ],
            ),
        ),
    ];
    for (name, expected) in cases {
        check(name, &fixture(&format!("map/{name}.bin")), &expected);
    }
}

#[test]
fn enums_share_one_class_definition() {
    let color = |c: &str| java::enum_value("hessian.Main$Color", c);
    for name in ["red", "green", "blue"] {
        check(
            name,
            &fixture(&format!("enum/{name}.bin")),
            &color(&name.to_uppercase()),
        );
    }
    let list = Value::List(hessian::List::untyped(vec![
        color("BLUE"),
        color("RED"),
        color("GREEN"),
    ]));
    check("lists", &fixture("enum/lists.bin"), &list);
}

#[test]
fn objects_with_cycles() {
    for (name, n) in [("AtomicLong0", 0), ("AtomicLong1", 1)] {
        let expected = Value::object(
            "java.util.concurrent.atomic.AtomicLong",
            vec![("value", Value::Long(n))],
        );
        check(name, &fixture(&format!("object/{name}.bin")), &expected);
    }
    let bytes = fixture("object/ConnectionRequest.bin");
    let value = hessian::from_slice(&bytes).expect("decodes");
    let ctx = value
        .as_object()
        .and_then(|o| o.get("ctx"))
        .and_then(Value::as_object)
        .expect("ctx object");
    assert_eq!(ctx.class.name, "hessian.ConnectionRequest$RequestContext");
    assert_eq!(ctx.get("id"), Some(&Value::Int(101)));
    assert_eq!(
        ctx.get("this$0"),
        Some(&Value::Ref(0)),
        "back-reference to the outer object"
    );
    assert_eq!(hessian::to_bytes(&value).expect("enc")[..], bytes[..]);
}

#[test]
fn exceptions() {
    let cases = [
        (
            "IOException",
            "java.io.IOException",
            "this is a java IOException instance",
        ),
        (
            "UndeclaredThrowableException",
            "java.io.IOException",
            "this is a java IOException instance",
        ),
        // This wrapper has a message of its own, so it is reported rather than the wrapped one.
        (
            "UndeclaredThrowableException2",
            "java.lang.reflect.UndeclaredThrowableException",
            "模拟测试异常",
        ),
        (
            "UndeclaredThrowableException3",
            "com.taobao.hsf.exception.HSFServiceAddressNotFoundException",
            "HSFServiceAddressNotFoundException-",
        ),
    ];
    for (name, class, message) in cases {
        let bytes = fixture(&format!("exception/{name}.bin"));
        let value = hessian::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            java::throwable(&value),
            Some((class, Some(message))),
            "{name}"
        );
        assert_eq!(
            hessian::to_bytes(&value).expect("enc")[..],
            bytes[..],
            "{name}: re-encoding"
        );
    }
    let wrapper = hessian::from_slice(&fixture("exception/UndeclaredThrowableException2.bin"))
        .expect("decodes");
    let wrapped = wrapper
        .as_object()
        .and_then(|o| o.get("undeclaredThrowable"))
        .expect("wrapped exception");
    assert_eq!(
        java::throwable(wrapped),
        Some((
            "java.io.IOException",
            Some("this is a java IOException instance")
        ))
    );
    let io = hessian::from_slice(&fixture("exception/IOException.bin")).expect("decodes");
    let obj = io.as_object().expect("object");
    assert_eq!(
        obj.get("cause"),
        Some(&Value::Ref(0)),
        "Java's 'no cause' is a reference to itself"
    );
    let trace = obj
        .get("stackTrace")
        .and_then(Value::as_list)
        .expect("stack trace");
    assert_eq!(
        trace.type_name.as_deref(),
        Some("[java.lang.StackTraceElement")
    );
    assert_eq!(
        trace.items[0].as_object().and_then(|f| f.get("lineNumber")),
        Some(&Value::Int(1283))
    );
}
