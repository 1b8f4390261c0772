//! The inbox service's configuration, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use event_store::StoreConfig;
use service_kit::env;

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
        let listen =
            std::env::var("CARELINE_INBOX_ADDR").unwrap_or_else(|_| "127.0.0.1:50052".into());
        let listen = listen.parse().map_err(|_| {
            anyhow::anyhow!("CARELINE_INBOX_ADDR={listen:?} is not an address like 127.0.0.1:50052")
        })?;
        let batch_size = env::number("CARELINE_INBOX_BATCH", 1000)? as usize;
        if !(1..=50_000).contains(&batch_size) {
            anyhow::bail!("CARELINE_INBOX_BATCH must be 1 to 50000");
        }
        Ok(Self {
            listen,
            database_url: env::database_url(),
            store: StoreConfig::from_env()?,
            wait_for_position: Duration::from_millis(env::number("CARELINE_INBOX_WAIT_MS", 2000)?),
            batch_size,
            pool_size: env::number("CARELINE_INBOX_POOL", 16)?.max(1) as usize,
            record_reads: true,
        })
    }
}
