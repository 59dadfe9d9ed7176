//! mixsync's shared vocabulary, and the newtypes that enforce Mixpanel's ingestion rules.
//!
//! Everything here is pure: no I/O, no clock. Constructors parse (`DistinctId::parse`,
//! `InsertId::parse`, …) so a value of one of these types already satisfies Mixpanel's rules for
//! its field; [`rules`] holds the limits themselves for code that checks raw JSON (the emulator)
//! or sizes batches (the loader). Where each rule comes from is in docs/mixpanel-api.md; the doc
//! comments cite its sections (docs/mixpanel-api.md §1.6 holds the field rules of `/import`).
//!
//! - Field newtypes: [`DistinctId`], [`InsertId`], [`EventName`], [`EventTime`], [`GroupKey`],
//!   [`GroupId`], [`PropertyName`], [`ProjectToken`], [`ProjectId`].
//! - Vocabulary: [`ObjectKind`], [`SyncBehaviour`], [`ProfileOperation`], [`Residency`].
//! - Warehouse side: [`Value`], [`Row`]; activation config: [`FieldMapping`], [`Source`],
//!   [`PropertyMapping`].
//! - Mixpanel side: [`EventRecord`], [`ProfileUpdate`] ([`ProfileTarget`], [`Modifiers`]).
//! - Errors: [`FieldError`], [`TimeError`], [`LimitError`], [`ProfileError`], gathered in
//!   [`DomainError`] (each with `field()` and a stable `rule()` id); [`MappingError`] for
//!   mappings; [`ParseEnumError`] for vocabulary names.

pub mod civil;
mod distinct_id;
mod error;
mod event_name;
mod event_record;
mod event_time;
mod group;
mod insert_id;
mod mapping;
mod newtype;
mod object_kind;
mod profile;
mod project;
mod property_name;
mod residency;
mod row;
pub mod rules;
mod string_enum;
mod uuid_text;
mod value;

pub use distinct_id::DistinctId;
pub use error::{DomainError, FieldError, ParseEnumError};
pub use event_name::EventName;
pub use event_record::EventRecord;
pub use event_time::{EventTime, TimeError};
pub use group::{GroupId, GroupKey};
pub use insert_id::InsertId;
pub use mapping::{FieldMapping, MappingError, PropertyMapping, Source};
pub use object_kind::{ObjectKind, SyncBehaviour};
pub use profile::{Modifiers, ProfileError, ProfileOperation, ProfileTarget, ProfileUpdate};
pub use project::{MAX_PROJECT_TOKEN_BYTES, ProjectId, ProjectToken};
pub use property_name::PropertyName;
pub use residency::Residency;
pub use row::Row;
pub use rules::{LimitError, TruncateUnit};
pub use value::Value;
