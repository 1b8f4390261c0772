//! Live pages: `/live` is a stream of server-sent events telling the
//! signed-in person which of their conversations changed (ids only). It is
//! the inbox's `Watch` as that person, so who is told of what is the
//! inbox's rule, as for every read; the page then reads what changed as
//! them (an audited read, of what it shows). The stream ends with the
//! session.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use proto::inbox as inbox_pb;
use tokio::sync::{broadcast, mpsc};

use crate::Web;
use crate::session::{COOKIE, cookie};

/// How often an open stream checks that its session has not ended.
const SESSION_CHECK: Duration = Duration::from_secs(15);

/// A change as the page script reads it.
fn change_event(change: &inbox_pb::Change) -> Event {
    let threads: Vec<String> = change
        .thread_ids
        .iter()
        // Ids are UUIDs; anything else is not passed on.
        .filter(|id| id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .map(|id| format!("\"{id}\""))
        .collect();
    Event::default().event("change").data(format!(
        "{{\"position\":{},\"threads\":[{}]}}",
        change.position,
        threads.join(",")
    ))
}

/// Who else is writing in `thread`, for session `id` if its page shows
/// that conversation (as the inbox answered it).
async fn presence_event(web: &Web, id: &str, thread: &str) -> Option<Event> {
    let session = web.inner.sessions.peek(id).await.ok()??;
    if session.opened.as_deref() != Some(thread) {
        return None;
    }
    let names = web.inner.presence.others(thread, session.caller.person_id);
    if names.is_empty() {
        return None;
    }
    let data = serde_json::json!({ "thread": thread, "names": names });
    Some(Event::default().event("presence").data(data.to_string()))
}

pub(crate) async fn events(State(web): State<Web>, headers: HeaderMap) -> Response {
    let Some(id) = cookie(&headers, COOKIE) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    // Watching is not using the pages: it does not keep the session alive.
    let session = match web.inner.sessions.peek(&id).await {
        Ok(Some(session)) => session,
        Ok(None) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let watched = async {
        web.inbox(&session)?
            .watch(inbox_pb::WatchRequest { max_seconds: 0 })
            .await
    };
    let mut changes = match watched.await {
        Ok(r) => r.into_inner(),
        Err(e) if e.code() == tonic::Code::Unauthenticated => {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        Err(e) if e.code() == tonic::Code::PermissionDenied => {
            return StatusCode::FORBIDDEN.into_response();
        }
        // Too many live pages of this person at once.
        Err(e) if e.code() == tonic::Code::ResourceExhausted => {
            return StatusCode::TOO_MANY_REQUESTS.into_response();
        }
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let (tx, mut rx) = mpsc::channel::<Result<Event, Infallible>>(8);
    let sessions = web.clone();
    let mut present = web.inner.presence.subscribe();
    let mut stopping = web.inner.stopping.subscribe();
    if *stopping.borrow_and_update() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    tokio::spawn(async move {
        let mut check = tokio::time::interval(SESSION_CHECK);
        loop {
            tokio::select! {
                thread = present.recv() => match thread {
                    Ok(thread) => {
                        if let Some(event) = presence_event(&sessions, &session.id, &thread).await
                            && tx.send(Ok(event)).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                change = changes.message() => match change {
                    Ok(Some(change)) => {
                        if tx.send(Ok(change_event(&change))).await.is_err() {
                            return;
                        }
                    }
                    // The watch ended (it lasts a while): the browser
                    // reconnects, and reads the page again.
                    _ => return,
                },
                _ = check.tick() => {
                    // Ended, or no longer known to be alive: the stream ends
                    // (the browser reconnects and is asked to sign in).
                    if !sessions.inner.sessions.alive_now(&session.id).await.unwrap_or(false) {
                        return;
                    }
                }
                () = tx.closed() => return,
                // The service stops: the browser reconnects elsewhere.
                _ = stopping.changed() => return,
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
