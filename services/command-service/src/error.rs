//! The command service's errors, and the one place they become gRPC statuses.

use service_kit::reason;
use tonic::{Code, Status};

use crate::domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Domain(#[from] DomainError),

    #[error(transparent)]
    Store(#[from] event_store::Error),

    #[error(
        "{aggregate} kept changing under this command ({attempts} attempts); retry it with the same command_id"
    )]
    Aborted { aggregate: String, attempts: u32 },

    /// A defect in this service, never the caller's fault.
    #[error("internal error: {0}")]
    Bug(String),

    #[error(
        "command_id {0} was already used for a different command; use a new id for every command"
    )]
    CommandIdReused(String),

    #[error(
        "at most {per_minute} messages a minute may be posted by one person; try again in {} s",
        wait.as_secs().max(1)
    )]
    TooManyPosts {
        per_minute: usize,
        wait: std::time::Duration,
    },

    #[error(
        "too many join codes refused: at most {per_hour} an hour for one person; try again in {} min, or ask the team for its code today",
        wait.as_secs().div_ceil(60).max(1)
    )]
    TooManyWrongCodes {
        per_hour: usize,
        wait: std::time::Duration,
    },
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Domain(d) => match d {
                DomainError::InvalidArgument { field, .. } => reason::invalid(field, d.to_string()),
                DomainError::PermissionDenied(m) => reason::plain(Code::PermissionDenied, m),
                DomainError::NotFound(m) => reason::plain(Code::NotFound, m),
                DomainError::FailedPrecondition(m) => reason::plain(Code::FailedPrecondition, m),
                DomainError::Stale(m) => reason::plain(Code::Aborted, m),
                DomainError::Because {
                    reason,
                    denied,
                    message,
                } => {
                    let code = if denied {
                        Code::PermissionDenied
                    } else {
                        Code::FailedPrecondition
                    };
                    reason::status(code, reason, message, &[])
                }
            },
            Error::Aborted { .. } => reason::plain(Code::Aborted, e.to_string()),
            Error::CommandIdReused(_) => reason::status(
                Code::InvalidArgument,
                reason::COMMAND_ID_REUSED,
                e.to_string(),
                &[("field", "command_id")],
            ),
            Error::TooManyPosts { .. } | Error::TooManyWrongCodes { .. } => {
                reason::plain(Code::ResourceExhausted, e.to_string())
            }
            Error::Bug(m) => service_kit::internal("the command", &m),
            Error::Store(s) => match s {
                event_store::Error::Unavailable(m) => reason::plain(
                    Code::Unavailable,
                    format!(
                        "the event log is unavailable ({m}); the command may have been recorded or not: retrying with the same command_id is safe (it is recorded once at most)"
                    ),
                ),
                event_store::Error::Conflict { .. } => reason::plain(
                    Code::Aborted,
                    format!("{s}; retry with the same command_id"),
                ),
                event_store::Error::Stream(m) => {
                    tracing::error!(error = %m, "event log refused a request");
                    reason::plain(
                        Code::Unavailable,
                        format!("the event log refused the request: {m}"),
                    )
                }
                event_store::Error::Undecodable {
                    position, reason, ..
                } => {
                    tracing::error!(
                        position,
                        reason = %reason,
                        "an aggregate's history holds an undecodable event"
                    );
                    reason::plain(
                        Code::DataLoss,
                        format!(
                            "the history of this record holds an event Careline cannot read, at log position \
                         {position}; commands on it are refused until an operator has looked \
                         (careline status). Nothing was recorded; other records are not affected"
                        ),
                    )
                }
                other => service_kit::internal("the event log request", &other),
            },
        }
    }
}
