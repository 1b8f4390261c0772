//! The inbox service's configuration: the read services' settings
//! (`CARELINE_INBOX_ADDR`, default 127.0.0.1:50052; `CARELINE_INBOX_BATCH`,
//! default 1000; `CARELINE_INBOX_POOL`, default 16; `CARELINE_INBOX_WAIT_MS`,
//! default 2000; and those of every service), and whether reads are recorded.

use careline_read_kit::{Defaults, ReadConfig, ReadSettings};
use careline_settings::Settings;

/// The inbox's name in its settings, and its defaults.
pub const DEFAULTS: Defaults = Defaults {
    name: "INBOX",
    port: 50052,
    batch: 1000,
    pool: 16,
};

#[derive(Clone, Debug)]
pub struct Config {
    pub read: ReadSettings,
    /// Whether reads are recorded in the log (always, in a deployment: there
    /// is no setting to turn it off; the benchmark turns it off in code to
    /// measure its cost).
    pub record_reads: bool,
}

impl ReadConfig for Config {
    fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            read: ReadSettings::from_settings(s, DEFAULTS)?,
            record_reads: true,
        })
    }

    fn read(&self) -> &ReadSettings {
        &self.read
    }
}
