//! `careline tail`.

use clap::Args;
use event_store::{EventStore, JetStreamStore, StoreConfig};
use futures::StreamExt;

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// Start at this position (default: only events appended from now on).
    #[arg(long)]
    from: Option<u64>,
    /// Only events of this type, e.g. ThreadStarted (repeatable).
    #[arg(long = "type")]
    types: Vec<String>,
    /// Print subject lines and message bodies instead of redacting them.
    /// Clinical content: use only where you are allowed to read it.
    #[arg(long)]
    show_content: bool,
    /// Stop after this many events.
    #[arg(long)]
    limit: Option<usize>,
}

pub(crate) async fn run(config: StoreConfig, args: TailArgs) -> anyhow::Result<()> {
    let store = JetStreamStore::connect(config).await?;
    let from = match args.from {
        Some(from) => from,
        None => store.last_position().await? + 1,
    };
    let mut feed = store.subscribe(from).await?;
    let mut printed = 0;
    while let Some(event) = feed.next().await {
        let event = event?;
        if !args.types.is_empty() && !args.types.iter().any(|t| t == event.event_type()) {
            continue;
        }
        println!("{}", crate::format_event(&event, args.show_content));
        printed += 1;
        if args.limit.is_some_and(|limit| printed >= limit) {
            break;
        }
    }
    Ok(())
}
