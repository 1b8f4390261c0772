//! The audit service's configuration: the read services' settings
//! (`CARELINE_AUDIT_ADDR`, default 127.0.0.1:50053; `CARELINE_AUDIT_BATCH`,
//! default 1000; `CARELINE_AUDIT_POOL`, default 8; `CARELINE_AUDIT_WAIT_MS`,
//! default 2000; and those of every service), how long an export waits, and
//! how often the trail is anchored in the log.

use std::time::Duration;

use careline_read_kit::{Defaults, ReadConfig, ReadSettings};
use careline_settings::Settings;

/// The audit service's name in its settings, and its defaults.
pub const DEFAULTS: Defaults = Defaults {
    name: "AUDIT",
    port: 50053,
    batch: 1000,
    pool: 8,
};

#[derive(Clone, Debug)]
pub struct Config {
    pub read: ReadSettings,
    /// `CARELINE_AUDIT_EXPORT_STALL_SECS`: how long an export waits for a
    /// client that stopped reading before it ends the export (and frees
    /// the caller's export place), default 60.
    pub export_stall: Duration,
    /// Whether reads of trails are recorded in the log (always, in a
    /// deployment: there is no setting to turn it off; a test of answers
    /// that must not change while it reads turns it off in code).
    pub record_reads: bool,
    /// `CARELINE_AUDIT_ANCHOR_SECS`: how often the heads of the chains that
    /// changed are anchored in the log, default 30 (`Verify` alone catches
    /// a database owner's rewrite of anything older). Always set in a
    /// deployment; a test of answers that must not change turns it off.
    pub anchor_every: Option<Duration>,
}

impl ReadConfig for Config {
    fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            read: ReadSettings::from_settings(s, DEFAULTS)?,
            export_stall: Duration::from_secs(
                s.number("CARELINE_AUDIT_EXPORT_STALL_SECS", 60)?.max(1),
            ),
            record_reads: true,
            anchor_every: Some(Duration::from_secs(
                s.number("CARELINE_AUDIT_ANCHOR_SECS", 30)?.max(1),
            )),
        })
    }

    fn read(&self) -> &ReadSettings {
        &self.read
    }
}
