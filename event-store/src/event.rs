//! Recorded events, append answers, and the checks every appended envelope passes.

use proto::contract::SCHEMA_VERSION;
use proto::events::Envelope;
use uuid::Uuid;

use crate::{AggregateRef, Error, Position};

/// An event as read back from the log.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    /// Its global position (stream sequence). Also the version of its
    /// aggregate once this event is applied.
    pub position: Position,
    pub envelope: Envelope,
}

impl RecordedEvent {
    /// The payload's event type, e.g. `ThreadStarted`.
    pub fn event_type(&self) -> &str {
        &self.envelope.event_type
    }
}

/// The answer to an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The event's global position; also the aggregate's new version.
    pub position: Position,
    /// True when the event id had been appended before and nothing new was
    /// written; `position` is then the first append's.
    pub duplicate: bool,
}

/// Checks an envelope before it is written, and names its aggregate. A
/// malformed event is refused whole: the log never holds a partial event.
pub fn validate_envelope(envelope: &Envelope) -> Result<AggregateRef, Error> {
    let invalid = |msg: String| Err(Error::InvalidEvent(msg));
    match Uuid::parse_str(&envelope.event_id) {
        Ok(id) if !id.is_nil() => {}
        _ => return invalid(format!("event_id {:?} is not a UUID", envelope.event_id)),
    }
    let Some(payload) = &envelope.payload else {
        return invalid("payload is not set".into());
    };
    if envelope.event_type != payload.event_type() {
        return invalid(format!(
            "event_type {:?} does not match the payload {:?}",
            envelope.event_type,
            payload.event_type()
        ));
    }
    if envelope.schema_version != SCHEMA_VERSION {
        return invalid(format!(
            "schema_version {} is not the current {SCHEMA_VERSION}",
            envelope.schema_version
        ));
    }
    let kind = envelope.aggregate_type();
    if payload.aggregate_type() != kind {
        return invalid(format!(
            "{} belongs to {:?}, not {:?}",
            payload.event_type(),
            payload.aggregate_type(),
            kind
        ));
    }
    if envelope.occurred_at.is_none() {
        return invalid("occurred_at is not set".into());
    }
    if envelope
        .actor
        .as_ref()
        .is_none_or(|a| a.person_id.is_empty())
    {
        return invalid("actor.person_id is not set: every event names who caused it".into());
    }
    AggregateRef::new(kind, envelope.aggregate_id.clone())
}
