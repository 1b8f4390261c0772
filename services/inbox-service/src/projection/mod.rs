//! The inbox projection: events into the tables of `migrations/`.
//!
//! A batch is applied in two parts, both inside the engine's transaction:
//! * `reference.rs` — people, teams, members, care teams, consents and
//!   grants, in log order (runs of creations written in one statement);
//! * `threads.rs` — thread events folded in memory per thread, then written
//!   set-based (one statement per table), which is what makes a rebuild of
//!   a million events fast.
//!
//! The two parts touch disjoint tables and neither reads the other's, so
//! applying one before the other keeps the log's order where it matters.
//! The exception is a consent that ends (revoked, or granted again after
//! it expired): the carer leaves the record's threads, so the thread
//! events before it are written first, then the departure, in log order.

mod reference;
mod threads;

use std::time::SystemTime;

use event_store::RecordedEvent;
use projections::Error;
use projections::tokio_postgres::Transaction;
use proto::events::envelope::Payload;
use uuid::Uuid;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The tables readers query (as views in schema `inbox`).
pub const TABLES: &[&str] = &[
    "people",
    "teams",
    "team_members",
    "patient_teams",
    "consents",
    "grants",
    "threads",
    "thread_teams",
    "team_tallies",
    "thread_participants",
    "professional_threads",
    "messages",
    "message_files",
    "read_marks",
    "assignments",
    "deactivated_people",
    "staff_notes",
    "staff_roles",
    "systems",
    "absences",
];

/// The inbox read model.
#[derive(Clone, Copy, Debug, Default)]
pub struct InboxProjection;

impl projections::Projection for InboxProjection {
    fn name(&self) -> &'static str {
        "inbox"
    }

    fn migrations(&self) -> refinery::Runner {
        embedded::migrations::runner()
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    /// Every query's index: applying reads and writes by primary key (and
    /// the unique message id) only, and a thread's teams by thread
    /// (`thread_teams_thread`, kept: each batch copies its threads' state
    /// to their teams' rows).
    fn deferred_indexes(&self) -> &'static [&'static str] {
        &[
            "people_patient_name",
            "team_members_person",
            "patient_teams_team",
            "consents_carer",
            "grants_team",
            "grants_patient",
            "threads_patient",
            "threads_list",
            "thread_teams_inbox",
            "thread_teams_waiting",
            "thread_participants_person",
            "professional_threads_inbox",
            "thread_participants_order",
            "thread_participants_staff_side",
            "threads_changed",
            "teams_join_code",
            "message_files_by_digest",
        ]
    }

    /// Reads recorded (by this service and the others) change no inbox.
    fn concerns(&self, event: &RecordedEvent) -> bool {
        !matches!(
            event.envelope.payload,
            Some(Payload::RecordsViewed(_) | Payload::AuditAnchored(_))
        )
    }

    async fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        events: &'a [RecordedEvent],
    ) -> Result<(), Error> {
        let mut reference = reference::Reference::default();
        let mut threads = Vec::new();
        for event in events {
            match &event.envelope.payload {
                Some(p) if p.aggregate_type() == proto::events::AggregateType::Thread => {
                    threads.push(event)
                }
                Some(Payload::CarerConsentRevoked(e)) => {
                    let (patient, carer) = consent_pair(event, &e.carer_id)?;
                    reference.apply(tx, event).await?;
                    // Ends participation on threads of the batch so far too.
                    threads::apply(tx, &std::mem::take(&mut threads)).await?;
                    end_carer(tx, patient, carer, occurred_at(event)).await?;
                }
                Some(Payload::CarerConsentGranted(e)) => {
                    // After a lapse, a grant is a new consent: participation
                    // under the expired one ended when it expired.
                    let (patient, carer) = consent_pair(event, &e.carer_id)?;
                    reference.flush(tx).await?;
                    let lapsed: Option<SystemTime> = tx
                        .query_opt(LAPSED_CONSENT, &[&patient, &carer, &occurred_at(event)])
                        .await?
                        .map(|row| row.get(0));
                    if let Some(expired) = lapsed {
                        threads::apply(tx, &std::mem::take(&mut threads)).await?;
                        end_carer(tx, patient, carer, expired).await?;
                    }
                    reference.apply(tx, event).await?;
                }
                Some(Payload::PersonDeactivated(_)) => {
                    let person = uuid(event, "aggregate_id", &event.envelope.aggregate_id)?;
                    reference.apply(tx, event).await?;
                    threads::apply(tx, &std::mem::take(&mut threads)).await?;
                    let left = tx
                        .query(LEAVE_EVERY_THREAD, &[&person, &occurred_at(event)])
                        .await?;
                    threads::copy_state(tx, &left.iter().map(|r| r.get(0)).collect()).await?;
                }
                Some(Payload::TeamMemberRemoved(e)) if e.leaves_threads => {
                    let team = uuid(event, "aggregate_id", &event.envelope.aggregate_id)?;
                    let person = uuid(event, "professional_id", &e.professional_id)?;
                    reference.apply(tx, event).await?;
                    threads::apply(tx, &std::mem::take(&mut threads)).await?;
                    let left = tx
                        .query(LEAVE_TEAM_THREADS, &[&team, &person, &occurred_at(event)])
                        .await?;
                    threads::copy_state(tx, &left.iter().map(|r| r.get(0)).collect()).await?;
                }
                Some(_) => reference.apply(tx, event).await?,
                None => {} // a newer event type: nothing to show yet
            }
        }
        reference.flush(tx).await?;
        threads::apply(tx, &threads).await
    }
}

