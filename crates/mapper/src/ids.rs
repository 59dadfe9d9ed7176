//! Reading ids (events' `distinct_id` and `$insert_id`, profiles' `$distinct_id`, `$group_key`
//! and `$group_id`) from warehouse values.

use std::borrow::Cow;

use mixsync_domain::{FieldError, Value};
use serde_json::Value as Json;

/// Why a value cannot be an id: a stable rule and the message detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdError {
    pub rule: &'static str,
    pub detail: String,
}

impl From<FieldError> for IdError {
    fn from(e: FieldError) -> Self {
        Self {
            rule: e.rule(),
            detail: e.to_string(),
        }
    }
}

/// The text of id `field` of a `who` (`event`, `user profile update`, …): text, numeric,
/// integer, UUID, date and timestamp values, and JSON strings and numbers. `NULL` and booleans,
/// floats (inexact), JSON objects/lists and arrays are refused.
pub(crate) fn id_text<'a>(
    field: &str,
    who: &str,
    value: &'a Value,
) -> Result<Cow<'a, str>, IdError> {
    let refuse = |what: &str| IdError {
        rule: "id_type",
        detail: format!(
            "`{field}` is invalid: {what} is not an id; use a text, integer or uuid column"
        ),
    };
    match value {
        Value::Null | Value::Json(Json::Null) => Err(IdError {
            rule: "required",
            detail: format!("`{field}` is invalid: it is null; every {who} needs one"),
        }),
        Value::Bool(_) | Value::Json(Json::Bool(_)) => Err(refuse("a boolean")),
        Value::Float(_) => Err(refuse("a floating-point number")),
        Value::Array(_) | Value::Json(Json::Array(_)) => Err(refuse("a list")),
        Value::Json(Json::Object(_)) => Err(refuse("a JSON object")),
        Value::Int(_)
        | Value::Numeric(_)
        | Value::Text(_)
        | Value::Uuid(_)
        | Value::Date { .. }
        | Value::Timestamp { .. }
        | Value::Json(Json::String(_) | Json::Number(_)) => {
            Ok(value.to_text().unwrap_or(Cow::Borrowed("")))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_come_from_text_like_values() {
        assert_eq!(
            id_text("distinct_id", "event", &Value::Int(42)).unwrap(),
            "42"
        );
        assert_eq!(
            id_text("distinct_id", "event", &Value::from("u1")).unwrap(),
            "u1"
        );
        assert_eq!(
            id_text("distinct_id", "event", &Value::Uuid([0xab; 16])).unwrap(),
            "abababab-abab-abab-abab-abababababab"
        );
        assert_eq!(
            id_text("distinct_id", "event", &Value::Json(json!("j"))).unwrap(),
            "j"
        );
        assert_eq!(
            id_text("distinct_id", "event", &Value::Json(json!(7))).unwrap(),
            "7"
        );
    }

    #[test]
    fn other_values_are_refused_with_a_rule() {
        let err = id_text("distinct_id", "event", &Value::Null).unwrap_err();
        assert_eq!(err.rule, "required");
        assert_eq!(
            err.detail,
            "`distinct_id` is invalid: it is null; every event needs one"
        );
        let err = id_text("$insert_id", "event", &Value::Float(1.5)).unwrap_err();
        assert_eq!(
            err.detail,
            "`$insert_id` is invalid: a floating-point number is not an id; use a text, integer or uuid column"
        );
        assert_eq!(err.rule, "id_type");
        assert!(id_text("x", "event", &Value::Json(json!({}))).is_err());
        assert!(id_text("x", "event", &Value::Array(vec![])).is_err());
        assert!(id_text("x", "event", &Value::Bool(true)).is_err());
    }
}
