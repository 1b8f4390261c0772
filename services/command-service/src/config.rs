//! The command service's configuration, from the environment.

use std::net::SocketAddr;

use careline_settings::Settings;
use event_store::StoreConfig;
use service_kit::{TokenIssuer, TokenKeys};

use crate::grpc::sign_in::SignInSettings;
use service_kit::server::{ServerTls, TLS_CERT_VAR, TLS_KEY_VAR};

#[derive(Clone, Debug)]
pub struct Config {
    /// `CARELINE_COMMAND_ADDR`, default 127.0.0.1:50051.
    pub listen: SocketAddr,
    pub store: StoreConfig,
    /// `CARELINE_COMMAND_CACHE`: aggregates kept in memory, default 100,000.
    pub cache_capacity: u64,
    /// `CARELINE_POSTS_PER_MINUTE`: messages one person may post a minute
    /// (on one instance), default 60; 0 for no limit.
    pub posts_per_minute: usize,
    /// `CARELINE_TOKEN_PUBLIC_KEYS`: the keys every call's token is checked with.
    pub keys: TokenKeys,
    /// `CARELINE_TLS_CERT` and `CARELINE_TLS_KEY`, or plaintext.
    pub tls: Option<ServerTls>,
    /// `CARELINE_EMAIL_LINK_PUBLIC_KEYS`: the notification service's link
    /// keys, which check verification links; without them no address can
    /// be verified.
    pub email_links: Option<service_kit::LinkKeys>,
    /// Signing people in: the token key, the identity provider, the demo
    /// switch and the tokens' lifetime (see [`SignInSettings`]).
    pub sign_in: SignInSettings,
    /// `CARELINE_TOKEN_PUBLIC_KEYS` as written: account tokens are checked
    /// with the same keys as every call's.
    pub public_keys: String,
    /// `CARELINE_COMMAND_METRICS_ADDR`: where metrics, `/livez` and
    /// `/readyz` are served; unset, nowhere.
    pub metrics: Option<SocketAddr>,
    /// `CARELINE_MAX_FILE_BYTES`: the largest file one may send, default
    /// 100 MB (104857600).
    pub max_file_bytes: u64,
    /// `CARELINE_SYSTEM_TOKEN_PUBLIC_KEYS`: the keys the hospital systems'
    /// credentials are checked with; unset, no system posts notices.
    pub systems: Option<service_kit::system_credential::SystemKeys>,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_settings(&Settings::from_env())
    }

    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let key_var = service_kit::auth::SIGNING_KEY_VAR;
        let issuer = settings
            .get(key_var)
            .filter(|v| !v.trim().is_empty())
            .map(|key| {
                TokenIssuer::from_private_key(&key).map_err(|e| anyhow::anyhow!("{key_var}: {e}"))
            })
            .transpose()?;
        let provider = match settings
            .get("CARELINE_OIDC_ISSUER")
            .filter(|v| !v.trim().is_empty())
        {
            None => None,
            Some(url) => {
                let client = settings
                    .get("CARELINE_OIDC_CLIENT_ID")
                    .filter(|v| !v.trim().is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "CARELINE_OIDC_CLIENT_ID is not set, and CARELINE_OIDC_ISSUER is"
                        )
                    })?;
                Some((url.trim().to_string(), client.trim().to_string()))
            }
        };
        let demo = match settings.text("CARELINE_DEMO_SIGN_IN", "off").trim() {
            "on" => true,
            "off" | "" => false,
            other => anyhow::bail!("CARELINE_DEMO_SIGN_IN: {other:?}: say on or off"),
        };
        let hours = settings.number_in("CARELINE_SIGN_IN_HOURS", 12, 1..=7 * 24)?;
        Ok(Self {
            sign_in: SignInSettings {
                issuer,
                provider,
                demo,
                lifetime: std::time::Duration::from_secs(hours * 3600),
            },
            public_keys: settings
                .get(service_kit::auth::PUBLIC_KEYS_VAR)
                .unwrap_or_default(),
            listen: settings.address("CARELINE_COMMAND_ADDR", "127.0.0.1:50051")?,
            metrics: settings.optional_address("CARELINE_COMMAND_METRICS_ADDR")?,
            store: StoreConfig::from_settings(settings)?,
            cache_capacity: settings.number("CARELINE_COMMAND_CACHE", 100_000)?,
            max_file_bytes: settings.number_in(
                "CARELINE_MAX_FILE_BYTES",
                service_kit::media::DEFAULT_MAX_FILE_BYTES,
                1..=4 * 1024 * 1024 * 1024,
            )?,
            posts_per_minute: settings.number("CARELINE_POSTS_PER_MINUTE", 60)? as usize,
            keys: TokenKeys::from_setting(settings.get(service_kit::auth::PUBLIC_KEYS_VAR))
                .map_err(anyhow::Error::msg)?,
            tls: ServerTls::from_setting(settings.pair(TLS_CERT_VAR, TLS_KEY_VAR)?)
                .map_err(anyhow::Error::msg)?,
            systems: service_kit::system_credential::SystemKeys::from_setting(
                settings.get(service_kit::system_credential::PUBLIC_KEYS_VAR),
            )
            .map_err(anyhow::Error::msg)?,
            email_links: service_kit::LinkKeys::from_setting(
                settings.get(service_kit::email_link::LINK_PUBLIC_KEYS_VAR),
            )
            .map_err(anyhow::Error::msg)?,
        })
    }
}
