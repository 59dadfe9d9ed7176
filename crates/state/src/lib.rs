//! mixsync's state store in Postgres: warehouses, targets and activations (secrets encrypted at
//! rest), runs with their frozen settings, idempotent progress accounting, and failed records.
//!
//! Control applies the migrations ([`StateStore::migrate`]) and writes configuration; the
//! pipeline services read what a run needs ([`StateStore::run_plan`],
//! [`StateStore::warehouse_connection`], [`StateStore::target_connection`]) and control
//! accounts their reports ([`StateStore::apply_progress`]). The mapper claims each run's keys
//! in the activation's sync snapshot ([`StateStore::claim_keys`]) to skip unchanged records and
//! report duplicate keys; control puts back what failed to load. The extractor holds a lease on
//! its run's extraction ([`StateStore::begin_extraction`]), which control re-queues if it expires.
//!
//! Every table, the run lifecycle and the accounting invariants these functions keep:
//! docs/architecture.md ("State tables", "Run lifecycle").

mod activations;
mod cancel;
mod cron;
mod crypto;
mod dead_letters;
mod error;
mod extraction;
mod failed_records;
mod fingerprint;
mod ids;
mod migrate;
mod page;
mod plan;
mod progress;
mod rate;
mod replay;
mod ride_out;
mod rotation;
mod row_json;
mod runs;
mod schedule;
mod snapshots;
mod stage;
mod store;
mod targets;
mod unused;
mod warehouses;

pub use activations::{Activation, ActivationFilter, ActivationSpec, Schedule};
pub use cron::Cron;
pub use crypto::SecretKeys;
pub use dead_letters::{DeadLetterEntry, DeadLetterPage, NewDeadLetter};
pub use error::StateError;
pub use extraction::{AttemptEnded, Begin, ExpiredExtraction};
pub use failed_records::{FailedRecord, FailedRecordFilter, FailedRecordPage, ReasonCount};
pub use page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageRequest};
pub use plan::{
    ActivationOptions, DEFAULT_MAX_ATTEMPTS, MAX_MAX_ATTEMPTS, RunPlan, TargetConnection,
    WarehouseConnection,
};
pub use progress::{DEAD_LETTER_RULE, ProgressOutcome};
pub use rate::{RateGrant, RateRequest};
pub use replay::{ReplayCursor, ReplayRow, ReplaySelection};
pub use ride_out::{RIDE_OUT, ride_out};
pub use rotation::{KeyCheck, Rotation};
pub use runs::{Run, RunCounts, RunFilter, RunState};
pub use schedule::ScheduledRun;
pub use snapshots::{KeyClaim, KeyToClaim};
pub use stage::Stage;
pub use store::StateStore;
pub use targets::{DEFAULT_RATE_LIMIT_PER_SECOND, Target, TargetSpec, api_base_url};
pub use warehouses::{Warehouse, WarehouseSpec};
