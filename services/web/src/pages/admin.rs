//! The markup of the admins' pages.

use maud::{Markup, html};
use proto::inbox as pb;

use crate::session::Session;

fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

fn saved(done: &str) -> Option<&'static str> {
    Some(match done {
        "saved" => "Saved.",
        "registered" => {
            "Registered. They are emailed a link to confirm their address; following it, they link their sign-in."
        }
        "verify" => "The verification email is sent again.",
        "email" => "The address is changed; a link to confirm it is sent to it.",
        "deactivate" => "The account is closed.",
        "grant" => "The role is granted.",
        "revoke" => "The role is taken away.",
        "details" => "The date of birth and numbers are saved.",
        "reactivate" => "The account is open again. They rejoin no team or conversation by it.",
        "system" => {
            "Registered. An operator now issues its credential (below); until then it can post nothing."
        }
        "closed" => "The system is closed: it posts nothing more, whatever its credential.",
        _ => return None,
    })
}

fn notice(done: &str) -> Markup {
    html! { @if let Some(n) = saved(done) { div.notice role="status" { (n) } } }
}

/// Every team, and the form to create one.
pub fn teams(
    teams: &[pb::TeamSettings],
    session: &Session,
    done: &str,
    typed: (&str, &str),
    problem: Option<Markup>,
) -> Markup {
    html! {
        h1 { "Teams" }
        (notice(done))
        ul.list {
            @for t in teams {
                li {
                    a.thread href={ "/admin/teams/" (t.team_id) } {
                        span.subject { (t.name) }
                        @if t.auto_cc { strong.nhsuk-tag.nhsuk-tag--white.badge { "Automatic CC" } }
                        @if t.open_to_patients { strong.nhsuk-tag.nhsuk-tag--white.badge { "Open to all patients" } }
                        div.meta { (t.members.len()) @if t.members.len() == 1 { " member" } @else { " members" } }
                    }
                }
            }
        }
        h2 #create { "Create a team" }
        @if let Some(problem) = problem { (problem) }
        form.card method="post" action="/admin/teams" {
            (csrf(session))
            label.nhsuk-label for="name" { "Name" }
            input.nhsuk-input #name type="text" name="name" required maxlength="200" value=(typed.0);
            label.nhsuk-label for="description" { "Description" span.hint { " (optional) what patients see of the team" } }
            input.nhsuk-input #description type="text" name="description" maxlength="500" value=(typed.1);
            button.nhsuk-button type="submit" { "Create the team" }
        }
    }
}

/// The hospital's systems that post notices, and the form to register one:
/// its name and the teams it may speak for (`chosen`, with what was typed).
pub fn systems(
    systems: &[pb::HospitalSystem],
    teams: &[pb::TeamSettings],
    session: &Session,
    (done, closing): (&str, &str),
    typed: (&str, &[String]),
    problem: Option<Markup>,
) -> Markup {
    let closing = systems.iter().find(|s| s.system_id == closing && !s.closed);
    html! {
        @if let Some(s) = closing {
            h1 { "Close " (s.name) "?" }
            div.notice {
                p { "Closing it stops it posting notices at once, whatever its credential. What it posted stays. You cannot open it again here." }
            }
            form method="post" action="/admin/systems" {
                (csrf(session))
                input type="hidden" name="do" value="close";
                input type="hidden" name="system" value=(s.system_id);
                button.nhsuk-button.nhsuk-button--warning type="submit" { "Close " (s.name) }
            }
            p { a href="/admin/systems" { "Keep it open" } }
        }
        h1 { "Hospital systems" }
        p { "The hospital's own systems (appointments, say) post notices to patients on behalf of the teams you register them for, shown as \u{201c}Renal Unit (via Appointments)\u{201d}. They can do nothing else." }
        (notice(done))
        @if systems.is_empty() {
            p.hint { "No system is registered yet." }
        }
        ul.list {
            @for s in systems {
                li.card {
                    strong { (s.name) }
                    @if s.closed { strong.nhsuk-tag.nhsuk-tag--grey.badge { "Closed" } }
                    div.meta { "Posts notices for " (s.team_names.join(", ")) }
                    div.meta { "Its id: " code { (s.system_id) } }
                    @if !s.closed {
                        div.meta { "Credential: an operator runs " code { "careline system-token --system " (s.system_id) " --name \"" (s.name) "\"" } }
                        a href={ "/admin/systems?close=" (s.system_id) } { "Close it" span.nhsuk-u-visually-hidden { " (" (s.name) ")" } }
                    }
                }
            }
        }
        h2 #register { "Register a system" }
        @if let Some(problem) = problem { (problem) }
        form.card method="post" action="/admin/systems" {
            (csrf(session))
            label.nhsuk-label for="name" { "Name" span.hint { " shown to patients, e.g. Appointments" } }
            input.nhsuk-input #name type="text" name="name" required maxlength="200" value=(typed.0);
            fieldset.nhsuk-fieldset.careline-choices {
                legend.nhsuk-fieldset__legend.nhsuk-fieldset__legend--s { "The teams it may post notices for" }
                div.nhsuk-checkboxes {
                    @for t in teams {
                        (super::choice("team", &t.team_id, typed.1.contains(&t.team_id), html! { (t.name) }, ""))
                    }
                }
            }
            button.nhsuk-button type="submit" { "Register the system" }
        }
    }
}

