//! The pages of a person's own record and account: who may act for them,
//! which teams may see their record, their email address, and for a carer
//! whose record they are acting in.

use maud::{Markup, html};
use proto::inbox as pb;

use super::error_box;
use crate::session::Session;

/// A date as the pages show it ("3 Jan 2027"); a consent without one lasts
/// until it is withdrawn.
pub fn day(t: Option<&prost_types::Timestamp>) -> String {
    let format = time::macros::format_description!("[day padding:none] [month repr:short] [year]");
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

fn name(p: Option<&pb::Person>) -> &str {
    p.map_or("", |p| p.display.as_str())
}

/// The relationships a carer may have, as the command API names them.
pub const RELATIONSHIPS: [(&str, &str, i32); 5] = [
    ("parent", "Parent", 1),
    ("guardian", "Guardian", 2),
    ("family_member", "Family member", 3),
    ("friend", "Friend", 4),
    ("other", "Other", 5),
];

fn relationship(value: &str) -> &str {
    RELATIONSHIPS
        .iter()
        .find(|(v, _, _)| *v == value)
        .map_or(value, |(_, label, _)| label)
}

pub fn hub(account: &pb::MyAccountReply) -> Markup {
    html! {
        h1 { "My record" }
        ul.list {
            li { a.thread href="/record/carers" {
                span.subject { "Who may act for me" }
                div.meta { (account.carers.len()) @if account.carers.len() == 1 { " carer holds" } @else { " carers hold" } " your consent" }
            } }
            li { a.thread href="/record/access" {
                span.subject { "Teams who may see my record" }
                div.meta { (account.grants.len()) @if account.grants.len() == 1 { " team has" } @else { " teams have" } " temporary access" }
            } }
            li { a.thread href="/record/trail" {
                span.subject { "Who has looked at my record" }
                div.meta { "Everyone who read or changed it, and when" }
            } }
        }
    }
}

/// What the person typed into the consent form, kept when it is refused.
#[derive(Debug, Default)]
pub struct ConsentForm<'a> {
    pub email: &'a str,
    pub relationship: &'a str,
    pub until: &'a str,
}

pub fn carers(
    account: &pb::MyAccountReply,
    session: &Session,
    typed: &ConsentForm<'_>,
    notice: Option<&str>,
    problem: Option<Markup>,
) -> Markup {
    html! {
        p { a href="/record" { "← My record" } }
        h1 { "Who may act for me" }
        p { "A carer with your consent can read and write your messages with your care team, and be copied in. You can withdraw consent at any time: they lose access at once, and what was written stays in your record." }
        @if let Some(notice) = notice { div.notice role="status" { (notice) } }
        @if account.carers.is_empty() {
            p.card { "Nobody holds your consent." }
        }
        ul.list {
            @for c in &account.carers {
                @let id = c.person.as_ref().map(|p| p.person_id.as_str()).unwrap_or_default();
                li.card {
                    strong { (name(c.person.as_ref())) } " " span.hint { (relationship(&c.relationship)) }
                    div.meta {
                        @match &c.expires_at {
                            Some(t) => { "Until " (day(Some(t))) }
                            None => { "Until you withdraw it" }
                        }
                    }
                    form method="post" action="/record/carers/withdraw" {
                        (csrf(session))
                        input type="hidden" name="carer_id" value=(id);
                        input type="hidden" name="name" value=(name(c.person.as_ref()));
                        button.nhsuk-button.nhsuk-button--warning type="submit" { "Withdraw consent from " (name(c.person.as_ref())) }
                    }
                }
            }
        }
        h2 id="give" { "Give a carer consent" }
        @if let Some(problem) = problem { (problem) }
        form.card method="post" action="/record/carers" {
            (csrf(session))
            label.nhsuk-label for="email" { "Their email address" span.hint { " as your care team registered them" } }
            input.nhsuk-input type="text" id="email" name="email" inputmode="email" autocomplete="off" required value=(typed.email);
            label.nhsuk-label for="relationship" { "They are your" }
            select.nhsuk-select id="relationship" name="relationship" {
                @for (value, label, _) in RELATIONSHIPS {
                    option value=(value) selected[typed.relationship == value] { (label) }
                }
            }
            label.nhsuk-label for="until" { "Until" span.hint { " (optional) the last day; leave empty for until you withdraw it" } }
            input.nhsuk-input type="date" id="until" name="until" value=(typed.until);
            button.nhsuk-button type="submit" { "Give consent" }
        }
    }
}

