//! The audit service's configuration, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use event_store::{Settings, StoreConfig};

#[derive(Clone, Debug)]
pub struct Config {
    /// `CARELINE_AUDIT_ADDR`, default 127.0.0.1:50053.
    pub listen: SocketAddr,
    /// `DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/careline.
    pub database_url: String,
    pub store: StoreConfig,
    /// `CARELINE_AUDIT_WAIT_MS`: how long a query waits for its
    /// `min_position`, default 2000.
    pub wait_for_position: Duration,
    /// `CARELINE_AUDIT_BATCH`: most events per projection transaction, default 1000.
    pub batch_size: usize,
    /// `CARELINE_AUDIT_POOL`: database connections for queries, default 8.
    pub pool_size: usize,
    /// `CARELINE_AUDIT_EXPORT_STALL_SECS`: how long an export waits for a
    /// client that stopped reading before it ends the export (and frees
    /// the caller's export place), default 60.
    pub export_stall: Duration,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_settings(&Settings::from_env())
    }

    pub fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            listen: s.address("CARELINE_AUDIT_ADDR", "127.0.0.1:50053")?,
            database_url: s.database_url(),
            store: StoreConfig::from_settings(s)?,
            wait_for_position: s.millis("CARELINE_AUDIT_WAIT_MS", 2000)?,
            batch_size: s.number_in("CARELINE_AUDIT_BATCH", 1000, projections::BATCH_SIZES)?
                as usize,
            pool_size: s.number("CARELINE_AUDIT_POOL", 8)?.max(1) as usize,
            export_stall: Duration::from_secs(
                s.number("CARELINE_AUDIT_EXPORT_STALL_SECS", 60)?.max(1),
            ),
        })
    }
}