/// What a team's page shows.
pub struct TeamView<'a> {
    pub team: &'a pb::TeamSettings,
    pub found: &'a [pb::PersonRecord],
    pub find: &'a str,
    pub done: &'a str,
    pub base_url: &'a str,
}

fn switch(
    session: &Session,
    team: &str,
    what: &str,
    on: bool,
    label_on: &str,
    label_off: &str,
) -> Markup {
    html! {
        form.inline method="post" action={ "/admin/teams/" (team) } {
            (csrf(session))
            input type="hidden" name="do" value=(what);
            input type="hidden" name="on" value=(if on { "no" } else { "yes" });
            button.nhsuk-button.nhsuk-button--secondary type="submit" { (if on { label_off } else { label_on }) }
        }
    }
}

/// One team: settings, members, the join code and the website links.
pub fn team(v: &TeamView<'_>, session: &Session, problem: Option<Markup>) -> Markup {
    let t = v.team;
    let id = &t.team_id;
    let person_form = |what: &str, person: &str, on: Option<bool>, label: &str| {
        html! {
            form.inline method="post" action={ "/admin/teams/" (id) } {
                (csrf(session))
                input type="hidden" name="do" value=(what);
                input type="hidden" name="person" value=(person);
                @if let Some(on) = on { input type="hidden" name="on" value=(if on { "yes" } else { "no" }); }
                button.nhsuk-button.nhsuk-button--secondary type="submit" { (label) }
            }
        }
    };
    let message_link = format!("{}/teams/{id}/message", v.base_url);
    let join_link = format!("{}/join/{}", v.base_url, t.join_code);
    html! {
        p { a href="/admin/teams" { "← Teams" } }
        h1 { (t.name) }
        @if !t.description.is_empty() { p { (t.description) } }
        (notice(v.done))
        @if let Some(problem) = problem { (problem) }
        section.card aria-labelledby="settings" {
            h2 #settings { "How patients reach the team" }
            p {
                @if t.auto_cc { strong { "Automatic CC is on: " } "a message to the team reaches every contactable member." }
                @else { strong { "Automatic CC is off: " } "a message to the team reaches its default contact." }
            }
            (switch(session, id, "auto-cc", t.auto_cc, "Turn automatic CC on", "Turn automatic CC off"))
            p {
                @if t.open_to_patients { strong { "Open to every patient" } " (like PALS): anyone may write to it." }
                @else { "Only the team's own patients may write to it." }
            }
            (switch(session, id, "open", t.open_to_patients, "Open it to every patient", "Only its own patients"))
            p {
                @if t.alerts { strong { "Alerts are on: " } "every member is emailed of each new message from a patient or carer, whether or not they are on the conversation." }
                @else { strong { "Alerts are off: " } "members are emailed of conversations they are on." }
            }
            (switch(session, id, "alerts", t.alerts, "Turn alerts on", "Turn alerts off"))
            p {
                "Default messaging contact: "
                @match &t.default_contact { Some(p) => { strong { (p.display) } } None => { "none" } }
            }
        }
        section.card aria-labelledby="members" {
            h2 #members { "Members" }
            @if t.members.is_empty() { p { "No members yet." } }
            ul {
                @for m in &t.members {
                    @let p = m.person.clone().unwrap_or_default();
                    li {
                        strong { (p.display) }
                        @if m.lead { " " strong.nhsuk-tag.nhsuk-tag--white.badge { "Lead" } }
                        @if !m.contactable { " " strong.nhsuk-tag.nhsuk-tag--white.badge { "Not contactable by patients" } }
                        div.actions {
                            (person_form("contactable", &p.person_id, Some(!m.contactable), if m.contactable { "Make not contactable" } else { "Make contactable" }))
                            (person_form("lead", &p.person_id, Some(!m.lead), if m.lead { "No longer lead" } else { "Make lead" }))
                            @if t.default_contact.as_ref().is_none_or(|d| d.person_id != p.person_id) {
                                (person_form("default", &p.person_id, None, "Make default contact"))
                            }
                            form.inline method="post" action={ "/admin/teams/" (id) } {
                                (csrf(session))
                                input type="hidden" name="do" value="remove";
                                input type="hidden" name="person" value=(p.person_id);
                                input type="hidden" name="name" value=(p.display);
                                button.nhsuk-button.nhsuk-button--warning type="submit" { "Remove from the team" }
                            }
                        }
                    }
                }
            }
            h3 { "Add a professional" }
            form method="get" action={ "/admin/teams/" (id) } role="search" {
                label.nhsuk-label for="find" { "Find by name" span.hint { " any part of their name" } }
                input.nhsuk-input #find type="search" name="find" value=(v.find) autocomplete="off";
                button.nhsuk-button.nhsuk-button--secondary type="submit" { "Find" }
            }
            @if !v.find.trim().is_empty() && v.found.is_empty() {
                p { "No professional's name contains that." }
            }
            @for r in v.found {
                @let p = r.person.clone().unwrap_or_default();
                form.card method="post" action={ "/admin/teams/" (id) } {
                    (csrf(session))
                    input type="hidden" name="do" value="add";
                    input type="hidden" name="person" value=(p.person_id);
                    strong { (p.display) }
                    label.choice { input type="checkbox" name="contactable" value="yes" checked; span { "Contactable by patients" } }
                    label.choice { input type="checkbox" name="lead" value="yes"; span { "Team lead" } }
                    button.nhsuk-button type="submit" { "Add " (p.name) }
                }
            }
        }
        section.card aria-labelledby="links" {
            h2 #links { "On the team's website" }
            p { "Two links: one to message the team, one for patients to join it." }
            p { "Message this team: " code { (message_link) } }
            @if t.join_code.is_empty() {
                p { "There is no join code yet." }
            } @else {
                p { "Join this team: " code { (join_link) } " (code " strong { (t.join_code.to_uppercase()) } ")" }
                label.nhsuk-label for="button-html" { "The buttons, ready to paste into the website" }
                textarea #button-html readonly rows="4" {
                    "<a href=\"" (message_link) "\">Message this team</a>\n<a href=\"" (join_link) "\">Join this team</a>"
                }
            }
            form method="post" action={ "/admin/teams/" (id) } {
                (csrf(session))
                input type="hidden" name="do" value="code";
                @if t.join_code.is_empty() {
                    button.nhsuk-button.nhsuk-button--secondary type="submit" { "Issue a join code" }
                } @else {
                    input type="hidden" name="replaces" value="yes";
                    button.nhsuk-button.nhsuk-button--warning type="submit" { "Issue a new join code" }
                }
            }
        }
    }
}

