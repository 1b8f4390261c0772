//! Careline's web front end: a back end for the browser. It holds the
//! session and calls the services over gRPC as the signed-in person (with
//! the tokens the command service issued at sign-in: this service mints
//! none); it reads no read model and decides no rule: the services answer,
//! the pages show it.
//!
//! Here: the shared state ([`Web`]), the extractors (`SignedIn`, `Posted`)
//! and the router; `error.rs` what a failed call shows (`AppError`, the
//! `shown` layer); `app.rs` the service as a process. The rooms: sign-in
//! (`signin.rs`, `oidc.rs`, `linking.rs`), conversations (`messages.rs`,
//! `staff.rs`, `teams.rs`), a person's record (`record.rs`, `trail.rs`),
//! admin and privacy pages, live updates and presence; markup in `pages/`.

mod admin;
mod app;
mod assets;
mod client;
pub mod config;
mod confirm;
mod error;
mod files;
mod linking;
mod live;
mod messages;
pub mod oidc;
mod pages;
mod presence;
mod privacy;
mod record;
pub mod session;
mod signin;
mod staff;
mod teams;
mod trail;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use careline_client::bearer::Bearer;
use maud::Markup;
use proto::audit::audit_service_client::AuditServiceClient;
use proto::command::command_service_client::CommandServiceClient;
use proto::command::{self as cmd};
use proto::inbox::inbox_service_client::InboxServiceClient;
use service_kit::Role;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use app::Application;
pub use config::{Config, DemoPerson, read_demo_people};
pub(crate) use error::Page;
pub(crate) use messages::{
    not_for_you, own_record, plain_refusal, read_thread, recipient, refusal, thread_with_problem,
    who_can_i_message, writing_in,
};
use session::{COOKIE, Session, Sessions, cookie, set_cookie};
pub(crate) use trail::export_download;

/// Conversations on a page of the message list.
const LIST_PAGE: u32 = 50;

/// A channel whose calls are the signed-in person's.
type AsPerson = InterceptedService<Channel, Bearer>;

/// What every request shares.
#[derive(Clone)]
pub struct Web {
    inner: Arc<Inner>,
}

struct Inner {
    command: Channel,
    inbox: Channel,
    audit: Channel,
    notify: Channel,
    sessions: Sessions,
    demo: Option<Vec<DemoPerson>>,
    oidc: Option<Arc<oidc::Oidc>>,
    secure: bool,
    presence: Arc<presence::Presence>,
    base_url: String,
    /// Sign-ins started per client address (`CARELINE_WEB_SIGN_INS_PER_MINUTE`).
    sign_in_starts: service_kit::limit::Limit,
    /// Whose `X-Forwarded-For` is believed (`CARELINE_WEB_TRUSTED_PROXIES`).
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Becomes true when the service is told to stop: every live stream
    /// ends then, so its browser reconnects (to another instance).
    stopping: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web")
            .field("demo", &self.inner.demo.is_some())
            .finish_non_exhaustive()
    }
}

/// The channels the web service calls through.
#[derive(Clone, Debug)]
pub struct Backends {
    pub command: Channel,
    pub inbox: Channel,
    pub audit: Channel,
    pub notify: Channel,
}

impl Web {
    pub fn new(backends: Backends, config: &Config, demo: Option<Vec<DemoPerson>>) -> Self {
        Self::signing_in_at(backends, config, demo, None)
    }

    /// The web service, with sign-in at an OpenID Connect provider.
    pub fn signing_in_at(
        backends: Backends,
        config: &Config,
        demo: Option<Vec<DemoPerson>>,
        oidc: Option<Arc<oidc::Oidc>>,
    ) -> Self {
        let sessions = Sessions::new(config.idle, config.absolute);
        Self::with_sessions(backends, config, demo, oidc, sessions)
    }

