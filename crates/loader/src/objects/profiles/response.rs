//! Reads `/engage` and `/groups` answers to `verbose=1` (docs/mixpanel-api.md §2.4):
//! `{"status":1,"error":null}` when every update was valid, `{"status":0,"error":"…"}` (still HTTP
//! 200) when at least one was not, without saying which. A 400 (Mixpanel's answer style for
//! `verbose=2`) means the same. Either way the request is bisected by the sender to find the
//! refused records.

use serde::Deserialize;
use serde_json::Value;

use crate::http::Reply;
use crate::objects::{ParsedReply, fallback_message};

#[derive(Debug, Deserialize)]
struct VerboseBody {
    #[serde(default)]
    status: Value,
    #[serde(default)]
    error: Value,
}

/// What `reply` says. Refusals are never attributed to single updates: Mixpanel does not.
pub(crate) fn parse(reply: &Reply) -> ParsedReply {
    let body = serde_json::from_slice::<VerboseBody>(&reply.body).ok();
    let message = match body.as_ref().map(|b| &b.error) {
        Some(Value::String(error)) if !error.is_empty() => error.clone(),
        _ => fallback_message(reply.status, &reply.body),
    };
    let accepted = match &body {
        Some(body) => {
            matches!(&body.status, Value::Number(n) if n.as_u64() == Some(1)) || body.status == "1"
        }
        // The answer style without `verbose`: `1` when an update was valid. Not expected here.
        None => reply.body.trim_ascii() == b"1",
    };
    let unattributed = match reply.status {
        200..=299 => !accepted,
        400 => true,
        _ => false,
    };
    ParsedReply {
        failures: Vec::new(),
        message,
        unattributed,
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
    fn status_1_is_accepted() {
        for body in [
            r#"{"error":null,"status":1}"#,
            r#"{"status":"1"}"#,
            "1",
            " 1\n",
        ] {
            let parsed = parse(&reply(200, body));
            assert!(!parsed.unattributed, "{body}");
            assert!(parsed.failures.is_empty());
        }
    }

    #[test]
    fn status_0_or_a_400_is_a_refusal_that_names_no_update() {
        let parsed = parse(&reply(
            200,
            r#"{"error":"1 of 3 updates failed: [1] $add, invalid value: 'logins' is not a number","status":0}"#,
        ));
        assert!(parsed.unattributed);
        assert!(parsed.failures.is_empty());
        assert_eq!(
            parsed.message,
            "1 of 3 updates failed: [1] $add, invalid value: 'logins' is not a number"
        );
        let parsed = parse(&reply(
            400,
            r#"{"error":"Engage API error: $distinct_id, missing or empty","status":0}"#,
        ));
        assert!(parsed.unattributed);
        assert_eq!(
            parsed.message,
            "Engage API error: $distinct_id, missing or empty"
        );
        for (status, body) in [(200, "0"), (200, "<html>"), (400, "nope"), (200, "{}")] {
            let parsed = parse(&reply(status, body));
            assert!(parsed.unattributed, "{status} {body}");
            assert!(
                parsed.message.starts_with(&format!("HTTP {status}")),
                "{}",
                parsed.message
            );
        }
    }

    #[test]
    fn other_statuses_keep_their_message_and_are_classified_by_status() {
        let parsed = parse(&reply(
            401,
            r#"{"error":"Invalid credentials","status":"error"}"#,
        ));
        assert!(!parsed.unattributed);
        assert_eq!(parsed.message, "Invalid credentials");
        let parsed = parse(&reply(503, "Service Unavailable"));
        assert!(!parsed.unattributed);
        assert_eq!(parsed.message, "HTTP 503: Service Unavailable");
    }
}
