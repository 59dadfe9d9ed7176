//! The profile operations and the value each takes (docs/mixpanel-api.md §2.2, §3).

use serde_json::Value as Json;

use super::ProfileError;
use crate::error::preview;
use crate::object_kind::ObjectKind;
use crate::string_enum::string_enum;

string_enum! {
    /// A profile update operation. Serialized without the `$` (`set_once`); parsing also
    /// accepts the wire key (`$set_once`). [`ProfileOperation::key`] gives the wire key.
    #[derive(Default)]
    pub enum ProfileOperation as "profile operation", prefix "$" {
        /// `$set`: overwrite properties, creating the profile if needed.
        #[default]
        Set => "set",
        /// `$set_once`: set properties that are not set yet.
        SetOnce => "set_once",
        /// `$add`: add to numeric properties (a missing property counts as 0).
        Add => "add",
        /// `$union`: add list items that are not already present.
        Union => "union",
        /// `$append`: append to a list property.
        Append => "append",
        /// `$remove`: remove a value from a list property.
        Remove => "remove",
        /// `$unset`: delete properties.
        Unset => "unset",
        /// `$delete`: delete the whole profile.
        Delete => "delete",
    }
}

impl ProfileOperation {
    /// The key the operation has in an update object: `$set`, `$set_once`, ….
    pub const fn key(self) -> &'static str {
        match self {
            Self::Set => "$set",
            Self::SetOnce => "$set_once",
            Self::Add => "$add",
            Self::Union => "$union",
            Self::Append => "$append",
            Self::Remove => "$remove",
            Self::Unset => "$unset",
            Self::Delete => "$delete",
        }
    }

    /// The operation whose wire key is exactly `key` (case-sensitive, as Mixpanel reads it).
    pub fn parse_key(key: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|op| op.key() == key)
    }

    /// Whether Mixpanel documents this operation for `kind`: every operation for user profiles,
    /// all but `$append` for group profiles (docs/mixpanel-api.md §3), none for events.
    pub fn documented_for(self, kind: ObjectKind) -> bool {
        match kind {
            ObjectKind::Events => false,
            ObjectKind::UserProfiles => true,
            ObjectKind::GroupProfiles => self != Self::Append,
        }
    }

    /// Checks that `value` has the shape this operation takes (docs/mixpanel-api.md §2.2):
    /// an object for `$set`, `$set_once`, `$append` and `$remove`; an object of numbers for
    /// `$add`; an object of non-empty lists of strings or numbers for `$union`; a non-empty list
    /// of property names for `$unset`; `null` or `""` for `$delete`.
    pub fn check_value(self, value: &Json) -> Result<(), ProfileError> {
        let key = self.key();
        let bad = |field: String, expected: &'static str, found: &Json| ProfileError::BadValue {
            field,
            expected,
            found: preview(&found.to_string()),
        };
        match self {
            Self::Set | Self::SetOnce | Self::Append | Self::Remove => match value {
                Json::Object(_) => Ok(()),
                _ => Err(bad(key.into(), "an object of property values", value)),
            },
            Self::Add | Self::Union => {
                let Json::Object(map) = value else {
                    let expected = if self == Self::Add {
                        "an object of numbers"
                    } else {
                        "an object of lists"
                    };
                    return Err(bad(key.into(), expected, value));
                };
                for (name, v) in map {
                    let (ok, expected) = if self == Self::Add {
                        (v.is_number(), "a number")
                    } else {
                        (is_union_list(v), "a non-empty list of strings or numbers")
                    };
                    if !ok {
                        return Err(bad(format!("{key}.{name}"), expected, v));
                    }
                }
                Ok(())
            }
            Self::Unset => match value {
                Json::Array(names) if !names.is_empty() && names.iter().all(Json::is_string) => {
                    Ok(())
                }
                _ => Err(bad(key.into(), "a non-empty list of property names", value)),
            },
            Self::Delete => match value {
                Json::Null => Ok(()),
                Json::String(s) if s.is_empty() => Ok(()),
                _ => Err(bad(
                    key.into(),
                    "null or \"\" (the value is ignored)",
                    value,
                )),
            },
        }
    }
}

