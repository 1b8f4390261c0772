//! The markup of the privacy officer's pages.

use maud::{Markup, html};
use proto::audit as pb;

use super::when;

/// Whose trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Record,
    Thread,
    Person,
}

impl Kind {
    pub fn parse(s: &str) -> Self {
        match s {
            "thread" => Kind::Thread,
            "person" => Kind::Person,
            _ => Kind::Record,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Record => "record",
            Kind::Thread => "thread",
            Kind::Person => "person",
        }
    }
}

/// What the form asked, kept when the page says what to fix.
pub struct Asked<'a> {
    pub kind: Kind,
    pub id: &'a str,
    pub from: &'a str,
    pub to: &'a str,
}

fn trail_link(kind: Kind, id: &str, asked: &Asked<'_>) -> String {
    format!(
        "/audit?kind={}&id={id}&from={}&to={}",
        kind.as_str(),
        asked.from,
        asked.to
    )
}

/// The form, and the entries of the trail it asked for.
pub fn trails(asked: &Asked<'_>, page: Option<&pb::TrailPage>, problem: Option<Markup>) -> Markup {
    let kinds = [
        (Kind::Record, "A patient's record"),
        (Kind::Thread, "A conversation"),
        (Kind::Person, "What a person did and read"),
    ];
    html! {
        h1 { "Audit trails" }
        p { "Every read and every change of a record is on its trail. Names in a trail open that person's own trail, records open the record's." }
        @if let Some(problem) = problem { (problem) }
        form.card method="get" action="/audit" {
            fieldset {
                legend { strong { "Whose trail" } }
                @for (kind, label) in kinds {
                    label.choice {
                        input type="radio" name="kind" value=(kind.as_str()) checked[asked.kind == kind];
                        span { (label) }
                    }
                }
            }
            label.nhsuk-label for="id" { "Id" span.hint { " of the record, conversation or person, as Careline shows it" } }
            input.nhsuk-input #id type="text" name="id" value=(asked.id) autocomplete="off" spellcheck="false" required;
            label.nhsuk-label for="from" { "From" span.hint { " (optional) the first day" } }
            input.nhsuk-input #from type="date" name="from" value=(asked.from);
            label.nhsuk-label for="to" { "To" span.hint { " (optional) the last day" } }
            input.nhsuk-input #to type="date" name="to" value=(asked.to);
            button.nhsuk-button type="submit" { "Show the trail" }
        }
        @if asked.kind == Kind::Record && !asked.id.is_empty() {
            p {
                a.nhsuk-button.nhsuk-button--secondary href={ "/audit/verify?patient=" (asked.id) } { "Check this record's trail is intact" }
                " "
                a.nhsuk-button.nhsuk-button--secondary href={ "/audit/export?format=jsonl&patient=" (asked.id) } { "Download (JSON lines)" }
                " "
                a.nhsuk-button.nhsuk-button--secondary href={ "/audit/export?format=fhir&patient=" (asked.id) } { "Download (FHIR)" }
            }
        }
        @if let Some(page) = page {
            @if page.entries.is_empty() {
                p.card { "Nothing on this trail in that time." }
            }
            ul.list {
                @for e in &page.entries {
                    li.card {
                        div.when {
                            (when(e.occurred_at.as_ref()))
                            @if e.kind == pb::EntryKind::View as i32 { " · " strong.nhsuk-tag.nhsuk-tag--white.badge { "read" } } @else { " · " strong.nhsuk-tag.nhsuk-tag--white.badge { "change" } }
                        }
                        div { (e.action) }
                        div.meta.hint {
                            a href=(trail_link(Kind::Person, &e.actor_id, asked)) { (e.actor_name) } " (" (e.role) ")"
                            @if !e.patient_id.is_empty() && asked.kind != Kind::Record {
                                " · " a href=(trail_link(Kind::Record, &e.patient_id, asked)) { "the record's trail" }
                            }
                        }
                    }
                }
            }
            @if !page.next_cursor.is_empty() {
                p { a href={ (trail_link(asked.kind, asked.id, asked)) "&cursor=" (page.next_cursor) } { "Later entries →" } }
            }
        }
    }
}

/// A check of the trail, in plain words.
pub fn verified(patient: &str, reply: &pb::VerifyReply) -> Markup {
    html! {
        h1 { "Audit trail checked" }
        @if reply.intact {
            div.notice role="status" {
                strong { "Intact. " }
                "Every entry is where it should be and unchanged: "
                (reply.entries) " entries in " (reply.chains) @if reply.chains == 1 { " chain" } @else { " chains" }
                ", each re-derived from the event log and compared, up to position " (reply.position) "."
            }
        } @else {
            div.error role="alert" {
                h2 { "Problems found" }
                p { "The trail does not match what it should be. Keep this page and tell the system's operators." }
                ul {
                    @for f in &reply.findings {
                        li { (f.chain) ", entry " (f.seq) ": " (f.problem) }
                    }
                }
            }
        }
        p {
            @if reply.anchors == 0 {
                "The trail has not been anchored in the event log yet: the check against the log above is what covers it."
            } @else {
                "The trail was last anchored in the event log on " (when(reply.anchored_at.as_ref()))
                " (position " (reply.anchored_position) "), where no database owner can change it; "
                (reply.anchors) @if reply.anchors == 1 { " anchor was" } @else { " anchors were" } " checked."
                @if reply.unanchored_entries > 0 {
                    " " (reply.unanchored_entries)
                    @if reply.unanchored_entries == 1 { " entry is" } @else { " entries are" }
                    " newer than that and not anchored yet (the service anchors every half minute): the check against the log above covers them."
                }
            }
        }
        @if !patient.is_empty() {
            p { a href={ "/audit?kind=record&id=" (patient) } { "← The record's trail" } }
        }
    }
}
