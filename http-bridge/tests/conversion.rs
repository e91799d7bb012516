//! JSON ↔ hessian by declared Java types: every type family, both directions, and the errors
//! callers see.

use dubbo_codec::hessian::{self, java, List, Map, Value};
use http_bridge::to_hessian::ToHessian;
use http_bridge::to_json::{to_json, JsonOptions};
use http_bridge::types::{TypeRef, TypeRegistry};
use serde_json::{json, Value as Json};

fn registry() -> TypeRegistry {
    let mut r = TypeRegistry::default();
    let t = |s: &str| TypeRef::parse(s).expect("valid type");
    r.add_class(
        "demo.User",
        vec![
            ("id".into(), t("long")),
            ("name".into(), t("java.lang.String")),
            ("age".into(), t("int")),
            ("address".into(), t("demo.Address")),
            ("tags".into(), t("java.util.List<java.lang.String>")),
            ("color".into(), t("demo.Color")),
        ],
    );
    r.add_class(
        "demo.Address",
        vec![
            ("city".into(), t("java.lang.String")),
            ("zip".into(), t("int")),
        ],
    );
    r.add_enum("demo.Color", vec!["RED".into(), "GREEN".into()]);
    r
}

fn convert(json: Json, ty: &str) -> Result<Value, String> {
    let registry = registry();
    let ty = TypeRef::parse(ty).expect("valid type");
    ToHessian::new(&registry)
        .argument(0, None, &json, Some(&ty))
        .map_err(|e| e.to_string())
}

fn ok(json: Json, ty: &str) -> Value {
    convert(json, ty).unwrap_or_else(|e| panic!("{ty}: {e}"))
}

fn err(json: Json, ty: &str) -> String {
    convert(json.clone(), ty).expect_err(&format!("{ty} must reject {json}"))
}

#[test]
fn primitives_and_boxes_with_range_checks() {
    assert_eq!(ok(json!(42), "int"), Value::Int(42));
    assert_eq!(ok(json!("42"), "java.lang.Integer"), Value::Int(42));
    assert_eq!(ok(json!(5.0), "int"), Value::Int(5));
    assert_eq!(ok(json!(-128), "byte"), Value::Int(-128));
    assert_eq!(ok(json!(true), "boolean"), Value::Bool(true));
    assert_eq!(ok(json!("x"), "char"), Value::from("x"));
    assert_eq!(ok(json!(1.5), "float"), Value::Double(1.5));
    assert_eq!(ok(json!(null), "java.lang.Integer"), Value::Null);
    assert_eq!(
        err(json!(2147483648u64), "int"),
        "arg0: 2147483648 is out of range for int (-2147483648..=2147483647)"
    );
    assert_eq!(
        err(json!(128), "byte"),
        "arg0: 128 is out of range for byte (-128..=127)"
    );
    assert_eq!(
        err(json!(5.5), "int"),
        "arg0: expected a whole number for int, got 5.5"
    );
    assert_eq!(err(json!(null), "int"), "arg0: int cannot be null");
    assert_eq!(
        err(json!("yes"), "boolean"),
        "arg0: expected a boolean, got string \"yes\""
    );
    assert_eq!(
        err(json!(7), "java.lang.String"),
        "arg0: expected a string, got number 7"
    );
    assert_eq!(
        err(json!("ab"), "char"),
        "arg0: expected a one-character string, got string \"ab\""
    );
}

#[test]
fn big_numbers_keep_every_digit() {
    // Beyond 2^53: a JSON parser using f64 would round this.
    let big: Json = serde_json::from_str("9007199254740993").expect("json");
    assert_eq!(ok(big, "long"), Value::Long(9_007_199_254_740_993));
    assert_eq!(
        ok(json!("-9223372036854775808"), "long"),
        Value::Long(i64::MIN)
    );
    let dec: Json = serde_json::from_str("12345678901234567890.0123456789").expect("json");
    let value = ok(dec, "java.math.BigDecimal");
    assert_eq!(
        java::decimal_text(&value).as_deref(),
        Some("12345678901234567890.0123456789")
    );
    assert_eq!(
        java::decimal_text(&ok(json!("1.5E+3"), "java.math.BigDecimal")).as_deref(),
        Some("1.5E+3")
    );
    let int: Json = serde_json::from_str("123456789012345678901234567890").expect("json");
    assert_eq!(
        java::decimal_text(&ok(int, "java.math.BigInteger")).as_deref(),
        Some("123456789012345678901234567890")
    );
    assert!(err(json!("12.3.4"), "java.math.BigDecimal").contains("not a decimal number"));
    assert!(err(json!("1.5"), "java.math.BigInteger").contains("not an integer"));
}

