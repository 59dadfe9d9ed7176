//! Mapping a warehouse row to the profile updates `/engage` (users) or `/groups` (groups)
//! takes, checked against Mixpanel's rules.
//!
//! A row becomes one [`MappedRecord`] whose `json` is a JSON array of update objects, one per
//! operation the row uses, in the order `$set`, `$set_once`, `$add`, `$union`, `$append`,
//! `$remove`, `$unset` (Mixpanel takes exactly one operation per update object). Each object
//! starts with the profile's identifier — `{"$distinct_id": …` for users, `{"$group_key": …,
//! "$group_id": …` for groups — then the operation, then `"$ip": "0"` (users, when
//! [`ProfileOptions::ip_zero`]) and `"$ignore_time": true` (when
//! [`ProfileOptions::ignore_time`]). There is no `$token`: the loader inserts
//! `"$token": "<project token>",` right after each object's `{`.
//!
//! Per column, the mapping's `operation` chooses where its value goes (`$set` by default).
//! A `NULL` value (SQL `NULL`, JSON `null`, or a non-finite float) is left out, or goes into
//! `$unset` when the column has `unset_when_null`; a column mapped with the `$unset` operation
//! unsets its property on every row (its value is not read). `$add` takes numbers only and
//! `$union` lists of strings or numbers only (a Postgres array or a JSON list; an empty list
//! adds nothing and is left out). A row with nothing to send but its identifier sends
//! `{"$set": {}}`. Every update object, with a 64-byte allowance for the token, must be under
//! [`MAX_PROFILE_UPDATE_BYTES`]; a larger one fails the row (`update_too_large`).

mod compile;
mod ids;
mod json;

use std::borrow::Cow;

use mixsync_domain::rules::{MAX_PROFILE_UPDATE_BYTES, json_len};
use mixsync_domain::{FieldMapping, ObjectKind, ProfileError, ProfileOperation, Value};
use serde_json::Value as Json;

use crate::event::MappedRecord;
use crate::event::json::PropertyValue;
use crate::failure::{Origin, Problem, RowFailure};
use compile::{Compiled, Ident, Target, compile};
use ids::IdField;
use json::{Body, UpdateJson, Who};

pub use compile::RESERVED_PROFILE_PROPERTIES;

/// Bytes allowed for the `"$token":"…",` the loader adds to each update object.
pub const TOKEN_ALLOWANCE: usize = 64;
/// A list or object profile property may be at most this many bytes of JSON (256 KB).
pub const MAX_PROFILE_COLLECTION_BYTES: usize = 262_144;
/// The order of the update objects of one row.
pub const OPERATION_ORDER: [ProfileOperation; 7] = [
    ProfileOperation::Set,
    ProfileOperation::SetOnce,
    ProfileOperation::Add,
    ProfileOperation::Union,
    ProfileOperation::Append,
    ProfileOperation::Remove,
    ProfileOperation::Unset,
];

/// Per-activation switches for profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileOptions {
    /// Users only: add `"$ip": "0"` to each update so Mixpanel does not geolocate the profile
    /// from the loader's address.
    pub ip_zero: bool,
    /// Add `"$ignore_time": true` so the updates do not change the profile's `$last_seen`.
    pub ignore_time: bool,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            ip_zero: true,
            ignore_time: false,
        }
    }
}

/// A user or group profile mapping resolved against a result's columns: build it once per
/// batch and [`map`](ProfileMapper::map) each row. Mapping problems (an unknown column, a
/// missing identifier, …) do not fail construction; they fail every row, so every row is
/// reported.
#[derive(Debug, Clone)]
pub struct ProfileMapper {
    compiled: Result<Compiled, Vec<Problem>>,
}

impl ProfileMapper {
    /// Resolves `mapping` for `kind` ([`ObjectKind::UserProfiles`] or
    /// [`ObjectKind::GroupProfiles`]; events fail every row) against `columns` (the query's
    /// result columns, in order).
    pub fn new(
        kind: ObjectKind,
        mapping: &FieldMapping,
        options: &ProfileOptions,
        columns: &[String],
    ) -> Self {
        Self {
            compiled: compile(kind, mapping, options, columns),
        }
    }

    /// Maps `row` (values in column order), the `row_number`th (1-based) of the result, into
    /// its update objects (see the module docs), keyed by the `$distinct_id` (users) or
    /// `<group_key>/<group_id>` (groups), or every reason it cannot be sent.
    pub fn map(&self, row: &[Value], row_number: u64) -> Result<MappedRecord, Vec<RowFailure>> {
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
        map_row(c, row).map_err(at_row)
    }
}

