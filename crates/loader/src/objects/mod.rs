//! The Mixpanel objects a loader can send. Each is a small set of files (config, encoder, request
//! builder, response parser) on the shared machinery: batching, gzip, rate limit, retry and
//! acknowledgement are written once, in the crate root, and no object has its own retry loop.
//! User and group profiles share the update-object encoding and answer of [`profiles`].

pub mod events;
mod profiles;

pub use profiles::Profiles;

use bytes::Bytes;

use crate::batcher::{BatchLimits, RecordSize};
use crate::http::{PreparedRequest, Reply};
use crate::target::Target;

/// The rule name of a record Mixpanel refused (its own message says why).
pub const RULE_REJECTED: &str = "mixpanel_rejected";
/// The rule name of a record too large to send even alone (413).
pub const RULE_TOO_LARGE: &str = "mixpanel_too_large";
/// The rule name of a record the loader cannot send at all (not valid JSON).
pub const RULE_INVALID: &str = "invalid_record";
/// The rule name of a record not loaded because Mixpanel refused the run's credentials or
/// project (401/403/404): it is kept as a failed record, to replay once that is fixed.
pub const RULE_RUN_FAILED: &str = "run_failed";

/// Why one record was not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    /// The Mixpanel field at fault (`properties.time`, `$insert_id`), empty for the whole record.
    pub field: String,
    /// Short rule name ([`RULE_REJECTED`], [`RULE_TOO_LARGE`], [`RULE_INVALID`]).
    pub rule: &'static str,
    /// Mixpanel's own message where it gave one.
    pub message: String,
}

/// A failure Mixpanel attributed to one record of a request, by 0-based index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedFailure {
    /// Position in the request.
    pub index: usize,
    /// The field at fault.
    pub field: String,
    /// Mixpanel's message.
    pub message: String,
}

/// What an object reads from Mixpanel's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedReply {
    /// Per-record failures, when the answer lists them.
    pub failures: Vec<IndexedFailure>,
    /// Mixpanel's message for the request as a whole (its `error`, or the status and body).
    pub message: String,
    /// Mixpanel refused at least one record without saying which (`/engage`'s `status: 0`): the
    /// sender bisects the request to find out.
    pub unattributed: bool,
}

/// A request could not be built; the target is misconfigured.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// One kind of Mixpanel record: how to batch, encode, send and read the answer.
pub trait Object: Send + Sync + 'static {
    /// The object's name in logs (`events`).
    fn name(&self) -> &'static str;

    /// How large one request may get.
    fn batch_limits(&self) -> BatchLimits;

    /// Units and bytes `record` adds to a request body (with its framing), as counted by
    /// [`Object::batch_limits`].
    fn record_size(&self, record: &[u8]) -> RecordSize;

    /// Refuses a record that can never be sent, before it is batched with others it would spoil.
    fn check_record(&self, record: &[u8]) -> Result<(), RecordFailure>;

    /// The request for `records` to `target`, body encoded and compressed.
    fn build_request(
        &self,
        target: &Target,
        records: &[Bytes],
    ) -> Result<PreparedRequest, BuildError>;

    /// Reads Mixpanel's answer to a request of `records` records.
    fn parse_reply(&self, reply: &Reply, records: usize) -> ParsedReply;
}

/// `{base_url}/{path}` of `target`, refusing base URLs that are not http(s).
pub(crate) fn endpoint(target: &Target, path: &str) -> Result<reqwest::Url, BuildError> {
    let base = target.base_url.trim_end_matches('/');
    let url = reqwest::Url::parse(&format!("{base}/{path}")).map_err(|e| {
        BuildError(format!(
            "the target's base URL `{}` is not a valid URL: {e}",
            target.base_url
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BuildError(format!(
            "the target's base URL `{}` must start with https:// (or http:// for the emulator)",
            target.base_url
        )));
    }
    Ok(url)
}

/// `HTTP 404: <body>` for answers without a usable message, the body cut to a readable length.
pub(crate) fn fallback_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let cut: String = text.chars().take(300).collect();
    if cut.is_empty() {
        format!("HTTP {status} with an empty body")
    } else if cut.len() < text.len() {
        format!("HTTP {status}: {cut}…")
    } else {
        format!("HTTP {status}: {cut}")
    }
}
