//! Server-side sessions: the cookie holds only a random id; who is signed
//! in, their CSRF token and when the session ends live here, so signing
//! out (or an account closed) ends it at once.
//!
//! Kept in this process ([`Sessions::new`]), or in PostgreSQL
//! ([`Sessions::in_database`], `CARELINE_WEB_DATABASE_URL`) so that every
//! instance of the web service behind one address knows every session:
//! signing out on one ends it on all. The database holds a SHA-256 of each
//! id, never the id itself, and its own clock decides idle and absolute
//! ends, so instances never disagree about them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use service_kit::{Caller, Role};
use sha2::Digest;
use tokio_postgres::Row;

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
    pub roles: Vec<Role>,
    /// The command service's token for each role this sign-in may work in.
    pub tokens: Tokens,
}

/// The tokens of a sign-in, by role: what every call of the session
/// carries. Never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tokens(Vec<(Role, String)>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let roles: Vec<&str> = self.0.iter().map(|(r, _)| r.as_str()).collect();
        write!(f, "Tokens({roles:?})")
    }
}

impl Tokens {
    pub fn new(tokens: Vec<(Role, String)>) -> Self {
        Self(tokens)
    }

    /// The token of calls in `role`.
    pub fn of(&self, role: Role) -> Option<&str> {
        self.0
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, t)| t.as_str())
    }

    /// The roles there is a token for.
    pub fn roles(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().map(|(r, _)| *r)
    }

    /// As stored: `role token` lines.
    fn text(&self) -> String {
        self.0
            .iter()
            .map(|(r, t)| format!("{} {t}", r.as_str()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn from_text(text: &str) -> Result<Self, StoreError> {
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|line| {
                let (role, token) = line
                    .split_once(' ')
                    .ok_or_else(|| StoreError("a session's tokens are unreadable".into()))?;
                Ok((role.parse::<Role>().map_err(StoreError)?, token.to_string()))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Sealed for the database under session `id`'s key.
    fn seal(&self, id: &str) -> Vec<u8> {
        let mut data = self.text().into_bytes();
        // A 32-byte key and a fresh buffer: sealing cannot fail.
        let _ = key_of(id).seal_in_place_append_tag(
            ring::aead::Nonce::assume_unique_for_key([0; 12]),
            ring::aead::Aad::empty(),
            &mut data,
        );
        data
    }

    /// Opened from the database with session `id`'s key.
    fn open(id: &str, mut sealed: Vec<u8>) -> Result<Self, StoreError> {
        let opened = key_of(id)
            .open_in_place(
                ring::aead::Nonce::assume_unique_for_key([0; 12]),
                ring::aead::Aad::empty(),
                &mut sealed,
            )
            .map_err(|_| StoreError("a session's tokens do not open with its id".into()))?;
        let text = std::str::from_utf8(opened)
            .map_err(|_| StoreError("a session's tokens are unreadable".into()))?;
        Self::from_text(text)
    }
}

/// The key that seals session `id`'s tokens: one key per session, each
/// sealing once (so a fixed nonce never repeats under a key).
fn key_of(id: &str) -> ring::aead::LessSafeKey {
    let mut digest = sha2::Sha256::new();
    digest.update(b"careline-web session tokens\0");
    digest.update(id.as_bytes());
    let key: [u8; 32] = digest.finalize().into();
    ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &key)
            .unwrap_or_else(|_| unreachable!("a ChaCha20-Poly1305 key is 32 bytes")),
    )
}

/// The patient a carer's pages are about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acting {
    pub patient_id: uuid::Uuid,
    pub name: String,
}

/// The session store did not answer: nobody's session can be read or
/// changed until it does.
#[derive(Debug, thiserror::Error)]
#[error("the sessions' database: {0}")]
pub struct StoreError(String);

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self(e.to_string())
    }
}

/// A session in this process, and when it started and was last used.
#[derive(Debug)]
struct Kept {
    session: Session,
    started: Instant,
    last_seen: Instant,
}

#[derive(Debug)]
enum Store {
    Memory(Mutex<HashMap<String, Kept>>),
    Database(deadpool_postgres::Pool),
}

/// Every session, and what browsers not signed in yet carry through a
/// sign-in (by their pre-sign-in cookie).
#[derive(Debug)]
pub struct Sessions {
    store: Store,
    /// In this process only: the sign-ins in flight, by (browser, kind),
    /// with when they end.
    sign_ins: Mutex<HashMap<(String, String), (String, Instant)>>,
    idle: Duration,
    absolute: Duration,
    sign_ins_max: usize,
}

