//! Writing an event's JSON straight from the row's values, without building a JSON tree.

use mixsync_domain::Value;
use mixsync_domain::civil::{format_date, format_datetime};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A warehouse value serialized exactly as [`Value::to_json`] would build it.
pub(crate) struct PropertyValue<'a>(pub &'a Value);

impl Serialize for PropertyValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Value::Float(_) => s.serialize_unit(),
            Value::Numeric(text) => serialize_numeric(text, s),
            Value::Text(text) => s.serialize_str(text),
            Value::Uuid(_) => s.serialize_str(&self.0.to_text().unwrap_or_default()),
            Value::Date { days } => s.serialize_str(&format_date(i64::from(*days))),
            Value::Timestamp { ms } => s.serialize_str(&format_datetime(*ms)),
            Value::Json(json) => json.serialize(s),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&PropertyValue(item))?;
                }
                seq.end()
            }
        }
    }
}

/// A number when the text is one (as `Value::to_json` does), else the text.
fn serialize_numeric<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    if let Ok(i) = text.parse::<i64>() {
        return s.serialize_i64(i);
    }
    if let Ok(u) = text.parse::<u64>() {
        return s.serialize_u64(u);
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => s.serialize_f64(f),
        _ => s.serialize_str(text),
    }
}

/// One event as `/import` takes it: `{"event": …, "properties": {"time": …, "distinct_id": …,
/// "$insert_id": …, <custom properties in mapping order>, "ip": 0}}`.
pub(crate) struct EventJson<'a> {
    pub event: &'a str,
    pub time_ms: i64,
    pub distinct_id: &'a str,
    pub insert_id: &'a str,
    pub properties: &'a [(&'a str, &'a Value)],
    pub ip_zero: bool,
}

impl Serialize for EventJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("event", self.event)?;
        map.serialize_entry("properties", &Properties(self))?;
        map.end()
    }
}

struct Properties<'a>(&'a EventJson<'a>);

impl Serialize for Properties<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut map = s.serialize_map(Some(3 + e.properties.len() + usize::from(e.ip_zero)))?;
        map.serialize_entry("time", &e.time_ms)?;
        map.serialize_entry("distinct_id", e.distinct_id)?;
        map.serialize_entry("$insert_id", e.insert_id)?;
        for (name, value) in e.properties {
            map.serialize_entry(name, &PropertyValue(value))?;
        }
        if e.ip_zero {
            map.serialize_entry("ip", &0)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            "-?[0-9]{1,25}(\\.[0-9]{0,10})?|NaN|-?Infinity|1e400".prop_map(Value::Numeric),
            ".*".prop_map(Value::Text),
            any::<[u8; 16]>().prop_map(Value::Uuid),
            any::<i32>().prop_map(|days| Value::Date { days }),
            any::<i64>().prop_map(|ms| Value::Timestamp { ms }),
            prop_oneof![
                Just(json!({"a": [1, "x", null]})),
                Just(json!([1.5, true])),
                Just(json!("s"))
            ]
            .prop_map(Value::Json),
        ];
        leaf.prop_recursive(2, 12, 4, |inner| {
            prop::collection::vec(inner, 0..4).prop_map(Value::Array)
        })
    }

    proptest! {
        #[test]
        fn property_values_serialize_like_to_json(v in value()) {
            let direct = serde_json::to_value(PropertyValue(&v)).unwrap();
            prop_assert_eq!(direct, v.to_json());
        }
    }

    #[test]
    fn events_put_required_fields_first_and_ip_last() {
        let plan = Value::from("pro");
        let uuid = Value::Uuid([1; 16]);
        let props = [("plan", &plan), ("account", &uuid)];
        let event = EventJson {
            event: "Signed Up",
            time_ms: 1_700_000_000_123,
            distinct_id: "u1",
            insert_id: "abc",
            properties: &props,
            ip_zero: true,
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"event":"Signed Up","properties":{"time":1700000000123,"distinct_id":"u1","$insert_id":"abc","plan":"pro","account":"01010101-0101-0101-0101-010101010101","ip":0}}"#
        );
    }
}
