//! The conversations of a patient, a carer and a professional: the message
//! list, a conversation, replying, marking read, and starting one.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use careline_client::bearer::command_id;
use proto::command::{self as cmd, recipient::Recipient};
use proto::inbox::{self as inbox_pb};
use service_kit::Role;
use service_kit::reason;
use tonic::{Code, Status};

use crate::session::Session;
use crate::{LIST_PAGE, Page, Posted, SignedIn, Web, pages, record, staff};

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    view: String,
    /// A live page reads at least this position (the change it was told of).
    #[serde(default)]
    at: u64,
    /// Older conversations: the inbox's cursor of the page before.
    #[serde(default)]
    cursor: String,
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct AtQuery {
    #[serde(default)]
    at: u64,
    /// "1" just after the person started this conversation here.
    #[serde(default)]
    sent: String,
}

pub(crate) async fn messages(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Query(q): Query<ListQuery>,
) -> Page {
    // A carer's list is of the one patient they are acting for now.
    let acting = if session.caller.role == Role::Carer {
        match record::acting(&web, &session).await? {
            (Some(a), _, _) => Some(a),
            (None, notice, account) => {
                let body = pages::record::acting_for(&account, &session, notice);
                return Ok(web.page("Whose messages", Some(&session), body));
            }
        }
    } else {
        None
    };
    // The page names whose list it is (the layout's line for carers).
    let mut session = session;
    if acting.is_some() {
        session.acting_for = acting.clone();
    }
    let staff = session.caller.role == Role::Professional;
    let list = pages::ListView::parse(&q.view, staff);
    let status = if list == pages::ListView::Archived {
        inbox_pb::StatusFilter::Archived
    } else {
        inbox_pb::StatusFilter::Active
    };
    let request = inbox_pb::MyInboxRequest {
        min_position: session.position.max(q.at),
        filters: Some(inbox_pb::Filters {
            status: status as i32,
            on_by_name: list == pages::ListView::ByName,
            // A carer's list: the patient they act for now, paged as such.
            patient_id: acting
                .as_ref()
                .map(|a| a.patient_id.to_string())
                .unwrap_or_default(),
            ..Default::default()
        }),
        page_size: LIST_PAGE,
        cursor: q.cursor.clone(),
    };
    let page = web.inbox(&session)?.my_inbox(request).await?.into_inner();
    let can_write = matches!(session.caller.role, Role::Patient | Role::Carer);
    let body = pages::messages(&page, list, staff, can_write, !q.cursor.is_empty());
    let title = pages::unread_title(if staff { "My inbox" } else { "Messages" }, &page.threads);
    Ok(web.page(&title, Some(&session), body))
}

/// Reads a thread as the session's person, and marks it read up to its
/// latest message when there is something new for them.
pub(crate) async fn read_thread(
    web: &Web,
    session: &Session,
    id: &str,
    at: u64,
) -> Result<inbox_pb::ThreadDetail, Status> {
    read_thread_marking(web, session, id, at, true).await
}

/// Whether a request came from this site's own pages, or from the person
/// themselves (a typed address, a bookmark, a mail program): not from a
/// link or a form on another site (`Sec-Fetch-Site`, which every current
/// browser sends and no page can forge).
pub(crate) fn from_here_or_the_person(headers: &HeaderMap) -> bool {
    matches!(
        headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
        Some("same-origin" | "none")
    )
}