/// What the registration form keeps when it is refused.
#[derive(Debug, Default)]
pub struct Register<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub role_label: &'a str,
    pub email: &'a str,
    /// A patient's date of birth, hospital number and NHS number.
    pub identity: [&'a str; 3],
}

fn kind_name(kind: i32) -> &'static str {
    match pb::PersonKind::try_from(kind).unwrap_or_default() {
        pb::PersonKind::Patient => "patient",
        pb::PersonKind::Carer => "carer",
        pb::PersonKind::Professional => "professional",
        pb::PersonKind::System => "hospital system",
        pb::PersonKind::Unspecified => "",
    }
}

/// People found by name, what can be done to each, and the registration.
pub fn people(
    found: &[pb::PersonRecord],
    session: &Session,
    find: &str,
    kind: &str,
    done: &str,
    typed: &Register<'_>,
    problem: Option<Markup>,
) -> Markup {
    let kinds = [
        ("", "Everyone"),
        ("patient", "Patients"),
        ("carer", "Carers"),
        ("professional", "Professionals"),
    ];
    html! {
        h1 { "People" }
        (notice(done))
        form.search method="get" action="/admin/people" role="search" {
            label.nhsuk-label for="find" { "Find" span.hint { " any part of a name, or a patient's date of birth, hospital or NHS number" } }
            input.nhsuk-input #find type="search" name="find" value=(find) autocomplete="off";
            label.nhsuk-label for="kind" { "Who" }
            select.nhsuk-select #kind name="kind" {
                @for (value, label) in kinds { option value=(value) selected[kind == value] { (label) } }
            }
            button.nhsuk-button.nhsuk-button--secondary type="submit" { "Find" }
        }
        @if found.is_empty() { p.card { "Nobody found." } } @else {
            (super::table(
                "careline-people",
                "People found",
                &["Name", "Email address", "Account and roles"],
                found.iter().map(|r| super::Row { unread: false, cells: person_cells(r, find) }).collect(),
            ))
        }
        h2 #register { "Register someone" }
        @if let Some(problem) = problem { (problem) }
        form.card method="post" action="/admin/people" {
            (csrf(session))
            label.nhsuk-label for="reg-kind" { "They are" }
            select.nhsuk-select #reg-kind name="kind" {
                @for (value, label) in [("professional", "A professional"), ("carer", "A carer"), ("patient", "A patient")] {
                    option value=(value) selected[typed.kind == value] { (label) }
                }
            }
            label.nhsuk-label for="reg-name" { "Name" }
            input.nhsuk-input #reg-name type="text" name="name" required maxlength="200" value=(typed.name);
            label.nhsuk-label for="reg-role" { "Role label" span.hint { " professionals only, as patients see it, e.g. Dietitian" } }
            input.nhsuk-input #reg-role type="text" name="role_label" maxlength="100" value=(typed.role_label);
            label.nhsuk-label for="reg-email" { "Email address" span.hint { " a professional's work address; they confirm it by the link we send" } }
            input.nhsuk-input #reg-email type="text" name="email" inputmode="email" autocomplete="off" value=(typed.email);
            fieldset.nhsuk-fieldset {
                legend.nhsuk-fieldset__legend.nhsuk-fieldset__legend--s { "A patient's date of birth and numbers" }
                div.nhsuk-hint { "Each is optional; they tell patients of the same name apart on every staff page." }
                (identity_fields("reg", typed.identity))
            }
            button.nhsuk-button type="submit" { "Register" }
        }
    }
}

