//! Events, sent to `POST /import` (docs/mixpanel-api.md §1).

mod config;
mod encoder;
mod request_builder;
mod response;

use bytes::Bytes;

pub use config::EventsConfig;
pub use encoder::encode;

use crate::batcher::{BatchLimits, RecordSize};
use crate::http::{PreparedRequest, Reply};
use crate::objects::{BuildError, Object, ParsedReply, RecordFailure};
use crate::target::Target;

/// The events object.
#[derive(Debug, Clone, Copy, Default)]
pub struct Events {
    config: EventsConfig,
}

impl Events {
    /// Events with these batch limits.
    pub fn new(config: EventsConfig) -> Self {
        Events { config }
    }
}

impl Object for Events {
    fn name(&self) -> &'static str {
        "events"
    }

    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_units: self.config.max_batch_events,
            // `record_size` counts one framing byte per record; the closing `]` is the last one.
            max_bytes: self.config.max_batch_bytes.saturating_sub(1),
        }
    }

    fn record_size(&self, record: &[u8]) -> RecordSize {
        RecordSize {
            units: 1,
            bytes: encoder::record_size(record),
        }
    }

    fn check_record(&self, record: &[u8]) -> Result<(), RecordFailure> {
        encoder::check(record)
    }

    fn build_request(
        &self,
        target: &Target,
        records: &[Bytes],
    ) -> Result<PreparedRequest, BuildError> {
        request_builder::build(target, records)
    }

    fn parse_reply(&self, reply: &Reply, records: usize) -> ParsedReply {
        response::parse(reply, records)
    }
}
