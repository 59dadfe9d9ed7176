//! Typed internal events (Vector's `internal_events`): one struct per notable thing, whose `emit`
//! writes one structured `tracing` event. Messages are lowercase, data is in fields, never a secret.

use std::time::Duration;

/// A request was answered.
pub(crate) struct RequestAnswered<'a> {
    pub object: &'static str,
    pub project_id: u64,
    pub records: usize,
    pub status: u16,
    pub message: &'a str,
}

impl RequestAnswered<'_> {
    pub(crate) fn emit(&self) {
        if (200..300).contains(&self.status) {
            tracing::debug!(
                object = self.object,
                project_id = self.project_id,
                records = self.records,
                status = self.status,
                "request accepted"
            );
        } else {
            tracing::info!(
                object = self.object,
                project_id = self.project_id,
                records = self.records,
                status = self.status,
                message = self.message,
                "request answered with an error"
            );
        }
    }
}

/// A request will be sent again after a wait.
pub(crate) struct RequestRetried<'a> {
    pub object: &'static str,
    pub project_id: u64,
    pub records: usize,
    pub attempt: u32,
    pub wait: Duration,
    pub reason: &'a str,
}

impl RequestRetried<'_> {
    pub(crate) fn emit(&self) {
        tracing::warn!(
            object = self.object,
            project_id = self.project_id,
            records = self.records,
            attempt = self.attempt,
            wait_ms = self.wait.as_millis() as u64,
            reason = self.reason,
            "request will be retried"
        );
    }
}

/// A request is sent again in two halves: it was too large, or Mixpanel refused some of its
/// records without saying which.
pub(crate) struct RequestSplit {
    pub object: &'static str,
    pub records: usize,
    pub reason: &'static str,
}

impl RequestSplit {
    pub(crate) fn emit(&self) {
        tracing::info!(
            object = self.object,
            records = self.records,
            reason = self.reason,
            "splitting the request in half"
        );
    }
}

/// Records were not resolved in time and go back to the queue.
pub(crate) struct RecordsDeferred<'a> {
    pub object: &'static str,
    pub records: usize,
    pub reason: &'a str,
}

impl RecordsDeferred<'_> {
    pub(crate) fn emit(&self) {
        tracing::warn!(
            object = self.object,
            records = self.records,
            reason = self.reason,
            "records handed back for redelivery"
        );
    }
}

/// Mixpanel refused the credentials.
pub(crate) struct CredentialsRefused<'a> {
    pub object: &'static str,
    pub reason: &'a str,
}

impl CredentialsRefused<'_> {
    pub(crate) fn emit(&self) {
        tracing::error!(
            object = self.object,
            reason = self.reason,
            "mixpanel refused the credentials"
        );
    }
}
