//! The inbox service's configuration, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use event_store::{Settings, StoreConfig};

#[derive(Clone, Debug)]
pub struct Config {
    /// `CARELINE_INBOX_ADDR`, default 127.0.0.1:50052.
    pub listen: SocketAddr,
    /// `DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/careline.
    pub database_url: String,
    pub store: StoreConfig,
    /// `CARELINE_INBOX_WAIT_MS`: how long a query waits for its
    /// `min_position`, default 2000.
    pub wait_for_position: Duration,
    /// `CARELINE_INBOX_BATCH`: most events per projection transaction, default 1000.
    pub batch_size: usize,
    /// `CARELINE_INBOX_POOL`: database connections for queries, default 16.
    pub pool_size: usize,
    /// Whether reads are recorded in the log (always, in a deployment: there
    /// is no setting to turn it off; the benchmark turns it off in code to
    /// measure its cost).
    pub record_reads: bool,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_settings(&Settings::from_env())
    }

    pub fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            listen: s.address("CARELINE_INBOX_ADDR", "127.0.0.1:50052")?,
            database_url: s.database_url(),
            store: StoreConfig::from_settings(s)?,
            wait_for_position: s.millis("CARELINE_INBOX_WAIT_MS", 2000)?,
            batch_size: s.number_in("CARELINE_INBOX_BATCH", 1000, projections::BATCH_SIZES)?
                as usize,
            pool_size: s.number("CARELINE_INBOX_POOL", 16)?.max(1) as usize,
            record_reads: true,
        })
    }
}