/// Sign-ins in flight at most, by default (see [`Sessions::with_sign_in_cap`]).
pub const SIGN_INS_MAX: usize = 10_000;

fn full() -> StoreError {
    StoreError("too many sign-ins are in progress just now".into())
}

/// The table of sessions shared by every instance (made, if missing, by
/// [`Sessions::prepare`]; one instance at a time).
const SCHEMA: &str = "SELECT pg_advisory_xact_lock(hashtext('careline_web.sessions')); \
     CREATE SCHEMA IF NOT EXISTS careline_web; \
     CREATE TABLE IF NOT EXISTS careline_web.sessions ( \
       id_hash bytea PRIMARY KEY, \
       person_id uuid NOT NULL, \
       name text NOT NULL, \
       role text NOT NULL, \
       roles text[] NOT NULL, \
       csrf text NOT NULL, \
       position bigint NOT NULL DEFAULT 0, \
       acting_patient uuid, \
       acting_name text, \
       opened text, \
       started timestamptz NOT NULL DEFAULT now(), \
       last_seen timestamptz NOT NULL DEFAULT now()); \
     ALTER TABLE careline_web.sessions ADD COLUMN IF NOT EXISTS tokens bytea; \
     CREATE INDEX IF NOT EXISTS sessions_person ON careline_web.sessions (person_id); \
     CREATE INDEX IF NOT EXISTS sessions_last_seen ON careline_web.sessions (last_seen); \
     CREATE TABLE IF NOT EXISTS careline_web.sign_ins ( \
       browser_hash bytea NOT NULL, \
       kind text NOT NULL, \
       value text NOT NULL, \
       until timestamptz NOT NULL, \
       PRIMARY KEY (browser_hash, kind));";
/// `$2`, `$3`: the idle and absolute limits in seconds.
macro_rules! alive {
    () => {
        "last_seen > now() - make_interval(secs => $2) AND started > now() - make_interval(secs => $3)"
    };
}
const INSERT: &str = "INSERT INTO careline_web.sessions \
     (id_hash, person_id, name, role, roles, csrf, tokens) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const SWEEP: &str = "DELETE FROM careline_web.sessions WHERE NOT (last_seen > now() - make_interval(secs => $1) \
     AND started > now() - make_interval(secs => $2))";
const GET: &str = concat!(
    "UPDATE careline_web.sessions SET last_seen = now() WHERE id_hash = $1 AND ",
    alive!(),
    " RETURNING person_id, name, role, roles, csrf, position, acting_patient, acting_name, opened, tokens"
);
const PEEK: &str = concat!(
    "SELECT person_id, name, role, roles, csrf, position, acting_patient, acting_name, opened, tokens \
     FROM careline_web.sessions WHERE id_hash = $1 AND ",
    alive!()
);
const ADVANCE: &str =
    "UPDATE careline_web.sessions SET position = greatest(position, $2) WHERE id_hash = $1";
const OPENED: &str = "UPDATE careline_web.sessions SET opened = $2 WHERE id_hash = $1";
const ACT_FOR: &str =
    "UPDATE careline_web.sessions SET acting_patient = $2, acting_name = $3 WHERE id_hash = $1";
const WORK_AS: &str = "UPDATE careline_web.sessions SET role = $2, acting_patient = NULL, \
     acting_name = NULL, opened = NULL WHERE id_hash = $1 AND $2 = ANY(roles)";
const END: &str = "DELETE FROM careline_web.sessions WHERE id_hash = $1";
const END_PERSON: &str = "DELETE FROM careline_web.sessions WHERE person_id = $1";
/// Keeps a value unless `$5` sign-ins are in flight already (a browser
/// replacing its own is always kept): anonymous requests cannot fill the
/// table. No row: refused.
const KEEP: &str = "INSERT INTO careline_web.sign_ins (browser_hash, kind, value, until) \
     SELECT $1, $2, $3, now() + make_interval(secs => $4) \
     WHERE (SELECT count(*) FROM careline_web.sign_ins) < $5 \
        OR EXISTS (SELECT 1 FROM careline_web.sign_ins WHERE browser_hash = $1 AND kind = $2) \
     ON CONFLICT (browser_hash, kind) DO UPDATE SET value = excluded.value, until = excluded.until";
