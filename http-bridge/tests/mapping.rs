//! Request bodies → descriptor and arguments: every body form, overloads, inference, errors.

use dubbo_codec::hessian::{List, Map, Value};
use http_bridge::mapping::{map_generic, parse_body, MappedCall, MappingError, MethodSig, Param};
use http_bridge::types::{TypeRef, TypeRegistry};
use serde_json::json;

fn sig(name: &str, params: &[(Option<&str>, &str)]) -> MethodSig {
    MethodSig {
        name: name.into(),
        params: params
            .iter()
            .map(|(n, t)| Param {
                name: n.map(str::to_owned),
                ty: TypeRef::parse(t).expect("type"),
            })
            .collect(),
    }
}

fn map(
    method: &str,
    body: serde_json::Value,
    overloads: &[MethodSig],
) -> Result<MappedCall, MappingError> {
    map_generic(method, &body, overloads, &TypeRegistry::default())
}

#[test]
fn positional_named_and_pixiu_bodies_agree() {
    let add = [sig("add", &[(Some("a"), "int"), (Some("b"), "int")])];
    let expected = MappedCall {
        parameter_types: "II".into(),
        arguments: vec![Value::Int(2), Value::Int(3)],
    };
    assert_eq!(map("add", json!([2, 3]), &add), Ok(expected.clone()));
    assert_eq!(
        map("add", json!({"b": 3, "a": 2}), &add),
        Ok(expected.clone())
    );
    assert_eq!(
        map("add", json!({"types": "int,int", "values": [2, 3]}), &[]),
        Ok(expected.clone())
    );
    assert_eq!(
        map(
            "add",
            json!({"types": ["int", "int"], "values": ["2", 3]}),
            &[]
        ),
        Ok(expected)
    );
}

#[test]
fn no_arguments_in_every_form() {
    let now = [sig("now", &[])];
    for body in [b"".as_slice(), b"  ", b"[]", b"{}"] {
        let json = parse_body(body).expect("parses");
        assert_eq!(map("now", json, &now).expect("maps").parameter_types, "");
    }
}

#[test]
fn overloads_by_arity_and_names() {
    let overloads = [
        sig("find", &[(Some("id"), "long")]),
        sig(
            "find",
            &[(Some("name"), "java.lang.String"), (Some("limit"), "int")],
        ),
    ];
    assert_eq!(
        map("find", json!([7]), &overloads)
            .expect("one arg")
            .parameter_types,
        "J"
    );
    assert_eq!(
        map("find", json!(["x", 2]), &overloads)
            .expect("two")
            .parameter_types,
        "Ljava/lang/String;I"
    );
    assert_eq!(
        map("find", json!({"name": "x", "limit": 1}), &overloads)
            .expect("named")
            .parameter_types,
        "Ljava/lang/String;I"
    );
    assert_eq!(
        map("find", json!([1, 2, 3]), &overloads),
        Err(MappingError::Arity {
            method: "find".into(),
            expected: "1 or 2".into(),
            got: 3
        })
    );
    let err = map("find", json!({"nope": 1}), &overloads)
        .expect_err("unknown name")
        .to_string();
    assert_eq!(err, "find has no parameter named \"nope\" (parameters: id)");
}

#[test]
fn explicit_types_choose_the_overload() {
    let overloads = [
        sig("echo", &[(Some("n"), "long")]),
        sig("echo", &[(Some("users"), "java.util.List<java.util.Date>")]),
    ];
    // Same arity as the first overload, but the caller said `int`: its word wins.
    let call = map("echo", json!({"types": "int", "values": [7]}), &overloads).expect("int");
    assert_eq!(
        (call.parameter_types.as_str(), call.arguments),
        ("I", vec![Value::Int(7)])
    );
    // Same erased type as a declared overload: that overload's generic argument applies.
    let call = map(
        "echo",
        json!({"types": "java.util.List", "values": [[0]]}),
        &overloads,
    )
    .expect("list");
    assert_eq!(call.parameter_types, "Ljava/util/List;");
    assert_eq!(
        call.arguments,
        vec![Value::List(List::untyped(vec![Value::Date(0)]))]
    );
}

