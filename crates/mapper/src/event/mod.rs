//! Mapping a warehouse row to one Mixpanel event (`/import`), checked against Mixpanel's rules.

mod compile;
pub(crate) mod json;

use std::borrow::Cow;

use mixsync_domain::rules::{check_event_size, check_property_value};
use mixsync_domain::{DistinctId, EventName, EventTime, FieldMapping, InsertId, TimeError, Value};

use crate::failure::{Origin, Problem, RowFailure};
use crate::ids::id_text;
use compile::{Compiled, Field, InsertIdField, compile};
use json::EventJson;

/// Per-activation switches for events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventOptions {
    /// Add `"ip": 0` (no geolocation of the loader's address) unless `ip` is mapped.
    pub ip_zero: bool,
}

impl Default for EventOptions {
    fn default() -> Self {
        Self { ip_zero: true }
    }
}

/// A row mapped to the exact JSON Mixpanel takes: an event for `/import`, or a profile's
/// update objects for `/engage` or `/groups` (see [`ProfileMapper`](crate::ProfileMapper)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedRecord {
    /// The event's `$insert_id`; a user's `$distinct_id`; a group's `<group_key>/<group_id>`.
    pub key: String,
    /// Events: `{"event": …, "properties": {…}}`; profiles: a JSON array of update objects
    /// without `$token`. Compact.
    pub json: Vec<u8>,
}

/// An events mapping resolved against a result's columns: build it once per batch and
/// [`map`](EventMapper::map) each row. Mapping problems (an unknown column, a missing field, …)
/// do not fail construction; they fail every row, so every row is reported.
#[derive(Debug, Clone)]
pub struct EventMapper {
    compiled: Result<Compiled, Vec<Problem>>,
}

impl EventMapper {
    /// Resolves `mapping` against `columns` (the query's result columns, in order).
    pub fn new(mapping: &FieldMapping, options: &EventOptions, columns: &[String]) -> Self {
        Self {
            compiled: compile(mapping, options, columns),
        }
    }

    /// Maps `row` (values in column order), the `row_number`th (1-based) of the result, into
    /// an event, or every reason it cannot be one. `now_ms` is the current time in epoch
    /// milliseconds, for Mixpanel's "not more than an hour ahead" rule.
    pub fn map(
        &self,
        row: &[Value],
        row_number: u64,
        now_ms: i64,
    ) -> Result<MappedRecord, Vec<RowFailure>> {
        let at_row = |problems: Vec<Problem>| {
            problems
                .iter()
                .map(|p| p.at_row(row_number))
                .collect::<Vec<_>>()
        };
        let c = self.compiled.as_ref().map_err(|p| at_row(p.clone()))?;
        if row.len() != c.columns {
            return Err(at_row(vec![Problem::new(
                "",
                Origin::Record,
                "malformed_row",
                format!("the row has {} values for {} columns", row.len(), c.columns),
            )]));
        }
        map_row(c, row, now_ms).map_err(at_row)
    }
}

/// Maps one row with a mapping resolved for its columns; see [`EventMapper`], which is faster
/// for many rows of the same result.
pub fn map_event(
    mapping: &FieldMapping,
    options: &EventOptions,
    columns: &[String],
    row: &[Value],
    row_number: u64,
    now_ms: i64,
) -> Result<MappedRecord, Vec<RowFailure>> {
    EventMapper::new(mapping, options, columns).map(row, row_number, now_ms)
}

