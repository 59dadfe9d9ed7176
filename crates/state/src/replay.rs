//! Replays: the stored rows of failed records, to send again through the pipeline in a run of
//! their own, and the mark that says which run sent them again.

use mixsync_proto::v1::{self, value::Kind};
use prost::Message as _;
use tokio_postgres::Row;

use crate::error::StateError;
use crate::store::StateStore;

/// Which failed records to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaySelection {
    /// Those of this run not yet replayed successfully.
    Run(String),
    /// These records, whatever their history.
    Ids(Vec<String>),
}

/// One failed record's row, as it is sent again.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRow {
    /// The failed record's id.
    pub id: String,
    /// Its run.
    pub run_id: String,
    /// Its activation.
    pub activation_id: String,
    /// 1-based row number in the original run's query result (kept by the replay).
    pub row_number: u64,
    /// Column names of `row`.
    pub columns: Vec<String>,
    /// The row as the warehouse returned it.
    pub row: v1::Row,
}

const SELECT: &str =
    "SELECT f.id, f.run_id, f.activation_id, f.row_number, f.columns, f.row_proto, f.row
     FROM failed_records f";

/// A failed record of the run that a replay has not fixed: never replayed, its replay run
/// failed or was cancelled, or the same row failed again in it.
const NOT_FIXED: &str = "(f.replayed_by_run_id IS NULL
     OR EXISTS (SELECT 1 FROM runs r WHERE r.id = f.replayed_by_run_id
                AND r.state IN ('failed', 'cancelled'))
     OR EXISTS (SELECT 1 FROM failed_records g WHERE g.run_id = f.replayed_by_run_id
                AND g.row_number = f.row_number))";

fn from_row(row: &Row) -> ReplayRow {
    let row_number: i64 = row.get(3);
    let columns: Option<Vec<String>> = row.get(4);
    let proto: Option<Vec<u8>> = row.get(5);
    let json: serde_json::Value = row.get(6);
    let decoded = proto.and_then(|bytes| v1::Row::decode(bytes.as_slice()).ok());
    let (columns, row_value) = match (columns, decoded) {
        (Some(columns), Some(decoded)) => (columns, decoded),
        // Recorded before rows were kept as they travelled: rebuild them from the JSON.
        _ => row_from_json(&json),
    };
    ReplayRow {
        id: row.get(0),
        run_id: row.get(1),
        activation_id: row.get(2),
        row_number: u64::try_from(row_number).unwrap_or(0),
        columns,
        row: row_value,
    }
}

/// Columns and values from a failed record's JSON row (types as JSON has them).
pub(crate) fn row_from_json(json: &serde_json::Value) -> (Vec<String>, v1::Row) {
    let Some(map) = json.as_object() else {
        return (Vec::new(), v1::Row::default());
    };
    let columns = map.keys().cloned().collect();
    let values = map.values().map(value_from_json).collect();
    (columns, v1::Row { values })
}

fn value_from_json(json: &serde_json::Value) -> v1::Value {
    use serde_json::Value as J;
    let kind = match json {
        J::Null => Kind::Null(0),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => n
            .as_i64()
            .map(Kind::IntValue)
            .or_else(|| n.as_f64().map(Kind::DoubleValue))
            .unwrap_or_else(|| Kind::Numeric(n.to_string())),
        J::String(s) => Kind::Text(s.clone()),
        J::Array(_) | J::Object(_) => Kind::Json(json.to_string()),
    };
    v1::Value { kind: Some(kind) }
}

/// Where a page of [`StateStore::replay_rows`] ends: the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayCursor {
    /// Run of the last failed record read.
    pub run_id: String,
    /// Row number of the last failed record read.
    pub row_number: u64,
    /// Its id.
    pub id: String,
}

impl StateStore {
    /// One page of the rows to send again, in row order (`row_number`, then id), after `after`;
    /// at most `limit` failed records are read, so a replay of millions of rows never holds more
    /// than a page. A row that failed twice (at two stages) comes back once: its later records
    /// are left out, also across pages when the caller passes the previous page's last row as
    /// `after`. Returns the rows and the cursor of the next page (`None` after the last page).
    pub async fn replay_rows(
        &self,
        selection: &ReplaySelection,
        after: Option<&ReplayCursor>,
        limit: usize,
    ) -> Result<(Vec<ReplayRow>, Option<ReplayCursor>), StateError> {
        let client = self.client().await?;
        let (after_number, after_id) = after.map_or((-1, String::new()), |c| {
            (
                i64::try_from(c.row_number).unwrap_or(i64::MAX),
                c.id.clone(),
            )
        });
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let rows = match selection {
            ReplaySelection::Run(run_id) => {
                let sql = format!(
                    "{SELECT} WHERE f.run_id = $1 AND {NOT_FIXED} AND (f.row_number, f.id) > ($2, $3)
                     ORDER BY f.row_number, f.id LIMIT $4"
                );
                client
                    .query(&sql, &[run_id, &after_number, &after_id, &limit])
                    .await?
            }
            ReplaySelection::Ids(ids) => {
                let sql = format!(
                    "{SELECT} WHERE f.id = ANY($1) AND (f.row_number, f.id) > ($2, $3)
                     ORDER BY f.row_number, f.id LIMIT $4"
                );
                client
                    .query(&sql, &[ids, &after_number, &after_id, &limit])
                    .await?
            }
        };
        let next = (rows.len() as i64 == limit)
            .then(|| rows.last().map(from_row))
            .flatten()
            .map(|last| ReplayCursor {
                run_id: last.run_id,
                row_number: last.row_number,
                id: last.id,
            });
        let mut out: Vec<ReplayRow> = Vec::with_capacity(rows.len());
        let mut previous = after.map(|c| (c.run_id.clone(), c.row_number));
        for row in &rows {
            let replay = from_row(row);
            // One row is sent once per replay (a row fails once per stage at most).
            let this = (replay.run_id.clone(), replay.row_number);
            if previous.as_ref() != Some(&this) {
                out.push(replay);
            }
            previous = Some(this);
        }
        Ok((out, next))
    }

    /// Records that `run_id` sends the failed records `ids` again.
    pub async fn mark_replayed(&self, ids: &[String], run_id: &str) -> Result<(), StateError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE failed_records SET replayed_by_run_id = $2 WHERE id = ANY($1)",
                &[&ids, &run_id],
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rows_come_back_with_their_types() {
        let (columns, row) =
            row_from_json(&serde_json::json!({"a": 1, "b": "x", "c": null, "d": {"k": 1}}));
        assert_eq!(columns, ["a", "b", "c", "d"]);
        let kinds: Vec<_> = row.values.into_iter().map(|v| v.kind).collect();
        assert_eq!(
            kinds,
            [
                Some(Kind::IntValue(1)),
                Some(Kind::Text("x".into())),
                Some(Kind::Null(0)),
                Some(Kind::Json("{\"k\":1}".into())),
            ]
        );
    }
}
