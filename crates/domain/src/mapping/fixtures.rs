//! Mappings shared by the mapping tests.

use serde_json::json;

use super::{FieldMapping, PropertyMapping, Source};
use crate::profile::ProfileOperation;

pub(super) fn column(c: &str) -> Option<Source> {
    Some(Source::Column(c.into()))
}

pub(super) fn property(column: &str, property: &str) -> PropertyMapping {
    PropertyMapping {
        column: column.into(),
        property: property.into(),
        operation: ProfileOperation::Set,
        unset_when_null: false,
    }
}

pub(super) fn events() -> FieldMapping {
    FieldMapping {
        event_name: Some(Source::Constant(json!("Signed Up"))),
        time: column("ts"),
        distinct_id: column("user_id"),
        insert_id: Some(Source::Derive {
            columns: vec!["user_id".into(), "ts".into()],
        }),
        properties: vec![property("plan", "plan")],
        ..FieldMapping::default()
    }
}
