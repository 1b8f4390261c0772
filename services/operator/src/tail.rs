//! `careline tail`.

use clap::Args;
use event_store::{EventStore, JetStreamStore, StoreConfig};
use futures::StreamExt;

use crate::display::{Describer, set_aside_json, set_aside_line};

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// Start at this position (default: only events appended from now on).
    #[arg(long)]
    from: Option<u64>,
    /// Only events of this type, e.g. ThreadStarted (repeatable).
    #[arg(long = "type")]
    types: Vec<String>,
    /// Add subject lines and message bodies. Clinical content: use only
    /// where you are allowed to read it.
    #[arg(long)]
    show_content: bool,
    /// One JSON object per line, for machines.
    #[arg(long)]
    json: bool,
    /// Stop after this many events.
    #[arg(long)]
    limit: Option<usize>,
}

/// The types asked for, each checked against the contract.
fn known_types(asked: &[String]) -> anyhow::Result<()> {
    let known: Vec<String> = proto::contract::event_types()
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    for t in asked {
        if !known.iter().any(|k| k == t) {
            anyhow::bail!(
                "--type {t}: no such event type; one of: {}",
                known.join(", ")
            );
        }
    }
    Ok(())
}

/// The line of a position set aside, `what` saying why; none when only
/// some types are asked for.
fn set_aside(args: &TailArgs, position: u64, what: &str) -> Option<String> {
    if !args.types.is_empty() {
        return None;
    }
    Some(if args.json {
        set_aside_json(position, what)
    } else {
        set_aside_line(position, what)
    })
}

pub(crate) async fn run(config: StoreConfig, args: TailArgs) -> anyhow::Result<()> {
    known_types(&args.types)?;
    let store = JetStreamStore::connect(config).await?;
    let head = store.last_position().await?;
    let from = match args.from {
        Some(0) => anyhow::bail!("--from 0: positions start at 1"),
        Some(from) if from > head + 1 => anyhow::bail!(
            "--from {from} is past the end of the log (its last position is {head}): \
             use --from {} or leave --from out to follow new events",
            head + 1
        ),
        Some(from) => from,
        None => head + 1,
    };
    if from > head {
        eprintln!("careline: following new events after position {head}");
    }
    let mut feed = store.subscribe(from).await?;
    let mut describer = Describer::default();
    let mut printed = 0;
    while let Some(event) = feed.next().await {
        let line = match event {
            Ok(event) => {
                if !args.types.is_empty() && !args.types.iter().any(|t| t == event.event_type()) {
                    continue;
                }
                if args.json {
                    describer.json(&event, args.show_content)
                } else {
                    describer.line(&event, args.show_content)
                }
            }
            // Bytes that are not an event, or an event its subject may not
            // carry (forged): marked, and the tail goes on.
            Err(event_store::Error::Undecodable {
                position, reason, ..
            }) => match set_aside(
                &args,
                position,
                &format!("not an event this version can read ({reason})"),
            ) {
                Some(line) => line,
                None => continue,
            },
            Err(event_store::Error::Forged {
                position,
                subject,
                event_type,
                reason,
                ..
            }) => match set_aside(
                &args,
                position,
                &format!("FORGED {event_type} on {subject}: {reason}"),
            ) {
                Some(line) => line,
                None => continue,
            },
            Err(e) => return Err(e.into()),
        };
        println!("{line}");
        printed += 1;
        if args.limit.is_some_and(|limit| printed >= limit) {
            break;
        }
    }
    Ok(())
}
