//! A person's own record and account: carers' consent, teams' temporary
//! access, the email address and its verification link, and whose record a
//! carer acts in. Every change is a command as the signed-in person; every
//! list is the inbox's answer to them.

use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use careline_client::bearer::command_id;
use maud::Markup;
use proto::command as cmd;
use proto::inbox as inbox_pb;
use service_kit::Role;
use service_kit::reason;
use tonic::{Code, Status};

use crate::confirm;
use crate::pages::record as page;
use crate::session::{Acting, Session};
use crate::{Page, Posted, SignedIn, Web};

/// The person's account as the inbox answers it (after their own changes).
pub(crate) async fn my_account(
    web: &Web,
    session: &Session,
) -> Result<inbox_pb::MyAccountReply, Status> {
    Ok(web
        .inbox(session)?
        .my_account(inbox_pb::MyAccountRequest {
            min_position: session.position,
        })
        .await?
        .into_inner())
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct Done {
    #[serde(default)]
    done: String,
    #[serde(default)]
    token: String,
}

/// What a change that went through says on the page it returns to.
fn done(what: &str) -> Option<&'static str> {
    Some(match what {
        "consent" => "Consent given. They can now read and write your messages.",
        "withdrawn" => "Consent withdrawn. They no longer see your messages.",
        "access" => "Access given. The team can now see your record until the date you chose.",
        "ended" => "Access ended. The team no longer sees your record.",
        "sent" => {
            "We have sent the verification email again. Follow its link to verify your address."
        }
        "email" => "Your email address is changed. Follow the link we sent to it to verify it.",
        "confirmed" => "Thank you: your email address is verified.",
        "linked" => "Your sign-in is now linked to this Careline account: next time, just sign in.",
        "ended-consent" => "The consent you acted under has ended, so nothing of theirs is shown.",
        "away" => {
            "Your absence is recorded: patients see it, and whoever stands in gets their messages to you."
        }
        "back" => "Welcome back: your absence is ended.",
        _ => return None,
    })
}

fn only_patients(web: &Web, session: &Session) -> Response {
    let body = crate::pages::problem_page(
        "This page is for patients",
        "It is about a patient's own record: who may act for them and which teams may see it.",
    );
    (
        StatusCode::FORBIDDEN,
        web.page("My record", Some(session), body),
    )
        .into_response()
}

/// A "YYYY-MM-DD" of a date field as the end of that day (UTC); empty is none.
pub(crate) fn end_of_day(value: &str) -> Result<Option<SystemTime>, String> {
    let Some(date) = day(value)? else {
        return Ok(None);
    };
    let next = date
        .next_day()
        .ok_or_else(|| "That date is too far ahead.".to_string())?;
    midnight(next).map(Some)
}

/// A date as a date field sends it (`YYYY-MM-DD`); `None` when empty.
pub(crate) fn day(value: &str) -> Result<Option<time::Date>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &format)
        .map(Some)
        .map_err(|_| format!("“{value}” is not a date: give it as day, month and year."))
}

