//! The extractor's notable events, each written as one structured `tracing` event.

use std::time::Duration;

/// A batch of rows was published.
pub(crate) struct BatchPublished<'a> {
    pub run_id: &'a str,
    pub seq: u64,
    pub rows: usize,
}

impl BatchPublished<'_> {
    pub(crate) fn emit(&self) {
        tracing::debug!(
            run_id = self.run_id,
            seq = self.seq,
            rows = self.rows,
            "row batch published"
        );
    }
}

/// A query was read to the end.
pub(crate) struct ExtractionFinished<'a> {
    pub run_id: &'a str,
    pub total_rows: u64,
    pub batches: u64,
    pub elapsed: Duration,
}

impl ExtractionFinished<'_> {
    pub(crate) fn emit(&self) {
        tracing::info!(
            run_id = self.run_id,
            total_rows = self.total_rows,
            batches = self.batches,
            elapsed_ms = self.elapsed.as_millis() as u64,
            "extraction finished"
        );
    }
}

/// A run was cancelled: reading stopped after `rows` rows.
pub(crate) struct ExtractionCancelled<'a> {
    pub run_id: &'a str,
    pub rows: u64,
    pub batches: u64,
}

impl ExtractionCancelled<'_> {
    pub(crate) fn emit(&self) {
        tracing::info!(
            run_id = self.run_id,
            rows = self.rows,
            batches = self.batches,
            "extraction cancelled"
        );
    }
}

/// A run cannot be extracted; it is reported as failed.
pub(crate) struct ExtractionFailed<'a> {
    pub run_id: &'a str,
    pub message: &'a str,
}

impl ExtractionFailed<'_> {
    pub(crate) fn emit(&self) {
        tracing::warn!(
            run_id = self.run_id,
            message = self.message,
            "extraction failed"
        );
    }
}

/// A request will be tried again later.
pub(crate) struct RequestRequeued<'a> {
    pub run_id: &'a str,
    pub reason: &'a str,
}

impl RequestRequeued<'_> {
    pub(crate) fn emit(&self) {
        tracing::warn!(
            run_id = self.run_id,
            reason = self.reason,
            "extract request requeued"
        );
    }
}
