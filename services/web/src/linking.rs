//! Signing in at the identity provider, and linking that account to a
//! Careline person once. The command service checks the provider's ID token
//! (`SignIn`) and answers with the person's tokens, or, for an account
//! linked to no one, with an account token, which is what links it
//! (`LinkIdentity`) and then signs it in. This service holds no key: it
//! relays. An account linked to no one is held for its browser while the
//! person proves who they are:
//!
//! * by the invitation their care team's email carried (the verification
//!   link sent when staff registered them, `/email/confirm?token=`), or
//! * by signing up with a team's join code (`/join/<code>`): a patient
//!   record under the id derived from this account, then the link.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use careline_client::bearer::{Bearer, command_id};
use proto::command::command_service_client::CommandServiceClient;
use proto::command::{self as cmd, link_identity_request::Proof, sign_in_request};
use proto::inbox::inbox_service_client::InboxServiceClient;
use proto::inbox::{self as inbox_pb};
use service_kit::{Caller, Role};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use uuid::Uuid;

use crate::oidc::{Held, IdToken};
use crate::session::{PRE_COOKIE, Tokens, cookie};
use crate::{AsPerson, Fields, Web, pages};

impl Web {
    /// The command service, for calls that carry their proof in the
    /// request (signing in, linking): no bearer token.
    fn sign_in_command(&self) -> CommandServiceClient<Channel> {
        CommandServiceClient::new(self.inner.command.clone())
    }

    /// Signs in on `proof`: the command service's answer.
    pub(crate) async fn sign_in_with(
        &self,
        proof: sign_in_request::Proof,
    ) -> Result<cmd::SignInReply, Status> {
        Ok(self
            .sign_in_command()
            .sign_in(cmd::SignInRequest { proof: Some(proof) })
            .await?
            .into_inner())
    }

    /// Signs in the person `found` names, reading from `position` on, and
    /// goes to `to`; or the page saying why not. `wanted`: the role to
    /// start in, when they hold it (the demo's persona).
    pub(crate) async fn start_found(
        &self,
        browser: &str,
        found: &cmd::SignInReply,
        wanted: Option<Role>,
        position: u64,
        to: &str,
    ) -> Result<(crate::session::Session, Response), Box<Response>> {
        if found.deactivated {
            return Err(Box::new(Redirect::to("/sign-in?closed=1").into_response()));
        }
        let tokens: Vec<(Role, String)> = found
            .tokens
            .iter()
            .filter_map(|t| Some((t.role.parse::<Role>().ok()?, t.token.clone())))
            .collect();
        let tokens = Tokens::new(tokens);
        let (Ok(person_id), Ok(own)) = (
            Uuid::parse_str(&found.person_id),
            found.role.parse::<Role>(),
        ) else {
            return Err(Box::new(problem(
                self,
                StatusCode::BAD_GATEWAY,
                "You were not signed in",
                "Careline could not read whom this sign-in belongs to. Try again in a minute.",
            )));
        };
        let role = wanted.filter(|r| tokens.of(*r).is_some()).unwrap_or(own);
        if tokens.of(role).is_none() {
            return Err(Box::new(problem(
                self,
                StatusCode::BAD_GATEWAY,
                "You were not signed in",
                "Careline gave this sign-in no way to work. Try again in a minute.",
            )));
        }
        if let Some(oidc) = &self.inner.oidc {
            oidc.release(&self.inner.sessions, browser).await;
        }
        let caller = Caller {
            person_id,
            role,
            name: found.name.clone(),
        };
        // The staff roles that have pages here (an operator's are the CLI).
        let roles = if wanted.is_some() {
            vec![role]
        } else {
            std::iter::once(role)
                .chain(
                    tokens
                        .roles()
                        .filter(|r| matches!(r, Role::Admin | Role::Auditor)),
                )
                .collect()
        };
        self.start_session(caller, roles, tokens, position, to)
            .await
            .map_err(Box::new)
    }
}

fn either(started: Result<(crate::session::Session, Response), Box<Response>>) -> Response {
    started.map_or_else(|r| *r, |(_, r)| r)
}

fn problem(web: &Web, status: StatusCode, heading: &str, detail: &str) -> Response {
    let body = pages::problem_page(heading, detail);
    (status, web.page("Sign in", None, body)).into_response()
}

