//! One profile update object, as sent to `/engage` or `/groups` (docs/mixpanel-api.md §2.2, §3).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::ProfileOperation;
use crate::distinct_id::DistinctId;
use crate::error::{DomainError, FieldError};
use crate::group::{GroupId, GroupKey};
use crate::object_kind::ObjectKind;
use crate::rules::json_len;

/// Whose profile an update changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProfileTarget {
    /// A user profile (`$distinct_id`, sent to `/engage`). Must not be empty; build it with
    /// [`DistinctId::parse_profile`].
    User(DistinctId),
    /// A group profile (`$group_key` and `$group_id`, sent to `/groups`).
    Group {
        /// The group key, e.g. `company_id`.
        key: GroupKey,
        /// The group, e.g. `acme`.
        id: GroupId,
    },
}

impl ProfileTarget {
    /// The object this target belongs to: user or group profiles.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Self::User(_) => ObjectKind::UserProfiles,
            Self::Group { .. } => ObjectKind::GroupProfiles,
        }
    }
}

/// Optional per-update modifiers (docs/mixpanel-api.md §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Modifiers {
    /// `$ip`: an IP address to geolocate the profile from, or `"0"` to skip geolocation.
    pub ip: Option<String>,
    /// `$ignore_time`: when true, the update does not touch `$last_seen`.
    pub ignore_time: bool,
}

/// One operation on one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileUpdate {
    /// Whose profile.
    pub target: ProfileTarget,
    /// What to do.
    pub operation: ProfileOperation,
    /// The operation's value; its shape depends on the operation, see
    /// [`ProfileOperation::check_value`].
    pub value: Json,
    /// Optional modifiers.
    pub modifiers: Modifiers,
}

impl ProfileUpdate {
    /// Builds an update without modifiers, checked by [`Self::validate`].
    pub fn new(
        target: ProfileTarget,
        operation: ProfileOperation,
        value: Json,
    ) -> Result<Self, DomainError> {
        let update = Self {
            target,
            operation,
            value,
            modifiers: Modifiers::default(),
        };
        update.validate()?;
        Ok(update)
    }

    /// Checks what Mixpanel would reject besides size: an empty `$distinct_id`, or a value of the
    /// wrong shape for the operation.
    pub fn validate(&self) -> Result<(), DomainError> {
        if let ProfileTarget::User(id) = &self.target
            && id.as_str().trim().is_empty()
        {
            return Err(FieldError::Empty {
                field: "$distinct_id",
            }
            .into());
        }
        self.operation.check_value(&self.value)?;
        Ok(())
    }

    /// The update object: `$token`, `$distinct_id` (or `$group_key` and `$group_id`), the
    /// operation key with its value, then `$ip` and `$ignore_time` when set.
    pub fn to_json(&self, token: &str) -> Json {
        let mut map = Map::new();
        map.insert("$token".into(), token.into());
        match &self.target {
            ProfileTarget::User(id) => {
                map.insert("$distinct_id".into(), id.as_str().into());
            }
            ProfileTarget::Group { key, id } => {
                map.insert("$group_key".into(), key.as_str().into());
                map.insert("$group_id".into(), id.as_str().into());
            }
        }
        map.insert(self.operation.key().into(), self.value.clone());
        if let Some(ip) = &self.modifiers.ip {
            map.insert("$ip".into(), ip.as_str().into());
        }
        if self.modifiers.ignore_time {
            map.insert("$ignore_time".into(), true.into());
        }
        Json::Object(map)
    }

    /// The size in bytes of [`Self::to_json`] as compact JSON, to check against
    /// [`MAX_PROFILE_UPDATE_BYTES`](crate::rules::MAX_PROFILE_UPDATE_BYTES).
    pub fn encoded_len(&self, token: &str) -> usize {
        json_len(&self.to_json(token))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user(id: &str) -> ProfileTarget {
        ProfileTarget::User(DistinctId::parse_profile(id).unwrap())
    }

    fn group() -> ProfileTarget {
        ProfileTarget::Group {
            key: GroupKey::parse("company_id").unwrap(),
            id: GroupId::parse("acme").unwrap(),
        }
    }

    #[test]
    fn user_update_json() {
        let mut update =
            ProfileUpdate::new(user("u1"), ProfileOperation::Set, json!({"plan": "pro"})).unwrap();
        assert_eq!(
            update.to_json("tok"),
            json!({"$token": "tok", "$distinct_id": "u1", "$set": {"plan": "pro"}})
        );
        update.modifiers = Modifiers {
            ip: Some("0".into()),
            ignore_time: true,
        };
        assert_eq!(
            update.to_json("tok"),
            json!({"$token": "tok", "$distinct_id": "u1", "$set": {"plan": "pro"},
                   "$ip": "0", "$ignore_time": true})
        );
        assert_eq!(
            update.encoded_len("tok"),
            serde_json::to_vec(&update.to_json("tok")).unwrap().len()
        );
    }

    #[test]
    fn group_update_json() {
        let update = ProfileUpdate::new(group(), ProfileOperation::Unset, json!(["plan"])).unwrap();
        assert_eq!(update.target.kind(), ObjectKind::GroupProfiles);
        assert_eq!(
            update.to_json("tok"),
            json!({"$token": "tok", "$group_key": "company_id", "$group_id": "acme",
                   "$unset": ["plan"]})
        );
        let delete = ProfileUpdate::new(group(), ProfileOperation::Delete, json!(null)).unwrap();
        assert_eq!(delete.to_json("t")["$delete"], json!(null));
    }

    #[test]
    fn validate_rejects_empty_users_and_bad_values() {
        let target = ProfileTarget::User(DistinctId::parse("").unwrap());
        let err = ProfileUpdate::new(target, ProfileOperation::Set, json!({})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`$distinct_id` is invalid: it is empty; a non-empty value is required"
        );
        let err =
            ProfileUpdate::new(user("u1"), ProfileOperation::Add, json!({"n": "x"})).unwrap_err();
        assert_eq!(err.field(), "$add.n");
        assert_eq!(err.rule(), "operation_value");
    }

    #[test]
    fn modifiers_deserialize_with_defaults() {
        let m: Modifiers = serde_json::from_str(r#"{"ip": "0"}"#).unwrap();
        assert_eq!(
            m,
            Modifiers {
                ip: Some("0".into()),
                ignore_time: false
            }
        );
        assert!(serde_json::from_str::<Modifiers>(r#"{"time": 1}"#).is_err());
    }
}
