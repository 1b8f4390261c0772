//! Events a projection cannot apply are set aside, not fatal.
//!
//! A batch is applied inside a savepoint. If it fails because of an event
//! (bytes that are not an envelope, an event the projection cannot make
//! sense of, a row it refuses), the batch is applied again one event at a
//! time, each in its own savepoint: the events that fail are recorded in
//! `careline_projections.dead_letters` (position, type, subject, reason,
//! the stored bytes if undecodable) and logged at error; the rest are
//! applied, and the checkpoint moves over all of them. Transient database
//! failures are not the event's fault: they stop the batch, as before, and
//! the runner tries again.

use event_store::{Position, RecordedEvent};
use tokio_postgres::{GenericClient, Transaction};

use crate::{Error, Failure, Projection, classify};

/// One event of a batch as the feed delivered it.
#[derive(Debug)]
pub(crate) enum Item {
    Event(Box<RecordedEvent>),
    /// Not an event to apply: undecodable bytes, or an event its subject
    /// may not carry (forged); set aside with its reason.
    SetAside(DeadLetter),
}

impl Item {
    pub(crate) fn position(&self) -> Position {
        match self {
            Item::Event(e) => e.position,
            Item::SetAside(letter) => letter.position,
        }
    }
}

/// An event set aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub position: Position,
    pub event_type: String,
    pub subject: String,
    pub reason: String,
    pub bytes: Vec<u8>,
}

/// Whether an error applying events is the events' fault (set them aside)
/// rather than the database's or the engine's (stop and try again).
fn events_fault(e: &Error) -> bool {
    match e {
        Error::Apply { .. } => true,
        Error::Database(db) => classify(db) == Failure::Defect,
        _ => false,
    }
}

fn letter(event: &RecordedEvent, reason: String) -> DeadLetter {
    let envelope = &event.envelope;
    DeadLetter {
        position: event.position,
        event_type: envelope.event_type.clone(),
        subject: format!(
            "{}/{}",
            proto::events::AggregateType::try_from(envelope.aggregate_type)
                .map(|t| t.as_str_name())
                .unwrap_or("AGGREGATE_TYPE_UNSPECIFIED"),
            envelope.aggregate_id
        ),
        reason,
        bytes: Vec::new(),
    }
}

fn reason(e: &Error) -> String {
    match e {
        Error::Apply { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Applies `items` in `tx`, setting aside what cannot be applied; answers
/// what was set aside.
pub(crate) async fn apply<P: Projection>(
    projection: &P,
    tx: &mut Transaction<'_>,
    items: Vec<Item>,
) -> Result<Vec<DeadLetter>, Error> {
    let mut set_aside = Vec::new();
    let mut events = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Item::Event(e) => events.push(*e),
            Item::SetAside(letter) => set_aside.push(letter),
        }
    }
    let whole = {
        let batch = tx.savepoint("batch").await?;
        match projection.apply(&batch, &events).await {
            Ok(()) => {
                batch.commit().await?;
                Ok(())
            }
            Err(e) => {
                batch.rollback().await?;
                Err(e)
            }
        }
    };
    match whole {
        Ok(()) => {}
        Err(e) if events_fault(&e) => {
            for event in &events {
                let one = tx.savepoint("event").await?;
                match projection.apply(&one, std::slice::from_ref(event)).await {
                    Ok(()) => one.commit().await?,
                    Err(e) if events_fault(&e) => {
                        one.rollback().await?;
                        set_aside.push(letter(event, reason(&e)));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(e) => return Err(e),
    }
    set_aside.sort_by_key(|l| l.position);
    Ok(set_aside)
}

const RECORD: &str = "INSERT INTO careline_projections.dead_letters \
     (name, generation, position, event_type, subject, reason, bytes) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";

/// Records what was set aside, in the batch's transaction, and says so
/// loudly.
pub(crate) async fn record(
    tx: &Transaction<'_>,
    projection: &str,
    generation: i32,
    letters: &[DeadLetter],
) -> Result<(), Error> {
    for l in letters {
        tracing::error!(
            projection,
            generation,
            position = l.position,
            event_type = %l.event_type,
            subject = %l.subject,
            reason = %l.reason,
            "an event could not be applied: set aside (see careline status)"
        );
        tx.execute(
            RECORD,
            &[
                &projection,
                &generation,
                &(l.position as i64),
                &l.event_type,
                &l.subject,
                &l.reason,
                &l.bytes,
            ],
        )
        .await?;
    }
    Ok(())
}

/// How many events the live generation of `projection` has set aside.
pub async fn count(client: &impl GenericClient, projection: &str) -> Result<u64, Error> {
    let row = client
        .query_one(
            "SELECT count(*) FROM careline_projections.dead_letters d \
             JOIN careline_projections.projection_generations g \
               ON g.name = d.name AND g.live_generation = d.generation \
             WHERE d.name = $1",
            &[&projection],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// What the live generation of `projection` has set aside, oldest first.
pub async fn dead_letters(
    client: &impl GenericClient,
    projection: &str,
) -> Result<Vec<DeadLetter>, Error> {
    let rows = client
        .query(
            "SELECT d.position, d.event_type, d.subject, d.reason, d.bytes \
             FROM careline_projections.dead_letters d \
             JOIN careline_projections.projection_generations g \
               ON g.name = d.name AND g.live_generation = d.generation \
             WHERE d.name = $1 ORDER BY d.position",
            &[&projection],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| DeadLetter {
            position: r.get::<_, i64>(0) as Position,
            event_type: r.get(1),
            subject: r.get(2),
            reason: r.get(3),
            bytes: r.get(4),
        })
        .collect())
}
