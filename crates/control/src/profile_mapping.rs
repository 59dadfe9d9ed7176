//! Checks of user and group profile mappings that the domain's mapping rules leave to control:
//! where the identifiers come from, which operations the object takes, and — once the query is
//! described — that `$add` reads numeric columns and `$union` array or JSON columns. Errors name
//! the field (`mapping.group_id`, `mapping.properties[2].operation`, …).

use mixsync_domain::{DistinctId, FieldMapping, GroupKey, ObjectKind, ProfileOperation, Source};
use mixsync_extractor::warehouse::Column;
use mixsync_mapper::RESERVED_PROFILE_PROPERTIES;

use crate::errors::{ApiError, ApiResult};

/// Postgres types read as numbers.
const NUMERIC_TYPES: &[&str] = &["int2", "int4", "int8", "float4", "float8", "numeric", "oid"];
/// Postgres types whose values may hold numbers or lists: checked row by row.
const JSON_TYPES: &[&str] = &["json", "jsonb"];
/// Postgres scalar types that are neither numbers, lists nor JSON.
const OTHER_SCALAR_TYPES: &[&str] = &[
    "text",
    "varchar",
    "bpchar",
    "char",
    "name",
    "citext",
    "bool",
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    "uuid",
    "bytea",
    "inet",
    "cidr",
    "macaddr",
    "money",
];

/// Checks the identifiers and operations of a profile mapping; events pass through (the
/// domain's rules already refuse profile operations on events).
pub(crate) fn check_profile_mapping(object: ObjectKind, mapping: &FieldMapping) -> ApiResult<()> {
    match object {
        ObjectKind::Events => return Ok(()),
        ObjectKind::UserProfiles => {
            if let Some(source) = &mapping.distinct_id {
                identifier(
                    "distinct_id",
                    source,
                    "the column that identifies each user",
                    |text| {
                        DistinctId::parse_profile(text)
                            .map(drop)
                            .map_err(|e| e.to_string())
                    },
                )?;
            }
        }
        ObjectKind::GroupProfiles => {
            if let Some(source) = &mapping.group_key {
                identifier(
                    "group_key",
                    source,
                    "a constant such as `company_id`, or a column",
                    |text| GroupKey::parse(text).map(drop).map_err(|e| e.to_string()),
                )?;
            }
            if let Some(source) = &mapping.group_id
                && !matches!(source, Source::Column(_))
            {
                return Err(ApiError::invalid(
                    "mapping.group_id",
                    "`group_id` must be a column: each row is one group",
                ));
            }
        }
    }
    for (i, p) in mapping.properties.iter().enumerate() {
        if RESERVED_PROFILE_PROPERTIES.contains(&p.property.as_str()) {
            return Err(ApiError::invalid(
                format!("mapping.properties[{i}].property"),
                format!(
                    "`{}` is an update key, not a property; map it through `distinct_id`, `group_key` or `group_id`",
                    p.property
                ),
            ));
        }
        if !p.operation.documented_for(object) {
            return Err(ApiError::invalid(
                format!("mapping.properties[{i}].operation"),
                format!(
                    "`{}` is not documented for {object}; use `$union` (adds list items without duplicates) or `$set`",
                    p.operation.key()
                ),
            ));
        }
    }
    Ok(())
}

/// An identifier must be a column or a valid constant; never derived.
fn identifier(
    name: &str,
    source: &Source,
    what: &str,
    parse: impl FnOnce(String) -> Result<(), String>,
) -> ApiResult<()> {
    let field = format!("mapping.{name}");
    match source {
        Source::Column(_) => Ok(()),
        Source::Constant(value) => {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parse(text).map_err(|message| ApiError::invalid(field, message))
        }
        Source::Derive { .. } => Err(ApiError::invalid(
            field,
            format!("`{name}` cannot be derived; map {what}"),
        )),
    }
}