/// Maps one row; see [`ProfileMapper`], which is faster for many rows of the same result.
pub fn map_profile(
    kind: ObjectKind,
    mapping: &FieldMapping,
    options: &ProfileOptions,
    columns: &[String],
    row: &[Value],
    row_number: u64,
) -> Result<MappedRecord, Vec<RowFailure>> {
    ProfileMapper::new(kind, mapping, options, columns).map(row, row_number)
}

fn map_row(c: &Compiled, row: &[Value]) -> Result<MappedRecord, Vec<Problem>> {
    let mut problems = Vec::new();
    let ids = match &c.target {
        Target::User { distinct_id } => {
            ident(IdField::DistinctId, distinct_id, row, &mut problems).map(|id| (id, None))
        }
        Target::Group { key, id } => {
            let key = ident(IdField::GroupKey, key, row, &mut problems);
            let id = ident(IdField::GroupId, id, row, &mut problems);
            key.zip(id).map(|(key, id)| (key, Some(id)))
        }
    };
    // Which operation each property goes to on this row, by property index.
    let mut actions: Vec<(ProfileOperation, usize)> = Vec::with_capacity(c.properties.len());
    for (i, p) in c.properties.iter().enumerate() {
        let value = &row[p.index];
        if p.operation == ProfileOperation::Unset {
            actions.push((ProfileOperation::Unset, i));
        } else if is_null(value) {
            if p.unset_when_null {
                actions.push((ProfileOperation::Unset, i));
            }
        } else {
            match check_value(p.operation, &p.name, value) {
                Ok(true) => actions.push((p.operation, i)),
                Ok(false) => {}
                Err((rule, detail)) => problems.push(Problem::new(
                    format!("{}.{}", p.operation.key(), p.name),
                    p.origin.clone(),
                    rule,
                    detail,
                )),
            }
        }
    }
    let Some((first, group_id)) = ids else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let who = match &group_id {
        None => Who::User(&first),
        Some(id) => Who::Group { key: &first, id },
    };
    let json = write_updates(c, row, who, &actions)?;
    let key = match group_id {
        None => first.into_owned(),
        Some(id) => format!("{first}/{id}"),
    };
    Ok(MappedRecord { key, json })
}

/// The row's update objects as a JSON array, each checked against the size limit.
fn write_updates(
    c: &Compiled,
    row: &[Value],
    who: Who<'_>,
    actions: &[(ProfileOperation, usize)],
) -> Result<Vec<u8>, Vec<Problem>> {
    let mut json = Vec::with_capacity(64 + 32 * actions.len());
    json.push(b'[');
    let mut problems = Vec::new();
    let mut properties: Vec<(&str, &Value)> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut written = 0usize;
    for operation in OPERATION_ORDER {
        let mut used = actions.iter().filter(|(op, _)| *op == operation).peekable();
        if used.peek().is_none() {
            continue;
        }
        let body = if operation == ProfileOperation::Unset {
            names.clear();
            names.extend(used.map(|(_, i)| c.properties[*i].name.as_str()));
            Body::Names(&names)
        } else {
            properties.clear();
            properties.extend(used.map(|(_, i)| {
                let p = &c.properties[*i];
                (p.name.as_str(), &row[p.index])
            }));
            Body::Properties(&properties)
        };
        let update = UpdateJson {
            who,
            operation,
            body,
            ip_zero: c.ip_zero,
            ignore_time: c.ignore_time,
        };
        if let Err(p) = write_update(&mut json, &mut written, &update, c, actions) {
            problems.push(p);
        }
    }
    if written == 0 {
        let update = UpdateJson {
            who,
            operation: ProfileOperation::Set,
            body: Body::Properties(&[]),
            ip_zero: c.ip_zero,
            ignore_time: c.ignore_time,
        };
        if let Err(p) = write_update(&mut json, &mut written, &update, c, actions) {
            problems.push(p);
        }
    }
    json.push(b']');
    if problems.is_empty() {
        Ok(json)
    } else {
        Err(problems)
    }
}

