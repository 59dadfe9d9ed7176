//! The rules for one profile update (CONTRACT.md, "Per update").

use mixsync_domain::rules;
use serde_json::{Map, Value};

use crate::state::State;

/// Users or groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    User,
    Group,
}

/// Whose profile an update changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    User(String),
    Group { key: String, id: String },
}

/// A profile operation with a checked value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Set(Map<String, Value>),
    SetOnce(Map<String, Value>),
    Add(Map<String, Value>),
    Union(Map<String, Value>),
    Append(Map<String, Value>),
    Remove(Map<String, Value>),
    Unset(Vec<String>),
    Delete,
}

/// A valid update.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Update {
    pub(crate) project: u64,
    pub(crate) target: Target,
    pub(crate) op: Op,
    pub(crate) ignore_time: bool,
}

const OPERATIONS: [&str; 8] = [
    "$set",
    "$set_once",
    "$add",
    "$union",
    "$append",
    "$remove",
    "$unset",
    "$delete",
];
const MODIFIERS: [&str; 6] = [
    "$ip",
    "$ignore_time",
    "$time",
    "$ignore_alias",
    "$latitude",
    "$longitude",
];

/// Judges one update; the error is the message for the `verbose` answer.
pub(crate) fn judge(
    value: &Value,
    size: usize,
    kind: Kind,
    state: &State,
) -> Result<Update, String> {
    if size >= rules::MAX_PROFILE_UPDATE_BYTES {
        return Err(format!(
            "update is too large: {size} bytes (must be under {})",
            rules::MAX_PROFILE_UPDATE_BYTES
        ));
    }
    let Value::Object(update) = value else {
        return Err("update must be an object".into());
    };
    let token = match update.get("$token") {
        Some(Value::String(t)) if !t.is_empty() => t,
        _ => return Err("$token, missing or empty".into()),
    };
    let project = state
        .project_by_token(token)
        .ok_or_else(|| "$token, invalid token".to_owned())?
        .id;
    let (target, id_keys): (Target, &[&str]) = match kind {
        Kind::User => (
            Target::User(id_text(update.get("$distinct_id"), "$distinct_id")?),
            &["$distinct_id"],
        ),
        Kind::Group => {
            let key = match update.get("$group_key") {
                Some(Value::String(k)) if !k.is_empty() => k.clone(),
                _ => return Err("$group_key, missing or empty".into()),
            };
            let id = id_text(update.get("$group_id"), "$group_id")?;
            (Target::Group { key, id }, &["$group_key", "$group_id"])
        }
    };
    let ops: Vec<&str> = update
        .keys()
        .map(String::as_str)
        .filter(|k| OPERATIONS.contains(k))
        .collect();
    if ops.len() != 1 {
        return Err(format!(
            "exactly one operation is required, found {}",
            ops.len()
        ));
    }
    let op_key = ops[0];
    let op = operation(op_key, &update[op_key])
        .map_err(|reason| format!("{op_key}, invalid value: {reason}"))?;
    if let Some(key) = update.keys().map(String::as_str).find(|k| {
        *k != "$token" && !id_keys.contains(k) && !OPERATIONS.contains(k) && !MODIFIERS.contains(k)
    }) {
        return Err(format!("unexpected key '{key}'"));
    }
    let ignore_time = matches!(update.get("$ignore_time"), Some(Value::Bool(true)));
    Ok(Update {
        project,
        target,
        op,
        ignore_time,
    })
}

/// A distinct id or group id: a non-empty string, or a number used as its decimal text.
fn id_text(value: Option<&Value>, name: &str) -> Result<String, String> {
    match value {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(format!("{name}, missing or empty")),
    }
}

fn operation(key: &str, value: &Value) -> Result<Op, String> {
    if key == "$delete" {
        return Ok(Op::Delete);
    }
    if key == "$unset" {
        let Value::Array(names) = value else {
            return Err("must be a list of property names".into());
        };
        if names.is_empty() {
            return Err("must not be empty".into());
        }
        return names
            .iter()
            .map(|n| {
                n.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "must be a list of property names".to_owned())
            })
            .collect::<Result<_, _>>()
            .map(Op::Unset);
    }
    let Value::Object(map) = value else {
        return Err("must be an object".into());
    };
    let map = map.clone();
    match key {
        "$set" => Ok(Op::Set(map)),
        "$set_once" => Ok(Op::SetOnce(map)),
        "$append" => Ok(Op::Append(map)),
        "$remove" => Ok(Op::Remove(map)),
        "$add" => match map.iter().find(|(_, v)| !v.is_number()) {
            Some((name, _)) => Err(format!("'{name}' must be a number")),
            None => Ok(Op::Add(map)),
        },
        "$union" => match map.iter().find(|(_, v)| !v.is_array()) {
            Some((name, _)) => Err(format!("'{name}' must be a list")),
            None => Ok(Op::Union(map)),
        },
        _ => Err(format!("unknown operation {key}")),
    }
}