/// Checks that `$add` reads numeric (or JSON) columns and `$union` array (or JSON) columns,
/// where the column's type says so; columns of types not listed here are checked row by row.
pub(crate) fn check_operation_types(mapping: &FieldMapping, columns: &[Column]) -> ApiResult<()> {
    for (i, p) in mapping.properties.iter().enumerate() {
        let Some(column) = columns.iter().find(|c| c.name == p.column) else {
            continue;
        };
        let ty = column.type_name.as_str();
        let is_json = JSON_TYPES.contains(&ty);
        let is_array = ty.starts_with('_');
        let is_numeric = NUMERIC_TYPES.contains(&ty);
        let known = is_json || is_array || is_numeric || OTHER_SCALAR_TYPES.contains(&ty);
        let (fits, takes, map) = match p.operation {
            ProfileOperation::Add => (is_numeric || is_json, "numbers", "a numeric"),
            ProfileOperation::Union => (is_array || is_json, "lists", "an array or json"),
            _ => continue,
        };
        if known && !fits {
            return Err(ApiError::invalid(
                format!("mapping.properties[{i}].column"),
                format!(
                    "`{}` takes {takes}, but column `{}` is {ty}; map {map} column or use `$set`",
                    p.operation.key(),
                    p.column
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use mixsync_domain::PropertyMapping;
    use serde_json::json;

    use super::*;

    fn prop(column: &str, property: &str, operation: ProfileOperation) -> PropertyMapping {
        PropertyMapping {
            column: column.into(),
            property: property.into(),
            operation,
            unset_when_null: false,
        }
    }

    fn columns(types: &[(&str, &str)]) -> Vec<Column> {
        types
            .iter()
            .map(|(name, ty)| Column {
                name: (*name).into(),
                type_name: (*ty).into(),
            })
            .collect()
    }

    fn users(properties: Vec<PropertyMapping>) -> FieldMapping {
        FieldMapping {
            distinct_id: Some(Source::Column("id".into())),
            properties,
            ..FieldMapping::default()
        }
    }

    #[test]
    fn identifiers_come_from_columns_or_valid_constants() {
        let mut m = users(vec![]);
        assert!(check_profile_mapping(ObjectKind::UserProfiles, &m).is_ok());
        m.distinct_id = Some(Source::Derive {
            columns: vec!["a".into()],
        });
        assert_eq!(
            check_profile_mapping(ObjectKind::UserProfiles, &m)
                .unwrap_err()
                .to_string(),
            "mapping.distinct_id: `distinct_id` cannot be derived; map the column that identifies each user"
        );
        m.distinct_id = Some(Source::Constant(json!("null")));
        assert!(
            check_profile_mapping(ObjectKind::UserProfiles, &m)
                .unwrap_err()
                .to_string()
                .starts_with("mapping.distinct_id: `$distinct_id` is invalid: `null`")
        );

        let mut g = FieldMapping {
            group_key: Some(Source::Constant(json!("company_id"))),
            group_id: Some(Source::Column("id".into())),
            ..FieldMapping::default()
        };
        assert!(check_profile_mapping(ObjectKind::GroupProfiles, &g).is_ok());
        g.group_key = Some(Source::Column("kind".into()));
        assert!(check_profile_mapping(ObjectKind::GroupProfiles, &g).is_ok());
        g.group_key = Some(Source::Constant(json!("")));
        assert!(
            check_profile_mapping(ObjectKind::GroupProfiles, &g)
                .unwrap_err()
                .to_string()
                .starts_with("mapping.group_key: `$group_key` is invalid: it is empty")
        );
        g.group_key = Some(Source::Constant(json!("company_id")));
        g.group_id = Some(Source::Constant(json!("acme")));
        assert_eq!(
            check_profile_mapping(ObjectKind::GroupProfiles, &g)
                .unwrap_err()
                .to_string(),
            "mapping.group_id: `group_id` must be a column: each row is one group"
        );
    }

    #[test]
    fn operations_and_names_fit_the_object() {
        let m = users(vec![
            prop("a", "a", ProfileOperation::Set),
            prop("b", "b", ProfileOperation::Append),
        ]);
        assert!(check_profile_mapping(ObjectKind::UserProfiles, &m).is_ok());
        let g = FieldMapping {
            group_key: Some(Source::Constant(json!("company_id"))),
            group_id: Some(Source::Column("id".into())),
            properties: m.properties.clone(),
            ..FieldMapping::default()
        };
        assert_eq!(
            check_profile_mapping(ObjectKind::GroupProfiles, &g)
                .unwrap_err()
                .to_string(),
            "mapping.properties[1].operation: `$append` is not documented for group_profiles; use `$union` (adds list items without duplicates) or `$set`"
        );
        let m = users(vec![prop("a", "$distinct_id", ProfileOperation::Set)]);
        assert!(
            check_profile_mapping(ObjectKind::UserProfiles, &m)
                .unwrap_err()
                .to_string()
                .starts_with("mapping.properties[0].property: `$distinct_id` is an update key")
        );
    }

    #[test]
    fn add_needs_numbers_and_union_lists() {
        let cols = columns(&[
            ("n", "int8"),
            ("d", "numeric"),
            ("j", "jsonb"),
            ("tags", "_text"),
            ("plan", "text"),
            ("custom", "my_domain"),
        ]);
        let ok = users(vec![
            prop("n", "n", ProfileOperation::Add),
            prop("d", "d", ProfileOperation::Add),
            prop("j", "j", ProfileOperation::Add),
            prop("tags", "tags", ProfileOperation::Union),
            prop("j", "j2", ProfileOperation::Union),
            prop("custom", "c", ProfileOperation::Add),
            prop("plan", "plan", ProfileOperation::SetOnce),
        ]);
        assert!(check_operation_types(&ok, &cols).is_ok());
        let bad = users(vec![prop("plan", "plan", ProfileOperation::Add)]);
        assert_eq!(
            check_operation_types(&bad, &cols).unwrap_err().to_string(),
            "mapping.properties[0].column: `$add` takes numbers, but column `plan` is text; map a numeric column or use `$set`"
        );
        let bad = users(vec![
            prop("n", "n", ProfileOperation::Set),
            prop("n", "m", ProfileOperation::Union),
        ]);
        assert_eq!(
            check_operation_types(&bad, &cols).unwrap_err().to_string(),
            "mapping.properties[1].column: `$union` takes lists, but column `n` is int8; map an array or json column or use `$set`"
        );
    }
}
