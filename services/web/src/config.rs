//! The web service's settings, read once at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use careline_settings::Settings;
use service_kit::{Caller, Role};

/// Where the services are, how sessions behave, and whether the demo's
/// sign-in page is on.
#[derive(Clone)]
pub struct Config {
    /// `CARELINE_WEB_ADDR`: where the pages are served.
    pub addr: SocketAddr,
    /// `CARELINE_WEB_METRICS_ADDR`: where metrics, `/livez` and `/readyz`
    /// are served (never on the pages' address); unset, nowhere.
    pub metrics: Option<SocketAddr>,
    /// `CARELINE_COMMAND_URL`, `CARELINE_INBOX_URL`: the services called as
    /// the signed-in person.
    pub command_url: String,
    pub inbox_url: String,
    /// `CARELINE_AUDIT_URL`: the audit service (a patient's own trail).
    pub audit_url: String,
    /// `CARELINE_NOTIFY_URL`: the notification service (whom staff's
    /// messages reached).
    pub notify_url: String,
    /// `CARELINE_BASE_URL`: where people reach these pages (the links a
    /// team puts on its website).
    pub base_url: String,
    /// `CARELINE_WEB_DEMO_PEOPLE`: a file of demo people (`careline demo
    /// --people-file`); when set, anyone may sign in as one of them, and
    /// every page says so.
    pub demo_people: Option<PathBuf>,
    /// `CARELINE_WEB_SECURE_COOKIES`: cookies only over TLS. On unless the
    /// pages are plain HTTP on this machine (`CARELINE_BASE_URL`
    /// `http://127.0.0.1:…` or `localhost`, the demo's): a plain-HTTP base
    /// URL elsewhere is refused at start, as is turning it off for one.
    pub secure_cookies: bool,
    /// `CARELINE_WEB_IDLE_MINUTES` (default 30): a session unused this long ends.
    pub idle: Duration,
    /// `CARELINE_WEB_SESSION_HOURS` (default 12): a session ends this long
    /// after sign-in, used or not.
    pub absolute: Duration,
    /// `CARELINE_WEB_OIDC_ISSUER`, `_CLIENT_ID`, `_CLIENT_SECRET`,
    /// `_REDIRECT_URI` (default `CARELINE_BASE_URL` + `/sign-in/callback`)
    /// and `_LABEL`: sign-in at an OpenID Connect provider.
    pub oidc: Option<crate::oidc::OidcSettings>,
    /// `CARELINE_WEB_DATABASE_URL`: where sessions are kept, shared by every
    /// instance (a PostgreSQL URL; TLS as `CARELINE_DATABASE_CA` says).
    /// Unset: in this process, and a browser must keep to one instance.
    pub sessions_database: Option<String>,
    /// `CARELINE_WEB_SIGN_INS_PER_MINUTE` (default 60): sign-ins one
    /// network address may start a minute (a hospital's staff may share
    /// one address: raise it there).
    pub sign_ins_per_minute: usize,
    /// `CARELINE_WEB_TRUSTED_PROXIES` (default `127.0.0.1,::1`): the
    /// proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("command_url", &self.command_url)
            .field("inbox_url", &self.inbox_url)
            .field("audit_url", &self.audit_url)
            .field("notify_url", &self.notify_url)
            .field("base_url", &self.base_url)
            .field("demo_people", &self.demo_people)
            .field("secure_cookies", &self.secure_cookies)
            .field("idle", &self.idle)
            .field("absolute", &self.absolute)
            .field("oidc_issuer", &self.oidc.as_ref().map(|o| &o.issuer))
            .field("sessions_shared", &self.sessions_database.is_some())
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        // The web faces the internet: it holds no key that could sign
        // anyone in. The command service issues every token.
        let var = service_kit::auth::SIGNING_KEY_VAR;
        if s.get(var).is_some_and(|v| !v.trim().is_empty()) {
            anyhow::bail!(
                "{var} is set for the web service: remove it. The web holds no token key; the command service signs people in and issues their tokens"
            );
        }
        let minutes = s.number_in("CARELINE_WEB_IDLE_MINUTES", 30, 1..=24 * 60)?;
        let oidc = match s
            .get("CARELINE_WEB_OIDC_ISSUER")
            .filter(|v| !v.trim().is_empty())
        {
            None => None,
            Some(issuer) => {
                let needed = |name: &str| {
                    s.get(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                        anyhow::anyhow!("{name} is not set, and CARELINE_WEB_OIDC_ISSUER is")
                    })
                };
                let base = s.text("CARELINE_BASE_URL", "http://127.0.0.1:8080");
                Some(crate::oidc::OidcSettings {
                    issuer: issuer.trim().to_string(),
                    client_id: needed("CARELINE_WEB_OIDC_CLIENT_ID")?,
                    client_secret: service_kit::secret::Secret::new(needed(
                        "CARELINE_WEB_OIDC_CLIENT_SECRET",
                    )?),
                    redirect_uri: s.text(
                        "CARELINE_WEB_OIDC_REDIRECT_URI",
                        &format!("{}/sign-in/callback", base.trim_end_matches('/')),
                    ),
                    label: s.text(
                        "CARELINE_WEB_OIDC_LABEL",
                        "Sign in with your hospital account",
                    ),
                })
            }
        };
        let hours = s.number_in("CARELINE_WEB_SESSION_HOURS", 12, 1..=7 * 24)?;
        Ok(Self {
            addr: s.address("CARELINE_WEB_ADDR", "127.0.0.1:8080")?,
            metrics: s.optional_address("CARELINE_WEB_METRICS_ADDR")?,
            command_url: s.text("CARELINE_COMMAND_URL", "http://127.0.0.1:50051"),
            inbox_url: s.text("CARELINE_INBOX_URL", "http://127.0.0.1:50052"),
            audit_url: s.text("CARELINE_AUDIT_URL", "http://127.0.0.1:50053"),
            notify_url: s.text("CARELINE_NOTIFY_URL", "http://127.0.0.1:50054"),
            base_url: s
                .text("CARELINE_BASE_URL", "http://127.0.0.1:8080")
                .trim_end_matches('/')
                .to_string(),
            demo_people: s
                .get("CARELINE_WEB_DEMO_PEOPLE")
                .filter(|v| !v.trim().is_empty())
                .map(PathBuf::from),
            secure_cookies: secure_cookies(
                &s.text("CARELINE_BASE_URL", "http://127.0.0.1:8080"),
                s.get("CARELINE_WEB_SECURE_COOKIES").as_deref(),
            )?,
            oidc,
            sessions_database: s
                .get("CARELINE_WEB_DATABASE_URL")
                .filter(|v| !v.trim().is_empty()),
            idle: Duration::from_secs(minutes * 60),
            absolute: Duration::from_secs(hours * 3600),
            sign_ins_per_minute: s.number_in("CARELINE_WEB_SIGN_INS_PER_MINUTE", 60, 1..=100_000)?
                as usize,
            trusted_proxies: crate::client::parse_trusted(
                &s.text("CARELINE_WEB_TRUSTED_PROXIES", "127.0.0.1,::1"),
            )
            .map_err(anyhow::Error::msg)?,
        })
    }
}