/// Appends one update object to the array in `json`, then checks its size.
fn write_update(
    json: &mut Vec<u8>,
    written: &mut usize,
    update: &UpdateJson<'_>,
    c: &Compiled,
    actions: &[(ProfileOperation, usize)],
) -> Result<(), Problem> {
    if *written > 0 {
        json.push(b',');
    }
    *written += 1;
    let start = json.len();
    if let Err(e) = serde_json::to_writer(&mut *json, update) {
        // Only a map key that is not a string could fail, and every key here is one.
        return Err(Problem::new(
            update.operation.key(),
            Origin::Record,
            "unserializable",
            e.to_string(),
        ));
    }
    let bytes = json.len() - start + TOKEN_ALLOWANCE;
    if bytes < MAX_PROFILE_UPDATE_BYTES {
        return Ok(());
    }
    let largest = match update.body {
        Body::Properties(properties) => properties
            .iter()
            .zip(actions.iter().filter(|(op, _)| *op == update.operation))
            .max_by_key(|((_, value), _)| json_len(&PropertyValue(value)))
            .map(|(_, (_, i))| c.properties[*i].origin.clone()),
        Body::Names(_) => None,
    };
    Err(Problem::new(
        update.operation.key(),
        largest.unwrap_or(Origin::Record),
        "update_too_large",
        format!(
            "the `{}` update is {bytes} bytes of JSON with the project token; Mixpanel takes updates under {MAX_PROFILE_UPDATE_BYTES} bytes",
            update.operation.key()
        ),
    ))
}

/// The identifier's text for this row, or `None` with its problem recorded.
fn ident<'a>(
    field: IdField,
    source: &'a Ident,
    row: &[Value],
    problems: &mut Vec<Problem>,
) -> Option<Cow<'a, str>> {
    match source {
        Ident::Constant(text) => Some(Cow::Borrowed(text)),
        Ident::Column { index, origin } => match field.read(&row[*index]) {
            Ok(text) => Some(Cow::Owned(text)),
            Err(e) => {
                problems.push(Problem::new(field.key(), origin.clone(), e.rule, e.detail));
                None
            }
        },
    }
}

/// `NULL`, JSON `null` and non-finite floats (which JSON cannot carry) are never sent.
fn is_null(value: &Value) -> bool {
    match value {
        Value::Null | Value::Json(Json::Null) => true,
        Value::Float(f) => !f.is_finite(),
        _ => false,
    }
}

/// Whether `value` can be sent with `operation`: `Ok(false)` when there is nothing to send
/// (an empty `$union` list), else the rule it breaks and why.
fn check_value(
    operation: ProfileOperation,
    name: &str,
    value: &Value,
) -> Result<bool, (&'static str, String)> {
    let bad = |expected: &'static str| {
        let e = ProfileError::BadValue {
            field: format!("{}.{name}", operation.key()),
            expected,
            found: preview(value),
        };
        (e.rule(), e.to_string())
    };
    match operation {
        ProfileOperation::Add if !is_number(value) => return Err(bad("a number")),
        ProfileOperation::Union => {
            const EXPECTED: &str = "a list of strings or numbers";
            let ok = match value {
                Value::Array(items) if items.is_empty() => return Ok(false),
                Value::Json(Json::Array(items)) if items.is_empty() => return Ok(false),
                Value::Array(items) => items.iter().all(is_union_item),
                Value::Json(Json::Array(items)) => {
                    items.iter().all(|i| i.is_string() || i.is_number())
                }
                _ => false,
            };
            if !ok {
                return Err(bad(EXPECTED));
            }
        }
        _ => {}
    }
    if matches!(
        value,
        Value::Array(_) | Value::Json(Json::Array(_) | Json::Object(_))
    ) {
        let bytes = json_len(&PropertyValue(value));
        if bytes > MAX_PROFILE_COLLECTION_BYTES {
            return Err((
                "max_collection_bytes",
                format!(
                    "`{}.{name}` is invalid: it is {bytes} bytes of JSON; list and object profile properties may be at most {MAX_PROFILE_COLLECTION_BYTES} bytes",
                    operation.key()
                ),
            ));
        }
    }
    Ok(true)
}

/// Whether `value` is sent as a JSON number (finite floats and numerics that parse).
fn is_number(value: &Value) -> bool {
    match value {
        Value::Int(_) => true,
        Value::Float(f) => f.is_finite(),
        Value::Numeric(text) => {
            text.parse::<i64>().is_ok()
                || text.parse::<u64>().is_ok()
                || text.parse::<f64>().is_ok_and(f64::is_finite)
        }
        Value::Json(j) => j.is_number(),
        _ => false,
    }
}

/// Whether an array element is sent as a string or a number.
fn is_union_item(value: &Value) -> bool {
    match value {
        Value::Float(f) => f.is_finite(),
        Value::Int(_)
        | Value::Numeric(_)
        | Value::Text(_)
        | Value::Uuid(_)
        | Value::Date { .. }
        | Value::Timestamp { .. } => true,
        Value::Json(j) => j.is_string() || j.is_number(),
        Value::Null | Value::Bool(_) | Value::Array(_) => false,
    }
}

/// The start of a value's JSON, for messages.
fn preview(value: &Value) -> String {
    const CHARS: usize = 64;
    let text = serde_json::to_string(&PropertyValue(value)).unwrap_or_default();
    match text.char_indices().nth(CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

#[cfg(test)]
mod tests;