const SWEEP_SIGN_INS: &str = "DELETE FROM careline_web.sign_ins WHERE until <= now()";
const TAKE: &str = "DELETE FROM careline_web.sign_ins WHERE browser_hash = $1 AND kind = $2 \
     RETURNING value, until > now()";
const LOOK: &str = "SELECT value FROM careline_web.sign_ins WHERE browser_hash = $1 AND kind = $2 AND until > now()";
const FORGET: &str = "DELETE FROM careline_web.sign_ins WHERE browser_hash = $1 AND kind = $2";

/// What the database keeps of session `id`: its SHA-256 (a copy of the
/// table signs no one in).
fn hash(id: &str) -> Vec<u8> {
    sha2::Sha256::digest(id.as_bytes()).to_vec()
}

/// The key that seals what a browser keeps as `kind` before it is signed
/// in (an account not linked yet holds an account token): made from the
/// browser's cookie, which the table holds only a hash of.
fn kept_key(browser: &str, kind: &str) -> ring::aead::LessSafeKey {
    let mut digest = sha2::Sha256::new();
    digest.update(b"careline-web sign-ins\0");
    digest.update(browser.as_bytes());
    digest.update(b"\0");
    digest.update(kind.as_bytes());
    let key: [u8; 32] = digest.finalize().into();
    ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &key)
            .unwrap_or_else(|_| unreachable!("a ChaCha20-Poly1305 key is 32 bytes")),
    )
}

/// `value` sealed for the `sign_ins` table: a fresh nonce, then the
/// sealed bytes, in base64 (the same browser may keep a kind again).
fn seal_kept(browser: &str, kind: &str, value: &str) -> Result<String, StoreError> {
    let mut nonce = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| StoreError("no randomness to seal a sign-in with".into()))?;
    let mut data = value.as_bytes().to_vec();
    kept_key(browser, kind)
        .seal_in_place_append_tag(
            ring::aead::Nonce::assume_unique_for_key(nonce),
            ring::aead::Aad::from(kind.as_bytes()),
            &mut data,
        )
        .map_err(|_| StoreError("a sign-in could not be sealed".into()))?;
    let mut out = nonce.to_vec();
    out.extend(data);
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(out))
}

/// What [`seal_kept`] sealed, or `None` when it does not open with this
/// browser's key (kept by an earlier version, unsealed, or changed).
fn open_kept(browser: &str, kind: &str, text: &str) -> Option<String> {
    let data = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .ok()?;
    if data.len() < 12 {
        return None;
    }
    let (nonce, sealed) = data.split_at(12);
    let mut sealed = sealed.to_vec();
    let opened = kept_key(browser, kind)
        .open_in_place(
            ring::aead::Nonce::try_assume_unique_for_key(nonce).ok()?,
            ring::aead::Aad::from(kind.as_bytes()),
            &mut sealed,
        )
        .ok()?;
    String::from_utf8(opened.to_vec()).ok()
}

/// A session read back from its row (`GET`'s and `PEEK`'s columns).
fn from_row(id: &str, row: &Row) -> Result<Session, StoreError> {
    let role = |text: String| text.parse::<Role>().map_err(StoreError);
    let roles: Vec<String> = row.try_get(3)?;
    let acting: Option<uuid::Uuid> = row.try_get(6)?;
    let acting_name: Option<String> = row.try_get(7)?;
    Ok(Session {
        id: id.to_string(),
        caller: Caller {
            person_id: row.try_get(0)?,
            name: row.try_get(1)?,
            role: role(row.try_get(2)?)?,
        },
        roles: roles.into_iter().map(role).collect::<Result<_, _>>()?,
        csrf: row.try_get(4)?,
        position: u64::try_from(row.try_get::<_, i64>(5)?).unwrap_or(0),
        acting_for: acting.map(|patient_id| Acting {
            patient_id,
            name: acting_name.unwrap_or_default(),
        }),
        opened: row.try_get(8)?,
        tokens: match row.try_get::<_, Option<Vec<u8>>>(9)? {
            Some(sealed) => Tokens::open(id, sealed)?,
            // A session from before tokens were kept: its calls are refused
            // and it ends, so the person signs in again.
            None => Tokens::default(),
        },
    })
}

