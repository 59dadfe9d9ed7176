//! The body of `/engage` and `/groups`. Each record is a JSON array of update objects (the mapper's
//! order: `$set`, `$set_once`, `$add`, `$union`, `$unset`); the body is one flat JSON array of every
//! record's updates, in order, each with `"$token"` put first (the mapper does not know the target's
//! token). Updates are copied as they are, never re-serialised.

use std::collections::HashMap;

use bytes::Bytes;
use mixsync_domain::MAX_PROJECT_TOKEN_BYTES;
use mixsync_domain::rules::MAX_PROFILE_UPDATE_BYTES;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::batcher::RecordSize;
use crate::objects::{RULE_INVALID, RULE_TOO_LARGE, RecordFailure};

/// Bytes the token adds to one update at most: `"$token":"…",` with a token of at most
/// [`MAX_PROJECT_TOKEN_BYTES`] (tokens need no JSON escaping).
pub(crate) const TOKEN_ALLOWANCE: usize = r#""$token":"","#.len() + MAX_PROJECT_TOKEN_BYTES;

/// The update objects of `record`, as their raw JSON.
fn updates(record: &[u8]) -> Result<Vec<&RawValue>, serde_json::Error> {
    serde_json::from_slice(record)
}

/// A record's updates and body bytes: each update with its token and one byte of framing (`[`,
/// `,` or `]`). A body of records `r` is at most `sum(record_size(r).bytes) + 1` bytes long.
pub(crate) fn record_size(record: &[u8]) -> RecordSize {
    match updates(record) {
        Ok(updates) => RecordSize {
            units: updates.len(),
            bytes: updates
                .iter()
                .map(|u| u.get().len() + TOKEN_ALLOWANCE + 1)
                .sum(),
        },
        // Sent as it is (see `encode`); `check` keeps such records out.
        Err(_) => RecordSize {
            units: 1,
            bytes: record.len() + 1,
        },
    }
}

/// Refuses a record that would spoil the requests it travels in: not an array of update objects,
/// none at all, a `$token` of its own, or an update over Mixpanel's 1 MB once the token is in.
/// Everything else about an update is Mixpanel's to judge.
pub(crate) fn check(record: &[u8]) -> Result<(), RecordFailure> {
    let invalid = |field: &str, message: String| RecordFailure {
        field: field.to_owned(),
        rule: RULE_INVALID,
        message,
    };
    let updates = updates(record).map_err(|e| {
        invalid(
            "",
            format!("the record is not a JSON array of update objects: {e}"),
        )
    })?;
    if updates.is_empty() {
        return Err(invalid("", "the record holds no update objects".into()));
    }
    for (i, update) in updates.iter().enumerate() {
        let keys: HashMap<String, IgnoredAny> = serde_json::from_str(update.get())
            .map_err(|_| invalid("", format!("update {i} of the record is not a JSON object")))?;
        if keys.contains_key("$token") {
            return Err(invalid(
                "$token",
                format!(
                    "update {i} of the record has a `$token`; the loader sets it from the target"
                ),
            ));
        }
        let bytes = update.get().len() + TOKEN_ALLOWANCE;
        if bytes >= MAX_PROFILE_UPDATE_BYTES {
            return Err(RecordFailure {
                field: String::new(),
                rule: RULE_TOO_LARGE,
                message: format!(
                    "update {i} of the record is {bytes} bytes with the project token; Mixpanel takes updates under {MAX_PROFILE_UPDATE_BYTES} bytes"
                ),
            });
        }
    }
    Ok(())
}

/// The JSON array of every update of `records`, `token` in each, and how many updates it holds.
/// A record that is not an array of objects (which [`check`] keeps out) is sent as it is, for
/// Mixpanel to refuse.
pub(crate) fn encode(records: &[Bytes], token: &str) -> (Vec<u8>, usize) {
    let token = serde_json::Value::from(token).to_string();
    let capacity = records.iter().map(Bytes::len).sum::<usize>() + 2;
    let mut body = Vec::with_capacity(capacity + capacity / 4);
    let mut count = 0;
    body.push(b'[');
    let mut next = |body: &mut Vec<u8>| {
        if count > 0 {
            body.push(b',');
        }
        count += 1;
    };
    for record in records {
        match updates(record) {
            Ok(updates) => {
                for update in updates {
                    next(&mut body);
                    push_update(&mut body, update.get(), &token);
                }
            }
            Err(_) => {
                next(&mut body);
                body.extend_from_slice(record);
            }
        }
    }
    body.push(b']');
    (body, count)
}