/// The consent of (patient $1, carer $2) as it stood at $3, if it had
/// expired by then: its expiry.
/// A closed account ($1) leaves every thread it was on, at $2, and is
/// assigned none.
const LEAVE_EVERY_THREAD: &str = "WITH ended AS (UPDATE thread_participants SET active = false, left_at = $2 \
     WHERE person_id = $1 AND active RETURNING thread_id) \
     UPDATE threads t SET participant_count = greatest(t.participant_count - 1, 0), \
       assignee = CASE WHEN t.assignee = $1 THEN NULL ELSE t.assignee END \
     FROM ended WHERE t.thread_id = ended.thread_id RETURNING t.thread_id";

/// A professional ($2) removed from team $1 at $3 leaves the threads they
/// were on through it, unless another of their teams that the thread is
/// addressed to, or that holds a grant in force on its record, keeps them
/// on it: they are then on it through that team.
const LEAVE_TEAM_THREADS: &str = "WITH via AS (\
       SELECT p.thread_id, (SELECT k.team_id FROM (\
           SELECT tt.team_id FROM thread_teams tt WHERE tt.thread_id = p.thread_id \
           UNION ALL SELECT g.team_id FROM grants g WHERE g.patient_id = t.patient_id \
             AND g.revoked_at IS NULL AND g.expires_at > $3) k \
         JOIN team_members m ON m.team_id = k.team_id AND m.person_id = $2 \
         WHERE k.team_id <> $1 ORDER BY k.team_id LIMIT 1) AS keeper \
       FROM thread_participants p JOIN threads t ON t.thread_id = p.thread_id \
       WHERE p.person_id = $2 AND p.via_team = $1 AND p.active), \
     kept AS (UPDATE thread_participants p SET via_team = via.keeper FROM via \
       WHERE p.thread_id = via.thread_id AND p.person_id = $2 AND via.keeper IS NOT NULL), \
     ended AS (UPDATE thread_participants p SET active = false, left_at = $3 FROM via \
       WHERE p.thread_id = via.thread_id AND p.person_id = $2 AND via.keeper IS NULL \
       RETURNING p.thread_id) \
     UPDATE threads t SET participant_count = greatest(t.participant_count - 1, 0), \
       assignee = CASE WHEN t.assignee = $2 THEN NULL ELSE t.assignee END \
     FROM ended WHERE t.thread_id = ended.thread_id RETURNING t.thread_id";

const LAPSED_CONSENT: &str = "SELECT expires_at FROM consents \
     WHERE patient_id = $1 AND carer_id = $2 AND expires_at <= $3";

/// A carer leaves every thread of the record they are on, at `at`.
/// (Rare: one statement per consent ended, not set-based.)
const END_CARER: &str = "WITH ended AS (UPDATE thread_participants p SET active = false, left_at = $3 \
     FROM threads t WHERE t.thread_id = p.thread_id AND t.patient_id = $1 \
       AND p.person_id = $2 AND p.active RETURNING p.thread_id) \
     UPDATE threads t SET participant_count = greatest(t.participant_count - 1, 0) \
     FROM ended WHERE t.thread_id = ended.thread_id";

/// A carer's participation ends with the consent they took part under: on
/// revocation, and (seen when it is granted again) on expiry. Their
/// messages stay.
async fn end_carer(
    tx: &Transaction<'_>,
    patient: Uuid,
    carer: Uuid,
    at: SystemTime,
) -> Result<(), Error> {
    tx.execute(END_CARER, &[&patient, &carer, &at]).await?;
    Ok(())
}

fn consent_pair(event: &RecordedEvent, carer: &str) -> Result<(Uuid, Uuid), Error> {
    Ok((
        uuid(event, "aggregate_id", &event.envelope.aggregate_id)?,
        uuid(event, "carer_id", carer)?,
    ))
}

/// A UUID from an event field, or an error naming the event.
pub(crate) fn uuid(event: &RecordedEvent, field: &str, value: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(value).map_err(|_| Error::Apply {
        projection: "inbox".into(),
        position: event.position,
        message: format!("{} {field} {value:?} is not a UUID", event.event_type()),
    })
}

/// A UUID that may be empty.
pub(crate) fn optional_uuid(
    event: &RecordedEvent,
    field: &str,
    value: &str,
) -> Result<Option<Uuid>, Error> {
    if value.is_empty() {
        Ok(None)
    } else {
        uuid(event, field, value).map(Some)
    }
}

/// When the event happened.
pub(crate) fn occurred_at(event: &RecordedEvent) -> SystemTime {
    timestamp(event.envelope.occurred_at.as_ref()).unwrap_or(SystemTime::UNIX_EPOCH)
}

pub(crate) fn timestamp(ts: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    ts.and_then(proto::time::to_system)
}

/// Who caused the event.
pub(crate) fn actor(event: &RecordedEvent) -> Result<Uuid, Error> {
    let id = event
        .envelope
        .actor
        .as_ref()
        .map(|a| a.person_id.as_str())
        .unwrap_or_default();
    uuid(event, "actor.person_id", id)
}
