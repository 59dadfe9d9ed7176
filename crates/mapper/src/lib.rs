//! mixsync's mapper service (`mixsync serve mapper`) and the mapping it applies.
//!
//! [`map_event`] / [`EventMapper`] turn one warehouse row into the exact event JSON `/import`
//! takes, checked against Mixpanel's rules (the domain newtypes and limits), or into
//! [`RowFailure`]s naming the row, the column and the rule. Control's preview uses the same
//! functions, so a preview shows exactly what a run sends.
//!
//! The service ([`run`]) consumes `RowBatch`es from `mixsync.rows` and, per batch, maps every
//! row with the mapper of the run's object ([`EventMapper`] or [`ProfileMapper`]), hashes each
//! record, reports later rows of a key already seen in the run as `duplicate_key` failures,
//! skips records unchanged since the activation's sync snapshot (unless the run is a full
//! resync), publishes the rest as one `RecordBatch` (same batch id) to the object's load queue
//! and a `Progress` report (stage `MAP`: skipped, and every failed row with its reason), and
//! only then acks the batch.
//!
//! The rules records are checked against: docs/mixpanel-api.md §1.6 (events), §2.2 and §3
//! (profiles). How the sync snapshot decides what is sent, and the mapper's place in the pipeline:
//! docs/architecture.md ("Message flow", "Accounting invariants").

mod batch;
mod columns;
mod config;
mod event;
mod failure;
mod ids;
mod internal_events;
mod plans;
mod profile;
mod service;
mod snapshot;

pub use config::{Config, ConfigError, DEFAULT_DATABASE_URL, DEFAULT_PREFETCH, MAX_PREFETCH};
pub use event::{EventMapper, EventOptions, MappedRecord, map_event};
pub use failure::RowFailure;
pub use profile::{
    MAX_PROFILE_COLLECTION_BYTES, OPERATION_ORDER, ProfileMapper, ProfileOptions,
    RESERVED_PROFILE_PROPERTIES, TOKEN_ALLOWANCE, map_profile,
};
pub use service::{Error, run};
