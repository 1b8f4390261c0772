//! The two links a team puts on its website: "message this team"
//! (`/teams/<id>/message`) and "join this team" (`/join/<code>`). Both
//! survive signing in; the services decide whether the person may.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use careline_client::bearer::command_id;
use maud::html;
use proto::command as cmd;
use proto::inbox as inbox_pb;
use service_kit::Role;
use tonic::{Code, Status};

use crate::{Page, Posted, SignedIn, Web, pages};

/// "Message this team": the new-message page with the team chosen, when
/// the person may write to it.
pub(crate) async fn message(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Path(team): Path<String>,
) -> Page {
    let Some(patient) = crate::writing_in(&web, &session, "").await? else {
        return Ok(crate::not_for_you(&web, &session));
    };
    let who = crate::who_can_i_message(&web, &session, &patient).await?;
    let offered = who
        .teams
        .iter()
        .chain(&who.other_teams)
        .any(|t| t.team_id == team);
    if !offered {
        let body = pages::problem_page(
            "You cannot message this team yet",
            "You can write to a team once you are one of its patients. If the team gave you a link to join it, follow that link first.",
        );
        return Ok((
            StatusCode::FORBIDDEN,
            web.page("New message", Some(&session), body),
        )
            .into_response());
    }
    let chosen = [format!("team:{team}")];
    let typed = pages::NewMessage {
        chosen: &chosen,
        ..Default::default()
    };
    let body = pages::new_message(&who, &session, &typed, None);
    Ok(web.page("New message", Some(&session), body))
}

fn patients_only(web: &Web, session: &crate::session::Session) -> Response {
    let body = pages::problem_page(
        "Join links are for patients",
        "A team's join link adds a patient to the team. Staff join teams through their administrator; carers through the patient's consent.",
    );
    (
        StatusCode::FORBIDDEN,
        web.page("Join a team", Some(session), body),
    )
        .into_response()
}

async fn team_of(
    web: &Web,
    session: &crate::session::Session,
    code: &str,
) -> Result<inbox_pb::TeamContact, Status> {
    Ok(web
        .inbox(session)?
        .team_by_join_code(inbox_pb::TeamByJoinCodeRequest {
            min_position: session.position,
            join_code: code.to_string(),
        })
        .await?
        .into_inner())
}

/// "Join this team": which team the code is, and a button to join it.
/// A browser signed in at the identity provider but linked to no one yet
/// is offered to sign up and join.
pub(crate) async fn join_page(
    State(web): State<Web>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    Path(code): Path<String>,
) -> Page {
    let session = match web.signed_in(&headers, &uri).await {
        Ok(session) => session,
        Err(to_sign_in) => {
            return Ok(crate::linking::join_page(&web, &headers, &code)
                .await
                .unwrap_or(*to_sign_in));
        }
    };
    if session.caller.role != Role::Patient {
        return Ok(patients_only(&web, &session));
    }
    let found = async {
        let team = team_of(&web, &session, &code).await?;
        let mine =
            crate::who_can_i_message(&web, &session, &session.caller.person_id.to_string()).await?;
        let member = mine.teams.iter().any(|t| t.team_id == team.team_id);
        Ok::<_, Status>((team, member))
    };
    Ok(match found.await {
        Ok((team, true)) => {
            // Already one of its patients: nothing to join.
            let body = html! {
                h1 { (team.name) }
                p { "You are already one of " (team.name) "'s patients, so there is nothing to join." }
                a.nhsuk-button href={ "/teams/" (team.team_id) "/message" } { "Message " (team.name) }
                p { a href="/messages" { "Go to your messages" } }
            };
            web.page("Already joined", Some(&session), body)
        }
        Ok((team, false)) => {
            let body = html! {
                h1 { "Join " (team.name) }
                @if !team.description.is_empty() { p { (team.description) } }
                p { "Joining makes you one of the team's patients: you can then message them, and they see the messages you send them." }
                form method="post" action={ "/join/" (code) } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button.nhsuk-button type="submit" { "Join " (team.name) }
                }
            };
            web.page("Join a team", Some(&session), body)
        }
        Err(e) if e.code() == Code::NotFound => {
            let body = pages::problem_page("This join link does not work", e.message());
            (
                StatusCode::NOT_FOUND,
                web.page("Join a team", Some(&session), body),
            )
                .into_response()
        }
        Err(e) => return Err(e.into()),
    })
}

pub(crate) async fn join(
    State(web): State<Web>,
    Path(code): Path<String>,
    Posted(session, _): Posted,
) -> Page {
    if session.caller.role != Role::Patient {
        return Ok(patients_only(&web, &session));
    }
    let joined = async {
        let team = team_of(&web, &session, &code).await?;
        let reply = web
            .command(&session)?
            .join_team_with_code(cmd::JoinTeamWithCodeRequest {
                command_id: command_id(),
                team_id: team.team_id.clone(),
                join_code: code.clone(),
                name: String::new(),
                email: String::new(),
            })
            .await?;
        Ok::<_, Status>((team, reply))
    };
    Ok(match joined.await {
        Ok((team, reply)) => {
            web.changed(&session, reply, &format!("/teams/{}/message", team.team_id))
                .await
        }
        Err(e)
            if matches!(
                e.code(),
                Code::NotFound | Code::PermissionDenied | Code::FailedPrecondition
            ) =>
        {
            let body = pages::problem_page("You have not joined the team", e.message());
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                web.page("Join a team", Some(&session), body),
            )
                .into_response()
        }
        Err(e) => return Err(e.into()),
    })
}
