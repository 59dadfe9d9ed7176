//! Mixpanel's per-event rules for `/import` (CONTRACT.md, step 7), and what is done to a valid event before
//! it is stored (step 8: truncation and clamping).

use mixsync_domain::rules::{self, TruncateUnit};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::store::AcceptedEvent;

/// One entry of a strict 400's `failed_records`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct FailedRecord {
    pub(crate) index: usize,
    pub(crate) insert_id: Option<String>,
    pub(crate) field: String,
    pub(crate) message: String,
}

/// What is needed to judge an event.
pub(crate) struct Context {
    pub(crate) now_ms: i64,
    pub(crate) truncate: TruncateUnit,
}

/// The outcome for one element of the body.
pub(crate) enum Outcome {
    Accepted(AcceptedEvent),
    Failed(FailedRecord),
    /// The element is not JSON at all: the whole request is malformed.
    Malformed(String),
}

/// Judges one element of the body.
pub(crate) fn judge(index: usize, bytes: &[u8], ctx: &Context) -> Outcome {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => return bad_utf8(index, &String::from_utf8_lossy(bytes)),
    };
    if let Some(event) = super::fast::accept(text, ctx) {
        return Outcome::Accepted(event);
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) if is_unicode_error(&e) => match replace_lone_surrogates(text) {
            Some(fixed) => return bad_utf8(index, &fixed),
            None => return Outcome::Malformed(e.to_string()),
        },
        Err(e) => return Outcome::Malformed(e.to_string()),
    };
    let fail = |field: &str, message: String| {
        Outcome::Failed(FailedRecord {
            index,
            insert_id: value
                .get("properties")
                .and_then(|p| p.get("$insert_id"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            field: field.to_owned(),
            message,
        })
    };
    if bytes.len() >= rules::MAX_EVENT_BYTES {
        return fail(
            "event",
            format!(
                "event is too large: {} bytes (must be under {})",
                bytes.len(),
                rules::MAX_EVENT_BYTES
            ),
        );
    }
    match check(&value, ctx) {
        Err((field, message)) => fail(&field, message),
        Ok(checked) => Outcome::Accepted(finish(value, text, checked, ctx)),
    }
}

/// What the checks learned about a valid event.
struct Checked {
    time_ms: i64,
    /// `Some(new time)` when a future time is clamped to now.
    clamp_to: Option<i64>,
}

pub(crate) type Rejection = (String, String);

fn reject(field: &str, message: impl Into<String>) -> Rejection {
    (field.to_owned(), message.into())
}

fn check(value: &Value, ctx: &Context) -> Result<Checked, Rejection> {
    let Value::Object(event) = value else {
        return Err(reject(
            "event",
            "event must be an object with 'event' and 'properties'",
        ));
    };
    if let Some(key) = event.keys().find(|k| *k != "event" && *k != "properties") {
        return Err(reject(
            key,
            format!("'{key}' is not allowed: an event has only 'event' and 'properties'"),
        ));
    }
    match event.get("event") {
        Some(Value::String(name)) if !name.is_empty() => {}
        _ => return Err(reject("event", "'event' must be a non-empty string")),
    }
    let Some(Value::Object(props)) = event.get("properties") else {
        return Err(reject("properties", "'properties' must be an object"));
    };
    let (time_ms, clamp_to) = check_time(props, ctx.now_ms)?;
    check_distinct_id(props)?;
    check_insert_id(props)?;
    if props.len() >= rules::MAX_PROPERTIES {
        return Err(reject(
            "properties",
            "'properties' is invalid: must have fewer than 255 properties",
        ));
    }
    for (name, value) in props {
        check_property(name, value)?;
    }
    Ok(Checked { time_ms, clamp_to })
}

fn check_time(props: &Map<String, Value>, now_ms: i64) -> Result<(i64, Option<i64>), Rejection> {
    const FIELD: &str = "properties.time";
    let Some(time) = props.get("time") else {
        return Err(reject(FIELD, "'properties.time' must be specified"));
    };
    let Some(sent) = time.as_i64() else {
        return Err(reject(
            FIELD,
            "'properties.time' is invalid: must be specified as seconds since epoch",
        ));
    };
    time_rule(sent, now_ms)
}

/// The time rules for an integer `time`: its value in ms, and the clamped time to write if any.
pub(crate) fn time_rule(sent: i64, now_ms: i64) -> Result<(i64, Option<i64>), Rejection> {
    const FIELD: &str = "properties.time";
    let too_far = || {
        reject(
            FIELD,
            "'properties.time' is invalid: must not be more than 1 hour in the future",
        )
    };
    let ms = rules::epoch_to_ms(sent).ok_or_else(too_far)?;
    if ms < rules::MIN_EVENT_TIME_MS {
        return Err(reject(
            FIELD,
            "'properties.time' is invalid: must be after 1971-01-01",
        ));
    }
    if ms > now_ms.saturating_add(rules::MAX_FUTURE_MS) {
        return Err(too_far());
    }
    if ms > now_ms {
        // Mixpanel overwrites a near-future time with the ingestion time, in the unit it was sent in.
        let clamped = if sent >= rules::SECONDS_MS_THRESHOLD {
            now_ms
        } else {
            now_ms / 1000
        };
        return Ok((rules::epoch_to_ms(clamped).unwrap_or(now_ms), Some(clamped)));
    }
    Ok((ms, None))
}

fn check_distinct_id(props: &Map<String, Value>) -> Result<(), Rejection> {
    const FIELD: &str = "properties.distinct_id";
    match props.get("distinct_id") {
        None => Err(reject(FIELD, "'properties.distinct_id' must be specified")),
        Some(Value::String(id)) => distinct_id_rule(id),
        Some(_) => Err(reject(
            FIELD,
            "'properties.distinct_id' is invalid: must be a string",
        )),
    }
}

/// The rules for a string `distinct_id`.
pub(crate) fn distinct_id_rule(id: &str) -> Result<(), Rejection> {
    if rules::is_denied_id(id) {
        return Err(reject(
            "properties.distinct_id",
            format!("'properties.distinct_id' is invalid: '{id}' is not a valid distinct_id"),
        ));
    }
    Ok(())
}

fn check_insert_id(props: &Map<String, Value>) -> Result<(), Rejection> {
    const FIELD: &str = "$insert_id";
    match props.get("$insert_id") {
        None => Err(reject(FIELD, "'$insert_id' must be specified")),
        Some(Value::String(id)) => insert_id_rule(id),
        Some(_) => Err(reject(FIELD, "'$insert_id' is invalid: must be a string")),
    }
}

/// The rules for a string `$insert_id`.
pub(crate) fn insert_id_rule(id: &str) -> Result<(), Rejection> {
    const FIELD: &str = "$insert_id";
    if id.len() > rules::MAX_INSERT_ID_BYTES {
        return Err(reject(
            FIELD,
            "'$insert_id' is invalid: must be at most 36 bytes",
        ));
    }
    if id.is_empty() || !id.bytes().all(rules::is_insert_id_char) {
        return Err(reject(
            FIELD,
            "'$insert_id' is invalid: must only contain alphanumeric or hyphen '-' characters",
        ));
    }
    if rules::is_denied_id(id) {
        return Err(reject(
            FIELD,
            format!("'$insert_id' is invalid: '{id}' is a reserved value"),
        ));
    }
    Ok(())
}

/// The shape of a property's value: nesting depth, widest object, longest list.
#[derive(Default)]
struct Shape {
    depth: usize,
    max_keys: usize,
    max_items: usize,
}

fn shape(value: &Value) -> Shape {
    let (children, keys, items): (Box<dyn Iterator<Item = &Value>>, usize, usize) = match value {
        Value::Object(map) => (Box::new(map.values()), map.len(), 0),
        Value::Array(list) => (Box::new(list.iter()), 0, list.len()),
        _ => return Shape::default(),
    };
    let mut s = Shape {
        depth: 0,
        max_keys: keys,
        max_items: items,
    };
    for child in children {
        let c = shape(child);
        s.depth = s.depth.max(c.depth);
        s.max_keys = s.max_keys.max(c.max_keys);
        s.max_items = s.max_items.max(c.max_items);
    }
    s.depth += 1;
    s
}

pub(crate) fn check_property(name: &str, value: &Value) -> Result<(), Rejection> {
    if !matches!(value, Value::Object(_) | Value::Array(_)) {
        return Ok(());
    }
    let s = shape(value);
    let rule = if s.depth > rules::MAX_NESTING_DEPTH {
        "nested objects must be at most 3 levels deep"
    } else if s.max_keys >= rules::MAX_NESTED_KEYS {
        "objects must have fewer than 255 keys"
    } else if s.max_items >= rules::MAX_LIST_ITEMS {
        "lists must have fewer than 255 items"
    } else if serde_json::to_vec(value).map_or(0, |v| v.len()) > rules::MAX_COLLECTION_BYTES {
        "list and object properties must be at most 8 KB"
    } else {
        return Ok(());
    };
    let field = format!("properties.{name}");
    let message = format!("'{field}' is invalid: {rule}");
    Err((field, message))
}

/// Truncates, clamps and builds the stored form and dedup key of a valid event.
fn finish(mut value: Value, text: &str, checked: Checked, ctx: &Context) -> AcceptedEvent {
    let mut changed = false;
    if let Value::Object(event) = &mut value {
        if let Some(name) = event.get_mut("event") {
            changed |= truncate_value(name, ctx.truncate);
        }
        if let Some(Value::Object(props)) = event.get_mut("properties") {
            changed |= truncate_properties(props, ctx.truncate);
            if let Some(clamped) = checked.clamp_to {
                props.insert("time".into(), Value::from(clamped));
                changed = true;
            }
        }
    }
    let field = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let key = dedup_key(
        field("/event"),
        checked.time_ms,
        field("/properties/distinct_id"),
        field("/properties/$insert_id"),
    );
    let json = if changed {
        serde_json::to_string(&value).unwrap_or_else(|_| text.to_owned())
    } else {
        text.to_owned()
    };
    AcceptedEvent {
        key,
        json: json.into_boxed_str(),
    }
}

/// Mixpanel's dedup key: `event \0 time_ms \0 distinct_id \0 $insert_id`.
pub(crate) fn dedup_key(event: &str, time_ms: i64, distinct_id: &str, insert_id: &str) -> Box<str> {
    use std::fmt::Write;
    let mut key = String::with_capacity(event.len() + distinct_id.len() + insert_id.len() + 24);
    // Writing to a String cannot fail.
    let _ = write!(key, "{event}\0{time_ms}\0{distinct_id}\0{insert_id}");
    key.into_boxed_str()
}

fn truncate_string(s: &mut String, unit: TruncateUnit) -> bool {
    let keep = rules::truncate_str(s, rules::MAX_STRING_BYTES, unit).len();
    if keep < s.len() {
        s.truncate(keep);
        true
    } else {
        false
    }
}

fn truncate_value(value: &mut Value, unit: TruncateUnit) -> bool {
    match value {
        Value::String(s) => truncate_string(s, unit),
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |c, v| truncate_value(v, unit) | c),
        Value::Object(map) => truncate_properties(map, unit),
        _ => false,
    }
}

