//! Why a mapping cannot work for its object.

use crate::error::FieldError;
use crate::object_kind::ObjectKind;

/// A mapping that cannot work for its object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// Required fields are not mapped.
    #[error("the {kind} mapping is missing {}; map a column to each", backticked(.fields))]
    Missing {
        /// The object.
        kind: ObjectKind,
        /// The unmapped fields.
        fields: Vec<&'static str>,
    },
    /// A field is mapped that the object does not have.
    #[error("`{field}` does not apply to {kind}; remove it from the mapping")]
    NotForKind {
        /// The object.
        kind: ObjectKind,
        /// The field.
        field: &'static str,
    },
    /// A source or property names an empty column.
    #[error("`{field}` names an empty column")]
    EmptyColumn {
        /// The field or property.
        field: String,
    },
    /// A `derive` source lists no columns.
    #[error("`{field}` derives from no columns; list the columns that make a row unique")]
    EmptyDerive {
        /// The field.
        field: &'static str,
    },
    /// `insert_id` is a constant, which would collapse every event into one.
    #[error(
        "`insert_id` is a constant, so Mixpanel would keep only one event of each (event, time, distinct_id); map a unique column or derive it from the columns that make a row unique"
    )]
    ConstantInsertId,
    /// A property name breaks a rule.
    #[error("property {index} (column `{column}`): {source}")]
    PropertyName {
        /// The property's position in `properties`.
        index: usize,
        /// Its column.
        column: String,
        /// The rule it breaks.
        source: FieldError,
    },
    /// Two mappings write the same property.
    #[error("property `{property}` is mapped more than once")]
    DuplicateProperty {
        /// The property.
        property: String,
    },
    /// An event property is named like a required field.
    #[error("property `{property}` is reserved for events; map it through `{field}` instead")]
    ReservedProperty {
        /// The property.
        property: String,
        /// The mapping field that sets it.
        field: &'static str,
    },
    /// An event property uses a profile-only setting.
    #[error(
        "property `{property}` sets `{setting}`, which applies to profiles only; remove it for events"
    )]
    ProfileSettingOnEvent {
        /// The property.
        property: String,
        /// `operation` or `unset_when_null`.
        setting: &'static str,
    },
    /// A property uses `$delete`, which takes no column.
    #[error(
        "property `{property}` uses `$delete`, which deletes the whole profile and takes no column; use `$unset` to remove one property"
    )]
    DeleteProperty {
        /// The property.
        property: String,
    },
}

fn backticked(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