/// Reads a thread as the session's person; with `mark`, marks it read up
/// to its latest message when there is something new for them.
pub(crate) async fn read_thread_marking(
    web: &Web,
    session: &Session,
    id: &str,
    at: u64,
    mark: bool,
) -> Result<inbox_pb::ThreadDetail, Status> {
    let detail = web
        .inbox(session)?
        .get_thread(inbox_pb::GetThreadRequest {
            min_position: session.position.max(at),
            thread_id: id.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let unread = detail.summary.as_ref().is_some_and(|s| s.unread_count > 0);
    if let (true, true, Some(last)) = (mark, unread, detail.messages.last()) {
        // Reading the thread marks it read; someone who may see it but is
        // not on it (a team member) has nothing to mark.
        let marked = web
            .command(session)?
            .mark_read(cmd::MarkReadRequest {
                command_id: command_id(),
                thread_id: id.into(),
                message_id: last.message_id.clone(),
            })
            .await;
        match marked {
            Ok(r) => web.advance(session, r.into_inner().position).await,
            Err(e) if matches!(e.code(), Code::FailedPrecondition | Code::PermissionDenied) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(detail)
}

/// A conversation's page. A GET changes nothing when a link on another
/// site asked for it: only a visit from Careline's own pages or by the
/// person themselves marks the thread read (else the page asks for it
/// with its form token, `POST /threads/<id>/read`, once shown).
pub(crate) async fn thread(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    Query(q): Query<AtQuery>,
    headers: HeaderMap,
) -> Page {
    let mark = from_here_or_the_person(&headers);
    let detail = read_thread_marking(&web, &session, &id, q.at, mark).await?;
    let leads = staff::leads(&web, &session).await;
    let unread = detail.summary.as_ref().is_some_and(|s| s.unread_count > 0);
    let workspace = (session.caller.role == Role::Professional)
        .then(|| staff::workspace(&headers, &detail))
        .flatten();
    let back = workspace.as_ref().map(|w| &w.back);
    let body = pages::thread(&detail, &session, &leads, "", "", None, back);
    let body = if q.sent == "1" {
        maud::html! {
            div.notice role="status" { strong { "Sent. " } "It is in the inbox of everyone you wrote to; we email you when someone replies." }
            (body)
        }
    } else {
        body
    };
    let body = if !mark && unread {
        maud::html! {
            (body)
            form #mark-read method="post" action={ "/threads/" (id) "/read" } {
                input type="hidden" name="csrf" value=(session.csrf);
                button.nhsuk-button.nhsuk-button--secondary type="submit" { "Mark as read" }
            }
        }
    } else {
        body
    };
    let body = if session.caller.role == Role::Professional {
        if let Err(e) = web.inner.sessions.opened(&session.id, &id).await {
            // Presence of this conversation is then not told to it.
            tracing::warn!(error = %e, "a session's open page was not kept");
        }
        let told = staff::told(&web, &session, &detail).await;
        match &workspace {
            // The team's list beside it, on a wide screen (`shortcuts.js`).
            Some(w) => maud::html! {
                div.careline-split {
                    aside.careline-queue data-queue=(w.queue) aria-label="Team inbox" hidden {}
                    div.careline-split__main { (body) (told) }
                }
            },
            None => maud::html! { (body) (told) },
        }
    } else {
        body
    };
    Ok(web.page("Conversation", Some(&session), body))
}

pub(crate) async fn reply(
    State(web): State<Web>,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Page {
    // A reply with files comes as a multipart form.
    let posted = match crate::files::posted(&web, request).await? {
        Ok(posted) => posted,
        Err(page) => return Ok(page),
    };
    let (session, form) = (&posted.session, &posted.form);
    let text = form.one("body");
    // A professional's one box writes a reply or, switched, a staff note.
    if form.one("kind") == "note" {
        if !posted.attachments.is_empty() || posted.refused.is_some() {
            let e = Status::invalid_argument(
                "Files go with a reply to the patient, not with a staff note: switch to \"Reply to patient\", or add the note without them.",
            );
            return thread_with_problem(
                &web,
                session,
                &id,
                "",
                text,
                "Your note was not added",
                &e,
            )
            .await;
        }
        return crate::staff::add_note(&web, session, &id, text).await;
    }
    let sent = match &posted.refused {
        Some(refused) => Err(refused.clone()),
        None => {
            web.command(session)?
                .post_message(cmd::PostMessageRequest {
                    attachments: posted.attachments.clone(),
                    command_id: command_id(),
                    thread_id: id.clone(),
                    body: text.to_string(),
                    mention_ids: vec![],
                })
                .await
        }
    };
    match sent {
        Ok(reply) => Ok(web
            .changed(session, reply, &format!("/threads/{id}#reply"))
            .await),
        Err(e) if matches!(e.code(), Code::InvalidArgument | Code::FailedPrecondition) => {
            thread_with_problem(&web, session, &id, text, "", "Your reply was not sent", &e).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Marks a conversation read, from its own page (the form token checked):
/// what a page reached by a link from another site asks once shown.
pub(crate) async fn mark_read(
    State(web): State<Web>,
    Path(id): Path<String>,
    Posted(session, _): Posted,
) -> Page {
    read_thread(&web, &session, &id, 0).await?;
    Ok(Redirect::to(&format!("/threads/{id}")).into_response())
}

/// The conversation again, saying what to fix, with what was typed (a
/// reply, a staff note) kept.
pub(crate) async fn thread_with_problem(
    web: &Web,
    session: &Session,
    id: &str,
    reply: &str,
    note: &str,
    heading: &str,
    e: &Status,
) -> Page {
    let detail = read_thread(web, session, id, 0).await?;
    let problem = pages::error_box(heading, &reply_problem(e, reply, note));
    let leads = staff::leads(web, session).await;
    let body = pages::thread(&detail, session, &leads, reply, note, Some(problem), None);
    let page = web.page("Not sent", Some(session), body);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// A refusal's words for the page (an empty choice said plainly).
pub(crate) fn plain_refusal(e: &Status) -> String {
    if reason::field(e).as_deref() == Some("recipients") {
        "Choose at least one specialist or team.".into()
    } else {
        e.message().to_string()
    }
}

/// A refusal the person can act on (its words are shown), not an outage.
pub(crate) fn refusal(e: &Status) -> bool {
    matches!(
        e.code(),
        Code::NotFound | Code::PermissionDenied | Code::FailedPrecondition | Code::InvalidArgument
    ) && !reason::is(e, reason::ACCOUNT_CLOSED)
}

/// What to fix in a refused reply or note (`reply` or `note`, whichever
/// was sent).
pub(crate) fn reply_problem(e: &Status, reply: &str, note: &str) -> String {
    if reason::field(e).as_deref() == Some("body") {
        let typed = if note.is_empty() { reply } else { note };
        pages::body_problem(typed, e.message())
    } else {
        e.message().to_string()
    }
}

/// The record a patient's own pages are about.
pub(crate) fn own_record(session: &Session) -> Option<String> {
    (session.caller.role == Role::Patient).then(|| session.caller.person_id.to_string())
}

/// The record a new message is written in: the patient's own, the one a
/// carer acts in (while its consent is in force), or the one a professional
/// chose (`asked`; the services decide whether they may write in it).
pub(crate) async fn writing_in(
    web: &Web,
    session: &Session,
    asked: &str,
) -> Result<Option<String>, Status> {
    match session.caller.role {
        Role::Carer => Ok(record::acting(web, session)
            .await?
            .0
            .map(|a| a.patient_id.to_string())),
        Role::Professional => Ok((!asked.trim().is_empty()).then(|| asked.trim().to_string())),
        _ => Ok(own_record(session)),
    }
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct NewQuery {
    /// A professional's chosen record.
    #[serde(default)]
    patient: String,
    /// The team a professional starts from, chosen at first.
    #[serde(default)]
    team: String,
}

pub(crate) async fn who_can_i_message(
    web: &Web,
    session: &Session,
    patient: &str,
) -> Result<inbox_pb::WhoCanIMessageReply, Status> {
    Ok(web
        .inbox(session)?
        .who_can_i_message(inbox_pb::WhoCanIMessageRequest {
            min_position: session.position,
            patient_id: patient.into(),
        })
        .await?
        .into_inner())
}

pub(crate) fn not_for_you(web: &Web, session: &Session) -> Response {
    match session.caller.role {
        Role::Carer => return Redirect::to("/acting-for").into_response(),
        // Staff choose the record first, from a team's page.
        Role::Professional => return Redirect::to("/teams").into_response(),
        _ => {}
    }
    let body = pages::problem_page(
        "New messages start from a patient's record",
        "Patients write here to their care teams. Staff start a conversation from the patient's record.",
    );
    (
        StatusCode::FORBIDDEN,
        web.page("New message", Some(session), body),
    )
        .into_response()
}

pub(crate) async fn new_message_page(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Query(q): Query<NewQuery>,
) -> Page {
    let Some(patient) = writing_in(&web, &session, &q.patient).await? else {
        return Ok(not_for_you(&web, &session));
    };
    let who = who_can_i_message(&web, &session, &patient).await?;
    let from_team = [format!("team:{}", q.team.trim())];
    let typed = pages::NewMessage {
        chosen: if q.team.trim().is_empty() {
            &[]
        } else {
            &from_team
        },
        ..Default::default()
    };
    let body = pages::new_message(&who, &session, &typed, None);
    Ok(web.page("New message", Some(&session), body))
}

pub(crate) fn recipient(value: &str) -> Option<cmd::Recipient> {
    let recipient = match value.split_once(':')? {
        ("team", id) => Recipient::TeamId(id.into()),
        ("professional", id) => Recipient::ProfessionalId(id.into()),
        _ => return None,
    };
    Some(cmd::Recipient {
        recipient: Some(recipient),
    })
}

pub(crate) async fn new_message(State(web): State<Web>, request: axum::extract::Request) -> Page {
    // A message with files comes as a multipart form.
    let posted = match crate::files::posted(&web, request).await? {
        Ok(posted) => posted,
        Err(page) => return Ok(page),
    };
    let (session, form) = (posted.session, posted.form);
    let Some(patient) = writing_in(&web, &session, form.one("patient")).await? else {
        return Ok(not_for_you(&web, &session));
    };
    let (to, carers) = (form.all("to"), form.all("carer"));
    let typed = pages::NewMessage {
        subject: form.one("subject"),
        body: form.one("body"),
        chosen: &to,
        carers: &carers,
    };
    let started = if let Some(refused) = posted.refused {
        Err(refused)
    } else if to.is_empty() {
        Err(Status::invalid_argument(
            "Choose who to send your message to.",
        ))
    } else {
        web.command(&session)?
            .start_thread(cmd::StartThreadRequest {
                attachments: posted.attachments,
                command_id: command_id(),
                thread_id: String::new(),
                patient_id: patient.clone(),
                subject: typed.subject.to_string(),
                body: typed.body.to_string(),
                recipients: to.iter().filter_map(|v| recipient(v)).collect(),
                carer_ids: carers.clone(),
            })
            .await
    };
    match started {
        Ok(reply) => {
            let reply = reply.into_inner();
            web.advance(&session, reply.position).await;
            Ok(Redirect::to(&format!("/threads/{}?sent=1", reply.aggregate_id)).into_response())
        }
        Err(e)
            if matches!(
                e.code(),
                Code::InvalidArgument | Code::FailedPrecondition | Code::PermissionDenied
            ) =>
        {
            let who = who_can_i_message(&web, &session, &patient).await?;
            let problem =
                pages::error_box("Your message was not sent", &new_problem(&e, typed.body));
            let body = pages::new_message(&who, &session, &typed, Some(problem));
            let page = web.page("Message not sent", Some(&session), body);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn new_problem(e: &Status, body: &str) -> String {
    match reason::field(e).as_deref() {
        Some("subject") => "Give your message a subject (at most 200 characters).".into(),
        Some("body") => pages::body_problem(body, e.message()),
        _ => e.message().to_string(),
    }
}