fn truncate_properties(map: &mut Map<String, Value>, unit: TruncateUnit) -> bool {
    let mut changed = map
        .values_mut()
        .fold(false, |c, v| truncate_value(v, unit) | c);
    let long_name =
        |k: &String| rules::truncate_str(k, rules::MAX_PROPERTY_NAME_BYTES, unit).len() < k.len();
    if map.keys().any(long_name) {
        let entries = std::mem::take(map);
        for (mut name, value) in entries {
            truncate_string(&mut name, unit);
            map.insert(name, value);
        }
        changed = true;
    }
    changed
}

fn is_unicode_error(e: &serde_json::Error) -> bool {
    let message = e.to_string();
    message.contains("surrogate")
        || message.contains("unicode code point")
        || message.contains("hex escape")
}

/// Replaces `\uXXXX` escapes of unpaired surrogates by U+FFFD so the event can be read and the bad field named.
fn replace_lone_surrogates(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let hex_at = |i: usize| -> Option<u32> {
        let digits = text.get(i..i + 4)?;
        u32::from_str_radix(digits, 16).ok()
    };
    let mut out = String::with_capacity(text.len());
    let mut found = false;
    let mut last = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        if bytes[i + 1] != b'u' {
            i += 2;
            continue;
        }
        let Some(code) = hex_at(i + 2) else {
            i += 2;
            continue;
        };
        let paired = (0xD800..0xDC00).contains(&code)
            && bytes.get(i + 6) == Some(&b'\\')
            && bytes.get(i + 7) == Some(&b'u')
            && hex_at(i + 8).is_some_and(|low| (0xDC00..0xE000).contains(&low));
        if paired {
            i += 12;
        } else if (0xD800..0xE000).contains(&code) {
            out.push_str(&text[last..i]);
            out.push_str("\\uFFFD");
            found = true;
            i += 6;
            last = i;
        } else {
            i += 6;
        }
    }
    out.push_str(&text[last..]);
    found.then_some(out)
}

