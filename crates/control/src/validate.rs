//! Validating an activation against its object and its warehouse: the mapping fits the object,
//! the warehouse and target exist, the query prepares (it is never executed here), and every
//! mapped column is one of the query's columns (and, for profiles, of a type its operation
//! takes). Errors name the field.

use mixsync_domain::{FieldMapping, MappingError, Source};
use mixsync_extractor::warehouse::{self, Column, Warehouse};
use mixsync_state::{ActivationSpec, StateError, StateStore};

use crate::errors::{ApiError, ApiResult};
use crate::profile_mapping::{check_operation_types, check_profile_mapping};

/// Checks `spec` completely; returns the query's columns.
pub(crate) async fn validate_activation(
    state: &StateStore,
    spec: &ActivationSpec,
    prefix: &str,
) -> ApiResult<Vec<Column>> {
    if let Some(problem) = spec.mapping.problems(spec.object).into_iter().next() {
        return Err(ApiError::invalid(
            mapping_error_field(&problem, &spec.mapping),
            problem.to_string(),
        ));
    }
    check_profile_mapping(spec.object, &spec.mapping)?;
    exists(
        state.get_target(&spec.target_id).await,
        prefix,
        "target_id",
        "target",
    )?;
    let wh = open_warehouse(state, &spec.warehouse_id, prefix).await?;
    let columns = wh.describe(&spec.query).await.map_err(|e| {
        // A lost connection or a lock held too long says nothing about the query.
        if e.is_transient() {
            ApiError::Unavailable(format!("{prefix}.query: {e}"))
        } else {
            ApiError::invalid(format!("{prefix}.query"), e.to_string())
        }
    })?;
    check_columns(&spec.mapping, &columns)?;
    check_operation_types(&spec.mapping, &columns)?;
    Ok(columns)
}

/// Connects to a stored warehouse; a missing one is the caller's `warehouse_id` field.
pub(crate) async fn open_warehouse(
    state: &StateStore,
    warehouse_id: &str,
    prefix: &str,
) -> ApiResult<Warehouse> {
    let stored = exists(
        state.get_warehouse(warehouse_id).await,
        prefix,
        "warehouse_id",
        "warehouse",
    )?;
    let connection = state.warehouse_connection(warehouse_id).await?;
    warehouse::connect(&connection)
        .await
        .map_err(|e| ApiError::FailedPrecondition(format!("warehouse `{}`: {e}", stored.name)))
}

fn exists<T>(found: Result<T, StateError>, prefix: &str, field: &str, kind: &str) -> ApiResult<T> {
    match found {
        Err(StateError::NotFound { id, .. }) => Err(ApiError::invalid(
            format!("{prefix}.{field}"),
            format!("{kind} `{id}` does not exist"),
        )),
        other => Ok(other?),
    }
}

/// Every column the mapping reads is one of the query's columns.
pub(crate) fn check_columns(mapping: &FieldMapping, columns: &[Column]) -> ApiResult<()> {
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let missing = |field: String, column: &str| {
        ApiError::invalid(
            field,
            format!(
                "column `{column}` is not in the query's columns ({})",
                names.join(", ")
            ),
        )
    };
    let sources = [
        ("event_name", &mapping.event_name),
        ("time", &mapping.time),
        ("distinct_id", &mapping.distinct_id),
        ("insert_id", &mapping.insert_id),
        ("group_key", &mapping.group_key),
        ("group_id", &mapping.group_id),
    ];
    for (field, source) in sources {
        let Some(source) = source else { continue };
        let path = match source {
            Source::Derive { .. } => format!("mapping.{field}.derive"),
            _ => format!("mapping.{field}"),
        };
        if let Some(column) = source
            .columns()
            .iter()
            .find(|c| !names.contains(&c.as_str()))
        {
            return Err(missing(path, column));
        }
    }
    for (i, p) in mapping.properties.iter().enumerate() {
        if !names.contains(&p.column.as_str()) {
            return Err(missing(
                format!("mapping.properties[{i}].column"),
                &p.column,
            ));
        }
    }
    Ok(())
}

