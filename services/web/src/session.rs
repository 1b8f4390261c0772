//! Server-side sessions: the cookie holds only a random id; who is signed
//! in, their CSRF token and when the session ends live here, so signing
//! out (or an account closed) ends it at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use service_kit::Caller;

/// The session cookie's name.
pub const COOKIE: &str = "careline_session";
/// The cookie of a browser not yet signed in: the CSRF token of the
/// sign-in form (checked against the form's copy).
pub const PRE_COOKIE: &str = "careline_pre";

/// 32 random bytes from the operating system, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // Without the OS's randomness no session can be made safely.
    #[allow(clippy::expect_used)]
    getrandom::getrandom(&mut bytes).expect("the operating system's random numbers");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// One signed-in person.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub caller: Caller,
    /// Sent with every form, checked on every POST.
    pub csrf: String,
    /// The log position of this session's last change: every read waits
    /// for it (read-your-writes, without positions in URLs).
    pub position: u64,
    /// The patient a carer acts for now (chosen among those whose consent
    /// they hold; the services check the consent on every call).
    pub acting_for: Option<Acting>,
    /// The conversation whose page the inbox last answered this session:
    /// the one it is told presence of.
    pub opened: Option<String>,
    /// The roles this sign-in may work in: the person's own first, then
    /// the staff roles granted to them when they signed in (a
    /// professional who is also an admin). `caller.role` is one of them.
    pub roles: Vec<service_kit::Role>,
    started: Instant,
    last_seen: Instant,
}

/// The patient a carer's pages are about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acting {
    pub patient_id: uuid::Uuid,
    pub name: String,
}

/// Every session of this process.
#[derive(Debug)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    idle: Duration,
    absolute: Duration,
}

impl Sessions {
    pub fn new(idle: Duration, absolute: Duration) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            idle,
            absolute,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Signs `caller` in: a new session (never one an attacker could have
    /// set beforehand).
    pub fn start(&self, caller: Caller) -> Session {
        let roles = vec![caller.role];
        self.start_with_roles(caller, roles)
    }

    /// As [`Self::start`], for a person who may also work in `roles`.
    pub fn start_with_roles(&self, caller: Caller, mut roles: Vec<service_kit::Role>) -> Session {
        if !roles.contains(&caller.role) {
            roles.insert(0, caller.role);
        }
        let now = Instant::now();
        let session = Session {
            id: random_token(),
            caller,
            csrf: random_token(),
            position: 0,
            acting_for: None,
            opened: None,
            roles,
            started: now,
            last_seen: now,
        };
        let mut sessions = self.lock();
        // Ended sessions go as new ones come.
        sessions.retain(|_, s| self.alive(s, now));
        sessions.insert(session.id.clone(), session.clone());
        session
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) < self.idle && now.duration_since(s.started) < self.absolute
    }

    /// The session `id`, if it has not ended, without keeping it alive.
    pub fn peek(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        self.lock().get(id).filter(|s| self.alive(s, now)).cloned()
    }

    /// The session `id`, if it has not ended; using it keeps it alive.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let alive = sessions.get(id).is_some_and(|s| self.alive(s, now));
        if !alive {
            sessions.remove(id);
            return None;
        }
        let session = sessions.get_mut(id)?;
        session.last_seen = now;
        Some(session.clone())
    }

    /// Whether session `id` has not ended, without keeping it alive (a
    /// page left open is not someone using it).
    pub fn alive_now(&self, id: &str) -> bool {
        let now = Instant::now();
        self.lock().get(id).is_some_and(|s| self.alive(s, now))
    }

    /// Records a change the session made, at `position`.
    pub fn advance(&self, id: &str, position: u64) {
        if let Some(s) = self.lock().get_mut(id) {
            s.position = s.position.max(position);
        }
    }

    /// Session `id`'s page now shows conversation `thread`.
    pub fn opened(&self, id: &str, thread: &str) {
        if let Some(s) = self.lock().get_mut(id) {
            s.opened = Some(thread.to_string());
        }
    }

    /// The patient the carer of session `id` acts for from now (none: they
    /// choose again).
    pub fn act_for(&self, id: &str, acting: Option<Acting>) {
        if let Some(s) = self.lock().get_mut(id) {
            s.acting_for = acting;
        }
    }

    /// Session `id` works as `role` from now, when it is one of its
    /// roles (what it chose before in another role is forgotten); whether
    /// it switched.
    pub fn work_as(&self, id: &str, role: service_kit::Role) -> bool {
        match self.lock().get_mut(id) {
            Some(s) if s.roles.contains(&role) => {
                s.caller.role = role;
                s.acting_for = None;
                s.opened = None;
                true
            }
            _ => false,
        }
    }

    /// Ends the session `id`.
    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Ends every session of `person` (their account was closed).
    pub fn end_person(&self, person: uuid::Uuid) {
        self.lock().retain(|_, s| s.caller.person_id != person);
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax (a link from an email
/// still arrives signed in), Secure when served over TLS; `max_age` zero
/// removes it.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<Duration>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use service_kit::Role;

    fn pat() -> Caller {
        Caller {
            person_id: uuid::Uuid::now_v7(),
            role: Role::Patient,
            name: "Pat Jones".into(),
        }
    }

    #[test]
    fn a_session_ends_when_idle_when_too_old_and_when_its_person_is_signed_out() {
        let sessions = Sessions::new(Duration::from_millis(200), Duration::from_secs(60));
        let s = sessions.start(pat());
        assert!(sessions.get(&s.id).is_some());
        assert!(sessions.get("forged").is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(sessions.get(&s.id).is_none(), "idle too long");

        let old = Sessions::new(Duration::from_secs(60), Duration::from_millis(100));
        let s = old.start(pat());
        std::thread::sleep(Duration::from_millis(150));
        assert!(old.get(&s.id).is_none(), "past the absolute limit");

        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(60));
        let who = pat();
        let (a, b) = (sessions.start(who.clone()), sessions.start(who.clone()));
        let other = sessions.start(pat());
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, b.csrf);
        sessions.end_person(who.person_id);
        assert!(sessions.get(&a.id).is_none() && sessions.get(&b.id).is_none());
        assert!(sessions.get(&other.id).is_some());
        sessions.end(&other.id);
        assert!(sessions.get(&other.id).is_none());
    }

    #[test]
    fn cookies_are_read_among_others_and_set_http_only() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "a=1; careline_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        let set = set_cookie(COOKIE, "abc", true, None);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Secure"));
    }
}
