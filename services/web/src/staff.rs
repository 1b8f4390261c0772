//! What a professional does all day: their teams' shared inboxes, and the
//! moves on a conversation (assign, unassign, note, complete, archive,
//! reopen, leave). The services decide whether they may; the pages show
//! the answer.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use careline_client::bearer::command_id;
use proto::command as cmd;
use proto::inbox as inbox_pb;
use service_kit::Role;
use tonic::{Code, Status};

use crate::confirm;
use crate::pages::staff::{Show, TeamInbox};
use crate::session::Session;
use crate::{LIST_PAGE, Page, Posted, SignedIn, Web, pages};

fn staff_only(web: &Web, session: &Session) -> Response {
    let body = pages::problem_page(
        "This page is for hospital staff",
        "Team inboxes are where a team's professionals answer their patients.",
    );
    (
        StatusCode::FORBIDDEN,
        web.page("Team inboxes", Some(session), body),
    )
        .into_response()
}

/// The teams a professional leads now (whose threads they may assign to a
/// colleague), for what a conversation's page offers; none for anyone else,
/// or when the inbox does not answer (the command service decides anyway).
pub(crate) async fn leads(web: &Web, session: &Session) -> Vec<String> {
    if session.caller.role != Role::Professional {
        return Vec::new();
    }
    match crate::record::my_account(web, session).await {
        Ok(account) => account
            .teams
            .into_iter()
            .filter(|t| t.lead)
            .map(|t| t.team_id)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `/teams`: the teams a professional is a member of.
pub(crate) async fn teams(State(web): State<Web>, SignedIn(session): SignedIn) -> Page {
    if session.caller.role != Role::Professional {
        return Ok(staff_only(&web, &session));
    }
    let account = crate::record::my_account(&web, &session).await?;
    Ok(web.page(
        "Team inboxes",
        Some(&session),
        pages::staff::teams(&account),
    ))
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct InboxQuery {
    #[serde(default)]
    show: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    at: u64,
    /// "recent": newest activity first; otherwise longest-waiting first.
    #[serde(default)]
    sort: String,
}

/// The cookie naming the team inbox a professional last worked from (its
/// team, filter and order: never a search, which may name a patient): a
/// conversation of that team shows its list beside it on a wide screen.
const WORKSPACE: &str = "careline_workspace";

/// What a team inbox shows: its team, filter, search, order, page.
struct Asked<'a> {
    team: &'a str,
    show: Show,
    search: &'a str,
    recent: bool,
    cursor: &'a str,
    at: u64,
}

impl Asked<'_> {
    fn parse<'a>(team: &'a str, q: &'a InboxQuery) -> Asked<'a> {
        Asked {
            team,
            show: Show::parse(&q.show),
            search: q.q.trim(),
            recent: q.sort == "recent",
            cursor: &q.cursor,
            at: q.at,
        }
    }
}

/// A team inbox's answer and the team's name.
async fn read_team_inbox(
    web: &Web,
    session: &Session,
    asked: &Asked<'_>,
) -> Result<(inbox_pb::TeamInboxReply, String), Status> {
    let order = if asked.recent {
        inbox_pb::ThreadOrder::NewestActivity
    } else {
        inbox_pb::ThreadOrder::LongestWaiting
    };
    let request = inbox_pb::TeamInboxRequest {
        min_position: session.position.max(asked.at),
        team_id: asked.team.to_string(),
        filters: Some(inbox_pb::Filters {
            order: order as i32,
            ..asked.show.filters(asked.team, asked.search)
        }),
        page_size: LIST_PAGE,
        cursor: asked.cursor.to_string(),
    };
    let mut inbox = web.inbox(session)?;
    let mut again = web.inbox(session)?;
    let account = again.my_account(inbox_pb::MyAccountRequest {
        min_position: session.position,
    });
    let (reply, account) = futures::try_join!(inbox.team_inbox(request), account)?;
    let name = account
        .into_inner()
        .teams
        .into_iter()
        .find(|t| t.team_id == asked.team)
        .map_or_else(|| "Team inbox".to_string(), |t| t.name);
    Ok((reply.into_inner(), name))
}

/// `/teams/<id>/inbox`: the team's conversations, filtered, longest-waiting
/// first unless asked for the most recent.
pub(crate) async fn team_inbox(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Path(team): Path<String>,
    Query(q): Query<InboxQuery>,
) -> Page {
    if session.caller.role != Role::Professional {
        return Ok(staff_only(&web, &session));
    }
    let asked = Asked::parse(&team, &q);
    match read_team_inbox(&web, &session, &asked).await {
        Ok((reply, name)) => {
            let me = session.caller.person_id.to_string();
            let view = TeamInbox {
                team_id: &team,
                team_name: &name,
                reply: &reply,
                show: asked.show,
                search: asked.search,
                recent: asked.recent,
                older: !q.cursor.is_empty(),
                me: &me,
                now: std::time::SystemTime::now(),
            };
            let empty = inbox_pb::ThreadPage::default();
            let listed = &reply.page.as_ref().unwrap_or(&empty).threads;
            let title = pages::unread_title("Team inbox", listed);
            let mut page = web.page(&title, Some(&session), pages::staff::team_inbox(&view));
            // Only a team the inbox answered for (so an id, not text).
            let sort = if asked.recent { "recent" } else { "waiting" };
            let value = format!("{team}.{}.{sort}", asked.show.as_str());
            let cookie = crate::session::set_cookie(WORKSPACE, &value, web.inner.secure, None);
            if let Ok(v) = cookie.parse() {
                page.headers_mut().append(axum::http::header::SET_COOKIE, v);
            }
            Ok(page)
        }
        Err(e) if e.code() == Code::InvalidArgument => {
            let body = pages::problem_page("That search does not work", e.message());
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                web.page("Team inbox", Some(&session), body),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct QueueQuery {
    #[serde(default)]
    show: String,
    #[serde(default)]
    sort: String,
    /// The conversation it is shown beside.
    #[serde(default)]
    open: String,
}

/// `/teams/<id>/queue`: the team inbox's list as it sits beside a
/// conversation (fetched by `shortcuts.js` on a wide screen only: a phone
/// never reads it).
pub(crate) async fn queue(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Path(team): Path<String>,
    Query(q): Query<QueueQuery>,
) -> Page {
    if session.caller.role != Role::Professional {
        return Ok(staff_only(&web, &session));
    }
    let asked = Asked {
        team: &team,
        show: Show::parse(&q.show),
        search: "",
        recent: q.sort == "recent",
        cursor: "",
        at: 0,
    };
    let (reply, name) = read_team_inbox(&web, &session, &asked).await?;
    let me = session.caller.person_id.to_string();
    let view = TeamInbox {
        team_id: &team,
        team_name: &name,
        reply: &reply,
        show: asked.show,
        search: "",
        recent: asked.recent,
        older: false,
        me: &me,
        now: std::time::SystemTime::now(),
    };
    Ok(web.page(
        "Team inbox",
        Some(&session),
        pages::staff::queue(&view, &q.open),
    ))
}

/// The team inbox a conversation was opened from: its list (beside it on a
/// wide screen) and its page (the back link).
pub(crate) struct Workspace {
    pub queue: String,
    pub back: pages::Back,
}

/// Where the list beside conversation `detail` comes from: the team inbox
/// the professional last worked from, when the conversation is that team's.
pub(crate) fn workspace(
    headers: &axum::http::HeaderMap,
    detail: &inbox_pb::ThreadDetail,
) -> Option<Workspace> {
    let value = crate::session::cookie(headers, WORKSPACE)?;
    let mut parts = value.splitn(3, '.');
    let team = uuid::Uuid::parse_str(parts.next()?).ok()?.to_string();
    let show = Show::parse(parts.next()?);
    let sort = if parts.next()? == "recent" {
        "recent"
    } else {
        "waiting"
    };
    let summary = detail.summary.as_ref()?;
    let theirs = summary
        .team_ids
        .iter()
        .chain(&summary.staff_side_team_ids)
        .any(|t| *t == team);
    if !theirs {
        return None;
    }
    // Named when the patient's side names it; a staff-side team's name is
    // not in the summary.
    let name = summary
        .team_ids
        .iter()
        .zip(&summary.team_names)
        .find(|(t, _)| **t == team)
        .map_or_else(|| "Team inbox".to_string(), |(_, n)| n.clone());
    Some(Workspace {
        queue: format!(
            "/teams/{team}/queue?show={}&sort={sort}&open={}",
            show.as_str(),
            summary.thread_id
        ),
        back: pages::Back {
            to: format!("/teams/{team}/inbox?show={}&sort={sort}", show.as_str()),
            name,
        },
    })
}

/// A move on a conversation, posted from its page.
pub(crate) async fn move_thread(
    State(web): State<Web>,
    Path(id): Path<String>,
    Posted(session, form): Posted,
) -> Page {
    if let Some(ask) = ask_move(&id, form.one("do"))
        && !confirm::confirmed(&form)
    {
        let action = format!("/threads/{id}/move");
        return Ok(confirm::ask(&web, &session, &action, &form, ask));
    }
    let thread_id = id.clone();
    // Who the page showed handling it, for an assignment (absent: no check).
    let was = match form.one("assignee_was") {
        "" => None,
        pages::staff::NOBODY => Some(String::new()),
        id => Some(id.to_string()),
    };
    let moved = async {
        let mut c = web.command(&session)?;
        let command_id = command_id();
        let reply = match form.one("do") {
            "assign-me" => {
                c.assign_thread(cmd::AssignThreadRequest {
                    command_id,
                    thread_id,
                    assignee_id: session.caller.person_id.to_string(),
                    if_assignee_id: was.clone(),
                })
                .await?
            }
            "assign" => {
                c.assign_thread(cmd::AssignThreadRequest {
                    command_id,
                    thread_id,
                    assignee_id: form.one("to").to_string(),
                    if_assignee_id: was.clone(),
                })
                .await?
            }
            "unassign" => {
                c.unassign_thread(cmd::UnassignThreadRequest {
                    command_id,
                    thread_id,
                })
                .await?
            }
            "complete" => {
                c.complete_thread(cmd::CompleteThreadRequest {
                    command_id,
                    thread_id,
                })
                .await?
            }
            "archive" => {
                c.archive_thread(cmd::ArchiveThreadRequest {
                    command_id,
                    thread_id,
                })
                .await?
            }
            "reopen" => {
                c.reopen_thread(cmd::ReopenThreadRequest {
                    command_id,
                    thread_id,
                })
                .await?
            }
            "leave" => {
                c.leave_thread(cmd::LeaveThreadRequest {
                    command_id,
                    thread_id,
                })
                .await?
            }
            _ => return Err(Status::invalid_argument("do: not a move on a conversation")),
        };
        Ok::<_, Status>(reply)
    };
    let to = if form.one("do") == "leave" {
        "/teams".to_string()
    } else {
        format!("/threads/{id}")
    };
    match moved.await {
        Ok(reply) => Ok(web.changed(&session, reply, &to).await),
        // Someone else took it (or dropped it) since the page was loaded.
        Err(e) if e.code() == Code::Aborted && was.is_some() => {
            let detail = crate::read_thread(&web, &session, &id, 0).await?;
            let body = pages::staff::take_over(&detail, &session, form.one("do"), form.one("to"));
            Ok((
                StatusCode::CONFLICT,
                web.page("Take it over?", Some(&session), body),
            )
                .into_response())
        }
        Err(e) if crate::refusal(&e) => {
            let body = pages::refused_on_thread("That was not done", e.message(), &id);
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                web.page("Not done", Some(&session), body),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// A staff note, posted from the conversation's page.
pub(crate) async fn note(
    State(web): State<Web>,
    Path(id): Path<String>,
    Posted(session, form): Posted,
) -> Page {
    add_note(&web, &session, &id, form.one("body")).await
}

/// Adds `text` as a staff note on conversation `id`, or shows the
/// conversation again saying what to fix, with the note kept.
pub(crate) async fn add_note(web: &Web, session: &Session, id: &str, text: &str) -> Page {
    let posted = async {
        web.command(session)?
            .post_staff_note(cmd::PostStaffNoteRequest {
                command_id: command_id(),
                thread_id: id.to_string(),
                body: text.to_string(),
            })
            .await
    };
    match posted.await {
        Ok(reply) => Ok(web
            .changed(session, reply, &format!("/threads/{id}#reply"))
            .await),
        Err(e) if crate::refusal(&e) => {
            crate::thread_with_problem(web, session, id, "", text, "Your note was not added", &e)
                .await
        }
        Err(e) => Err(e.into()),
    }
}

/// What archiving or leaving a conversation does, asked before it is done.
fn ask_move(id: &str, what: &str) -> Option<confirm::Ask<'static>> {
    let back = format!("/threads/{id}");
    match what {
        "archive" => Some(confirm::Ask {
            heading: "Archive this conversation?".into(),
            happens: &[
                "It leaves the team's inbox and everyone's list of active conversations.",
                "Nothing is deleted: it stays in the record, whole, under Archived.",
                "A message from the patient or a reply brings it back to the team; anyone on it can reopen it.",
            ],
            yes: "Archive it".into(),
            back,
        }),
        "leave" => Some(confirm::Ask {
            heading: "Leave this conversation?".into(),
            happens: &[
                "You are taken off it: it leaves your inbox and you are told of nothing more on it.",
                "If it is assigned to you, it is no longer assigned to anyone.",
                "Everything you wrote stays on it. Your team does not bring you back; someone on it can add you again by name.",
            ],
            yes: "Leave it".into(),
            back,
        }),
        _ => None,
    }
}

/// The page's script says its professional is writing a reply here: the
/// others on this conversation's page are told (presence, not history).
pub(crate) async fn typing(
    State(web): State<Web>,
    Path(id): Path<String>,
    Posted(session, _): Posted,
) -> Response {
    if session.caller.role != Role::Professional || session.opened.as_deref() != Some(&id) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let (person, name) = (session.caller.person_id, &session.caller.name);
    // Shared, every instance (this one too) hears it from the database.
    let told = if web.inner.sessions.shared() {
        let announced = crate::presence::announcement(&id, person, name);
        match web
            .inner
            .sessions
            .announce(crate::presence::CHANNEL, &announced)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "presence was not told to the other instances");
                false
            }
        }
    } else {
        false
    };
    if !told {
        web.inner.presence.typing(&id, person, name);
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct DaysQuery {
    #[serde(default)]
    days: Option<String>,
}

/// `/teams/<id>/not-read?days=`: answers the patient has not read.
pub(crate) async fn not_read(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Path(team): Path<String>,
    Query(q): Query<DaysQuery>,
) -> Page {
    if session.caller.role != Role::Professional {
        return Ok(staff_only(&web, &session));
    }
    let days = match q.days.as_deref().map(str::trim) {
        None | Some("") => 7,
        Some(d) => match d.parse::<u32>() {
            Ok(d) if d <= 365 => d,
            _ => {
                let body = pages::problem_page(
                    "That is not a number of days",
                    "Give a whole number of days from 0 to 365.",
                );
                return Ok((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    web.page("Not read by the patient", Some(&session), body),
                )
                    .into_response());
            }
        },
    };
    let answers = async {
        let mut inbox = web.inbox(&session)?;
        let mut again = web.inbox(&session)?;
        let request = inbox_pb::NotReadByPatientRequest {
            min_position: session.position,
            team_id: team.clone(),
            days: Some(days),
        };
        let account = again.my_account(inbox_pb::MyAccountRequest {
            min_position: session.position,
        });
        let (reply, account) = futures::try_join!(inbox.not_read_by_patient(request), account)?;
        Ok::<_, Status>((reply.into_inner(), account.into_inner()))
    };
    let (reply, account) = answers.await?;
    let name = account
        .teams
        .iter()
        .find(|t| t.team_id == team)
        .map_or("Team inbox", |t| t.name.as_str());
    let body = pages::staff::not_read(&team, name, days, &reply);
    Ok(web.page("Not read by the patient", Some(&session), body))
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct StartQuery {
    #[serde(default)]
    q: String,
}

/// `/teams/<id>/start`: a member finds one of the team's patients by name,
/// to start a conversation in their record (the new-message page).
pub(crate) async fn start(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Path(team): Path<String>,
    Query(q): Query<StartQuery>,
) -> Page {
    if session.caller.role != Role::Professional {
        return Ok(staff_only(&web, &session));
    }
    let search = q.q.trim();
    let answers = async {
        let mut inbox = web.inbox(&session)?;
        let mut again = web.inbox(&session)?;
        let account = again.my_account(inbox_pb::MyAccountRequest {
            min_position: session.position,
        });
        let found = async {
            if search.is_empty() {
                return Ok(None);
            }
            let request = inbox_pb::TeamPatientsRequest {
                min_position: session.position,
                team_id: team.clone(),
                name_prefix: search.to_string(),
            };
            inbox.team_patients(request).await.map(Some)
        };
        let (found, account) = futures::try_join!(found, account)?;
        Ok::<_, Status>((found.map(tonic::Response::into_inner), account.into_inner()))
    };
    match answers.await {
        Ok((found, account)) => match account.teams.iter().find(|t| t.team_id == team) {
            Some(t) => {
                let body = pages::staff::start(&t.team_id, &t.name, search, found.as_ref());
                Ok(web.page("Start a conversation", Some(&session), body))
            }
            None => Err(Status::permission_denied(
                "only the team's members start conversations from it",
            )
            .into()),
        },
        Err(e) if e.code() == Code::InvalidArgument => {
            let body = pages::problem_page("That search does not work", e.message());
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                web.page("Start a conversation", Some(&session), body),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// Whom the conversation's messages reached, for staff: each recipient's
/// latest notice (sent, retrying, failed, cannot be sent).
pub(crate) async fn told(
    web: &Web,
    session: &Session,
    detail: &inbox_pb::ThreadDetail,
) -> maud::Markup {
    let id = detail.summary.as_ref().map_or("", |s| s.thread_id.as_str());
    let position = detail.position;
    let asked = async {
        web.notify(session)?
            .thread_notifications(proto::notify::ThreadNotificationsRequest {
                min_position: position,
                thread_id: id.to_string(),
            })
            .await
    };
    match asked.await {
        Ok(reply) => {
            // Each named as the patient sees them: the role label, and the
            // team that brought them to it.
            let summary = detail.summary.clone().unwrap_or_default();
            let team_name = |id: &str| {
                summary
                    .team_ids
                    .iter()
                    .zip(&summary.team_names)
                    .find(|(t, _)| *t == id)
                    .map(|(_, name)| name.clone())
            };
            let people: Vec<(String, String)> = detail
                .participants
                .iter()
                .filter_map(|p| {
                    let person = p.person.as_ref()?;
                    if person.role_label.is_empty() {
                        return None;
                    }
                    let label = match team_name(&p.via_team_id) {
                        Some(team) => format!("{}, {team}", person.display),
                        None => person.display.clone(),
                    };
                    Some((person.person_id.clone(), label))
                })
                .collect();
            pages::staff::told(&reply.into_inner(), &people)
        }
        Err(e) => {
            tracing::warn!(code = ?e.code(), "notification states could not be read");
            pages::staff::told_unknown()
        }
    }
}

/// The conversation (not marked read) and whom its record offers.
async fn adding(
    web: &Web,
    session: &Session,
    id: &str,
) -> Result<(inbox_pb::ThreadSummary, inbox_pb::WhoCanIMessageReply), Status> {
    let detail = web
        .inbox(session)?
        .get_thread(inbox_pb::GetThreadRequest {
            min_position: session.position,
            thread_id: id.to_string(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let summary = detail.summary.unwrap_or_default();
    let who = crate::who_can_i_message(web, session, &summary.patient_id).await?;
    Ok((summary, who))
}

/// `/threads/<id>/add`: whom staff may add, and to which side.
pub(crate) async fn add_page(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
) -> Page {
    if session.caller.role != Role::Professional {
        return Ok(staff_only(&web, &session));
    }
    let (summary, who) = adding(&web, &session, &id).await?;
    let body = pages::staff::add_people(&summary, &who, &session, &[], None);
    Ok(web.page("Add to the conversation", Some(&session), body))
}

pub(crate) async fn add(
    State(web): State<Web>,
    Path(id): Path<String>,
    Posted(session, form): Posted,
) -> Page {
    let chosen = form.all("to");
    let recipients: Vec<cmd::Recipient> =
        chosen.iter().filter_map(|v| crate::recipient(v)).collect();
    let added = async {
        web.command(&session)?
            .add_participants(cmd::AddParticipantsRequest {
                command_id: command_id(),
                thread_id: id.clone(),
                recipients,
                carer_ids: vec![],
                staff_side: form.one("staff_side") == "yes",
            })
            .await
    };
    match added.await {
        Ok(reply) => Ok(web
            .changed(&session, reply, &format!("/threads/{id}"))
            .await),
        Err(e) if crate::refusal(&e) => {
            let (summary, who) = adding(&web, &session, &id).await?;
            let problem = pages::error_box("Nobody was added", &crate::plain_refusal(&e));
            let body = pages::staff::add_people(&summary, &who, &session, &chosen, Some(problem));
            Ok(web.form_page("Add to the conversation", &session, body, true))
        }
        Err(e) => Err(e.into()),
    }
}
