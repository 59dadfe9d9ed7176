//! Mixpanel's ingestion rules as constants and pure functions.
//!
//! Both the emulator (which enforces the rules) and the mapper (which must produce records that pass
//! them) read this module, so the two can never disagree about a limit. Each constant cites the
//! section of docs/mixpanel-api.md that says where its value comes from.

mod ids;
mod json;
mod text;
mod time;

pub use ids::{DENIED_IDS, is_denied_id, is_insert_id_char};
pub use json::{
    LimitError, check_event_properties, check_event_size, check_profile_update_size,
    check_property_value, json_depth, json_len,
};
pub use text::{TruncateUnit, truncate_str};
pub use time::epoch_to_ms;

/// At most this many events in one `/import` request (docs/mixpanel-api.md §1.5).
pub const MAX_IMPORT_EVENTS: usize = 2000;
/// At most this many bytes of uncompressed JSON in one `/import` request
/// (docs/mixpanel-api.md §1.5, 10 MB).
pub const MAX_IMPORT_BYTES: usize = 10_485_760;
/// The loader's own cap on an `/import` body: a little under [`MAX_IMPORT_BYTES`] (9.8 MiB, as
/// mp-import does) so that framing differences never push a batch over the server's limit.
pub const LOADER_IMPORT_BYTES: usize = 10_276_045;
/// An event's uncompressed JSON must be strictly smaller than this many bytes
/// (docs/mixpanel-api.md §1.5).
pub const MAX_EVENT_BYTES: usize = 1_048_576;
/// An event must have fewer than this many properties (docs/mixpanel-api.md §1.5).
pub const MAX_PROPERTIES: usize = 255;
/// A nested object must have fewer than this many keys (docs/mixpanel-api.md §1.5).
pub const MAX_NESTED_KEYS: usize = 255;
/// A property value may nest objects/lists at most this deep (see [`json_depth`])
/// (docs/mixpanel-api.md §1.5).
pub const MAX_NESTING_DEPTH: usize = 3;
/// A list must have fewer than this many items (docs/mixpanel-api.md §1.5).
pub const MAX_LIST_ITEMS: usize = 255;
/// A list or object event property may be at most this many bytes of JSON
/// (docs/mixpanel-api.md §1.6, 8 KB).
pub const MAX_COLLECTION_BYTES: usize = 8192;
/// An `$insert_id` is at most this many bytes (docs/mixpanel-api.md §1.6).
pub const MAX_INSERT_ID_BYTES: usize = 36;
/// String property values longer than this are truncated by Mixpanel (docs/mixpanel-api.md §1.6).
pub const MAX_STRING_BYTES: usize = 255;
/// Property names longer than this are truncated by Mixpanel (docs/mixpanel-api.md §1.6).
pub const MAX_PROPERTY_NAME_BYTES: usize = 255;
/// The earliest accepted event time, 1971-01-01T00:00:00Z, in epoch milliseconds
/// (docs/mixpanel-api.md §1.6).
pub const MIN_EVENT_TIME_MS: i64 = 31_536_000_000;
/// How far past the server's clock an event time may be, in milliseconds
/// (docs/mixpanel-api.md §1.6, 1 hour).
pub const MAX_FUTURE_MS: i64 = 3_600_000;
/// At most this many updates in one `/engage` request (docs/mixpanel-api.md §2.4).
pub const MAX_ENGAGE_UPDATES: usize = 2000;
/// mixsync's default cap on updates in one `/groups` request; Mixpanel documents 2000 but an older
/// limit of 200 may still apply (docs/mixpanel-api.md §3), so the default is conservative and
/// configurable.
pub const DEFAULT_MAX_GROUP_UPDATES: usize = 200;
/// An `/engage` or `/groups` update object must be at most this many bytes of JSON
/// (docs/mixpanel-api.md §2.4, §3).
pub const MAX_PROFILE_UPDATE_BYTES: usize = 1_048_576;
/// An epoch number at or above this is milliseconds, below it seconds
/// (docs/mixpanel-api.md §1.6: "by magnitude"). 10^10 seconds is the year 2286, 10^10 milliseconds
/// is 1970-04-26.
pub const SECONDS_MS_THRESHOLD: i64 = 10_000_000_000;
/// Property keys an event's `properties` object reserves for the required fields
/// (docs/mixpanel-api.md §1.4).
pub const RESERVED_EVENT_PROPERTIES: &[&str] = &["time", "distinct_id", "$insert_id"];
