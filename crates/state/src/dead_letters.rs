//! Dead letters: every message taken from the dead-letter queue, kept whole (body and headers)
//! whether or not it could be decoded, so nothing a service gave up on is lost.

use std::collections::BTreeMap;
use std::time::SystemTime;

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::StateError;
use crate::ids::new_id;
use crate::page::{Page, PageRequest, paginate};
use crate::stage::Stage;
use crate::store::StateStore;

/// A dead letter to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadLetter {
    /// The run, when known.
    pub run_id: Option<String>,
    /// The activation, when known.
    pub activation_id: Option<String>,
    /// The batch, when known.
    pub batch_id: Option<String>,
    /// The stage that gave up.
    pub stage: Stage,
    /// The (unprefixed) queue the original was consumed from.
    pub queue: String,
    /// Why it was dead-lettered.
    pub reason: String,
    /// The original headers.
    pub headers: BTreeMap<String, String>,
    /// The original body, unchanged.
    pub original: Vec<u8>,
    /// Failed records made from it.
    pub failed_records: u64,
}

/// A kept dead letter.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterEntry {
    /// Id (UUID v7, so ids sort by arrival).
    pub id: String,
    /// What was kept.
    pub letter: NewDeadLetter,
    /// When control received it.
    pub received_at: SystemTime,
}

/// A page of dead letters with the total over the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterPage {
    /// Newest first.
    pub page: Page<DeadLetterEntry>,
    /// Number of dead letters matching.
    pub total_count: u64,
}

const COLUMNS: &str = "id, run_id, activation_id, batch_id, stage, queue, reason, headers, \
     original, failed_records, received_at";

fn from_row(row: &Row) -> DeadLetterEntry {
    let stage: String = row.get(4);
    let headers: serde_json::Value = row.get(7);
    let failed_records: i64 = row.get(9);
    DeadLetterEntry {
        id: row.get(0),
        letter: NewDeadLetter {
            run_id: row.get(1),
            activation_id: row.get(2),
            batch_id: row.get(3),
            stage: Stage::parse(&stage).unwrap_or(Stage::Unspecified),
            queue: row.get(5),
            reason: row.get(6),
            headers: serde_json::from_value(headers).unwrap_or_default(),
            original: row.get(8),
            failed_records: u64::try_from(failed_records).unwrap_or(0),
        },
        received_at: row.get(10),
    }
}

/// Postgres text cannot hold U+0000.
fn clean(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

impl StateStore {
    /// Keeps a dead letter; returns its id.
    pub async fn insert_dead_letter(&self, letter: &NewDeadLetter) -> Result<String, StateError> {
        let client = self.client().await?;
        let id = new_id();
        let headers: BTreeMap<String, String> = letter
            .headers
            .iter()
            .map(|(k, v)| (clean(k), clean(v)))
            .collect();
        let headers = serde_json::to_value(headers)
            .map_err(|e| StateError::corrupt("dead letter headers", e))?;
        let opt = |s: &Option<String>| s.as_deref().map(clean).filter(|s| !s.is_empty());
        let failed = i64::try_from(letter.failed_records).unwrap_or(i64::MAX);
        let params: [&(dyn ToSql + Sync); 10] = [
            &id,
            &opt(&letter.run_id),
            &opt(&letter.activation_id),
            &opt(&letter.batch_id),
            &letter.stage.as_str(),
            &clean(&letter.queue),
            &clean(&letter.reason),
            &headers,
            &letter.original,
            &failed,
        ];
        client
            .execute(
                "INSERT INTO dead_letters (id, run_id, activation_id, batch_id, stage, queue, reason, headers, original, failed_records)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &params,
            )
            .await?;
        Ok(id)
    }

    /// Kept dead letters, newest first; only `run_id`'s when given.
    pub async fn list_dead_letters(
        &self,
        run_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<DeadLetterPage, StateError> {
        let client = self.client().await?;
        let after = Some(page.page_token.as_str()).filter(|t| !t.is_empty());
        let sql = format!(
            "SELECT {COLUMNS} FROM dead_letters
             WHERE ($1::text IS NULL OR run_id = $1) AND ($2::text IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3"
        );
        let items = client
            .query(&sql, &[&run_id, &after, &page.fetch()])
            .await?
            .iter()
            .map(from_row)
            .collect();
        let total: i64 = client
            .query_one(
                "SELECT count(*) FROM dead_letters WHERE ($1::text IS NULL OR run_id = $1)",
                &[&run_id],
            )
            .await?
            .get(0);
        Ok(DeadLetterPage {
            page: paginate(items, page, |e: &DeadLetterEntry| e.id.clone()),
            total_count: u64::try_from(total).unwrap_or(0),
        })
    }
}