/// Back from the provider with its ID token: signed in as the person the
/// account is linked to, or held while they link it.
pub(crate) async fn signed_in_at_provider(
    web: &Web,
    browser: &str,
    token: IdToken,
    next: &str,
) -> Response {
    let proof = sign_in_request::Proof::IdToken(cmd::IdTokenProof {
        id_token: token.id_token,
        nonce: token.nonce,
    });
    let found = match web.sign_in_with(proof).await {
        Ok(found) => found,
        Err(e) if e.code() == Code::Unauthenticated => {
            tracing::warn!("the command service refused an ID token");
            return problem(
                web,
                StatusCode::FORBIDDEN,
                "You were not signed in",
                "Careline could not confirm this sign-in with your identity provider. Go to the sign-in page and start again.",
            );
        }
        Err(e) => {
            tracing::warn!(code = ?e.code(), "whom a sign-in belongs to could not be read");
            return problem(
                web,
                StatusCode::SERVICE_UNAVAILABLE,
                "You were not signed in",
                "Careline cannot check your sign-in just now. Try again in a minute.",
            );
        }
    };
    if found.linked {
        return either(web.start_found(browser, &found, None, 0, next).await);
    }
    tracing::info!("signed in at the identity provider; not linked to anyone yet");
    let Some(oidc) = &web.inner.oidc else {
        return Redirect::to("/sign-in").into_response();
    };
    let held = Held {
        account_token: found.account_token,
        sign_up_token: found.sign_up_token,
        name: found.provider_name,
        email: found.provider_email,
    };
    if let Err(e) = oidc.hold(&web.inner.sessions, browser, &held).await {
        return web.store_down(&e);
    }
    // Coming from an invitation or a join link: that page links.
    if next.starts_with("/email/confirm?") || next.starts_with("/join/") {
        return Redirect::to(next).into_response();
    }
    let body = pages::not_linked(&held.name, oidc.label());
    (StatusCode::OK, web.page("Link your account", None, body)).into_response()
}

/// The browser's held account: `(browser, held)`.
async fn held(web: &Web, headers: &HeaderMap) -> Option<(String, Held)> {
    let browser = cookie(headers, PRE_COOKIE)?;
    let oidc = web.inner.oidc.as_ref()?;
    let held = oidc.held(&web.inner.sessions, &browser).await?;
    Some((browser, held))
}

