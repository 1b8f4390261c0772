//! Careline's web front end: a back end for the browser. It holds the
//! session and calls the services over gRPC as the signed-in person (with
//! the tokens the command service issued at sign-in: this service mints
//! none); it reads no read model and decides no rule: the services answer,
//! the pages show it.
//!
//! Here: the shared state ([`Web`]), the extractors (`SignedIn`, `Posted`),
//! what a failed call shows, the router and the service. The rooms: sign-in
//! (`signin.rs`, `oidc.rs`, `linking.rs`), conversations (`messages.rs`,
//! `staff.rs`, `teams.rs`), a person's record (`record.rs`, `trail.rs`),
//! admin and privacy pages, live updates and presence; markup in `pages/`.

mod admin;
mod client;
pub mod config;
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
use service_kit::reason;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};

pub use config::{Config, DemoPerson, read_demo_people};
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

    /// What a refused or failed call means to the person (of `session`,
    /// when the browser has one).
    async fn failed(&self, session: Option<&Session>, status: &Status) -> Response {
        match (status.code(), session) {
            (Code::PermissionDenied, Some(session))
                if reason::is(status, reason::ACCOUNT_CLOSED) =>
            {
                // Closed: every session of theirs ends now.
                if let Err(e) = self
                    .inner
                    .sessions
                    .end_person(session.caller.person_id)
                    .await
                {
                    return self.store_down(&e);
                }
                return Redirect::to("/sign-in?closed=1").into_response();
            }
            (Code::Unauthenticated, Some(session)) => {
                if let Err(e) = self.inner.sessions.end(&session.id).await {
                    return self.store_down(&e);
                }
                return Redirect::to("/sign-in").into_response();
            }
            _ => {}
        }
        let shown = shown_for(status);
        let body = pages::problem_page(shown.heading, &shown.detail);
        (shown.code, self.page(shown.heading, session, body)).into_response()
    }
}

/// Why a page was not served as asked. A handler returns it (`?` on a
/// service's answer: `Result<Response, AppError>`); [`shown`], one layer
/// for every page, turns it into the page that says so. A refusal about
/// what the person typed is not one: the handler shows its form again,
/// with what they typed and what to fix ([`Web::form_page`]).
#[derive(Debug)]
pub(crate) enum AppError {
    /// A service refused or failed a call made as the signed-in person.
    Call(Status),
    /// The sessions' store did not answer.
    Store(session::StoreError),
}

impl From<Status> for AppError {
    fn from(status: Status) -> Self {
        Self::Call(status)
    }
}

impl From<session::StoreError> for AppError {
    fn from(e: session::StoreError) -> Self {
        Self::Store(e)
    }
}

/// What a page handler returns.
pub(crate) type Page = Result<Response, AppError>;

/// An [`AppError`] on its way to [`shown`], in the response's extensions.
#[derive(Clone)]
struct Unshown(Arc<std::sync::Mutex<Option<AppError>>>);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response
            .extensions_mut()
            .insert(Unshown(Arc::new(std::sync::Mutex::new(Some(self)))));
        response
    }
}

/// The one place an [`AppError`] becomes a page: a refusal in the
/// service's words, a failure as "not reachable just now", a closed
/// account or a token no longer good as the end of the session.
async fn shown(
    State(web): State<Web>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let id = cookie(request.headers(), COOKIE);
    let response = next.run(request).await;
    let Some(error) = response
        .extensions()
        .get::<Unshown>()
        .and_then(|u| u.0.lock().unwrap_or_else(|p| p.into_inner()).take())
    else {
        return response;
    };
    match error {
        AppError::Store(e) => web.store_down(&e),
        AppError::Call(status) => {
            let session = match id {
                Some(id) => match web.inner.sessions.peek(&id).await {
                    Ok(session) => session,
                    Err(e) => return web.store_down(&e),
                },
                None => None,
            };
            web.failed(session.as_ref(), &status).await
        }
    }
}

/// What a page says of a failed call.
#[derive(Debug, PartialEq)]
pub(crate) struct Shown {
    pub code: StatusCode,
    pub heading: &'static str,
    pub detail: String,
}