/// Closing an account, said before it is confirmed.
pub fn close(person: &str, name: &str, find: &str, session: &Session) -> Markup {
    let who = if name.is_empty() { "this person" } else { name };
    html! {
        p { a href={ "/admin/people?find=" (crate::encode(find)) } { "← People" } }
        h1 { "Close " (who) "'s account?" }
        div.notice {
            p { "Closing the account:" }
            ul {
                li { "signs them out everywhere at once, and they cannot sign in;" }
                li { "takes them off every team and every conversation they are on, and away every staff role;" }
                li { "leaves everything they wrote in the record, as it was." }
            }
            p { "You can open the account again later; they then rejoin no team and no conversation by that." }
        }
        form method="post" action={ "/admin/people/" (person) } {
            (csrf(session))
            input type="hidden" name="do" value="deactivate";
            input type="hidden" name="find" value=(find);
            button.nhsuk-button.nhsuk-button--warning type="submit" { "Close the account" }
        }
    }
}

/// A patient's date of birth and numbers refused: what to fix, and the
/// form again with what was typed.
pub fn details_again(
    person: &str,
    find: &str,
    typed: [&str; 3],
    problem: &str,
    session: &Session,
) -> Markup {
    html! {
        p { a href={ "/admin/people?find=" (crate::encode(find)) } { "← People" } }
        h1 { "Date of birth and numbers" }
        (super::error_box("They were not saved", problem))
        form.card method="post" action={ "/admin/people/" (person) } {
            (csrf(session))
            input type="hidden" name="do" value="details";
            input type="hidden" name="find" value=(find);
            (identity_fields("again", typed))
            button.nhsuk-button type="submit" { "Save" }
        }
    }
}

