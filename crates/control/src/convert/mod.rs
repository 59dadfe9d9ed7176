//! Proto ↔ domain/state conversions: wire types stay at the edge. Input conversions validate
//! and name the offending field (`INVALID_ARGUMENT`); output conversions never carry a secret.

mod activations;
mod failed_records;
mod runs;
mod targets;
mod warehouses;

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) use activations::{activation_spec, activation_to_proto};
pub(crate) use failed_records::{
    dead_letters_to_proto, failed_record_filter, failed_record_to_proto, failed_records_to_proto,
};
pub(crate) use runs::{run_filter, run_progress, run_to_proto};
pub(crate) use targets::{Secrets, target_spec, target_to_proto};
pub(crate) use warehouses::{tls_to_proto, warehouse_spec, warehouse_to_proto};

use mixsync_state::PageRequest;

/// A protobuf timestamp of a system time.
pub(crate) fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let (seconds, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            i32::try_from(d.subsec_nanos()).unwrap_or(0),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - i32::try_from(n).unwrap_or(0)),
            }
        }
    };
    prost_types::Timestamp { seconds, nanos }
}

/// A page request from a list call's paging fields.
pub(crate) fn page(page_size: u32, page_token: &str) -> PageRequest {
    PageRequest {
        page_size,
        page_token: page_token.to_owned(),
    }
}

/// A JSON value as a protobuf `Value`.
pub(crate) fn json_to_prost(value: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            // Integers a double cannot hold exactly travel as text.
            Some(i) if i.unsigned_abs() > (1 << 53) => Kind::StringValue(i.to_string()),
            _ => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_prost).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(json_object_to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A JSON object as a protobuf `Struct`; anything else becomes an empty one.
pub(crate) fn json_to_struct(value: &serde_json::Value) -> prost_types::Struct {
    match value {
        serde_json::Value::Object(map) => json_object_to_struct(map),
        _ => prost_types::Struct::default(),
    }
}

fn json_object_to_struct(map: &serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_prost(v)))
            .collect(),
    }
}

/// A required text field, trimmed.
pub(crate) fn required(field: &str, value: &str) -> crate::errors::ApiResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(crate::errors::ApiError::invalid(
            field,
            "is required and must not be empty",
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    #[test]
    fn timestamps_before_and_after_the_epoch() {
        let t = timestamp(UNIX_EPOCH + Duration::from_millis(1500));
        assert_eq!((t.seconds, t.nanos), (1, 500_000_000));
        let t = timestamp(UNIX_EPOCH - Duration::from_millis(1500));
        assert_eq!((t.seconds, t.nanos), (-2, 500_000_000));
    }

    #[test]
    fn json_becomes_a_struct() {
        let s =
            json_to_struct(&json!({"a": 1, "big": 9_007_199_254_740_993_i64, "l": [true, null]}));
        assert_eq!(
            s.fields["big"].kind,
            Some(prost_types::value::Kind::StringValue(
                "9007199254740993".into()
            ))
        );
        assert_eq!(
            s.fields["a"].kind,
            Some(prost_types::value::Kind::NumberValue(1.0))
        );
    }
}
