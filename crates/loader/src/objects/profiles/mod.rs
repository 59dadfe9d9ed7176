//! What `/engage` (user profiles) and `/groups` (group profiles) share
//! (docs/mixpanel-api.md §2, §3): a record is a JSON array of update objects for one profile; a
//! request is the flat array of its records' updates with the target's `$token` put into each, sent
//! as plain JSON with `?verbose=1`; the answer is `{"status":1|0,"error":…}` for the request as a
//! whole.

pub(crate) mod encoder;
pub(crate) mod request_builder;
pub(crate) mod response;

use bytes::Bytes;

use crate::batcher::{BatchLimits, RecordSize};
use crate::config::ProfilesConfig;
use crate::http::{PreparedRequest, Reply};
use crate::objects::{BuildError, Object, ParsedReply, RecordFailure};
use crate::target::Target;

/// A profiles object: user profiles to `POST /engage`, or group profiles to `POST /groups`. A
/// record is the JSON array of one profile's update objects; requests count updates, not
/// records, and never split a record.
#[derive(Debug, Clone, Copy)]
pub struct Profiles {
    name: &'static str,
    endpoint: &'static str,
    max_batch_updates: usize,
    max_batch_bytes: usize,
}

impl Profiles {
    /// User profiles (`/engage`) with these batch limits.
    pub fn users(config: ProfilesConfig) -> Self {
        Self {
            name: "user_profiles",
            endpoint: "engage",
            max_batch_updates: config.max_batch_updates,
            max_batch_bytes: config.max_batch_bytes,
        }
    }

    /// Group profiles (`/groups`) with these batch limits.
    pub fn groups(config: ProfilesConfig) -> Self {
        Self {
            name: "group_profiles",
            endpoint: "groups",
            max_batch_updates: config.max_batch_updates,
            max_batch_bytes: config.max_batch_bytes,
        }
    }
}

impl Object for Profiles {
    fn name(&self) -> &'static str {
        self.name
    }

    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_units: self.max_batch_updates,
            // `record_size` counts one framing byte per update; the opening `[` is the extra one.
            max_bytes: self.max_batch_bytes.saturating_sub(1),
        }
    }

    fn record_size(&self, record: &[u8]) -> RecordSize {
        encoder::record_size(record)
    }

    fn check_record(&self, record: &[u8]) -> Result<(), RecordFailure> {
        encoder::check(record)
    }

    fn build_request(
        &self,
        target: &Target,
        records: &[Bytes],
    ) -> Result<PreparedRequest, BuildError> {
        request_builder::build(target, self.endpoint, records)
    }

    fn parse_reply(&self, reply: &Reply, _records: usize) -> ParsedReply {
        response::parse(reply)
    }
}
