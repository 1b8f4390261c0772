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
    /// "reads", "changes", or "" for both.
    pub show: &'a str,
    /// Oldest first (else newest first).
    pub oldest: bool,
    /// Only what this person did and read (their id), or "" for everyone.
    pub who: &'a str,
}

/// A trail's address with the same days, kinds and order; everyone's.
fn trail_link(kind: Kind, id: &str, asked: &Asked<'_>) -> String {
    format!(
        "/audit?kind={}&id={id}&from={}&to={}&show={}&order={}",
        kind.as_str(),
        crate::encode(asked.from),
        crate::encode(asked.to),
        asked.show,
        if asked.oldest { "oldest" } else { "newest" }
    )
}

/// The trail asked for, narrowed to what `who` did and read.
fn only_link(who: &str, asked: &Asked<'_>) -> String {
    format!(
        "{}&who={}",
        trail_link(asked.kind, asked.id, asked),
        crate::encode(who)
    )
}

/// The form, and the entries of the trail it asked for.
/// `find` and `found`: a search by name for whose trail to read, and
/// the people it found.
pub fn trails(
    asked: &Asked<'_>,
    page: Option<&pb::TrailPage>,
    problem: Option<Markup>,
    find: &str,
    found: Option<&[proto::inbox::PersonRecord]>,
) -> Markup {
    let kinds = [
        (Kind::Record, "A patient's record"),
        (Kind::Thread, "A conversation"),
        (Kind::Person, "What a person did and read"),
    ];
    html! {
        h1 { "Audit trails" }
        p { "Every read and every change of a record is on its trail. Names in a trail open that person's own trail, records open the record's." }
        @if let Some(problem) = problem { (problem) }
        form.search method="get" action="/audit" role="search" {
            label.nhsuk-label for="find" { "Find a patient or a member of staff" span.hint { " any part of a name, or a patient's date of birth, hospital or NHS number" } }
            input.nhsuk-input #find type="search" name="find" value=(find) autocomplete="off";
            button.nhsuk-button.nhsuk-button--secondary type="submit" { "Find" }
        }
        @if let Some(found) = found {
            @if found.is_empty() {
                p.card { "Nobody's name, date of birth or number contains that." }
            } @else {
                ul.nhsuk-list.careline-found {
                    @for r in found {
                        @let p = r.person.clone().unwrap_or_default();
                        @let patient = p.kind == proto::inbox::PersonKind::Patient as i32;
                        li {
                            strong { (p.display) } " "
                            span.hint { @if patient { "patient" } @else if p.kind == proto::inbox::PersonKind::Carer as i32 { "carer" } @else { "staff" } }
                            @if r.deactivated { " " strong.nhsuk-tag.nhsuk-tag--grey { "Closed" } }
                            @if patient { br; (super::identity(p.identity.as_ref())) }
                            br;
                            @if patient {
                                a href=(trail_link(Kind::Record, &p.person_id, asked)) { "Their record's trail" } " · "
                            }
                            a href=(trail_link(Kind::Person, &p.person_id, asked)) { "What they did and read" }
                        }
                    }
                }
            }
        }
        h2 { "Or by id" }
        form.card method="get" action="/audit" {
            fieldset.nhsuk-fieldset {
                legend.nhsuk-fieldset__legend.nhsuk-fieldset__legend--s { "Whose trail" }
                div.nhsuk-radios.nhsuk-radios--small {
                    @for (kind, label) in kinds {
                        @let id = format!("kind-{}", kind.as_str());
                        div.nhsuk-radios__item {
                            input.nhsuk-radios__input id=(id) type="radio" name="kind" value=(kind.as_str()) checked[asked.kind == kind];
                            label.nhsuk-label.nhsuk-radios__label for=(id) { (label) }
                        }
                    }
                }
            }
            label.nhsuk-label for="id" { "Id" span.hint { " of the record, conversation or person, as Careline shows it" } }
            input.nhsuk-input #id type="text" name="id" value=(asked.id) autocomplete="off" spellcheck="false" required;
            @if !asked.who.is_empty() { input type="hidden" name="who" value=(asked.who); }
            label.nhsuk-label for="from" { "From" span.hint { " (optional) the first day" } }
            input.nhsuk-input #from type="date" name="from" value=(asked.from);
            label.nhsuk-label for="to" { "To" span.hint { " (optional) the last day" } }
            input.nhsuk-input #to type="date" name="to" value=(asked.to);
            label.nhsuk-label for="show" { "Show" }
            select.nhsuk-select #show name="show" {
                @for (value, label) in [("", "Reads and changes"), ("reads", "Reads only"), ("changes", "Changes only")] {
                    option value=(value) selected[asked.show == value] { (label) }
                }
            }
            label.nhsuk-label for="order" { "Order" }
            select.nhsuk-select #order name="order" {
                option value="newest" selected[!asked.oldest] { "Newest first" }
                option value="oldest" selected[asked.oldest] { "Oldest first" }
            }
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
            @if !asked.who.is_empty() {
                @let named = page.entries.iter().find(|e| e.actor_id == asked.who).map(|e| e.actor_name.as_str());
                div.notice role="status" {
                    "Only what " strong { (named.unwrap_or("one person")) } " did and read on this trail. "
                    a href=(trail_link(asked.kind, asked.id, asked)) { "Show everyone's" }
                }
            }
            @if page.entries.is_empty() {
                p.card { "Nothing on this trail in that time." }
            }
            @else {
                (super::table(
                    "careline-trail",
                    if asked.oldest { "The trail's entries, oldest first" } else { "The trail's entries, newest first" },
                    &["When", "Who", "What", "Kind"],
                    page.entries.iter().map(|e| super::Row { unread: false, cells: entry_cells(e, asked) }).collect(),
                ))
            }
            @if !page.next_cursor.is_empty() {
                p { a href={ @if asked.who.is_empty() { (trail_link(asked.kind, asked.id, asked)) } @else { (only_link(asked.who, asked)) } "&cursor=" (page.next_cursor) } { @if asked.oldest { "Later entries →" } @else { "Earlier entries →" } } }
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

/// A trail entry's cells: when, who (their own trail), what (and the
/// record's trail), and whether it was a read or a change.
fn entry_cells(e: &pb::Entry, asked: &Asked<'_>) -> Vec<Markup> {
    vec![
        html! { (when(e.occurred_at.as_ref())) },
        html! {
            a href=(trail_link(Kind::Person, &e.actor_id, asked)) { (e.actor_name) } br; span.hint { (e.role) }
            @if asked.kind != Kind::Person && asked.who.is_empty() && !e.actor_id.is_empty() {
                br; a.hint href=(only_link(&e.actor_id, asked)) { "only theirs here" }
            }
        },
        html! {
            (e.action)
            @if !e.patient_id.is_empty() && asked.kind != Kind::Record {
                br; a.hint href=(trail_link(Kind::Record, &e.patient_id, asked)) { "the record's trail" }
            }
            // Which conversation, by its own trail (never its subject here).
            @if !e.thread_id.is_empty() && asked.kind != Kind::Thread {
                br; a.hint href=(trail_link(Kind::Thread, &e.thread_id, asked)) { "the conversation's trail" }
            }
        },
        html! {
            @if e.kind == pb::EntryKind::View as i32 {
                strong.nhsuk-tag.nhsuk-tag--white { "read" }
            } @else {
                strong.nhsuk-tag.nhsuk-tag--blue { "change" }
            }
        },
    ]
}
