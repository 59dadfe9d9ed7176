//! The mapper's notable events, each written as one structured `tracing` event.

/// A row batch was mapped and its results published.
pub(crate) struct BatchMapped<'a> {
    pub run_id: &'a str,
    pub batch_id: &'a str,
    pub records: usize,
    pub skipped: u64,
    pub failed: u64,
}

impl BatchMapped<'_> {
    pub(crate) fn emit(&self) {
        tracing::debug!(
            run_id = self.run_id,
            batch_id = self.batch_id,
            records = self.records,
            skipped = self.skipped,
            failed = self.failed,
            "row batch mapped"
        );
        if self.failed > 0 {
            tracing::info!(
                run_id = self.run_id,
                batch_id = self.batch_id,
                failed = self.failed,
                "rows rejected by the mapping"
            );
        }
    }
}

/// A batch will be tried again later.
pub(crate) struct BatchRequeued<'a> {
    pub run_id: &'a str,
    pub batch_id: &'a str,
    pub reason: &'a str,
}

impl BatchRequeued<'_> {
    pub(crate) fn emit(&self) {
        tracing::warn!(
            run_id = self.run_id,
            batch_id = self.batch_id,
            reason = self.reason,
            "row batch requeued"
        );
    }
}
