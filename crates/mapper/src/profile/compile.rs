//! Resolving a profile mapping against a result's columns, once per batch.

use mixsync_domain::{
    FieldMapping, MappingError, ObjectKind, ProfileOperation, PropertyName, Source,
};

use super::ProfileOptions;
use super::ids::IdField;
use crate::columns::column_index;
use crate::failure::{Origin, Problem};

/// Property names that are update keys of a profile update, never properties.
pub const RESERVED_PROFILE_PROPERTIES: &[&str] =
    &["$token", "$distinct_id", "$group_key", "$group_id"];

/// Where an identifier comes from in each row.
#[derive(Debug, Clone)]
pub(crate) enum Ident {
    /// The value at this index of the row.
    Column { index: usize, origin: Origin },
    /// The same checked value for every row.
    Constant(String),
}

/// Whose profile each row updates.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A user: `$distinct_id`.
    User { distinct_id: Ident },
    /// A group: `$group_key` and `$group_id`.
    Group { key: Ident, id: Ident },
}

/// One mapped column: the property it writes and how.
#[derive(Debug, Clone)]
pub(crate) struct Property {
    pub name: String,
    pub index: usize,
    pub origin: Origin,
    pub operation: ProfileOperation,
    pub unset_when_null: bool,
}

/// A profile mapping with every column resolved to its index.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub target: Target,
    pub properties: Vec<Property>,
    pub ip_zero: bool,
    pub ignore_time: bool,
    pub columns: usize,
}

/// Resolves `mapping` for `kind` against `columns`; the problems, if any, make every row fail.
pub(crate) fn compile(
    kind: ObjectKind,
    mapping: &FieldMapping,
    options: &ProfileOptions,
    columns: &[String],
) -> Result<Compiled, Vec<Problem>> {
    let mut problems = Vec::new();
    let target = match kind {
        ObjectKind::Events => {
            return Err(vec![Problem::new(
                "",
                Origin::Record,
                "unsupported_object",
                "events are not profiles; map them with the events mapper",
            )]);
        }
        ObjectKind::UserProfiles => keep(
            &mut problems,
            ident(
                IdField::DistinctId,
                mapping.distinct_id.as_ref(),
                true,
                columns,
            ),
        )
        .map(|distinct_id| Target::User { distinct_id }),
        ObjectKind::GroupProfiles => {
            let key = keep(
                &mut problems,
                ident(IdField::GroupKey, mapping.group_key.as_ref(), true, columns),
            );
            let id = keep(
                &mut problems,
                ident(IdField::GroupId, mapping.group_id.as_ref(), false, columns),
            );
            key.zip(id).map(|(key, id)| Target::Group { key, id })
        }
    };
    let properties = properties(kind, mapping, columns, &mut problems);
    match target {
        Some(target) if problems.is_empty() => Ok(Compiled {
            target,
            properties,
            ip_zero: options.ip_zero && kind == ObjectKind::UserProfiles,
            ignore_time: options.ignore_time,
            columns: columns.len(),
        }),
        _ => Err(problems),
    }
}

fn keep<T>(problems: &mut Vec<Problem>, result: Result<T, Problem>) -> Option<T> {
    result.map_err(|p| problems.push(p)).ok()
}

fn ident(
    field: IdField,
    source: Option<&Source>,
    constant_allowed: bool,
    columns: &[String],
) -> Result<Ident, Problem> {
    let key = field.key();
    let name = field.mapping_name();
    match source {
        None => Err(Problem::new(
            key,
            Origin::Record,
            "required",
            format!("`{name}` is not mapped; map a column to it"),
        )),
        Some(Source::Column(column)) => Ok(Ident::Column {
            index: column_index(key, column, columns)?,
            origin: Origin::Column(column.clone()),
        }),
        Some(Source::Constant(_)) if !constant_allowed => Err(Problem::new(
            key,
            Origin::Constant,
            "unsupported_source",
            format!("`{name}` cannot be a constant; map the column that identifies each row"),
        )),
        Some(Source::Constant(j)) => {
            let text = match j {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            field
                .parse(text)
                .map(Ident::Constant)
                .map_err(|e| Problem::new(key, Origin::Constant, e.rule, e.detail))
        }
        Some(Source::Derive { columns: derived }) => Err(Problem::new(
            key,
            Origin::Columns(derived.clone()),
            "unsupported_source",
            format!("`{name}` cannot be derived; map a column to it"),
        )),
    }
}

fn properties(
    kind: ObjectKind,
    mapping: &FieldMapping,
    columns: &[String],
    problems: &mut Vec<Problem>,
) -> Vec<Property> {
    let mut out: Vec<Property> = Vec::with_capacity(mapping.properties.len());
    for p in &mapping.properties {
        let field = format!("{}.{}", p.operation.key(), p.property);
        let origin = Origin::Column(p.column.clone());
        let mut problem = |rule: &'static str, detail: String| {
            problems.push(Problem::new(field.clone(), origin.clone(), rule, detail));
        };
        if let Err(e) = PropertyName::parse(p.property.as_str()) {
            problem(e.rule(), e.to_string());
            continue;
        }
        if RESERVED_PROFILE_PROPERTIES.contains(&p.property.as_str()) {
            problem(
                "reserved_property",
                format!(
                    "property `{}` is an update key, not a property; map it through `distinct_id`, `group_key` or `group_id`",
                    p.property
                ),
            );
            continue;
        }
        if p.operation == ProfileOperation::Delete {
            let e = MappingError::DeleteProperty {
                property: p.property.clone(),
            };
            problem("delete_property", e.to_string());
            continue;
        }
        if !p.operation.documented_for(kind) {
            problem(
                "unsupported_operation",
                format!(
                    "property `{}` uses `{}`, which Mixpanel does not document for {kind}; use `$union` or `$set`",
                    p.property,
                    p.operation.key()
                ),
            );
            continue;
        }
        if out.iter().any(|q| q.name == p.property) {
            let e = MappingError::DuplicateProperty {
                property: p.property.clone(),
            };
            problem("duplicate_property", e.to_string());
            continue;
        }
        match column_index(&field, &p.column, columns) {
            Ok(index) => out.push(Property {
                name: p.property.clone(),
                index,
                origin,
                operation: p.operation,
                unset_when_null: p.unset_when_null,
            }),
            Err(e) => problems.push(e),
        }
    }
    out
}
