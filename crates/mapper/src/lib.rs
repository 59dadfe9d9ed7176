//! mixsync's mapper service (`mixsync serve mapper`) and the mapping it applies.
//!
//! [`map_event`] / [`EventMapper`] turn one warehouse row into the exact event JSON `/import`
//! takes, checked against Mixpanel's rules (the domain newtypes and limits), or into
//! [`RowFailure`]s naming the row, the column and the rule. Control's preview uses the same
//! functions, so a preview shows exactly what a run sends.
//!
//! The service ([`run`]) consumes `RowBatch`es from `mixsync.rows` and, per batch, publishes the
//! mapped records as one `RecordBatch` (same batch id) to `mixsync.load.events`, then a
//! `Progress` report (stage `MAP`) listing every failed row with its reason, and only then acks
//! the batch. User and group profiles are not mapped yet: their rows are reported as failed
//! (`unsupported_object`), never dropped.

mod batch;
mod config;
mod event;
mod events;
mod failure;
mod plans;
mod profile;
mod service;

pub use config::{Config, ConfigError, DEFAULT_DATABASE_URL, DEFAULT_PREFETCH, MAX_PREFETCH};
pub use event::{EventMapper, EventOptions, MappedRecord, map_event};
pub use failure::RowFailure;
pub use profile::{
    MAX_PROFILE_COLLECTION_BYTES, OPERATION_ORDER, ProfileMapper, ProfileOptions,
    RESERVED_PROFILE_PROPERTIES, TOKEN_ALLOWANCE, map_profile,
};
pub use service::{Error, run};
