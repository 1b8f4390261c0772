//! The markup of the staff's pages: their teams, a team's inbox, and the
//! moves on a conversation.

use maud::{Markup, html};
use proto::inbox as pb;

use super::{status, waited, when};
use crate::session::Session;

fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// The teams a professional works in.
pub fn teams(account: &pb::MyAccountReply) -> Markup {
    html! {
        h1 { "Team inboxes" }
        @if account.teams.is_empty() {
            p.card { "You are not a member of any team yet. An administrator adds you to your teams." }
        }
        ul.list {
            @for t in &account.teams {
                li {
                    a.thread href={ "/teams/" (t.team_id) "/inbox" } {
                        span.subject { (t.name) }
                        @if t.lead { strong.nhsuk-tag.nhsuk-tag--white.badge { "Lead" } }
                        @let c = t.counts.unwrap_or_default();
                        div.meta {
                            @if c.unassigned > 0 { span.unassigned { (c.unassigned) " unassigned" } } @else { "none unassigned" }
                            " · " (c.assigned) " assigned · " (c.archived) " archived"
                        }
                        div.meta { @if t.contactable { "Patients can message you here" } @else { "Not contactable by patients" } }
                    }
                }
            }
        }
        p { a href="/messages" { "My inbox" } ": the conversations you are on, across your teams." }
    }
}

/// Which of a team's threads the inbox shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    Unassigned,
    Mine,
    Others,
    Active,
    Archived,
}

impl Show {
    pub fn parse(s: &str) -> Self {
        match s {
            "mine" => Show::Mine,
            "others" => Show::Others,
            "active" => Show::Active,
            "archived" => Show::Archived,
            _ => Show::Unassigned,
        }
    }

    /// The filter's name on the page.
    pub fn label(self) -> &'static str {
        match self {
            Show::Unassigned => "Unassigned",
            Show::Mine => "Assigned to me",
            Show::Others => "Assigned to others",
            Show::Active => "All active",
            Show::Archived => "Archived",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Show::Unassigned => "unassigned",
            Show::Mine => "mine",
            Show::Others => "others",
            Show::Active => "active",
            Show::Archived => "archived",
        }
    }

    pub fn filters(self, team_id: &str, prefix: &str) -> pb::Filters {
        let (status, assignment) = match self {
            Show::Unassigned => (pb::StatusFilter::Active, pb::AssignmentFilter::Unassigned),
            Show::Mine => (pb::StatusFilter::Active, pb::AssignmentFilter::AssignedToMe),
            Show::Others => (
                pb::StatusFilter::Active,
                pb::AssignmentFilter::AssignedToOthers,
            ),
            Show::Active => (pb::StatusFilter::Active, pb::AssignmentFilter::Any),
            Show::Archived => (pb::StatusFilter::Archived, pb::AssignmentFilter::Any),
        };
        pb::Filters {
            status: status as i32,
            assignment: assignment as i32,
            team_id: team_id.to_string(),
            patient_name_prefix: prefix.to_string(),
            ..Default::default()
        }
    }
}

/// What a team inbox page shows.
pub struct TeamInbox<'a> {
    pub team_id: &'a str,
    pub team_name: &'a str,
    pub reply: &'a pb::TeamInboxReply,
    pub show: Show,
    pub search: &'a str,
    /// Newest activity first, not longest-waiting first.
    pub recent: bool,
    pub older: bool,
    /// Who looks at it (person id): "Assigned to me" counts theirs.
    pub me: &'a str,
    /// When the page is drawn, for how long patients have waited.
    pub now: std::time::SystemTime,
}

fn link(team: &str, show: Show, search: &str, recent: bool) -> String {
    let mut to = format!("/teams/{team}/inbox?show={}", show.as_str());
    if !search.is_empty() {
        to.push_str("&q=");
        to.extend(form_urlencoded::byte_serialize(search.as_bytes()));
    }
    if recent {
        to.push_str("&sort=recent");
    }
    to
}

