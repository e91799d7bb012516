//! The benchmark payload shared by `dubbo-codec`'s criterion benchmark, the golden test that
//! checks it against hessian.js, and `peers/node/bench.js`: a 10-field POJO.

use std::sync::Arc;

use dubbo_codec::hessian::{ClassDef, List, Object, Value};

pub fn item_class() -> Arc<ClassDef> {
    Arc::new(ClassDef::new(
        "org.apache.dubbo.bench.Item",
        [
            "id",
            "name",
            "price",
            "quantity",
            "active",
            "createdAt",
            "tags",
            "category",
            "score",
            "note",
        ],
    ))
}

/// Item `i`, exactly as `bench.js` builds it.
pub fn item(class: &Arc<ClassDef>, i: i64) -> Value {
    Value::Object(Object {
        class: Arc::clone(class),
        fields: vec![
            Value::Long(1000 + i),
            Value::String(format!("item-{i}")),
            Value::Double(9.99 + i as f64),
            Value::Int(i as i32),
            Value::Bool(i % 2 == 0),
            Value::Date(1_700_000_000_000 + i * 1000),
            Value::List(List::untyped(vec!["red".into(), "blue".into()])),
            "books".into(),
            Value::Int(i as i32 * 3),
            Value::String(format!("a note about item {i}")),
        ],
    })
}
