//! The admins' pages: teams (create; members, contactable, lead; automatic
//! CC; the default contact; open to every patient; alerts; the join code
//! with the two website links and the button to paste) and people
//! (register professionals, carers and patients; change an address; send
//! the verification email; close and reopen an account, with what that
//! does said before it is confirmed). The command service decides; the
//! pages ask it and show the answer.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use careline_client::bearer::command_id;
use proto::command as cmd;
use proto::inbox as inbox_pb;
use service_kit::Role;
use tonic::Status;

use crate::confirm;
use crate::session::Session;
use crate::{Fields, Page, Posted, SignedIn, Web, pages};

fn admins_only(web: &Web, session: &Session) -> Response {
    let body = pages::problem_page(
        "This page is for administrators",
        "Teams and people are set up by the organisation's administrators.",
    );
    (
        StatusCode::FORBIDDEN,
        web.page("Admin", Some(session), body),
    )
        .into_response()
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct FindQuery {
    #[serde(default)]
    find: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    done: String,
}

async fn teams_of(
    web: &Web,
    session: &Session,
    team: &str,
) -> Result<Vec<inbox_pb::TeamSettings>, Status> {
    Ok(web
        .inbox(session)?
        .teams(inbox_pb::TeamsRequest {
            min_position: session.position,
            team_id: team.to_string(),
        })
        .await?
        .into_inner()
        .teams)
}

pub(crate) async fn find_people(
    web: &Web,
    session: &Session,
    prefix: &str,
    kind: inbox_pb::PersonKind,
) -> Result<Vec<inbox_pb::PersonRecord>, Status> {
    Ok(web
        .inbox(session)?
        .find_people(inbox_pb::FindPeopleRequest {
            min_position: session.position,
            name_prefix: prefix.to_string(),
            kind: kind as i32,
            limit: 50,
            person_id: String::new(),
        })
        .await?
        .into_inner()
        .people)
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct PersonQuery {
    #[serde(default)]
    find: String,
    #[serde(default)]
    done: String,
}

/// `/admin/people/<id>`: one person, and what an admin may change of them.
pub(crate) async fn person(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Path(person): Path<String>,
    Query(q): Query<PersonQuery>,
) -> Page {
    if session.caller.role != Role::Admin {
        return Ok(admins_only(&web, &session));
    }
    let found = web
        .inbox(&session)?
        .find_people(inbox_pb::FindPeopleRequest {
            min_position: session.position,
            limit: 1,
            person_id: person.clone(),
            ..Default::default()
        })
        .await;
    match found.map(|r| r.into_inner().people.into_iter().next()) {
        Ok(Some(record)) => {
            let body = pages::admin::person(&record, &session, q.find.trim(), &q.done);
            Ok(web.page("Person", Some(&session), body))
        }
        Ok(None) => Ok(not_found_person(&web, &session)),
        Err(e) if e.code() == tonic::Code::InvalidArgument => Ok(not_found_person(&web, &session)),
        Err(e) => Err(e.into()),
    }
}

fn not_found_person(web: &Web, session: &Session) -> Response {
    let body = pages::problem_page(
        "Nobody here",
        "Careline has nobody registered under that address. Find them by name on the People page.",
    );
    (
        StatusCode::NOT_FOUND,
        web.page("Person", Some(session), body),
    )
        .into_response()
}

/// `/admin/teams`: every team, and a form to create one.
pub(crate) async fn teams(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Query(q): Query<FindQuery>,
) -> Page {
    if session.caller.role != Role::Admin {
        return Ok(admins_only(&web, &session));
    }
    teams_page(&web, &session, &q.done, ("", ""), None).await
}

async fn teams_page(
    web: &Web,
    session: &Session,
    done: &str,
    typed: (&str, &str),
    problem: Option<maud::Markup>,
) -> Page {
    let teams = teams_of(web, session, "").await?;
    let has_problem = problem.is_some();
    let body = pages::admin::teams(&teams, session, done, typed, problem);
    Ok(web.form_page("Teams", session, body, has_problem))
}

/// Creates a team, then opens its page.
pub(crate) async fn create_team(State(web): State<Web>, Posted(session, form): Posted) -> Page {
    let (name, description) = (form.one("name"), form.one("description"));
    let team_id = uuid::Uuid::now_v7().to_string();
    let created = async {
        web.command(&session)?
            .create_team(cmd::CreateTeamRequest {
                command_id: command_id(),
                team_id: team_id.clone(),
                name: name.to_string(),
                description: description.to_string(),
            })
            .await
    };
    match created.await {
        Ok(reply) => Ok(web
            .changed(&session, reply, &format!("/admin/teams/{team_id}"))
            .await),
        Err(e) if crate::refusal(&e) => {
            let problem = pages::error_box("The team was not created", e.message());
            teams_page(&web, &session, "", (name, description), Some(problem)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `/admin/systems`: the hospital's systems, and a form to register one.
pub(crate) async fn systems(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Query(q): Query<SystemsQuery>,
) -> Page {
    if session.caller.role != Role::Admin {
        return Ok(admins_only(&web, &session));
    }
    systems_page(&web, &session, (&q.done, &q.close), ("", &[]), None).await
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct SystemsQuery {
    #[serde(default)]
    done: String,
    /// The system whose closing is asked about first.
    #[serde(default)]
    close: String,
}

async fn systems_page(
    web: &Web,
    session: &Session,
    done: (&str, &str),
    typed: (&str, &[String]),
    problem: Option<maud::Markup>,
) -> Page {
    let teams = teams_of(web, session, "").await?;
    let systems = web
        .inbox(session)?
        .systems(inbox_pb::SystemsRequest {
            min_position: session.position,
        })
        .await?
        .into_inner()
        .systems;
    let has_problem = problem.is_some();
    let body = pages::admin::systems(&systems, &teams, session, done, typed, problem);
    Ok(web.form_page("Hospital systems", session, body, has_problem))
}

/// Registers a system for the teams ticked, then lists it; or closes one,
/// once asked.
pub(crate) async fn register_system(State(web): State<Web>, Posted(session, form): Posted) -> Page {
    if form.one("do") == "close" {
        let reply = web
            .command(&session)?
            .deactivate_person(cmd::DeactivatePersonRequest {
                command_id: command_id(),
                person_id: form.one("system").to_string(),
            })
            .await?;
        return Ok(web
            .changed(&session, reply, "/admin/systems?done=closed")
            .await);
    }
    let (name, teams) = (form.one("name"), form.all("team"));
    let registered = async {
        web.command(&session)?
            .register_system(cmd::RegisterSystemRequest {
                command_id: command_id(),
                system_id: String::new(),
                name: name.to_string(),
                team_ids: teams.clone(),
            })
            .await
    };
    match registered.await {
        Ok(reply) => Ok(web
            .changed(&session, reply, "/admin/systems?done=system")
            .await),
        Err(e) if crate::refusal(&e) => {
            let problem = pages::error_box("The system was not registered", e.message());
            systems_page(&web, &session, ("", ""), (name, &teams), Some(problem)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `/admin/teams/<id>`: its settings, members, join code; professionals
/// found by name to add.
pub(crate) async fn team(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Path(team): Path<String>,
    Query(q): Query<FindQuery>,
) -> Page {
    if session.caller.role != Role::Admin {
        return Ok(admins_only(&web, &session));
    }
    team_page(&web, &session, &team, &q.find, &q.done, None).await
}

async fn team_page(
    web: &Web,
    session: &Session,
    team: &str,
    find: &str,
    done: &str,
    problem: Option<maud::Markup>,
) -> Page {
    let teams = teams_of(web, session, team).await?;
    let people = if find.trim().is_empty() {
        Vec::new()
    } else {
        find_people(web, session, find, inbox_pb::PersonKind::Professional).await?
    };
    let Some(settings) = teams.first() else {
        let body = pages::problem_page(
            "There is no such team",
            "It may have a new link: go back to the list of teams.",
        );
        return Ok((
            StatusCode::NOT_FOUND,
            web.page("Team settings", Some(session), body),
        )
            .into_response());
    };
    let view = pages::admin::TeamView {
        team: settings,
        found: &people,
        find,
        done,
        base_url: &web.inner.base_url,
    };
    let has_problem = problem.is_some();
    let body = pages::admin::team(&view, session, problem);
    Ok(web.form_page("Team settings", session, body, has_problem))
}

fn yes(form: &Fields, name: &str) -> bool {
    form.one(name) == "yes"
}

/// What removing a member or replacing the join code does, asked first.
fn ask_team_change(team: &str, form: &Fields) -> Option<confirm::Ask<'static>> {
    let back = format!("/admin/teams/{team}");
    match form.one("do") {
        "remove" => {
            let name = match form.one("name").trim() {
                "" => "this member".to_string(),
                name => name.to_string(),
            };
            Some(confirm::Ask {
                heading: format!("Remove {name} from the team?"),
                happens: &[
                    "Messages to the team no longer reach them, and they leave its inbox.",
                    "They are taken off every conversation the team brought them to (its automatic CC, or as its default contact), unless another of their teams keeps them on it.",
                    "Everything they wrote stays. You can add them to the team again.",
                ],
                yes: format!("Remove {name}"),
                back,
            })
        }
        "code" if form.one("replaces") == "yes" => Some(confirm::Ask {
            heading: "Issue a new join code?".into(),
            happens: &[
                "The team's join link and code stop working at once, wherever they were shared (the website's button too).",
                "Patients who joined with them stay in the team.",
                "Paste the new link and button into the website afterwards.",
            ],
            yes: "Issue a new code".into(),
            back,
        }),
        _ => None,
    }
}

/// One change to a team, posted from its page.
pub(crate) async fn change_team(
    State(web): State<Web>,
    Path(team): Path<String>,
    Posted(session, form): Posted,
) -> Page {
    if let Some(ask) = ask_team_change(&team, &form)
        && !confirm::confirmed(&form)
    {
        let action = format!("/admin/teams/{team}");
        return Ok(confirm::ask(&web, &session, &action, &form, ask));
    }
    let team_id = team.clone();
    let person = form.one("person").to_string();
    let changed = async {
        let mut c = web.command(&session)?;
        let command_id = command_id();
        let reply = match form.one("do") {
            "auto-cc" => {
                c.set_auto_cc(cmd::SetAutoCcRequest {
                    command_id,
                    team_id,
                    enabled: yes(&form, "on"),
                })
                .await?
            }
            "open" => {
                c.set_team_open_to_patients(cmd::SetTeamOpenToPatientsRequest {
                    command_id,
                    team_id,
                    open: yes(&form, "on"),
                })
                .await?
            }
            "alerts" => {
                c.set_team_alerts(cmd::SetTeamAlertsRequest {
                    command_id,
                    team_id,
                    enabled: yes(&form, "on"),
                })
                .await?
            }
            "default" => {
                c.set_default_contact(cmd::SetDefaultContactRequest {
                    command_id,
                    team_id,
                    professional_id: person,
                })
                .await?
            }
            "add" => {
                c.add_team_member(cmd::AddTeamMemberRequest {
                    command_id,
                    team_id,
                    professional_id: person,
                    contactable: yes(&form, "contactable"),
                    lead: yes(&form, "lead"),
                })
                .await?
            }
            "remove" => {
                c.remove_team_member(cmd::RemoveTeamMemberRequest {
                    command_id,
                    team_id,
                    professional_id: person,
                })
                .await?
            }
            "contactable" => {
                c.set_member_contactable(cmd::SetMemberContactableRequest {
                    command_id,
                    team_id,
                    professional_id: person,
                    contactable: yes(&form, "on"),
                })
                .await?
            }
            "lead" => {
                c.set_member_lead(cmd::SetMemberLeadRequest {
                    command_id,
                    team_id,
                    professional_id: person,
                    lead: yes(&form, "on"),
                })
                .await?
            }
            "code" => {
                let issued = c
                    .issue_join_code(cmd::IssueJoinCodeRequest {
                        command_id,
                        team_id,
                    })
                    .await?
                    .into_inner();
                tonic::Response::new(issued.reply.unwrap_or_default())
            }
            _ => return Err(Status::invalid_argument("do: not a change to a team")),
        };
        Ok::<_, Status>(reply)
    };
    match changed.await {
        Ok(reply) => Ok(web
            .changed(&session, reply, &format!("/admin/teams/{team}?done=saved"))
            .await),
        Err(e) if crate::refusal(&e) => {
            let problem = pages::error_box("That was not changed", e.message());
            team_page(&web, &session, &team, "", "", Some(problem)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `/admin/people`: people found by name, and the forms to register one.
pub(crate) async fn people(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Query(q): Query<FindQuery>,
) -> Page {
    if session.caller.role != Role::Admin {
        return Ok(admins_only(&web, &session));
    }
    people_page(&web, &session, &q, &pages::admin::Register::default(), None).await
}

fn kind_of(s: &str) -> inbox_pb::PersonKind {
    proto::contract::person_kind(s)
}

async fn people_page(
    web: &Web,
    session: &Session,
    q: &FindQuery,
    typed: &pages::admin::Register<'_>,
    problem: Option<maud::Markup>,
) -> Page {
    let found = find_people(web, session, &q.find, kind_of(&q.kind)).await?;
    let has_problem = problem.is_some();
    let body = pages::admin::people(&found, session, &q.find, &q.kind, &q.done, typed, problem);
    Ok(web.form_page("People", session, body, has_problem))
}

/// Registers a professional, a carer or a patient (each is emailed the
/// verification link, which is also their invitation to sign in).
pub(crate) async fn register(State(web): State<Web>, Posted(session, form): Posted) -> Page {
    let typed = pages::admin::Register {
        kind: form.one("kind"),
        name: form.one("name"),
        role_label: form.one("role_label"),
        email: form.one("email"),
        identity: [
            form.one("date_of_birth"),
            form.one("hospital_number"),
            form.one("nhs_number"),
        ],
    };
    let id = uuid::Uuid::now_v7().to_string();
    let registered = async {
        let mut c = web.command(&session)?;
        let command_id = command_id();
        let reply = match typed.kind {
            "professional" => {
                c.register_professional(cmd::RegisterProfessionalRequest {
                    command_id,
                    professional_id: id.clone(),
                    name: typed.name.to_string(),
                    role_label: typed.role_label.to_string(),
                    work_email: typed.email.to_string(),
                })
                .await?
            }
            "carer" => {
                c.register_carer(cmd::RegisterCarerRequest {
                    command_id,
                    carer_id: id.clone(),
                    name: typed.name.to_string(),
                    email: typed.email.to_string(),
                    email_verified: false,
                })
                .await?
            }
            "patient" => {
                c.register_patient(cmd::RegisterPatientRequest {
                    command_id,
                    patient_id: id.clone(),
                    name: typed.name.to_string(),
                    email: typed.email.to_string(),
                    email_verified: false,
                    date_of_birth: typed.identity[0].to_string(),
                    hospital_number: typed.identity[1].to_string(),
                    nhs_number: typed.identity[2].to_string(),
                })
                .await?
            }
            _ => {
                return Err(Status::invalid_argument(
                    "kind: choose professional, carer or patient",
                ));
            }
        };
        Ok::<_, Status>(reply)
    };
    let find: String = typed.name.trim().to_string();
    match registered.await {
        Ok(reply) => {
            let to = format!(
                "/admin/people?done=registered&find={}",
                crate::encode(&find)
            );
            Ok(web.changed(&session, reply, &to).await)
        }
        Err(e) if crate::refusal(&e) => {
            let problem = pages::error_box("Nobody was registered", e.message());
            people_page(&web, &session, &FindQuery::default(), &typed, Some(problem)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// What taking a staff role away does, asked first.
fn ask_revoke(person: &str, form: &Fields) -> confirm::Ask<'static> {
    let name = match form.one("name").trim() {
        "" => "this person".to_string(),
        name => name.to_string(),
    };
    let role = pages::admin::staff_role_name(form.one("role"));
    confirm::Ask {
        heading: format!("Take away {name}'s {} role?", role.to_lowercase()),
        happens: &[
            "From their next call, Careline refuses them what the role allowed, whatever they are signed in with.",
            "What they did with it stays in the audit trail, which records who took it away and when.",
            "You can grant it again.",
        ],
        yes: format!("Take away the {} role", role.to_lowercase()),
        back: pages::admin::person_link(person, form.one("find")),
    }
}

/// One change to a person's account, posted from the people page (closing
/// an account only from its confirmation page).
pub(crate) async fn change_person(
    State(web): State<Web>,
    Path(person): Path<String>,
    Posted(session, form): Posted,
) -> Page {
    let patient = form.one("kind") == "patient";
    if form.one("do") == "revoke" && !confirm::confirmed(&form) {
        let ask = ask_revoke(&person, &form);
        let action = format!("/admin/people/{person}");
        return Ok(confirm::ask(&web, &session, &action, &form, ask));
    }
    let changed = async {
        let mut c = web.command(&session)?;
        let command_id = command_id();
        let reply = match form.one("do") {
            "grant" => {
                c.grant_staff_role(cmd::GrantStaffRoleRequest {
                    command_id,
                    person_id: person.clone(),
                    role: form.one("role").to_string(),
                    name: form.one("name").to_string(),
                })
                .await?
            }
            "revoke" => {
                c.revoke_staff_role(cmd::RevokeStaffRoleRequest {
                    command_id,
                    person_id: person.clone(),
                    role: form.one("role").to_string(),
                })
                .await?
            }
            "verify" => {
                let (patient_id, person_id) = if patient {
                    (person.clone(), String::new())
                } else {
                    (String::new(), person.clone())
                };
                c.request_email_verification(cmd::RequestEmailVerificationRequest {
                    command_id,
                    patient_id,
                    person_id,
                })
                .await?
            }
            "details" => {
                c.change_patient_details(cmd::ChangePatientDetailsRequest {
                    command_id,
                    patient_id: person.clone(),
                    date_of_birth: form.one("date_of_birth").to_string(),
                    hospital_number: form.one("hospital_number").to_string(),
                    nhs_number: form.one("nhs_number").to_string(),
                })
                .await?
            }
            "email" if patient => {
                c.change_patient_email(cmd::ChangePatientEmailRequest {
                    command_id,
                    patient_id: person.clone(),
                    email: form.one("email").to_string(),
                })
                .await?
            }
            "email" => {
                c.change_person_email(cmd::ChangePersonEmailRequest {
                    command_id,
                    person_id: person.clone(),
                    email: form.one("email").to_string(),
                })
                .await?
            }
            "deactivate" => {
                c.deactivate_person(cmd::DeactivatePersonRequest {
                    command_id,
                    person_id: person.clone(),
                })
                .await?
            }
            "reactivate" => {
                c.reactivate_person(cmd::ReactivatePersonRequest {
                    command_id,
                    person_id: person.clone(),
                })
                .await?
            }
            _ => return Err(Status::invalid_argument("do: not a change to an account")),
        };
        Ok::<_, Status>(reply)
    };
    let back = pages::admin::person_link(&person, form.one("find"));
    match changed.await {
        Ok(reply) => Ok(web
            .changed(
                &session,
                reply,
                &format!("{back}&done={}", crate::encode(form.one("do"))),
            )
            .await),
        Err(e) if crate::refusal(&e) && form.one("do") == "details" => {
            // The form again, with what was typed and what to fix.
            let typed = [
                form.one("date_of_birth"),
                form.one("hospital_number"),
                form.one("nhs_number"),
            ];
            let body = pages::admin::details_again(
                &person,
                form.one("find"),
                typed,
                e.message(),
                &session,
            );
            Ok(web.form_page("Date of birth and numbers", &session, body, true))
        }
        Err(e) if crate::refusal(&e) => {
            let body = pages::problem_page("That was not changed", e.message());
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                web.page("People", Some(&session), body),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct CloseQuery {
    #[serde(default)]
    name: String,
    #[serde(default)]
    find: String,
}

/// What closing an account does, said before it is confirmed.
pub(crate) async fn close_page(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Path(person): Path<String>,
    Query(q): Query<CloseQuery>,
) -> Page {
    if session.caller.role != Role::Admin {
        return Ok(admins_only(&web, &session));
    }
    let body = pages::admin::close(&person, q.name.trim(), &q.find, &session);
    Ok(web.page("Close an account", Some(&session), body))
}