#[test]
fn dates_bytes_and_enums() {
    assert_eq!(
        ok(json!("1998-05-08T09:51:31Z"), "java.util.Date"),
        Value::Date(894_621_091_000)
    );
    assert_eq!(
        ok(json!(894_621_091_000i64), "java.util.Date"),
        Value::Date(894_621_091_000)
    );
    assert!(err(json!("last tuesday"), "java.util.Date").contains("not an ISO-8601"));
    assert_eq!(
        ok(json!("AAEC/w=="), "byte[]"),
        Value::Binary(vec![0, 1, 2, 255])
    );
    assert!(err(json!("***"), "byte[]").contains("base64"));
    assert_eq!(
        ok(json!("RED"), "demo.Color"),
        java::enum_value("demo.Color", "RED")
    );
    assert_eq!(
        err(json!("BLUE"), "demo.Color"),
        "arg0: \"BLUE\" is not a constant of enum demo.Color (one of RED, GREEN)"
    );
}

#[test]
fn collections_by_their_declared_types() {
    assert_eq!(
        ok(json!([1, 2]), "int[]"),
        Value::List(List::typed("[int", vec![Value::Int(1), Value::Int(2)]))
    );
    assert_eq!(
        ok(json!(["a"]), "java.lang.String[]"),
        Value::List(List::typed("[string", vec!["a".into()]))
    );
    assert_eq!(
        ok(json!([1]), "java.util.List<java.lang.Long>"),
        Value::List(List::untyped(vec![Value::Long(1)]))
    );
    assert_eq!(
        ok(json!(["x"]), "java.util.Set<java.lang.String>"),
        Value::List(List::typed("java.util.HashSet", vec!["x".into()]))
    );
    assert_eq!(
        ok(
            json!({"7": "seven"}),
            "java.util.Map<java.lang.Long, java.lang.String>"
        ),
        Value::Map(Map::untyped(vec![(Value::Long(7), "seven".into())]))
    );
    assert_eq!(
        ok(
            json!({"a": 1}),
            "java.util.TreeMap<java.lang.String, java.lang.Integer>"
        ),
        Value::Map(Map::typed(
            "java.util.TreeMap",
            vec![("a".into(), Value::Int(1))]
        ))
    );
    assert_eq!(
        err(json!([1, "x"]), "java.util.List<java.lang.Integer>"),
        "arg0[1]: expected a number (java.lang.Integer), got string \"x\""
    );
    assert_eq!(
        err(
            json!({"k": "x"}),
            "java.util.Map<java.lang.String, java.lang.Long>"
        ),
        "arg0[\"k\"]: expected a number (java.lang.Long), got string \"x\""
    );
}

#[test]
fn pojos_follow_their_declared_shape() {
    let user = ok(
        json!({"name": "alice", "id": "7", "address": {"city": "Paris", "zip": 75001}, "tags": ["a"], "color": "GREEN"}),
        "demo.User",
    );
    let o = user.as_object().expect("object");
    assert_eq!(
        o.class.fields,
        ["id", "name", "age", "address", "tags", "color"],
        "declared order, not JSON order"
    );
    assert_eq!(o.get("id"), Some(&Value::Long(7)));
    assert_eq!(
        o.get("age"),
        Some(&Value::Int(0)),
        "a missing primitive gets Java's default"
    );
    assert_eq!(
        o.get("color"),
        Some(&java::enum_value("demo.Color", "GREEN"))
    );
    let address = o
        .get("address")
        .and_then(Value::as_object)
        .expect("nested POJO");
    assert_eq!(
        (address.class.name.as_str(), address.get("zip")),
        ("demo.Address", Some(&Value::Int(75001)))
    );

    assert_eq!(
        err(json!({"address": {"zip": "abc"}}), "demo.User"),
        "arg0.address.zip: expected a number (int), got string \"abc\""
    );
    assert_eq!(
        err(json!({"nickname": "al"}), "demo.User"),
        "arg0.nickname: demo.User has no property \"nickname\""
    );
    assert_eq!(
        err(json!([1]), "demo.User"),
        "arg0: expected an object (demo.User), got an array of 1"
    );

    // A class nobody described: its JSON fields, inferred, under the declared name.
    let unknown = ok(json!({"b": 1, "a": "x"}), "demo.Unknown");
    let o = unknown.as_object().expect("object");
    assert_eq!(
        (o.class.name.as_str(), o.class.fields.clone()),
        ("demo.Unknown", vec!["b".to_owned(), "a".to_owned()])
    );
}

