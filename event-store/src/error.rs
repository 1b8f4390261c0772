//! The event store's one error type.

use crate::{AggregateRef, Position, Version};

/// Everything that can go wrong talking to the log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The aggregate moved on since the caller read it: reload and decide again.
    #[error("conflict on {aggregate}: expected version {expected}, actual version {actual}")]
    Conflict {
        aggregate: AggregateRef,
        expected: Version,
        actual: Version,
    },

    /// NATS did not answer in time or cannot be reached. Nothing is known to
    /// have been written; retrying the same event id is safe.
    #[error("event log unavailable: {0}")]
    Unavailable(String),

    /// A stored event cannot be decoded as an `Envelope` (`bytes` are
    /// what is stored, for whoever sets it aside).
    #[error("event at position {position} cannot be decoded: {reason}")]
    Undecodable {
        position: Position,
        reason: String,
        bytes: Vec<u8>,
    },

    /// A stored event its subject may not carry (see
    /// `proto::contract::check_origin`): written by someone not allowed to
    /// write it. Every consumer sets it aside, like undecodable bytes.
    #[error("event at position {position} is forged ({event_type} on {subject}): {reason}")]
    Forged {
        position: Position,
        subject: String,
        event_type: String,
        reason: String,
        bytes: Vec<u8>,
    },

    /// The store's configuration is wrong, or the existing stream does not
    /// have the settings the log requires.
    #[error("bad event store configuration: {0}")]
    Config(String),

    /// The event handed to `append` is malformed; nothing was written.
    #[error("invalid event: {0}")]
    InvalidEvent(String),

    /// JetStream refused a request for another reason.
    #[error("event log error: {0}")]
    Stream(String),
}

impl Error {
    /// True for errors that a retry may cure (conflicts, unavailability).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Conflict { .. } | Error::Unavailable(_))
    }
}