/// `update` with `"$token":<token>` as its first member.
fn push_update(body: &mut Vec<u8>, update: &str, token: &str) {
    let Some(members) = update.trim_start().strip_prefix('{') else {
        body.extend_from_slice(update.as_bytes());
        return;
    };
    body.extend_from_slice(br#"{"$token":"#);
    body.extend_from_slice(token.as_bytes());
    if !members.trim_start().starts_with('}') {
        body.push(b',');
    }
    body.extend_from_slice(members.as_bytes());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::*;

    fn record(updates: &Value) -> Bytes {
        Bytes::from(serde_json::to_vec(updates).unwrap())
    }

    #[test]
    fn flattens_records_and_puts_the_token_first_in_each_update() {
        let records = [
            record(&json!([
                {"$distinct_id": "u1", "$ip": "0", "$set": {"plan": "pro"}},
                {"$distinct_id": "u1", "$ip": "0", "$add": {"logins": 1}}
            ])),
            record(&json!([{"$distinct_id": "u2", "$unset": ["plan"]}])),
        ];
        let (body, updates) = encode(&records, "tok");
        assert_eq!(updates, 3);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"[{"$token":"tok","$distinct_id":"u1","$ip":"0","$set":{"plan":"pro"}},{"$token":"tok","$distinct_id":"u1","$ip":"0","$add":{"logins":1}},{"$token":"tok","$distinct_id":"u2","$unset":["plan"]}]"#
        );
        assert_eq!(encode(&[], "tok"), (b"[]".to_vec(), 0));
    }

    #[test]
    fn odd_but_valid_json_still_encodes() {
        let records = [Bytes::from_static(b" [ {} , { \"a\" : 1 } ] ")];
        let (body, updates) = encode(&records, "t");
        assert_eq!(updates, 2);
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed, json!([{"$token": "t"}, {"$token": "t", "a": 1}]));
    }

    #[test]
    fn sizes_count_updates_and_bound_the_body() {
        let one = record(&json!([{"$distinct_id": "u", "$set": {}}]));
        let two = record(
            &json!([{"$distinct_id": "u", "$set": {}}, {"$distinct_id": "u", "$unset": ["a"]}]),
        );
        assert_eq!(record_size(&one).units, 1);
        assert_eq!(record_size(&two).units, 2);
        let token = "x".repeat(MAX_PROJECT_TOKEN_BYTES);
        let (body, _) = encode(&[one.clone(), two.clone()], &token);
        assert_eq!(
            body.len(),
            record_size(&one).bytes + record_size(&two).bytes + 1
        );
    }

    #[test]
    fn check_refuses_what_would_spoil_a_request() {
        let ok = record(&json!([{"$distinct_id": "u", "$set": {"a": 1}}]));
        assert!(check(&ok).is_ok());
        for (bad, field) in [
            (&b"{\"$distinct_id\":\"u\",\"$set\":{}}"[..], ""),
            (b"[]", ""),
            (b"[1]", ""),
            (b"[{\"$distinct_id\":\"u\"", ""),
            (
                b"[{\"$token\":\"\",\"$distinct_id\":\"u\",\"$set\":{}}]",
                "$token",
            ),
        ] {
            let failure = check(bad).unwrap_err();
            assert_eq!(
                failure.rule,
                RULE_INVALID,
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(failure.field, field);
        }
        let big = record(
            &json!([{"$distinct_id": "u", "$set": {"a": "x".repeat(MAX_PROFILE_UPDATE_BYTES)}}]),
        );
        let failure = check(&big).unwrap_err();
        assert_eq!(failure.rule, RULE_TOO_LARGE);
        assert!(
            failure.message.starts_with("update 0 of the record is "),
            "{}",
            failure.message
        );
    }

    fn update() -> impl Strategy<Value = Map<String, Value>> {
        let value = prop_oneof![
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
            proptest::collection::vec("[a-z]{0,5}", 0..3).prop_map(Value::from),
        ];
        proptest::collection::btree_map("[$a-z_ ]{1,8}", value, 0..5)
            .prop_map(|members| members.into_iter().filter(|(k, _)| k != "$token").collect())
    }

    proptest! {
        /// Every update of every record comes out once, in order, with the token added and nothing
        /// else changed; the sizes bound the body and count its updates.
        #[test]
        fn encoding_keeps_every_update_and_adds_the_token(
            records in proptest::collection::vec(proptest::collection::vec(update(), 1..6), 0..20),
            token in "[A-Za-z0-9_-]{1,64}",
        ) {
            let bytes: Vec<Bytes> = records.iter().map(|r| record(&json!(r))).collect();
            let (body, count) = encode(&bytes, &token);
            let sent: Vec<Map<String, Value>> = serde_json::from_slice(&body).unwrap();
            let expected: Vec<Map<String, Value>> = records.iter().flatten().cloned().collect();
            prop_assert_eq!(count, expected.len());
            prop_assert_eq!(sent.len(), expected.len());
            for (mut got, want) in sent.into_iter().zip(expected) {
                prop_assert_eq!(got.remove("$token"), Some(Value::from(token.as_str())));
                prop_assert_eq!(got, want);
            }
            let sizes: Vec<RecordSize> = bytes.iter().map(|r| record_size(r)).collect();
            prop_assert_eq!(sizes.iter().map(|s| s.units).sum::<usize>(), count);
            prop_assert!(count == 0 || body.len() <= sizes.iter().map(|s| s.bytes).sum::<usize>() + 1);
        }
    }
}