/// The date of birth, hospital number and NHS number inputs, ids prefixed
/// by `prefix`, keeping what was typed.
pub fn identity_fields(prefix: &str, [birth, hospital, nhs]: [&str; 3]) -> Markup {
    html! {
        label.nhsuk-label for={ (prefix) "-birth" } { "Date of birth" span.hint { " e.g. 23/04/1961" } }
        input.nhsuk-input.nhsuk-input--width-10 id={ (prefix) "-birth" } type="text" name="date_of_birth"
            autocomplete="off" value=(birth);
        label.nhsuk-label for={ (prefix) "-hospital" } { "Hospital number" }
        input.nhsuk-input.nhsuk-input--width-10 id={ (prefix) "-hospital" } type="text" name="hospital_number"
            autocomplete="off" spellcheck="false" value=(hospital);
        label.nhsuk-label for={ (prefix) "-nhs" } { "NHS number" span.hint { " 10 digits" } }
        input.nhsuk-input.nhsuk-input--width-10 id={ (prefix) "-nhs" } type="text" name="nhs_number"
            inputmode="numeric" autocomplete="off" value=(nhs);
    }
}

/// The staff roles an admin grants, as the pages name them.
const STAFF_ROLES: [(&str, &str); 3] = [
    ("admin", "Admin"),
    ("auditor", "Privacy officer"),
    ("operator", "Operator"),
];

/// A staff role's name on the pages ("auditor" is a privacy officer).
pub fn staff_role_name(role: &str) -> &str {
    STAFF_ROLES
        .iter()
        .find(|(value, _)| *value == role)
        .map_or(role, |(_, label)| label)
}

/// One person found: who, their address (and a form to change it, folded),
/// their account and what may be done to it.
fn person_cells(r: &pb::PersonRecord, find: &str) -> Vec<Markup> {
    let p = r.person.clone().unwrap_or_default();
    let k = kind_name(p.kind);
    vec![
        html! {
            a href={ (person_link(&p.person_id, find)) } { strong { (p.display) } }
            br; span.hint { (k) }
            @if k == "patient" { br; (super::identity(p.identity.as_ref())) }
        },
        html! {
            @if r.email.is_empty() { "no email address" } @else { (r.email) }
            @if !r.email.is_empty() { br; span.hint { @if r.email_verified { "verified" } @else { "not verified" } } }
        },
        html! { (account_tags(r)) },
    ]
}

/// A person's page, remembering the search that found them.
pub fn person_link(person: &str, find: &str) -> String {
    format!("/admin/people/{person}?find={}", crate::encode(find))
}

/// Whether the account is open, and its staff roles.
fn account_tags(r: &pb::PersonRecord) -> Markup {
    html! {
        @if r.deactivated { strong.nhsuk-tag.nhsuk-tag--grey { "Closed" } } @else { strong.nhsuk-tag.nhsuk-tag--green { "Open" } }
        @for role in &r.staff_roles {
            " " strong.nhsuk-tag.nhsuk-tag--purple { (staff_role_name(role)) }
        }
    }
}

