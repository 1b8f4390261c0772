//! Where the log lives and how its stream is set up.

use std::path::PathBuf;
use std::time::Duration;

use crate::Error;
use careline_settings::{BadSetting, Settings};

/// Configuration of the event store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// NATS server URL(s), comma separated.
    pub nats_url: String,
    /// The JetStream stream that holds every event.
    pub stream: String,
    /// Subject prefix: events go to `<prefix>.events.<type>.<id>`.
    pub prefix: String,
    /// Stream replicas: 1 on a single server, 3 in production clusters.
    pub replicas: usize,
    /// JetStream's de-duplication window for `Nats-Msg-Id`.
    pub duplicate_window: Duration,
    /// Upper bound on every request to NATS (publish ack, API call).
    pub request_timeout: Duration,
    /// How long one attempt to connect to one server may take; a node that
    /// does not answer (cut off, powered off) costs this much before the
    /// next is tried.
    pub connect_timeout: Duration,
    /// How often an idle connection is pinged: one that misses three pongs
    /// in a row is given up and another server tried (a node cut off the
    /// network sends no reset: without pings its clients would wait).
    pub ping_interval: Duration,
    /// How long a service starting up waits for NATS and JetStream to
    /// answer (`JetStreamStore::connect_patiently`).
    pub startup_wait: Duration,
    /// The NATS user this process connects as (each service has its own,
    /// with subject permissions: see `deploy/nats/users.conf`).
    pub user: Option<NatsUser>,
    /// TLS to NATS (`NATS_CA`, and `NATS_CERT` with `NATS_KEY` when the
    /// servers ask for client certificates; a `tls://` URL asks for TLS with
    /// the system's roots). `None`: plaintext, for a single machine only.
    pub tls: Option<NatsTls>,
    /// This process's key: every event it appends is signed with it
    /// (`CARELINE_EVENT_SIGNING_KEY`; see [`crate::signing`]).
    pub signer: Option<crate::EventSigner>,
    /// Every writer's public key: every event read from the feed is checked
    /// against them (`CARELINE_EVENT_PUBLIC_KEYS`); `None` checks nothing.
    pub keys: Option<crate::EventKeys>,
    /// The first position whose signature is checked
    /// (`CARELINE_EVENT_SIGNED_FROM`, default 1: every event): a log
    /// recorded before events were signed keeps its older events readable.
    pub signed_from: u64,
}

/// How this process speaks TLS to NATS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatsTls {
    /// The CA certificate (PEM) that signs the servers' certificates; the
    /// system's roots when `None`.
    pub ca: Option<PathBuf>,
    /// This process's certificate and key (PEM), for servers that verify
    /// clients.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// A NATS user name and password. Its `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsUser {
    pub name: String,
    pub password: String,
}

impl std::fmt::Debug for NatsUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NatsUser({:?}, password ***)", self.name)
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            nats_url: "nats://127.0.0.1:4222".into(),
            stream: "CARELINE".into(),
            prefix: "careline".into(),
            replicas: 1,
            duplicate_window: Duration::from_secs(10 * 60),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            ping_interval: Duration::from_secs(1),
            startup_wait: Duration::from_secs(60),
            user: None,
            tls: None,
            signer: None,
            keys: None,
            signed_from: 1,
        }
    }
}

