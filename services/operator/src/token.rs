//! `careline token`.

use std::time::Duration;

use clap::Args;
use service_kit::{Caller, Role, TokenKeys};

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The person's id (a UUID); a new one when omitted.
    #[arg(long)]
    person: Option<uuid::Uuid>,
    /// patient, carer, professional, admin, operator or auditor.
    #[arg(long)]
    role: Role,
    /// The name the audit trail shows.
    #[arg(long)]
    name: String,
    /// How long the token is valid, in whole hours: at least 1 (an
    /// expired token cannot be minted here; tests that need one craft it
    /// with `TokenKeys::mint_until`).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=24 * 366))]
    hours: u64,
}

pub(crate) fn run(args: TokenArgs) -> anyhow::Result<()> {
    let keys = TokenKeys::from_env().map_err(anyhow::Error::msg)?;
    let caller = Caller {
        person_id: args.person.unwrap_or_else(uuid::Uuid::now_v7),
        role: args.role,
        name: args.name,
    };
    eprintln!(
        "careline: token for {} ({}), person {}, valid {} h",
        caller.name, caller.role, caller.person_id, args.hours
    );
    println!(
        "{}",
        keys.mint(&caller, Duration::from_secs(args.hours * 3600))
    );
    Ok(())
}
