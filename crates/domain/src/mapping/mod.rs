//! How an activation maps warehouse columns to Mixpanel fields.

mod error;
mod validate;

pub use error::MappingError;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::object_kind::ObjectKind;
use crate::profile::ProfileOperation;

/// Where a Mixpanel field's value comes from. In config: `{column: signup_ts}`,
/// `{constant: "Signed Up"}` or `{derive: {columns: [user_id, day]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// The value of one column.
    Column(String),
    /// The same value for every row.
    Constant(Json),
    /// A stable hash of these columns' values
    /// ([`InsertId::derive`](crate::InsertId::derive) over [`Value::key_bytes`](crate::Value::key_bytes)),
    /// for rows without a natural id.
    Derive {
        /// The columns that together make a row unique, in a fixed order.
        columns: Vec<String>,
    },
}

impl Source {
    /// The columns this source reads.
    pub fn columns(&self) -> &[String] {
        match self {
            Self::Column(column) => std::slice::from_ref(column),
            Self::Constant(_) => &[],
            Self::Derive { columns } => columns,
        }
    }
}

/// One column sent as a property (a "custom field").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyMapping {
    /// The warehouse column.
    pub column: String,
    /// The Mixpanel property name.
    pub property: String,
    /// The profile operation that writes it (profiles only; default `$set`).
    #[serde(default)]
    pub operation: ProfileOperation,
    /// Profiles only: when the column is `NULL`, `$unset` the property instead of setting it to
    /// null.
    #[serde(default)]
    pub unset_when_null: bool,
}

/// An activation's mapping from columns to Mixpanel fields. Which fields are required depends on
/// the object, see [`FieldMapping::required_fields`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldMapping {
    /// Events: the event name.
    pub event_name: Option<Source>,
    /// Events: the time (epoch seconds or milliseconds, a timestamp or a date).
    pub time: Option<Source>,
    /// Events and user profiles: the `distinct_id`.
    pub distinct_id: Option<Source>,
    /// Events: the `$insert_id`, mapped or derived.
    pub insert_id: Option<Source>,
    /// Group profiles: the `$group_key`.
    pub group_key: Option<Source>,
    /// Group profiles: the `$group_id`.
    pub group_id: Option<Source>,
    /// Every other mapped column.
    pub properties: Vec<PropertyMapping>,
}

impl FieldMapping {
    /// The fields an object needs mapped: events `event_name`, `time`, `distinct_id` and
    /// `insert_id`; user profiles `distinct_id`; group profiles `group_key` and `group_id`.
    pub fn required_fields(kind: ObjectKind) -> &'static [&'static str] {
        match kind {
            ObjectKind::Events => &["event_name", "time", "distinct_id", "insert_id"],
            ObjectKind::UserProfiles => &["distinct_id"],
            ObjectKind::GroupProfiles => &["group_key", "group_id"],
        }
    }

    /// The required fields of `kind` that are not mapped, in [`Self::required_fields`] order.
    pub fn missing_required(&self, kind: ObjectKind) -> Vec<&'static str> {
        Self::required_fields(kind)
            .iter()
            .copied()
            .filter(|name| self.source(name).is_none())
            .collect()
    }

    /// The mapped source of a field, by its name in this struct (`event_name`, `time`, …).
    pub fn source(&self, field: &str) -> Option<&Source> {
        match field {
            "event_name" => self.event_name.as_ref(),
            "time" => self.time.as_ref(),
            "distinct_id" => self.distinct_id.as_ref(),
            "insert_id" => self.insert_id.as_ref(),
            "group_key" => self.group_key.as_ref(),
            "group_id" => self.group_id.as_ref(),
            _ => None,
        }
    }

    /// Every column the mapping reads, each once, in first-use order: check them against the
    /// query's columns before a run.
    pub fn referenced_columns(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.named_sources()
            .flat_map(|(_, source)| source.columns())
            .chain(self.properties.iter().map(|p| &p.column))
            .map(String::as_str)
            .filter(|c| seen.insert(*c))
            .collect()
    }

    pub(super) fn named_sources(&self) -> impl Iterator<Item = (&'static str, &Source)> {
        [
            ("event_name", &self.event_name),
            ("time", &self.time),
            ("distinct_id", &self.distinct_id),
            ("insert_id", &self.insert_id),
            ("group_key", &self.group_key),
            ("group_id", &self.group_id),
        ]
        .into_iter()
        .filter_map(|(name, source)| source.as_ref().map(|s| (name, s)))
    }
}

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::fixtures::events;
    use super::*;

    #[test]
    fn required_fields_per_object() {
        assert_eq!(
            FieldMapping::required_fields(ObjectKind::Events),
            &["event_name", "time", "distinct_id", "insert_id"]
        );
        assert_eq!(
            FieldMapping::required_fields(ObjectKind::UserProfiles),
            &["distinct_id"]
        );
        assert_eq!(
            FieldMapping::default().missing_required(ObjectKind::GroupProfiles),
            vec!["group_key", "group_id"]
        );
        assert!(events().missing_required(ObjectKind::Events).is_empty());
    }

    #[test]
    fn deserializes_from_config() {
        let mapping: FieldMapping = serde_json::from_value(json!({
            "event_name": {"constant": "Signed Up"},
            "time": {"column": "ts"},
            "distinct_id": {"column": "user_id"},
            "insert_id": {"derive": {"columns": ["user_id", "ts"]}},
            "properties": [{"column": "plan", "property": "plan"}]
        }))
        .unwrap();
        assert_eq!(mapping, events());
        let profile: PropertyMapping = serde_json::from_value(
            json!({"column": "c", "property": "p", "operation": "$set_once", "unset_when_null": true}),
        )
        .unwrap();
        assert_eq!(profile.operation, ProfileOperation::SetOnce);
        assert!(serde_json::from_value::<FieldMapping>(json!({"event": {"column": "x"}})).is_err());
        assert!(serde_json::from_value::<Source>(json!({"columns": "x"})).is_err());
        let round_trip: FieldMapping =
            serde_json::from_value(serde_json::to_value(events()).unwrap()).unwrap();
        assert_eq!(round_trip, events());
    }

    #[test]
    fn lists_each_referenced_column_once() {
        assert_eq!(events().referenced_columns(), vec!["ts", "user_id", "plan"]);
    }
}