/// A team's shared inbox: filters with counts, a patient-name search, who
/// is helping whom, and the threads (assignee on every row).
pub fn team_inbox(v: &TeamInbox<'_>) -> Markup {
    let counts = v.reply.counts.unwrap_or_default();
    // Who is helping whom counts each assignee's active conversations.
    let mine = v
        .reply
        .helping
        .iter()
        .filter(|h| h.assignee.as_ref().is_some_and(|a| a.person_id == v.me))
        .map(|h| h.threads)
        .sum::<u32>();
    let empty = pb::ThreadPage::default();
    let page = v.reply.page.as_ref().unwrap_or(&empty);
    let tab = |show: Show, label: &str, count: u32| {
        html! {
            a href=(link(v.team_id, show, v.search, v.recent)) aria-current=[(v.show == show).then_some("page")] {
                (label) " " span.count { "(" (count) ")" }
            }
        }
    };
    html! {
        p { a href="/teams" { "← Team inboxes" } }
        h1 { (v.team_name) }
        form.search method="get" action={ "/teams/" (v.team_id) "/inbox" } role="search" {
            input type="hidden" name="show" value=(v.show.as_str());
            @if v.recent { input type="hidden" name="sort" value="recent"; }
            label.nhsuk-label for="q" { "Find a patient" span.hint { " part of their name, their date of birth, hospital or NHS number" } }
            input.nhsuk-input #q type="search" name="q" value=(v.search) autocomplete="off";
            button.nhsuk-button.nhsuk-button--secondary type="submit" { "Search" }
        }
        div data-live="list" {
            nav.tabs aria-label="Which conversations" {
                (tab(Show::Unassigned, "Unassigned", counts.unassigned))
                (tab(Show::Mine, "Assigned to me", mine))
                (tab(Show::Others, "Assigned to others", counts.assigned.saturating_sub(mine)))
                (tab(Show::Active, "All active", counts.unassigned + counts.assigned))
                (tab(Show::Archived, "Archived", counts.archived))
            }
            nav.tabs.careline-order aria-label="Order" {
                span.hint { "Order: " }
                a href=(link(v.team_id, v.show, v.search, false)) aria-current=[(!v.recent).then_some("page")] { "Longest waiting first" }
                a href=(link(v.team_id, v.show, v.search, true)) aria-current=[v.recent.then_some("page")] { "Most recent first" }
            }
            @if !v.reply.away.is_empty() {
                div.notice.careline-away {
                    strong { "Away now: " }
                    @for (i, a) in v.reply.away.iter().enumerate() {
                        @if i > 0 { "; " }
                        (a.person.as_ref().map(|p| p.display.as_str()).unwrap_or("Someone"))
                        " until " (super::record::day(a.until.as_ref()))
                        @if let Some(d) = &a.deputy { " (" (d.name) " stands in)" }
                    }
                }
            }
            @if !v.reply.helping.is_empty() {
                details.card {
                    summary { "Who is helping whom" }
                    ul {
                        @for h in &v.reply.helping {
                            li { (h.assignee.as_ref().map(|p| p.display.as_str()).unwrap_or("Someone")) ": " (h.threads) @if h.threads == 1 { " conversation" } @else { " conversations" } }
                        }
                    }
                }
            }
            @if page.threads.is_empty() {
                p.card { "No conversations here." }
            } @else {
                (super::table(
                    "careline-inbox",
                    "Conversations",
                    &["Conversation", "Patient", "Waiting", "Assigned to"],
                    page.threads.iter().map(|t| super::Row { unread: t.unread_count > 0, cells: inbox_cells(t, v.now) }).collect(),
                ))
            }
        }
        p { a.nhsuk-button.nhsuk-button--secondary href={ "/teams/" (v.team_id) "/start" } { "Start a conversation" } }
        p { a href={ "/teams/" (v.team_id) "/not-read" } { "Not read by the patient" } ": answers the patient has not opened, to follow up by phone." }
        nav.tabs aria-label="More conversations" {
            @if v.older {
                a href=(link(v.team_id, v.show, v.search, v.recent)) { "← First page" }
            }
            @if !page.next_cursor.is_empty() {
                a href={ (link(v.team_id, v.show, v.search, v.recent)) "&cursor=" (page.next_cursor) } { "Next page →" }
            }
        }
        (shortcuts_help(None))
    }
}