impl StoreConfig {
    /// Reads `NATS_URL`, `CARELINE_STREAM`, `CARELINE_PREFIX`,
    /// `CARELINE_STREAM_REPLICAS`, `CARELINE_DUPLICATE_WINDOW_SECS`,
    /// `CARELINE_NATS_TIMEOUT_MS`, `CARELINE_NATS_CONNECT_TIMEOUT_MS`,
    /// `CARELINE_NATS_PING_MS`, `NATS_USER` with `NATS_PASSWORD` (both
    /// or neither) and `NATS_CA`, `NATS_CERT` with `NATS_KEY` (TLS), each
    /// falling back to its default.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_settings(&Settings::from_env())
    }

    /// As [`StoreConfig::from_env`], reading variables through `lookup`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        Self::from_settings(&Settings::new(lookup))
    }

    /// As [`StoreConfig::from_env`], from `settings`.
    pub fn from_settings(settings: &Settings) -> Result<Self, Error> {
        let defaults = Self::default();
        let bad = |e: BadSetting| Error::Config(e.0);
        let nats_url = settings.text("NATS_URL", &defaults.nats_url);
        let file = |key: &str| -> Result<Option<PathBuf>, Error> {
            match settings.get(key).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(path) if std::path::Path::new(&path).is_file() => Ok(Some(path.into())),
                Some(path) => Err(Error::Config(format!(
                    "{key}={path:?} is not a readable file"
                ))),
            }
        };
        let ca = file("NATS_CA")?;
        let client = match (file("NATS_CERT")?, file("NATS_KEY")?) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(Error::Config(
                    "set NATS_CERT and NATS_KEY together, or neither".into(),
                ));
            }
        };
        let wants_tls = nats_url
            .split(',')
            .any(|url| url.trim().starts_with("tls://"));
        let tls = (wants_tls || ca.is_some() || client.is_some()).then_some(NatsTls { ca, client });
        let config = Self {
            nats_url,
            stream: settings.text("CARELINE_STREAM", &defaults.stream),
            prefix: settings.text("CARELINE_PREFIX", &defaults.prefix),
            replicas: settings
                .number("CARELINE_STREAM_REPLICAS", defaults.replicas as u64)
                .map_err(bad)? as usize,
            duplicate_window: settings
                .secs(
                    "CARELINE_DUPLICATE_WINDOW_SECS",
                    defaults.duplicate_window.as_secs(),
                )
                .map_err(bad)?,
            request_timeout: settings
                .millis(
                    "CARELINE_NATS_TIMEOUT_MS",
                    defaults.request_timeout.as_millis() as u64,
                )
                .map_err(bad)?,
            connect_timeout: settings
                .millis(
                    "CARELINE_NATS_CONNECT_TIMEOUT_MS",
                    defaults.connect_timeout.as_millis() as u64,
                )
                .map_err(bad)?,
            ping_interval: settings
                .millis(
                    "CARELINE_NATS_PING_MS",
                    defaults.ping_interval.as_millis() as u64,
                )
                .map_err(bad)?,
            startup_wait: settings
                .secs(
                    "CARELINE_NATS_STARTUP_WAIT_SECS",
                    defaults.startup_wait.as_secs(),
                )
                .map_err(bad)?,
            user: settings
                .pair("NATS_USER", "NATS_PASSWORD")
                .map_err(bad)?
                .map(|(name, password)| NatsUser { name, password }),
            tls,
            signer: settings
                .get(crate::signing::SIGNING_KEY_VAR)
                .filter(|v| !v.trim().is_empty())
                .map(|v| crate::EventSigner::from_private_key(&v))
                .transpose()
                .map_err(Error::Config)?,
            keys: settings
                .get(crate::signing::PUBLIC_KEYS_VAR)
                .filter(|v| !v.trim().is_empty())
                .map(|v| crate::EventKeys::parse(&v))
                .transpose()
                .map_err(Error::Config)?,
            signed_from: settings
                .number("CARELINE_EVENT_SIGNED_FROM", defaults.signed_from)
                .map_err(bad)?
                .max(1),
        };
        config.validate()?;
        Ok(config)
    }

    /// The NATS servers `nats_url` names, comma separated: the client
    /// connects to one of them and fails over to the others.
    pub fn servers(&self) -> Result<Vec<async_nats::ServerAddr>, Error> {
        let servers = self
            .nats_url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(|url| {
                url.parse::<async_nats::ServerAddr>().map_err(|e| {
                    Error::Config(format!("NATS_URL: {url:?} is not a NATS server URL: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if servers.is_empty() {
            return Err(Error::Config("nats_url is empty".into()));
        }
        Ok(servers)
    }

    /// Refuses settings the log cannot run with, naming the setting.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |msg: String| Err(Error::Config(msg));
        self.servers()?;
        if self.stream.is_empty()
            || self.stream.len() > 64
            || !self
                .stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad(format!(
                "stream name {:?} must be 1 to 64 ASCII letters, digits, '-' or '_'",
                self.stream
            ));
        }
        if self.prefix.is_empty()
            || self.prefix.split('.').any(|token| {
                token.is_empty()
                    || !token
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
        {
            return bad(format!(
                "subject prefix {:?} must be dot-separated tokens of ASCII letters, digits, '-' or '_'",
                self.prefix
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            return bad(format!("replicas must be 1 to 5, got {}", self.replicas));
        }
        if self.duplicate_window < Duration::from_secs(1) {
            return bad("duplicate window must be at least one second".into());
        }
        if self.request_timeout < Duration::from_millis(10) {
            return bad("request timeout must be at least 10 ms".into());
        }
        if self.connect_timeout < Duration::from_millis(10) {
            return bad("connect timeout must be at least 10 ms".into());
        }
        if self.ping_interval < Duration::from_millis(100) {
            return bad("ping interval must be at least 100 ms".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<StoreConfig, Error> {
        StoreConfig::from_settings(&Settings::from_pairs(pairs))
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(from(&[]).unwrap(), StoreConfig::default());
    }

    #[test]
    fn a_url_list_names_every_server() {
        let config = from(&[(
            "NATS_URL",
            "nats://10.0.0.1:4222, nats://10.0.0.2:4222,nats://10.0.0.3:4222",
        )])
        .unwrap();
        let servers = config.servers().unwrap();
        assert_eq!(servers.len(), 3);
        assert_eq!(servers[1].host(), "10.0.0.2");
    }

    #[test]
    fn bad_settings_are_named() {
        let cases = [
            ("CARELINE_STREAM", "has space", "stream name"),
            ("CARELINE_STREAM", "a.b", "stream name"),
            ("CARELINE_PREFIX", "a..b", "subject prefix"),
            ("CARELINE_PREFIX", "a.*", "subject prefix"),
            ("CARELINE_STREAM_REPLICAS", "0", "replicas"),
            (
                "CARELINE_STREAM_REPLICAS",
                "three",
                "CARELINE_STREAM_REPLICAS",
            ),
            ("CARELINE_DUPLICATE_WINDOW_SECS", "0", "duplicate window"),
            ("NATS_URL", " ", "nats_url"),
            (
                "NATS_URL",
                "nats://127.0.0.1:4222, nats://host:port",
                "NATS_URL",
            ),
        ];
        for (key, value, named) in cases {
            let err = from(&[(key, value)]).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{key}={value}: {err}");
            assert!(err.to_string().contains(named), "{key}={value}: {err}");
        }
    }
}
