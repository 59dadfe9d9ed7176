//! AMQP header tables as plain string maps (what trace propagation and `DeadLetter` want).

use std::collections::BTreeMap;

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use serde_json::Value;

/// String headers as an AMQP table of long strings; keys over 255 bytes are dropped.
pub(crate) fn to_field_table(headers: &BTreeMap<String, String>) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in headers {
        match ShortString::try_new(key.as_str()) {
            Ok(key) => {
                table.insert(key, AMQPValue::LongString(LongString::from(value.as_str())));
            }
            Err(error) => tracing::warn!(%error, "dropping an over-long message header name"),
        }
    }
    table
}

/// An AMQP table as strings: text as is, everything else (numbers, `x-death` tables) as JSON.
pub(crate) fn from_field_table(table: Option<&FieldTable>) -> BTreeMap<String, String> {
    table
        .map(|table| {
            table
                .inner()
                .iter()
                .map(|(key, value)| (key.as_str().to_owned(), stringify(value)))
                .collect()
        })
        .unwrap_or_default()
}

fn stringify(value: &AMQPValue) -> String {
    match value {
        AMQPValue::ShortString(text) => text.as_str().to_owned(),
        AMQPValue::LongString(text) => String::from_utf8_lossy(text.as_bytes()).into_owned(),
        other => json(other).to_string(),
    }
}

fn json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::Timestamp(n) => Value::from(*n),
        AMQPValue::Float(n) => Value::from(*n),
        AMQPValue::Double(n) => Value::from(*n),
        AMQPValue::DecimalValue(d) => {
            Value::from(f64::from(d.value) / 10f64.powi(i32::from(d.scale)))
        }
        AMQPValue::ShortString(_) | AMQPValue::LongString(_) => Value::String(stringify(value)),
        AMQPValue::ByteArray(bytes) => {
            Value::String(String::from_utf8_lossy(bytes.as_slice()).into_owned())
        }
        AMQPValue::FieldArray(items) => Value::Array(items.as_slice().iter().map(json).collect()),
        AMQPValue::FieldTable(table) => Value::Object(
            table
                .inner()
                .iter()
                .map(|(key, value)| (key.as_str().to_owned(), json(value)))
                .collect(),
        ),
        AMQPValue::Void => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use lapin::types::FieldArray;

    use super::*;

    #[test]
    fn strings_round_trip() {
        let headers = BTreeMap::from([
            ("traceparent".to_owned(), "00-abc-def-01".to_owned()),
            ("x-mixsync-type".to_owned(), "RowBatch".to_owned()),
        ]);
        assert_eq!(from_field_table(Some(&to_field_table(&headers))), headers);
    }

    #[test]
    fn broker_headers_become_json() {
        let mut death = FieldTable::default();
        death.insert("count".into(), AMQPValue::LongLongInt(1));
        death.insert(
            "queue".into(),
            AMQPValue::LongString("t1.mixsync.rows".into()),
        );
        let mut table = FieldTable::default();
        table.insert(
            "x-death".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(death)])),
        );
        table.insert("x-delivery-count".into(), AMQPValue::LongInt(3));
        table.insert("flag".into(), AMQPValue::Boolean(true));

        let headers = from_field_table(Some(&table));

        assert_eq!(
            headers["x-death"],
            r#"[{"count":1,"queue":"t1.mixsync.rows"}]"#
        );
        assert_eq!(headers["x-delivery-count"], "3");
        assert_eq!(headers["flag"], "true");
        assert!(from_field_table(None).is_empty());
    }
}
