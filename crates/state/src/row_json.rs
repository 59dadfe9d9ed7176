//! A warehouse row from a queue message as JSON, for failed records: column → value, with
//! values a JSON number cannot hold exactly (large integers, numerics) kept as strings.

use mixsync_domain::civil::{format_date, format_datetime_millis};
use mixsync_proto::v1::{self, value::Kind};
use serde_json::{Map, Value as Json};

/// The largest integer a JSON number (an IEEE double) holds exactly.
const MAX_SAFE_INT: i64 = (1 << 53) - 1;

/// `columns[i]` → `row.values[i]`; a repeated column keeps its first value, values without a
/// column are named `column_<i>`.
pub(crate) fn row_json(columns: &[String], row: Option<&v1::Row>) -> Json {
    let mut map = Map::new();
    let Some(row) = row else {
        return Json::Object(map);
    };
    for (i, value) in row.values.iter().enumerate() {
        let name = columns
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("column_{}", i + 1));
        map.entry(name).or_insert_with(|| value_json(value));
    }
    Json::Object(map)
}

fn value_json(value: &v1::Value) -> Json {
    match &value.kind {
        None | Some(Kind::Null(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::IntValue(i)) if i.abs() <= MAX_SAFE_INT => Json::from(*i),
        Some(Kind::IntValue(i)) => Json::String(i.to_string()),
        Some(Kind::DoubleValue(f)) => serde_json::Number::from_f64(*f)
            .map_or_else(|| Json::String(f.to_string()), Json::Number),
        Some(Kind::Numeric(s) | Kind::Text(s)) => Json::String(s.clone()),
        Some(Kind::Uuid(bytes)) => Json::String(uuid_text(bytes)),
        Some(Kind::Date(days)) => Json::String(format_date(i64::from(*days))),
        Some(Kind::TimestampMicros(us)) => {
            Json::String(format_datetime_millis(us.div_euclid(1000)))
        }
        Some(Kind::Json(text)) => {
            serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.clone()))
        }
        Some(Kind::Array(list)) => Json::Array(list.values.iter().map(value_json).collect()),
    }
}

fn uuid_text(bytes: &[u8]) -> String {
    uuid::Uuid::from_slice(bytes).map_or_else(
        |_| bytes.iter().map(|b| format!("{b:02x}")).collect(),
        |u| u.hyphenated().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn v(kind: Kind) -> v1::Value {
        v1::Value { kind: Some(kind) }
    }

    #[test]
    fn converts_each_kind() {
        let row = v1::Row {
            values: vec![
                v(Kind::IntValue(7)),
                v(Kind::IntValue(i64::MAX)),
                v(Kind::Numeric("1.50".into())),
                v(Kind::Uuid(vec![0x11; 16])),
                v(Kind::Date(0)),
                v(Kind::TimestampMicros(1_500)),
                v(Kind::Json(r#"{"a":1}"#.into())),
                v1::Value { kind: None },
                v(Kind::Text("extra".into())),
            ],
        };
        let columns: Vec<String> = ["i", "big", "n", "u", "d", "ts", "j", "nul"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            row_json(&columns, Some(&row)),
            json!({
                "i": 7, "big": "9223372036854775807", "n": "1.50",
                "u": "11111111-1111-1111-1111-111111111111", "d": "1970-01-01",
                "ts": "1970-01-01T00:00:00.001Z", "j": {"a": 1}, "nul": null, "column_9": "extra"
            })
        );
    }
}
