//! How a read service's call fails, and the one place that becomes a gRPC
//! status: the same for every read service, told apart only by its name.

use std::marker::PhantomData;

use service_kit::reason;
use tonic::{Code, Status};

use careline_pg::{Failure, classify, describe_error};

/// A read service, for its errors' messages ("the inbox query ...").
pub trait ReadService: Send + Sync + 'static {
    const NAME: &'static str;
    /// Its read model in a sentence ("the inbox has applied the log up to ...").
    const READ_MODEL: &'static str;
    /// Its gRPC service's full name, as recorded reads name their call.
    const GRPC: &'static str;
}

/// Why a read service refused or failed a call.
#[derive(thiserror::Error)]
pub enum QueryError<S: ReadService> {
    #[error("{field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    /// A refusal with a reason callers tell apart (`service_kit::reason`),
    /// e.g. `ACCOUNT_CLOSED`, `ACCESS_ENDED`.
    #[error("{message}")]
    Refused {
        code: tonic::Code,
        reason: &'static str,
        message: String,
    },
    /// Behind the position asked for, stopped, or a dependency out of reach.
    #[error("{0}")]
    Unavailable(String),
    #[error("database: {}", describe_error(.0))]
    Database(tokio_postgres::Error, PhantomData<S>),
}

impl<S: ReadService> std::fmt::Debug for QueryError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {self}", S::NAME)
    }
}

impl<S: ReadService> QueryError<S> {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        QueryError::InvalidArgument {
            field,
            message: message.into(),
        }
    }
}

impl<S: ReadService> From<service_kit::ids::BadId> for QueryError<S> {
    fn from(e: service_kit::ids::BadId) -> Self {
        QueryError::InvalidArgument {
            field: e.field,
            message: e.message,
        }
    }
}

impl<S: ReadService> From<tokio_postgres::Error> for QueryError<S> {
    fn from(e: tokio_postgres::Error) -> Self {
        QueryError::Database(e, PhantomData)
    }
}

impl<S: ReadService> From<deadpool_postgres::PoolError> for QueryError<S> {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        QueryError::Unavailable(format!("the {} database is out of reach: {e}", S::NAME))
    }
}

impl<S: ReadService> From<event_store::Error> for QueryError<S> {
    fn from(e: event_store::Error) -> Self {
        QueryError::Unavailable(format!("the event log: {e}"))
    }
}

impl<S: ReadService> From<QueryError<S>> for Status {
    fn from(e: QueryError<S>) -> Self {
        let name = S::NAME;
        match e {
            QueryError::InvalidArgument { field, .. } => reason::invalid(field, e.to_string()),
            QueryError::PermissionDenied(m) => reason::plain(Code::PermissionDenied, m),
            QueryError::Refused {
                code,
                reason,
                message,
            } => reason::status(code, reason, message, &[]),
            QueryError::NotFound(m) => reason::plain(Code::NotFound, m),
            QueryError::Unavailable(m) => reason::plain(Code::Unavailable, m),
            QueryError::Database(e, _) => {
                let described = describe_error(&e);
                match classify(&e) {
                    Failure::Conflict => reason::plain(
                        Code::Aborted,
                        format!(
                            "the {name} query met a concurrent change ({described}); nothing was changed: try the call again"
                        ),
                    ),
                    Failure::Unavailable => reason::plain(
                        Code::Unavailable,
                        format!(
                            "the {name} database is out of reach ({described}): try again shortly"
                        ),
                    ),
                    Failure::Defect => service_kit::internal(&format!("{name} query"), &described),
                }
            }
        }
    }
}
