//! The common case of `/import`, decided without building a JSON tree.
//!
//! Most events a pipeline sends are flat: an ASCII-ish name, an integer time, string ids and scalar
//! properties with short values. Such an event is judged here by borrowing slices of the request body
//! (`RawValue`), which is several times cheaper than `serde_json::Value` with its allocations. Anything
//! this path is not certain about — escapes, a nested value that breaks a rule, long strings, duplicate or missing fields,
//! a rule broken, a time to clamp — returns `None`, and the full judge in `validate.rs` decides. So this
//! file can only make accepting faster, never change an answer.

use std::fmt;

use mixsync_domain::rules;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use super::validate::{
    Context, check_property, dedup_key, distinct_id_rule, insert_id_rule, time_rule,
};
use crate::store::AcceptedEvent;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Event<'a> {
    #[serde(borrow)]
    event: &'a RawValue,
    #[serde(borrow)]
    properties: Properties<'a>,
}

/// The properties as (name, raw value) pairs in body order; names with escapes fail to borrow.
struct Properties<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Properties<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Properties<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(pair) = map.next_entry::<&'de str, &'de RawValue>()? {
                    pairs.push(pair);
                }
                Ok(Properties(pairs))
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

/// The content of a JSON string that has no escapes and needs no truncation, else `None`.
fn plain_str(raw: &RawValue) -> Option<&str> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    (inner.len() <= rules::MAX_STRING_BYTES && !inner.contains('\\')).then_some(inner)
}

/// A list or object property that passes the collection rules and needs no truncation inside.
fn nested_ok(raw: &RawValue) -> Option<()> {
    let text = raw.get();
    // The raw text is at least as long as its compact form, so within the limit here means within it there.
    if text.len() > rules::MAX_COLLECTION_BYTES || text.contains('\\') {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    check_property("", &value).ok()?;
    short_strings(&value).then_some(())
}

/// No string or key inside is long enough to be truncated.
fn short_strings(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.len() <= rules::MAX_STRING_BYTES,
        Value::Array(items) => items.iter().all(short_strings),
        Value::Object(map) => map
            .iter()
            .all(|(k, v)| k.len() <= rules::MAX_PROPERTY_NAME_BYTES && short_strings(v)),
        _ => true,
    }
}

/// Accepts a flat, valid event that is stored exactly as sent; `None` when the full judge must decide.
pub(crate) fn accept(text: &str, ctx: &Context) -> Option<AcceptedEvent> {
    if text.len() >= rules::MAX_EVENT_BYTES {
        return None;
    }
    let event: Event<'_> = serde_json::from_str(text).ok()?;
    let name = plain_str(event.event).filter(|n| !n.is_empty())?;
    let props = &event.properties.0;
    if props.len() >= rules::MAX_PROPERTIES {
        return None;
    }
    let (mut time, mut distinct_id, mut insert_id) = (None, None, None);
    for (key, raw) in props {
        if key.len() > rules::MAX_PROPERTY_NAME_BYTES {
            return None;
        }
        let slot = match *key {
            "time" => &mut time,
            "distinct_id" => &mut distinct_id,
            "$insert_id" => &mut insert_id,
            _ => {
                match raw.get().as_bytes().first() {
                    Some(b'{' | b'[') => nested_ok(raw)?,
                    Some(b'"') => {
                        plain_str(raw)?;
                    }
                    _ => {}
                }
                continue;
            }
        };
        if slot.replace(*raw).is_some() {
            return None; // a duplicate reserved key: the last one wins in the full judge
        }
    }
    let sent: i64 = time?.get().parse().ok()?;
    let (time_ms, clamp_to) = time_rule(sent, ctx.now_ms).ok()?;
    if clamp_to.is_some() {
        return None;
    }
    let distinct_id = plain_str(distinct_id?)?;
    distinct_id_rule(distinct_id).ok()?;
    let insert_id = plain_str(insert_id?)?;
    insert_id_rule(insert_id).ok()?;
    Some(AcceptedEvent {
        key: dedup_key(name, time_ms, distinct_id, insert_id),
        json: text.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixsync_domain::rules::TruncateUnit;

    const NOW: i64 = 1_800_000_000_000;

    fn ctx() -> Context {
        Context {
            now_ms: NOW,
            truncate: TruncateUnit::Chars,
        }
    }

    fn event(props: &str) -> String {
        format!(r#"{{"event":"Signed Up","properties":{{{props}}}}}"#)
    }

    const BASE: &str = r#""time":1700000000,"distinct_id":"u1","$insert_id":"a-1""#;

    #[test]
    fn a_flat_valid_event_is_accepted_as_sent_with_the_dedup_key() {
        let text = event(&format!(
            r#"{BASE},"plan":"pro","n":1.5,"ok":true,"x":null,"o":{{"a":[1,"b"]}},"l":[1]"#
        ));
        let accepted = accept(&text, &ctx()).expect("fast path");
        assert_eq!(&*accepted.json, text);
        assert_eq!(&*accepted.key, "Signed Up\u{0}1700000000000\u{0}u1\u{0}a-1");
    }

    #[test]
    fn anything_unusual_is_left_to_the_full_judge() {
        let long = "x".repeat(256);
        for props in [
            r#""time":1700000000,"distinct_id":"u1""#.to_owned(),
            format!(r#"{BASE},"deep":{{"a":{{"b":{{"c":{{"d":1}}}}}}}}"#),
            format!(r#"{BASE},"list":["{long}"]"#),
            format!(r#"{BASE},"esc":{{"a":"\n"}}"#),
            format!(r#"{BASE},"escaped":"a\"b""#),
            format!(r#"{BASE},"long":"{long}""#),
            format!(r#"{BASE},"time":1700000001"#),
            r#""time":1700000000.5,"distinct_id":"u1","$insert_id":"a-1""#.to_owned(),
            r#""time":1700000000,"distinct_id":"undefined","$insert_id":"a-1""#.to_owned(),
            r#""time":1700000000,"distinct_id":7,"$insert_id":"a-1""#.to_owned(),
            r#""time":1700000000,"distinct_id":"u1","$insert_id":"a_1""#.to_owned(),
            format!(
                r#""time":{},"distinct_id":"u1","$insert_id":"a-1""#,
                NOW + 1000
            ),
        ] {
            assert!(accept(&event(&props), &ctx()).is_none(), "{props}");
        }
        assert!(accept(r#"{"event":"","properties":{}}"#, &ctx()).is_none());
        let extra = format!(r#"{{"event":"a","properties":{{{BASE}}},"x":1}}"#);
        assert!(accept(&extra, &ctx()).is_none());
    }
}
