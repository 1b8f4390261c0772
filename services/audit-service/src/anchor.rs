//! Anchors: the heads of the trail's chains, recorded in the log.
//!
//! The trail's chains live in PostgreSQL, where a database owner could
//! delete an entry and recompute every hash after it; the chain alone would
//! then look intact. So every [`Config::anchor_every`](crate::Config) the
//! service records in the log (which no database owner can rewrite, signed
//! with its key) the last entry of every chain that gained entries since
//! the last anchor (`AuditAnchored`). `Verify` checks the stored chains
//! against every anchor: an entry changed, removed or inserted at or before
//! an anchored head changes that head's hash, or its place. What was
//! written after the last anchor is checked by the chain alone until the
//! next one.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use event_store::{ANY_VERSION, AggregateRef, EventStore};
use proto::contract::ANCHOR_ID;
use proto::events::envelope::Payload;
use proto::events::{Actor, AggregateType, AuditAnchored, ChainHead, Envelope, Role};
use tokio::sync::watch;

use crate::chain::{Entry, Finding};

/// Heads in one anchor event at most: a part stays far below the log's
/// message size limit.
pub const HEADS_PER_PART: usize = 2000;

/// Every chain's last entry in `(after, through]`, by chain.
const CHANGED_HEADS: &str = "SELECT DISTINCT ON (chain) chain, seq, hash FROM entries \
     WHERE position > $1 AND position <= $2 ORDER BY chain, seq DESC";

fn anchors() -> AggregateRef {
    AggregateRef::new(AggregateType::Access, ANCHOR_ID).expect("the anchor id is a subject token")
}

/// Anchors the trail every `every` until `stopping`.
pub async fn run<S: EventStore>(
    store: S,
    pool: deadpool_postgres::Pool,
    every: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let mut since = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopping.changed() => return,
        }
        if *stopping.borrow() {
            return;
        }
        let after = match since {
            Some(after) => after,
            None => match resume_after(&store).await {
                Ok(after) => after,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the last anchor; retrying");
                    continue;
                }
            },
        };
        match anchor_once(&store, &pool, after).await {
            Ok(through) => since = Some(through),
            Err(e) => {
                since = Some(after);
                tracing::warn!(error = %e, "the trail could not be anchored; retrying");
            }
        }
    }
}

/// Where the next anchor starts: the position the last complete anchor
/// covers (an anchor cut short by a stop is made again from where it
/// started), 0 when there is none.
pub async fn resume_after<S: EventStore>(store: &S) -> Result<u64, event_store::Error> {
    let last = store.version(&anchors()).await?;
    if last == 0 {
        return Ok(0);
    }
    let events = store.load(&anchors(), last - 1).await?;
    Ok(
        match events.last().and_then(|e| e.envelope.payload.as_ref()) {
            Some(Payload::AuditAnchored(a)) if a.part >= a.parts => a.position,
            Some(Payload::AuditAnchored(a)) => a.since,
            // A forged last anchor: anchor everything again.
            _ => 0,
        },
    )
}

/// Records the heads of every chain that gained entries after `after`, up
/// to where the trail has reached; answers that position.
pub async fn anchor_once<S: EventStore>(
    store: &S,
    pool: &deadpool_postgres::Pool,
    after: u64,
) -> anyhow::Result<u64> {
    let mut client = pool.get().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    // As in Verify: the checkpoint and the entries from one generation.
    tx.batch_execute("LOCK TABLE entries IN ACCESS SHARE MODE")
        .await?;
    let through = projections::live_checkpoint(&*tx, "audit").await?;
    if through <= after {
        return Ok(after);
    }
    let rows = tx
        .query(CHANGED_HEADS, &[&(after as i64), &(through as i64)])
        .await?;
    tx.commit().await?;
    drop(client);
    let heads: Vec<ChainHead> = rows
        .iter()
        .map(|r| ChainHead {
            chain: r.get(0),
            seq: r.get::<_, i64>(1) as u64,
            hash: r.get(2),
        })
        .collect();
    let parts = heads.len().div_ceil(HEADS_PER_PART) as u32;
    for (i, part) in heads.chunks(HEADS_PER_PART).enumerate() {
        let payload = Payload::AuditAnchored(AuditAnchored {
            position: through,
            heads: part.to_vec(),
            part: i as u32 + 1,
            parts,
            since: after,
        });
        let actor = Actor {
            person_id: ANCHOR_ID.into(),
            role: Role::System as i32,
            display_name: "Careline audit trail".into(),
            ..Actor::default()
        };
        let envelope = Envelope {
            event_id: uuid::Uuid::now_v7().to_string(),
            ..proto::contract::envelope(payload, ANCHOR_ID, actor, SystemTime::now())
        };
        store.append(&envelope, ANY_VERSION).await?;
    }
    if !heads.is_empty() {
        tracing::info!(through, chains = heads.len(), "trail anchored in the log");
    }
    Ok(through)
}

/// One anchor as read back from the log.
#[derive(Clone, Debug)]
pub struct Anchor {
    /// Where the anchor stands in the log.
    pub at: u64,
    pub recorded: Option<prost_types::Timestamp>,
    pub anchored: AuditAnchored,
}