/// Whether cookies are sent only over TLS: always, but for pages served as
/// plain HTTP on this machine (`base`'s host a loopback one), where it is
/// off unless asked for. Plain HTTP anywhere else is refused.
fn secure_cookies(base: &str, asked: Option<&str>) -> anyhow::Result<bool> {
    let asked = match asked.map(str::trim) {
        None | Some("") => None,
        Some("true" | "1" | "yes") => Some(true),
        Some("false" | "0" | "no") => Some(false),
        Some(other) => anyhow::bail!("CARELINE_WEB_SECURE_COOKIES={other:?}: true or false"),
    };
    if base.starts_with("https://") {
        if asked == Some(false) {
            anyhow::bail!(
                "CARELINE_WEB_SECURE_COOKIES=false, but the pages are served over HTTPS ({base}): leave it on"
            );
        }
        return Ok(true);
    }
    let host = base
        .strip_prefix("http://")
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .map(|authority| {
            authority
                .rsplit_once(':')
                .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
                .map_or(authority, |(host, _)| host)
        })
        .unwrap_or_default();
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    if !loopback {
        anyhow::bail!(
            "CARELINE_BASE_URL {base} is plain HTTP on another machine: patients' sessions would cross the network unencrypted; serve the pages over HTTPS (a TLS-terminating proxy in front) and set CARELINE_BASE_URL to its https:// address"
        );
    }
    Ok(asked.unwrap_or(false))
}