/// One person: who they are, their address, a patient's date of birth and
/// numbers, their account and roles, and what an admin may change of each
/// (what cannot be undone asks first).
pub fn person(r: &pb::PersonRecord, session: &Session, find: &str, done: &str) -> Markup {
    let p = r.person.clone().unwrap_or_default();
    let k = kind_name(p.kind);
    let action = format!("/admin/people/{}", p.person_id);
    html! {
        p { a href={ "/admin/people?find=" (crate::encode(find)) } { "← People" } }
        h1 { (p.display) }
        (notice(done))
        dl.nhsuk-summary-list {
            div.nhsuk-summary-list__row {
                dt.nhsuk-summary-list__key { "Who" }
                dd.nhsuk-summary-list__value { "A " (k) }
            }
            @if k == "patient" {
                div.nhsuk-summary-list__row {
                    dt.nhsuk-summary-list__key { "Date of birth and numbers" }
                    dd.nhsuk-summary-list__value { (super::identity(p.identity.as_ref())) }
                }
            }
            div.nhsuk-summary-list__row {
                dt.nhsuk-summary-list__key { "Email address" }
                dd.nhsuk-summary-list__value {
                    @if r.email.is_empty() { "none" } @else { (r.email) " " span.hint { @if r.email_verified { "verified" } @else { "not verified" } } }
                }
            }
            div.nhsuk-summary-list__row {
                dt.nhsuk-summary-list__key { "Account and roles" }
                dd.nhsuk-summary-list__value { (account_tags(r)) }
            }
        }
        @if k == "patient" {
            h2 { "Date of birth and numbers" }
            form.card method="post" action=(action) {
                (csrf(session))
                input type="hidden" name="do" value="details";
                input type="hidden" name="find" value=(find);
                @let identity = p.identity.clone().unwrap_or_default();
                @let born = service_kit::patient_identity::written(&identity.date_of_birth);
                (identity_fields("details", [&born, &identity.hospital_number, &identity.nhs_number]))
                button.nhsuk-button.nhsuk-button--secondary type="submit" { "Save" }
            }
        }
        h2 { "Email address" }
        form.card method="post" action=(action) {
            (csrf(session))
            input type="hidden" name="do" value="email";
            input type="hidden" name="kind" value=(k);
            input type="hidden" name="find" value=(find);
            label.nhsuk-label for="email" { "New email address" span.hint { " they confirm it by the link we send to it" } }
            input.nhsuk-input type="text" id="email" name="email" inputmode="email" autocomplete="off";
            button.nhsuk-button.nhsuk-button--secondary type="submit" { "Change the address" }
        }
        @if !r.email.is_empty() && !r.email_verified {
            form method="post" action=(action) {
                (csrf(session))
                input type="hidden" name="do" value="verify";
                input type="hidden" name="kind" value=(k);
                input type="hidden" name="find" value=(find);
                button.nhsuk-button.nhsuk-button--secondary type="submit" { "Send the verification email again" }
            }
        }
        @if k == "professional" {
            h2 { "Staff roles" }
            @if r.staff_roles.is_empty() { p { "None: they work in their teams' inboxes only." } }
            div.actions {
                @for role in &r.staff_roles {
                    form.inline method="post" action=(action) {
                        (csrf(session))
                        input type="hidden" name="do" value="revoke";
                        input type="hidden" name="role" value=(role);
                        input type="hidden" name="name" value=(p.name);
                        input type="hidden" name="find" value=(find);
                        strong.nhsuk-tag.nhsuk-tag--purple { (staff_role_name(role)) }
                        " "
                        button.nhsuk-button.nhsuk-button--warning.nhsuk-button--small type="submit" {
                            "Take away" span.nhsuk-u-visually-hidden { " the " (staff_role_name(role)) " role" }
                        }
                    }
                }
            }
            @let offered: Vec<&(&str, &str)> = STAFF_ROLES.iter().filter(|(v, _)| !r.staff_roles.iter().any(|h| h == v)).collect();
            @if !r.deactivated && !offered.is_empty() {
                form.careline-grant method="post" action=(action) {
                    (csrf(session))
                    input type="hidden" name="do" value="grant";
                    input type="hidden" name="name" value=(p.name);
                    input type="hidden" name="find" value=(find);
                    label.nhsuk-label for="role" { "Grant a staff role" }
                    select.nhsuk-select #role name="role" {
                        @for (value, label) in offered { option value=(value) { (label) } }
                    }
                    " "
                    button.nhsuk-button.nhsuk-button--secondary type="submit" { "Grant" }
                }
            }
        }
        @if k != "patient" {
            h2 { "Account" }
            @if r.deactivated {
                form method="post" action=(action) {
                    (csrf(session))
                    input type="hidden" name="do" value="reactivate";
                    input type="hidden" name="find" value=(find);
                    button.nhsuk-button.nhsuk-button--secondary type="submit" { "Open the account again" }
                }
            } @else {
                a.nhsuk-button.nhsuk-button--warning href={ (action) "/close?name=" (crate::encode(&p.name)) "&find=" (crate::encode(find)) } { "Close the account…" }
            }
        }
    }
}
