//! Claims for a log written before they existed: every command id claimed
//! for the aggregate its event is on, and every registered person id for
//! the kind it was registered as, so that the rules "a command id is used
//! once" and "one id is one kind of person" hold for old entries too; and
//! the membership hints (every team a professional was added to).
//! Idempotent: run it again and it claims nothing new.

use event_store::{AggregateRef, Error, EventStore};
use futures::StreamExt;
use proto::events::AggregateType;
use proto::events::envelope::Payload;

/// What a backfill did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backfill {
    /// Events read (up to the head when it started).
    pub events: u64,
    /// Ids claimed for their owner (now, or already before).
    pub claimed: u64,
    /// Ids already claimed by another owner: the log holds a reuse, named
    /// here for an operator to look at (nothing is changed).
    pub conflicts: Vec<String>,
}

/// What an event makes its person, as the command service claims it: a
/// person id is claimed for good as one kind. Hospital staff are the one
/// pair that may meet: a professional may hold a staff role (admin,
/// operator, auditor), so a `staff` claim accepts a professional's and the
/// other way round; a patient or a carer never holds a staff role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PersonClaim<'a> {
    pub person: &'a str,
    pub kind: &'static str,
    /// Kinds an existing claim may have that this event does not conflict with.
    pub compatible: &'static [&'static str],
}

impl PersonClaim<'_> {
    /// The key of the claim.
    pub fn key(&self) -> String {
        format!("person.{}", self.person)
    }

    /// Whether an id already claimed as `holder` may also be this.
    pub fn accepts(&self, holder: &str) -> bool {
        holder == self.kind || self.compatible.contains(&holder)
    }
}

/// The claim that `person` has an account linked at identity provider
/// `issuer`, owned by that account's aggregate: a person is linked once per
/// provider (a leaked invitation cannot add a second account).
pub fn identity_claim(payload: &Payload) -> Option<String> {
    let Payload::IdentityLinked(e) = payload else {
        return None;
    };
    let issuer = service_kit::ids::identity::issuer(&e.issuer);
    Some(format!("identity-of.{}.{issuer}", e.person_id))
}

/// The key of the hints naming every team `person` was ever added to.
pub fn teams_of_key(person: &str) -> String {
    format!("team-of.{person}")
}

pub fn person_claim(payload: &Payload) -> Option<PersonClaim<'_>> {
    let (person, kind, compatible): (&str, _, &'static [&'static str]) = match payload {
        Payload::ProfessionalRegistered(e) => (&e.professional_id, "professional", &["staff"]),
        Payload::CarerRegistered(e) => (&e.carer_id, "carer", &[]),
        Payload::PatientRegistered(e) => (&e.patient_id, "patient", &[]),
        Payload::StaffRoleGranted(e) => (&e.person_id, "staff", &["professional"]),
        Payload::SystemRegistered(e) => (&e.system_id, "system", &[]),
        _ => return None,
    };
    Some(PersonClaim {
        person,
        kind,
        compatible,
    })
}

/// Claims what the log up to its current head should have claimed;
/// `progress` is told the position now and then.
pub async fn backfill<S: EventStore>(
    store: &S,
    mut progress: impl FnMut(u64, u64),
) -> Result<Backfill, Error> {
    let head = store.last_position().await?;
    let mut report = Backfill::default();
    if head == 0 {
        return Ok(report);
    }
    let mut feed = store.subscribe(1).await?;
    while let Some(next) = feed.next().await {
        let event = match next {
            Ok(event) => event,
            // Bytes that are no event claim nothing (the projections set
            // them aside).
            Err(Error::Undecodable { position, .. } | Error::Forged { position, .. }) => {
                if position >= head {
                    break;
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        report.events += 1;
        let envelope = &event.envelope;
        let kind = AggregateType::try_from(envelope.aggregate_type).unwrap_or_default();
        // Record reads are appended without a command.
        if kind != AggregateType::Access && !envelope.command_id.is_empty() {
            let owner = AggregateRef::new(kind, envelope.aggregate_id.clone())?.to_string();
            claim(store, &envelope.command_id, &owner, &mut report).await?;
        }
        if let Some(Payload::TeamMemberAdded(e)) = &envelope.payload {
            store
                .add_hint(&teams_of_key(&e.professional_id), &envelope.aggregate_id)
                .await?;
        }
        if let Some(key) = envelope.payload.as_ref().and_then(identity_claim) {
            let owner = AggregateRef::new(kind, envelope.aggregate_id.clone())?.to_string();
            claim(store, &key, &owner, &mut report).await?;
        }
        if let Some(person) = envelope.payload.as_ref().and_then(person_claim) {
            match store.claim(&person.key(), person.kind).await? {
                None => report.claimed += 1,
                Some(holder) if person.accepts(&holder) => report.claimed += 1,
                Some(holder) => report.conflicts.push(format!(
                    "{}: claimed as {holder}, also recorded as {}",
                    person.key(),
                    person.kind
                )),
            }
        }
        if event.position % 10_000 == 0 {
            progress(event.position, head);
        }
        if event.position >= head {
            break;
        }
    }
    progress(head, head);
    Ok(report)
}

async fn claim<S: EventStore>(
    store: &S,
    id: &str,
    owner: &str,
    report: &mut Backfill,
) -> Result<(), Error> {
    match store.claim(id, owner).await? {
        None => report.claimed += 1,
        Some(holder) => report
            .conflicts
            .push(format!("{id}: claimed by {holder}, also used by {owner}")),
    }
    Ok(())
}