    /// The web service keeping its sessions in `sessions` (shared by every
    /// instance when they are in the database).
    pub fn with_sessions(
        backends: Backends,
        config: &Config,
        demo: Option<Vec<DemoPerson>>,
        oidc: Option<Arc<oidc::Oidc>>,
        sessions: Sessions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                command: backends.command,
                inbox: backends.inbox,
                audit: backends.audit,
                notify: backends.notify,
                sessions,
                demo,
                oidc,
                secure: config.secure_cookies,
                presence: Arc::new(presence::Presence::default()),
                base_url: config.base_url.clone(),
                sign_in_starts: service_kit::limit::Limit::per_minute(config.sign_ins_per_minute),
                trusted_proxies: config.trusted_proxies.clone(),
                stopping: tokio::sync::watch::Sender::new(false),
            }),
        }
    }

    /// `channel`, each call carrying the token the command service issued
    /// this sign-in for the role `s` works in now.
    fn as_person(&self, s: &Session, channel: &Channel) -> Result<AsPerson, Status> {
        let token = s.tokens.of(s.caller.role).ok_or_else(|| {
            Status::unauthenticated("this sign-in holds no token for the role it works in")
        })?;
        let bearer = Bearer::new(token)?;
        Ok(InterceptedService::new(channel.clone(), bearer))
    }

    fn command(&self, s: &Session) -> Result<CommandServiceClient<AsPerson>, Status> {
        Ok(CommandServiceClient::new(
            self.as_person(s, &self.inner.command)?,
        ))
    }

    fn notify(
        &self,
        s: &Session,
    ) -> Result<
        proto::notify::notification_service_client::NotificationServiceClient<AsPerson>,
        Status,
    > {
        Ok(
            proto::notify::notification_service_client::NotificationServiceClient::new(
                self.as_person(s, &self.inner.notify)?,
            ),
        )
    }

    fn inbox(&self, s: &Session) -> Result<InboxServiceClient<AsPerson>, Status> {
        Ok(InboxServiceClient::new(
            self.as_person(s, &self.inner.inbox)?,
        ))
    }

    fn audit(&self, s: &Session) -> Result<AuditServiceClient<AsPerson>, Status> {
        Ok(AuditServiceClient::new(
            self.as_person(s, &self.inner.audit)?,
        ))
    }

    fn demo(&self) -> bool {
        self.inner.demo.is_some()
    }

    fn page(&self, title: &str, session: Option<&Session>, body: Markup) -> Response {
        html(pages::layout(
            title,
            session,
            self.demo(),
            self.inner.sessions.idle(),
            body,
        ))
    }

    /// Signs `caller` in (a new session, reading from `position` on) and
    /// sends the browser to `to`.
    async fn start_session(
        &self,
        caller: service_kit::Caller,
        roles: Vec<Role>,
        tokens: session::Tokens,
        position: u64,
        to: &str,
    ) -> Result<(Session, Response), Response> {
        let sessions = &self.inner.sessions;
        let started = async {
            let session = sessions.start_with_roles(caller, roles, tokens).await?;
            sessions.advance(&session.id, position).await?;
            Ok::<_, session::StoreError>(session)
        };
        let session = started.await.map_err(|e| self.store_down(&e))?;
        let mut response = Redirect::to(to).into_response();
        if let Ok(v) = set_cookie(COOKIE, &session.id, self.inner.secure, None).parse() {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
        Ok((session, response))
    }

    /// The page of a session store that does not answer: no one can sign
    /// in or be recognised until it does.
    fn store_down(&self, e: &session::StoreError) -> Response {
        tracing::error!(error = %e, "sessions unavailable");
        let body = pages::problem_page(
            "Careline is not reachable just now",
            "Please try again in a minute.",
        );
        (
            StatusCode::SERVICE_UNAVAILABLE,
            self.page("Not reachable", None, body),
        )
            .into_response()
    }

    /// The signed-in session, or the way to sign in (coming back to `uri`).
    /// The session of the browser's cookie; else a redirect to sign in,
    /// then on to `uri`, saying so when the browser had a session that
    /// has ended (idle, or at its absolute end).
    async fn signed_in(&self, headers: &HeaderMap, uri: &Uri) -> Result<Session, Box<Response>> {
        let had = cookie(headers, COOKIE);
        let found = match &had {
            Some(id) => self.inner.sessions.get(id).await,
            None => Ok(None),
        };
        match found {
            Ok(Some(session)) => Ok(session),
            Ok(None) => {
                let next = uri.path_and_query().map_or("/messages", |p| p.as_str());
                let ended = if had.is_some() { "&ended=1" } else { "" };
                Err(Box::new(
                    Redirect::to(&format!("/sign-in?next={}{ended}", encode(next))).into_response(),
                ))
            }
            Err(e) => Err(Box::new(self.store_down(&e))),
        }
    }

    /// Records that `session` made a change at `position`: later reads
    /// wait for it. A store that does not answer costs only that wait (the
    /// change is made; the next page may not show it yet).
    async fn advance(&self, session: &Session, position: u64) {
        if let Err(e) = self.inner.sessions.advance(&session.id, position).await {
            tracing::warn!(error = %e, "a session's position was not kept");
        }
    }

    /// A change made as `session`: later reads wait for it, and the
    /// browser goes to `to`.
    async fn changed(
        &self,
        session: &Session,
        reply: tonic::Response<cmd::CommandReply>,
        to: &str,
    ) -> Response {
        self.advance(session, reply.into_inner().position).await;
        Redirect::to(to).into_response()
    }

    /// A page with a form: 422 when it shows what to fix.
    fn form_page(&self, title: &str, session: &Session, body: Markup, problem: bool) -> Response {
        let status = if problem {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        (status, self.page(title, Some(session), body)).into_response()
    }

    /// The signed-in session of a form, whose CSRF token must be its own.
    /// The session a form was posted in (its CSRF token checked). When it
    /// has ended, the browser signs in and goes back to the page the form
    /// was on (`live.js` keeps what was typed in it).
    async fn posted(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
        form: &Fields,
    ) -> Result<Session, Box<Response>> {
        let back = form_page(uri.path())
            .parse::<Uri>()
            .unwrap_or_else(|_| Uri::from_static("/messages"));
        let session = self.signed_in(headers, &back).await?;
        if form.one("csrf") != session.csrf {
            return Err(Box::new(self.forbidden(Some(&session))));
        }
        Ok(session)
    }

    fn forbidden(&self, session: Option<&Session>) -> Response {
        let body = pages::problem_page(
            "This form has expired",
            "Go back, reload the page and try again. (Its security token did not match this sign-in.)",
        );
        (
            StatusCode::FORBIDDEN,
            self.page("Form expired", session, body),
        )
            .into_response()
    }
}

fn html(markup: Markup) -> Response {
    let mut response = markup.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The signed-in person of a page; without a session, the way to sign in
/// (coming back to the page).
struct SignedIn(Session);

impl axum::extract::FromRequestParts<Web> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        web: &Web,
    ) -> Result<Self, Response> {
        web.signed_in(&parts.headers, &parts.uri)
            .await
            .map(SignedIn)
            .map_err(|r| *r)
    }
}

