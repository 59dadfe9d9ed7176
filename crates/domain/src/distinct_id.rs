//! `distinct_id`: whom an event or profile belongs to (docs/mixpanel-api.md §1.6, §2.2).

use crate::error::{FieldError, preview};
use crate::newtype::{check_max_bytes, display_as_str, string_newtype};
use crate::rules::{MAX_STRING_BYTES, is_denied_id};

string_newtype! {
    /// A `distinct_id`: at most 255 bytes and not a placeholder from
    /// [`DENIED_IDS`](crate::rules::DENIED_IDS). Events may use the empty string ("no user");
    /// profiles may not, see [`DistinctId::parse_profile`].
    pub struct DistinctId;
}
display_as_str!(DistinctId);

impl DistinctId {
    /// Parses an event's `distinct_id`. The empty string is allowed: Mixpanel reads it as "no
    /// user".
    pub fn parse(s: impl Into<String>) -> Result<Self, FieldError> {
        Self::check("distinct_id", s.into())
    }

    /// Parses a profile's `$distinct_id`, which must also be non-empty (and not only whitespace).
    pub fn parse_profile(s: impl Into<String>) -> Result<Self, FieldError> {
        let s = s.into();
        if s.trim().is_empty() {
            return Err(FieldError::Empty {
                field: "$distinct_id",
            });
        }
        Self::check("$distinct_id", s)
    }

    /// Whether this is the empty "no user" id, which only events may carry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn check(field: &'static str, s: String) -> Result<Self, FieldError> {
        check_max_bytes(field, &s, MAX_STRING_BYTES)?;
        if is_denied_id(&s) {
            return Err(FieldError::Denied {
                field,
                value: preview(&s),
            });
        }
        Ok(Self(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids_and_the_empty_string_for_events() {
        assert_eq!(DistinctId::parse("user-42").unwrap().as_str(), "user-42");
        assert!(DistinctId::parse("").unwrap().is_empty());
        assert!(DistinctId::parse("a".repeat(255)).is_ok());
        assert!(DistinctId::parse("é user@example.com").is_ok());
    }

    #[test]
    fn rejects_placeholders_in_any_case() {
        let err = DistinctId::parse("Undefined").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`distinct_id` is invalid: `Undefined` is a placeholder id Mixpanel rejects (null, none, anonymous, 0, -1, … in any case)"
        );
        assert_eq!(err.rule(), "denied_value");
        assert!(DistinctId::parse(" null ").is_err());
        assert!(DistinctId::parse("00000000-0000-0000-0000-000000000000").is_err());
    }

    #[test]
    fn rejects_more_than_255_bytes() {
        let err = DistinctId::parse("é".repeat(128)).unwrap_err();
        assert_eq!(
            err,
            FieldError::TooLong {
                field: "distinct_id",
                value: format!("{}…", "é".repeat(64)),
                bytes: 256,
                max: 255,
            }
        );
        assert!(
            err.to_string()
                .ends_with("is 256 bytes long; at most 255 bytes are allowed")
        );
    }

    #[test]
    fn profiles_need_a_non_empty_id() {
        let err = DistinctId::parse_profile("").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`$distinct_id` is invalid: it is empty; a non-empty value is required"
        );
        assert!(DistinctId::parse_profile("  ").is_err());
        assert!(matches!(
            DistinctId::parse_profile("none"),
            Err(FieldError::Denied {
                field: "$distinct_id",
                ..
            })
        ));
        assert_eq!(DistinctId::parse_profile("u1").unwrap(), "u1");
    }

    #[test]
    fn serde_is_the_plain_string_and_validates() {
        let id = DistinctId::parse("u1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""u1""#);
        assert_eq!(serde_json::from_str::<DistinctId>(r#""u1""#).unwrap(), id);
        let err = serde_json::from_str::<DistinctId>(r#""anon""#).unwrap_err();
        assert!(err.to_string().contains("placeholder id"));
        assert_eq!(format!("{id} {id:?}"), r#"u1 DistinctId("u1")"#);
    }
}
