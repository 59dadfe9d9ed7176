//! Streaming a query's rows in batches, one batch in hand at a time.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use mixsync_domain::Value;

use super::{Warehouse, WarehouseError, decode_row, no_params, pg, prepare_reading, read_only};

/// How [`Warehouse::stream`] runs a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// The transaction's `statement_timeout` (`0`: none).
    pub statement_timeout: Duration,
    /// Rows per batch (at least 1).
    pub batch_rows: usize,
}

/// Consecutive rows of a query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The result's column names, shared by every batch.
    pub columns: Arc<[String]>,
    /// 0-based position of this batch.
    pub seq: u64,
    /// 1-based row number of `rows[0]` in the result.
    pub first_row_number: u64,
    /// The rows, each in column order.
    pub rows: Vec<Vec<Value>>,
    /// Whether this is the final batch (it may be empty when the result is).
    pub last: bool,
    /// Rows in the whole result; set on the last batch only, else 0.
    pub total_rows: u64,
}

/// What a completed [`Warehouse::stream`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSummary {
    /// Rows the query returned.
    pub total_rows: u64,
    /// Batches handed to the callback.
    pub batches: u64,
}

/// Why [`Warehouse::stream`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError<E> {
    /// The warehouse failed (the query, the connection, or a value).
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    /// The batch callback failed.
    #[error("handling a batch failed: {0}")]
    Sink(#[source] E),
}

impl Warehouse {
    /// Runs `query` in a `READ ONLY` transaction with `SET LOCAL statement_timeout`, streaming its
    /// rows (never collecting the result) and handing them to `on_batch` in batches of
    /// `options.batch_rows`. The next rows are read only after `on_batch` returns, so at most one
    /// batch is in memory; the last batch is flagged and carries the total (a result that is a
    /// whole number of batches does not end with an empty one; an empty result gives one empty
    /// last batch).
    ///
    /// An error, from the warehouse or from `on_batch`, rolls the transaction back and stops;
    /// batches already handed over stay handed over.
    pub async fn stream<F, Fut, E>(
        &self,
        query: &str,
        options: &StreamOptions,
        mut on_batch: F,
    ) -> Result<StreamSummary, StreamError<E>>
    where
        F: FnMut(Batch) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let batch_rows = options.batch_rows.max(1);
        let mut client = self.client.lock().await;
        let tx = read_only(&mut client, options.statement_timeout).await?;
        let (names, statement) = prepare_reading(&tx, query).await?;
        let columns: Arc<[String]> = names.into();
        let mut rows = pin!(tx.query_raw(&statement, no_params()).await.map_err(pg)?);

        let mut summary = StreamSummary {
            total_rows: 0,
            batches: 0,
        };
        let mut rows_in_hand = Vec::with_capacity(batch_rows);
        loop {
            let next = rows.try_next().await.map_err(pg)?;
            // A full batch is sent once the next row shows it is not the last one.
            if rows_in_hand.len() == batch_rows || next.is_none() {
                let last = next.is_none();
                let batch_len = rows_in_hand.len() as u64;
                let batch = Batch {
                    columns: columns.clone(),
                    seq: summary.batches,
                    first_row_number: summary.total_rows - batch_len + 1,
                    rows: std::mem::replace(&mut rows_in_hand, Vec::with_capacity(batch_rows)),
                    last,
                    total_rows: if last { summary.total_rows } else { 0 },
                };
                on_batch(batch).await.map_err(StreamError::Sink)?;
                summary.batches += 1;
            }
            let Some(row) = next else { break };
            rows_in_hand.push(decode_row(&row, &columns)?);
            summary.total_rows += 1;
        }
        tx.commit().await.map_err(pg)?;
        Ok(summary)
    }
}