/// A refusal the person can act on is said in the service's words (they
/// are written for people); anything else (cancelled, unavailable, out of
/// time, internal, unknown) is "not reachable just now" with a reference
/// that is in this service's log beside the error, never the error's own
/// text.
pub(crate) fn shown_for(status: &Status) -> Shown {
    let said = |code, heading| Shown {
        code,
        heading,
        detail: status.message().to_string(),
    };
    match status.code() {
        Code::NotFound => Shown {
            code: StatusCode::NOT_FOUND,
            heading: "We could not find that",
            detail: "It may not exist, or it is not shared with you.".into(),
        },
        // A carer whose consent ended: not something he tried to do.
        Code::PermissionDenied if reason::is(status, reason::ACCESS_ENDED) => {
            said(StatusCode::FORBIDDEN, "Your access has ended")
        }
        Code::PermissionDenied | Code::Unauthenticated => {
            said(StatusCode::FORBIDDEN, "You cannot do that")
        }
        Code::ResourceExhausted => said(StatusCode::TOO_MANY_REQUESTS, "Too many tries just now"),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            said(StatusCode::UNPROCESSABLE_ENTITY, "That did not work")
        }
        Code::AlreadyExists | Code::Aborted => said(StatusCode::CONFLICT, "That did not work"),
        Code::Ok
        | Code::Cancelled
        | Code::Unknown
        | Code::DeadlineExceeded
        | Code::Unimplemented
        | Code::Internal
        | Code::Unavailable
        | Code::DataLoss => {
            let reference = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
            tracing::warn!(
                %reference,
                code = ?status.code(),
                error = %status.message(),
                "a call to a service failed; the page says it is not reachable"
            );
            Shown {
                code: StatusCode::SERVICE_UNAVAILABLE,
                heading: "Careline is not reachable just now",
                detail: format!(
                    "Please try again in a minute. If you sent something, it may have been sent: check before sending it again. (Reference {reference}, if you tell the help desk.)"
                ),
            }
        }
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
        ["admin", "people", _] | ["admin", "people", _, "close"] => "/admin/people".into(),
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
/// backslash, or a second slash at the start, sends the person to their
/// messages instead.
fn local(next: &str) -> &str {
    let plain = !next
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    if plain && next.starts_with('/') && !next.starts_with("//") {
        next
    } else {
        "/messages"
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
        .route("/", get(|| async { Redirect::to("/messages") }))
        .route("/sign-in", get(signin::sign_in_page))
        .route("/sign-in/demo", post(signin::sign_in_demo))
        .route("/sign-in/oidc", get(signin::sign_in_oidc))
        .route("/sign-in/callback", get(signin::sign_in_callback))
        .route("/sign-out", post(signin::sign_out))
        .route("/session/role", post(signin::work_as))
        .route("/messages", get(messages::messages))
        .route(
            "/messages/new",
            get(messages::new_message_page).post(messages::new_message),
        )
        .route("/threads/{id}", get(messages::thread))
        .route("/threads/{id}/reply", post(messages::reply))
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
            "/admin/teams/{id}",
            get(admin::team).post(admin::change_team),
        )
        .route("/admin/people", get(admin::people).post(admin::register))
        .route("/admin/people/{id}", post(admin::change_person))
        .route("/admin/people/{id}/close", get(admin::close_page))
        .route("/audit", get(privacy::trails))
        .route("/audit/verify", get(privacy::verify))
        .route("/audit/export", get(privacy::export))
        .route("/record/trail/download", get(trail::trail_download))
        .route("/teams", get(staff::teams))
        .route("/teams/{id}/inbox", get(staff::team_inbox))
        .route("/teams/{id}/not-read", get(staff::not_read))
        .route("/teams/{id}/start", get(staff::start))
        .route("/threads/{id}/move", post(staff::move_thread))
        .route("/threads/{id}/note", post(staff::note))
        .route("/threads/{id}/typing", post(staff::typing))
        .route("/threads/{id}/add", get(staff::add_page).post(staff::add))
        .route("/static/shortcuts.js", get(live::shortcuts))
        .route("/teams/{id}/message", get(teams::message))
        .route("/join", get(linking::join_code))
        .route("/join/{code}", get(teams::join_page).post(teams::join))
        .route("/join/{code}/sign-up", post(linking::sign_up))
        .route("/email/confirm/link", post(linking::accept_invitation))
        .route("/live", get(live::events))
        .route("/static/live.js", get(live::script))
        .route("/static/careline.css", get(live::style))
        .route("/static/compose.js", get(live::compose))
        .route("/session/alive", get(session_alive))
        .route("/health", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn_with_state(web.clone(), shown))
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

/// The web service as a process.
#[derive(Debug)]
pub struct Application {
    listener: tokio::net::TcpListener,
    web: Web,
    metrics: Option<std::net::SocketAddr>,
    /// The sessions' database, where presence is shared too.
    shared: Option<String>,
    /// Ready while every service the pages ask can answer.
    readiness: service_kit::metrics::Endpoint,
}

/// Ready while `channel`'s service says, by gRPC health, that it serves
/// `service` (it says not when its own NATS or PostgreSQL is gone).
fn serving(
    name: &'static str,
    channel: Channel,
    service: &'static str,
) -> service_kit::metrics::Check {
    service_kit::metrics::Check::new(name, move || {
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        async move {
            let answer = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: service.to_string(),
                })
                .await
                .map_err(|e| format!("unreachable: {}", e.message()))?;
            match answer.into_inner().status() {
                tonic_health::pb::health_check_response::ServingStatus::Serving => Ok(()),
                other => Err(other.as_str_name().to_lowercase()),
            }
        }
    })
}

impl Application {
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

impl service_kit::Service for Application {
    type Config = Config;

    fn config_from_env() -> anyhow::Result<Config> {
        Config::from_settings(&careline_settings::Settings::from_env())
    }

