//! `careline tail`.

use careline_client::bearer::Bearer;
use clap::Args;
use event_store::{EventStore, JetStreamStore, RecordedEvent, StoreConfig};
use futures::StreamExt;
use proto::inbox::inbox_service_client::InboxServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::display::{Describer, set_aside_json, set_aside_line};

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// Start at this position (default: only events appended from now on).
    #[arg(long)]
    from: Option<u64>,
    /// Only events of this type, e.g. ThreadStarted (repeatable).
    #[arg(long = "type")]
    types: Vec<String>,
    /// Add subject lines and message bodies: clinical content, shown only
    /// where the person whose token is in CARELINE_TOKEN may read the
    /// conversation (asked of the inbox service at CARELINE_INBOX_URL,
    /// which records the read in the patient's trail).
    #[arg(long)]
    show_content: bool,
    /// One JSON object per line, for machines.
    #[arg(long)]
    json: bool,
    /// Stop after this many events.
    #[arg(long)]
    limit: Option<usize>,
}

/// Where `--show-content` asks whether content may be shown: the inbox
/// service, as the person whose token is given. The log itself is readable
/// by the NATS `reader` user, so the CLI could print every body; it prints
/// one only after the inbox service has checked that this person may read
/// the conversation and recorded the read (a `GetThread`, in the patient's
/// "who has looked at my record"), as the web does for a page.
struct ContentGate {
    inbox: InboxServiceClient<InterceptedService<Channel, Bearer>>,
}

impl ContentGate {
    async fn from_env() -> anyhow::Result<Self> {
        let token = std::env::var("CARELINE_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--show-content prints clinical content: set CARELINE_TOKEN to the token of \
                     the person reading it; the inbox service checks for each conversation that \
                     they may read it, and records the read"
                )
            })?;
        let url = std::env::var("CARELINE_INBOX_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| "http://127.0.0.1:50052".into());
        let channel = service_kit::server::connect(&url)
            .await
            .map_err(|e| anyhow::anyhow!("the inbox service ({url}): {e}"))?;
        let bearer = Bearer::new(token.trim()).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        Ok(Self {
            inbox: InboxServiceClient::with_interceptor(channel, bearer),
        })
    }

    /// Whether `event`'s content may be shown; why not, otherwise.
    async fn may_show(&mut self, event: &RecordedEvent) -> Result<(), String> {
        let asked = self
            .inbox
            .get_thread(proto::inbox::GetThreadRequest {
                min_position: event.position,
                thread_id: event.envelope.aggregate_id.clone(),
                page_size: 1,
                before_seq: 0,
            })
            .await;
        match asked {
            Ok(_) => Ok(()),
            Err(status) => Err(format!(
                "content not shown: {} ({:?})",
                status.message(),
                status.code()
            )),
        }
    }
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
    let mut gate = match args.show_content {
        true => Some(ContentGate::from_env().await?),
        false => None,
    };
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
                let shown = match gate.as_mut() {
                    Some(gate) if Describer::has_content(&event) => gate.may_show(&event).await,
                    _ => Err(String::new()),
                };
                match (args.json, shown) {
                    (true, Ok(())) => describer.json(&event, true),
                    (false, Ok(())) => describer.line(&event, true),
                    (true, Err(why)) => describer.json_refused(&event, &why),
                    (false, Err(why)) if why.is_empty() => describer.line(&event, false),
                    (false, Err(why)) => format!("{} | {why}", describer.line(&event, false)),
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
