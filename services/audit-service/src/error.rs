//! The audit service's errors, and the one place they become gRPC statuses.

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    PermissionDenied(String),
    /// Behind the position asked for, stopped, or a dependency out of reach.
    #[error("{0}")]
    Unavailable(String),
    #[error("database: {}", projections::describe_error(.0))]
    Database(#[from] tokio_postgres::Error),
}

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            message: message.into(),
        }
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Error::Unavailable(format!("the audit database is out of reach: {e}"))
    }
}

impl From<event_store::Error> for Error {
    fn from(e: event_store::Error) -> Self {
        Error::Unavailable(format!("the event log: {e}"))
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidArgument { .. } => Status::invalid_argument(e.to_string()),
            Error::PermissionDenied(m) => Status::permission_denied(m),
            Error::Unavailable(m) => Status::unavailable(m),
            Error::Database(e) => {
                let described = projections::describe_error(&e);
                match projections::classify(&e) {
                    projections::Failure::Conflict => Status::aborted(format!(
                        "the audit query met a concurrent change ({described}); nothing was changed: try the call again"
                    )),
                    projections::Failure::Unavailable => Status::unavailable(format!(
                        "the audit database is out of reach ({described}): try again shortly"
                    )),
                    projections::Failure::Defect => {
                        service_kit::internal("audit query", &described)
                    }
                }
            }
        }
    }
}