/// A team inbox's list beside the conversation `open` (wide screens: see
/// `shortcuts.js`), dense: whose, what, how long they have waited, who
/// handles it. Its links go to each conversation, with the list beside it.
pub fn queue(v: &TeamInbox<'_>, open: &str) -> Markup {
    let empty = pb::ThreadPage::default();
    let page = v.reply.page.as_ref().unwrap_or(&empty);
    html! {
        h1.nhsuk-u-visually-hidden { (v.team_name) ": conversations" }
        div #queue-list {
            h2.careline-queue__title {
                a href=(link(v.team_id, v.show, v.search, v.recent)) { (v.team_name) }
                span.hint { " · " (v.show.label()) @if v.recent { ", most recent first" } @else { ", longest waiting first" } }
            }
            @if page.threads.is_empty() {
                p.hint { "No conversations here." }
            }
            @if !page.threads.iter().any(|t| t.thread_id == open) {
                p.hint { "The conversation open beside this list is no longer among these." }
            }
            ul.careline-queue__list {
                @for t in &page.threads {
                    li aria-current=[(t.thread_id == open).then_some("page")] {
                        a href={ "/threads/" (t.thread_id) } data-row {
                            strong.careline-queue__patient { (t.patient_name) }
                            " " (super::identity(t.patient_identity.as_ref()))
                            span.careline-queue__subject.unread[t.unread_count > 0] {
                                (t.subject)
                                @if t.unread_count > 0 { " " strong.nhsuk-tag.nhsuk-tag--blue.badge { (t.unread_count) " new" } }
                            }
                            @if !t.preview.is_empty() { span.careline-preview { (t.preview) } }
                            span.careline-queue__meta {
                                @if let Some(since) = &t.waiting_since {
                                    span.waiting { "waiting " (waited(since, v.now)) }
                                } @else {
                                    "answered"
                                }
                                " · "
                                @match &t.assignee {
                                    Some(a) => { "with " (a.name) }
                                    None => { span.unassigned { "unassigned" } }
                                }
                            }
                        }
                    }
                }
            }
            @if page.threads.len() > 1 {
                p.hint { kbd { "j" } " / " kbd { "k" } " move through the list, " kbd { "Enter" } " opens." }
            }
        }
    }
}

/// A team inbox row's cells: the conversation (unread, status, size), the
/// patient, how long they have waited, who handles it.
fn inbox_cells(t: &pb::ThreadSummary, now: std::time::SystemTime) -> Vec<Markup> {
    vec![
        html! {
            a.subject href={ "/threads/" (t.thread_id) } data-row { (t.subject) }
            @if t.unread_count > 0 {
                " " strong.nhsuk-tag.nhsuk-tag--blue.badge { (t.unread_count) " new" }
            }
            @if let Some(b) = status(t) { " " (b) }
            @if !t.preview.is_empty() { span.careline-preview { (t.preview) } }
            span.hint { (t.message_count) @if t.message_count == 1 { " message" } @else { " messages" } }
        },
        html! { strong { (t.patient_name) } br; (super::identity(t.patient_identity.as_ref())) },
        html! {
            @if let Some(since) = &t.waiting_since {
                span.waiting title={ "Their first unanswered message: " (when(Some(since))) } {
                    "waiting " (waited(since, now))
                }
            } @else {
                span.hint { "answered · last activity " (when(t.last_activity_at.as_ref())) }
            }
        },
        html! {
            @match &t.assignee {
                Some(a) => { "with " (a.display) }
                None => { span.unassigned { "unassigned" } }
            }
        },
    ]
}

/// Finding one of a team's patients, to write to them first.
pub fn start(
    team_id: &str,
    team_name: &str,
    search: &str,
    found: Option<&pb::TeamPatientsReply>,
) -> Markup {
    html! {
        p { a href={ "/teams/" (team_id) "/inbox" } { "← " (team_name) } }
        h1 { "Start a conversation" }
        p { "Write first to one of " (team_name) "'s patients: find them, then choose who else is on it." }
        form.search method="get" action={ "/teams/" (team_id) "/start" } role="search" {
            label.nhsuk-label for="q" { "Patient" span.hint { " any part of their name, their date of birth, hospital number or NHS number" } }
            input.nhsuk-input #q type="search" name="q" value=(search) autocomplete="off" required;
            button.nhsuk-button.nhsuk-button--secondary type="submit" { "Find" }
        }
        @if let Some(found) = found {
            @if found.patients.is_empty() {
                p.card { "None of the team's patients has a name, date of birth or number like that. A patient joins the team when a member registers them, or with the team's join code." }
            }
            ul.list {
                @for p in &found.patients {
                    li {
                        a.thread href={ "/messages/new?patient=" (p.person_id) "&team=" (team_id) } {
                            span.subject { (p.name) }
                            div.meta { (super::identity(p.identity.as_ref())) " · write to " (p.name) }
                        }
                    }
                }
            }
        }
    }
}