#[test]
fn same_arity_overloads_are_chosen_by_shape() {
    // As Dubbo definitions list them: no names, one argument each.
    let overloads = [
        sig("find", &[(None, "long")]),
        sig("find", &[(None, "java.lang.String")]),
        sig("find", &[(None, "java.util.List<java.lang.Long>")]),
        sig(
            "find",
            &[(None, "java.util.Map<java.lang.String, java.lang.Long>")],
        ),
    ];
    let pick = |body| map("find", body, &overloads).expect("maps").parameter_types;
    assert_eq!(pick(json!([7])), "J");
    assert_eq!(pick(json!(["bob"])), "Ljava/lang/String;");
    // A numeric string could be a long, but a String is its natural type.
    assert_eq!(pick(json!(["7"])), "Ljava/lang/String;");
    assert_eq!(pick(json!([[1, 2]])), "Ljava/util/List;");
    assert_eq!(pick(json!([{"a": 1}])), "Ljava/util/Map;");
    // Named, unnamed parameters: the overload the fields cover with nothing left out.
    let pair = [
        sig("f", &[(None, "java.lang.String"), (None, "int")]),
        sig("f", &[(None, "java.lang.String")]),
    ];
    let call = map("f", json!({"arg0": "x"}), &pair).expect("maps");
    assert_eq!(call.parameter_types, "Ljava/lang/String;");
    let call = map("f", json!({"arg0": "x", "arg1": 2}), &pair).expect("maps");
    assert_eq!(call.parameter_types, "Ljava/lang/String;I");
    // No overload fits: the best fit's conversion error is the answer.
    let err = map("find", json!([true]), &overloads).expect_err("no fit");
    assert!(err.to_string().contains("arg0"), "{err}");
}

#[test]
fn unnamed_parameters_are_arg0_arg1() {
    let unnamed = [sig("m", &[(None, "int"), (None, "java.lang.String")])];
    let call = map("m", json!({"arg1": "s", "arg0": 1}), &unnamed).expect("maps");
    assert_eq!(call.arguments, vec![Value::Int(1), "s".into()]);
}

#[test]
fn inference_without_a_signature() {
    let call = map(
        "m",
        json!([1, 3_000_000_000i64, 1.5, "s", true, [1], {"k": null}, null]),
        &[],
    )
    .expect("inferred");
    assert_eq!(
        call.parameter_types,
        "IJDLjava/lang/String;ZLjava/util/List;Ljava/util/Map;Ljava/lang/Object;"
    );
    assert_eq!(
        call.arguments[5],
        Value::List(List::untyped(vec![Value::Int(1)]))
    );
    assert_eq!(
        call.arguments[6],
        Value::Map(Map::untyped(vec![("k".into(), Value::Null)]))
    );
    assert_eq!(
        map("m", json!({"a": 1}), &[]),
        Err(MappingError::NamesUnknown { method: "m".into() })
    );
}

#[test]
fn errors_say_what_to_fix() {
    assert!(matches!(
        parse_body(b"{\"a\":"),
        Err(MappingError::BadJson(_))
    ));
    let greet = [sig("greet", &[(Some("name"), "java.lang.String")])];
    assert_eq!(
        map("greet", json!([5]), &greet)
            .expect_err("type")
            .to_string(),
        "name: expected a string, got number 5"
    );
    assert_eq!(map("greet", json!("x"), &greet), Err(MappingError::Shape));
    assert!(map("m", json!({"types": "int", "values": [1, 2]}), &[])
        .expect_err("count")
        .to_string()
        .contains("1 types for 2 values"));
    assert!(map("m", json!({"types": "Map<", "values": [1]}), &[])
        .expect_err("type")
        .to_string()
        .contains("invalid Java type"));
}