/// Names the field holding a replacement character (from invalid UTF-8) and fails the event with it.
fn bad_utf8(index: usize, lossy: &str) -> Outcome {
    let Ok(value) = serde_json::from_str::<Value>(lossy) else {
        return Outcome::Malformed("the body is not valid UTF-8 JSON".into());
    };
    let has_bad = |v: &Value| contains_replacement(v);
    let field = match &value {
        Value::Object(event) if event.get("event").is_some_and(has_bad) => "event".to_owned(),
        Value::Object(event) => match event.get("properties") {
            Some(Value::Object(props)) => props
                .iter()
                .find(|(k, v)| k.contains('\u{FFFD}') || has_bad(v))
                .map(|(k, _)| {
                    if k.contains('\u{FFFD}') {
                        "properties".to_owned()
                    } else {
                        format!("properties.{k}")
                    }
                })
                .unwrap_or_else(|| "properties".to_owned()),
            _ => "properties".to_owned(),
        },
        _ => "event".to_owned(),
    };
    let insert_id = value
        .pointer("/properties/$insert_id")
        .and_then(Value::as_str)
        .filter(|id| !id.contains('\u{FFFD}'))
        .map(str::to_owned);
    Outcome::Failed(FailedRecord {
        index,
        insert_id,
        message: format!("{field} is invalid: string should be valid utf8"),
        field,
    })
}

