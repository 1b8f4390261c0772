//! The command service's configuration, from the environment.

use std::net::SocketAddr;

use event_store::StoreConfig;

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
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let listen =
            std::env::var("CARELINE_COMMAND_ADDR").unwrap_or_else(|_| "127.0.0.1:50051".into());
        let listen = listen.parse().map_err(|_| {
            anyhow::anyhow!(
                "CARELINE_COMMAND_ADDR={listen:?} is not an address like 127.0.0.1:50051"
            )
        })?;
        let cache_capacity = match std::env::var("CARELINE_COMMAND_CACHE") {
            Ok(v) => v.parse().map_err(|_| {
                anyhow::anyhow!("CARELINE_COMMAND_CACHE={v:?} is not a whole number")
            })?,
            Err(_) => 100_000,
        };
        let posts_per_minute = match std::env::var("CARELINE_POSTS_PER_MINUTE") {
            Ok(v) => v.parse().map_err(|_| {
                anyhow::anyhow!("CARELINE_POSTS_PER_MINUTE={v:?} is not a whole number")
            })?,
            Err(_) => 60,
        };
        Ok(Self {
            listen,
            store: StoreConfig::from_env()?,
            cache_capacity,
            posts_per_minute,
        })
    }
}