    async fn build(config: Config) -> anyhow::Result<Self> {
        let connect = |url: String| async move {
            service_kit::server::connect(&url)
                .await
                .map_err(|e| anyhow::anyhow!("{url}: {e}"))
        };
        let backends = Backends {
            command: connect(config.command_url.clone()).await?,
            inbox: connect(config.inbox_url.clone()).await?,
            audit: connect(config.audit_url.clone()).await?,
            notify: connect(config.notify_url.clone()).await?,
        };
        let mut checks = vec![
            serving(
                "command service",
                backends.command.clone(),
                "careline.command.v1.CommandService",
            ),
            serving(
                "inbox service",
                backends.inbox.clone(),
                "careline.inbox.v1.InboxService",
            ),
            serving(
                "audit service",
                backends.audit.clone(),
                "careline.audit.v1.AuditService",
            ),
            serving(
                "notification service",
                backends.notify.clone(),
                "careline.notify.v1.NotificationService",
            ),
        ];
        let demo = match &config.demo_people {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("CARELINE_WEB_DEMO_PEOPLE {}: {e}", path.display())
                })?;
                Some(read_demo_people(&text)?)
            }
            None => None,
        };
        let oidc = match &config.oidc {
            Some(settings) => Some(oidc::Oidc::discover(settings.clone()).await.map_err(|e| {
                anyhow::anyhow!("CARELINE_WEB_OIDC_ISSUER {}: {e}", settings.issuer)
            })?),
            None => None,
        };
        let sessions = match &config.sessions_database {
            Some(url) => {
                let pool = careline_pg::pool(url, 8, "careline_web")
                    .map_err(|e| anyhow::anyhow!("CARELINE_WEB_DATABASE_URL: {e}"))?;
                let sessions = Sessions::in_database(pool.clone(), config.idle, config.absolute);
                checks.push(careline_pg::answers("sessions database", pool));
                sessions
                    .prepare()
                    .await
                    .map_err(|e| anyhow::anyhow!("CARELINE_WEB_DATABASE_URL: {e}"))?;
                sessions
            }
            None => Sessions::new(config.idle, config.absolute),
        };
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|e| anyhow::anyhow!("CARELINE_WEB_ADDR {}: {e}", config.addr))?;
        Ok(Self {
            listener,
            web: Web::with_sessions(backends, &config, demo, oidc, sessions),
            metrics: config.metrics,
            shared: config.sessions_database.clone(),
            readiness: service_kit::metrics::Endpoint::new(vec![], checks),
        })
    }

    /// Requests by route and status and their latency; ready while every
    /// service the pages ask serves (by its gRPC health, which follows its
    /// own readiness) and the sessions' database answers.
    fn metrics(&self) -> Option<(std::net::SocketAddr, service_kit::metrics::Endpoint)> {
        Some((self.metrics?, self.readiness.clone()))
    }

    async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        tracing::info!(addr = %self.listener.local_addr()?, demo = self.web.demo(), "web pages served");
        if let Some(url) = self.shared.clone() {
            tokio::spawn(presence::relay(self.web.inner.presence.clone(), url));
        }
        let web = self.web.clone();
        let app = router(self.web).into_make_service_with_connect_info::<std::net::SocketAddr>();
        // Told to stop: no new connections, and every live stream ends
        // now (a browser's reconnects to another instance), so the calls
        // in flight are all that is waited for.
        let shutdown = async move {
            shutdown.await;
            web.inner.stopping.send_replace(true);
        };
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_never_sees_an_internal_errors_text() {
        let all = [
            Code::Ok,
            Code::Cancelled,
            Code::Unknown,
            Code::InvalidArgument,
            Code::DeadlineExceeded,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::ResourceExhausted,
            Code::FailedPrecondition,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unimplemented,
            Code::Internal,
            Code::Unavailable,
            Code::DataLoss,
            Code::Unauthenticated,
        ];
        let words = "operation was canceled: h2 protocol error";
        for code in all {
            let shown = shown_for(&Status::new(code, words));
            let refusal = matches!(
                code,
                Code::InvalidArgument
                    | Code::FailedPrecondition
                    | Code::OutOfRange
                    | Code::AlreadyExists
                    | Code::Aborted
                    | Code::PermissionDenied
                    | Code::Unauthenticated
                    | Code::ResourceExhausted
            );
            if refusal {
                assert_eq!(shown.detail, words, "{code:?}: a refusal is said as given");
                assert!(shown.code.is_client_error(), "{code:?}");
            } else {
                assert!(!shown.detail.contains("canceled"), "{code:?}: {shown:?}");
                assert!(!shown.detail.contains("h2"), "{code:?}: {shown:?}");
            }
            if !refusal && code != Code::NotFound {
                assert_eq!(shown.code, StatusCode::SERVICE_UNAVAILABLE, "{code:?}");
                assert_eq!(shown.heading, "Careline is not reachable just now");
                assert!(shown.detail.contains("Reference "), "{shown:?}");
            }
        }
    }

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
            assert_eq!(local(away), "/messages", "{away:?}");
        }
    }
}
