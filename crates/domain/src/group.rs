//! `$group_key` and `$group_id`: which group profile an update targets (docs/mixpanel-api.md §3).

use crate::error::FieldError;
use crate::newtype::{check_max_bytes, check_not_empty, display_as_str, string_newtype};
use crate::rules::MAX_STRING_BYTES;

string_newtype! {
    /// A group key, the group property naming the kind of group (e.g. `company_id`): non-empty,
    /// at most 255 bytes.
    pub struct GroupKey;
}
display_as_str!(GroupKey);

string_newtype! {
    /// A group id, one group of a [`GroupKey`] (e.g. `acme`): non-empty, at most 255 bytes.
    pub struct GroupId;
}
display_as_str!(GroupId);

impl GroupKey {
    /// Parses a `$group_key`.
    pub fn parse(s: impl Into<String>) -> Result<Self, FieldError> {
        let s = s.into();
        check_not_empty("$group_key", &s)?;
        check_max_bytes("$group_key", &s, MAX_STRING_BYTES)?;
        Ok(Self(s))
    }
}

impl GroupId {
    /// Parses a `$group_id`.
    pub fn parse(s: impl Into<String>) -> Result<Self, FieldError> {
        let s = s.into();
        check_not_empty("$group_id", &s)?;
        check_max_bytes("$group_id", &s, MAX_STRING_BYTES)?;
        Ok(Self(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_id_must_be_non_empty() {
        assert_eq!(
            GroupKey::parse("").unwrap_err().to_string(),
            "`$group_key` is invalid: it is empty; a non-empty value is required"
        );
        assert_eq!(
            GroupId::parse("").unwrap_err(),
            FieldError::Empty { field: "$group_id" }
        );
        assert_eq!(GroupKey::parse("company").unwrap(), "company");
        assert_eq!(GroupId::parse("0").unwrap().as_str(), "0");
    }

    #[test]
    fn key_and_id_are_at_most_255_bytes() {
        assert!(GroupKey::parse("k".repeat(255)).is_ok());
        assert_eq!(
            GroupKey::parse("k".repeat(256)).unwrap_err().rule(),
            "max_bytes"
        );
        assert!(matches!(
            GroupId::parse("i".repeat(300)),
            Err(FieldError::TooLong {
                field: "$group_id",
                bytes: 300,
                ..
            })
        ));
    }
}