#[cfg(test)]
mod secure_tests {
    use super::secure_cookies;

    /// Every secret the web's settings hold, set; none appears when the
    /// configuration is printed (a log line, a panic, a debug dump).
    #[test]
    fn no_secret_prints() {
        let pairs = [
            ("CARELINE_WEB_OIDC_ISSUER", "https://id.example"),
            ("CARELINE_WEB_OIDC_CLIENT_ID", "careline-web"),
            ("CARELINE_WEB_OIDC_CLIENT_SECRET", "oidc-secret-hunter2"),
            ("NATS_USER", "web"),
            ("NATS_PASSWORD", "nats-secret-hunter2"),
        ];
        let config =
            super::Config::from_settings(&careline_settings::Settings::from_pairs(&pairs)).unwrap();
        let printed = format!("{config:?} {:?}", config.oidc);
        for secret in ["oidc-secret-hunter2", "nats-secret-hunter2"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("careline-web"), "{printed}");
    }

    /// The web faces the internet: given the token key, it refuses to
    /// start rather than hold what could sign anyone in.
    #[test]
    fn the_web_refuses_to_hold_the_token_key() {
        let key = service_kit::test_issuer().private_key();
        let pairs = [(service_kit::auth::SIGNING_KEY_VAR, key.as_str())];
        let refused =
            super::Config::from_settings(&careline_settings::Settings::from_pairs(&pairs))
                .unwrap_err()
                .to_string();
        assert!(refused.contains("holds no token key"), "{refused}");
        assert!(!refused.contains(&key[key.len() - 20..]), "{refused}");
    }

    #[test]
    fn cookies_are_secure_unless_the_pages_are_plain_http_on_this_machine() {
        assert!(!secure_cookies("http://127.0.0.1:8080", None).unwrap());
        assert!(!secure_cookies("http://localhost:8080/", None).unwrap());
        assert!(secure_cookies("http://127.0.0.1:8080", Some("true")).unwrap());
        assert!(secure_cookies("https://careline.example", None).unwrap());
        assert!(secure_cookies("https://careline.example", Some("false")).is_err());
        assert!(secure_cookies("http://careline.example", None).is_err());
        assert!(secure_cookies("http://10.0.0.5:8080", Some("false")).is_err());
        assert!(secure_cookies("http://127.0.0.1.evil.example", None).is_err());
        assert!(secure_cookies("https://careline.example", Some("maybe")).is_err());
    }
}

/// One person of the demo sign-in page: what they are in the demo, and who.
#[derive(Clone, Debug)]
pub struct DemoPerson {
    pub what: String,
    pub caller: Caller,
}

/// Reads a demo people file: one person per line, `id<TAB>role<TAB>name<TAB>what`.
pub fn read_demo_people(text: &str) -> anyhow::Result<Vec<DemoPerson>> {
    let mut people = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = || anyhow::anyhow!("demo people, line {}: expected id, role, name, what", n + 1);
        let mut fields = line.split('\t');
        let (Some(id), Some(role), Some(name), Some(what)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad());
        };
        let role = Role::ALL
            .into_iter()
            .find(|r| r.as_str() == role)
            .ok_or_else(bad)?;
        people.push(DemoPerson {
            what: what.to_string(),
            caller: Caller {
                person_id: uuid::Uuid::parse_str(id).map_err(|_| bad())?,
                role,
                name: name.to_string(),
            },
        });
    }
    Ok(people)
}
