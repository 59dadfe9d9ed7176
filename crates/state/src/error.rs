//! Everything the state store can fail with.

/// An error from the state store. Messages say what and where, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database URL could not be parsed.
    #[error("invalid state database URL: {0}")]
    InvalidUrl(#[source] mixsync_pg::DsnError),
    /// The state database's TLS settings cannot be used.
    #[error("the state database URL's TLS settings cannot be used: {0}")]
    Tls(#[source] mixsync_pg::TlsError),
    /// The first connection to the state database failed.
    #[error("cannot connect to the state database: {0}")]
    Connect(#[source] mixsync_pg::ConnectError),
    /// `MIXSYNC_SECRET_KEY` is empty.
    #[error("the secret key is empty; set MIXSYNC_SECRET_KEY to a long random string")]
    EmptySecretKey,
    /// No connection could be taken from the pool.
    #[error("cannot connect to the state database: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The pool could not be built.
    #[error("cannot build the state database pool: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
    /// A statement failed.
    #[error("state database error: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// A migration failed.
    #[error("migration {version} failed: {source}")]
    Migration {
        /// The migration, e.g. `0001_initial`.
        version: &'static str,
        /// The database error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The database holds migrations this build does not know: a newer version ran against it.
    #[error(
        "the state database has migration `{0}` that this build does not know; run a newer mixsync"
    )]
    UnknownMigration(String),
    /// A migration's file differs from the one applied to this database.
    #[error(
        "migration {file} was changed after it was applied to this database (checksum {recorded}, now {current}): restore it and put the change in a new migration"
    )]
    ChangedMigration {
        /// The file, e.g. `0003_dead_letters_replays.sql`.
        file: String,
        /// The sha256 recorded when it was applied (hex).
        recorded: String,
        /// The sha256 of the file in this build (hex).
        current: String,
    },
    /// No object with that id.
    #[error("{kind} `{id}` not found")]
    NotFound {
        /// `warehouse`, `target`, `activation`, `run`.
        kind: &'static str,
        /// The id that was looked up.
        id: String,
    },
    /// The name is already taken.
    #[error("{kind} `{name}` already exists; choose another name")]
    NameTaken {
        /// `warehouse`, `target`, `activation`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// The object is still referenced and cannot be deleted.
    #[error("{kind} `{id}` is used by {used_by}; delete or change those first")]
    InUse {
        /// `warehouse` or `target`.
        kind: &'static str,
        /// The id.
        id: String,
        /// What uses it, e.g. `activation(s) orders, signups`.
        used_by: String,
    },
    /// A reference to another object does not resolve.
    #[error("{field}: {kind} `{id}` does not exist")]
    MissingReference {
        /// The field holding the reference, e.g. `warehouse_id`.
        field: &'static str,
        /// `warehouse` or `target`.
        kind: &'static str,
        /// The id.
        id: String,
    },
    /// The activation already has a queued or running run.
    #[error(
        "activation `{activation_id}` already has run `{run_id}` in progress; wait for it to finish or cancel it"
    )]
    RunInProgress {
        /// The activation.
        activation_id: String,
        /// The unfinished run.
        run_id: String,
    },
    /// A stored secret does not decrypt under the key it names: it belongs to another row or
    /// column, or it was altered.
    #[error(
        "cannot decrypt the stored {what}: it was not stored for this row and column, or it has been altered"
    )]
    Decrypt {
        /// Which secret, e.g. `password of warehouse 0190…`.
        what: String,
    },
    /// A stored secret was encrypted under a key this process was not given.
    #[error(
        "cannot decrypt the stored {what}: it was stored under another MIXSYNC_SECRET_KEY (key id {key_id}); start with that key, or set it as MIXSYNC_SECRET_KEY_PREVIOUS and the new one as MIXSYNC_SECRET_KEY to rotate"
    )]
    WrongSecretKey {
        /// Which secret.
        what: String,
        /// The id of the key it was stored under (a hash, never the key).
        key_id: String,
    },
    /// Some stored secrets cannot be read with the keys given; nothing was changed.
    #[error(
        "MIXSYNC_SECRET_KEY does not open {unreadable} of the {total} stored secrets, e.g. {example}"
    )]
    SecretsUnreadable {
        /// How many cannot be read.
        unreadable: usize,
        /// How many are stored.
        total: usize,
        /// The first one's error.
        example: Box<StateError>,
    },
    /// The key could not be derived.
    #[error("cannot derive the secret key: {0}")]
    KeyDerivation(String),
    /// The state database has no installation salt: control has not applied migrations yet.
    #[error(
        "the state database is not set up yet (no installation salt): start control, which applies the migrations"
    )]
    NotSetUp,
    /// A secret could not be encrypted.
    #[error("cannot encrypt the {what}")]
    Encrypt {
        /// Which secret.
        what: String,
    },
    /// A stored value does not have the shape this build expects.
    #[error("stored {what} is invalid: {reason}")]
    Corrupt {
        /// What was read, e.g. `mapping of activation 0190…`.
        what: String,
        /// Why it does not parse.
        reason: String,
    },
}

impl StateError {
    /// Whether trying again later may succeed: the database is unreachable, the connection
    /// broke, or the transaction lost a serialization or deadlock race. Bad data and missing
    /// objects are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Pool(_) => true,
            Self::Connect(e) => e.is_unavailable(),
            Self::Database(e) => e.as_db_error().is_none_or(|db| {
                let class = db.code().code().get(..2).unwrap_or_default();
                matches!(class, "08" | "40" | "53" | "57" | "58")
            }),
            _ => false,
        }
    }

    pub(crate) fn not_found(kind: &'static str, id: &str) -> Self {
        Self::NotFound {
            kind,
            id: id.to_owned(),
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, reason: impl ToString) -> Self {
        Self::Corrupt {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    /// Whether the database refused a row because a unique constraint already holds its value.
    pub(crate) fn is_unique_violation(err: &tokio_postgres::Error) -> bool {
        err.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    }

    /// Whether the database refused a row because a foreign key does not resolve.
    pub(crate) fn is_foreign_key_violation(err: &tokio_postgres::Error) -> bool {
        err.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
    }
}
