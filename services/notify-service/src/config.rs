//! The notification service's configuration, from the environment.

use std::time::{Duration, SystemTime};

use careline_read_kit::{Defaults, ReadConfig, ReadSettings};
use careline_settings::Settings;
use lettre::message::Mailbox;

/// How mail leaves: the SMTP server and what the emails say.
#[derive(Clone, Debug)]
pub struct Smtp {
    /// `CARELINE_SMTP_HOST`, default 127.0.0.1.
    pub host: String,
    /// `CARELINE_SMTP_PORT`, default 25.
    pub port: u16,
    /// `CARELINE_SMTP_TLS`: none, starttls or tls; default starttls.
    pub tls: TlsMode,
    /// `CARELINE_SMTP_USER` and `CARELINE_SMTP_PASSWORD`, if the server wants them.
    pub credentials: Option<(String, service_kit::secret::Secret)>,
    /// `CARELINE_MAIL_FROM`, default "Careline <no-reply@careline.example>".
    pub from: Mailbox,
    /// The domain of Message-IDs: the `From` address's.
    pub domain: String,
    /// `CARELINE_BASE_URL`: where people sign in; links are
    /// `<base>/threads/<thread id>`. Default http://127.0.0.1:8080, where
    /// the web service listens by default (a link to another host name
    /// would not carry its session cookie).
    pub base_url: String,
    /// `CARELINE_SMTP_MAX_ATTEMPTS`, default 8.
    pub max_attempts: u32,
    /// `CARELINE_SMTP_BACKOFF_MS`: the first retry's delay, doubled each
    /// time up to 64 times; default 30000.
    pub backoff: Duration,
    /// How often the queue is looked at when nothing wakes the worker.
    pub poll: Duration,
    /// `CARELINE_NOTIFY_COALESCE_SECS`: a notification waits this long, so
    /// that further messages in the thread for the same person go out in
    /// the same email. Default 120.
    pub coalesce: Duration,
    /// `CARELINE_NOTIFY_REMINDER_DAYS`: a patient who has not read a staff
    /// message after this long is reminded, once. Default 7 days.
    pub reminder_after: Duration,
    /// `CARELINE_EMAIL_LINK_SIGNING_KEY`: the key that signs verification
    /// links (the command service holds its public half). Without it no
    /// verification email is sent.
    pub links: Option<service_kit::LinkIssuer>,
    /// `CARELINE_EMAIL_LINK_HOURS`: how long a verification link works,
    /// from the request; default 24, at most 168. A request older than
    /// that is not sent at all (a rebuild never emails old requests).
    pub link_lifetime: Duration,
}

/// The worker's clock.
#[derive(Clone)]
pub struct Clock(std::sync::Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Self(std::sync::Arc::new(SystemTime::now))
    }

    /// A clock that reads `now`, which the caller moves.
    pub fn manual(now: std::sync::Arc<std::sync::Mutex<SystemTime>>) -> Self {
        Self(std::sync::Arc::new(move || {
            *now.lock().unwrap_or_else(|e| e.into_inner())
        }))
    }

    pub fn now(&self) -> SystemTime {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({:?})", self.now())
    }
}

