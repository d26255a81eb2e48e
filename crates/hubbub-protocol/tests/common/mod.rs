//! Shared by the integration tests.
#![allow(dead_code)]

use serde_json::Value;

/// JSON value equality where numbers compare by value: a field typed `f64`
/// writes `1` back as `1.0`, the same number to every JSON reader.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Parses `json` as `T`, writes it back and checks that nothing was lost,
/// added or changed; returns the value for further checks.
#[track_caller]
pub fn round_trip<T>(json: &str) -> T
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let want: Value = serde_json::from_str(json).expect("test JSON parses");
    let typed: T = serde_json::from_str(json).unwrap_or_else(|e| {
        panic!(
            "{json} does not read as {}: {e}",
            std::any::type_name::<T>()
        )
    });
    let back = serde_json::to_value(&typed).expect("serializes");
    assert!(same(&want, &back), "\n  sent {want}\n  back {back}");
    typed
}
