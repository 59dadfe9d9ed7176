//! Reading profile identifiers (`$distinct_id`, `$group_key`, `$group_id`) from warehouse values.

use mixsync_domain::{DistinctId, GroupId, GroupKey, Value};

pub(crate) use crate::ids::IdError;
use crate::ids::id_text;

/// Which identifier is read, for parsing and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdField {
    /// A user's `$distinct_id`.
    DistinctId,
    /// A group's `$group_key`.
    GroupKey,
    /// A group's `$group_id`.
    GroupId,
}

impl IdField {
    /// The field as an update object names it.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::DistinctId => "$distinct_id",
            Self::GroupKey => "$group_key",
            Self::GroupId => "$group_id",
        }
    }

    /// The field as the activation's mapping names it.
    pub(crate) fn mapping_name(self) -> &'static str {
        match self {
            Self::DistinctId => "distinct_id",
            Self::GroupKey => "group_key",
            Self::GroupId => "group_id",
        }
    }

    fn who(self) -> &'static str {
        match self {
            Self::DistinctId => "user profile update",
            Self::GroupKey | Self::GroupId => "group profile update",
        }
    }

    /// Reads and checks the identifier in `value`: text, numeric, integer, UUID, date and
    /// timestamp values and JSON strings and numbers; `NULL`, booleans, floats, lists and
    /// objects are refused, then Mixpanel's rules for the field apply (non-empty, at most 255
    /// bytes, and for `$distinct_id` not a placeholder such as `null` or `0`).
    pub(crate) fn read(self, value: &Value) -> Result<String, IdError> {
        let text = id_text(self.key(), self.who(), value)?;
        self.parse(text.into_owned())
    }

    /// Checks an identifier's text against Mixpanel's rules for the field.
    pub(crate) fn parse(self, text: String) -> Result<String, IdError> {
        Ok(match self {
            Self::DistinctId => DistinctId::parse_profile(text)?.into_string(),
            Self::GroupKey => GroupKey::parse(text)?.into_string(),
            Self::GroupId => GroupId::parse(text)?.into_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_come_from_text_like_values() {
        let d = IdField::DistinctId;
        assert_eq!(d.read(&Value::Int(42)).unwrap(), "42");
        assert_eq!(d.read(&Value::from("u1")).unwrap(), "u1");
        assert_eq!(d.read(&Value::Json(json!("j"))).unwrap(), "j");
        assert_eq!(
            IdField::GroupId.read(&Value::Uuid([0xab; 16])).unwrap(),
            "abababab-abab-abab-abab-abababababab"
        );
    }

    #[test]
    fn bad_ids_name_the_field_and_rule() {
        let err = IdField::GroupId.read(&Value::Null).unwrap_err();
        assert_eq!(err.rule, "required");
        assert_eq!(
            err.detail,
            "`$group_id` is invalid: it is null; every group profile update needs one"
        );
        let err = IdField::DistinctId.read(&Value::from("  ")).unwrap_err();
        assert_eq!(err.rule, "required");
        let err = IdField::DistinctId.read(&Value::from("NULL")).unwrap_err();
        assert_eq!(err.rule, "denied_value");
        assert_eq!(
            IdField::DistinctId
                .read(&Value::Float(1.5))
                .unwrap_err()
                .rule,
            "id_type"
        );
        assert_eq!(
            IdField::GroupKey
                .read(&Value::from("k".repeat(256)))
                .unwrap_err()
                .rule,
            "max_bytes"
        );
        // Group ids are not checked against the distinct_id deny list.
        assert_eq!(IdField::GroupId.read(&Value::Int(0)).unwrap(), "0");
    }
}
