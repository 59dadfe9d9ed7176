//! PreviewActivation: the first rows of the query, mapped exactly as a run would map them.
//! Nothing is sent and no run is recorded.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mixsync_domain::{ObjectKind, Row};
use mixsync_mapper::{EventMapper, EventOptions, RowFailure};
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
    if spec.object != ObjectKind::Events {
        return Err(ApiError::Unimplemented(
            "previewing user and group profile activations is not available yet; events previews are",
        ));
    }
    let limit = match limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let wh = open_warehouse(state, &spec.warehouse_id, prefix).await?;
    let (columns, rows) = wh
        .preview(&spec.query, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|e| ApiError::invalid(format!("{prefix}.query"), e.to_string()))?;
    let options = EventOptions {
        ip_zero: spec.options.ip_zero,
    };
    let mapper = EventMapper::new(&spec.mapping, &options, &columns);
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
                Ok(record) => (String::from_utf8_lossy(&record.json).into_owned(), vec![]),
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
