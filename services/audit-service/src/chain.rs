//! The hash chain: each entry's hash is SHA-256 over the previous entry's
//! hash and the entry's canonical content; checking a chain recomputes it.

use sha2::{Digest, Sha256};

use crate::describe::{Draft, Kind};

/// The hash before a chain's first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// An entry in its place in a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub draft: Draft,
    pub seq: u64,
    pub previous_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The entry's content, as hashed: a JSON array of every field in a fixed
/// order (the chain and place included, so moving an entry changes it).
pub fn canonical(d: &Draft, seq: u64) -> Vec<u8> {
    let value = serde_json::json!([
        d.chain,
        seq,
        d.position,
        d.event_id,
        d.event_type,
        d.kind as i16,
        d.occurred_at,
        d.actor_id,
        d.actor_name,
        d.role,
        d.on_behalf_of,
        d.action,
        d.patient_id,
        d.thread_id,
        d.call,
    ]);
    value.to_string().into_bytes()
}

pub fn hash(previous: &[u8], d: &Draft, seq: u64) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(canonical(d, seq));
    h.finalize().to_vec()
}

/// Places `draft` after `(seq, hash)` of its chain's last entry.
pub fn link(draft: Draft, last: Option<&(u64, Vec<u8>)>) -> Entry {
    let (seq, previous) = match last {
        Some((seq, hash)) => (seq + 1, hash.clone()),
        None => (1, GENESIS.to_vec()),
    };
    let hash = hash(&previous, &draft, seq);
    Entry {
        draft,
        seq,
        previous_hash: previous,
        hash,
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// One problem in a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub chain: String,
    pub seq: u64,
    pub problem: String,
}

/// Checks the entries of one chain, in stored order (by position): places
/// 1, 2, 3, ... with no gap, each entry's previous hash the hash of the one
/// before, each hash matching the content.
pub fn check(chain: &str, entries: &[Entry], findings: &mut Vec<Finding>) {
    let mut expected_seq = 1;
    let mut previous = GENESIS.to_vec();
    for entry in entries {
        let finding = |problem: String| Finding {
            chain: chain.to_string(),
            seq: entry.seq,
            problem,
        };
        if entry.seq != expected_seq {
            findings.push(finding(format!(
                "entry {} stands where entry {expected_seq} should (entries removed or reordered)",
                entry.seq
            )));
        }
        if entry.previous_hash != previous {
            findings.push(finding(format!(
                "entry {} does not follow the entry before it (its previous hash differs: an entry was removed, inserted or reordered)",
                entry.seq
            )));
        }
        if hash(&entry.previous_hash, &entry.draft, entry.seq) != entry.hash {
            findings.push(finding(format!(
                "entry {} (position {}) does not match its hash: its content was changed",
                entry.seq, entry.draft.position
            )));
        }
        expected_seq = entry.seq + 1;
        previous = entry.hash.clone();
    }
}

/// Chains rebuilt from the log: each stored chain must equal the expected
/// one entry for entry.
pub fn compare(chain: &str, stored: &[Entry], expected: &[Entry], findings: &mut Vec<Finding>) {
    for (i, want) in expected.iter().enumerate() {
        match stored.get(i) {
            None => {
                findings.push(Finding {
                    chain: chain.to_string(),
                    seq: want.seq,
                    problem: format!(
                        "entry {} (the event at position {}) is in the log but missing from the trail",
                        want.seq, want.draft.position
                    ),
                });
                return;
            }
            Some(got) if got.hash != want.hash || got.draft != want.draft => {
                findings.push(Finding {
                    chain: chain.to_string(),
                    seq: got.seq,
                    problem: format!(
                        "entry {} differs from what the log says (position {} in the log, {} in the trail)",
                        got.seq, want.draft.position, got.draft.position
                    ),
                });
                return;
            }
            Some(_) => {}
        }
    }
    if stored.len() > expected.len() {
        findings.push(Finding {
            chain: chain.to_string(),
            seq: stored[expected.len()].seq,
            problem: format!(
                "{} entr{} in the trail that the log does not have",
                stored.len() - expected.len(),
                if stored.len() - expected.len() == 1 {
                    "y"
                } else {
                    "ies"
                }
            ),
        });
    }
}

impl Kind {
    pub fn proto(self) -> proto::audit::EntryKind {
        match self {
            Kind::Action => proto::audit::EntryKind::Action,
            Kind::View => proto::audit::EntryKind::View,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(position: u64, action: &str) -> Draft {
        Draft {
            chain: "patient/p".into(),
            position,
            event_id: format!("e{position}"),
            event_type: "MessagePosted".into(),
            kind: Kind::Action,
            occurred_at: 1_700_000_000_000_000 + position as i64,
            actor_id: "a".into(),
            actor_name: "Nina Patel".into(),
            role: "professional".into(),
            on_behalf_of: String::new(),
            action: action.into(),
            patient_id: "p".into(),
            thread_id: "t".into(),
            call: String::new(),
        }
    }

    fn chain(n: u64) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for i in 1..=n {
            let last = out.last().map(|e| (e.seq, e.hash.clone()));
            out.push(link(draft(i * 10, &format!("step {i}")), last.as_ref()));
        }
        out
    }

    fn problems(entries: &[Entry]) -> Vec<Finding> {
        let mut findings = Vec::new();
        check("patient/p", entries, &mut findings);
        findings
    }

    #[test]
    fn an_intact_chain_has_no_findings() {
        assert!(problems(&chain(5)).is_empty());
    }

    #[test]
    fn a_changed_removed_or_swapped_entry_is_found() {
        let mut changed = chain(5);
        changed[2].draft.action = "nothing happened".into();
        assert_eq!(problems(&changed)[0].seq, 3);

        let mut removed = chain(5);
        removed.remove(1);
        assert!(!problems(&removed).is_empty());

        let mut swapped = chain(5);
        swapped.swap(1, 2);
        assert!(!problems(&swapped).is_empty());
    }

    #[test]
    fn hashes_are_hex_sha256() {
        let c = chain(1);
        assert_eq!(hex(&c[0].hash).len(), 64);
        assert_eq!(c[0].previous_hash, GENESIS.to_vec());
    }
}
