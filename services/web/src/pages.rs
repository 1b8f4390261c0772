//! The pages, as HTML that works without JavaScript: maud escapes every
//! value at compile time. Titles never carry clinical content (a subject
//! or a message): only what kind of page it is.

use maud::{DOCTYPE, Markup, html};

use crate::assets;
use proto::inbox as pb;

use crate::config::DemoPerson;
use crate::session::Session;

pub mod admin;
pub mod privacy;
pub mod record;
pub mod staff;

/// Every page: its title (never clinical content), who is signed in, and
/// the demo warning while demo sign-in is on.
/// Every page: `idle` is how long a session lasts without activity (the
/// page warns before it ends; see `compose.js`).
pub fn layout(
    title: &str,
    session: Option<&Session>,
    demo: bool,
    idle: std::time::Duration,
    body: Markup,
) -> Markup {
    let wide = session.is_some_and(|s| staff_role(s.caller.role));
    html! {
        (DOCTYPE)
        html.nhsuk-template lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " – Careline" }
                link rel="stylesheet" href=(*assets::STYLE_URL);
            }
            body.nhsuk-template__body data-idle=[session.map(|_| idle.as_secs())] {
                a.nhsuk-skip-link href="#main" { "Skip to main content" }
                @if demo {
                    div.careline-demo role="note" {
                        span.long { "Demo sign-in is on: anyone can sign in as anyone. Never use it with real patients." }
                        span.short { "Demo: anyone can be anyone. Not for real patients." }
                    }
                }
                (header(session))
                // A carer always sees whose messages they are reading.
                @if let Some(acting) = session.and_then(|s| s.acting_for.as_ref()) {
                    div.careline-acting role="note" {
                        div.nhsuk-width-container {
                            "You are acting for " strong { (acting.name) } ". " a href="/acting-for" { "Change" }
                        }
                    }
                }
                div.nhsuk-width-container.careline-wide[wide] {
                    main.nhsuk-main-wrapper.nhsuk-main-wrapper--s id="main" { (body) }
                }
                script src=(*assets::COMPOSE_URL) defer {}
                @if let Some(s) = session {
                    script src=(*assets::LIVE_URL) defer {}
                    @if s.caller.role == service_kit::Role::Professional {
                        script src=(*assets::SHORTCUTS_URL) defer {}
                    }
                }
            }
        }
    }
}

