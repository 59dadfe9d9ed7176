//! Resolving an events mapping against a result's columns, once per batch.

use mixsync_domain::rules::{MAX_PROPERTIES, RESERVED_EVENT_PROPERTIES};
use mixsync_domain::{
    DistinctId, EventName, EventTime, FieldMapping, LimitError, MappingError, PropertyName, Source,
    Value,
};
use serde_json::Value as Json;

use super::EventOptions;
use crate::columns::column_index;
use crate::failure::{Origin, Problem};
use crate::ids::id_text;

/// Where one event field comes from in each row.
#[derive(Debug, Clone)]
pub(crate) enum Field<T> {
    /// The value at this index of the row.
    Column { index: usize, origin: Origin },
    /// The same value for every row.
    Constant(T),
}

/// Where `$insert_id` comes from.
#[derive(Debug, Clone)]
pub(crate) enum InsertIdField {
    /// The value at this index.
    Column { index: usize, origin: Origin },
    /// A hash of the values at these indices.
    Derive { indices: Vec<usize> },
}

/// A custom property: its name and the row index of its value.
#[derive(Debug, Clone)]
pub(crate) struct Property {
    pub name: String,
    pub index: usize,
    pub origin: Origin,
}

/// An events mapping with every column resolved to its index.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub event: Field<EventName>,
    pub time: Field<EventTime>,
    pub distinct_id: Field<DistinctId>,
    pub insert_id: InsertIdField,
    pub properties: Vec<Property>,
    pub ip_zero: bool,
    pub columns: usize,
}

/// Resolves `mapping` against `columns`; the problems, if any, make every row fail.
pub(crate) fn compile(
    mapping: &FieldMapping,
    options: &EventOptions,
    columns: &[String],
) -> Result<Compiled, Vec<Problem>> {
    let mut problems = Vec::new();
    let event = keep(
        &mut problems,
        field(
            mapping.event_name.as_ref(),
            "event",
            "event_name",
            columns,
            |j| EventName::parse(constant_text(j)).map_err(|e| (e.rule(), e.to_string())),
        ),
    );
    let time = keep(
        &mut problems,
        field(mapping.time.as_ref(), "time", "time", columns, |j| {
            EventTime::from_value(&Value::Json(j.clone())).map_err(|e| (e.rule(), e.to_string()))
        }),
    );
    let distinct_id = keep(
        &mut problems,
        field(
            mapping.distinct_id.as_ref(),
            "distinct_id",
            "distinct_id",
            columns,
            |j| {
                let value = Value::Json(j.clone());
                let text =
                    id_text("distinct_id", "event", &value).map_err(|e| (e.rule, e.detail))?;
                DistinctId::parse(text).map_err(|e| (e.rule(), e.to_string()))
            },
        ),
    );
    let insert_id = keep(
        &mut problems,
        insert_id_field(mapping.insert_id.as_ref(), columns),
    );
    let properties = properties(mapping, columns, &mut problems);
    let ip_zero = options.ip_zero && !mapping.properties.iter().any(|p| p.property == "ip");
    let count = RESERVED_EVENT_PROPERTIES.len() + properties.len() + usize::from(ip_zero);
    if count >= MAX_PROPERTIES {
        let e = LimitError::TooManyProperties { count };
        problems.push(Problem::new(
            e.field(),
            Origin::Record,
            e.rule(),
            e.to_string(),
        ));
    }
    match (event, time, distinct_id, insert_id) {
        (Some(event), Some(time), Some(distinct_id), Some(insert_id)) if problems.is_empty() => {
            Ok(Compiled {
                event,
                time,
                distinct_id,
                insert_id,
                properties,
                ip_zero,
                columns: columns.len(),
            })
        }
        _ => Err(problems),
    }
}

fn keep<T>(problems: &mut Vec<Problem>, result: Result<T, Problem>) -> Option<T> {
    result.map_err(|p| problems.push(p)).ok()
}