/// A form posted by a browser holding an account, its CSRF token (the
/// pre-sign-in cookie's) checked.
async fn posted_held(
    web: &Web,
    headers: &HeaderMap,
    form: &Fields,
) -> Result<(String, Held), Box<Response>> {
    match held(web, headers).await {
        Some((browser, identity)) if form.one("csrf") == browser => Ok((browser, identity)),
        Some(_) => Err(Box::new(web.forbidden(None))),
        None => Err(Box::new(Redirect::to("/sign-in").into_response())),
    }
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct CodeQuery {
    #[serde(default)]
    code: String,
}

/// The not-linked page's join-code form: on to that code's join page.
pub(crate) async fn join_code(Query(q): Query<CodeQuery>) -> Response {
    let code: String = q
        .code
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if code.is_empty() {
        return Redirect::to("/sign-in").into_response();
    }
    Redirect::to(&format!("/join/{code}")).into_response()
}

/// `channel`, each call carrying the held account's sign-up token (the
/// patient its sign-up with a join code makes).
fn as_sign_up(held: &Held, channel: &Channel) -> Result<AsPerson, Status> {
    let bearer = Bearer::new(&held.sign_up_token)?;
    Ok(InterceptedService::new(channel.clone(), bearer))
}

async fn team_by_code(web: &Web, held: &Held, code: &str) -> Result<inbox_pb::TeamContact, Status> {
    Ok(InboxServiceClient::new(as_sign_up(held, &web.inner.inbox)?)
        .team_by_join_code(inbox_pb::TeamByJoinCodeRequest {
            min_position: 0,
            join_code: code.to_string(),
        })
        .await?
        .into_inner())
}

/// `/join/<code>` for a browser signed in at the provider but linked to no
/// one: the team, and a button that signs up and joins. `None`: no account
/// held here.
pub(crate) async fn join_page(web: &Web, headers: &HeaderMap, code: &str) -> Option<Response> {
    let (browser, held) = held(web, headers).await?;
    Some(match team_by_code(web, &held, code).await {
        Ok(team) => {
            let body = pages::sign_up(&team, code, &browser, &held.name, &held.email);
            web.page("Join a team", None, body)
        }
        Err(e) if e.code() == Code::NotFound => problem(
            web,
            StatusCode::NOT_FOUND,
            "This join link does not work",
            e.message(),
        ),
        Err(e) => {
            tracing::warn!(code = ?e.code(), "a join code could not be looked up");
            problem(
                web,
                StatusCode::SERVICE_UNAVAILABLE,
                "Careline is not answering just now",
                "Try again in a minute.",
            )
        }
    })
}

/// Signs up the held account as a patient of the team, links it, and
/// signs them in.
pub(crate) async fn sign_up(
    State(web): State<Web>,
    axum::extract::Path(code): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Fields::parse(&body);
    let (browser, held) = match posted_held(&web, &headers, &form).await {
        Ok(held) => held,
        Err(response) => return *response,
    };
    let done = async {
        let team = team_by_code(&web, &held, &code).await?;
        CommandServiceClient::new(as_sign_up(&held, &web.inner.command)?)
            .join_team_with_code(cmd::JoinTeamWithCodeRequest {
                command_id: command_id(),
                team_id: team.team_id.clone(),
                join_code: code.clone(),
                name: held.name.clone(),
                email: held.email.clone(),
            })
            .await?;
        let linked = link(&web, &held, Proof::SignUp(true)).await?;
        Ok::<_, Status>((team, linked))
    };
    match done.await {
        Ok((team, (found, position))) => either(
            web.start_found(
                &browser,
                &found,
                None,
                position,
                &format!("/teams/{}/message", team.team_id),
            )
            .await,
        ),
        Err(e) if crate::refusal(&e) => problem(
            &web,
            StatusCode::UNPROCESSABLE_ENTITY,
            "You have not signed up",
            e.message(),
        ),
        Err(e) => {
            tracing::warn!(code = ?e.code(), "a sign-up failed");
            problem(
                &web,
                StatusCode::SERVICE_UNAVAILABLE,
                "You have not signed up",
                "Careline is not answering just now. Try again in a minute: nothing is done twice.",
            )
        }
    }
}

/// Links the held account with `proof`; whom it signs in as now, and the
/// link's position.
async fn link(web: &Web, held: &Held, proof: Proof) -> Result<(cmd::SignInReply, u64), Status> {
    let reply = web
        .sign_in_command()
        .link_identity(cmd::LinkIdentityRequest {
            command_id: command_id(),
            account_token: held.account_token.clone(),
            proof: Some(proof),
        })
        .await?
        .into_inner();
    let found = web
        .sign_in_with(sign_in_request::Proof::AccountToken(
            held.account_token.clone(),
        ))
        .await?;
    Ok((found, reply.position))
}

/// `/email/confirm?token=` for a browser signed in at the provider but
/// linked to no one: a button that links the account to the person the
/// email was sent to. `None`: no account held here.
pub(crate) async fn invitation_page(
    web: &Web,
    headers: &HeaderMap,
    token: &str,
) -> Option<Response> {
    let (browser, held) = held(web, headers).await?;
    let body = pages::invitation(token, &browser, &held.name);
    Some(web.page("Link your account", None, body))
}

/// Links the held account to the person the invitation was sent to, signs
/// them in, and confirms their address (the link proves it too).
pub(crate) async fn accept_invitation(
    State(web): State<Web>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Fields::parse(&body);
    let (browser, held) = match posted_held(&web, &headers, &form).await {
        Ok(held) => held,
        Err(response) => return *response,
    };
    let token = form.one("token").trim().to_string();
    let (found, position) = match link(&web, &held, Proof::InvitationToken(token.clone())).await {
        Ok(linked) => linked,
        Err(e) if crate::refusal(&e) => {
            return problem(
                &web,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Your account was not linked",
                &format!(
                    "{} If your link has expired, ask your care team to send a new one.",
                    e.message()
                ),
            );
        }
        Err(e) => {
            tracing::warn!(code = ?e.code(), "an invitation could not be accepted");
            return problem(
                &web,
                StatusCode::SERVICE_UNAVAILABLE,
                "Your account was not linked",
                "Careline is not answering just now. Try again in a minute.",
            );
        }
    };
    let (session, response) = match web
        .start_found(&browser, &found, None, position, "/account?done=linked")
        .await
    {
        Ok(started) => started,
        Err(response) => return *response,
    };
    // The same link confirms the address, as the person now (unless it is
    // confirmed already, or a newer request is pending: it still linked).
    let confirmed = async {
        web.command(&session)?
            .confirm_email(cmd::ConfirmEmailRequest {
                command_id: command_id(),
                token,
            })
            .await
    };
    match confirmed.await {
        Ok(reply) => web.advance(&session, reply.into_inner().position).await,
        Err(e) => tracing::info!(code = ?e.code(), "the invitation's address was not confirmed"),
    }
    response
}
