//! `/_emulator/`: stored events, profiles and groups, stats, reset and the fault settings.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::faults::Faults;
use crate::reply;
use crate::state::State;

type Query = HashMap<String, String>;

fn project(state: &State, query: &Query) -> Result<u64, Response> {
    let raw = query
        .get("project_id")
        .ok_or_else(|| reply::plain_error(StatusCode::BAD_REQUEST, "project_id is required"))?;
    let id = raw.parse::<u64>().map_err(|_| {
        reply::plain_error(
            StatusCode::BAD_REQUEST,
            &format!("project_id must be a positive integer, got '{raw}'"),
        )
    })?;
    if state.store.has_project(id) {
        Ok(id)
    } else {
        Err(reply::plain_error(
            StatusCode::NOT_FOUND,
            &format!("unknown project {id}"),
        ))
    }
}

/// `GET /_emulator/events`
pub(crate) fn events(state: &State, query: &Query) -> Response {
    let project = match project(state, query) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let (event, distinct_id) = (query.get("event"), query.get("distinct_id"));
    // `limit` caps the events listed (not `total`), so a count of millions stays cheap.
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => usize::MAX,
        Some(Ok(limit)) => limit,
        Some(Err(_)) => {
            return reply::plain_error(
                StatusCode::BAD_REQUEST,
                "limit must be a non-negative integer",
            );
        }
    };
    let mut list = String::from("[");
    let mut total = 0usize;
    let mut listed = 0usize;
    state.store.for_each_event(project, |json| {
        if event.is_some() || distinct_id.is_some() {
            let Ok(v) = serde_json::from_str::<Value>(json) else {
                return;
            };
            let matches = |value: Option<&Value>, wanted: Option<&String>| {
                wanted.is_none_or(|w| value.and_then(Value::as_str) == Some(w.as_str()))
            };
            if !matches(v.get("event"), event)
                || !matches(v.pointer("/properties/distinct_id"), distinct_id)
            {
                return;
            }
        }
        total += 1;
        if listed == limit {
            return;
        }
        if listed > 0 {
            list.push(',');
        }
        list.push_str(json);
        listed += 1;
    });
    list.push(']');
    let body = format!(r#"{{"project_id":{project},"total":{total},"events":{list}}}"#);
    reply::raw(StatusCode::OK, "application/json", body)
}

/// `GET /_emulator/profiles`
pub(crate) fn profiles(state: &State, query: &Query) -> Response {
    let project = match project(state, query) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let wanted = query.get("distinct_id");
    let list = state
        .store
        .with_profiles(project, |profiles| {
            let mut list: Vec<(&String, Value)> = profiles
                .users
                .iter()
                .filter(|(id, _)| wanted.is_none_or(|w| w == *id))
                .map(|(id, p)| (id, p.to_json()))
                .collect();
            list.sort_by(|a, b| a.0.cmp(b.0));
            list.into_iter()
                .map(|(id, mut v)| {
                    let mut entry = serde_json::Map::new();
                    entry.insert("distinct_id".into(), json!(id));
                    if let Value::Object(rest) = &mut v {
                        entry.append(rest);
                    }
                    Value::Object(entry)
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    reply::json(
        StatusCode::OK,
        &json!({"project_id": project, "total": list.len(), "profiles": list}),
    )
}

/// `GET /_emulator/groups`
pub(crate) fn groups(state: &State, query: &Query) -> Response {
    let project = match project(state, query) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let Some(group_key) = query.get("group_key") else {
        return reply::plain_error(StatusCode::BAD_REQUEST, "group_key is required");
    };
    let wanted = query.get("group_id");
    let list = state
        .store
        .with_profiles(project, |profiles| {
            let mut list: Vec<(&String, Value)> = profiles
                .groups
                .iter()
                .filter(|((key, id), _)| key == group_key && wanted.is_none_or(|w| w == id))
                .map(|((_, id), p)| (id, p.to_json()))
                .collect();
            list.sort_by(|a, b| a.0.cmp(b.0));
            list.into_iter()
                .map(|(id, mut v)| {
                    let mut entry = serde_json::Map::new();
                    entry.insert("group_key".into(), json!(group_key));
                    entry.insert("group_id".into(), json!(id));
                    if let Value::Object(rest) = &mut v {
                        entry.append(rest);
                    }
                    Value::Object(entry)
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    reply::json(
        StatusCode::OK,
        &json!({"project_id": project, "group_key": group_key, "total": list.len(), "groups": list}),
    )
}

/// `GET /_emulator/revoked`: the service accounts whose secrets are revoked.
pub(crate) fn get_revoked(state: &State) -> Response {
    let revoked: Vec<String> = state.revoked.lock().iter().cloned().collect();
    reply::json(StatusCode::OK, &json!(revoked))
}

/// `PUT /_emulator/revoked`: a JSON array of service-account usernames whose secrets are revoked
/// from now on (replacing the list; `[]` restores them all).
pub(crate) fn put_revoked(state: &State, body: &[u8]) -> Response {
    match serde_json::from_slice::<Vec<String>>(body) {
        Ok(names) => {
            *state.revoked.lock() = names.into_iter().collect();
            get_revoked(state)
        }
        Err(e) => reply::plain_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "invalid revoked list: {e} (expected a JSON array of service-account usernames)"
            ),
        ),
    }
}

/// `GET /_emulator/stats`
pub(crate) fn stats(state: &State) -> Response {
    let mut stats = state.stats.to_json();
    stats["projects"] = state.limiter.traffic_json();
    reply::json(StatusCode::OK, &stats)
}

/// `POST /_emulator/reset`
pub(crate) fn reset(state: &State) -> Response {
    state.reset();
    reply::raw(StatusCode::NO_CONTENT, "text/plain", "")
}

/// `GET /_emulator/faults`
pub(crate) fn get_faults(state: &State) -> Response {
    reply::json(StatusCode::OK, &state.faults.get())
}

/// `PUT /_emulator/faults`
pub(crate) fn put_faults(state: &State, body: &[u8]) -> Response {
    let object = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(object)) => object,
        Ok(_) => {
            return reply::plain_error(
                StatusCode::BAD_REQUEST,
                "invalid fault settings: expected a JSON object",
            );
        }
        Err(e) => {
            return reply::plain_error(
                StatusCode::BAD_REQUEST,
                &format!("invalid fault settings: {e}"),
            );
        }
    };
    let faults: Faults = match serde_json::from_value(serde_json::Value::Object(object)) {
        Ok(f) => f,
        Err(e) => {
            return reply::plain_error(
                StatusCode::BAD_REQUEST,
                &format!("invalid fault settings: {e}"),
            );
        }
    };
    if let Err(e) = faults.validate() {
        return reply::plain_error(StatusCode::BAD_REQUEST, &e);
    }
    state.faults.set(faults.clone());
    reply::json(StatusCode::OK, &faults)
}