/// Every anchor in the log, and the positions of what stands on the
/// anchors' subject but is no anchor (forged or junk: set aside).
#[derive(Clone, Debug, Default)]
pub struct Anchors {
    pub anchors: Vec<Anchor>,
    pub set_aside: Vec<u64>,
}

pub async fn load<S: EventStore>(store: &S) -> Result<Anchors, event_store::Error> {
    let mut out = Anchors::default();
    for event in store.load(&anchors(), 0).await? {
        match event.envelope.payload {
            Some(Payload::AuditAnchored(anchored)) => out.anchors.push(Anchor {
                at: event.position,
                recorded: event.envelope.occurred_at,
                anchored,
            }),
            _ => out.set_aside.push(event.position),
        }
    }
    Ok(out)
}

/// What checking against the anchors found besides findings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// The last anchor checked: the position it covers, and when.
    pub position: u64,
    pub recorded: Option<prost_types::Timestamp>,
    pub anchors: u64,
    /// Stored entries after the last anchor (checked by the chain alone).
    pub unanchored: u64,
}

fn when(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "an unknown time".into())
}

/// Checks `stored` (each chain's entries in order; all of them, or the one
/// `chain`) against every anchor covering no more than `through` (the
/// position the stored trail reflects). At most one finding per chain.
pub fn check(
    stored: &[(String, Vec<Entry>)],
    anchors: &Anchors,
    through: u64,
    chain: Option<&str>,
    findings: &mut Vec<Finding>,
) -> Summary {
    let by_chain: HashMap<&str, &[Entry]> = stored
        .iter()
        .map(|(name, entries)| (name.as_str(), entries.as_slice()))
        .collect();
    let mut summary = Summary::default();
    let mut reported: HashSet<String> = HashSet::new();
    let mut anchored: HashSet<&str> = HashSet::new();
    for at in &anchors.set_aside {
        findings.push(Finding {
            chain: "anchors".into(),
            seq: 0,
            problem: format!(
                "the event at position {at} on the anchors' subject is no anchor a Careline service wrote (forged or unreadable): set aside"
            ),
        });
    }
    for anchor in &anchors.anchors {
        let a = &anchor.anchored;
        if a.position > through {
            continue;
        }
        summary.anchors += 1;
        if a.position >= summary.position {
            summary.position = a.position;
            summary.recorded = anchor.recorded;
        }
        for head in &a.heads {
            if chain.is_some_and(|c| c != head.chain) {
                continue;
            }
            anchored.insert(head.chain.as_str());
            if reported.contains(&head.chain) {
                continue;
            }
            let problem = match by_chain.get(head.chain.as_str()) {
                None => Some(format!(
                    "the chain is missing from the trail, but was anchored in the log with {} entries on {} (position {})",
                    head.seq,
                    when(&anchor.recorded),
                    a.position
                )),
                Some(entries) => head_problem(entries, head, a.position, &anchor.recorded),
            };
            if let Some(problem) = problem {
                reported.insert(head.chain.clone());
                findings.push(Finding {
                    chain: head.chain.clone(),
                    seq: head.seq,
                    problem,
                });
            }
        }
    }
    for (name, entries) in stored {
        let old = entries
            .iter()
            .filter(|e| e.draft.position <= summary.position)
            .count();
        summary.unanchored += (entries.len() - old) as u64;
        if old > 0 && !anchored.contains(name.as_str()) && !reported.contains(name) {
            findings.push(Finding {
                chain: name.clone(),
                seq: 1,
                problem: format!(
                    "the chain has {old} entries from before the last anchor (position {}) but was never anchored in the log: it was inserted",
                    summary.position
                ),
            });
        }
    }
    summary
}