/// The keyboard shortcuts, listed on a help overlay that `?` opens.
/// The keys of a page: an inbox's (`None`), or a conversation's for
/// someone at `place` on it (only the moves they are offered).
pub fn shortcuts_help(thread: Option<Place>) -> Markup {
    html! {
        dialog #shortcuts aria-labelledby="shortcuts-title" {
            h2 #shortcuts-title { "Keyboard shortcuts" }
            dl.shortcuts {
                @if let Some(place) = thread {
                    @if place == Place::PatientSide {
                        dt { kbd { "a" } } dd { "Assign to me" }
                        dt { kbd { "r" } } dd { "Reply" }
                    }
                    dt { kbd { "n" } } dd { "Write a staff note" }
                    @if place != Place::NotOn {
                        dt { kbd { "e" } } dd { "Archive" }
                    }
                    dt { kbd { "u" } } dd { "Back to the inbox" }
                    dt { kbd { "j" } " / " kbd { "k" } } dd { "Next or previous in the team's list beside it (on a wide screen)" }
                } @else {
                    dt { kbd { "j" } } dd { "Next conversation" }
                    dt { kbd { "k" } } dd { "Previous conversation" }
                    dt { kbd { "Enter" } } dd { "Open it" }
                    dt { kbd { "/" } } dd { "Find a patient" }
                }
                dt { kbd { "?" } } dd { "Show or hide this list" }
            }
            form method="dialog" { button.nhsuk-button.nhsuk-button--secondary type="submit" { "Close" } }
        }
        p.hint { "Press " kbd { "?" } " for keyboard shortcuts." }
    }
}

/// Where a professional is on a conversation: what the rules let them do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// On the patient's side: they write to the patient and handle it.
    PatientSide,
    /// On the staff side: notes only, and nothing the patient would see.
    StaffSide,
    /// Not on it (they see it through a team or a grant): they add
    /// themselves first.
    NotOn,
}

pub fn place(detail: &pb::ThreadDetail, me: &str) -> Place {
    let mine = detail
        .participants
        .iter()
        .filter(|h| h.active)
        .find(|h| h.person.as_ref().is_some_and(|p| p.person_id == me));
    match mine {
        Some(h) if h.staff_side => Place::StaffSide,
        Some(_) => Place::PatientSide,
        None => Place::NotOn,
    }
}

/// The `assignee_was` of a page that showed nobody handling a thread.
pub const NOBODY: &str = "nobody";

/// Someone else took (or dropped) the thread since the page was loaded:
/// who has it now, and whether to take it over (`what` and `to`: the move
/// asked for, asked again knowing).
pub fn take_over(detail: &pb::ThreadDetail, session: &Session, what: &str, to: &str) -> Markup {
    let Some(summary) = &detail.summary else {
        return html! {};
    };
    let id = &summary.thread_id;
    let latest = detail.assignments.last();
    let since = latest
        .map(|a| super::when(a.at.as_ref()))
        .unwrap_or_default();
    let now = summary.assignee.as_ref();
    html! {
        div.problem {
            @match now {
                Some(a) => {
                    h1 { (a.display) " took this conversation" @if !since.is_empty() { " at " (since) } }
                    p { "Your page showed it " @if latest.and_then(|l| l.by.as_ref()).is_some() { "before that" } @else { "differently" } ". Take it over?" }
                }
                None => {
                    h1 { "Nobody is handling this conversation now" }
                    p { "It was unassigned " @if !since.is_empty() { "at " (since) " " } "after your page was loaded. Assign it?" }
                }
            }
            form.inline method="post" action={ "/threads/" (id) "/move" } {
                (csrf(session))
                input type="hidden" name="do" value=(what);
                @if !to.is_empty() { input type="hidden" name="to" value=(to); }
                input type="hidden" name="assignee_was" value=(now.map_or(NOBODY, |a| a.person_id.as_str()));
                button.nhsuk-button type="submit" {
                    @match now { Some(a) => { "Take it over from " (a.display) } None => { "Assign it" } }
                }
            }
            p { a href={ "/threads/" (id) } {
                @match now { Some(a) => { "Leave it with " (a.display) } None => { "Back to the conversation" } }
            } }
        }
    }
}

