//! One readable line per event, for people reading the log (`careline
//! tail`), or one JSON object per line for machines (`--json`): its
//! position, time, type, aggregate, and what happened in plain words (the
//! audit trail's own description: who did what, no clinical content).
//! Subject lines and message bodies are added only when asked for.

use audit_service::describe::{Directory, describe};
use event_store::RecordedEvent;
use proto::events::envelope::Payload;

/// Describes events in log order, learning people's and teams' names
/// from the events it has seen (a tail from position 1 names everyone).
#[derive(Debug, Default)]
pub struct Describer {
    directory: Directory,
}

/// What a line says of one event.
struct Described {
    time: String,
    aggregate: &'static str,
    action: String,
}

fn rfc3339(event: &RecordedEvent) -> String {
    event
        .envelope
        .occurred_at
        .as_ref()
        .and_then(|t| {
            let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
            time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
        })
        .map(|t| t.replace_nanosecond(0).unwrap_or(t))
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into())
}

/// The clinical content of an event: its subject line and body.
fn content(payload: Option<&Payload>) -> Vec<(&'static str, String)> {
    match payload {
        Some(Payload::ThreadStarted(e)) => {
            vec![("subject", e.subject.clone()), ("body", e.body.clone())]
        }
        Some(Payload::MessagePosted(e)) => vec![("body", e.body.clone())],
        Some(Payload::StaffNotePosted(e)) => vec![("note", e.body.clone())],
        _ => Vec::new(),
    }
}

impl Describer {
    fn described(&mut self, event: &RecordedEvent) -> Described {
        let envelope = &event.envelope;
        let mut actions: Vec<String> = Vec::new();
        for draft in describe(event, &mut self.directory) {
            if !actions.contains(&draft.action) {
                actions.push(draft.action);
            }
        }
        if let Some(Payload::AuditAnchored(a)) = &envelope.payload {
            actions.push(format!(
                "the audit trail anchored {} chain{} through position {} (part {} of {})",
                a.heads.len(),
                if a.heads.len() == 1 { "" } else { "s" },
                a.position,
                a.part,
                a.parts
            ));
        }
        // Names learned are kept; nothing asked for is loaded (a tail
        // shows an id where it has not seen the name).
        self.directory.learned_names.clear();
        self.directory.learned_threads.clear();
        self.directory.missing_names.clear();
        self.directory.missing_threads.clear();
        Described {
            time: rfc3339(event),
            aggregate: envelope
                .aggregate_type()
                .subject_token()
                .unwrap_or("unknown"),
            action: actions.join("; "),
        }
    }

    /// `#<position> <time> <type> <aggregate>/<id>: <who did what>`, and
    /// the content quoted after it when `show_content` is set.
    pub fn line(&mut self, event: &RecordedEvent, show_content: bool) -> String {
        let d = self.described(event);
        let envelope = &event.envelope;
        let mut line = format!(
            "#{} {} {} {}/{}: {}",
            event.position,
            d.time,
            envelope.event_type,
            d.aggregate,
            envelope.aggregate_id,
            d.action
        );
        if show_content {
            for (name, text) in content(envelope.payload.as_ref()) {
                line.push_str(&format!(" | {name}: {text:?}"));
            }
        }
        line
    }

    /// Whether `event` carries clinical content (a subject, a body, a note).
    pub fn has_content(event: &RecordedEvent) -> bool {
        !content(event.envelope.payload.as_ref()).is_empty()
    }

    /// [`json`](Self::json) without content, saying why (`content_refused`);
    /// without the field when `why` is empty.
    pub fn json_refused(&mut self, event: &RecordedEvent, why: &str) -> String {
        let line = self.json(event, false);
        if why.is_empty() {
            return line;
        }
        let mut value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        value["content_refused"] = why.into();
        value.to_string()
    }

    /// The same as one JSON object.
    pub fn json(&mut self, event: &RecordedEvent, show_content: bool) -> String {
        let d = self.described(event);
        let envelope = &event.envelope;
        let actor = envelope.actor.clone().unwrap_or_default();
        let mut value = serde_json::json!({
            "position": event.position,
            "occurred_at": d.time,
            "event_type": envelope.event_type,
            "event_id": envelope.event_id,
            "aggregate": d.aggregate,
            "aggregate_id": envelope.aggregate_id,
            "actor": {
                "person_id": actor.person_id,
                "name": actor.display_name,
                "role": proto::contract::role_name(actor.role),
                "on_behalf_of": actor.on_behalf_of,
            },
            "action": d.action,
        });
        if show_content {
            let content: serde_json::Map<String, serde_json::Value> =
                content(envelope.payload.as_ref())
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.into()))
                    .collect();
            value["content"] = content.into();
        }
        value.to_string()
    }
}

/// A position set aside (bytes that are not an event, or an event its
/// subject may not carry): `what` is why; marked, never a failure.
pub fn set_aside_line(position: u64, what: &str) -> String {
    format!("#{position} SET ASIDE: {what}")
}

/// The same as one JSON object.
pub fn set_aside_json(position: u64, reason: &str) -> String {
    serde_json::json!({ "position": position, "set_aside": reason }).to_string()
}

/// One line for `event` with a describer of its own (tests, one-offs).
pub fn format_event(event: &RecordedEvent, show_content: bool) -> String {
    Describer::default().line(event, show_content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_store::testing::{message, new_thread};

    #[test]
    fn a_line_says_who_did_what_and_redacts_bodies_unless_asked() {
        let thread = new_thread();
        let event = RecordedEvent {
            position: 7,
            envelope: message(&thread, "my dialysis line is sore"),
        };
        let line = format_event(&event, false);
        assert!(line.starts_with("#7 "), "{line}");
        assert!(line.contains(" MessagePosted thread/"), "{line}");
        assert!(
            line.ends_with(": Test Professional posted a message"),
            "{line}"
        );
        assert!(line.len() < 200, "one readable line: {line}");
        assert!(!line.contains("dialysis"), "{line}");
        assert!(format_event(&event, true).contains("body: \"my dialysis line is sore\""));
    }

    #[test]
    fn json_lines_carry_the_same_and_content_only_when_asked() {
        let thread = new_thread();
        let event = RecordedEvent {
            position: 9,
            envelope: message(&thread, "my dialysis line is sore"),
        };
        let mut describer = Describer::default();
        let json: serde_json::Value = serde_json::from_str(&describer.json(&event, false)).unwrap();
        assert_eq!(json["position"], 9);
        assert_eq!(json["event_type"], "MessagePosted");
        assert_eq!(json["aggregate"], "thread");
        assert_eq!(json["action"], "Test Professional posted a message");
        assert!(json.get("content").is_none());
        let json: serde_json::Value = serde_json::from_str(&describer.json(&event, true)).unwrap();
        assert_eq!(json["content"]["body"], "my dialysis line is sore");
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
        assert!(line.contains("wrote a staff note"), "{line}");
        assert!(format_event(&event, true).contains("query line infection"));
    }
}
