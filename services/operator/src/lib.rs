//! The Careline operator CLI, for the people who run the system.
//!
//! * `careline status` — the event stream (settings, head position) and every
//!   projection (live generation, checkpoint, lag, any rebuild in progress).
//! * `careline rebuild <projection>` — replays the log into a new generation
//!   beside the live one, with progress, then switches readers to it.
//! * `careline tail` — events as they arrive, decoded, one line each, for
//!   people writing subscribers. Clinical content is redacted unless asked.
//! * `careline token` — a signed token for one person and role, for local
//!   use (production tokens come from the identity provider).
//! * `careline verify-files` — every file a message names is in the bucket
//!   of files, whole, and its bytes hash to its name.
//! * `careline demo` — seeds a small demo organisation through the command
//!   service and prints who is who, with tokens.
//!
//! Each command is one module; they share the configuration read from the
//! environment (see `event_store::StoreConfig::from_env`).

mod console;
mod demo;
mod display;
mod rebuild;
mod status;
mod tail;
mod token;
pub mod verify_files;

use clap::{Parser, Subcommand};

pub use display::{Describer, format_event};

/// Operate a Careline deployment.
#[derive(Debug, Parser)]
#[command(name = "careline", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the event stream (and its cluster) and every projection:
    /// checkpoints and lag; `--watch` again every few seconds.
    Status(status::StatusArgs),
    /// Rebuild a projection from the first event, beside the live one.
    Rebuild(rebuild::RebuildArgs),
    /// Print events as they arrive, decoded, one line each.
    Tail(tail::TailArgs),
    /// Mint a signed token for one person (needs CARELINE_TOKEN_SIGNING_KEY).
    Token(token::TokenArgs),
    /// Issue the credential of one of the hospital's systems, registered by
    /// an admin (needs CARELINE_SYSTEM_TOKEN_SIGNING_KEY).
    SystemToken(token::SystemTokenArgs),
    /// Generate a token signing key pair (private for the issuer, public for the services).
    Keys(token::KeysArgs),
    /// Seed the demo organisation through the command service.
    Demo(demo::DemoArgs),
    /// Check that every file a message names is in the bucket, whole and
    /// unchanged (reads each one).
    VerifyFiles,
    /// Claim the command ids and person ids of events recorded before
    /// claims existed (once, after upgrading; safe to repeat).
    BackfillClaims,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Status(args) => status::run(event_store::StoreConfig::from_env()?, args).await,
            Command::Rebuild(args) => {
                rebuild::run(event_store::StoreConfig::from_env()?, args).await
            }
            Command::Tail(args) => tail::run(event_store::StoreConfig::from_env()?, args).await,
            Command::Token(args) => token::run(args),
            Command::SystemToken(args) => token::system(args),
            Command::Keys(args) => token::keys(args),
            Command::Demo(args) => demo::run(args).await,
            Command::VerifyFiles => verify_files::run(event_store::StoreConfig::from_env()?).await,
            Command::BackfillClaims => backfill_claims(event_store::StoreConfig::from_env()?).await,
        }
    }
}

async fn backfill_claims(config: event_store::StoreConfig) -> anyhow::Result<()> {
    let store = event_store::JetStreamStore::connect(config).await?;
    let report = command_service::claims::backfill(&store, |at, head| {
        eprintln!("careline: claims backfilled up to position {at} of {head}");
    })
    .await?;
    println!(
        "{} events read, {} ids claimed for their owner (now or before)",
        report.events, report.claimed
    );
    for conflict in &report.conflicts {
        println!("REUSED  {conflict}");
    }
    if !report.conflicts.is_empty() {
        anyhow::bail!(
            "{} id(s) in the log are used by two owners: see above",
            report.conflicts.len()
        );
    }
    Ok(())
}

/// The read models' database: `DATABASE_URL`, or the local default.
pub(crate) fn database_url() -> String {
    careline_settings::Settings::from_env().database_url()
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings), each line
/// above a progress bar when one is shown, coloured only on a terminal.
pub fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(console::Logs)
        .try_init();
}
