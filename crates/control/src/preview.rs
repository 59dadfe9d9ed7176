//! PreviewActivation: the first rows of the query, mapped exactly as a run would map them.
//! Nothing is sent and no run is recorded.
//!
//! `record_json` is what the loader sends for the row: for events the event object; for user
//! and group profiles the JSON array of update objects, each starting with
//! `"$token": "<project token>"` — a placeholder where the loader puts the target's project
//! token, which is a secret and never leaves control.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mixsync_domain::{ObjectKind, Row, Value};
use mixsync_mapper::{EventMapper, EventOptions, ProfileMapper, ProfileOptions, RowFailure};
use mixsync_proto::v1;
use mixsync_state::{ActivationSpec, StateStore};

use crate::convert::json_to_struct;
use crate::errors::{ApiError, ApiResult};
use crate::validate::open_warehouse;

/// Rows previewed when the request says 0.
pub(crate) const DEFAULT_LIMIT: u32 = 10;
/// The most rows a preview maps.
pub(crate) const MAX_LIMIT: u32 = 100;

/// Runs the query read-only with a row limit and maps each row.
pub(crate) async fn preview(
    state: &StateStore,
    spec: &ActivationSpec,
    limit: u32,
    prefix: &str,
) -> ApiResult<v1::PreviewActivationResponse> {
    let limit = match limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let wh = open_warehouse(state, &spec.warehouse_id, prefix).await?;
    let (columns, rows) = wh
        .preview(&spec.query, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|e| ApiError::invalid(format!("{prefix}.query"), e.to_string()))?;
    let mapper = Mapper::new(spec, &columns);
    let now_ms = now_ms();
    let shared: Arc<[String]> = columns.clone().into();
    let rows = rows
        .into_iter()
        .zip(1u64..)
        .map(|(values, row_number)| {
            let mapped = mapper.map(&values, row_number, now_ms);
            let row = Row {
                columns: Arc::clone(&shared),
                values,
            };
            let (record_json, errors) = match mapped {
                Ok(json) => (json, vec![]),
                Err(failures) => (
                    String::new(),
                    failures.iter().map(validation_error).collect(),
                ),
            };
            v1::PreviewRow {
                row_number,
                row: Some(json_to_struct(&row.to_json())),
                record_json,
                errors,
            }
        })
        .collect();
    Ok(v1::PreviewActivationResponse { columns, rows })
}

/// The mapper of the activation's object.
enum Mapper {
    Events(EventMapper),
    Profiles(ProfileMapper),
}

impl Mapper {
    fn new(spec: &ActivationSpec, columns: &[String]) -> Self {
        match spec.object {
            ObjectKind::Events => Self::Events(EventMapper::new(
                &spec.mapping,
                &EventOptions {
                    ip_zero: spec.options.ip_zero,
                },
                columns,
            )),
            kind @ (ObjectKind::UserProfiles | ObjectKind::GroupProfiles) => {
                Self::Profiles(ProfileMapper::new(
                    kind,
                    &spec.mapping,
                    &ProfileOptions {
                        ip_zero: spec.options.ip_zero,
                        ignore_time: spec.options.ignore_time,
                    },
                    columns,
                ))
            }
        }
    }

    /// The JSON the loader would send for the row.
    fn map(&self, row: &[Value], row_number: u64, now_ms: i64) -> Result<String, Vec<RowFailure>> {
        match self {
            Self::Events(mapper) => mapper
                .map(row, row_number, now_ms)
                .map(|r| String::from_utf8_lossy(&r.json).into_owned()),
            Self::Profiles(mapper) => mapper
                .map(row, row_number)
                .map(|r| with_token_placeholder(&r.json)),
        }
    }
}

/// The placeholder shown for the project token in previewed profile updates.
pub(crate) const TOKEN_PLACEHOLDER: &str = "<project token>";

/// A profile record's update objects with `"$token": "<project token>"` first in each, as the
/// loader sends them.
fn with_token_placeholder(json: &[u8]) -> String {
    let Ok(updates) =
        serde_json::from_slice::<Vec<serde_json::Map<String, serde_json::Value>>>(json)
    else {
        return String::from_utf8_lossy(json).into_owned();
    };
    let updates: Vec<serde_json::Map<String, serde_json::Value>> = updates
        .into_iter()
        .map(|update| {
            let mut with_token = serde_json::Map::with_capacity(update.len() + 1);
            with_token.insert("$token".into(), TOKEN_PLACEHOLDER.into());
            with_token.extend(update);
            with_token
        })
        .collect();
    serde_json::to_string(&updates).unwrap_or_else(|_| String::from_utf8_lossy(json).into_owned())
}

fn validation_error(f: &RowFailure) -> v1::ValidationError {
    v1::ValidationError {
        field: f.field.clone(),
        column: f.column.clone(),
        rule: f.rule.to_owned(),
        message: f.message.clone(),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_updates_show_a_token_placeholder_first() {
        let json = br#"[{"$distinct_id":"u1","$set":{"a":1},"$ip":"0"},{"$distinct_id":"u1","$unset":["b"],"$ip":"0"}]"#;
        assert_eq!(
            with_token_placeholder(json),
            r#"[{"$token":"<project token>","$distinct_id":"u1","$set":{"a":1},"$ip":"0"},{"$token":"<project token>","$distinct_id":"u1","$unset":["b"],"$ip":"0"}]"#
        );
    }
}