impl Smtp {
    /// The largest multiple of `backoff` a retry waits.
    pub fn backoff_cap_factor(&self) -> f64 {
        64.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    None,
    StartTls,
    Tls,
}

/// The notification service's name in its settings, and its defaults
/// (`CARELINE_NOTIFY_ADDR`, default 127.0.0.1:50054; `CARELINE_NOTIFY_BATCH`,
/// default 500; `CARELINE_NOTIFY_POOL`, default 4; `CARELINE_NOTIFY_WAIT_MS`,
/// default 2000).
pub const DEFAULTS: Defaults = Defaults {
    name: "NOTIFY",
    port: 50054,
    batch: 500,
    pool: 4,
};

#[derive(Clone, Debug)]
pub struct Config {
    pub read: ReadSettings,
    pub smtp: Smtp,
    /// What time it is for the delivery worker (a test sets it by hand).
    pub clock: Clock,
    /// Whether reads are recorded in the log (always, in a deployment: there
    /// is no setting to turn it off; a test of answers that must not change
    /// while it reads turns it off in code).
    pub record_reads: bool,
}

impl Smtp {
    pub fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        let tls = match s.text("CARELINE_SMTP_TLS", "starttls").as_str() {
            "none" => TlsMode::None,
            "starttls" => TlsMode::StartTls,
            "tls" => TlsMode::Tls,
            other => anyhow::bail!("CARELINE_SMTP_TLS={other:?}: use none, starttls or tls"),
        };
        let from = s.text("CARELINE_MAIL_FROM", "Careline <no-reply@careline.example>");
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("CARELINE_MAIL_FROM={from:?} is not an address: {e}"))?;
        let port = s.number_in("CARELINE_SMTP_PORT", 25, 1..=u64::from(u16::MAX))?;
        Ok(Self {
            host: s.text("CARELINE_SMTP_HOST", "127.0.0.1"),
            port: port as u16,
            tls,
            credentials: s
                .pair("CARELINE_SMTP_USER", "CARELINE_SMTP_PASSWORD")?
                .map(|(user, password)| (user, service_kit::secret::Secret::new(password))),
            domain: from.email.domain().to_string(),
            from,
            base_url: s.text("CARELINE_BASE_URL", "http://127.0.0.1:8080"),
            max_attempts: s.number_in("CARELINE_SMTP_MAX_ATTEMPTS", 8, 1..=100)? as u32,
            backoff: s.millis("CARELINE_SMTP_BACKOFF_MS", 30_000)?,
            poll: Duration::from_secs(1),
            coalesce: s.secs("CARELINE_NOTIFY_COALESCE_SECS", 120)?,
            reminder_after: Duration::from_secs(
                86_400 * s.number("CARELINE_NOTIFY_REMINDER_DAYS", 7)?,
            ),
            links: service_kit::LinkIssuer::from_setting(
                s.get(service_kit::email_link::LINK_SIGNING_KEY_VAR),
            )
            .map_err(anyhow::Error::msg)?,
            link_lifetime: Duration::from_secs(
                3600 * s.number_in("CARELINE_EMAIL_LINK_HOURS", 24, 1..=168)?,
            ),
        })
    }
}

impl ReadConfig for Config {
    fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            read: ReadSettings::from_settings(s, DEFAULTS)?,
            smtp: Smtp::from_settings(s)?,
            clock: Clock::system(),
            record_reads: true,
        })
    }

    fn read(&self) -> &ReadSettings {
        &self.read
    }
}

#[cfg(test)]
mod tests {
    /// Every secret the notification service's settings hold, set; none
    /// appears when the configuration is printed.
    #[test]
    fn no_secret_prints() {
        let links = service_kit::email_link::test_link_issuer().private_key();
        let public = service_kit::test_issuer().public_key();
        let pairs = [
            (service_kit::auth::PUBLIC_KEYS_VAR, public.as_str()),
            ("CARELINE_SMTP_USER", "careline"),
            ("CARELINE_SMTP_PASSWORD", "smtp-secret-hunter2"),
            ("NATS_USER", "notify"),
            ("NATS_PASSWORD", "nats-secret-hunter2"),
            ("CARELINE_EMAIL_LINK_SIGNING_KEY", links.as_str()),
        ];
        let config = <super::Config as careline_read_kit::ReadConfig>::from_settings(
            &careline_settings::Settings::from_pairs(&pairs),
        )
        .unwrap();
        let printed = format!("{config:?}");
        for secret in [
            "smtp-secret-hunter2",
            "nats-secret-hunter2",
            &links[links.len() - 20..],
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("careline"), "{printed}");
    }
}