fn map_row(c: &Compiled, row: &[Value], now_ms: i64) -> Result<MappedRecord, Vec<Problem>> {
    let mut problems = Vec::new();
    let event = keep(&mut problems, event_name(&c.event, row));
    let time = keep(&mut problems, time(&c.time, row, now_ms));
    let distinct_id = keep(&mut problems, distinct_id(&c.distinct_id, row));
    let insert_id = keep(&mut problems, insert_id(&c.insert_id, row));
    let mut properties = Vec::with_capacity(c.properties.len());
    for p in &c.properties {
        let value = &row[p.index];
        match check_value(&p.name, value) {
            Ok(()) => properties.push((p.name.as_str(), value)),
            Err(problem) => problems.push(Problem {
                origin: p.origin.clone(),
                ..problem
            }),
        }
    }
    let (Some(event), Some(time), Some(distinct_id), Some(insert_id)) =
        (event, time, distinct_id, insert_id)
    else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut json = Vec::with_capacity(128 + 32 * properties.len());
    let event_json = EventJson {
        event: event.as_str(),
        time_ms: time.as_millis(),
        distinct_id: distinct_id.as_str(),
        insert_id: insert_id.as_str(),
        properties: &properties,
        ip_zero: c.ip_zero,
    };
    if let Err(e) = serde_json::to_writer(&mut json, &event_json) {
        // Only a map key that is not a string could fail, and every key here is one.
        return Err(vec![Problem::new(
            "",
            Origin::Record,
            "unserializable",
            e.to_string(),
        )]);
    }
    if let Err(e) = check_event_size(json.len()) {
        return Err(vec![Problem::new(
            e.field(),
            Origin::Record,
            e.rule(),
            e.to_string(),
        )]);
    }
    Ok(MappedRecord {
        key: insert_id.into_string(),
        json,
    })
}

fn keep<T>(problems: &mut Vec<Problem>, result: Result<T, Problem>) -> Option<T> {
    result.map_err(|p| problems.push(p)).ok()
}

fn event_name<'a>(
    field: &'a Field<EventName>,
    row: &[Value],
) -> Result<Cow<'a, EventName>, Problem> {
    match field {
        Field::Constant(name) => Ok(Cow::Borrowed(name)),
        Field::Column { index, origin } => {
            let value = &row[*index];
            let text = value.to_text().ok_or_else(|| {
                Problem::new(
                    "event",
                    origin.clone(),
                    "required",
                    "`event` is invalid: it is null; every event needs a name",
                )
            })?;
            EventName::parse(text.into_owned())
                .map(Cow::Owned)
                .map_err(|e| Problem::new(e.field(), origin.clone(), e.rule(), e.to_string()))
        }
    }
}

fn time(field: &Field<EventTime>, row: &[Value], now_ms: i64) -> Result<EventTime, Problem> {
    let problem = |e: TimeError, origin: &Origin| {
        Problem::new(e.field(), origin.clone(), e.rule(), e.to_string())
    };
    match field {
        Field::Constant(time) => time
            .check_window(now_ms)
            .map_err(|e| problem(e, &Origin::Constant)),
        Field::Column { index, origin } => EventTime::from_value(&row[*index])
            .and_then(|t| t.check_window(now_ms))
            .map_err(|e| problem(e, origin)),
    }
}

fn distinct_id<'a>(
    field: &'a Field<DistinctId>,
    row: &[Value],
) -> Result<Cow<'a, DistinctId>, Problem> {
    match field {
        Field::Constant(id) => Ok(Cow::Borrowed(id)),
        Field::Column { index, origin } => {
            let text = id_text("distinct_id", "event", &row[*index])
                .map_err(|e| Problem::new("distinct_id", origin.clone(), e.rule, e.detail))?;
            DistinctId::parse(text.into_owned())
                .map(Cow::Owned)
                .map_err(|e| Problem::new(e.field(), origin.clone(), e.rule(), e.to_string()))
        }
    }
}

fn insert_id(field: &InsertIdField, row: &[Value]) -> Result<InsertId, Problem> {
    match field {
        InsertIdField::Column { index, origin } => {
            let text = id_text("$insert_id", "event", &row[*index])
                .map_err(|e| Problem::new("$insert_id", origin.clone(), e.rule, e.detail))?;
            InsertId::parse(text.into_owned())
                .map_err(|e| Problem::new(e.field(), origin.clone(), e.rule(), e.to_string()))
        }
        InsertIdField::Derive { indices } => {
            let keys: Vec<Cow<'_, [u8]>> = indices.iter().map(|i| row[*i].key_bytes()).collect();
            let parts: Vec<&[u8]> = keys.iter().map(AsRef::as_ref).collect();
            Ok(InsertId::derive(&parts))
        }
    }
}

/// Checks a list or object property against Mixpanel's nesting, size and count limits.
fn check_value(name: &str, value: &Value) -> Result<(), Problem> {
    let result = match value {
        Value::Json(json) => check_property_value(name, json),
        Value::Array(_) => check_property_value(name, &value.to_json()),
        _ => Ok(()),
    };
    result.map_err(|e| Problem::new(e.field(), Origin::Record, e.rule(), e.to_string()))
}

#[cfg(test)]
mod tests;