/// The request path of the mapping field a problem is about.
fn mapping_error_field(problem: &MappingError, mapping: &FieldMapping) -> String {
    let property_index = |property: &str, last: bool| {
        let mut matches = mapping
            .properties
            .iter()
            .enumerate()
            .filter(|(_, p)| p.property == property)
            .map(|(i, _)| i);
        let index = if last {
            matches.next_back()
        } else {
            matches.next()
        };
        index.map_or_else(
            || "mapping.properties".to_owned(),
            |i| format!("mapping.properties[{i}]"),
        )
    };
    match problem {
        MappingError::Missing { fields, .. } => {
            format!("mapping.{}", fields.first().copied().unwrap_or_default())
        }
        MappingError::NotForKind { field, .. } | MappingError::EmptyDerive { field } => {
            format!("mapping.{field}")
        }
        MappingError::EmptyColumn { field } => format!("mapping.{field}"),
        MappingError::ConstantInsertId => "mapping.insert_id".into(),
        MappingError::PropertyName { index, .. } => format!("mapping.properties[{index}].property"),
        MappingError::DuplicateProperty { property } => property_index(property, true),
        MappingError::ProfileSettingOnEvent { property, setting } => {
            format!("{}.{setting}", property_index(property, false))
        }
        MappingError::ReservedProperty { property, .. }
        | MappingError::DeleteProperty { property } => property_index(property, false),
    }
}

#[cfg(test)]
mod tests {
    use mixsync_domain::{ObjectKind, PropertyMapping};

    use super::*;

    fn columns(names: &[&str]) -> Vec<Column> {
        names
            .iter()
            .map(|n| Column {
                name: (*n).into(),
                type_name: "text".into(),
            })
            .collect()
    }

    fn mapping() -> FieldMapping {
        FieldMapping {
            event_name: Some(Source::Constant("E".into())),
            time: Some(Source::Column("ts".into())),
            distinct_id: Some(Source::Column("id".into())),
            insert_id: Some(Source::Derive {
                columns: vec!["id".into(), "nope".into()],
            }),
            properties: vec![PropertyMapping {
                column: "plan".into(),
                property: "plan".into(),
                operation: Default::default(),
                unset_when_null: false,
            }],
            ..FieldMapping::default()
        }
    }

    #[test]
    fn missing_columns_are_named_with_the_query_columns() {
        let err = check_columns(&mapping(), &columns(&["id", "name", "created_at"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mapping.time: column `ts` is not in the query's columns (id, name, created_at)"
        );
        let err = check_columns(&mapping(), &columns(&["id", "ts"])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("mapping.insert_id.derive: column `nope`"),
            "{err}"
        );
        let err = check_columns(&mapping(), &columns(&["id", "ts", "nope"])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("mapping.properties[0].column: column `plan`"),
            "{err}"
        );
        assert!(check_columns(&mapping(), &columns(&["id", "ts", "nope", "plan"])).is_ok());
    }

    #[test]
    fn mapping_problems_name_their_field() {
        let mut m = mapping();
        m.time = None;
        let problem = m.problems(ObjectKind::Events).remove(0);
        assert_eq!(mapping_error_field(&problem, &m), "mapping.time");
        let mut m = mapping();
        m.properties[0].property = "time".into();
        let problem = m.problems(ObjectKind::Events).remove(0);
        assert_eq!(mapping_error_field(&problem, &m), "mapping.properties[0]");
        let mut m = mapping();
        m.properties[0].operation = mixsync_domain::ProfileOperation::Add;
        let problem = m.problems(ObjectKind::Events).remove(0);
        assert_eq!(
            mapping_error_field(&problem, &m),
            "mapping.properties[0].operation"
        );
    }
}
