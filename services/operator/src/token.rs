//! `careline token`.

use std::time::Duration;

use clap::Args;
use service_kit::{Caller, Role, TokenIssuer};

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
    /// with `TokenIssuer::mint_until`).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=service_kit::auth::MAX_LIFETIME.as_secs() / 3600))]
    hours: u64,
}

pub(crate) fn run(args: TokenArgs) -> anyhow::Result<()> {
    let keys = TokenIssuer::from_env().map_err(anyhow::Error::msg)?;
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

#[derive(Debug, Args)]
pub(crate) struct SystemTokenArgs {
    /// The system's id, as an admin registered it (RegisterSystem).
    #[arg(long)]
    system: uuid::Uuid,
    /// Its name, as registered (e.g. "Appointments").
    #[arg(long)]
    name: String,
    /// How long the credential is valid, in whole days (at most 90):
    /// issue the next one before it ends.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=service_kit::system_credential::SYSTEM_MAX_LIFETIME.as_secs() / 86_400))]
    days: u64,
}

/// `careline system-token`: a hospital system's credential, signed with
/// the system key (never the people's token key).
pub(crate) fn system(args: SystemTokenArgs) -> anyhow::Result<()> {
    use service_kit::system_credential::SIGNING_KEY_VAR;
    let text = std::env::var(SIGNING_KEY_VAR).map_err(|_| {
        anyhow::anyhow!("{SIGNING_KEY_VAR} is not set: issuing a system's credential needs the system key (careline keys --systems generates a pair)")
    })?;
    let issuer = TokenIssuer::from_private_key(&text)
        .map_err(|e| anyhow::anyhow!("{SIGNING_KEY_VAR}: {e}"))?;
    eprintln!(
        "careline: credential for the system {} ({}), valid {} days; give it to that system only",
        args.name, args.system, args.days
    );
    println!(
        "{}",
        issuer.mint_system(
            args.system,
            &args.name,
            Duration::from_secs(args.days * 86_400)
        )
    );
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    /// The key id tokens will name (for rotation: a new id per key).
    #[arg(long, default_value = "k1")]
    kid: String,
    /// A pair for email verification links instead (the notification
    /// service signs them, the command service checks them).
    #[arg(long)]
    email_links: bool,
    /// A pair for the hospital systems' credentials instead (the
    /// operator's CLI issues them, the command service checks them).
    #[arg(long)]
    systems: bool,
    /// A pair for signing events instead: the private key for one service
    /// (`--writer command` for the command service, `reads` for a read
    /// service), the public key for every service's list.
    #[arg(long)]
    events: bool,
    /// What an event key may sign: `command` (every event) or `reads` (the
    /// reads a read service records).
    #[arg(long, default_value = "command", requires = "events")]
    writer: String,
}

/// Prints a new key pair as the two environment lines that use it.
pub(crate) fn keys(args: KeysArgs) -> anyhow::Result<()> {
    if args.events {
        let writer = match args.writer.as_str() {
            "command" => event_store::Writer::Command,
            "reads" => event_store::Writer::Reads,
            other => anyhow::bail!("--writer {other}: command or reads"),
        };
        let key = event_store::EventSigner::generate(&args.kid).map_err(anyhow::Error::msg)?;
        eprintln!(
            "careline: new event key {:?} ({}): the private key goes to that one service only; add the public key to every service's list",
            key.kid(),
            writer.name()
        );
        println!(
            "{}={}",
            event_store::signing::SIGNING_KEY_VAR,
            key.private_key()
        );
        println!(
            "{}={}",
            event_store::signing::PUBLIC_KEYS_VAR,
            key.public_key(writer)
        );
        return Ok(());
    }
    let issuer = TokenIssuer::generate(&args.kid)?;
    if args.systems {
        eprintln!(
            "careline: new system key {:?}: the private key stays with the operator's CLI; the public key goes to the command service only",
            issuer.kid()
        );
        println!(
            "{}={}",
            service_kit::system_credential::SIGNING_KEY_VAR,
            issuer.private_key()
        );
        println!(
            "{}={}",
            service_kit::system_credential::PUBLIC_KEYS_VAR,
            issuer.public_key()
        );
        return Ok(());
    }
    if args.email_links {
        let links = service_kit::LinkIssuer::from_private_key(&issuer.private_key())?;
        eprintln!(
            "careline: new email link key {:?}: the private key goes to the notification service only; the public key to the command service",
            issuer.kid()
        );
        println!(
            "{}={}",
            service_kit::email_link::LINK_SIGNING_KEY_VAR,
            links.private_key()
        );
        println!(
            "{}={}",
            service_kit::email_link::LINK_PUBLIC_KEYS_VAR,
            links.public_key()
        );
        return Ok(());
    }
    eprintln!(
        "careline: new token key {:?}: keep the private key with the issuer only; give every service the public key",
        issuer.kid()
    );
    println!(
        "{}={}",
        service_kit::auth::SIGNING_KEY_VAR,
        issuer.private_key()
    );
    println!(
        "{}={}",
        service_kit::auth::PUBLIC_KEYS_VAR,
        issuer.public_key()
    );
    Ok(())
}
