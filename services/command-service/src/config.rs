//! The command service's configuration, from the environment.

use std::net::SocketAddr;

use event_store::{Settings, StoreConfig};
use service_kit::TokenKeys;
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
    /// `CARELINE_COMMAND_METRICS_ADDR`: where metrics, `/livez` and
    /// `/readyz` are served; unset, nowhere.
    pub metrics: Option<SocketAddr>,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_settings(&Settings::from_env())
    }

    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            listen: settings.address("CARELINE_COMMAND_ADDR", "127.0.0.1:50051")?,
            metrics: settings.optional_address("CARELINE_COMMAND_METRICS_ADDR")?,
            store: StoreConfig::from_settings(settings)?,
            cache_capacity: settings.number("CARELINE_COMMAND_CACHE", 100_000)?,
            posts_per_minute: settings.number("CARELINE_POSTS_PER_MINUTE", 60)? as usize,
            keys: TokenKeys::from_setting(settings.get(service_kit::auth::PUBLIC_KEYS_VAR))
                .map_err(anyhow::Error::msg)?,
            tls: ServerTls::from_setting(settings.pair(TLS_CERT_VAR, TLS_KEY_VAR)?)
                .map_err(anyhow::Error::msg)?,
            email_links: service_kit::LinkKeys::from_setting(
                settings.get(service_kit::email_link::LINK_PUBLIC_KEYS_VAR),
            )
            .map_err(anyhow::Error::msg)?,
        })
    }
}
