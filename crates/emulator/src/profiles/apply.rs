//! Applying valid updates to the profile store with Mixpanel's semantics.

use serde_json::{Map, Value};

use super::update::{Op, Target, Update};
use crate::state::State;
use crate::store::{Profile, Profiles};

/// Applies one update to its project's profiles.
pub(crate) fn apply(state: &State, update: Update, now_ms: i64) {
    state.store.with_profiles(update.project, |profiles| {
        apply_to(profiles, update, now_ms);
    });
}

fn apply_to(profiles: &mut Profiles, update: Update, now_ms: i64) {
    let creates = !matches!(update.op, Op::Delete | Op::Unset(_) | Op::Remove(_));
    let profile = match (&update.target, creates) {
        (Target::User(id), true) => Some(profiles.users.entry(id.clone()).or_default()),
        (Target::User(id), false) => profiles.users.get_mut(id),
        (Target::Group { key, id }, true) => Some(
            profiles
                .groups
                .entry((key.clone(), id.clone()))
                .or_default(),
        ),
        (Target::Group { key, id }, false) => profiles.groups.get_mut(&(key.clone(), id.clone())),
    };
    if matches!(update.op, Op::Delete) {
        match &update.target {
            Target::User(id) => profiles.users.remove(id),
            Target::Group { key, id } => profiles.groups.remove(&(key.clone(), id.clone())),
        };
        return;
    }
    let Some(profile) = profile else {
        return;
    };
    change(&mut profile.properties, update.op);
    if !update.ignore_time {
        profile.last_seen = Some(now_ms);
    }
}

fn change(props: &mut Map<String, Value>, op: Op) {
    match op {
        Op::Set(values) => props.extend(values),
        Op::SetOnce(values) => {
            for (name, value) in values {
                props.entry(name).or_insert(value);
            }
        }
        Op::Add(values) => {
            for (name, delta) in values {
                let current = props.entry(name).or_insert(Value::from(0));
                if let Some(sum) = add(current, &delta) {
                    *current = sum;
                }
            }
        }
        Op::Union(values) => {
            for (name, items) in values {
                let list = as_list(props.entry(name).or_insert(Value::Array(vec![])));
                for item in items.as_array().into_iter().flatten() {
                    if !list.contains(item) {
                        list.push(item.clone());
                    }
                }
            }
        }
        Op::Append(values) => {
            for (name, item) in values {
                as_list(props.entry(name).or_insert(Value::Array(vec![]))).push(item);
            }
        }
        Op::Remove(values) => {
            for (name, item) in values {
                if let Some(Value::Array(list)) = props.get_mut(&name) {
                    list.retain(|v| *v != item);
                }
            }
        }
        Op::Unset(names) => {
            for name in names {
                props.shift_remove(&name);
            }
        }
        Op::Delete => {}
    }
}

/// The sum of two JSON numbers, integer if both are; `None` leaves a non-number unchanged.
fn add(current: &Value, delta: &Value) -> Option<Value> {
    match (current.as_i64(), delta.as_i64()) {
        (Some(a), Some(b)) => a.checked_add(b).map(Value::from),
        _ => {
            let sum = current.as_f64()? + delta.as_f64()?;
            serde_json::Number::from_f64(sum).map(Value::Number)
        }
    }
}

/// The property as a list; a scalar becomes a one-element list.
fn as_list(value: &mut Value) -> &mut Vec<Value> {
    if !value.is_array() {
        let scalar = std::mem::take(value);
        *value = Value::Array(if scalar.is_null() {
            vec![]
        } else {
            vec![scalar]
        });
    }
    match value {
        Value::Array(list) => list,
        _ => unreachable!("made a list above"),
    }
}

impl Profile {
    /// The inspection view of a profile.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::json!({ "properties": self.properties, "last_seen": self.last_seen })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn run(ops: Vec<Op>) -> Option<Profile> {
        let mut profiles = Profiles::default();
        for (i, op) in ops.into_iter().enumerate() {
            let update = Update {
                project: 1,
                target: Target::User("u".into()),
                op,
                ignore_time: i == 0,
            };
            apply_to(&mut profiles, update, 42);
        }
        profiles.users.get("u").cloned()
    }

    #[test]
    fn operations_follow_mixpanel_semantics() {
        let profile = run(vec![
            Op::Set(map(
                json!({"name": "Ada", "plan": "free", "n": 1, "tags": ["a"]}),
            )),
            Op::SetOnce(map(json!({"name": "Bob", "first_seen": "2024"}))),
            Op::Add(map(json!({"n": 2, "m": 1.5, "name": 3}))),
            Op::Union(map(json!({"tags": ["a", "b", "b"], "new": [1]}))),
            Op::Append(map(json!({"tags": "a"}))),
            Op::Remove(map(json!({"tags": "a"}))),
            Op::Unset(vec!["plan".into()]),
        ])
        .unwrap();
        assert_eq!(
            Value::Object(profile.properties),
            json!({"name": "Ada", "n": 3, "tags": ["b"], "first_seen": "2024", "m": 1.5, "new": [1]})
        );
        assert_eq!(profile.last_seen, Some(42));
    }

    #[test]
    fn delete_removes_and_unset_does_not_create() {
        assert!(run(vec![Op::Set(map(json!({"a": 1}))), Op::Delete]).is_none());
        assert!(run(vec![Op::Unset(vec!["a".into()])]).is_none());
        assert!(run(vec![Op::Remove(map(json!({"a": 1})))]).is_none());
    }

    #[test]
    fn ignore_time_leaves_last_seen_alone() {
        let profile = run(vec![Op::Set(map(json!({"a": 1})))]).unwrap();
        assert_eq!(profile.last_seen, None);
    }
}
