//! Why a page was not served as asked, and the one place that turns it
//! into the page that says so: a refusal in the service's words, an
//! outage as "not reachable just now" with a reference in this service's
//! log, a closed account or a token no longer good as the end of the
//! session.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use service_kit::reason;
use tonic::{Code, Status};

use crate::session::{self, COOKIE, Session, cookie};
use crate::{Web, pages};

impl Web {
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
pub(crate) async fn shown(
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
}
