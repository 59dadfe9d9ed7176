//! Reads `/import` answers (docs/mixpanel-api.md §1.7): `failed_records` of a strict 400 become
//! per-index failures; `insert_id` and `$insert_id` are both accepted, and `status` may be any
//! JSON.

use serde::Deserialize;

use crate::http::Reply;
use crate::objects::{IndexedFailure, ParsedReply, fallback_message};

#[derive(Debug, Deserialize)]
struct ImportBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    failed_records: Vec<FailedRecord>,
    #[serde(default)]
    num_records_imported: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct FailedRecord {
    index: usize,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The failures and message of `reply` to a request of `records` records. Failures with an index
/// outside the request, or repeated, are dropped (they cannot be attributed).
pub fn parse(reply: &Reply, records: usize) -> ParsedReply {
    let Ok(body) = serde_json::from_slice::<ImportBody>(&reply.body) else {
        return ParsedReply {
            failures: Vec::new(),
            message: fallback_message(reply.status, &reply.body),
            unattributed: false,
        };
    };
    let mut seen = vec![false; records];
    let mut failures = Vec::with_capacity(body.failed_records.len());
    for f in body.failed_records {
        if f.index >= records || std::mem::replace(&mut seen[f.index], true) {
            tracing::warn!(
                index = f.index,
                records,
                "mixpanel listed a failure that matches no record of the request"
            );
            continue;
        }
        failures.push(IndexedFailure {
            index: f.index,
            field: f.field.unwrap_or_default(),
            message: f
                .message
                .unwrap_or_else(|| "rejected by Mixpanel".to_owned()),
        });
    }
    if let Some(imported) = body.num_records_imported
        && !failures.is_empty()
        && imported as usize + failures.len() != records
    {
        tracing::warn!(
            imported,
            failed = failures.len(),
            records,
            "mixpanel's counts do not add up to the request"
        );
    }
    let message = match body.error {
        Some(error) if !error.is_empty() => error,
        _ => fallback_message(reply.status, &reply.body),
    };
    ParsedReply {
        failures,
        message,
        unattributed: false,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            retry_after: None,
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn strict_400_lists_failures_by_index() {
        let body = r#"{"code":400,"error":"some data points in the request failed validation",
            "failed_records":[
              {"index":2,"insert_id":"a","field":"properties.time","message":"'properties.time' is invalid: must be specified as seconds since epoch"},
              {"index":0,"$insert_id":"b","field":"$insert_id","message":"bad id"}],
            "num_records_imported":2,"status":"Bad Request"}"#;
        let parsed = parse(&reply(400, body), 4);
        assert_eq!(
            parsed.message,
            "some data points in the request failed validation"
        );
        assert_eq!(parsed.failures.len(), 2);
        assert_eq!(parsed.failures[0].index, 2);
        assert_eq!(parsed.failures[0].field, "properties.time");
        assert_eq!(parsed.failures[1].index, 0);
        assert_eq!(parsed.failures[1].message, "bad id");
    }

    #[test]
    fn out_of_range_and_repeated_indexes_are_dropped() {
        let body = r#"{"failed_records":[{"index":5,"field":"x","message":"m"},{"index":1},{"index":1}],"status":0}"#;
        let parsed = parse(&reply(400, body), 2);
        assert_eq!(parsed.failures.len(), 1);
        assert_eq!(parsed.failures[0].index, 1);
        assert_eq!(parsed.failures[0].field, "");
    }

    #[test]
    fn plain_errors_keep_mixpanels_message() {
        let parsed = parse(
            &reply(
                400,
                r#"{"code":400,"error":"no data provided","status":"Bad Request"}"#,
            ),
            3,
        );
        assert!(parsed.failures.is_empty());
        assert_eq!(parsed.message, "no data provided");
        let parsed = parse(
            &reply(200, r#"{"code":200,"num_records_imported":3,"status":1}"#),
            3,
        );
        assert!(parsed.failures.is_empty());
        let parsed = parse(&reply(502, "<html>Bad gateway</html>"), 3);
        assert_eq!(parsed.message, "HTTP 502: <html>Bad gateway</html>");
    }
}