fn is_union_list(v: &Json) -> bool {
    matches!(v, Json::Array(items)
        if !items.is_empty() && items.iter().all(|i| i.is_string() || i.is_number()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_round_trip() {
        for op in ProfileOperation::ALL {
            assert_eq!(ProfileOperation::parse_key(op.key()), Some(*op));
            assert_eq!(op.key(), format!("${}", op.as_str()));
        }
        assert_eq!(ProfileOperation::parse_key("$SET"), None);
        assert_eq!(ProfileOperation::parse_key("set"), None);
        assert_eq!(ProfileOperation::default(), ProfileOperation::Set);
    }

    #[test]
    fn names_parse_with_or_without_the_dollar() {
        assert_eq!("set_once".parse(), Ok(ProfileOperation::SetOnce));
        assert_eq!("$set_once".parse(), Ok(ProfileOperation::SetOnce));
        assert_eq!("UNSET".parse(), Ok(ProfileOperation::Unset));
        let err = "$merge".parse::<ProfileOperation>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown profile operation `$merge`; expected one of: set, set_once, add, union, append, remove, unset, delete"
        );
        assert_eq!(
            serde_json::to_string(&ProfileOperation::SetOnce).unwrap(),
            r#""set_once""#
        );
    }

    #[test]
    fn groups_do_not_document_append() {
        assert!(ProfileOperation::Append.documented_for(ObjectKind::UserProfiles));
        assert!(!ProfileOperation::Append.documented_for(ObjectKind::GroupProfiles));
        assert!(ProfileOperation::Add.documented_for(ObjectKind::GroupProfiles));
        assert!(!ProfileOperation::Set.documented_for(ObjectKind::Events));
    }

    #[test]
    fn object_operations_take_objects() {
        for op in [
            ProfileOperation::Set,
            ProfileOperation::SetOnce,
            ProfileOperation::Append,
            ProfileOperation::Remove,
        ] {
            assert_eq!(op.check_value(&json!({"a": [1], "b": "x"})), Ok(()));
            assert!(op.check_value(&json!(["a"])).is_err());
        }
        let err = ProfileOperation::Set.check_value(&json!("x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"`$set` is invalid: expected an object of property values, got `"x"`"#
        );
    }

    #[test]
    fn add_takes_numbers() {
        assert_eq!(
            ProfileOperation::Add.check_value(&json!({"n": -2.5})),
            Ok(())
        );
        let err = ProfileOperation::Add
            .check_value(&json!({"n": 1, "visits": "3"}))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"`$add.visits` is invalid: expected a number, got `"3"`"#
        );
        assert_eq!(err.field(), "$add.visits");
        assert_eq!(err.rule(), "operation_value");
    }

    #[test]
    fn union_takes_non_empty_lists_of_scalars() {
        let op = ProfileOperation::Union;
        assert_eq!(op.check_value(&json!({"tags": ["a", 1]})), Ok(()));
        assert!(op.check_value(&json!({"tags": []})).is_err());
        assert!(op.check_value(&json!({"tags": [{"a": 1}]})).is_err());
        assert!(op.check_value(&json!({"tags": "a"})).is_err());
        assert!(op.check_value(&json!(["a"])).is_err());
    }

    #[test]
    fn unset_takes_property_names() {
        let op = ProfileOperation::Unset;
        assert_eq!(op.check_value(&json!(["plan"])), Ok(()));
        assert!(op.check_value(&json!([])).is_err());
        assert!(op.check_value(&json!([1])).is_err());
        assert_eq!(
            op.check_value(&json!({"plan": 1})).unwrap_err().to_string(),
            r#"`$unset` is invalid: expected a non-empty list of property names, got `{"plan":1}`"#
        );
    }

    #[test]
    fn delete_takes_null_or_empty() {
        let op = ProfileOperation::Delete;
        assert_eq!(op.check_value(&json!(null)), Ok(()));
        assert_eq!(op.check_value(&json!("")), Ok(()));
        assert!(op.check_value(&json!("x")).is_err());
    }
}
