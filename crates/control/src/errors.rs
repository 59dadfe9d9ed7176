//! The one place errors become gRPC statuses. Invalid input is `INVALID_ARGUMENT` with the field
//! named first (`mapping.time: …`), missing ids `NOT_FOUND`, failed checks and conflicts
//! `FAILED_PRECONDITION`, an unreachable dependency `UNAVAILABLE`. Messages never hold secrets.

use mixsync_state::StateError;
use tonic::{Code, Status};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field is invalid.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The field, as a path in the request (`warehouse.name`, `mapping.time`).
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A check the call depends on failed (a connection test, a run in progress).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Something the call needs cannot be reached right now.
    #[error("{0}")]
    Unavailable(String),
    /// Not built yet.
    #[error("{0}")]
    Unimplemented(&'static str),
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
}

impl ApiError {
    /// An `INVALID_ARGUMENT` naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        let code = match &err {
            ApiError::InvalidArgument { .. } => Code::InvalidArgument,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Unimplemented(_) => Code::Unimplemented,
            ApiError::State(state) => state_code(state),
        };
        if code == Code::Internal || code == Code::Unavailable {
            tracing::warn!(error = %err, "request failed");
        }
        Status::new(code, err.to_string())
    }
}

fn state_code(err: &StateError) -> Code {
    match err {
        StateError::NotFound { .. } => Code::NotFound,
        StateError::NameTaken { .. } => Code::AlreadyExists,
        StateError::InUse { .. } | StateError::RunInProgress { .. } => Code::FailedPrecondition,
        StateError::MissingReference { .. } => Code::InvalidArgument,
        StateError::Pool(_) => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// A result whose error becomes a gRPC status.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_arguments_name_the_field() {
        let status = Status::from(ApiError::invalid(
            "mapping.time",
            "column `ts` is not in the query's columns (id)",
        ));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "mapping.time: column `ts` is not in the query's columns (id)"
        );
    }

    #[test]
    fn state_errors_map_to_codes() {
        let status = Status::from(ApiError::from(StateError::NotFound {
            kind: "run",
            id: "r1".into(),
        }));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "run `r1` not found");
        let status = Status::from(ApiError::from(StateError::RunInProgress {
            activation_id: "a".into(),
            run_id: "r".into(),
        }));
        assert_eq!(status.code(), Code::FailedPrecondition);
    }
}