/// Whether the stored chain has `head` where the anchor says: the entry of
/// that place with that hash, and no entry after it from before the anchor.
fn head_problem(
    entries: &[Entry],
    head: &ChainHead,
    position: u64,
    recorded: &Option<prost_types::Timestamp>,
) -> Option<String> {
    let at = entries.iter().position(|e| e.seq == head.seq);
    let Some(i) = at else {
        return Some(format!(
            "entry {} was anchored in the log on {} (position {position}) but is not in the trail: entries were removed",
            head.seq,
            when(recorded)
        ));
    };
    if entries[i].hash != head.hash {
        return Some(format!(
            "entry {} is not the one anchored in the log on {} (position {position}): it, or an entry before it, was changed, removed or inserted",
            head.seq,
            when(recorded)
        ));
    }
    if let Some(next) = entries.get(i + 1)
        && next.draft.position <= position
    {
        return Some(format!(
            "entry {} claims position {}, before the anchor at {position} that ended the chain at entry {}: it was inserted",
            next.seq, next.draft.position, head.seq
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain;
    use crate::describe::{Draft, Kind};

    fn draft(chain: &str, position: u64) -> Draft {
        Draft {
            chain: chain.into(),
            position,
            event_id: format!("e{position}"),
            event_type: "MessagePosted".into(),
            kind: Kind::Action,
            occurred_at: position as i64,
            actor_id: "n".into(),
            actor_name: "Nurse".into(),
            role: "professional".into(),
            on_behalf_of: String::new(),
            action: format!("did {position}"),
            patient_id: chain.trim_start_matches("patient/").into(),
            thread_id: String::new(),
            call: String::new(),
        }
    }

    fn build(chain: &str, positions: &[u64]) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for p in positions {
            let last = out.last().map(|e| (e.seq, e.hash.clone()));
            out.push(chain::link(draft(chain, *p), last.as_ref()));
        }
        out
    }

    fn anchor_of(stored: &[(String, Vec<Entry>)], position: u64, at: u64) -> Anchor {
        let heads = stored
            .iter()
            .filter_map(|(name, entries)| {
                let e = entries
                    .iter()
                    .rev()
                    .find(|e| e.draft.position <= position)?;
                Some(ChainHead {
                    chain: name.clone(),
                    seq: e.seq,
                    hash: e.hash.clone(),
                })
            })
            .collect();
        Anchor {
            at,
            recorded: None,
            anchored: AuditAnchored {
                position,
                heads,
                part: 1,
                parts: 1,
                since: 0,
            },
        }
    }

    fn run(stored: &[(String, Vec<Entry>)], anchors: &Anchors) -> (Vec<Finding>, Summary) {
        let mut findings = Vec::new();
        let summary = check(stored, anchors, 100, None, &mut findings);
        (findings, summary)
    }

    fn world() -> Vec<(String, Vec<Entry>)> {
        vec![
            ("patient/a".into(), build("patient/a", &[1, 3, 5, 7, 9])),
            ("patient/b".into(), build("patient/b", &[2, 4, 6])),
        ]
    }

    #[test]
    fn an_untouched_trail_passes_and_counts_what_is_not_yet_anchored() {
        let stored = world();
        let anchors = Anchors {
            anchors: vec![anchor_of(&stored, 6, 50)],
            set_aside: vec![],
        };
        let (findings, summary) = run(&stored, &anchors);
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(summary.position, 6);
        assert_eq!(summary.anchors, 1);
        assert_eq!(summary.unanchored, 2);
    }

    #[test]
    fn a_rechained_deletion_is_caught() {
        let stored = world();
        let anchors = Anchors {
            anchors: vec![anchor_of(&stored, 9, 50)],
            set_aside: vec![],
        };
        // Entry at position 3 removed and the chain recomputed: each entry
        // links to the one before, and the chain alone is intact.
        let rewritten = vec![
            ("patient/a".into(), build("patient/a", &[1, 5, 7, 9])),
            stored[1].clone(),
        ];
        let mut alone = Vec::new();
        chain::check("patient/a", &rewritten[0].1, &mut alone);
        assert!(alone.is_empty());
        let (findings, _) = run(&rewritten, &anchors);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].chain, "patient/a");
        assert!(
            findings[0].problem.contains("not in the trail"),
            "{findings:?}"
        );
    }

    #[test]
    fn changes_insertions_and_whole_chains_are_caught() {
        let stored = world();
        let anchors = Anchors {
            anchors: vec![anchor_of(&stored, 9, 50)],
            set_aside: vec![51],
        };
        // Changed and rechained: same places, other hashes.
        let mut changed = stored.clone();
        let mut d = draft("patient/b", 4);
        d.action = "nothing happened".into();
        let first = changed[1].1[0].clone();
        let second = chain::link(d, Some(&(first.seq, first.hash.clone())));
        let third = chain::link(
            changed[1].1[2].draft.clone(),
            Some(&(second.seq, second.hash.clone())),
        );
        changed[1].1 = vec![first, second, third];
        // An inserted chain, dated before the anchor.
        changed.push(("patient/c".into(), build("patient/c", &[8])));
        let (findings, _) = run(&changed, &anchors);
        let chains: Vec<&str> = findings.iter().map(|f| f.chain.as_str()).collect();
        assert_eq!(
            chains,
            ["anchors", "patient/b", "patient/c"],
            "{findings:?}"
        );
        // A chain removed altogether.
        let (findings, _) = run(&stored[..1], &anchors);
        assert!(
            findings
                .iter()
                .any(|f| f.chain == "patient/b" && f.problem.contains("missing"))
        );
        // An entry inserted after the head, dated before the anchor.
        let inserted = vec![
            stored[0].clone(),
            ("patient/b".into(), build("patient/b", &[2, 4, 6, 8])),
        ];
        let anchors = Anchors {
            anchors: anchors.anchors,
            set_aside: vec![],
        };
        let (findings, _) = run(&inserted, &anchors);
        assert!(
            findings.iter().any(|f| f.problem.contains("inserted")),
            "{findings:?}"
        );
    }

    #[test]
    fn one_chain_is_checked_alone() {
        let stored = world();
        let anchors = Anchors {
            anchors: vec![anchor_of(&stored, 9, 50)],
            set_aside: vec![],
        };
        let mut findings = Vec::new();
        let summary = check(
            &stored[..1],
            &anchors,
            100,
            Some("patient/a"),
            &mut findings,
        );
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(summary.unanchored, 0);
    }
}
