//! The audit service's configuration, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use event_store::StoreConfig;
use service_kit::env;

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
        let listen =
            std::env::var("CARELINE_AUDIT_ADDR").unwrap_or_else(|_| "127.0.0.1:50053".into());
        let listen = listen.parse().map_err(|_| {
            anyhow::anyhow!("CARELINE_AUDIT_ADDR={listen:?} is not an address like 127.0.0.1:50053")
        })?;
        let batch_size = env::number("CARELINE_AUDIT_BATCH", 1000)? as usize;
        if !(1..=50_000).contains(&batch_size) {
            anyhow::bail!("CARELINE_AUDIT_BATCH must be 1 to 50000");
        }
        Ok(Self {
            listen,
            database_url: env::database_url(),
            store: StoreConfig::from_env()?,
            wait_for_position: Duration::from_millis(env::number("CARELINE_AUDIT_WAIT_MS", 2000)?),
            batch_size,
            pool_size: env::number("CARELINE_AUDIT_POOL", 8)?.max(1) as usize,
            export_stall: Duration::from_secs(
                env::number("CARELINE_AUDIT_EXPORT_STALL_SECS", 60)?.max(1),
            ),
        })
    }
}
