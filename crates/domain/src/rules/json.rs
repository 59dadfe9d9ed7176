//! Size and shape limits on event properties and profile updates
//! (docs/mixpanel-api.md §1.5, §1.6, §2.4).

use serde_json::{Map, Value};

use super::{
    MAX_COLLECTION_BYTES, MAX_EVENT_BYTES, MAX_LIST_ITEMS, MAX_NESTED_KEYS, MAX_NESTING_DEPTH,
    MAX_PROFILE_UPDATE_BYTES, MAX_PROPERTIES,
};

/// A Mixpanel size or shape limit that a record breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The event has [`MAX_PROPERTIES`] properties or more.
    #[error(
        "`properties` is invalid: the event has {count} properties; Mixpanel allows fewer than {max}",
        max = MAX_PROPERTIES
    )]
    TooManyProperties {
        /// How many properties the event has.
        count: usize,
    },
    /// A property value nests deeper than [`MAX_NESTING_DEPTH`].
    #[error(
        "`{field}` is invalid: it nests {depth} levels deep; Mixpanel allows at most {max}",
        max = MAX_NESTING_DEPTH
    )]
    TooDeep {
        /// The offending field, e.g. `properties.plan`.
        field: String,
        /// Its depth as [`json_depth`] counts it.
        depth: usize,
    },
    /// An object inside a property value has [`MAX_NESTED_KEYS`] keys or more.
    #[error(
        "`{field}` is invalid: an object in it has {keys} keys; Mixpanel allows fewer than {max}",
        max = MAX_NESTED_KEYS
    )]
    TooManyKeys {
        /// The offending field, e.g. `properties.plan`.
        field: String,
        /// How many keys the largest offending object has.
        keys: usize,
    },
    /// A list inside a property value has [`MAX_LIST_ITEMS`] items or more.
    #[error(
        "`{field}` is invalid: a list in it has {items} items; Mixpanel allows fewer than {max}",
        max = MAX_LIST_ITEMS
    )]
    TooManyItems {
        /// The offending field, e.g. `properties.tags`.
        field: String,
        /// How many items the offending list has.
        items: usize,
    },
    /// A list or object property is more than [`MAX_COLLECTION_BYTES`] of JSON.
    #[error(
        "`{field}` is invalid: it is {bytes} bytes of JSON; list and object properties may be at most {max} bytes",
        max = MAX_COLLECTION_BYTES
    )]
    CollectionTooLarge {
        /// The offending field, e.g. `properties.tags`.
        field: String,
        /// Its compact JSON size.
        bytes: usize,
    },
    /// The event's JSON is [`MAX_EVENT_BYTES`] or more.
    #[error(
        "the event is invalid: it is {bytes} bytes of JSON; each event must be under {max} bytes",
        max = MAX_EVENT_BYTES
    )]
    EventTooLarge {
        /// The event's JSON size.
        bytes: usize,
    },
    /// A profile update's JSON is more than [`MAX_PROFILE_UPDATE_BYTES`].
    #[error(
        "the profile update is invalid: it is {bytes} bytes of JSON; each update may be at most {max} bytes",
        max = MAX_PROFILE_UPDATE_BYTES
    )]
    ProfileUpdateTooLarge {
        /// The update's JSON size.
        bytes: usize,
    },
}

impl LimitError {
    /// The field the error is about, as Mixpanel names it in `failed_records[].field`.
    pub fn field(&self) -> &str {
        match self {
            Self::TooDeep { field, .. }
            | Self::TooManyKeys { field, .. }
            | Self::TooManyItems { field, .. }
            | Self::CollectionTooLarge { field, .. } => field,
            Self::TooManyProperties { .. } | Self::EventTooLarge { .. } => "properties",
            Self::ProfileUpdateTooLarge { .. } => "update",
        }
    }

    /// A stable identifier of the broken rule, for failed-record listings and metrics.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::TooManyProperties { .. } => "max_properties",
            Self::TooDeep { .. } => "max_nesting_depth",
            Self::TooManyKeys { .. } => "max_nested_keys",
            Self::TooManyItems { .. } => "max_list_items",
            Self::CollectionTooLarge { .. } => "max_collection_bytes",
            Self::EventTooLarge { .. } => "max_event_bytes",
            Self::ProfileUpdateTooLarge { .. } => "max_profile_update_bytes",
        }
    }
}

