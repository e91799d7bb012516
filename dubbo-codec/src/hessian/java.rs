//! Java types that travel as Hessian objects, as Dubbo's hessian-lite writes them.
//!
//! * `java.math.BigDecimal`: an object with one field `value`, the decimal as a string.
//! * `java.math.BigInteger`: an object with `signum` (int) and `mag` (`[int`, the magnitude as
//!   big-endian 32-bit words), the fields hessian-lite's reader uses; a `value` string is accepted
//!   too.
//! * enums: an object of the enum's class with one field `name`.
//! * `java.lang.Class`: an object with one field `name`.
//! * `Throwable`s: objects with `detailMessage` (and `cause`, `stackTrace`, …).

use super::value::{List, Object, Value};

pub const BIG_DECIMAL: &str = "java.math.BigDecimal";
pub const BIG_INTEGER: &str = "java.math.BigInteger";
pub const CLASS: &str = "java.lang.Class";

/// Conversions between decimal text and magnitude words are quadratic; values beyond this many
/// decimal digits (or the equivalent in words) are refused rather than computed.
pub const BIG_INTEGER_MAX_DIGITS: usize = 10_000;

/// A `java.math.BigDecimal` holding `decimal` (not validated here; Java parses it).
pub fn big_decimal(decimal: &str) -> Value {
    Value::object(BIG_DECIMAL, vec![("value", Value::from(decimal))])
}

/// A `java.math.BigInteger` from its decimal text, or `None` if the text is not an integer.
pub fn big_integer(decimal: &str) -> Option<Value> {
    let (negative, digits) = match decimal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, decimal.strip_prefix('+').unwrap_or(decimal)),
    };
    if digits.is_empty()
        || digits.len() > BIG_INTEGER_MAX_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Little-endian base 2^32 while accumulating, big-endian on the wire.
    let mut words: Vec<u32> = Vec::new();
    for d in digits.bytes() {
        let mut carry = u64::from(d - b'0');
        for w in &mut words {
            let x = u64::from(*w) * 10 + carry;
            *w = x as u32;
            carry = x >> 32;
        }
        if carry > 0 {
            words.push(carry as u32);
        }
    }
    while words.last() == Some(&0) {
        words.pop();
    }
    let signum = match (words.is_empty(), negative) {
        (true, _) => 0,
        (false, true) => -1,
        (false, false) => 1,
    };
    let mag = words.iter().rev().map(|&w| Value::Int(w as i32)).collect();
    Some(Value::object(
        BIG_INTEGER,
        vec![
            ("signum", Value::Int(signum)),
            ("mag", Value::List(List::typed("[int", mag))),
        ],
    ))
}

/// The decimal text of a `BigDecimal` or `BigInteger` object.
pub fn decimal_text(value: &Value) -> Option<String> {
    let obj = value.as_object()?;
    match obj.class.name.as_str() {
        BIG_DECIMAL => obj.get("value")?.as_str().map(str::to_owned),
        BIG_INTEGER => match obj.get("value").and_then(Value::as_str) {
            Some(text) => Some(text.to_owned()),
            None => big_integer_text(obj),
        },
        _ => None,
    }
}

fn big_integer_text(obj: &Object) -> Option<String> {
    let signum = obj.get("signum")?.as_i64()?;
    let mag = &obj.get("mag")?.as_list()?.items;
    // At most ten decimal digits per 32-bit word.
    if mag.len() > BIG_INTEGER_MAX_DIGITS / 10 {
        return None;
    }
    let mut words: Vec<u32> = mag
        .iter()
        .map(|v| v.as_i64().map(|i| i as u32))
        .collect::<Option<_>>()?;
    let mut chunks = Vec::new(); // base 10^9, least significant first
    while words.iter().any(|&w| w != 0) {
        let mut rem = 0u64;
        for w in &mut words {
            let x = (rem << 32) | u64::from(*w);
            *w = (x / 1_000_000_000) as u32;
            rem = x % 1_000_000_000;
        }
        chunks.push(rem);
    }
    let mut text = String::new();
    if signum < 0 && !chunks.is_empty() {
        text.push('-');
    }
    match chunks.split_last() {
        None => text.push('0'),
        Some((most, rest)) => {
            text.push_str(&most.to_string());
            for c in rest.iter().rev() {
                text.push_str(&format!("{c:09}"));
            }
        }
    }
    Some(text)
}

/// A constant of the Java enum `class`.
pub fn enum_value(class: &str, name: &str) -> Value {
    Value::object(class, vec![("name", Value::from(name))])
}

/// The constant name of an enum value: an object whose only field is a string `name`.
pub fn enum_name(value: &Value) -> Option<&str> {
    let obj = value.as_object()?;
    match obj.class.fields.as_slice() {
        [field] if field == "name" => obj.fields.first()?.as_str(),
        _ => None,
    }
}

/// A `java.lang.Class` value naming `class_name`.
pub fn class_value(class_name: &str) -> Value {
    Value::object(CLASS, vec![("name", Value::from(class_name))])
}

/// The class name and message of a Java `Throwable` written as an object. Wrappers such as
/// `UndeclaredThrowableException` and `InvocationTargetException` carry no message of their
/// own, so the wrapped exception is reported instead.
pub fn throwable(value: &Value) -> Option<(&str, Option<&str>)> {
    let obj = value.as_object()?;
    let message = obj.get("detailMessage").and_then(Value::as_str);
    if message.is_none() {
        for wrapped in ["undeclaredThrowable", "target"] {
            if let Some(inner) = obj.get(wrapped).and_then(throwable) {
                return Some(inner);
            }
        }
    }
    Some((obj.class.name.as_str(), message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_integer_round_trips_through_mag_words() {
        for text in [
            "0",
            "1",
            "-1",
            "4294967295",
            "4294967296",
            "-123456789012345678901234567890",
        ] {
            let value = big_integer(text).expect("valid integer");
            assert_eq!(decimal_text(&value).as_deref(), Some(text), "{text}");
        }
        let two_words = big_integer("4294967296").expect("valid");
        let mag = two_words
            .as_object()
            .and_then(|o| o.get("mag"))
            .and_then(Value::as_list)
            .expect("mag");
        assert_eq!(mag.items, vec![Value::Int(1), Value::Int(0)]);
        assert!(big_integer("12a").is_none());
        assert!(big_integer("-").is_none());
        assert!(big_integer(&"9".repeat(BIG_INTEGER_MAX_DIGITS + 1)).is_none());
    }

    #[test]
    fn enum_and_decimal_helpers() {
        let red = enum_value("demo.Color", "RED");
        assert_eq!(enum_name(&red), Some("RED"));
        assert_eq!(decimal_text(&big_decimal("1.50")).as_deref(), Some("1.50"));
        assert_eq!(enum_name(&big_decimal("1")), None);
    }
}
