//! `careline verify-files`: every file a message names is in the bucket,
//! whole, and its bytes are what its name (their SHA-256) says.

use std::collections::BTreeMap;

use event_store::{EventStore, FileStore, JetStreamStore, StoreConfig};
use futures::StreamExt as _;
use proto::events::envelope::Payload;

/// What the check found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Files named by messages, each counted once.
    pub referenced: usize,
    /// Their bytes, read and checked.
    pub bytes: u64,
    /// Files in the bucket no message names (uploaded, never sent).
    pub unsent: usize,
    /// Each problem: the digest, and what is wrong.
    pub problems: Vec<(String, String)>,
}

/// Reads the log to its head for every file a message names, then reads
/// each one whole from the bucket and checks it.
pub async fn verify(store: &JetStreamStore) -> anyhow::Result<Report> {
    let files = FileStore::open(store).await?;
    let head = store.last_position().await?;
    // Each file, the first thread that names it, and the size it was sent at.
    let mut named: BTreeMap<String, (String, u64)> = BTreeMap::new();
    if head > 0 {
        let mut feed = store.subscribe(0).await?;
        while let Some(event) = feed.next().await {
            let event = match event {
                Ok(event) => event,
                // Set aside by every reader: not this check's to judge.
                Err(event_store::Error::Undecodable { .. } | event_store::Error::Forged { .. }) => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let attachments = match &event.envelope.payload {
                Some(Payload::ThreadStarted(e)) => e.attachments.as_slice(),
                Some(Payload::MessagePosted(e)) => e.attachments.as_slice(),
                _ => &[],
            };
            for a in attachments {
                named
                    .entry(a.digest.clone())
                    .or_insert_with(|| (event.envelope.aggregate_id.clone(), a.size));
            }
            if event.position >= head {
                break;
            }
        }
    }
    let mut report = Report {
        referenced: named.len(),
        ..Report::default()
    };
    for (digest, (thread, size)) in &named {
        let Some((stored, mut reader)) = files.read(digest).await? else {
            report
                .problems
                .push((digest.clone(), format!("MISSING (sent on thread {thread})")));
            continue;
        };
        // The reader checks that the bytes hash to the file's name.
        let mut read = 0u64;
        let whole = loop {
            match reader.next_chunk().await {
                Ok(Some(chunk)) => read += chunk.len() as u64,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        report.bytes += read;
        let wrong = match whole {
            Err(e) => Some(format!("cannot be read whole: {e}")),
            Ok(()) if read != *size || read != stored.size => Some(format!(
                "{read} bytes, sent as {size}, described as {}",
                stored.size
            )),
            Ok(()) => None,
        };
        if let Some(wrong) = wrong {
            report.problems.push((
                digest.clone(),
                format!("DAMAGED (thread {thread}): {wrong}"),
            ));
        }
    }
    let (stored, _) = files.list().await?;
    report.unsent = stored.iter().filter(|d| !named.contains_key(*d)).count();
    Ok(report)
}

pub(crate) async fn run(config: StoreConfig) -> anyhow::Result<()> {
    let store = JetStreamStore::connect(config).await?;
    let report = verify(&store).await?;
    for (digest, what) in &report.problems {
        println!("{digest}  {what}");
    }
    println!(
        "{} file(s) named by messages, {} bytes read and checked; {} problem(s); {} uploaded but never sent",
        report.referenced,
        report.bytes,
        report.problems.len(),
        report.unsent
    );
    if !report.problems.is_empty() {
        anyhow::bail!(
            "{} file(s) missing or damaged: see above",
            report.problems.len()
        );
    }
    Ok(())
}
