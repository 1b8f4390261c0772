//! Reading the trail: pages of one record's, one thread's or one person's
//! entries, and whole chains for verification and export.

use service_kit::ids::{PatientId, PersonId, ThreadId};
use tokio_postgres::{GenericClient, Row};

use crate::chain::Entry;
use crate::describe::{Draft, Kind};

const COLUMNS: &str = "chain, seq, position, event_id, event_type, kind, occurred_at, actor_id, \
     actor_name, role, on_behalf_of, action, patient_id, thread_id, call, previous_hash, hash";

/// Which entries a trail is made of.
#[derive(Clone, Debug)]
pub enum Trail {
    /// A record's chain (`patient/<id>`).
    Record(PatientId),
    Thread(ThreadId),
    Person(PersonId),
}

/// A page request: time bounds (µs since the epoch) and where to resume.
#[derive(Clone, Debug)]
pub struct Page {
    pub from: i64,
    pub to: i64,
    /// After this (position, chain), in the page's order.
    pub after: (i64, String),
    pub size: i64,
    /// Newest first (after = before, in time).
    pub newest_first: bool,
    /// Only entries of this kind (`Kind as i16`); 0 for every kind.
    pub kind: i16,
    /// Only entries by this person.
    pub actor: Option<String>,
}

pub fn entry(row: &Row) -> Entry {
    Entry {
        draft: Draft {
            chain: row.get(0),
            position: row.get::<_, i64>(2) as u64,
            event_id: row.get(3),
            event_type: row.get(4),
            kind: Kind::from_i16(row.get(5)),
            occurred_at: row.get(6),
            actor_id: row.get(7),
            actor_name: row.get(8),
            role: row.get(9),
            on_behalf_of: row.get(10),
            action: row.get(11),
            patient_id: row.get(12),
            thread_id: row.get(13),
            call: row.get(14),
        },
        seq: row.get::<_, i64>(1) as u64,
        previous_hash: row.get(15),
        hash: row.get(16),
    }
}

/// One page of a trail, oldest first (or newest first); and whether more
/// follow.
pub async fn trail(
    client: &impl deadpool_postgres::GenericClient,
    trail: &Trail,
    page: &Page,
) -> Result<(Vec<Entry>, bool), tokio_postgres::Error> {
    let (column, key) = match trail {
        Trail::Record(p) => ("chain", format!("patient/{p}")),
        Trail::Thread(t) => ("thread_id", t.to_string()),
        Trail::Person(p) => ("actor_id", p.to_string()),
    };
    let (after, order) = if page.newest_first {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM entries WHERE {column} = $1 AND (position, chain) {after} ($2, $3) \
         AND occurred_at >= $4 AND occurred_at < $5 AND ($7::int2 = 0 OR kind = $7) \
         AND ($8::text IS NULL OR actor_id = $8) \
         ORDER BY position {order}, chain {order} LIMIT $6"
    );
    let statement = client.prepare_cached(&sql).await?;
    let rows = client
        .query(
            &statement,
            &[
                &key,
                &page.after.0,
                &page.after.1,
                &page.from,
                &page.to,
                &(page.size + 1),
                &page.kind,
                &page.actor,
            ],
        )
        .await?;
    let more = rows.len() as i64 > page.size;
    Ok((
        rows.iter().take(page.size as usize).map(entry).collect(),
        more,
    ))
}

/// Every entry of the chains asked (all when `None`), chain by chain, in
/// stored order.
pub async fn chains(
    client: &impl GenericClient,
    chain: Option<&str>,
) -> Result<Vec<(String, Vec<Entry>)>, tokio_postgres::Error> {
    let rows = match chain {
        Some(c) => {
            client
                .query(
                    &format!("SELECT {COLUMNS} FROM entries WHERE chain = $1 ORDER BY position"),
                    &[&c],
                )
                .await?
        }
        None => {
            client
                .query(
                    &format!("SELECT {COLUMNS} FROM entries ORDER BY chain, position"),
                    &[],
                )
                .await?
        }
    };
    let mut out: Vec<(String, Vec<Entry>)> = Vec::new();
    for row in &rows {
        let e = entry(row);
        match out.last_mut() {
            Some((c, entries)) if *c == e.draft.chain => entries.push(e),
            _ => out.push((e.draft.chain.clone(), vec![e])),
        }
    }
    Ok(out)
}

/// The record a thread is in, if the trail knows the thread.
pub async fn record_of_thread(
    client: &impl GenericClient,
    thread: ThreadId,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT patient_id FROM thread_records WHERE thread_id = $1",
            &[&thread.to_string()],
        )
        .await?
        .map(|r| r.get(0)))
}

/// Whether `person` holds the staff role `role` in the log.
pub async fn holds_role(
    client: &impl GenericClient,
    person: &str,
    role: &str,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT 1 FROM staff_roles WHERE person_id = $1 AND role = $2",
            &[&person, &role],
        )
        .await?;
    Ok(row.is_some())
}