#[test]
fn inference_without_types() {
    let registry = TypeRegistry::default();
    let mut conv = ToHessian::new(&registry);
    let value = conv
        .argument(
            1,
            Some("payload"),
            &json!({"n": 1, "big": 3_000_000_000i64, "f": 0.5, "l": [true, null]}),
            None,
        )
        .expect("inferred");
    assert_eq!(
        value,
        Value::Map(Map::untyped(vec![
            ("n".into(), Value::Int(1)),
            ("big".into(), Value::Long(3_000_000_000)),
            ("f".into(), Value::Double(0.5)),
            (
                "l".into(),
                Value::List(List::untyped(vec![Value::Bool(true), Value::Null]))
            ),
        ]))
    );
    let e = conv
        .argument(
            1,
            Some("payload"),
            &json!({"x": "y"}),
            Some(&TypeRef::named("int")),
        )
        .expect_err("typed");
    assert_eq!(
        e.to_string(),
        "payload: expected a number (int), got an object"
    );
}

#[test]
fn converted_arguments_are_valid_hessian() {
    let value = ok(
        json!({"id": 1, "name": "n", "address": {"city": "c", "zip": 1}, "tags": [], "color": "RED"}),
        "demo.User",
    );
    let bytes = hessian::to_bytes(&value).expect("encodable");
    assert_eq!(hessian::from_slice(&bytes).expect("decodes"), value);
}

#[test]
fn results_to_json() {
    let registry = registry();
    let opts = JsonOptions::default();
    let user = ok(
        json!({"id": "9007199254740993", "name": "a", "tags": ["t"], "color": "RED"}),
        "demo.User",
    );
    assert_eq!(
        to_json(&user, &registry, opts).to_string(),
        r#"{"id":9007199254740993,"name":"a","age":0,"address":null,"tags":["t"],"color":"RED"}"#,
        "exact long, enum by name, property order kept"
    );
    let strings = to_json(
        &Value::Long(9_007_199_254_740_993),
        &registry,
        JsonOptions {
            longs_as_strings: true,
        },
    );
    assert_eq!(strings, json!("9007199254740993"));
    assert_eq!(
        to_json(&Value::Date(894_621_091_000), &registry, opts),
        json!("1998-05-08T09:51:31.000Z")
    );
    assert_eq!(
        to_json(&Value::Binary(vec![0, 1, 2, 255]), &registry, opts),
        json!("AAEC/w==")
    );
    assert_eq!(
        to_json(&Value::Double(f64::NAN), &registry, opts),
        Json::Null
    );
    assert_eq!(
        to_json(&java::big_decimal("0.10"), &registry, opts).to_string(),
        "0.10"
    );
    let keys = Value::Map(Map::untyped(vec![
        (Value::Long(1), "one".into()),
        (Value::Bool(true), "yes".into()),
    ]));
    assert_eq!(
        to_json(&keys, &registry, opts),
        json!({"1": "one", "true": "yes"})
    );
}

#[test]
fn references_are_resolved_and_cycles_cut() {
    let registry = TypeRegistry::default();
    // [u, @1]: the same user twice (the list is reference 0, the user 1).
    let u = Value::object("demo.U", vec![("n", "x".into())]);
    let shared = Value::List(List::untyped(vec![u, Value::Ref(1)]));
    assert_eq!(
        to_json(&shared, &registry, JsonOptions::default()),
        json!([{"n": "x"}, {"n": "x"}])
    );
    // Node{name, next: itself}
    let cyclic = Value::object(
        "demo.Node",
        vec![("name", "loop".into()), ("next", Value::Ref(0))],
    );
    assert_eq!(
        to_json(&cyclic, &registry, JsonOptions::default()),
        json!({"name": "loop", "next": null})
    );
}

#[test]
fn java_exceptions_become_readable_json() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dubbo-codec/tests/fixtures/hessian2/v2/exception/IOException.bin"
    ))
    .expect("fixture");
    let value = hessian::from_slice(&bytes).expect("decodes");
    let json = to_json(&value, &TypeRegistry::default(), JsonOptions::default());
    assert_eq!(
        json["detailMessage"],
        json!("this is a java IOException instance")
    );
    assert_eq!(json["cause"], Json::Null, "self-reference cut");
    assert_eq!(json["stackTrace"][0]["lineNumber"], json!(1283));
}
