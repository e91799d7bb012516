//! Golden vectors from two independent Hessian implementations: Caucho Hessian 4.0.38 (Java, the
//! reference) and hessian.js 2.11.0. Their generators live in `peers/` and the cases in
//! `peers/golden-cases.md`; `scripts/test.sh` regenerates both files and fails if they drift.
//!
//! For every case: their bytes decode to our expected value, and our encoding of that value is
//! byte-identical to theirs, except where a documented difference makes only the decoded value
//! comparable.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dubbo_codec::hessian::{self, java, List, Map, Value};

fn s(v: &str) -> Value {
    Value::from(v)
}

fn user(id: i64, name: &str, age: i32, email: Value) -> Value {
    Value::object(
        "org.apache.dubbo.demo.User",
        vec![
            ("id", Value::Long(id)),
            ("name", s(name)),
            ("age", Value::Int(age)),
            ("email", email),
        ],
    )
}

fn bytes_of(n: usize) -> Value {
    Value::Binary((0..n).map(|i| (i % 251) as u8).collect())
}

fn color(name: &str) -> Value {
    java::enum_value("org.apache.dubbo.demo.Color", name)
}

/// The expected value of every case in peers/golden-cases.md.
fn expected(name: &str) -> Option<Value> {
    let alice = || user(7, "alice", 30, s("a@example.com"));
    let u1 = || user(1, "u1", 21, s("u1@x"));
    Some(match name {
        "null" => Value::Null,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "string_empty" => s(""),
        "string_hello" => s("hello"),
        "string_chinese" => s("中文 Chinese"),
        "string_emoji" => s("smile 😀!"),
        "string_emoji_at_chunk" => Value::String(format!("{}😀b", "a".repeat(32767))),
        "list_empty" => Value::List(List::untyped(vec![])),
        "list_mixed" => Value::List(List::untyped(vec![Value::Int(1), Value::Int(2), s("foo")])),
        "list_8" => Value::List(List::untyped(
            (1..=8).map(|i| Value::String(i.to_string())).collect(),
        )),
        "long_array" => Value::List(List::typed(
            "[long",
            vec![Value::Long(1), Value::Long(2), Value::Long(3)],
        )),
        "int_array" => Value::List(List::typed(
            "[int",
            vec![Value::Int(1), Value::Int(2), Value::Int(3)],
        )),
        "string_array" => Value::List(List::typed("[string", vec![s("a"), s("b")])),
        "linked_list" => Value::List(List::typed("java.util.LinkedList", vec![s("x"), s("y")])),
        "map_one" => Value::Map(Map::untyped(vec![(s("a"), Value::Int(1))])),
        "map_int_keys" => Value::Map(Map::untyped(vec![(Value::Int(1), s("one"))])),
        "typed_map" => Value::Map(Map::typed(
            "java.util.TreeMap",
            vec![(s("a"), Value::Int(1)), (s("b"), Value::Int(2))],
        )),
        "user" => alice(),
        "user_null_email" => user(7, "alice", 30, Value::Null),
        "two_users" => Value::List(List::untyped(vec![u1(), user(2, "u2", 22, s("u2@x"))])),
        // The list is reference 0, the user reference 1.
        "shared_user" => Value::List(List::untyped(vec![u1(), Value::Ref(1)])),
        "self_ref" => Value::object(
            "org.apache.dubbo.demo.Node",
            vec![("name", s("loop")), ("next", Value::Ref(0))],
        ),
        "enum_red" => color("RED"),
        "enum_list" => Value::List(List::untyped(vec![color("BLUE"), color("RED")])),
        "big_decimal" => java::big_decimal("12345678901234567890.0123456789"),
        "nested" => Value::object(
            "org.apache.dubbo.demo.Order",
            vec![
                ("id", Value::Long(99)),
                ("owner", alice()),
                (
                    "items",
                    Value::List(List::untyped(vec![s("pen"), s("ink")])),
                ),
                ("tags", Value::Map(Map::untyped(vec![(s("k"), s("v"))]))),
            ],
        ),
        _ => return numeric(name),
    })
}

/// Cases named by type and value: `int_300`, `double_pi`, `binary_16`, `string_31`, …
fn numeric(name: &str) -> Option<Value> {
    if let Some(n) = name.strip_prefix("int_") {
        return Some(Value::Int(match n {
            "max" => i32::MAX,
            "min" => i32::MIN,
            n => n.parse().ok()?,
        }));
    }
    if let Some(n) = name.strip_prefix("long_") {
        return Some(Value::Long(match n {
            "max" => i64::MAX,
            "min" => i64::MIN,
            n => n.parse().ok()?,
        }));
    }
    if let Some(n) = name.strip_prefix("double_") {
        return Some(Value::Double(match n {
            "pi" => std::f64::consts::PI,
            n => n.parse().ok()?,
        }));
    }
    if let Some(n) = name.strip_prefix("date_") {
        return Some(Value::Date(n.parse().ok()?));
    }
    if let Some(n) = name.strip_prefix("binary_") {
        return Some(bytes_of(n.parse().ok()?));
    }
    if let Some(Ok(n)) = name.strip_prefix("string_").map(str::parse::<usize>) {
        return Some(Value::String("a".repeat(n)));
    }
    None
}

fn load(file: &str) -> BTreeMap<String, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("a JSON object of hex strings")
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Checks every vector; `decode_only` lists cases whose bytes legitimately differ from ours.
fn check_all(file: &str, decode_only: &[&str], required: usize) {
    let vectors = load(file);
    assert!(
        vectors.len() >= required,
        "{file}: only {} vectors, expected at least {required}",
        vectors.len()
    );
    let mut failures = Vec::new();
    for (name, hex) in &vectors {
        let Some(want) = expected(name) else {
            failures.push(format!("{name}: no expected value for this case"));
            continue;
        };
        let bytes = unhex(hex);
        match hessian::from_slice(&bytes) {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!("{name}: decoded {got:?}")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
        if decode_only.contains(&name.as_str()) {
            continue;
        }
        let ours = hessian::to_bytes(&want).expect("encodable");
        if ours[..] != bytes[..] {
            failures.push(format!(
                "{name}: we encode {}…, they wrote {}…",
                hex_prefix(&ours),
                hex_prefix(&bytes)
            ));
        }
    }
    assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(48).map(|b| format!("{b:02x}")).collect()
}

#[test]
fn caucho_hessian_java() {
    // Caucho 4.0.38 buffers 8 KiB where Dubbo's hessian-lite and older Caucho buffer 4 KiB, so a
    // 5000-byte binary is one chunk for it and two for them (and us).
    check_all("caucho.json", &["binary_5000"], 90);
}

#[test]
fn hessian_js() {
    check_all("hessianjs.json", &[], 60);
}

/// The benchmark's POJO (`benches/hessian.rs`, `peers/node/bench.js`) encodes to hessian.js's
/// bytes, so both benchmarks measure the same work.
#[test]
fn benchmark_pojo_matches_hessian_js() {
    let pojo = testkit::bench::item(&testkit::bench::item_class(), 7);
    // From `node peers/node/bench.js` (its "pojo.hex").
    let js = "431b6f72672e6170616368652e647562626f2e62656e63682e4974656d9a026964046e616d65057072696365087175616e74697479066163746976650963726561746564417404746167730863617465676f72790573636f7265046e6f746560fbef066974656d2d375f0000425e97464a0000018bcfe583587a0372656404626c756505626f6f6b73a51361206e6f74652061626f7574206974656d2037";
    assert_eq!(hex_prefix_all(&hessian::to_bytes(&pojo).expect("enc")), js);
}

fn hex_prefix_all(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
