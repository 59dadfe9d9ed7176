//! Checking a mapping against its object before any row is read.

use std::collections::BTreeSet;

use super::{FieldMapping, MappingError, PropertyMapping, Source};
use crate::object_kind::ObjectKind;
use crate::profile::ProfileOperation;
use crate::property_name::PropertyName;

impl FieldMapping {
    /// The first problem [`Self::problems`] finds.
    pub fn validate(&self, kind: ObjectKind) -> Result<(), MappingError> {
        self.problems(kind).into_iter().next().map_or(Ok(()), Err)
    }

    /// Every reason this mapping cannot work for `kind`, in field order.
    pub fn problems(&self, kind: ObjectKind) -> Vec<MappingError> {
        let mut problems = Vec::new();
        let missing = self.missing_required(kind);
        if !missing.is_empty() {
            problems.push(MappingError::Missing {
                kind,
                fields: missing,
            });
        }
        let required = Self::required_fields(kind);
        for (field, source) in self.named_sources() {
            if !required.contains(&field) {
                problems.push(MappingError::NotForKind { kind, field });
            }
            match source {
                Source::Column(c) if c.is_empty() => problems.push(MappingError::EmptyColumn {
                    field: field.into(),
                }),
                Source::Derive { columns } if columns.is_empty() => {
                    problems.push(MappingError::EmptyDerive { field });
                }
                Source::Derive { columns } if columns.iter().any(String::is_empty) => {
                    problems.push(MappingError::EmptyColumn {
                        field: field.into(),
                    });
                }
                Source::Constant(_) if field == "insert_id" => {
                    problems.push(MappingError::ConstantInsertId);
                }
                _ => {}
            }
        }
        self.property_problems(kind, &mut problems);
        problems
    }

    fn property_problems(&self, kind: ObjectKind, problems: &mut Vec<MappingError>) {
        let mut seen = BTreeSet::new();
        for (index, p) in self.properties.iter().enumerate() {
            if p.column.is_empty() {
                problems.push(MappingError::EmptyColumn {
                    field: format!("properties[{index}]"),
                });
            }
            if let Err(source) = PropertyName::parse(p.property.as_str()) {
                problems.push(MappingError::PropertyName {
                    index,
                    column: p.column.clone(),
                    source,
                });
            }
            if !seen.insert(p.property.as_str()) {
                problems.push(MappingError::DuplicateProperty {
                    property: p.property.clone(),
                });
            }
            if kind == ObjectKind::Events {
                event_property_problems(p, problems);
            } else if p.operation == ProfileOperation::Delete {
                problems.push(MappingError::DeleteProperty {
                    property: p.property.clone(),
                });
            }
        }
    }
}

fn event_property_problems(p: &PropertyMapping, problems: &mut Vec<MappingError>) {
    let reserved = match p.property.as_str() {
        "time" => Some("time"),
        "distinct_id" => Some("distinct_id"),
        "$insert_id" => Some("insert_id"),
        _ => None,
    };
    if let Some(field) = reserved {
        problems.push(MappingError::ReservedProperty {
            property: p.property.clone(),
            field,
        });
    }
    if p.operation != ProfileOperation::Set {
        problems.push(MappingError::ProfileSettingOnEvent {
            property: p.property.clone(),
            setting: "operation",
        });
    }
    if p.unset_when_null {
        problems.push(MappingError::ProfileSettingOnEvent {
            property: p.property.clone(),
            setting: "unset_when_null",
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::mapping::fixtures::{column, events, property};

    #[test]
    fn a_complete_events_mapping_is_valid() {
        assert_eq!(events().validate(ObjectKind::Events), Ok(()));
    }

    #[test]
    fn reports_missing_and_foreign_fields() {
        let mapping = FieldMapping {
            distinct_id: column("id"),
            event_name: column("name"),
            ..FieldMapping::default()
        };
        assert_eq!(
            mapping
                .validate(ObjectKind::UserProfiles)
                .unwrap_err()
                .to_string(),
            "`event_name` does not apply to user_profiles; remove it from the mapping"
        );
        let err = FieldMapping::default()
            .validate(ObjectKind::Events)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the events mapping is missing `event_name`, `time`, `distinct_id`, `insert_id`; map a column to each"
        );
    }

    #[test]
    fn rejects_constant_and_empty_insert_ids() {
        let mut mapping = events();
        mapping.insert_id = Some(Source::Constant(json!("x")));
        assert_eq!(
            mapping.validate(ObjectKind::Events),
            Err(MappingError::ConstantInsertId)
        );
        mapping.insert_id = Some(Source::Derive { columns: vec![] });
        assert_eq!(
            mapping
                .validate(ObjectKind::Events)
                .unwrap_err()
                .to_string(),
            "`insert_id` derives from no columns; list the columns that make a row unique"
        );
        mapping.insert_id = column("");
        assert_eq!(
            mapping.validate(ObjectKind::Events),
            Err(MappingError::EmptyColumn {
                field: "insert_id".into()
            })
        );
    }

    #[test]
    fn checks_event_properties() {
        let mut mapping = events();
        mapping.properties = vec![
            property("a", "time"),
            property("b", "plan"),
            property("c", "plan"),
            PropertyMapping {
                operation: ProfileOperation::SetOnce,
                ..property("d", "first_seen")
            },
            property("e", ""),
        ];
        let messages: Vec<String> = mapping
            .problems(ObjectKind::Events)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            [
                "property `time` is reserved for events; map it through `time` instead",
                "property `plan` is mapped more than once",
                "property `first_seen` sets `operation`, which applies to profiles only; remove it for events",
                "property 4 (column `e`): `property` is invalid: it is empty; a non-empty value is required",
            ]
        );
    }

    #[test]
    fn profile_properties_may_not_delete() {
        let mapping = FieldMapping {
            distinct_id: column("id"),
            properties: vec![PropertyMapping {
                operation: ProfileOperation::Delete,
                unset_when_null: true,
                ..property("x", "x")
            }],
            ..FieldMapping::default()
        };
        assert_eq!(
            mapping.validate(ObjectKind::UserProfiles),
            Err(MappingError::DeleteProperty {
                property: "x".into()
            })
        );
    }
}