/// The design system's header: the service's name, who is signed in (with
/// the role they work as, when they have several) and signing out, then
/// the places their role works in.
fn header(session: Option<&Session>) -> Markup {
    use service_kit::Role;
    let places: &[(&str, &str)] = match session.map(|s| s.caller.role) {
        None => &[],
        Some(Role::Patient) => &[("/messages", "Messages"), ("/record", "My record")],
        Some(Role::Carer) => &[("/messages", "Messages"), ("/acting-for", "Whose messages")],
        Some(Role::Professional) => &[("/messages", "My inbox"), ("/teams", "Team inboxes")],
        Some(Role::Admin) => &[
            ("/messages", "Messages"),
            ("/admin/teams", "Teams"),
            ("/admin/people", "People"),
            ("/admin/systems", "Systems"),
        ],
        Some(Role::Auditor) => &[("/messages", "Messages"), ("/audit", "Audit trails")],
        Some(Role::Operator | Role::System | Role::Service) => &[("/messages", "Messages")],
    };
    let wide = session.is_some_and(|s| staff_role(s.caller.role));
    html! {
        header.nhsuk-header role="banner" {
            div.nhsuk-header__container.nhsuk-width-container.careline-wide[wide] {
                div.nhsuk-header__service {
                    a.nhsuk-header__service-name href="/" { "Careline" }
                }
                @if let Some(s) = session {
                    nav.nhsuk-header__account aria-label="Account" {
                        ul.nhsuk-header__account-list {
                            li.nhsuk-header__account-item {
                                a.nhsuk-header__account-link href="/account" { (s.caller.name) }
                            }
                            @if s.roles.len() > 1 {
                                li.nhsuk-header__account-item {
                                    form.careline-role method="post" action="/session/role" {
                                        input type="hidden" name="csrf" value=(s.csrf);
                                        label.nhsuk-label for="work-as" { "Working as" }
                                        select #work-as name="role" {
                                            @for r in &s.roles {
                                                option value=(r.as_str()) selected[*r == s.caller.role] { (role_name(*r)) }
                                            }
                                        }
                                        button.nhsuk-header__account-button type="submit" { "Switch" }
                                    }
                                }
                            }
                            li.nhsuk-header__account-item {
                                form.nhsuk-header__account-form method="post" action="/sign-out" {
                                    input type="hidden" name="csrf" value=(s.csrf);
                                    button.nhsuk-header__account-button type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
            }
            @if !places.is_empty() {
                nav.nhsuk-header__navigation aria-label="Menu" {
                    div.nhsuk-header__navigation-container.nhsuk-width-container.careline-wide[wide] {
                        ul.nhsuk-header__navigation-list {
                            @for (href, label) in places {
                                li.nhsuk-header__navigation-item {
                                    a.nhsuk-header__navigation-link href=(href) { (label) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether `role` works for the hospital (its pages use the screen's width).
fn staff_role(role: service_kit::Role) -> bool {
    !matches!(role, service_kit::Role::Patient | service_kit::Role::Carer)
}

/// A list page's title with how many of its conversations' messages are
/// unread, first, so a tab in the background shows something arrived:
/// "(3) Messages". A count, never what they say.
pub fn unread_title(title: &str, threads: &[pb::ThreadSummary]) -> String {
    match threads.iter().map(|t| t.unread_count).sum::<u32>() {
        0 => title.to_string(),
        n => format!("({n}) {title}"),
    }
}

/// A row of a [`table`]: its cells, and whether it is marked unread.
pub struct Row {
    pub unread: bool,
    pub cells: Vec<Markup>,
}

/// A table of the design system that becomes a list of labelled rows on a
/// phone: `class` its own, `caption` what it lists (read aloud, not shown),
/// `headings` its columns, each cell labelled by its column on a phone.
pub fn table(class: &str, caption: &str, headings: &[&str], rows: Vec<Row>) -> Markup {
    html! {
        table class={ "nhsuk-table-responsive " (class) } {
            caption.nhsuk-table__caption.nhsuk-u-visually-hidden { (caption) }
            thead.nhsuk-table__head {
                tr { @for h in headings { th scope="col" { (h) } } }
            }
            tbody.nhsuk-table__body {
                @for row in rows {
                    tr.nhsuk-table__row.unread[row.unread] {
                        @for (heading, cell) in headings.iter().zip(row.cells) {
                            td.nhsuk-table__cell {
                                span.nhsuk-table-responsive__heading aria-hidden="true" { (heading) " " }
                                span { (cell) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A role as the pages name it.
fn role_name(role: service_kit::Role) -> &'static str {
    match role {
        service_kit::Role::Professional => "Clinician",
        service_kit::Role::Admin => "Admin",
        service_kit::Role::Auditor => "Privacy officer",
        service_kit::Role::Patient => "Patient",
        service_kit::Role::Carer => "Carer",
        service_kit::Role::Operator => "Operator",
        service_kit::Role::System => "System",
        service_kit::Role::Service => "Hospital system",
    }
}

/// Text someone wrote, with its web addresses (`http://`, `https://`)
/// as links: shown in full, opening in a new tab, telling the other site
/// nothing of where they came from (`noopener noreferrer`). Everything is
/// escaped as text; nothing else becomes markup.
pub fn linked(text: &str) -> Markup {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(at) = next_link(rest) {
        let (before, from) = rest.split_at(at);
        let end = from.find(char::is_whitespace).unwrap_or(from.len());
        let url = trim_link(&from[..end]);
        parts.push((before, None));
        // An address with no host after its scheme ("https://.") is text.
        let host = url.split_once("://").map_or("", |(_, host)| host);
        parts.push((url, (!host.is_empty()).then_some(url)));
        rest = &from[url.len()..];
    }
    parts.push((rest, None));
    html! {
        @for (text, link) in parts {
            @if let Some(url) = link {
                a href=(url) rel="noopener noreferrer" target="_blank" { (text) }
            } @else {
                (text)
            }
        }
    }
}

/// Where the next web address starts in `text`: `http://` or `https://`
/// at the start or after a space or an opening bracket, with something
/// after it.
fn next_link(text: &str) -> Option<usize> {
    // The same bytes, for a search that ignores the scheme's case.
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("http") {
        let at = from + found;
        let after = &text[at..];
        let scheme = ["https://", "http://"]
            .into_iter()
            .find(|s| after.len() > s.len() && after[..s.len()].eq_ignore_ascii_case(s));
        let starts_a_word = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '[' | '<' | '"' | '\''));
        if let Some(scheme) = scheme
            && starts_a_word
            && !after[scheme.len()..].starts_with(char::is_whitespace)
        {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

/// A web address without the punctuation that ends the sentence around it
/// (a closing bracket only when it does not close one in the address).
fn trim_link(url: &str) -> &str {
    let mut url = url;
    loop {
        let Some(last) = url.chars().next_back() else {
            return url;
        };
        let closes = match last {
            ')' => url.matches('(').count() < url.matches(')').count(),
            ']' => url.matches('[').count() < url.matches(']').count(),
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"' | '>' => true,
            _ => false,
        };
        if !closes {
            return url;
        }
        url = &url[..url.len() - last.len_utf8()];
    }
}

/// The longest message or note the services accept, in characters.
pub const BODY_MAX: usize = 20_000;

/// A message box (`id`, named `body`) with `label`, what was typed kept,
/// and its limit said beside it; `live.js` counts the characters as they
/// are typed, and keeps a draft in this browser until it is sent.
/// The files sent with a message: each a download, with its kind and size.
pub fn attachments(thread_id: &str, files: &[pb::Attachment]) -> Markup {
    html! {
        ul.careline-files aria-label="Files" {
            @for f in files {
                li {
                    @if crate::files::previewed(&f.media_type, f.size) {
                        a.careline-preview href={ "/threads/" (thread_id) "/files/" (f.digest) } download=(f.file_name) {
                            img src={ "/threads/" (thread_id) "/files/" (f.digest) "/preview" } alt={ "Preview of " (f.file_name) } loading="lazy";
                        }
                    }
                    a href={ "/threads/" (thread_id) "/files/" (f.digest) } download=(f.file_name) { (f.file_name) }
                    " " span.hint { "(" (kind_words(&f.media_type)) ", " (service_kit::media::size_words(f.size)) ")" }
                }
            }
        }
    }
}

/// A media type in words.
fn kind_words(media_type: &str) -> &'static str {
    match media_type {
        "application/pdf" => "PDF",
        "image/jpeg" => "JPEG image",
        "image/png" => "PNG image",
        "text/plain" => "text",
        "application/dicom" => "DICOM image",
        "application/zip" => "ZIP archive",
        t if t.contains("word") || t.contains("opendocument.text") => "document",
        t if t.contains("sheet") || t.contains("excel") => "spreadsheet",
        t if t.contains("presentation") || t.contains("powerpoint") => "presentation",
        _ => "file",
    }
}

/// Files to send with a reply (optional; the reply's text may then be
/// empty).
pub fn files_field() -> Markup {
    html! {
        div.nhsuk-form-group.careline-attach {
            label.nhsuk-label for="files" { "Attach files (optional)" }
            div.nhsuk-hint #files-hint {
                "A photo, a scan or a document: " (service_kit::media::ACCEPTED) ". Up to 10 files, each up to 100 MB."
            }
            input.nhsuk-file-upload #files type="file" name="files" multiple accept=(service_kit::media::ACCEPT_ATTRIBUTE) aria-describedby="files-hint";
        }
    }
}

/// A message's box; `required` unless files may go instead of text.
pub fn body_field_with(id: &str, label: &str, typed: &str, required: bool) -> Markup {
    let count = format!("{id}-count");
    let used = typed.chars().count();
    html! {
        label.nhsuk-label for=(id) { (label) }
        textarea.nhsuk-textarea id=(id) name="body" required[required] aria-describedby=(count) data-limit=(BODY_MAX) data-draft { (typed) }
        p.hint.count.over[used > BODY_MAX] id=(count) aria-live="polite" {
            @if used > BODY_MAX {
                (thousands(used - BODY_MAX)) @if used - BODY_MAX == 1 { " character" } @else { " characters" }
                " too many: at most " (thousands(BODY_MAX)) "."
            } @else {
                "Up to " (thousands(BODY_MAX)) " characters."
            }
        }
    }
}

/// `n` with a comma between thousands: 20,000.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What to fix in a message the services refused as bad input: empty, or
/// too long (by how much), in words; else the service's own.
pub fn body_problem(typed: &str, refused: &str) -> String {
    let used = typed.chars().count();
    if typed.trim().is_empty() {
        "Write a message before sending it.".into()
    } else if used > BODY_MAX {
        format!(
            "Your message is {} characters long, {} more than the {} a message may have. Shorten it, or send it as two messages.",
            thousands(used),
            thousands(used - BODY_MAX),
            thousands(BODY_MAX)
        )
    } else {
        refused.to_string()
    }
}

pub fn error_box(heading: &str, detail: &str) -> Markup {
    html! {
        div.nhsuk-error-summary role="alert" aria-labelledby="problem" {
            h2.nhsuk-error-summary__title #problem { (heading) }
            div.nhsuk-error-summary__body { p { (detail) } }
        }
    }
}

/// The demo's people in groups, each with what its people show.
const DEMO_GROUPS: [(&str, &str, &[service_kit::Role]); 3] = [
    (
        "Patients and carers",
        "What a patient sees on a phone: conversations with their care teams, a new message, their record, who has looked at it; a carer acts for a patient who gave consent.",
        &[service_kit::Role::Patient, service_kit::Role::Carer],
    ),
    (
        "Clinical staff",
        "A team's shared inbox: assigning, replying, staff notes, adding a specialist, starting a conversation with a patient.",
        &[service_kit::Role::Professional],
    ),
    (
        "Running the service",
        "Teams and people (admin), who read or changed a record (privacy officer), and the service's health (operator).",
        &[
            service_kit::Role::Admin,
            service_kit::Role::Auditor,
            service_kit::Role::Operator,
        ],
    ),
];

pub fn sign_in(
    demo: Option<&[DemoPerson]>,
    oidc: Option<&str>,
    next: &str,
    csrf: &str,
    notice: Option<&str>,
) -> Markup {
    html! {
        h1 { "Sign in to Careline" }
        @if let Some(notice) = notice {
            div.notice role="status" { (notice) }
        }
        @if let Some(label) = oidc {
            p { a.nhsuk-button href={ "/sign-in/oidc?next=" (form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()) } { (label) } }
        }
        @match demo {
            Some(people) => {
                p { "Choose who to be. Each is a person of the demo hospital." }
                @for (title, what, roles) in DEMO_GROUPS {
                    @let group: Vec<&DemoPerson> = people.iter().filter(|p| roles.contains(&p.caller.role)).collect();
                    @if !group.is_empty() {
                        section.careline-personas aria-label=(title) {
                            h2 { (title) }
                            p.hint { (what) }
                            ul.careline-persona-list {
                                @for p in group {
                                    li {
                                        form.careline-persona method="post" action="/sign-in/demo" {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="next" value=(next);
                                            input type="hidden" name="person_id" value=(p.caller.person_id);
                                            span { strong { (p.caller.name) } br; span.hint { (p.what) } }
                                            button.nhsuk-button.nhsuk-button--secondary.nhsuk-button--small type="submit" {
                                                "Sign in" span.nhsuk-u-visually-hidden { " as " (p.caller.name) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            None if oidc.is_none() => {
                p { "Sign-in is not set up on this server. Ask your hospital's Careline administrator." }
            }
            None => {}
        }
    }
}

fn status(s: &pb::ThreadSummary) -> Option<Markup> {
    match pb::ThreadStatus::try_from(s.status).unwrap_or_default() {
        pb::ThreadStatus::Archived => {
            Some(html! { strong.nhsuk-tag.nhsuk-tag--grey.badge { "Archived" } })
        }
        pb::ThreadStatus::Complete => {
            Some(html! { strong.nhsuk-tag.nhsuk-tag--green.badge { "Complete" } })
        }
        _ => None,
    }
}

/// When something happened, as people say it: "today 14:05",
/// "yesterday 09:30", "Mon 3 Dec, 14:05", or with its year when not this
/// year's (UTC).
pub fn when(t: Option<&prost_types::Timestamp>) -> String {
    when_from(t, time::OffsetDateTime::now_utc())
}

fn when_from(t: Option<&prost_types::Timestamp>, now: time::OffsetDateTime) -> String {
    use time::macros::format_description as f;
    let Some(t) = t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok()) else {
        return String::new();
    };
    let clock = t.format(f!("[hour]:[minute]")).unwrap_or_default();
    let day = t.date();
    let said = if day == now.date() {
        return format!("today {clock}");
    } else if Some(day) == now.date().previous_day() {
        return format!("yesterday {clock}");
    } else if day.year() == now.year() {
        t.format(f!(
            "[weekday repr:short] [day padding:none] [month repr:short]"
        ))
    } else {
        t.format(f!("[day padding:none] [month repr:short] [year]"))
    };
    format!("{}, {clock}", said.unwrap_or_default())
}

/// How long since `since`, in the largest whole unit: "under a minute",
/// "25 min", "3 h", "2 days".
pub fn waited(since: &prost_types::Timestamp, now: std::time::SystemTime) -> String {
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let minutes = (now - since.seconds).max(0) / 60;
    match minutes {
        0 => "under a minute".into(),
        1..60 => format!("{minutes} min"),
        60..1440 => format!("{} h", minutes / 60),
        1440..2880 => "1 day".into(),
        _ => format!("{} days", minutes / 1440),
    }
}

/// Whom a conversation is with, as its patient or carer sees it: its teams
/// ("With Renal Unit"), else the professionals on it ("With Nina Patel
/// (Renal Nurse) and 2 others").
/// What tells a patient apart from another of the same name, as staff see
/// it beside the name: "born 23 April 1961 · hospital no. RX4409217 · NHS
/// no. 943 476 5919"; said plainly when nothing is recorded.
pub fn identity(identity: Option<&pb::PatientIdentity>) -> Markup {
    use service_kit::patient_identity::{nhs_spaced, spoken};
    let identity = identity.cloned().unwrap_or_default();
    let born = spoken(&identity.date_of_birth);
    let parts: Vec<String> = [
        (!born.is_empty()).then(|| format!("born {born}")),
        (!identity.hospital_number.is_empty())
            .then(|| format!("hospital no. {}", identity.hospital_number)),
        (!identity.nhs_number.is_empty())
            .then(|| format!("NHS no. {}", nhs_spaced(&identity.nhs_number))),
    ]
    .into_iter()
    .flatten()
    .collect();
    html! {
        @if parts.is_empty() {
            span.careline-identity.careline-identity--none { "no date of birth or number recorded" }
        } @else {
            span.careline-identity {
                @for (i, part) in parts.iter().enumerate() {
                    @if i > 0 { " · " }
                    span.careline-identity__part { (part) }
                }
            }
        }
    }
}

fn with_whom(t: &pb::ThreadSummary) -> String {
    let teams: Vec<&str> = t
        .team_names
        .iter()
        .map(String::as_str)
        .filter(|n| !n.is_empty())
        .collect();
    match teams.as_slice() {
        [] => {}
        [one] => return format!("With {one}"),
        [rest @ .., last] => return format!("With {} and {last}", rest.join(", ")),
    }
    let staff: Vec<&str> = t
        .participants
        .iter()
        .filter(|p| p.kind == pb::PersonKind::Professional as i32)
        .map(|p| p.display.as_str())
        .collect();
    match staff.as_slice() {
        [] => "Waiting for the care team".into(),
        [one] => format!("With {one}"),
        [one, two] => format!("With {one} and {two}"),
        [one, rest @ ..] => format!("With {one} and {} others", rest.len()),
    }
}

/// Which of a person's conversations the message list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListView {
    Active,
    Archived,
    /// Staff: those they are on in person (added by name, or started).
    ByName,
}

impl ListView {
    pub fn parse(s: &str, staff: bool) -> Self {
        match s {
            "archived" if staff => ListView::Archived,
            "by-name" if staff => ListView::ByName,
            _ => ListView::Active,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ListView::Active => "active",
            ListView::Archived => "archived",
            ListView::ByName => "by-name",
        }
    }
}

/// The message list (a carer's names whose it is in the layout); `older`
/// when it is not the newest page. Staff see it as "My inbox", across
/// their teams, with the conversations they were added to by name.
pub fn messages(
    page: &pb::ThreadPage,
    list: ListView,
    staff: bool,
    can_write: bool,
    older: bool,
) -> Markup {
    let view = list.as_str();
    let tab = |to: ListView, label: &str| {
        html! {
            a href={ "/messages?view=" (to.as_str()) } aria-current=[(list == to).then_some("page")] { (label) }
        }
    };
    html! {
        h1 { @if staff { "My inbox" } @else { "Messages" } }
        @if can_write {
            a.nhsuk-button href="/messages/new" { "Create new message" }
        }
        @if staff {
            p.people { "Conversations you are on, across your teams. To write to a patient first, open a "
                a href="/teams" { "team inbox" } " and choose Start a conversation." }
        }
        // Archiving is the team's housekeeping: a patient's or carer's list
        // is every conversation of theirs, so they have no tabs.
        @if staff {
            nav.tabs.below aria-label="Which messages" {
                (tab(ListView::Active, "Active"))
                (tab(ListView::ByName, "Added by name"))
                (tab(ListView::Archived, "Archived"))
            }
        }
        div data-live="list" {
        @if page.threads.is_empty() {
            p.card { @match list {
                ListView::Archived => "No archived messages.",
                ListView::ByName => "Nobody has added you to a conversation by name.",
                ListView::Active => "No messages yet.",
            } }
        }
        ul.list {
            @for t in &page.threads {
                li {
                    a.thread.unread[t.unread_count > 0] href={ "/threads/" (t.thread_id) } {
                        span.subject { (t.subject) }
                        @if t.unread_count > 0 {
                            strong.nhsuk-tag.nhsuk-tag--blue.badge { (t.unread_count) " new" }
                        }
                        @if staff { @if let Some(b) = status(t) { (b) } }
                        @if !t.preview.is_empty() { span.careline-preview { (t.preview) } }
                        div.meta {
                            // Staff see whose it is; a patient or carer whom it is with.
                            @if staff { (t.patient_name) " (" (identity(t.patient_identity.as_ref())) ")" } @else { (with_whom(t)) }
                            " · " (when(t.last_activity_at.as_ref()))
                            " · " (t.message_count) @if t.message_count == 1 { " message" } @else { " messages" }
                        }
                    }
                }
            }
        }
        }
        nav.tabs aria-label="More messages" {
            @if older {
                a href={ "/messages?view=" (view) } { "← Newest" }
            }
            @if !page.next_cursor.is_empty() {
                a href={ "/messages?view=" (view) "&cursor=" (page.next_cursor) } { "Older messages →" }
            }
        }
    }
}

/// Where a conversation's back link goes: the team inbox it was opened
/// from, by name, rather than the person's own list.
pub struct Back {
    pub to: String,
    pub name: String,
}

/// One thread: its messages (with who has seen each), who is on it, and
/// the reply box (keeping what was typed when a reply was refused); its
/// back link to `back`, or to the person's own list.
pub fn thread(
    detail: &pb::ThreadDetail,
    session: &Session,
    leads: &[String],
    draft: &str,
    note: &str,
    problem: Option<Markup>,
    back: Option<&Back>,
) -> Markup {
    let Some(summary) = &detail.summary else {
        return html! {};
    };
    let me = session.caller.person_id.to_string();
    let id = &summary.thread_id;
    let archived = summary.status == pb::ThreadStatus::Archived as i32;
    let staff = session.caller.role == service_kit::Role::Professional;
    html! {
        @match back {
            Some(back) => p { a href=(back.to) { "← " (back.name) } },
            None => p { a href="/messages" { "← All messages" } },
        }
        // Staff see whose record it is first, unmistakably.
        @if staff {
            p.careline-patient {
                span.nhsuk-u-visually-hidden { "Patient: " }
                strong { (summary.patient_name) } " " (identity(summary.patient_identity.as_ref()))
            }
        }
        h1 { (summary.subject) }
        p.people {
            // A patient is shown whom it is with; a carer whose it is too.
            @if !staff && session.caller.role != service_kit::Role::Patient { "About " (summary.patient_name) ". " }
            @if !staff { (with_whom(summary)) ". " }
            "On this conversation: "
            @for (i, p) in summary.participants.iter().enumerate() {
                @if i > 0 { ", " } (p.display)
            }
            @if staff { @if let Some(b) = status(summary) { " " (b) } }
        }
        @if staff { (staff::moves(detail, session, leads)) }
        div data-live=(id) aria-live="polite" {
        @if detail.earlier_messages > 0 {
            p.hint { (detail.earlier_messages) " earlier messages are not shown." }
        }
        // Staff notes among the messages, in time order, unmistakably apart.
        @for entry in timeline(detail) {
            @match entry {
                Entry::Message(m) => {
                    @let author = m.author.as_ref();
                    @let mine = author.is_some_and(|a| a.person_id == me);
                    // A notice from one of the hospital's systems, for a team.
                    @let automatic = author.is_some_and(|a| a.kind == pb::PersonKind::System as i32);
                    article.message.mine[mine] id={ "m" (m.seq) } {
                        div {
                            span.who { (author.map(|a| a.display.as_str()).unwrap_or("Someone")) }
                            @if automatic { span.hint { " · sent automatically" } }
                        }
                        div.when { (when(m.posted_at.as_ref())) }
                        @if !m.body.is_empty() { p.body { (linked(&m.body)) } }
                        @if !m.attachments.is_empty() { (attachments(id, &m.attachments)) }
                        @let seen: Vec<&str> = detail.read_receipts.iter()
                            .filter(|r| r.seq == m.seq)
                            .filter_map(|r| r.reader.as_ref())
                            .filter(|r| author.is_none_or(|a| a.person_id != r.person_id) && r.person_id != me)
                            .map(|r| r.name.as_str())
                            .collect();
                        @if !seen.is_empty() {
                            div.seen { "Seen by " (seen.join(", ")) }
                        }
                    }
                }
                Entry::Note(n) => {
                    article.message.note aria-label="Staff note" {
                        p.label { "Staff note — not visible to the patient" }
                        div { span.who { (n.author.as_ref().map(|a| a.display.as_str()).unwrap_or("Someone")) } }
                        div.when { (when(n.posted_at.as_ref())) }
                        p.body { (linked(&n.body)) }
                    }
                }
            }
        }
        }
        // Staff write to the patient only from the patient's side.
        @let replies = !staff || staff::place(detail, &me) == staff::Place::PatientSide;
        @if staff {
            h2 id="reply" { @if replies { "Reply or add a staff note" } @else { "Add a staff note" } }
            p #presence .notice role="status" hidden {}
            @if let Some(problem) = &problem { (problem) }
            @if archived && replies {
                p.hint { "This conversation is archived. A reply brings it back to the team." }
            }
            (staff::composer(id, session, replies, draft, note))
            (staff::shortcuts_help(Some(staff::place(detail, &me))))
        } @else {
            h2 id="reply" { "Reply" }
            @if let Some(problem) = &problem { (problem) }
            form method="post" enctype="multipart/form-data" action={ "/threads/" (id) "/reply" } {
                input type="hidden" name="csrf" value=(session.csrf);
                (body_field_with("body", "Your message", draft, false))
                (files_field())
                button.nhsuk-button type="submit" { "Send reply" }
            }
        }
    }
}

/// A conversation's messages and staff notes, one list.
enum Entry<'a> {
    Message(&'a pb::Message),
    Note(&'a pb::Message),
}

/// The messages and the staff notes of `detail` in the order they were
/// written (a message before a note of the same instant).
fn timeline(detail: &pb::ThreadDetail) -> Vec<Entry<'_>> {
    let at = |t: Option<&prost_types::Timestamp>| t.map_or((0, 0), |t| (t.seconds, t.nanos));
    let mut entries: Vec<((i64, i32), u8, Entry<'_>)> = detail
        .messages
        .iter()
        .map(|m| (at(m.posted_at.as_ref()), 0, Entry::Message(m)))
        .chain(
            detail
                .staff_notes
                .iter()
                .map(|n| (at(n.posted_at.as_ref()), 1, Entry::Note(n))),
        )
        .collect();
    // Stable: each list keeps its own order within one instant.
    entries.sort_by_key(|(at, kind, _)| (*at, *kind));
    entries.into_iter().map(|(_, _, e)| e).collect()
}

/// Whom the person may write to, as the inbox answers it.
#[derive(Debug, Default)]
pub struct NewMessage<'a> {
    pub subject: &'a str,
    pub body: &'a str,
    pub chosen: &'a [String],
    pub carers: &'a [String],
}

/// The teams and professionals `who` offers, as checkboxes named `to`
/// (`team:<id>`, `professional:<id>`), those in `chosen` ticked.
pub fn recipient_choices(who: &pb::WhoCanIMessageReply, chosen: &[String], legend: &str) -> Markup {
    let chosen = |v: &str| chosen.iter().any(|c| c == v);
    let team_choice = |t: &pb::TeamContact| {
        let value = format!("team:{}", t.team_id);
        let via = match (&t.default_contact, t.auto_cc) {
            (_, true) => "Everyone in the team who answers messages reads it.".to_string(),
            (Some(d), false) => format!("It reaches {}.", d.display),
            (None, false) => String::new(),
        };
        // The team's own words as a sentence, then whom it reaches.
        let description = t.description.trim();
        let description = if description.is_empty() || description.ends_with(['.', '!', '?']) {
            description.to_string()
        } else {
            format!("{description}.")
        };
        let hint = [description.as_str(), via.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        choice(
            "to",
            &value,
            chosen(&value),
            html! { strong { (t.name) } },
            &hint,
        )
    };
    html! {
        fieldset.nhsuk-fieldset.careline-choices {
            legend.nhsuk-fieldset__legend.nhsuk-fieldset__legend--s { (legend) }
            div.nhsuk-checkboxes {
                @for t in &who.teams { (team_choice(t)) }
                @for p in &who.professionals {
                    @let value = format!("professional:{}", p.person.as_ref().map(|p| p.person_id.as_str()).unwrap_or_default());
                    @let hint = if p.default_contact { format!("{}: the team's main contact", p.team_name) } else { p.team_name.clone() };
                    @let hint = match (&p.away_until, &p.stand_in) {
                        (Some(until), Some(s)) => format!("{hint}. Away, back on {}: your message also goes to {}", record::day(Some(until)), s.display),
                        (Some(until), None) => format!("{hint}. Away, back on {}", record::day(Some(until))),
                        _ => hint,
                    };
                    (choice("to", &value, chosen(&value), html! { (p.person.as_ref().map(|p| p.display.as_str()).unwrap_or_default()) }, &hint))
                }
            }
            @if !who.other_teams.is_empty() {
                p.hint { "Also open to you:" }
                div.nhsuk-checkboxes {
                    @for t in &who.other_teams { (team_choice(t)) }
                }
            }
        }
    }
}

/// One checkbox of the design system (a large target, its label and hint
/// beside it), named `name` with `value`.
pub fn choice(name: &str, value: &str, checked: bool, label: Markup, hint: &str) -> Markup {
    let id = format!(
        "{name}-{}",
        value.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    let hint_id = format!("{id}-hint");
    html! {
        div.nhsuk-checkboxes__item {
            input.nhsuk-checkboxes__input id=(id) type="checkbox" name=(name) value=(value) checked[checked]
                aria-describedby=[(!hint.is_empty()).then_some(&hint_id)];
            label.nhsuk-label.nhsuk-checkboxes__label for=(id) { (label) }
            @if !hint.is_empty() {
                div.nhsuk-hint.nhsuk-checkboxes__hint id=(hint_id) { (hint) }
            }
        }
    }
}

/// The new-message form. A professional writes to the patient whose
/// record `who` is about (the patient is always on it; "To" adds their
/// colleagues and teams); a patient or carer to the teams and people `who`
/// offers.
pub fn new_message(
    who: &pb::WhoCanIMessageReply,
    session: &Session,
    typed: &NewMessage<'_>,
    problem: Option<Markup>,
) -> Markup {
    let staff = session.caller.role == service_kit::Role::Professional;
    let patient = who.patient.as_ref();
    html! {
        @if staff {
            @if let Some(p) = patient {
                p.careline-patient {
                    span.nhsuk-u-visually-hidden { "Patient: " }
                    strong { (p.name) } " " (identity(p.identity.as_ref()))
                }
            }
            h1 { "New message to " (patient.map(|p| p.name.as_str()).unwrap_or("the patient")) }
            div.notice role="note" {
                "The patient is told by email that a message is waiting for them (the email says nothing of what it is about). "
                "Choose the team it belongs to, so its inbox follows the answer."
            }
        } @else {
            h1 { "New message" }
            div.notice role="note" {
                strong { "Messages are not for emergencies. " }
                "If you need help now, call 999 or go to A&E. For urgent advice, call 111. "
                "Your care team reads messages during working hours."
            }
        }
        @if let Some(problem) = problem { (problem) }
        form method="post" enctype="multipart/form-data" action="/messages/new" {
            input type="hidden" name="csrf" value=(session.csrf);
            @if staff {
                input type="hidden" name="patient" value=(patient.map(|p| p.person_id.as_str()).unwrap_or_default());
            }
            (recipient_choices(who, typed.chosen, if staff { "Also to (the patient is always on it)" } else { "To" }))
            @if !who.carers.is_empty() {
                fieldset.nhsuk-fieldset.careline-choices {
                    legend.nhsuk-fieldset__legend.nhsuk-fieldset__legend--s {
                        "Copy in " span.hint { @if staff { "carers who hold the patient's consent" } @else { "people who may act for you" } }
                    }
                    div.nhsuk-checkboxes {
                        @for c in &who.carers {
                            @let id = c.person.as_ref().map(|p| p.person_id.clone()).unwrap_or_default();
                            (choice("carer", &id, typed.carers.contains(&id), html! { (c.person.as_ref().map(|p| p.display.as_str()).unwrap_or_default()) }, &c.relationship))
                        }
                    }
                }
            }
            label.nhsuk-label for="subject" { "Subject" span.hint { " a few words: what is it about?" } }
            input.nhsuk-input type="text" id="subject" name="subject" maxlength="200" required value=(typed.subject);
            (body_field_with("body", "Message", typed.body, false))
            (files_field())
            @if !staff {
                div.nhsuk-inset-text {
                    span.nhsuk-u-visually-hidden { "Information: " }
                    h2.nhsuk-heading-s { "What happens next" }
                    ul {
                        li { "Your message goes to the teams and people you chose, in their inbox." }
                        li { "When someone replies, we email you to say so. The email never says what the message is about." }
                        li { "Care teams read messages during working hours. If you need help now, call 111, or 999 in an emergency." }
                    }
                }
            }
            button.nhsuk-button type="submit" { "Send message" }
        }
    }
}

/// A patient's own audit trail, a page of it, with the downloads.
/// A patient's own trail: what others read and every change; their own
/// reads only when `mine` (they would flood it: each page they open is one).
pub fn trail(page: &proto::audit::TrailPage, me: &str, mine: bool) -> Markup {
    let own_read = |e: &proto::audit::Entry| {
        e.actor_id == me && e.kind == proto::audit::EntryKind::View as i32
    };
    let hidden = if mine {
        0
    } else {
        page.entries.iter().filter(|e| own_read(e)).count()
    };
    let shown: Vec<&proto::audit::Entry> = page
        .entries
        .iter()
        .filter(|e| mine || !own_read(e))
        .collect();
    let cursor = |c: &str| {
        format!(
            "/record/trail?cursor={c}{}",
            if mine { "&mine=1" } else { "" }
        )
    };
    html! {
        h1 { "Who has looked at my record" }
        p { "Everyone who read or changed your record, and when. Staff notes and colleagues consulted by your care team are listed without their content." }
        p.hint {
            @if mine {
                "Your own views are shown too. " a href="/record/trail" { "Show others' views only" }
            } @else {
                "Your own views are not shown"
                @if hidden > 0 { " (" (hidden) " on this page)" }
                ". " a href="/record/trail?mine=1" { "Show them too" }
            }
        }
        @if shown.is_empty() {
            p.card { "Nobody else has looked at your record on this page of the trail." }
        } @else {
            (table(
                "careline-trail",
                "Who read or changed your record, newest first",
                &["When", "What"],
                shown
                    .iter()
                    .map(|e| Row {
                        unread: false,
                        cells: vec![html! { (when(e.occurred_at.as_ref())) }, html! { (e.action) }],
                    })
                    .collect(),
            ))
        }
        @if !page.next_cursor.is_empty() {
            p { a href=(cursor(&page.next_cursor)) { "Earlier entries →" } }
        }
        p {
            a.nhsuk-button.nhsuk-button--secondary href="/record/trail/download?format=jsonl" { "Download (JSON lines)" }
            " "
            a.nhsuk-button.nhsuk-button--secondary href="/record/trail/download?format=fhir" { "Download (FHIR)" }
        }
    }
}

/// Signed in at the identity provider, but not someone Careline knows.
pub fn not_linked(name: &str, provider: &str) -> Markup {
    html! {
        h1 { "Link your account" }
        p { (provider) " signed you in" @if !name.is_empty() { " as " strong { (name) } } ", but that sign-in is not linked to a Careline account yet. You link it once; after that, signing in is all you do." }
        h2 { "Did your care team register you?" }
        p { "They sent you an email from Careline when they did. Open the link in it now, in this browser: it links your sign-in to your account." }
        h2 { "Did your team give you a join code?" }
        p { "A team's join code lets you sign up as one of its patients." }
        form method="get" action="/join" {
            label.nhsuk-label for="code" { "Join code" span.hint { " as the team gave it to you, for example on its website" } }
            input.nhsuk-input #code type="text" name="code" autocomplete="off" autocapitalize="none" spellcheck="false" required;
            button.nhsuk-button type="submit" { "Continue" }
        }
        p.hint { "Neither? Ask your care team to register you, or to give you their join code." }
    }
}

/// A browser signed in at the identity provider, linked to no one, on a
/// team's join link: sign up as the team's patient.
pub fn sign_up(
    team: &proto::inbox::TeamContact,
    code: &str,
    csrf: &str,
    name: &str,
    email: &str,
) -> Markup {
    html! {
        h1 { "Join " (team.name) }
        @if !team.description.is_empty() { p { (team.description) } }
        p { "Joining makes you one of the team's patients: you can then message them, and they see the messages you send them." }
        div.card {
            p { "We will make your Careline account with the details your sign-in gave us:" }
            dl {
                dt { "Name" } dd { (name) }
                dt { "Email address" } dd { @if email.is_empty() { "none given: you can add one on your Account page" } @else { (email) } }
            }
            p.hint { "We email you only to say there is a new message, never what it says, and only once you have confirmed the address." }
        }
        form method="post" action={ "/join/" (code) "/sign-up" } {
            input type="hidden" name="csrf" value=(csrf);
            button.nhsuk-button type="submit" { "Sign up and join " (team.name) }
        }
    }
}

/// A browser signed in at the identity provider, linked to no one, on the
/// link of a Careline email: link to the person it was sent to.
pub fn invitation(token: &str, csrf: &str, name: &str) -> Markup {
    html! {
        h1 { "Link your account" }
        p { "You followed the link in an email from Careline. Link your sign-in (" strong { (name) } ") to the Careline account that email was sent for: after that, signing in is all you do." }
        p.hint { "Only do this if the email was sent to you. Linking also confirms your email address." }
        form method="post" action="/email/confirm/link" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="token" value=(token);
            button.nhsuk-button type="submit" { "Link my account" }
        }
    }
}

/// A refusal on a conversation: what was refused, and the way back to it.
pub fn refused_on_thread(heading: &str, detail: &str, thread: &str) -> Markup {
    html! {
        div.problem {
            h1 { (heading) }
            p { (detail) }
            p { a href={ "/threads/" (thread) } { "Back to the conversation" } }
        }
    }
}

pub fn problem_page(heading: &str, detail: &str) -> Markup {
    html! {
        div.problem {
            h1 { (heading) }
            p { (detail) }
            p { a href="/messages" { "Go to your messages" } }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_said_as_people_say_them() {
        let now = time::macros::datetime!(2026-12-07 15:00 UTC);
        let at = |s: i64| {
            Some(prost_types::Timestamp {
                seconds: s,
                nanos: 0,
            })
        };
        let t = |d: time::OffsetDateTime| super::when_from(at(d.unix_timestamp()).as_ref(), now);
        for (at, said) in [
            (time::macros::datetime!(2026-12-07 14:05 UTC), "today 14:05"),
            (
                time::macros::datetime!(2026-12-06 09:30 UTC),
                "yesterday 09:30",
            ),
            (
                time::macros::datetime!(2026-12-03 08:00 UTC),
                "Thu 3 Dec, 08:00",
            ),
            (
                time::macros::datetime!(2025-11-30 23:59 UTC),
                "30 Nov 2025, 23:59",
            ),
        ] {
            assert_eq!(t(at), said);
        }
        assert_eq!(super::when_from(None, now), "");
    }

    use super::linked;

    fn shown(text: &str) -> String {
        linked(text).into_string()
    }

    #[test]
    fn web_addresses_in_a_message_are_links_and_nothing_else_is_markup() {
        assert_eq!(
            shown("See https://www.nhs.uk/conditions/asthma/. Thanks"),
            "See <a href=\"https://www.nhs.uk/conditions/asthma/\" rel=\"noopener noreferrer\" \
             target=\"_blank\">https://www.nhs.uk/conditions/asthma/</a>. Thanks"
        );
        // Brackets and sentence punctuation stay outside; a bracket the
        // address holds stays in.
        assert_eq!(
            shown("(http://a.example/x_(y))."),
            "(<a href=\"http://a.example/x_(y)\" rel=\"noopener noreferrer\" \
             target=\"_blank\">http://a.example/x_(y)</a>)."
        );
        // Written markup is text, in the address too.
        assert_eq!(
            shown("<script>x</script> https://a.example/?q=\"><b>"),
            "&lt;script&gt;x&lt;/script&gt; <a href=\"https://a.example/?q=&quot;&gt;&lt;b\" \
             rel=\"noopener noreferrer\" target=\"_blank\">https://a.example/?q=&quot;&gt;&lt;b</a>&gt;"
        );
        // Only http and https, only at the start of a word, only with a host.
        for plain in [
            "javascript:alert(1)",
            "ftp://a.example",
            "xhttps://a.example",
            "https:// a.example",
            "https://.",
            "no address here",
        ] {
            assert!(!shown(plain).contains("<a "), "{plain}: {}", shown(plain));
        }
        assert_eq!(shown("HTTPS://A.EXAMPLE").matches("<a ").count(), 1);
        assert_eq!(
            shown("two: https://a.example and https://b.example")
                .matches("<a ")
                .count(),
            2
        );
    }
}