/// The start of `date`, UTC.
pub(crate) fn midnight(date: time::Date) -> Result<SystemTime, String> {
    let seconds = date.midnight().assume_utc().unix_timestamp();
    let seconds = u64::try_from(seconds).map_err(|_| "That date is too long ago.".to_string())?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// A refused change, as the service said it, in plain words where we know
/// better ones.
fn plain(e: &Status) -> String {
    if reason::is(e, reason::ACCESS_ALREADY_GRANTED) {
        "That team already has access to your record. End it first to give it again with another date.".into()
    } else if reason::field(e).as_deref() == Some("expires_at") {
        "Choose a date from today onwards, at most a year from today.".into()
    } else {
        e.message().to_string()
    }
}

/// Whether a refusal is about what the person typed (shown on the form,
/// kept) rather than a failure (a page of its own).
fn about_the_form(e: &Status) -> bool {
    matches!(
        e.code(),
        Code::InvalidArgument | Code::FailedPrecondition | Code::NotFound | Code::AlreadyExists
    )
}

pub(crate) async fn hub(State(web): State<Web>, SignedIn(session): SignedIn) -> Page {
    if session.caller.role != Role::Patient {
        return Ok(only_patients(&web, &session));
    }
    let account = my_account(&web, &session).await?;
    Ok(web.page("My record", Some(&session), page::hub(&account)))
}

async fn carers_page(
    web: &Web,
    session: &Session,
    typed: &page::ConsentForm<'_>,
    notice: Option<&str>,
    problem: Option<Markup>,
) -> Page {
    let problem_shown = problem.is_some();
    let account = my_account(web, session).await?;
    let body = page::carers(&account, session, typed, notice, problem);
    Ok(web.form_page("Who may act for me", session, body, problem_shown))
}

pub(crate) async fn carers(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Query(q): Query<Done>,
) -> Page {
    if session.caller.role != Role::Patient {
        return Ok(only_patients(&web, &session));
    }
    carers_page(&web, &session, &Default::default(), done(&q.done), None).await
}

pub(crate) async fn give_consent(State(web): State<Web>, Posted(session, form): Posted) -> Page {
    if session.caller.role != Role::Patient {
        return Ok(only_patients(&web, &session));
    }
    let typed = page::ConsentForm {
        email: form.one("email"),
        relationship: form.one("relationship"),
        until: form.one("until"),
    };
    let relationship = page::RELATIONSHIPS
        .iter()
        .find(|(v, _, _)| *v == typed.relationship)
        .map_or(0, |(_, _, n)| *n);
    let given = async {
        let until = end_of_day(typed.until).map_err(Status::invalid_argument)?;
        if typed.email.trim().is_empty() {
            return Err(Status::invalid_argument("Give the carer's email address."));
        }
        let carer = web
            .inbox(&session)?
            .find_carer(inbox_pb::FindCarerRequest {
                min_position: session.position,
                email: typed.email.to_string(),
            })
            .await?
            .into_inner();
        web.command(&session)?
            .grant_carer_consent(cmd::GrantCarerConsentRequest {
                command_id: command_id(),
                patient_id: session.caller.person_id.to_string(),
                carer_id: carer.person_id,
                relationship,
                expires_at: until.map(Into::into),
            })
            .await
    };
    match given.await {
        Ok(r) => Ok(web
            .changed(&session, r, "/record/carers?done=consent")
            .await),
        Err(e) if about_the_form(&e) => {
            let problem = page::problem("Consent was not given", &plain(&e));
            carers_page(&web, &session, &typed, None, Some(problem)).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn withdraw_consent(
    State(web): State<Web>,
    Posted(session, form): Posted,
) -> Page {
    if !confirm::confirmed(&form) {
        let name = named(&form, "this carer");
        let ask = confirm::Ask {
            heading: format!("Withdraw {name}'s consent?"),
            happens: &[
                "From their next page they see none of your messages and cannot write for you.",
                "What they wrote stays in your conversations.",
                "You can give them consent again at any time.",
            ],
            yes: format!("Withdraw {name}'s consent"),
            back: "/record/carers".into(),
        };
        return Ok(confirm::ask(
            &web,
            &session,
            "/record/carers/withdraw",
            &form,
            ask,
        ));
    }
    let withdrawn = async {
        web.command(&session)?
            .revoke_carer_consent(cmd::RevokeCarerConsentRequest {
                command_id: command_id(),
                patient_id: session.caller.person_id.to_string(),
                carer_id: form.one("carer_id").to_string(),
            })
            .await
    };
    let r = withdrawn.await?;
    Ok(web
        .changed(&session, r, "/record/carers?done=withdrawn")
        .await)
}

/// The teams a patient may give access to: those the new-message page
/// offers beyond their own care teams (open teams such as PALS), less those
/// holding access already (ended first, a grant may be given again).
async fn grantable(web: &Web, session: &Session) -> Result<Vec<inbox_pb::TeamContact>, Status> {
    Ok(
        crate::who_can_i_message(web, session, &session.caller.person_id.to_string())
            .await?
            .other_teams,
    )
}

async fn access_page(
    web: &Web,
    session: &Session,
    typed: &page::AccessForm<'_>,
    notice: Option<&str>,
    problem: Option<Markup>,
) -> Page {
    let problem_shown = problem.is_some();
    let account = my_account(web, session).await?;
    let mut teams = grantable(web, session).await?;
    teams.retain(|t| !account.grants.iter().any(|g| g.team_id == t.team_id));
    let default_until;
    let typed = if typed.until.is_empty() && !problem_shown {
        // A month from today, as PALS usually asks.
        default_until = page::day_value(SystemTime::now() + Duration::from_secs(30 * 86_400));
        page::AccessForm {
            until: &default_until,
            ..*typed
        }
    } else {
        page::AccessForm { ..*typed }
    };
    let body = page::access(&account, &teams, session, &typed, notice, problem);
    Ok(web.form_page("Teams who may see my record", session, body, problem_shown))
}

pub(crate) async fn access(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Query(q): Query<Done>,
) -> Page {
    if session.caller.role != Role::Patient {
        return Ok(only_patients(&web, &session));
    }
    access_page(&web, &session, &Default::default(), done(&q.done), None).await
}

pub(crate) async fn give_access(State(web): State<Web>, Posted(session, form): Posted) -> Page {
    if session.caller.role != Role::Patient {
        return Ok(only_patients(&web, &session));
    }
    let typed = page::AccessForm {
        team: form.one("team"),
        until: form.one("until"),
        reason: form.one("reason"),
    };
    let given = async {
        let until = end_of_day(typed.until)
            .map_err(Status::invalid_argument)?
            .ok_or_else(|| {
                Status::invalid_argument("Choose the last day the team may see your record.")
            })?;
        web.command(&session)?
            .grant_record_access(cmd::GrantRecordAccessRequest {
                command_id: command_id(),
                patient_id: session.caller.person_id.to_string(),
                team_id: typed.team.to_string(),
                expires_at: Some(until.into()),
                reason: typed.reason.to_string(),
            })
            .await
    };
    match given.await {
        Ok(r) => Ok(web.changed(&session, r, "/record/access?done=access").await),
        Err(e) if about_the_form(&e) => {
            let problem = page::problem("Access was not given", &plain(&e));
            access_page(&web, &session, &typed, None, Some(problem)).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn end_access(State(web): State<Web>, Posted(session, form): Posted) -> Page {
    if !confirm::confirmed(&form) {
        let name = named(&form, "this team");
        let ask = confirm::Ask {
            heading: format!("End {name}'s access now?"),
            happens: &[
                "They no longer see your record or your conversations, from now on.",
                "What they wrote stays in your conversations.",
                "You can give them access again later.",
            ],
            yes: format!("End {name}'s access"),
            back: "/record/access".into(),
        };
        return Ok(confirm::ask(
            &web,
            &session,
            "/record/access/end",
            &form,
            ask,
        ));
    }
    let ended = async {
        web.command(&session)?
            .revoke_record_access(cmd::RevokeRecordAccessRequest {
                command_id: command_id(),
                patient_id: session.caller.person_id.to_string(),
                grant_id: form.one("grant_id").to_string(),
            })
            .await
    };
    let r = ended.await?;
    Ok(web.changed(&session, r, "/record/access?done=ended").await)
}

async fn account_page(
    web: &Web,
    session: &Session,
    typed_email: &str,
    notice: Option<&str>,
    problem: Option<Markup>,
) -> Page {
    account_page_typed(web, session, (typed_email, ["", "", ""]), notice, problem).await
}

/// The account page with what was typed kept: the email address, and an
/// absence's first day, day back and deputy.
async fn account_page_typed(
    web: &Web,
    session: &Session,
    (typed_email, typed_away): (&str, [&str; 3]),
    notice: Option<&str>,
    problem: Option<Markup>,
) -> Page {
    let problem_shown = problem.is_some();
    let account = my_account(web, session).await?;
    let body = page::account(
        &account,
        session,
        (typed_email, typed_away),
        notice,
        problem,
    );
    Ok(web.form_page("Account", session, body, problem_shown))
}

pub(crate) async fn account(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Query(q): Query<Done>,
) -> Page {
    account_page(&web, &session, "", done(&q.done), None).await
}

pub(crate) async fn send_verification(State(web): State<Web>, Posted(session, _): Posted) -> Page {
    let me = session.caller.person_id.to_string();
    let (patient_id, person_id) = if session.caller.role == Role::Patient {
        (me, String::new())
    } else {
        (String::new(), me)
    };
    let sent = async {
        web.command(&session)?
            .request_email_verification(cmd::RequestEmailVerificationRequest {
                command_id: command_id(),
                patient_id,
                person_id,
            })
            .await
    };
    match sent.await {
        Ok(r) => Ok(web.changed(&session, r, "/account?done=sent").await),
        Err(e) if about_the_form(&e) => {
            let problem = page::problem("No email was sent", &plain(&e));
            account_page(&web, &session, "", None, Some(problem)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// A professional records an absence (first day, back on, who stands in),
/// or ends one.
pub(crate) async fn away(State(web): State<Web>, Posted(session, form): Posted) -> Page {
    let me = session.caller.person_id.to_string();
    if form.one("do") == "end" {
        let reply = web
            .command(&session)?
            .end_absence(cmd::EndAbsenceRequest {
                command_id: command_id(),
                person_id: me,
                absence_id: form.one("absence").to_string(),
            })
            .await?;
        return Ok(web
            .changed(&session, reply, "/account?done=back#away")
            .await);
    }
    let dates = (|| {
        let from = day(form.one("from"))?.map(midnight).transpose()?;
        let until = day(form.one("until"))?
            .ok_or_else(|| "Say the day you are back.".to_string())
            .and_then(midnight)?;
        Ok::<_, String>((from, until))
    })();
    let recorded = match dates {
        Err(why) => Err(Status::invalid_argument(why)),
        Ok((from, until)) => {
            async {
                web.command(&session)?
                    .record_absence(cmd::RecordAbsenceRequest {
                        command_id: command_id(),
                        person_id: me,
                        from: from.map(proto::time::from_system),
                        until: Some(proto::time::from_system(until)),
                        deputy_id: form.one("deputy").to_string(),
                    })
                    .await
            }
            .await
        }
    };
    match recorded {
        Ok(r) => Ok(web.changed(&session, r, "/account?done=away#away").await),
        Err(e) if about_the_form(&e) => {
            let problem = page::problem("Your absence was not recorded", &plain(&e));
            let typed = [form.one("from"), form.one("until"), form.one("deputy")];
            account_page_typed(&web, &session, ("", typed), None, Some(problem)).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn change_email(State(web): State<Web>, Posted(session, form): Posted) -> Page {
    let email = form.one("email").trim().to_string();
    let me = session.caller.person_id.to_string();
    let changed = async {
        let mut command = web.command(&session)?;
        if session.caller.role == Role::Patient {
            command
                .change_patient_email(cmd::ChangePatientEmailRequest {
                    command_id: command_id(),
                    patient_id: me,
                    email: email.clone(),
                })
                .await
        } else {
            command
                .change_person_email(cmd::ChangePersonEmailRequest {
                    command_id: command_id(),
                    person_id: me,
                    email: email.clone(),
                })
                .await
        }
    };
    match changed.await {
        Ok(r) => Ok(web.changed(&session, r, "/account?done=email").await),
        Err(e) if about_the_form(&e) || e.code() == Code::PermissionDenied => {
            let problem = page::problem("Your email address was not changed", &plain(&e));
            account_page(&web, &session, form.one("email"), None, Some(problem)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The page the verification email's link opens (after signing in, if
/// need be): a button that confirms.
///
/// A browser signed in at the identity provider but linked to no one yet
/// is offered to link its account to the person the email was sent to.
pub(crate) async fn confirm_page(
    State(web): State<Web>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<Done>,
) -> Page {
    let session = match web.signed_in(&headers, &uri).await {
        Ok(session) => session,
        Err(to_sign_in) => {
            return Ok(crate::linking::invitation_page(&web, &headers, &q.token)
                .await
                .unwrap_or(*to_sign_in));
        }
    };
    let body = page::confirm_email(&session, &q.token);
    Ok(web.page("Confirm your email address", Some(&session), body))
}

pub(crate) async fn confirm(State(web): State<Web>, Posted(session, form): Posted) -> Page {
    let confirmed = async {
        web.command(&session)?
            .confirm_email(cmd::ConfirmEmailRequest {
                command_id: command_id(),
                token: form.one("token").to_string(),
            })
            .await
    };
    match confirmed.await {
        Ok(r) => Ok(web.changed(&session, r, "/account?done=confirmed").await),
        Err(e) if about_the_form(&e) || e.code() == Code::PermissionDenied => {
            let body = crate::pages::problem_page(
                "Your email address was not confirmed",
                &format!(
                    "{} You can ask for a new link on your Account page.",
                    plain(&e)
                ),
            );
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                web.page("Email not confirmed", Some(&session), body),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The patient whose record a carer's pages are about: the one they chose
/// while its consent is in force, or the only one they act for; with the
/// notice to show when the chosen one's consent has ended.
pub(crate) async fn acting(
    web: &Web,
    session: &Session,
) -> Result<
    (
        Option<Acting>,
        Option<&'static str>,
        inbox_pb::MyAccountReply,
    ),
    Status,
> {
    let account = my_account(web, session).await?;
    let holds = |id: &str| {
        account
            .acting_for
            .iter()
            .find(|c| c.person.as_ref().is_some_and(|p| p.person_id == id))
    };
    let as_acting = |c: &inbox_pb::Consent| {
        let p = c.person.as_ref()?;
        Some(Acting {
            patient_id: p.person_id.parse().ok()?,
            name: p.name.clone(),
        })
    };
    let (now, notice) = match &session.acting_for {
        Some(a) => match holds(&a.patient_id.to_string()) {
            Some(_) => (Some(a.clone()), None),
            None => (None, done("ended-consent")),
        },
        None if account.acting_for.len() == 1 => {
            (account.acting_for.first().and_then(as_acting), None)
        }
        None => (None, None),
    };
    if now != session.acting_for
        && let Err(e) = web.inner.sessions.act_for(&session.id, now.clone()).await
    {
        tracing::warn!(error = %e, "whom a carer acts for was not kept");
    }
    Ok((now, notice, account))
}

pub(crate) async fn acting_for_page(State(web): State<Web>, SignedIn(session): SignedIn) -> Page {
    let (now, notice, account) = acting(&web, &session).await?;
    let mut session = session;
    session.acting_for = now;
    let body = page::acting_for(&account, &session, notice);
    Ok(web.page("Whose messages", Some(&session), body))
}

pub(crate) async fn choose_acting_for(
    State(web): State<Web>,
    Posted(session, form): Posted,
) -> Page {
    let account = my_account(&web, &session).await?;
    let chosen = account.acting_for.iter().find_map(|c| {
        let p = c.person.as_ref()?;
        if p.person_id != form.one("patient_id") {
            return None;
        }
        Some(Acting {
            patient_id: p.person_id.parse().ok()?,
            name: p.name.clone(),
        })
    });
    let to = if chosen.is_some() {
        "/messages"
    } else {
        "/acting-for"
    };
    web.inner.sessions.act_for(&session.id, chosen).await?;
    Ok(Redirect::to(to).into_response())
}

/// The name a form carries for its question page (`or` when it has none).
fn named(form: &crate::Fields, or: &str) -> String {
    match form.one("name").trim() {
        "" => or.to_string(),
        name => name.to_string(),
    }
}
