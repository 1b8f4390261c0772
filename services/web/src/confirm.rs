//! Asking before a change that takes something away (archiving, leaving,
//! removing a member, a new join code, withdrawing consent, ending
//! access): the form's post is answered with a page that spells out what
//! will happen and posts the same fields again, confirmed. It works
//! without JavaScript; the services decide as before.

use axum::response::Response;
use maud::html;

use crate::session::Session;
use crate::{Fields, Web};

/// A change to ask about: `heading` the question, `happens` what it does
/// in plain words, `yes` the confirming button, `back` where "no" goes.
pub(crate) struct Ask<'a> {
    pub heading: String,
    pub happens: &'a [&'a str],
    pub yes: String,
    pub back: String,
}

/// Whether the person already said yes to this post.
pub(crate) fn confirmed(form: &Fields) -> bool {
    form.one("confirmed") == "yes"
}

/// The question page for `form`, posted to `action`: the same fields
/// (the form token the page's own) again with `confirmed`.
pub(crate) fn ask(
    web: &Web,
    session: &Session,
    action: &str,
    form: &Fields,
    ask: Ask<'_>,
) -> Response {
    let body = html! {
        p { a href=(ask.back) { "← Back" } }
        h1 { (ask.heading) }
        div.nhsuk-warning-callout {
            h2.nhsuk-warning-callout__label {
                span role="text" { span.nhsuk-u-visually-hidden { "Important: " } "What will happen" }
            }
            ul {
                @for line in ask.happens { li { (line) } }
            }
        }
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(session.csrf);
            @for (name, value) in &form.0 {
                @if name != "csrf" && name != "confirmed" {
                    input type="hidden" name=(name) value=(value);
                }
            }
            input type="hidden" name="confirmed" value="yes";
            div.nhsuk-button-group {
                button.nhsuk-button.nhsuk-button--warning type="submit" autofocus { (ask.yes) }
                a.nhsuk-link href=(ask.back) { "No, go back" }
            }
        }
    };
    web.page("Are you sure?", Some(session), body)
}
