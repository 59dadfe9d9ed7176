//! Failed records: rows that could not be loaded, with the reason, listed per run or activation.

use std::time::SystemTime;

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::StateError;
use crate::page::{Page, PageRequest, paginate};
use crate::stage::Stage;
use crate::store::StateStore;

/// A row that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedRecord {
    /// Id (UUID v7).
    pub id: String,
    /// The run it failed in.
    pub run_id: String,
    /// The run's activation.
    pub activation_id: String,
    /// Where it failed.
    pub stage: Stage,
    /// The batch that reported it.
    pub batch_id: String,
    /// 1-based row number in the run's query result.
    pub row_number: u64,
    /// The record key, when mapping got that far.
    pub key: String,
    /// The Mixpanel field at fault; empty when the whole record was refused.
    pub field: String,
    /// Short name of the broken rule.
    pub rule: String,
    /// Human-readable reason.
    pub message: String,
    /// The warehouse row, column → value.
    pub row: serde_json::Value,
    /// The Mixpanel JSON, when one was built.
    pub record_json: Option<String>,
    /// When it was recorded.
    pub created_at: SystemTime,
    /// The replay run that last sent it again, if any.
    pub replayed_by_run_id: Option<String>,
}

/// Which failed records to list. At least one of `run_id` and `activation_id` should be set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailedRecordFilter {
    /// Only this run's.
    pub run_id: Option<String>,
    /// Only this activation's.
    pub activation_id: Option<String>,
    /// Only this stage's.
    pub stage: Option<Stage>,
    /// Only those about this field.
    pub field: Option<String>,
    /// Only those that broke this rule.
    pub rule: Option<String>,
}

/// How many failed records share a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonCount {
    /// Stage.
    pub stage: Stage,
    /// Field at fault.
    pub field: String,
    /// Rule broken.
    pub rule: String,
    /// Number of records.
    pub count: u64,
}

/// A page of failed records with totals over the whole filter.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedRecordPage {
    /// The records, in (run, row number) order.
    pub page: Page<FailedRecord>,
    /// Counts by reason over every matching record, largest first.
    pub counts_by_reason: Vec<ReasonCount>,
    /// Number of matching records.
    pub total_count: u64,
}

const COLUMNS: &str = "id, run_id, activation_id, stage, batch_id, row_number, key, field, rule, \
     message, row, record_json, created_at, replayed_by_run_id";

const FILTER: &str =
    "($1::text IS NULL OR run_id = $1) AND ($2::text IS NULL OR activation_id = $2)
     AND ($3::text IS NULL OR stage = $3) AND ($4::text IS NULL OR field = $4)
     AND ($5::text IS NULL OR rule = $5)";

fn from_row(row: &Row) -> Result<FailedRecord, StateError> {
    let id: String = row.get(0);
    let stage: String = row.get(3);
    let row_number: i64 = row.get(5);
    Ok(FailedRecord {
        run_id: row.get(1),
        activation_id: row.get(2),
        stage: Stage::parse(&stage)
            .ok_or_else(|| StateError::corrupt(format!("stage of failed record `{id}`"), &stage))?,
        batch_id: row.get(4),
        row_number: u64::try_from(row_number).unwrap_or(0),
        key: row.get(6),
        field: row.get(7),
        rule: row.get(8),
        message: row.get(9),
        row: row.get(10),
        record_json: row.get(11),
        created_at: row.get(12),
        replayed_by_run_id: row.get(13),
        id,
    })
}

/// The page token: the last record's sort key.
fn token(record: &FailedRecord) -> String {
    format!("{} {} {}", record.run_id, record.row_number, record.id)
}

fn parse_token(token: &str) -> Option<(String, i64, String)> {
    let mut parts = token.splitn(3, ' ');
    let run = parts.next()?.to_owned();
    let row_number = parts.next()?.parse().ok()?;
    let id = parts.next()?.to_owned();
    Some((run, row_number, id))
}

impl StateStore {
    /// One failed record by id.
    pub async fn get_failed_record(&self, id: &str) -> Result<FailedRecord, StateError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM failed_records WHERE id = $1");
        let row = client
            .query_opt(&sql, &[&id])
            .await?
            .ok_or_else(|| StateError::not_found("failed record", id))?;
        from_row(&row)
    }

    /// Failed records matching `filter`, in (run, row number) order, with counts by reason.
    pub async fn list_failed_records(
        &self,
        filter: &FailedRecordFilter,
        page: &PageRequest,
    ) -> Result<FailedRecordPage, StateError> {
        let client = self.client().await?;
        let stage = filter.stage.map(Stage::as_str);
        let (after_run, after_row, after_id) = parse_token(&page.page_token)
            .map_or((None, None, None), |(r, n, i)| (Some(r), Some(n), Some(i)));
        let filter_params: [&(dyn ToSql + Sync); 5] = [
            &filter.run_id,
            &filter.activation_id,
            &stage,
            &filter.field,
            &filter.rule,
        ];
        let sql = format!(
            "SELECT {COLUMNS} FROM failed_records WHERE {FILTER}
               AND ($6::text IS NULL OR (run_id, row_number, id) > ($6, $7, $8))
             ORDER BY run_id, row_number, id LIMIT $9"
        );
        let fetch = page.fetch();
        let mut params: Vec<&(dyn ToSql + Sync)> = filter_params.to_vec();
        params.extend_from_slice(&[&after_run, &after_row, &after_id, &fetch]);
        let rows = client
            .query(&sql, &params)
            .await?
            .iter()
            .map(from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let sql = format!(
            "SELECT stage, field, rule, count(*) FROM failed_records WHERE {FILTER}
             GROUP BY stage, field, rule ORDER BY count(*) DESC, stage, field, rule"
        );
        let mut counts_by_reason = Vec::new();
        let mut total_count = 0;
        for row in client.query(&sql, &filter_params).await? {
            let stage: String = row.get(0);
            let count = u64::try_from(row.get::<_, i64>(3)).unwrap_or(0);
            total_count += count;
            counts_by_reason.push(ReasonCount {
                stage: Stage::parse(&stage).unwrap_or(Stage::Unspecified),
                field: row.get(1),
                rule: row.get(2),
                count,
            });
        }
        Ok(FailedRecordPage {
            page: paginate(rows, page, token),
            counts_by_reason,
            total_count,
        })
    }
}