/// A form posted by the signed-in person, with its CSRF token checked.
struct Posted(Session, Fields);

impl axum::extract::FromRequest<Web> for Posted {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, web: &Web) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, FORM_MAX)
            .await
            .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE.into_response())?;
        let form = Fields::parse(&body);
        let session = web
            .posted(&parts.headers, &parts.uri, &form)
            .await
            .map_err(|r| *r)?;
        Ok(Posted(session, form))
    }
}

/// The largest form the pages take (a message is at most 20,000
/// characters, each up to four bytes, and encoded).
const FORM_MAX: usize = 256 * 1024;

/// Activity from a page (typing, or "Stay signed in"): 204 while the
/// session lasts (this request moved its idle end on), 401 once it ended.
async fn session_alive(State(web): State<Web>, headers: HeaderMap) -> Response {
    let found = match cookie(&headers, COOKIE) {
        Some(id) => web.inner.sessions.get(&id).await,
        None => Ok(None),
    };
    match found {
        Ok(Some(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(None) => StatusCode::UNAUTHORIZED.into_response(),
        Err(e) => web.store_down(&e),
    }
}

/// The page whose form posts to `action`: a conversation's for its reply,
/// note and moves; the same path for a page that posts to itself; else the
/// message list.
fn form_page(action: &str) -> String {
    let segments: Vec<&str> = action.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["threads", id, "reply" | "note" | "move" | "typing"] => format!("/threads/{id}"),
        ["record", "carers", "withdraw"] => "/record/carers".into(),
        ["record", "access", "end"] => "/record/access".into(),
        ["account", "verify" | "email"] => "/account".into(),
        ["admin", "people", id] | ["admin", "people", id, "close"] => format!("/admin/people/{id}"),
        ["join", code, "sign-up"] => format!("/join/{code}"),
        ["messages", "new"]
        | ["threads", _, "add"]
        | ["admin", "teams" | "people"]
        | ["admin", "teams", _]
        | ["join", _]
        | ["teams", _, "start"] => action.to_string(),
        _ => "/messages".into(),
    }
}

/// Percent-encodes a path for a query value.
fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Only a path of this site is somewhere to go after signing in. A
/// browser resolves a URL after the WHATWG rules: it drops tabs and line
/// breaks anywhere, reads a backslash as `/`, and takes `//host` as another site,
/// so `/<TAB>/evil.example` would leave. Any control character, space or
/// backslash, or a second slash at the start, sends the person to where
/// their role starts (`/`) instead.
fn local(next: &str) -> &str {
    let plain = !next
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    if plain && next.starts_with('/') && !next.starts_with("//") {
        next
    } else {
        "/"
    }
}

/// A form's fields, in order (a field may repeat: checkboxes).
#[derive(Debug, Default)]
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }
    fn one(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The pages and their forms.
pub fn router(web: Web) -> Router {
    Router::new()
        // Each role starts on its own work (signing in first).
        .route(
            "/",
            get(|SignedIn(session): SignedIn| async move {
                Redirect::to(signin::home(session.caller.role))
            }),
        )
        .route("/sign-in", get(signin::sign_in_page))
        .route("/sign-in/demo", post(signin::sign_in_demo))
        .route("/sign-in/oidc", get(signin::sign_in_oidc))
        .route("/sign-in/callback", get(signin::sign_in_callback))
        .route("/sign-out", post(signin::sign_out))
        .route("/session/role", post(signin::work_as))
        .route("/messages", get(messages::messages))
        .route(
            "/messages/new",
            get(messages::new_message_page)
                .post(messages::new_message)
                .layer(axum::extract::DefaultBodyLimit::max(files::FILES_FORM_MAX)),
        )
        .route("/threads/{id}", get(messages::thread))
        .route(
            "/threads/{id}/reply",
            post(messages::reply)
                .layer(axum::extract::DefaultBodyLimit::max(files::FILES_FORM_MAX)),
        )
        .route("/threads/{id}/files/{digest}", get(files::download))
        .route("/threads/{id}/files/{digest}/preview", get(files::preview))
        .route("/threads/{id}/read", post(messages::mark_read))
        .route("/record", get(record::hub))
        .route(
            "/record/carers",
            get(record::carers).post(record::give_consent),
        )
        .route("/record/carers/withdraw", post(record::withdraw_consent))
        .route(
            "/record/access",
            get(record::access).post(record::give_access),
        )
        .route("/record/access/end", post(record::end_access))
        .route("/account", get(record::account))
        .route("/account/away", post(record::away))
        .route("/account/verify", post(record::send_verification))
        .route("/account/email", post(record::change_email))
        .route(
            "/email/confirm",
            get(record::confirm_page).post(record::confirm),
        )
        .route(
            "/acting-for",
            get(record::acting_for_page).post(record::choose_acting_for),
        )
        .route("/record/trail", get(trail::trail))
        .route("/admin/teams", get(admin::teams).post(admin::create_team))
        .route(
            "/admin/systems",
            get(admin::systems).post(admin::register_system),
        )
        .route(
            "/admin/teams/{id}",
            get(admin::team).post(admin::change_team),
        )
        .route("/admin/people", get(admin::people).post(admin::register))
        .route(
            "/admin/people/{id}",
            get(admin::person).post(admin::change_person),
        )
        .route("/admin/people/{id}/close", get(admin::close_page))
        .route("/audit", get(privacy::trails))
        .route("/audit/verify", get(privacy::verify))
        .route("/audit/export", get(privacy::export))
        .route("/record/trail/download", get(trail::trail_download))
        .route("/teams", get(staff::teams))
        .route("/teams/{id}/inbox", get(staff::team_inbox))
        .route("/teams/{id}/queue", get(staff::queue))
        .route("/teams/{id}/not-read", get(staff::not_read))
        .route("/teams/{id}/start", get(staff::start))
        .route("/threads/{id}/move", post(staff::move_thread))
        .route("/threads/{id}/note", post(staff::note))
        .route("/threads/{id}/typing", post(staff::typing))
        .route("/threads/{id}/add", get(staff::add_page).post(staff::add))
        .route("/static/shortcuts.js", get(assets::shortcuts))
        .route("/teams/{id}/message", get(teams::message))
        .route("/join", get(linking::join_code))
        .route("/join/{code}", get(teams::join_page).post(teams::join))
        .route("/join/{code}/sign-up", post(linking::sign_up))
        .route("/email/confirm/link", post(linking::accept_invitation))
        .route("/live", get(live::events))
        .route("/static/live.js", get(assets::script))
        .route("/static/careline.css", get(assets::style))
        .route("/static/compose.js", get(assets::compose))
        .route("/session/alive", get(session_alive))
        .route("/health", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            error::shown,
        ))
        .layer(axum::middleware::map_response_with_state(web.clone(), hsts))
        .layer(axum::middleware::from_fn(recorded))
        .with_state(web)
}

/// Served over HTTPS, every answer tells the browser to keep to HTTPS for
/// a year (HSTS).
async fn hsts(State(web): State<Web>, mut response: Response) -> Response {
    if web.inner.base_url.starts_with("https://") {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Counts and times every request by route (its pattern, `/threads/{id}`:
/// never an id) and status, in the process's metrics.
async fn recorded(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = request.method().as_str().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let metrics = service_kit::metrics::global();
    let labels = [("method", method.as_str()), ("route", route.as_str())];
    metrics.observe(
        "careline_web_request_duration_seconds",
        "Time to answer a web request (to its headers), by route.",
        &labels,
        started.elapsed(),
    );
    metrics.count(
        "careline_web_requests_total",
        "Web requests answered, by route and status.",
        &[labels[0], labels[1], ("status", status.as_str())],
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_path_of_this_site_is_where_a_sign_in_goes_next() {
        for ok in ["/messages", "/threads/0190?x=1#reply", "/join/ABC"] {
            assert_eq!(local(ok), ok);
        }
        for away in [
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "https://evil.example",
            "evil.example",
            " /evil",
            "/ /evil.example",
            "",
        ] {
            assert_eq!(local(away), "/", "{away:?}");
        }
    }
}
