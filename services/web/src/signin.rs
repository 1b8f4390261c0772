//! Signing in (the demo's people, or at the identity provider), choosing
//! the role to work in, and signing out.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use service_kit::Role;

use crate::error::shown_for;
use crate::session::{COOKIE, PRE_COOKIE, cookie, set_cookie};
use crate::{Fields, Posted, Web, client, linking, local, pages, session};

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct SignInQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    closed: Option<String>,
    /// The browser's session had ended.
    #[serde(default)]
    ended: Option<String>,
    /// They signed out here.
    #[serde(default)]
    out: Option<String>,
}

pub(crate) async fn sign_in_page(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    let pre = cookie(&headers, PRE_COOKIE).unwrap_or_else(session::random_token);
    let notice = if q.closed.is_some() {
        Some(
            "Your account has been closed, so you have been signed out. Ask the hospital if you think this is wrong.",
        )
    } else if q.ended.is_some() {
        Some(
            "Your session ended, so nothing was sent. Sign in to carry on: you go back to the page you were on, and anything you had typed there is kept in this browser.",
        )
    } else if q.out.is_some() {
        Some("You are signed out. Close this browser tab if others use this computer.")
    } else {
        None
    };
    let oidc = web.inner.oidc.as_ref().map(|o| o.label());
    let body = pages::sign_in(
        web.inner.demo.as_deref(),
        oidc,
        local(&q.next),
        &pre,
        notice,
    );
    let mut response = web.page("Sign in", None, body);
    if let Ok(v) = set_cookie(PRE_COOKIE, &pre, web.inner.secure, None).parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

pub(crate) async fn sign_in_demo(
    State(web): State<Web>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Fields::parse(&body);
    let pre = cookie(&headers, PRE_COOKIE);
    if pre.is_none() || pre.as_deref() != Some(form.one("csrf")) {
        return web.forbidden(None);
    }
    let Some(person) = web.inner.demo.as_ref().and_then(|people| {
        people
            .iter()
            .find(|p| p.caller.person_id.to_string() == form.one("person_id"))
    }) else {
        let body = pages::problem_page(
            "You cannot sign in that way",
            "Demo sign-in is off, or that person is not in the demo.",
        );
        return (StatusCode::FORBIDDEN, web.page("Sign in", None, body)).into_response();
    };
    // The command service signs the demo person in (it does so only when
    // it runs a demo): this service mints nothing.
    let proof =
        proto::command::sign_in_request::Proof::DemoPersonId(person.caller.person_id.to_string());
    let found = match web.sign_in_with(proof).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(code = ?e.code(), "a demo sign-in was refused");
            let shown = shown_for(&e);
            let body = pages::problem_page("You were not signed in", &shown.detail);
            return (shown.code, web.page("Sign in", None, body)).into_response();
        }
    };
    let pre = pre.unwrap_or_default();
    match web
        .start_found(
            &pre,
            &found,
            Some(person.caller.role),
            0,
            local(form.one("next")),
        )
        .await
    {
        Ok((_, response)) => response,
        Err(response) => *response,
    }
}

/// Off to the identity provider, to come back to `next`.
pub(crate) async fn sign_in_oidc(
    State(web): State<Web>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    let Some(oidc) = &web.inner.oidc else {
        return Redirect::to("/sign-in").into_response();
    };
    // Each start keeps a pending sign-in: a flood from one address is
    // refused before it makes one.
    let from = client::address(peer.map(|p| (p.0).0), &headers, &web.inner.trusted_proxies);
    let limit = &web.inner.sign_in_starts;
    if let Err(wait) = limit.take(&from, std::time::Instant::now()) {
        let body = pages::problem_page(
            "Too many sign-ins from your network just now",
            &format!(
                "At most {} sign-ins a minute are started from one network address. Please try again in {} seconds.",
                limit.most(),
                wait.as_secs().max(1)
            ),
        );
        tracing::warn!(client = %from, "sign-in starts over the limit");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            web.page("Sign in", None, body),
        )
            .into_response();
    }
    let pre = cookie(&headers, PRE_COOKIE).unwrap_or_else(session::random_token);
    let to = match oidc.begin(&web.inner.sessions, &pre, local(&q.next)).await {
        Ok(to) => to,
        Err(e) => return web.store_down(&e),
    };
    let mut response = Redirect::to(&to).into_response();
    if let Ok(v) = set_cookie(PRE_COOKIE, &pre, web.inner.secure, None).parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
}

/// Back from the identity provider: who it says this is.
pub(crate) async fn sign_in_callback(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let problem = |heading: &str, detail: &str| {
        let body = pages::problem_page(heading, detail);
        (StatusCode::FORBIDDEN, web.page("Sign in", None, body)).into_response()
    };
    let (Some(oidc), Some(pre)) = (&web.inner.oidc, cookie(&headers, PRE_COOKIE)) else {
        return problem(
            "This sign-in was not started here",
            "Go to the sign-in page and start again.",
        );
    };
    if !q.error.is_empty() {
        // The provider's own words are not shown: they may carry anything.
        return problem(
            "You were not signed in",
            "The identity provider did not sign you in (you may have cancelled). Try again from the sign-in page.",
        );
    }
    match oidc
        .finish(&web.inner.sessions, &pre, &q.code, &q.state)
        .await
    {
        Ok((token, next)) => linking::signed_in_at_provider(&web, &pre, token, local(&next)).await,
        Err(e) => {
            tracing::warn!(error = %e, "a sign-in at the identity provider failed");
            problem("You were not signed in", &e.to_string())
        }
    }
}

/// The pages a role starts on.
pub(crate) fn home(role: Role) -> &'static str {
    match role {
        Role::Professional => "/teams",
        Role::Admin => "/admin/teams",
        Role::Auditor => "/audit",
        _ => "/messages",
    }
}

/// `POST /session/role`: a person who holds several roles (a nurse who is
/// also an admin) works in another of them, chosen among those the
/// session was signed in with; the services check the role on every call.
pub(crate) async fn work_as(State(web): State<Web>, Posted(session, form): Posted) -> Response {
    let switched = match form.one("role").parse::<Role>() {
        Ok(role) => match web.inner.sessions.work_as(&session.id, role).await {
            Ok(true) => Some(role),
            Ok(false) => None,
            Err(e) => return web.store_down(&e),
        },
        Err(_) => None,
    };
    match switched {
        Some(role) => Redirect::to(home(role)).into_response(),
        None => {
            let body = pages::problem_page(
                "You cannot work in that role",
                "Choose one of the roles offered at the top of the page. An admin grants staff roles.",
            );
            (
                StatusCode::FORBIDDEN,
                web.page("Role not changed", Some(&session), body),
            )
                .into_response()
        }
    }
}

pub(crate) async fn sign_out(State(web): State<Web>, Posted(session, _): Posted) -> Response {
    if let Err(e) = web.inner.sessions.end(&session.id).await {
        return web.store_down(&e);
    }
    let mut response = Redirect::to("/sign-in?out=1").into_response();
    let gone = set_cookie(COOKIE, "", web.inner.secure, Some(Duration::ZERO));
    if let Ok(v) = gone.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