/// What the person typed into the access form.
#[derive(Debug, Default)]
pub struct AccessForm<'a> {
    pub team: &'a str,
    pub until: &'a str,
    pub reason: &'a str,
}

pub fn access(
    account: &pb::MyAccountReply,
    teams: &[pb::TeamContact],
    session: &Session,
    typed: &AccessForm<'_>,
    notice: Option<&str>,
    problem: Option<Markup>,
) -> Markup {
    html! {
        p { a href="/record" { "← My record" } }
        h1 { "Teams who may see my record" }
        p { "Your care teams see your record. You can also let another team, such as PALS, see it for a time: they can then read your messages with your care team. You can end it at any time." }
        @if let Some(notice) = notice { div.notice role="status" { (notice) } }
        @if account.grants.is_empty() {
            p.card { "No other team has access to your record." }
        }
        ul.list {
            @for g in &account.grants {
                li.card {
                    strong { (g.team_name) }
                    div.meta { "Until " (day(g.expires_at.as_ref())) }
                    @if !g.reason.is_empty() { p { "Why: " (g.reason) } }
                    form method="post" action="/record/access/end" {
                        (csrf(session))
                        input type="hidden" name="grant_id" value=(g.grant_id);
                        input type="hidden" name="name" value=(g.team_name);
                        button.nhsuk-button.nhsuk-button--warning type="submit" { "End " (g.team_name) "'s access now" }
                    }
                }
            }
        }
        h2 id="give" { "Let a team see my record" }
        @if let Some(problem) = problem { (problem) }
        @if teams.is_empty() {
            p.card { "There is no other team you can give access to." }
        } @else {
            form.card method="post" action="/record/access" {
                (csrf(session))
                label.nhsuk-label for="team" { "Team" }
                select.nhsuk-select id="team" name="team" {
                    @for t in teams {
                        option value=(t.team_id) selected[typed.team == t.team_id] { (t.name) }
                    }
                }
                label.nhsuk-label for="until" { "Until" span.hint { " the last day, at most a year from today" } }
                input.nhsuk-input type="date" id="until" name="until" required value=(typed.until);
                label.nhsuk-label for="reason" { "Why" span.hint { " (optional) in your words, for the team" } }
                input.nhsuk-input type="text" id="reason" name="reason" maxlength="500" value=(typed.reason);
                button.nhsuk-button type="submit" { "Give access" }
            }
        }
    }
}

pub fn account(
    account: &pb::MyAccountReply,
    session: &Session,
    (typed_email, typed_away): (&str, [&str; 3]),
    notice: Option<&str>,
    problem: Option<Markup>,
) -> Markup {
    let professional =
        account.person.as_ref().map(|p| p.kind) == Some(pb::PersonKind::Professional as i32);
    html! {
        h1 { "Account" }
        @if let Some(notice) = notice { div.notice role="status" { (notice) } }
        @if let Some(problem) = problem { (problem) }
        div.card {
            p { strong { "Name: " } (name(account.person.as_ref())) }
            @if let Some(identity) = account.person.as_ref().and_then(|p| p.identity.as_ref()) {
                p {
                    strong { "As the hospital knows you: " } (super::identity(Some(identity)))
                    br; span.hint { "If any of this is wrong, tell your care team: they correct it." }
                }
            }
            p {
                strong { "Email: " }
                @if account.email.is_empty() { "none" } @else { (account.email) }
                " "
                @if account.email_verified {
                    strong.nhsuk-tag.nhsuk-tag--green.badge { "Verified" }
                } @else if !account.email.is_empty() {
                    strong.nhsuk-tag.nhsuk-tag--white.badge { "Not verified yet" }
                }
            }
            @if !account.email.is_empty() && !account.email_verified {
                p.hint { "We email you when there is a new message only once you have followed the link in our verification email." }
                form method="post" action="/account/verify" {
                    (csrf(session))
                    button.nhsuk-button.nhsuk-button--secondary type="submit" { "Send the verification email again" }
                }
            }
        }
        @if professional { (away(account, session, typed_away)) }
        h2 { "Change my email address" }
        @if professional {
            p { "Your work address is changed by your hospital's Careline administrator." }
        } @else {
            form.card method="post" action="/account/email" {
                (csrf(session))
                label.nhsuk-label for="email" { "New email address" span.hint { " we send a link to it to check it is yours" } }
                input.nhsuk-input type="text" id="email" name="email" inputmode="email" autocomplete="email" required value=(typed_email);
                button.nhsuk-button type="submit" { "Change email address" }
            }
        }
    }
}

