//! mixsync's extractor service (`mixsync serve extractor`).
//!
//! It consumes `ExtractRequest`s from `mixsync.extract` (one at a time), runs the run's
//! activation query on its warehouse in a `READ ONLY` transaction with a statement timeout,
//! and streams the result as `RowBatch`es of `MIXSYNC_EXTRACT_BATCH_ROWS` rows to
//! `mixsync.rows`, each followed by a `Progress` report (stage `EXTRACT`) to
//! `mixsync.progress`. The last batch is flagged and its report carries `extraction_finished`;
//! a failing query is reported as `fatal` with the database's own message.
//!
//! The request is acked as soon as the extractor holds the run's extraction lease (a row in the
//! state store, renewed every 5 s), not when everything is published: an extraction may outlast
//! RabbitMQ's ack timeout. If the extractor dies, the lease expires after 30 s and control queues
//! the extraction again; the next extractor reads the query from the start with the same batch
//! ids, which control accounts once. See docs/architecture.md ("Run lifecycle").
//!
//! [`warehouse`] is also the library control uses to test warehouses and to describe and
//! preview activation queries.

mod config;
mod internal_events;
mod pacing;
mod service;
pub mod warehouse;

pub use config::{
    Config, ConfigError, DEFAULT_BATCH_ROWS, DEFAULT_DATABASE_URL, DEFAULT_STATEMENT_TIMEOUT,
    MAX_BATCH_ROWS,
};
pub use service::{Error, run};
