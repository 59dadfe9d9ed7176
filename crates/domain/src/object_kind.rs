//! What an activation syncs, and how.

use crate::rules::{DEFAULT_MAX_GROUP_UPDATES, MAX_ENGAGE_UPDATES, MAX_IMPORT_EVENTS};
use crate::string_enum::string_enum;

string_enum! {
    /// The Mixpanel object an activation writes. Parses case-insensitively, so the proto's
    /// `USER_PROFILES` and config's `user_profiles` are the same.
    pub enum ObjectKind as "object kind", prefix "" {
        /// Events, sent to `/import`.
        Events => "events",
        /// User profiles, sent to `/engage`.
        UserProfiles => "user_profiles",
        /// Group profiles, sent to `/groups`.
        GroupProfiles => "group_profiles",
    }
}

string_enum! {
    /// How rows become Mixpanel writes.
    pub enum SyncBehaviour as "sync behaviour", prefix "" {
        /// Append new records (events).
        Insert => "insert",
        /// Create or update records in place (profiles).
        Upsert => "upsert",
    }
}

impl ObjectKind {
    /// The sync behaviours this object supports: `insert` for events, `upsert` for profiles.
    pub fn allowed_behaviours(self) -> &'static [SyncBehaviour] {
        match self {
            Self::Events => &[SyncBehaviour::Insert],
            Self::UserProfiles | Self::GroupProfiles => &[SyncBehaviour::Upsert],
        }
    }

    /// The behaviour used when an activation does not name one.
    pub fn default_behaviour(self) -> SyncBehaviour {
        match self {
            Self::Events => SyncBehaviour::Insert,
            Self::UserProfiles | Self::GroupProfiles => SyncBehaviour::Upsert,
        }
    }

    /// Whether this object is a profile (user or group) rather than events.
    pub fn is_profile(self) -> bool {
        !matches!(self, Self::Events)
    }

    /// The ingestion endpoint path: `/import`, `/engage` or `/groups`.
    pub fn endpoint_path(self) -> &'static str {
        match self {
            Self::Events => "/import",
            Self::UserProfiles => "/engage",
            Self::GroupProfiles => "/groups",
        }
    }

    /// The default maximum number of records in one request to [`Self::endpoint_path`].
    pub fn default_max_batch_records(self) -> usize {
        match self {
            Self::Events => MAX_IMPORT_EVENTS,
            Self::UserProfiles => MAX_ENGAGE_UPDATES,
            Self::GroupProfiles => DEFAULT_MAX_GROUP_UPDATES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_case_insensitively_and_round_trip() {
        for kind in ObjectKind::ALL {
            assert_eq!(kind.as_str().parse::<ObjectKind>(), Ok(*kind));
            assert_eq!(
                kind.as_str().to_uppercase().parse::<ObjectKind>(),
                Ok(*kind)
            );
        }
        assert_eq!(" USER_PROFILES ".parse(), Ok(ObjectKind::UserProfiles));
        let err = "users".parse::<ObjectKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown object kind `users`; expected one of: events, user_profiles, group_profiles"
        );
    }

    #[test]
    fn serde_uses_snake_case_names() {
        let json = serde_json::to_string(&ObjectKind::GroupProfiles).unwrap();
        assert_eq!(json, r#""group_profiles""#);
        let kind: ObjectKind = serde_json::from_str(r#""EVENTS""#).unwrap();
        assert_eq!(kind, ObjectKind::Events);
        let err = serde_json::from_str::<SyncBehaviour>(r#""merge""#).unwrap_err();
        assert!(err.to_string().contains("unknown sync behaviour `merge`"));
    }

    #[test]
    fn events_insert_and_profiles_upsert() {
        assert_eq!(
            ObjectKind::Events.allowed_behaviours(),
            &[SyncBehaviour::Insert]
        );
        assert_eq!(
            ObjectKind::UserProfiles.default_behaviour(),
            SyncBehaviour::Upsert
        );
        assert_eq!(
            ObjectKind::GroupProfiles.allowed_behaviours(),
            &[SyncBehaviour::Upsert]
        );
        assert!(!ObjectKind::Events.is_profile());
        assert!(ObjectKind::GroupProfiles.is_profile());
    }

    #[test]
    fn the_default_behaviour_is_allowed() {
        for kind in ObjectKind::ALL {
            assert!(
                kind.allowed_behaviours()
                    .contains(&kind.default_behaviour())
            );
        }
    }

    #[test]
    fn endpoints_and_batch_caps() {
        assert_eq!(ObjectKind::Events.endpoint_path(), "/import");
        assert_eq!(ObjectKind::UserProfiles.endpoint_path(), "/engage");
        assert_eq!(ObjectKind::GroupProfiles.endpoint_path(), "/groups");
        assert_eq!(ObjectKind::Events.default_max_batch_records(), 2000);
        assert_eq!(ObjectKind::UserProfiles.default_max_batch_records(), 2000);
        assert_eq!(ObjectKind::GroupProfiles.default_max_batch_records(), 200);
    }
}
