//! One event as sent to `/import` (docs/mixpanel-api.md §1.4).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value as Json};

use crate::distinct_id::DistinctId;
use crate::event_name::EventName;
use crate::event_time::EventTime;
use crate::insert_id::InsertId;
use crate::rules::{
    LimitError, MAX_PROPERTIES, RESERVED_EVENT_PROPERTIES, check_event_size, check_property_value,
    json_len,
};

/// A Mixpanel event whose required fields already passed their rules. The time window is
/// checked separately ([`EventTime::check_window`]) because it depends on the clock.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// The event name.
    pub event: EventName,
    /// When it happened.
    pub time: EventTime,
    /// Who did it (may be empty: "no user").
    pub distinct_id: DistinctId,
    /// The deduplication key.
    pub insert_id: InsertId,
    /// Custom properties. Keys named like the required fields (`time`, `distinct_id`,
    /// `$insert_id`) are ignored: the typed fields above always win.
    pub properties: Map<String, Json>,
}

impl EventRecord {
    /// The event as Mixpanel takes it:
    /// `{"event": …, "properties": {"time": <ms>, "distinct_id": …, "$insert_id": …, …}}`.
    /// `Serialize` writes the same JSON without building it first.
    pub fn to_json(&self) -> Json {
        let mut properties = Map::new();
        properties.insert("time".into(), self.time.as_millis().into());
        properties.insert("distinct_id".into(), self.distinct_id.as_str().into());
        properties.insert("$insert_id".into(), self.insert_id.as_str().into());
        for (name, value) in self.custom_properties() {
            properties.insert(name.clone(), value.clone());
        }
        let mut event = Map::new();
        event.insert("event".into(), self.event.as_str().into());
        event.insert("properties".into(), Json::Object(properties));
        Json::Object(event)
    }

    /// Checks the per-event limits (docs/mixpanel-api.md §1.5, §1.6): fewer than 255 properties in
    /// all, every list or object property within the nesting, key, item and 8 KB limits, and the
    /// whole event under 1 MB. Returns the event's size in bytes of compact JSON.
    pub fn check_limits(&self) -> Result<usize, LimitError> {
        let count = RESERVED_EVENT_PROPERTIES.len() + self.custom_properties().count();
        if count >= MAX_PROPERTIES {
            return Err(LimitError::TooManyProperties { count });
        }
        for (name, value) in self.custom_properties() {
            check_property_value(name, value)?;
        }
        let bytes = json_len(self);
        check_event_size(bytes)?;
        Ok(bytes)
    }

    fn custom_properties(&self) -> impl Iterator<Item = (&String, &Json)> {
        self.properties
            .iter()
            .filter(|(name, _)| !RESERVED_EVENT_PROPERTIES.contains(&name.as_str()))
    }
}

impl Serialize for EventRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Properties<'a>(&'a EventRecord);

        impl Serialize for Properties<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let record = self.0;
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("time", &record.time.as_millis())?;
                map.serialize_entry("distinct_id", record.distinct_id.as_str())?;
                map.serialize_entry("$insert_id", record.insert_id.as_str())?;
                for (name, value) in record.custom_properties() {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }

        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("event", self.event.as_str())?;
        map.serialize_entry("properties", &Properties(self))?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rules::MAX_EVENT_BYTES;

    fn record(properties: Json) -> EventRecord {
        let Json::Object(properties) = properties else {
            panic!("properties must be an object");
        };
        EventRecord {
            event: EventName::parse("Signed Up").unwrap(),
            time: EventTime::from_millis(1_700_000_000_123),
            distinct_id: DistinctId::parse("u1").unwrap(),
            insert_id: InsertId::parse("abc-123").unwrap(),
            properties,
        }
    }

    #[test]
    fn json_puts_required_fields_in_properties() {
        let r = record(json!({"plan": "pro", "time": 5, "$insert_id": "x"}));
        let expected = json!({
            "event": "Signed Up",
            "properties": {"time": 1_700_000_000_123i64, "distinct_id": "u1",
                           "$insert_id": "abc-123", "plan": "pro"}
        });
        assert_eq!(r.to_json(), expected);
        assert_eq!(serde_json::to_value(&r).unwrap(), expected);
    }

    #[test]
    fn serialize_writes_required_fields_first() {
        let r = record(json!({"a": 1}));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"event":"Signed Up","properties":{"time":1700000000123,"distinct_id":"u1","$insert_id":"abc-123","a":1}}"#
        );
    }

    #[test]
    fn limits_count_the_required_fields() {
        let props = |n: usize| Json::Object((0..n).map(|i| (format!("p{i}"), json!(i))).collect());
        let bytes = record(props(251)).check_limits().unwrap();
        assert_eq!(
            bytes,
            serde_json::to_vec(&record(props(251))).unwrap().len()
        );
        let err = record(props(252)).check_limits().unwrap_err();
        assert_eq!(err, LimitError::TooManyProperties { count: 255 });
    }

    #[test]
    fn limits_check_each_property_and_the_whole_event() {
        let err = record(json!({"deep": [[[[1]]]]}))
            .check_limits()
            .unwrap_err();
        assert_eq!(err.field(), "properties.deep");
        let big: Map<String, Json> = (0..200)
            .map(|i| (format!("s{i}"), json!("x".repeat(MAX_EVENT_BYTES / 200))))
            .collect();
        let err = record(Json::Object(big)).check_limits().unwrap_err();
        assert!(matches!(err, LimitError::EventTooLarge { .. }));
    }
}
