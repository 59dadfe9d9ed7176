//! What talking to a warehouse can fail with. Messages never include the DSN.

use std::time::Duration;

/// An error from the warehouse. The `Display` text is what a user sees on a failed run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WarehouseError {
    /// The DSN does not parse.
    #[error("the warehouse DSN is invalid: {0}")]
    InvalidDsn(String),
    /// Connecting took longer than the connect timeout.
    #[error("cannot connect to the warehouse: no answer within {0:?}")]
    ConnectTimeout(Duration),
    /// The connection could not be opened (unreachable, TLS, authentication, …).
    #[error("cannot connect to the warehouse: {0}")]
    Connect(mixsync_pg::ConnectError),
    /// The database refused a statement; `message` is its own message.
    #[error("the warehouse refused the query: {message} (SQLSTATE {code})")]
    Database {
        /// The database's message, with its detail and hint when it gave them.
        message: String,
        /// The SQLSTATE code, e.g. `25006` (read-only transaction).
        code: String,
    },
    /// The query takes parameters (`$1`, …), which activation queries cannot be given.
    #[error(
        "the query has {count} parameter(s) (`$1`, …); activation queries cannot take parameters"
    )]
    Parameters {
        /// How many.
        count: usize,
    },
    /// Describing the query (preparing it) took longer than allowed.
    #[error(
        "the warehouse did not describe the query within {0:?} (is a table it reads locked, e.g. being altered?)"
    )]
    DescribeTimeout(Duration),
    /// The connection broke or the server answered unexpectedly.
    #[error("lost the warehouse connection: {0}")]
    Connection(String),
    /// A value could not be converted.
    #[error("cannot read column `{column}` ({type_name}): {message}")]
    Decode {
        /// The column.
        column: String,
        /// Its Postgres type.
        type_name: String,
        /// Why.
        message: String,
    },
}

impl WarehouseError {
    /// The database's SQLSTATE code, when the database refused a statement.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Database { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Classifies an error of an established connection.
    pub(crate) fn from_postgres(e: &tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => {
                let mut message = db.message().to_owned();
                if let Some(detail) = db.detail() {
                    message.push_str("; ");
                    message.push_str(detail);
                }
                if let Some(hint) = db.hint() {
                    message.push_str("; hint: ");
                    message.push_str(hint);
                }
                Self::Database {
                    message,
                    code: db.code().code().to_owned(),
                }
            }
            None => Self::Connection(chain(e)),
        }
    }
}

/// `e` and its causes, `: `-separated ("error connecting to server: Connection refused").
pub(crate) fn chain(e: &tokio_postgres::Error) -> String {
    mixsync_pg::chain(e)
}

impl WarehouseError {
    /// Whether another attempt may succeed: the connection was lost or could not be made for
    /// now, or the server reported a transient condition — SQLSTATE class 08 (connection),
    /// 53 (insufficient resources), 40001 and 40P01 (serialization failure, deadlock), 57P01
    /// to 57P03 (the server shutting down or starting). SQL errors, permissions and bad
    /// values are not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::ConnectTimeout(_) | Self::Connection(_) | Self::DescribeTimeout(_) => true,
            Self::Connect(e) => e.is_unavailable(),
            Self::Database { code, .. } => {
                code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(
                        code.as_str(),
                        "40001" | "40P01" | "57P01" | "57P02" | "57P03"
                    )
            }
            Self::InvalidDsn(_) | Self::Parameters { .. } | Self::Decode { .. } => false,
        }
    }
}
