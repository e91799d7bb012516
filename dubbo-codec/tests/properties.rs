//! Property tests: any value round-trips; any bytes, random or a mutated valid message, decode to
//! a value or an error and never panic.

use std::sync::Arc;

use bytes::BytesMut;
use dubbo_codec::dubbo2::{FrameDecoder, Invocation, Request, RequestKind, Response};
use dubbo_codec::hessian::{self, ClassDef, List, Map, Object, Value};
use proptest::prelude::*;

fn classes() -> Vec<Arc<ClassDef>> {
    vec![
        Arc::new(ClassDef::new("demo.A", ["x"])),
        Arc::new(ClassDef::new("demo.B", ["x", "y", "z"])),
        Arc::new(ClassDef::new("demo.Empty", Vec::<String>::new())),
    ]
}

fn double() -> impl Strategy<Value = f64> {
    // NaN never equals itself and Java (like us) writes -0.0 as 0.0; both are covered by
    // `doubles_java_cannot_round_trip` below.
    prop_oneof![
        any::<f64>().prop_filter("comparable", |d| !d.is_nan()
            && (*d != 0.0 || d.is_sign_positive())),
        (-100_000i64..100_000).prop_map(|m| m as f64 / 1000.0),
        (-40_000i32..40_000).prop_map(f64::from),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::Int),
        (-300_000i32..300_000).prop_map(Value::Int),
        any::<i64>().prop_map(Value::Long),
        (-300_000i64..300_000).prop_map(Value::Long),
        double().prop_map(Value::Double),
        any::<i64>().prop_map(Value::Date),
        (-1_000_000i64..1_000_000).prop_map(|m| Value::Date(m * 60_000)),
        ".{0,40}".prop_map(Value::String),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Binary),
    ]
}

/// Values whose root is a container, so a `Ref(0)` anywhere inside is valid.
fn value() -> impl Strategy<Value = Value> {
    let type_name = prop::option::of(prop::sample::select(vec![
        "[int",
        "java.util.List",
        "java.util.HashMap",
        "x",
    ]));
    let tree = leaf().prop_recursive(4, 48, 6, move |inner| {
        let item = prop_oneof![4 => inner.clone(), 1 => Just(Value::Ref(0))];
        prop_oneof![
            (
                type_name.clone(),
                prop::collection::vec(item.clone(), 0..10),
                any::<bool>()
            )
                .prop_map(|(t, items, variable_length)| {
                    Value::List(List {
                        type_name: t.map(Into::into),
                        items,
                        variable_length,
                    })
                }),
            (
                type_name.clone(),
                prop::collection::vec((item.clone(), item.clone()), 0..5)
            )
                .prop_map(|(t, entries)| Value::Map(Map {
                    type_name: t.map(Into::into),
                    entries
                })),
            (0..3usize, prop::collection::vec(item, 3)).prop_map(|(c, mut fields)| {
                let class = Arc::clone(&classes()[c]);
                fields.truncate(class.fields.len());
                Value::Object(Object { class, fields })
            }),
        ]
    });
    tree.prop_map(|v| match v {
        leaf @ (Value::List(_) | Value::Map(_) | Value::Object(_)) => leaf,
        other => Value::List(List::untyped(vec![other])),
    })
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(pos, byte, op) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let pos = pos % bytes.len();
        match op % 3 {
            0 => bytes[pos] = byte,
            1 => bytes.insert(pos, byte),
            _ => {
                bytes.remove(pos);
            }
        }
    }
    bytes
}

fn decode_frames(bytes: &[u8]) {
    let mut buf = BytesMut::from(bytes);
    let mut decoder = FrameDecoder::new(1 << 16);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        let _ = Request::decode(&frame);
        let _ = Response::decode(&frame);
    }
}

#[test]
fn doubles_java_cannot_round_trip() {
    // Java's writer takes the `(int) value == value` branch for -0.0, losing the sign.
    assert_eq!(
        &hessian::to_bytes(&Value::Double(-0.0)).expect("enc")[..],
        &[0x5b]
    );
    // NaN goes out as a full IEEE double and comes back as NaN.
    let nan = hessian::to_bytes(&Value::Double(f64::NAN)).expect("enc");
    assert_eq!(nan[0], b'D');
    assert!(matches!(hessian::from_slice(&nan), Ok(Value::Double(d)) if d.is_nan()));
    for v in [
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        f64::MAX,
    ] {
        assert_eq!(
            hessian::from_slice(&hessian::to_bytes(&Value::Double(v)).expect("enc")),
            Ok(Value::Double(v))
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn values_round_trip(v in value()) {
        let bytes = hessian::to_bytes(&v).expect("generated values are encodable");
        let back = hessian::from_slice(&bytes).expect("our own bytes decode");
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(hessian::to_bytes(&back).expect("re-encode"), bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = hessian::from_slice(&bytes);
        decode_frames(&bytes);
    }

    #[test]
    fn mutated_values_never_panic(v in value(), edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)) {
        let bytes = hessian::to_bytes(&v).expect("encodable").to_vec();
        let _ = hessian::from_slice(&mutate(bytes, &edits));
    }

    #[test]
    fn mutated_frames_never_panic(args in prop::collection::vec(value(), 0..3), edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)) {
        let request = Request { id: 9, two_way: true, kind: RequestKind::Invocation(Invocation::new("demo.S", "m", "", args)) };
        let mut out = BytesMut::new();
        request.encode(&mut out).expect("encodable");
        decode_frames(&mutate(out.to_vec(), &edits));
    }
}
