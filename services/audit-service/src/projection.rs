//! The audit projection: every event becomes one entry per chain it
//! concerns, linked to the chain's last entry, and appended.

use std::collections::HashMap;

use event_store::RecordedEvent;
use projections::Error;
use projections::tokio_postgres::{GenericClient, Transaction};

use crate::chain::{self, Entry};
use crate::describe::{self, Directory, Draft};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The tables readers query (as views in schema `audit`).
pub const TABLES: &[&str] = &[
    "entries",
    "names",
    "thread_records",
    "staff_roles",
    "deactivated_people",
];

const LOAD_NAMES: &str = "SELECT id, name FROM names WHERE id = ANY($1)";
const LOAD_THREADS: &str =
    "SELECT thread_id, patient_id FROM thread_records WHERE thread_id = ANY($1)";
/// Each chain's last entry: one index probe per chain.
const CHAIN_HEADS: &str = "SELECT c.chain, e.seq, e.hash FROM unnest($1::text[]) AS c(chain) \
     CROSS JOIN LATERAL (SELECT seq, hash FROM entries WHERE entries.chain = c.chain \
     ORDER BY position DESC LIMIT 1) e";
const INSERT_NAMES: &str = "INSERT INTO names (id, name) \
     SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (id) DO UPDATE SET name = excluded.name";
const INSERT_THREADS: &str = "INSERT INTO thread_records (thread_id, patient_id) \
     SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING";
const GRANT_ROLE: &str =
    "INSERT INTO staff_roles (person_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const REVOKE_ROLE: &str = "DELETE FROM staff_roles WHERE person_id = $1 AND role = $2";
const INSERT_ENTRIES: &str = "INSERT INTO entries (chain, seq, position, event_id, event_type, kind, \
     occurred_at, actor_id, actor_name, role, on_behalf_of, action, patient_id, thread_id, call, \
     previous_hash, hash) \
     SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::int2[], \
     $7::int8[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
     $14::text[], $15::text[], $16::bytea[], $17::bytea[])";

/// The audit trail read model.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuditProjection;

/// Names and thread links for the ids asked, from the audit tables.
pub async fn load_directory(
    client: &impl GenericClient,
    names: Vec<String>,
    threads: Vec<String>,
) -> Result<Directory, tokio_postgres::Error> {
    let mut dir = Directory::default();
    for row in client.query(LOAD_NAMES, &[&names]).await? {
        dir.names.insert(row.get(0), row.get(1));
    }
    for row in client.query(LOAD_THREADS, &[&threads]).await? {
        dir.thread_records.insert(row.get(0), row.get(1));
    }
    Ok(dir)
}

/// Links drafts into their chains, after each chain's `heads`.
pub fn link_all(drafts: Vec<Draft>, heads: &mut HashMap<String, (u64, Vec<u8>)>) -> Vec<Entry> {
    drafts
        .into_iter()
        .map(|draft| {
            let last = heads.get(&draft.chain).cloned();
            let entry = chain::link(draft, last.as_ref());
            heads.insert(entry.draft.chain.clone(), (entry.seq, entry.hash.clone()));
            entry
        })
        .collect()
}

impl projections::Projection for AuditProjection {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn migrations(&self) -> refinery::Runner {
        embedded::migrations::runner()
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    /// Readers' indexes: applying finds chain heads by primary key.
    fn deferred_indexes(&self) -> &'static [&'static str] {
        &["entries_thread", "entries_actor", "entries_position"]
    }

