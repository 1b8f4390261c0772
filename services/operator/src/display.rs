//! One line per event, for people reading the log.

use event_store::RecordedEvent;
use proto::events::{Role, envelope::Payload};

/// `#<position> <time> <type> <aggregate>/<id> by <name> (<role>): <payload>`.
/// Subject lines and message bodies are replaced by their length unless
/// `show_content` is set: operators do not read clinical content by default.
pub fn format_event(event: &RecordedEvent, show_content: bool) -> String {
    let envelope = &event.envelope;
    let time = envelope
        .occurred_at
        .as_ref()
        .and_then(|t| {
            let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
            time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
        })
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into());
    let aggregate = envelope
        .aggregate_type()
        .subject_token()
        .unwrap_or("unknown");
    let actor = match &envelope.actor {
        Some(actor) => {
            let role = Role::try_from(actor.role)
                .map(|r| r.as_str_name().trim_start_matches("ROLE_").to_lowercase())
                .unwrap_or_else(|_| format!("role {}", actor.role));
            let behalf = if actor.on_behalf_of.is_empty() {
                String::new()
            } else {
                format!(" for {}", actor.on_behalf_of)
            };
            format!("{} ({role}){behalf}", actor.display_name)
        }
        None => "nobody".into(),
    };
    let payload = match envelope.payload.clone() {
        Some(payload) if show_content => format!("{payload:?}"),
        Some(payload) => format!("{:?}", redact(payload)),
        None => format!(
            "(a payload this version does not know: {})",
            envelope.event_type
        ),
    };
    format!(
        "#{} {time} {} {aggregate}/{} by {actor}: {payload}",
        event.position, envelope.event_type, envelope.aggregate_id
    )
}

fn redacted(text: &str) -> String {
    format!("<{} chars>", text.chars().count())
}

fn redact(payload: Payload) -> Payload {
    match payload {
        Payload::ThreadStarted(mut started) => {
            started.subject = redacted(&started.subject);
            started.body = redacted(&started.body);
            Payload::ThreadStarted(started)
        }
        Payload::MessagePosted(mut posted) => {
            posted.body = redacted(&posted.body);
            Payload::MessagePosted(posted)
        }
        Payload::StaffNotePosted(mut note) => {
            note.body = redacted(&note.body);
            Payload::StaffNotePosted(note)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_store::testing::{message, new_thread};

    #[test]
    fn message_bodies_are_redacted_unless_asked() {
        let thread = new_thread();
        let event = RecordedEvent {
            position: 7,
            envelope: message(&thread, "my dialysis line is sore"),
        };
        let line = format_event(&event, false);
        assert!(line.starts_with("#7 "), "{line}");
        assert!(line.contains("MessagePosted thread/"), "{line}");
        assert!(
            line.contains("by Test Professional (professional)"),
            "{line}"
        );
        assert!(!line.contains("dialysis"), "{line}");
        assert!(line.contains("<24 chars>"), "{line}");
        assert!(format_event(&event, true).contains("my dialysis line is sore"));
    }

    #[test]
    fn staff_note_bodies_are_redacted_unless_asked() {
        let thread = new_thread();
        let mut envelope = message(&thread, "");
        envelope.event_type = "StaffNotePosted".into();
        envelope.payload = Some(Payload::StaffNotePosted(proto::events::StaffNotePosted {
            note_id: uuid::Uuid::now_v7().to_string(),
            body: "query line infection".into(),
        }));
        let event = RecordedEvent {
            position: 8,
            envelope,
        };
        let line = format_event(&event, false);
        assert!(!line.contains("infection"), "{line}");
        assert!(line.contains("<20 chars>"), "{line}");
        assert!(format_event(&event, true).contains("query line infection"));
    }
}