/// How deeply `v` nests: a scalar is 0, an object or list holding only scalars is 1, and each
/// further level of objects or lists adds 1. Lists count as a level just like objects.
pub fn json_depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The length in bytes of `v` serialized as compact JSON (as `serde_json::to_vec` would write
/// it), computed without allocating it. Saturates at `usize::MAX` if `v` cannot be serialized.
pub fn json_len<T: serde::Serialize + ?Sized>(v: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, v) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// Checks one event property value against the nesting, key-count, list-length and 8 KB collection
/// limits (docs/mixpanel-api.md §1.5, §1.6). `name` is the property name; errors report it as
/// `properties.<name>`. The key and item limits apply at every level, not just the top one.
pub fn check_property_value(name: &str, v: &Value) -> Result<(), LimitError> {
    if !(v.is_array() || v.is_object()) {
        return Ok(());
    }
    let field = || format!("properties.{name}");
    let depth = json_depth(v);
    if depth > MAX_NESTING_DEPTH {
        return Err(LimitError::TooDeep {
            field: field(),
            depth,
        });
    }
    check_counts(v).map_err(|count| match count {
        Count::Keys(keys) => LimitError::TooManyKeys {
            field: field(),
            keys,
        },
        Count::Items(items) => LimitError::TooManyItems {
            field: field(),
            items,
        },
    })?;
    let bytes = json_len(v);
    if bytes > MAX_COLLECTION_BYTES {
        return Err(LimitError::CollectionTooLarge {
            field: field(),
            bytes,
        });
    }
    Ok(())
}

enum Count {
    Keys(usize),
    Items(usize),
}

fn check_counts(v: &Value) -> Result<(), Count> {
    match v {
        Value::Array(items) if items.len() >= MAX_LIST_ITEMS => Err(Count::Items(items.len())),
        Value::Object(map) if map.len() >= MAX_NESTED_KEYS => Err(Count::Keys(map.len())),
        Value::Array(items) => items.iter().try_for_each(check_counts),
        Value::Object(map) => map.values().try_for_each(check_counts),
        _ => Ok(()),
    }
}

/// Checks an event's whole `properties` object: fewer than [`MAX_PROPERTIES`] keys (the required
/// `time`, `distinct_id` and `$insert_id` included) and every value per [`check_property_value`].
pub fn check_event_properties(properties: &Map<String, Value>) -> Result<(), LimitError> {
    if properties.len() >= MAX_PROPERTIES {
        return Err(LimitError::TooManyProperties {
            count: properties.len(),
        });
    }
    properties
        .iter()
        .try_for_each(|(name, v)| check_property_value(name, v))
}

/// Checks that an event of `bytes` bytes of JSON is under [`MAX_EVENT_BYTES`].
pub fn check_event_size(bytes: usize) -> Result<(), LimitError> {
    if bytes >= MAX_EVENT_BYTES {
        return Err(LimitError::EventTooLarge { bytes });
    }
    Ok(())
}

/// Checks that a profile update of `bytes` bytes of JSON is at most [`MAX_PROFILE_UPDATE_BYTES`].
pub fn check_profile_update_size(bytes: usize) -> Result<(), LimitError> {
    if bytes > MAX_PROFILE_UPDATE_BYTES {
        return Err(LimitError::ProfileUpdateTooLarge { bytes });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn depth_counts_objects_and_lists_alike() {
        assert_eq!(json_depth(&json!(1)), 0);
        assert_eq!(json_depth(&json!("x")), 0);
        assert_eq!(json_depth(&json!({})), 1);
        assert_eq!(json_depth(&json!([])), 1);
        assert_eq!(json_depth(&json!({"a": 1, "b": "c"})), 1);
        assert_eq!(json_depth(&json!([1, [2]])), 2);
        assert_eq!(json_depth(&json!({"a": [{"b": 1}]})), 3);
        assert_eq!(json_depth(&json!({"a": 1, "b": {"c": {"d": {"e": 1}}}})), 4);
    }

    #[test]
    fn json_len_matches_serialization() {
        for v in [json!(null), json!({"a": [1, 2.5, "é\n"]}), json!([])] {
            assert_eq!(json_len(&v), serde_json::to_vec(&v).unwrap().len());
        }
    }

    #[test]
    fn scalars_always_pass() {
        let long = "x".repeat(100_000);
        assert_eq!(check_property_value("s", &json!(long)), Ok(()));
    }

    #[test]
    fn depth_three_passes_and_four_fails() {
        assert_eq!(check_property_value("p", &json!({"a": {"b": [1]}})), Ok(()));
        let err = check_property_value("p", &json!({"a": {"b": [[1]]}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`properties.p` is invalid: it nests 4 levels deep; Mixpanel allows at most 3"
        );
        assert_eq!(err.field(), "properties.p");
        assert_eq!(err.rule(), "max_nesting_depth");
    }

    #[test]
    fn lists_need_fewer_than_255_items_at_every_level() {
        assert_eq!(check_property_value("l", &json!(vec![1; 254])), Ok(()));
        let err = check_property_value("l", &json!(vec![1; 255])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`properties.l` is invalid: a list in it has 255 items; Mixpanel allows fewer than 255"
        );
        let nested = json!({"inner": vec![0; 300]});
        assert!(matches!(
            check_property_value("l", &nested),
            Err(LimitError::TooManyItems { items: 300, .. })
        ));
    }

    #[test]
    fn objects_need_fewer_than_255_keys() {
        let obj = |n: usize| Value::Object((0..n).map(|i| (i.to_string(), json!(0))).collect());
        assert_eq!(check_property_value("o", &obj(254)), Ok(()));
        let err = check_property_value("o", &obj(255)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`properties.o` is invalid: an object in it has 255 keys; Mixpanel allows fewer than 255"
        );
    }

    #[test]
    fn collections_are_capped_at_8_kb() {
        // ["xxx…"] is the string plus 4 bytes of quotes and brackets.
        let fits = json!(["x".repeat(MAX_COLLECTION_BYTES - 4)]);
        assert_eq!(json_len(&fits), MAX_COLLECTION_BYTES);
        assert_eq!(check_property_value("c", &fits), Ok(()));
        let err =
            check_property_value("c", &json!(["x".repeat(MAX_COLLECTION_BYTES - 3)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`properties.c` is invalid: it is 8193 bytes of JSON; list and object properties may be at most 8192 bytes"
        );
        assert_eq!(err.rule(), "max_collection_bytes");
    }

    #[test]
    fn events_need_fewer_than_255_properties() {
        let props = |n: usize| -> Map<String, Value> {
            (0..n).map(|i| (format!("p{i}"), json!(i))).collect()
        };
        assert_eq!(check_event_properties(&props(254)), Ok(()));
        let err = check_event_properties(&props(255)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`properties` is invalid: the event has 255 properties; Mixpanel allows fewer than 255"
        );
        let mut bad = props(3);
        bad.insert("deep".into(), json!([[[[1]]]]));
        assert!(matches!(
            check_event_properties(&bad),
            Err(LimitError::TooDeep { depth: 4, .. })
        ));
    }

    #[test]
    fn event_size_is_strictly_under_1_mib() {
        assert_eq!(check_event_size(MAX_EVENT_BYTES - 1), Ok(()));
        let err = check_event_size(MAX_EVENT_BYTES).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the event is invalid: it is 1048576 bytes of JSON; each event must be under 1048576 bytes"
        );
    }

    #[test]
    fn profile_update_size_is_at_most_1_mib() {
        assert_eq!(check_profile_update_size(MAX_PROFILE_UPDATE_BYTES), Ok(()));
        let err = check_profile_update_size(MAX_PROFILE_UPDATE_BYTES + 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the profile update is invalid: it is 1048577 bytes of JSON; each update may be at most 1048576 bytes"
        );
        assert_eq!(err.rule(), "max_profile_update_bytes");
    }
}