    async fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        events: &'a [RecordedEvent],
    ) -> Result<(), Error> {
        let (drafts, dir) =
            describe::describe_all(events, |names, threads| load_directory(tx, names, threads))
                .await?;

        let (ids, names): (Vec<_>, Vec<_>) = dir.learned_names.into_iter().unzip();
        if !ids.is_empty() {
            tx.execute(INSERT_NAMES, &[&ids, &names]).await?;
        }
        let (threads, records): (Vec<_>, Vec<_>) = dir.learned_threads.into_iter().unzip();
        if !threads.is_empty() {
            tx.execute(INSERT_THREADS, &[&threads, &records]).await?;
        }

        let mut chains: Vec<String> = drafts.iter().map(|d| d.chain.clone()).collect();
        chains.sort_unstable();
        chains.dedup();
        let mut heads = HashMap::new();
        for row in tx.query(CHAIN_HEADS, &[&chains]).await? {
            heads.insert(
                row.get::<_, String>(0),
                (row.get::<_, i64>(1) as u64, row.get::<_, Vec<u8>>(2)),
            );
        }
        let entries = link_all(drafts, &mut heads);
        insert(tx, entries).await?;
        staff_roles(tx, events).await
    }
}

/// A closed account holds no staff role and is refused every call.
const DEACTIVATE: &str = "WITH roles AS (DELETE FROM staff_roles WHERE person_id = $1) \
     INSERT INTO deactivated_people (person_id) VALUES ($1) ON CONFLICT DO NOTHING";
const REACTIVATE: &str = "DELETE FROM deactivated_people WHERE person_id = $1";

/// Grants and revocations of staff roles, and accounts closed and opened,
/// in log order (they are rare).
async fn staff_roles(tx: &Transaction<'_>, events: &[RecordedEvent]) -> Result<(), Error> {
    use proto::events::envelope::Payload;
    for event in events {
        match &event.envelope.payload {
            Some(Payload::StaffRoleGranted(e)) => {
                tx.execute(GRANT_ROLE, &[&e.person_id, &describe::role_name(e.role)])
                    .await?;
            }
            Some(Payload::StaffRoleRevoked(e)) => {
                tx.execute(REVOKE_ROLE, &[&e.person_id, &describe::role_name(e.role)])
                    .await?;
            }
            Some(Payload::PersonDeactivated(_)) => {
                let person = &event.envelope.aggregate_id;
                tx.execute(DEACTIVATE, &[person]).await?;
            }
            Some(Payload::PersonReactivated(_)) => {
                let person = &event.envelope.aggregate_id;
                tx.execute(REACTIVATE, &[person]).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

async fn insert(tx: &Transaction<'_>, entries: Vec<Entry>) -> Result<(), Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut c = Columns::default();
    for e in entries {
        let d = e.draft;
        c.chain.push(d.chain);
        c.seq.push(e.seq as i64);
        c.position.push(d.position as i64);
        c.event_id.push(d.event_id);
        c.event_type.push(d.event_type);
        c.kind.push(d.kind as i16);
        c.occurred_at.push(d.occurred_at);
        c.actor_id.push(d.actor_id);
        c.actor_name.push(d.actor_name);
        c.role.push(d.role);
        c.on_behalf_of.push(d.on_behalf_of);
        c.action.push(d.action);
        c.patient_id.push(d.patient_id);
        c.thread_id.push(d.thread_id);
        c.call.push(d.call);
        c.previous_hash.push(e.previous_hash);
        c.hash.push(e.hash);
    }
    tx.execute(
        INSERT_ENTRIES,
        &[
            &c.chain,
            &c.seq,
            &c.position,
            &c.event_id,
            &c.event_type,
            &c.kind,
            &c.occurred_at,
            &c.actor_id,
            &c.actor_name,
            &c.role,
            &c.on_behalf_of,
            &c.action,
            &c.patient_id,
            &c.thread_id,
            &c.call,
            &c.previous_hash,
            &c.hash,
        ],
    )
    .await?;
    Ok(())
}

/// The entries table, column by column, for one `unnest` insert.
#[derive(Default)]
struct Columns {
    chain: Vec<String>,
    seq: Vec<i64>,
    position: Vec<i64>,
    event_id: Vec<String>,
    event_type: Vec<String>,
    kind: Vec<i16>,
    occurred_at: Vec<i64>,
    actor_id: Vec<String>,
    actor_name: Vec<String>,
    role: Vec<String>,
    on_behalf_of: Vec<String>,
    action: Vec<String>,
    patient_id: Vec<String>,
    thread_id: Vec<String>,
    call: Vec<String>,
    previous_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}