fn contains_replacement(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\u{FFFD}'),
        Value::Array(items) => items.iter().any(contains_replacement),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains('\u{FFFD}') || contains_replacement(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_750_000_000_000;

    fn ctx() -> Context {
        Context {
            now_ms: NOW,
            truncate: TruncateUnit::Bytes,
        }
    }

    fn judge_json(v: &Value) -> Outcome {
        judge(0, serde_json::to_string(v).unwrap().as_bytes(), &ctx())
    }

    fn event(props: Value) -> Value {
        let mut base = json!({"time": NOW / 1000, "distinct_id": "u1", "$insert_id": "abc-1"});
        base.as_object_mut()
            .unwrap()
            .extend(props.as_object().unwrap().clone());
        json!({"event": "Signed Up", "properties": base})
    }

    fn failure(outcome: Outcome) -> (String, String) {
        match outcome {
            Outcome::Failed(f) => (f.field, f.message),
            Outcome::Accepted(a) => panic!("accepted: {}", a.json),
            Outcome::Malformed(m) => panic!("malformed: {m}"),
        }
    }

    #[test]
    fn a_valid_event_is_stored_as_sent() {
        let text =
            r#"{"event":"a","properties":{"time":1700000000,"distinct_id":"u","$insert_id":"x1"}}"#;
        match judge(0, text.as_bytes(), &ctx()) {
            Outcome::Accepted(a) => {
                assert_eq!(&*a.json, text);
                assert_eq!(&*a.key, "a\u{0}1700000000000\u{0}u\u{0}x1");
            }
            _ => panic!("rejected"),
        }
    }

    #[test]
    fn seconds_and_milliseconds_give_the_same_key() {
        let key = |t: i64| match judge_json(&event(json!({"time": t}))) {
            Outcome::Accepted(a) => a.key,
            _ => panic!(),
        };
        assert_eq!(key(1_700_000_000), key(1_700_000_000_000));
    }

    #[test]
    fn near_future_times_are_clamped_in_their_unit() {
        match judge_json(&event(json!({"time": NOW + 60_000}))) {
            Outcome::Accepted(a) => assert!(a.json.contains(&format!("\"time\":{NOW}"))),
            _ => panic!(),
        }
        match judge_json(&event(json!({"time": NOW / 1000 + 60}))) {
            Outcome::Accepted(a) => assert!(a.json.contains(&format!("\"time\":{}", NOW / 1000))),
            _ => panic!(),
        }
    }

    #[test]
    fn rules_in_order() {
        let cases = [
            (
                json!([1]),
                "event",
                "event must be an object with 'event' and 'properties'",
            ),
            (
                json!({"event":"a","properties":{},"extra":1}),
                "extra",
                "'extra' is not allowed: an event has only 'event' and 'properties'",
            ),
            (
                json!({"event":"","properties":{}}),
                "event",
                "'event' must be a non-empty string",
            ),
            (
                json!({"event":"a","properties":[]}),
                "properties",
                "'properties' must be an object",
            ),
            (
                json!({"event":"a","properties":{}}),
                "properties.time",
                "'properties.time' must be specified",
            ),
            (
                event(json!({"time": 1.5e9})),
                "properties.time",
                "'properties.time' is invalid: must be specified as seconds since epoch",
            ),
            (
                event(json!({"time": 31_535_999})),
                "properties.time",
                "'properties.time' is invalid: must be after 1971-01-01",
            ),
            (
                event(json!({"time": NOW + 3_600_001})),
                "properties.time",
                "'properties.time' is invalid: must not be more than 1 hour in the future",
            ),
            (
                event(json!({"distinct_id": 5})),
                "properties.distinct_id",
                "'properties.distinct_id' is invalid: must be a string",
            ),
            (
                event(json!({"distinct_id": "Undefined"})),
                "properties.distinct_id",
                "'properties.distinct_id' is invalid: 'Undefined' is not a valid distinct_id",
            ),
            (
                event(json!({"$insert_id": "a_b"})),
                "$insert_id",
                "'$insert_id' is invalid: must only contain alphanumeric or hyphen '-' characters",
            ),
            (
                event(json!({"$insert_id": "a".repeat(37)})),
                "$insert_id",
                "'$insert_id' is invalid: must be at most 36 bytes",
            ),
            (
                event(json!({"$insert_id": "null"})),
                "$insert_id",
                "'$insert_id' is invalid: 'null' is a reserved value",
            ),
            (
                event(json!({"deep": {"a": {"b": {"c": {"d": 1}}}}})),
                "properties.deep",
                "'properties.deep' is invalid: nested objects must be at most 3 levels deep",
            ),
            (
                event(json!({"list": vec![1; 255]})),
                "properties.list",
                "'properties.list' is invalid: lists must have fewer than 255 items",
            ),
            (
                event(json!({"blob": vec!["x".repeat(100); 100]})),
                "properties.blob",
                "'properties.blob' is invalid: list and object properties must be at most 8 KB",
            ),
        ];
        for (value, field, message) in cases {
            assert_eq!(
                failure(judge_json(&value)),
                (field.to_owned(), message.to_owned()),
                "{value}"
            );
        }
        let mut many = serde_json::Map::new();
        for i in 0..252 {
            many.insert(format!("p{i}"), json!(i));
        }
        assert_eq!(
            failure(judge_json(&event(Value::Object(many)))).0,
            "properties"
        );
    }

    #[test]
    fn invalid_utf8_names_the_property() {
        let mut bytes = br#"{"event":"a","properties":{"time":1700000000,"distinct_id":"u","$insert_id":"x1","name":"ab"#.to_vec();
        bytes.push(0xff);
        bytes.extend_from_slice(br#""}}"#);
        let (field, message) = failure(judge(0, &bytes, &ctx()));
        assert_eq!(field, "properties.name");
        assert_eq!(
            message,
            "properties.name is invalid: string should be valid utf8"
        );
        let surrogate = r#"{"event":"a","properties":{"time":1700000000,"distinct_id":"u","$insert_id":"x1","s":"\ud800x"}}"#;
        assert_eq!(
            failure(judge(0, surrogate.as_bytes(), &ctx())).0,
            "properties.s"
        );
        let pair = r#"{"event":"a","properties":{"time":1700000000,"distinct_id":"u","$insert_id":"x1","s":"\ud83d\ude00"}}"#;
        assert!(matches!(
            judge(0, pair.as_bytes(), &ctx()),
            Outcome::Accepted(_)
        ));
    }

    #[test]
    fn long_strings_and_names_are_truncated_on_char_boundaries() {
        let long = "é".repeat(200); // 400 bytes
        let name = "n".repeat(300);
        match judge_json(&event(
            json!({"s": long, name.clone(): 1, "nested": {"t": "x".repeat(300)}}),
        )) {
            Outcome::Accepted(a) => {
                let v: Value = serde_json::from_str(&a.json).unwrap();
                assert_eq!(v["properties"]["s"].as_str().unwrap().len(), 254);
                assert_eq!(v["properties"]["nested"]["t"].as_str().unwrap().len(), 255);
                assert!(v["properties"].get(&name[..255]).is_some());
            }
            _ => panic!(),
        }
    }

    #[test]
    fn malformed_elements_are_reported() {
        assert!(matches!(
            judge(0, b"{\"a\":tru}", &ctx()),
            Outcome::Malformed(_)
        ));
    }
}