/// What staff can do on a conversation: assign, note, complete, archive,
/// reopen, leave; and its assignment history. Assigning to a colleague is
/// offered to a lead of one of its teams (`leads`: the teams the viewer
/// leads), whom the command service lets do it.
pub fn moves(detail: &pb::ThreadDetail, session: &Session, leads: &[String]) -> Markup {
    let Some(summary) = &detail.summary else {
        return html! {};
    };
    let me = session.caller.person_id.to_string();
    let id = &summary.thread_id;
    let mine = summary.assignee.as_ref().is_some_and(|a| a.person_id == me);
    let archived = summary.status == pb::ThreadStatus::Archived as i32;
    let complete = summary.status == pb::ThreadStatus::Complete as i32;
    let leading = summary.team_ids.iter().any(|t| leads.contains(t));
    let place = place(detail, &me);
    // Whom the rules let a lead assign it to: a professional on the
    // patient side now (the staff side is not shown to the patient), every
    // one of them (a summary names only the first few), not the assignee.
    let assignee = summary.assignee.as_ref().map(|a| a.person_id.as_str());
    let colleagues: Vec<&pb::Person> = detail
        .participants
        .iter()
        .filter(|h| leading && h.active && !h.staff_side)
        .filter_map(|h| h.person.as_ref())
        .filter(|p| {
            p.kind == pb::PersonKind::Professional as i32
                && p.person_id != me
                && Some(p.person_id.as_str()) != assignee
        })
        .collect();
    // Who this page showed handling it: an assignment from it is refused
    // if that changed meanwhile (see `assign_or_confirm`).
    let shown = assignee.unwrap_or(NOBODY);
    let button = |what: &str, label: &str, key: &str| {
        html! {
            form.inline method="post" action={ "/threads/" (id) "/move" } {
                (csrf(session))
                input type="hidden" name="do" value=(what);
                input type="hidden" name="assignee_was" value=(shown);
                @if matches!(what, "archive" | "leave") {
                    button.nhsuk-button.nhsuk-button--warning type="submit" data-key=(key) { (label) }
                } @else {
                    button.nhsuk-button.nhsuk-button--secondary type="submit" data-key=(key) { (label) }
                }
            }
        }
    };
    html! {
        section.card.moves #moves data-live-part aria-labelledby="moves-title" {
            h2 #moves-title { "Handle this conversation" }
            p {
                @match &summary.assignee {
                    Some(_) if mine => { "Assigned to you." }
                    Some(a) => { "Assigned to " strong { (a.display) } "." }
                    None => { "Nobody is handling it yet." }
                }
            }
            (sides(detail))
            @match place {
                Place::StaffSide => p.hint { "You are on the staff side: the patient does not see you. Write a staff note; to write to the patient or handle the conversation, someone on it adds you to the patient side." }
                Place::NotOn => p.hint { "You are not on this conversation: you see it through your team. Add yourself to it to reply or handle it." }
                Place::PatientSide => {}
            }
            p { a href={ "/threads/" (id) "/add" } {
                @if place == Place::NotOn { "Add yourself, a specialist or a team" } @else { "Add a specialist or a team" }
            } }
            // Only what the rules let this person do (the command service
            // decides; a button it would refuse is not offered).
            @if place != Place::NotOn {
                div.actions {
                    @if !mine && place == Place::PatientSide { (button("assign-me", "Assign to me", "a")) }
                    @if summary.assignee.is_some() && (mine || leading) { (button("unassign", "Unassign", "")) }
                    @if archived || complete {
                        (button("reopen", "Reopen", ""))
                    } @else {
                        (button("complete", "Mark complete", ""))
                    }
                }
                // What takes it away, apart (each asks first).
                div.actions.careline-away {
                    @if !archived { (button("archive", "Archive", "e")) }
                    (button("leave", "Leave this conversation", ""))
                }
            }
            @if !colleagues.is_empty() {
                form method="post" action={ "/threads/" (id) "/move" } {
                    (csrf(session))
                    input type="hidden" name="do" value="assign";
                    input type="hidden" name="assignee_was" value=(shown);
                    label.nhsuk-label for="assignee" { "Assign to a colleague" }
                    select.nhsuk-select #assignee name="to" {
                        @for p in &colleagues {
                            option value=(p.person_id) { (p.display) }
                        }
                    }
                    button.nhsuk-button.nhsuk-button--secondary type="submit" { "Assign" }
                }
            }
            @if !detail.assignments.is_empty() {
                details.careline-history {
                    summary { "Assignment history" }
                    ul {
                        @for a in &detail.assignments {
                            li {
                                (when(a.at.as_ref())) ": "
                                (a.by.as_ref().map(|p| p.display.as_str()).unwrap_or("Someone"))
                                @match &a.assignee {
                                    Some(to) => { " assigned it to " (to.display) }
                                    None => { " unassigned it" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One box for what a professional writes on a conversation, with a switch
/// between a reply to the patient and a staff note that is impossible to
/// miss: the box, its label and its button change with it (`careline.css`,
/// no script needed). Without `replies` (a professional on the team's
/// side) only a note. `draft` is a refused reply, `note` a refused note.
pub fn composer(id: &str, session: &Session, replies: bool, draft: &str, note: &str) -> Markup {
    let noting = !replies || (draft.is_empty() && !note.is_empty());
    let typed = if noting { note } else { draft };
    html! {
        form.composer.only-note[!replies] method="post" enctype="multipart/form-data" action={ "/threads/" (id) "/reply" } {
            (csrf(session))
            @if replies {
                fieldset.nhsuk-fieldset {
                    legend.nhsuk-fieldset__legend.nhsuk-u-visually-hidden { "What you are writing" }
                    div.nhsuk-radios.nhsuk-radios--inline {
                        div.nhsuk-radios__item {
                            input.nhsuk-radios__input #kind-reply type="radio" name="kind" value="reply" checked[!noting];
                            label.nhsuk-label.nhsuk-radios__label for="kind-reply" { "Reply to patient" }
                        }
                        div.nhsuk-radios__item {
                            input.nhsuk-radios__input #kind-note type="radio" name="kind" value="note" checked[noting];
                            label.nhsuk-label.nhsuk-radios__label for="kind-note" { "Staff note" }
                        }
                    }
                }
            } @else {
                input type="hidden" name="kind" value="note";
            }
            p.as-note.hint { strong { "Staff note: " } "only staff on this conversation see it; the patient and carers never do." }
            p.as-reply.hint { "The patient and everyone on this conversation see your reply." }
            (super::body_field_with("body", if replies { "Your message" } else { "Your note" }, typed, !replies))
            @if replies { div.as-reply { (super::files_field()) } }
            button.nhsuk-button type="submit" {
                @if replies { span.as-reply { "Send reply" } }
                span.as-note { "Add note" }
            }
        }
    }
}

/// The team's threads whose latest staff message the patient has not read
/// after `days` days: to chase by phone.
pub fn not_read(
    team_id: &str,
    team_name: &str,
    days: u32,
    reply: &pb::NotReadByPatientReply,
) -> Markup {
    html! {
        p { a href={ "/teams/" (team_id) "/inbox" } { "← " (team_name) } }
        h1 { "Not read by the patient" }
        form.search method="get" action={ "/teams/" (team_id) "/not-read" } {
            label.nhsuk-label for="days" { "Answered at least this many days ago" }
            input.nhsuk-input #days type="number" name="days" min="0" max="365" value=(days) inputmode="numeric";
            button.nhsuk-button.nhsuk-button--secondary type="submit" { "Show" }
        }
        @if reply.threads.is_empty() {
            p.card { "Every patient has read the team's answers older than that." }
        }
        ul.list {
            @for u in &reply.threads {
                @if let Some(t) = &u.thread {
                    li {
                        a.thread href={ "/threads/" (t.thread_id) } data-row {
                            span.subject { (t.subject) }
                            div.meta {
                                strong { (t.patient_name) } " (" (super::identity(t.patient_identity.as_ref())) ")"
                                " · answered " (when(u.last_staff_message_at.as_ref()))
                                @if !u.patient_can_be_emailed {
                                    " · " span.unassigned { "no verified email: they may not know you wrote" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Each recipient's latest notice of this conversation's messages.
/// Whom the emails of a conversation reached, each named as the patient
/// sees them ("the patient", "carer", or for `staff`, by id, their role
/// label and the team that brought them).
pub fn told(reply: &proto::notify::ThreadNotificationsReply, staff: &[(String, String)]) -> Markup {
    let named = |n: &proto::notify::Notification| match staff
        .iter()
        .find(|(id, _)| *id == n.recipient_id)
    {
        Some((_, label)) => label.clone(),
        None => match n.recipient_kind.as_str() {
            "patient" => format!("{} (the patient)", n.recipient_name),
            "carer" => format!("{} (carer)", n.recipient_name),
            _ => n.recipient_name.clone(),
        },
    };
    use proto::notify::DeliveryState;
    // The latest notice per recipient (oldest message first in the reply).
    let mut latest: Vec<&proto::notify::Notification> = Vec::new();
    for n in reply.notifications.iter().filter(|n| !n.reminder) {
        match latest.iter_mut().find(|l| l.recipient_id == n.recipient_id) {
            Some(l) => *l = n,
            None => latest.push(n),
        }
    }
    html! {
        section.card aria-labelledby="told-title" {
            h2 #told-title { "Who was told" }
            @if latest.is_empty() {
                p.hint { "Nobody has been emailed about this conversation yet." }
            }
            ul {
                @for n in &latest {
                    li {
                        strong { (named(n)) } ": "
                        @match DeliveryState::try_from(n.state).unwrap_or_default() {
                            DeliveryState::Sent => { "emailed " (when(n.sent_at.as_ref())) }
                            DeliveryState::Pending => { "email waiting to go" }
                            DeliveryState::Retrying => { "email not sent yet, trying again" @if n.attempts > 0 { " (" (n.attempts) " tries)" } }
                            DeliveryState::Failed => { span.unassigned { "email failed" } @if !n.reason.is_empty() { ": " (n.reason) } }
                            DeliveryState::Undeliverable => {
                                span.unassigned { "cannot be emailed" }
                                @if n.recipient_kind == "patient" {
                                    ": this patient has no verified email: they may not know you wrote"
                                } @else {
                                    ": no verified email address"
                                }
                            }
                            DeliveryState::Unspecified => { "unknown" }
                        }
                    }
                }
            }
        }
    }
}

/// When the notification service does not answer.
pub fn told_unknown() -> Markup {
    html! {
        section.card aria-labelledby="told-title" {
            h2 #told-title { "Who was told" }
            p.hint { "Whom the emails reached cannot be shown just now." }
        }
    }
}

/// Who is on the conversation now, the patient's side and the staff side
/// apart (the patient and carers never see the staff side).
fn sides(detail: &pb::ThreadDetail) -> Markup {
    let on = |staff: bool| -> Vec<&pb::ParticipantHistory> {
        detail
            .participants
            .iter()
            .filter(|p| p.active && p.staff_side == staff)
            .collect()
    };
    let list = |people: Vec<&pb::ParticipantHistory>| {
        html! {
            @for (i, p) in people.iter().enumerate() {
                @if i > 0 { ", " }
                (p.person.as_ref().map(|p| p.display.as_str()).unwrap_or("Someone"))
                @if let Some(away) = &p.deputy_for {
                    span.hint { " (standing in for " (away.name) ", who is away)" }
                }
            }
        }
    };
    let staff = on(true);
    html! {
        dl.sides {
            dt { "Patient's side" }
            dd { (list(on(false))) }
            @if !staff.is_empty() {
                dt { "Staff side " span.hint { "(the patient and carers do not see them)" } }
                dd { (list(staff)) }
            }
        }
    }
}

/// Adding specialists or teams to a conversation, on either side.
pub fn add_people(
    summary: &pb::ThreadSummary,
    who: &pb::WhoCanIMessageReply,
    session: &Session,
    chosen: &[String],
    problem: Option<Markup>,
) -> Markup {
    html! {
        p { a href={ "/threads/" (summary.thread_id) } { "← Back to the conversation" } }
        h1 { "Add a specialist or a team" }
        p.people { "To the conversation about " (summary.patient_name) "." }
        @if let Some(problem) = problem { (problem) }
        form method="post" action={ "/threads/" (summary.thread_id) "/add" } {
            (csrf(session))
            (super::recipient_choices(who, chosen, "Add"))
            label.choice {
                input type="checkbox" name="staff_side" value="yes";
                span { "On the staff side " span.hint { "the patient and carers do not see them; they write staff notes" } }
            }
            button.nhsuk-button type="submit" { "Add them" }
        }
    }
}