/// A constant's text: a JSON string's content, else its compact JSON.
fn constant_text(j: &Json) -> String {
    match j {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn field<T>(
    source: Option<&Source>,
    field: &str,
    mapping_name: &str,
    columns: &[String],
    constant: impl FnOnce(&Json) -> Result<T, (&'static str, String)>,
) -> Result<Field<T>, Problem> {
    match source {
        None => Err(not_mapped(field, mapping_name)),
        Some(Source::Column(name)) => Ok(Field::Column {
            index: column_index(field, name, columns)?,
            origin: Origin::Column(name.clone()),
        }),
        Some(Source::Constant(j)) => constant(j)
            .map(Field::Constant)
            .map_err(|(rule, detail)| Problem::new(field, Origin::Constant, rule, detail)),
        Some(Source::Derive { columns: derived }) => Err(Problem::new(
            field,
            Origin::Columns(derived.clone()),
            "unsupported_source",
            format!("`{mapping_name}` cannot be derived; map a column or a constant to it"),
        )),
    }
}

fn insert_id_field(source: Option<&Source>, columns: &[String]) -> Result<InsertIdField, Problem> {
    const FIELD: &str = "$insert_id";
    match source {
        None => Err(not_mapped(FIELD, "insert_id")),
        Some(Source::Column(name)) => Ok(InsertIdField::Column {
            index: column_index(FIELD, name, columns)?,
            origin: Origin::Column(name.clone()),
        }),
        Some(Source::Constant(_)) => Err(Problem::new(
            FIELD,
            Origin::Constant,
            "constant_insert_id",
            MappingError::ConstantInsertId.to_string(),
        )),
        Some(Source::Derive { columns: derived }) => {
            if derived.is_empty() {
                let e = MappingError::EmptyDerive { field: "insert_id" };
                let origin = Origin::Columns(Vec::new());
                return Err(Problem::new(FIELD, origin, "empty_derive", e.to_string()));
            }
            let indices = derived
                .iter()
                .map(|name| column_index(FIELD, name, columns))
                .collect::<Result<_, _>>()?;
            Ok(InsertIdField::Derive { indices })
        }
    }
}

fn properties(
    mapping: &FieldMapping,
    columns: &[String],
    problems: &mut Vec<Problem>,
) -> Vec<Property> {
    let mut out: Vec<Property> = Vec::with_capacity(mapping.properties.len());
    for p in &mapping.properties {
        let field = format!("properties.{}", p.property);
        let origin = Origin::Column(p.column.clone());
        if let Err(e) = PropertyName::parse(p.property.as_str()) {
            problems.push(Problem::new(field, origin, e.rule(), e.to_string()));
            continue;
        }
        if RESERVED_EVENT_PROPERTIES.contains(&p.property.as_str()) {
            let e = MappingError::ReservedProperty {
                property: p.property.clone(),
                field: reserved_mapping_field(&p.property),
            };
            problems.push(Problem::new(
                field,
                origin,
                "reserved_property",
                e.to_string(),
            ));
            continue;
        }
        if out.iter().any(|q| q.name == p.property) {
            let e = MappingError::DuplicateProperty {
                property: p.property.clone(),
            };
            problems.push(Problem::new(
                field,
                origin,
                "duplicate_property",
                e.to_string(),
            ));
            continue;
        }
        match column_index(&field, &p.column, columns) {
            Ok(index) => out.push(Property {
                name: p.property.clone(),
                index,
                origin,
            }),
            Err(problem) => problems.push(problem),
        }
    }
    out
}

fn reserved_mapping_field(property: &str) -> &'static str {
    match property {
        "time" => "time",
        "distinct_id" => "distinct_id",
        _ => "insert_id",
    }
}

fn not_mapped(field: &str, mapping_name: &str) -> Problem {
    Problem::new(
        field,
        Origin::Record,
        "required",
        format!("`{mapping_name}` is not mapped; every event needs one"),
    )
}