impl Sessions {
    /// How long a session lasts without activity.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Sessions in this process: signing in on one instance signs in on
    /// that one only.
    pub fn new(idle: Duration, absolute: Duration) -> Self {
        Self {
            store: Store::Memory(Mutex::new(HashMap::new())),
            sign_ins: Mutex::new(HashMap::new()),
            idle,
            absolute,
            sign_ins_max: SIGN_INS_MAX,
        }
    }

    /// Sessions in the database behind `pool`, shared by every instance
    /// using it; [`Self::prepare`] makes their table.
    pub fn in_database(pool: deadpool_postgres::Pool, idle: Duration, absolute: Duration) -> Self {
        Self {
            store: Store::Database(pool),
            sign_ins: Mutex::new(HashMap::new()),
            idle,
            absolute,
            sign_ins_max: SIGN_INS_MAX,
        }
    }

    /// Makes the sessions' table when it is missing.
    pub async fn prepare(&self) -> Result<(), StoreError> {
        if let Store::Database(pool) = &self.store {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            tx.batch_execute(SCHEMA).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    fn memory(
        map: &Mutex<HashMap<String, Kept>>,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Kept>> {
        map.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn limits(&self) -> (f64, f64) {
        (self.idle.as_secs_f64(), self.absolute.as_secs_f64())
    }

    /// Signs `caller` in with `tokens`: a new session (never one an
    /// attacker could have set beforehand).
    pub async fn start(&self, caller: Caller, tokens: Tokens) -> Result<Session, StoreError> {
        let roles = vec![caller.role];
        self.start_with_roles(caller, roles, tokens).await
    }

    /// As [`Self::start`], for a person who may also work in `roles`.
    pub async fn start_with_roles(
        &self,
        caller: Caller,
        mut roles: Vec<Role>,
        tokens: Tokens,
    ) -> Result<Session, StoreError> {
        if !roles.contains(&caller.role) {
            roles.insert(0, caller.role);
        }
        let session = Session {
            id: random_token(),
            caller,
            csrf: random_token(),
            position: 0,
            acting_for: None,
            opened: None,
            roles,
            tokens,
        };
        match &self.store {
            Store::Memory(map) => {
                let now = Instant::now();
                let mut sessions = Self::memory(map);
                // Ended sessions go as new ones come.
                sessions.retain(|_, k| self.alive(k, now));
                let kept = Kept {
                    session: session.clone(),
                    started: now,
                    last_seen: now,
                };
                sessions.insert(session.id.clone(), kept);
            }
            Store::Database(pool) => {
                let client = pool.get().await?;
                let (idle, absolute) = self.limits();
                client.execute(SWEEP, &[&idle, &absolute]).await?;
                let roles: Vec<&str> = session.roles.iter().map(|r| r.as_str()).collect();
                client
                    .execute(
                        INSERT,
                        &[
                            &hash(&session.id),
                            &session.caller.person_id,
                            &session.caller.name,
                            &session.caller.role.as_str(),
                            &roles,
                            &session.csrf,
                            &session.tokens.seal(&session.id),
                        ],
                    )
                    .await?;
            }
        }
        Ok(session)
    }

    fn alive(&self, k: &Kept, now: Instant) -> bool {
        now.duration_since(k.last_seen) < self.idle && now.duration_since(k.started) < self.absolute
    }

    /// A session row read by `sql` (`$1` the id's hash, `$2`/`$3` the limits).
    async fn read(
        &self,
        pool: &deadpool_postgres::Pool,
        sql: &str,
        id: &str,
    ) -> Result<Option<Session>, StoreError> {
        let client = pool.get().await?;
        let statement = client.prepare_cached(sql).await?;
        let (idle, absolute) = self.limits();
        match client
            .query_opt(&statement, &[&hash(id), &idle, &absolute])
            .await?
        {
            Some(row) => Ok(Some(from_row(id, &row)?)),
            None => Ok(None),
        }
    }

    /// Runs `sql` on session `id`'s row (`$1` its hash, then `params`):
    /// whether a row changed.
    async fn change(
        pool: &deadpool_postgres::Pool,
        sql: &str,
        id: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<bool, StoreError> {
        let client = pool.get().await?;
        let statement = client.prepare_cached(sql).await?;
        let hashed = hash(id);
        let mut all: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&hashed];
        all.extend_from_slice(params);
        Ok(client.execute(&statement, &all).await? > 0)
    }

    /// The session `id`, if it has not ended, without keeping it alive.
    pub async fn peek(&self, id: &str) -> Result<Option<Session>, StoreError> {
        match &self.store {
            Store::Memory(map) => {
                let now = Instant::now();
                Ok(Self::memory(map)
                    .get(id)
                    .filter(|k| self.alive(k, now))
                    .map(|k| k.session.clone()))
            }
            Store::Database(pool) => self.read(pool, PEEK, id).await,
        }
    }

    /// The session `id`, if it has not ended; using it keeps it alive.
    pub async fn get(&self, id: &str) -> Result<Option<Session>, StoreError> {
        match &self.store {
            Store::Memory(map) => {
                let now = Instant::now();
                let mut sessions = Self::memory(map);
                let alive = sessions.get(id).is_some_and(|k| self.alive(k, now));
                if !alive {
                    sessions.remove(id);
                    return Ok(None);
                }
                Ok(sessions.get_mut(id).map(|k| {
                    k.last_seen = now;
                    k.session.clone()
                }))
            }
            Store::Database(pool) => self.read(pool, GET, id).await,
        }
    }

    /// Whether session `id` has not ended, without keeping it alive (a
    /// page left open is not someone using it).
    pub async fn alive_now(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.peek(id).await?.is_some())
    }

    /// Records a change the session made, at `position`.
    pub async fn advance(&self, id: &str, position: u64) -> Result<(), StoreError> {
        match &self.store {
            Store::Memory(map) => {
                if let Some(k) = Self::memory(map).get_mut(id) {
                    k.session.position = k.session.position.max(position);
                }
            }
            Store::Database(pool) => {
                let position = i64::try_from(position).unwrap_or(i64::MAX);
                Self::change(pool, ADVANCE, id, &[&position]).await?;
            }
        }
        Ok(())
    }

    /// Session `id`'s page now shows conversation `thread`.
    pub async fn opened(&self, id: &str, thread: &str) -> Result<(), StoreError> {
        match &self.store {
            Store::Memory(map) => {
                if let Some(k) = Self::memory(map).get_mut(id) {
                    k.session.opened = Some(thread.to_string());
                }
            }
            Store::Database(pool) => {
                Self::change(pool, OPENED, id, &[&thread]).await?;
            }
        }
        Ok(())
    }

    /// The patient the carer of session `id` acts for from now (none: they
    /// choose again).
    pub async fn act_for(&self, id: &str, acting: Option<Acting>) -> Result<(), StoreError> {
        match &self.store {
            Store::Memory(map) => {
                if let Some(k) = Self::memory(map).get_mut(id) {
                    k.session.acting_for = acting;
                }
            }
            Store::Database(pool) => {
                let (patient, name) = acting.map(|a| (a.patient_id, a.name)).unzip();
                Self::change(pool, ACT_FOR, id, &[&patient, &name]).await?;
            }
        }
        Ok(())
    }

    /// Session `id` works as `role` from now, when it is one of its
    /// roles (what it chose before in another role is forgotten); whether
    /// it switched.
    pub async fn work_as(&self, id: &str, role: Role) -> Result<bool, StoreError> {
        match &self.store {
            Store::Memory(map) => Ok(match Self::memory(map).get_mut(id) {
                Some(k) if k.session.roles.contains(&role) => {
                    let s = &mut k.session;
                    s.caller.role = role;
                    s.acting_for = None;
                    s.opened = None;
                    true
                }
                _ => false,
            }),
            Store::Database(pool) => Self::change(pool, WORK_AS, id, &[&role.as_str()]).await,
        }
    }

    /// Ends the session `id`.
    pub async fn end(&self, id: &str) -> Result<(), StoreError> {
        match &self.store {
            Store::Memory(map) => {
                Self::memory(map).remove(id);
            }
            Store::Database(pool) => {
                Self::change(pool, END, id, &[]).await?;
            }
        }
        Ok(())
    }

    /// At most this many sign-ins in flight at once (each lasts minutes):
    /// a flood of anonymous "sign in" requests is refused past it, not
    /// stored.
    pub fn with_sign_in_cap(mut self, most: usize) -> Self {
        self.sign_ins_max = most;
        self
    }

    fn flights(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (String, Instant)>> {
        self.sign_ins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `value` for the browser of pre-sign-in cookie `browser` as
    /// its `kind` (a sign-in in flight, an account not linked yet), for at
    /// most `lasting`, replacing what it kept as that kind before.
    pub async fn keep(
        &self,
        browser: &str,
        kind: &str,
        value: &str,
        lasting: Duration,
    ) -> Result<(), StoreError> {
        match &self.store {
            Store::Memory(_) => {
                let now = Instant::now();
                let mut kept = self.flights();
                kept.retain(|_, (_, until)| *until > now);
                let key = (browser.to_string(), kind.to_string());
                if kept.len() >= self.sign_ins_max && !kept.contains_key(&key) {
                    return Err(full());
                }
                kept.insert(
                    (browser.to_string(), kind.to_string()),
                    (value.to_string(), now + lasting),
                );
            }
            Store::Database(pool) => {
                let client = pool.get().await?;
                client.execute(SWEEP_SIGN_INS, &[]).await?;
                let lasting = lasting.as_secs_f64();
                let most = self.sign_ins_max as i64;
                let sealed = seal_kept(browser, kind, value)?;
                let kept = client
                    .execute(KEEP, &[&hash(browser), &kind, &sealed, &lasting, &most])
                    .await?;
                if kept == 0 {
                    return Err(full());
                }
            }
        }
        Ok(())
    }

    /// What `browser` kept as `kind`, if it has not run out, now forgotten
    /// (it is used once).
    pub async fn take(&self, browser: &str, kind: &str) -> Result<Option<String>, StoreError> {
        match &self.store {
            Store::Memory(_) => Ok(self
                .flights()
                .remove(&(browser.to_string(), kind.to_string()))
                .filter(|(_, until)| *until > Instant::now())
                .map(|(value, _)| value)),
            Store::Database(pool) => {
                let client = pool.get().await?;
                let row = client.query_opt(TAKE, &[&hash(browser), &kind]).await?;
                Ok(row
                    .filter(|r| r.get::<_, bool>(1))
                    .and_then(|r| open_kept(browser, kind, &r.get::<_, String>(0))))
            }
        }
    }

    /// What `browser` kept as `kind`, if it has not run out.
    pub async fn look(&self, browser: &str, kind: &str) -> Result<Option<String>, StoreError> {
        match &self.store {
            Store::Memory(_) => Ok(self
                .flights()
                .get(&(browser.to_string(), kind.to_string()))
                .filter(|(_, until)| *until > Instant::now())
                .map(|(value, _)| value.clone())),
            Store::Database(pool) => {
                let client = pool.get().await?;
                let row = client.query_opt(LOOK, &[&hash(browser), &kind]).await?;
                Ok(row.and_then(|r| open_kept(browser, kind, &r.get::<_, String>(0))))
            }
        }
    }

    /// Forgets what `browser` kept as `kind`.
    pub async fn forget(&self, browser: &str, kind: &str) -> Result<(), StoreError> {
        match &self.store {
            Store::Memory(_) => {
                self.flights()
                    .remove(&(browser.to_string(), kind.to_string()));
            }
            Store::Database(pool) => {
                let client = pool.get().await?;
                client.execute(FORGET, &[&hash(browser), &kind]).await?;
            }
        }
        Ok(())
    }

    /// Whether the sessions are shared by every instance (in the database).
    pub fn shared(&self) -> bool {
        matches!(self.store, Store::Database(_))
    }

    /// Tells every instance sharing the database `payload` on `channel`
    /// (PostgreSQL's NOTIFY); nothing when the sessions are in this process.
    pub async fn announce(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        if let Store::Database(pool) = &self.store {
            let client = pool.get().await?;
            client
                .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
                .await?;
        }
        Ok(())
    }

    /// Ends every session of `person` (their account was closed).
    pub async fn end_person(&self, person: uuid::Uuid) -> Result<(), StoreError> {
        match &self.store {
            Store::Memory(map) => {
                Self::memory(map).retain(|_, k| k.session.caller.person_id != person);
            }
            Store::Database(pool) => {
                let client = pool.get().await?;
                client.execute(END_PERSON, &[&person]).await?;
            }
        }
        Ok(())
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

    fn tokens() -> Tokens {
        Tokens::new(vec![
            (Role::Professional, "eyJ.professional.token".into()),
            (Role::Admin, "eyJ.admin.token".into()),
        ])
    }

    /// Both stores behave alike: idle and absolute ends, ending one
    /// session or a person's, switching roles, and what a session carries.
    async fn behaves(make: impl Fn(Duration, Duration) -> Sessions) {
        let sessions = make(Duration::from_millis(1500), Duration::from_secs(60));
        sessions.prepare().await.unwrap();
        let s = sessions.start(pat(), Tokens::default()).await.unwrap();
        assert!(sessions.get(&s.id).await.unwrap().is_some());
        assert!(sessions.get("forged").await.unwrap().is_none());
        tokio::time::sleep(Duration::from_millis(1700)).await;
        assert!(
            sessions.get(&s.id).await.unwrap().is_none(),
            "idle too long"
        );

        let old = make(Duration::from_secs(60), Duration::from_millis(1000));
        let s = old.start(pat(), Tokens::default()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(old.get(&s.id).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            old.get(&s.id).await.unwrap().is_none(),
            "past the absolute limit"
        );

        let sessions = make(Duration::from_secs(60), Duration::from_secs(60));
        let who = pat();
        let (a, b) = (
            sessions
                .start(who.clone(), Tokens::default())
                .await
                .unwrap(),
            sessions
                .start(who.clone(), Tokens::default())
                .await
                .unwrap(),
        );
        let other = sessions.start(pat(), Tokens::default()).await.unwrap();
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, b.csrf);
        sessions.end_person(who.person_id).await.unwrap();
        assert!(sessions.get(&a.id).await.unwrap().is_none());
        assert!(sessions.get(&b.id).await.unwrap().is_none());
        assert!(sessions.get(&other.id).await.unwrap().is_some());
        sessions.end(&other.id).await.unwrap();
        assert!(sessions.get(&other.id).await.unwrap().is_none());

        // What a session carries, read back as it was written.
        let staff = Caller {
            person_id: uuid::Uuid::now_v7(),
            role: Role::Professional,
            name: "Nina Patel".into(),
        };
        let s = sessions
            .start_with_roles(
                staff.clone(),
                vec![Role::Professional, Role::Admin],
                tokens(),
            )
            .await
            .unwrap();
        sessions.advance(&s.id, 42).await.unwrap();
        sessions.advance(&s.id, 7).await.unwrap();
        sessions.opened(&s.id, "a-thread").await.unwrap();
        let acting = Acting {
            patient_id: uuid::Uuid::now_v7(),
            name: "Pat Jones".into(),
        };
        sessions.act_for(&s.id, Some(acting.clone())).await.unwrap();
        let read = sessions.peek(&s.id).await.unwrap().unwrap();
        assert_eq!(
            (read.position, read.opened.as_deref()),
            (42, Some("a-thread"))
        );
        assert_eq!(read.acting_for, Some(acting));
        assert_eq!(read.tokens, tokens(), "the sign-in's tokens, read back");
        assert_eq!(
            (read.caller.person_id, read.caller.name.as_str()),
            (staff.person_id, "Nina Patel")
        );
        assert_eq!(read.roles, vec![Role::Professional, Role::Admin]);
        assert_eq!(read.csrf, s.csrf);
        assert!(
            !sessions.work_as(&s.id, Role::Auditor).await.unwrap(),
            "not granted"
        );
        assert!(sessions.work_as(&s.id, Role::Admin).await.unwrap());
        let read = sessions.get(&s.id).await.unwrap().unwrap();
        assert_eq!(read.caller.role, Role::Admin);
        assert_eq!((read.acting_for, read.opened), (None, None));
        assert!(sessions.alive_now(&s.id).await.unwrap());
        sessions.end(&s.id).await.unwrap();
        assert!(!sessions.alive_now(&s.id).await.unwrap());

        // What a browser carries through a sign-in: looked at while it
        // lasts, taken once, gone when it runs out or is forgotten.
        let browser = random_token();
        let long = Duration::from_secs(60);
        sessions
            .keep(&browser, "pending", "one", long)
            .await
            .unwrap();
        sessions.keep(&browser, "held", "two", long).await.unwrap();
        assert!(sessions.look("another", "pending").await.unwrap().is_none());
        assert_eq!(
            sessions.look(&browser, "pending").await.unwrap().as_deref(),
            Some("one")
        );
        assert_eq!(
            sessions.take(&browser, "pending").await.unwrap().as_deref(),
            Some("one")
        );
        assert!(
            sessions.take(&browser, "pending").await.unwrap().is_none(),
            "taken once"
        );
        assert_eq!(
            sessions.look(&browser, "held").await.unwrap().as_deref(),
            Some("two")
        );
        sessions
            .keep(&browser, "held", "three", long)
            .await
            .unwrap();
        assert_eq!(
            sessions.look(&browser, "held").await.unwrap().as_deref(),
            Some("three")
        );
        sessions.forget(&browser, "held").await.unwrap();
        assert!(sessions.look(&browser, "held").await.unwrap().is_none());
        sessions
            .keep(&browser, "pending", "brief", Duration::from_millis(300))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            sessions.take(&browser, "pending").await.unwrap().is_none(),
            "ran out"
        );

        // A flood of sign-ins from browsers nobody knows is refused past
        // the cap, not stored; a browser replacing its own still is.
        let capped = make(Duration::from_secs(60), Duration::from_secs(60)).with_sign_in_cap(3);
        let mut browsers = Vec::new();
        for _ in 0..3 {
            let b = random_token();
            capped.keep(&b, "pending", "x", long).await.unwrap();
            browsers.push(b);
        }
        assert!(
            capped
                .keep(&random_token(), "pending", "x", long)
                .await
                .is_err()
        );
        capped
            .keep(&browsers[0], "pending", "y", long)
            .await
            .unwrap();
        capped.take(&browsers[1], "pending").await.unwrap();
        capped
            .keep(&random_token(), "pending", "x", long)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn sessions_in_this_process() {
        behaves(Sessions::new).await;
    }

    #[tokio::test]
    async fn sessions_in_the_database_are_shared_by_every_instance() {
        let db = projections::testing::TestDatabase::new("websessions").await;
        let pool = || careline_pg::pool(&db.url, 2, "careline_web").unwrap();
        behaves(|idle, absolute| Sessions::in_database(pool(), idle, absolute)).await;

        // Two instances, one table: a session started on one is known to
        // the other, and ended on the other it is ended on the first.
        let (one, two) = (
            Sessions::in_database(pool(), Duration::from_secs(60), Duration::from_secs(60)),
            Sessions::in_database(pool(), Duration::from_secs(60), Duration::from_secs(60)),
        );
        let (a, b) = tokio::join!(one.prepare(), two.prepare());
        a.unwrap();
        b.unwrap();
        let s = one.start(pat(), tokens()).await.unwrap();
        assert_eq!(
            two.get(&s.id).await.unwrap().map(|s| s.csrf),
            Some(s.csrf.clone())
        );
        // The table holds the id's hash, not the id.
        let client = careline_pg::connect(&db.url).await.unwrap();
        let kept = client
            .query_one(
                "SELECT count(*) FILTER (WHERE id_hash = sha256(convert_to($1, 'UTF8'))), \
                   count(*) FILTER (WHERE position(convert_to($1, 'UTF8') in id_hash) > 0) \
                 FROM careline_web.sessions",
                &[&s.id],
            )
            .await
            .unwrap();
        assert_eq!((kept.get::<_, i64>(0), kept.get::<_, i64>(1)), (1, 0));
        // It holds the tokens sealed: not one of them in the clear, and
        // only the id (which it does not hold) opens them.
        let sealed: Vec<u8> = client
            .query_one(
                "SELECT tokens FROM careline_web.sessions WHERE id_hash = sha256(convert_to($1, 'UTF8'))",
                &[&s.id],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!String::from_utf8_lossy(&sealed).contains("token"));
        assert!(Tokens::open("another id", sealed.clone()).is_err());
        assert_eq!(Tokens::open(&s.id, sealed).unwrap(), tokens());
        two.end(&s.id).await.unwrap();
        assert!(one.get(&s.id).await.unwrap().is_none());

        // What a browser keeps before it is signed in (an account token
        // for an account not linked yet) is sealed too: the other instance
        // opens it with the browser's cookie; the table alone does not.
        let browser = random_token();
        let held = "{\"account_token\":\"eyJ.account.token\"}";
        one.keep(&browser, "held", held, Duration::from_secs(60))
            .await
            .unwrap();
        let stored: String = client
            .query_one(
                "SELECT value FROM careline_web.sign_ins WHERE browser_hash = sha256(convert_to($1, 'UTF8'))",
                &[&browser],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!stored.contains("token"), "{stored}");
        assert_eq!(open_kept("another browser", "held", &stored), None);
        assert_eq!(open_kept(&browser, "pending", &stored), None);
        assert_eq!(
            two.look(&browser, "held").await.unwrap().as_deref(),
            Some(held)
        );
        assert_eq!(
            two.take(&browser, "held").await.unwrap().as_deref(),
            Some(held)
        );
        assert_eq!(one.look(&browser, "held").await.unwrap(), None);
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
