//! The `/import` body: a JSON array of the records' event objects, exactly as the mapper built them
//! (no per-record JSON tree is made: the bytes are joined as they are).

use bytes::Bytes;
use serde::de::IgnoredAny;

use crate::objects::{RULE_INVALID, RecordFailure};

/// Bytes a record adds to the body: itself plus one byte of framing (`[`, `,` or `]`). A body of
/// records `r` is `sum(record_size(r)) + 1` bytes long.
pub fn record_size(record: &[u8]) -> usize {
    record.len() + 1
}

/// The JSON array of `records`.
pub fn encode(records: &[Bytes]) -> Vec<u8> {
    let len = records.iter().map(|r| record_size(r)).sum::<usize>() + 1;
    let mut body = Vec::with_capacity(len);
    body.push(b'[');
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(record);
    }
    body.push(b']');
    body
}

/// A record that is not one JSON value would make Mixpanel refuse the whole body ("unable to parse
/// request body"), failing every record sent with it; it fails alone instead. Everything else about
/// the event is Mixpanel's to judge.
pub fn check(record: &[u8]) -> Result<(), RecordFailure> {
    serde_json::from_slice::<IgnoredAny>(record)
        .map(|_| ())
        .map_err(|e| RecordFailure {
            field: String::new(),
            rule: RULE_INVALID,
            message: format!("the record is not valid JSON: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_records_into_an_array() {
        let records = [
            Bytes::from_static(br#"{"a":1}"#),
            Bytes::from_static(br#"{"b":2}"#),
        ];
        let body = encode(&records);
        assert_eq!(body, br#"[{"a":1},{"b":2}]"#);
        assert_eq!(
            body.len(),
            records.iter().map(|r| record_size(r)).sum::<usize>() + 1
        );
        assert_eq!(encode(&[]), b"[]");
    }

    #[test]
    fn invalid_json_is_refused() {
        assert!(check(br#"{"event":"a","properties":{}}"#).is_ok());
        let failure = check(br#"{"event":"a""#).unwrap_err();
        assert_eq!(failure.rule, RULE_INVALID);
        assert!(check(br#"{"a":1} {"b":2}"#).is_err());
    }
}