/// A professional's absences, and the form to record one: patients see
/// "away" beside their name, and what they write to them also goes to the
/// deputy (or the team's main contact).
fn away(
    account: &pb::MyAccountReply,
    session: &Session,
    [from, until, deputy]: [&str; 3],
) -> Markup {
    html! {
        h2 #away { "When you are away" }
        @for a in &account.absences {
            div.card.careline-away {
                p {
                    strong { "Away from " (day(a.from.as_ref())) ", back on " (day(a.until.as_ref())) "." }
                    " "
                    @match &a.deputy {
                        Some(d) => { (d.display) " stands in." }
                        None => { "Your teams' main contacts stand in." }
                    }
                }
                form method="post" action="/account/away" {
                    (csrf(session))
                    input type="hidden" name="do" value="end";
                    input type="hidden" name="absence" value=(a.absence_id);
                    button.nhsuk-button.nhsuk-button--secondary type="submit" { "I am back: end it" }
                }
            }
        }
        p { "While you are away, patients see it beside your name, and a message they write to you also goes to whoever stands in. Nothing is sent to them automatically." }
        form.card method="post" action="/account/away" {
            (csrf(session))
            input type="hidden" name="do" value="record";
            label.nhsuk-label for="from" { "First day away" span.hint { " (today if left empty)" } }
            input.nhsuk-input.nhsuk-input--width-10 type="date" id="from" name="from" value=(from);
            label.nhsuk-label for="until" { "Back on" }
            input.nhsuk-input.nhsuk-input--width-10 type="date" id="until" name="until" required value=(until);
            label.nhsuk-label for="deputy" { "Who stands in" }
            select.nhsuk-select #deputy name="deputy" {
                option value="" { "My teams' main contacts" }
                @for c in &account.colleagues {
                    option value=(c.person_id) selected[c.person_id == deputy] { (c.display) }
                }
            }
            button.nhsuk-button type="submit" { "Record my absence" }
        }
    }
}

/// The page a verification link opens: confirming is a button, so a mail
/// scanner opening the link confirms nothing.
pub fn confirm_email(session: &Session, token: &str) -> Markup {
    html! {
        h1 { "Confirm your email address" }
        p { "You followed the link in our email. Confirm that this address is yours, signed in as " strong { (session.caller.name) } "." }
        form method="post" action="/email/confirm" {
            (csrf(session))
            input type="hidden" name="token" value=(token);
            button.nhsuk-button type="submit" { "Confirm my email address" }
        }
    }
}

/// A carer chooses whose record to act in.
pub fn acting_for(account: &pb::MyAccountReply, session: &Session, notice: Option<&str>) -> Markup {
    html! {
        h1 { "Whose messages" }
        @if let Some(notice) = notice { div.notice role="status" { (notice) } }
        @if account.acting_for.is_empty() {
            p.card { "Nobody has given you consent to act for them now. When a patient gives you consent, their messages appear here." }
        }
        ul.list {
            @for c in &account.acting_for {
                @let id = c.person.as_ref().map(|p| p.person_id.as_str()).unwrap_or_default();
                li.card {
                    strong { (name(c.person.as_ref())) } " " span.hint { "you are their " (relationship(&c.relationship).to_lowercase()) }
                    div.meta {
                        @match &c.expires_at {
                            Some(t) => { "Consent until " (day(Some(t))) }
                            None => { "Consent until they withdraw it" }
                        }
                    }
                    form method="post" action="/acting-for" {
                        (csrf(session))
                        input type="hidden" name="patient_id" value=(id);
                        button.nhsuk-button type="submit" disabled[session.acting_for.as_ref().is_some_and(|a| a.patient_id.to_string() == id)] {
                            "Act for " (name(c.person.as_ref()))
                        }
                    }
                }
            }
        }
    }
}

pub fn problem(heading: &str, detail: &str) -> Markup {
    error_box(heading, detail)
}

/// A date as a date field's value ("2027-01-03").
pub fn day_value(t: std::time::SystemTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from(t)
        .format(&format)
        .unwrap_or_default()
}
