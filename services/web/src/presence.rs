//! Who is writing a reply where, right now: presence, not history. It lives
//! in the web service's own state (never an event on the log): in this
//! process, and with sessions in PostgreSQL also told to every other
//! instance through PostgreSQL's LISTEN/NOTIFY ([`relay`]), so that two
//! nurses on different instances see each other. A professional's page
//! says "typing" every few seconds while they write, and everyone else on
//! that conversation's page is told within the second, through `/live`. It
//! is told only to sessions whose own page of that conversation the inbox
//! answered (so only to those who may see it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use uuid::Uuid;

/// How long one "typing" counts.
const FRESH: Duration = Duration::from_secs(6);

#[derive(Debug)]
struct Typist {
    person: Uuid,
    name: String,
    at: Instant,
}

/// Who is typing in which conversation.
#[derive(Debug)]
pub struct Presence {
    typing: Mutex<HashMap<String, Vec<Typist>>>,
    changed: broadcast::Sender<String>,
}

impl Default for Presence {
    fn default() -> Self {
        Self {
            typing: Mutex::new(HashMap::new()),
            changed: broadcast::channel(256).0,
        }
    }
}

impl Presence {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Typist>>> {
        self.typing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `person` is writing a reply in `thread` now (in this process; the
    /// caller tells the other instances, [`announcement`]).
    pub fn typing(&self, thread: &str, person: Uuid, name: &str) {
        let now = Instant::now();
        {
            let mut all = self.lock();
            all.retain(|_, typists| {
                typists.retain(|t| now.duration_since(t.at) < FRESH);
                !typists.is_empty()
            });
            let typists = all.entry(thread.to_string()).or_default();
            typists.retain(|t| t.person != person);
            typists.push(Typist {
                person,
                name: name.to_string(),
                at: now,
            });
        }
        // Nobody listening is no failure.
        let _ = self.changed.send(thread.to_string());
    }

    /// Who, other than `me`, is writing in `thread` now.
    pub fn others(&self, thread: &str, me: Uuid) -> Vec<String> {
        let now = Instant::now();
        self.lock()
            .get(thread)
            .map(|typists| {
                typists
                    .iter()
                    .filter(|t| t.person != me && now.duration_since(t.at) < FRESH)
                    .map(|t| t.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The threads whose presence changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changed.subscribe()
    }
}

/// The channel every instance listens on.
pub const CHANNEL: &str = "careline_presence";

#[derive(serde::Deserialize)]
struct Announced {
    thread: String,
    person: String,
    name: String,
}

/// What tells the other instances that `person` is writing in `thread`.
pub fn announcement(thread: &str, person: Uuid, name: &str) -> String {
    serde_json::json!({ "thread": thread, "person": person.to_string(), "name": name }).to_string()
}

/// Tells `presence` what every instance announces on the sessions'
/// database `url`, for as long as the process runs (listening again a
/// second after the connection is lost).
pub async fn relay(presence: impl std::ops::Deref<Target = Presence>, url: String) {
    loop {
        match careline_pg::listen(&url, CHANNEL).await {
            Ok(mut heard) => {
                while let Some(payload) = heard.recv().await {
                    if let Ok(a) = serde_json::from_str::<Announced>(&payload)
                        && let Ok(person) = Uuid::parse_str(&a.person)
                    {
                        presence.typing(&a.thread, person, &a.name);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "presence is not shared with other instances"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn others_typing_are_named_and_one_is_not_told_of_oneself() {
        let presence = Presence::default();
        let (ned, nina) = (Uuid::now_v7(), Uuid::now_v7());
        let mut told = presence.subscribe();
        presence.typing("t1", ned, "Ned Brown");
        assert_eq!(told.try_recv().unwrap(), "t1");
        assert_eq!(presence.others("t1", nina), vec!["Ned Brown".to_string()]);
        assert!(presence.others("t1", ned).is_empty());
        assert!(presence.others("t2", nina).is_empty());
        // Typing again is one entry, not two.
        presence.typing("t1", ned, "Ned Brown");
        assert_eq!(presence.others("t1", nina).len(), 1);
    }
}
