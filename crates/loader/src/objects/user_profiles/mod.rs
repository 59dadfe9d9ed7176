//! User profiles, sent to `POST /engage` (`mixpanel-api.md` §2). A record is the JSON array of one
//! profile's update objects; requests count updates, not records, and never split a record.

mod config;

use bytes::Bytes;

pub use config::UserProfilesConfig;
pub(crate) use config::max_batch_bytes;

use super::updates::{encoder, request_builder, response};
use crate::batcher::{BatchLimits, RecordSize};
use crate::http::{PreparedRequest, Reply};
use crate::objects::{BuildError, Object, ParsedReply, RecordFailure};
use crate::target::Target;

/// The user profiles object.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserProfiles {
    config: UserProfilesConfig,
}

impl UserProfiles {
    /// User profiles with these batch limits.
    pub fn new(config: UserProfilesConfig) -> Self {
        UserProfiles { config }
    }
}

impl Object for UserProfiles {
    fn name(&self) -> &'static str {
        "user_profiles"
    }

    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_units: self.config.max_batch_updates,
            // `record_size` counts one framing byte per update; the opening `[` is the extra one.
            max_bytes: self.config.max_batch_bytes.saturating_sub(1),
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
        request_builder::build(target, "engage", records)
    }

    fn parse_reply(&self, reply: &Reply, _records: usize) -> ParsedReply {
        response::parse(reply)
    }
}
