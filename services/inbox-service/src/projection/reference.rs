//! People, teams and patient records, in log order.
//!
//! Creations and replacements (a registration, a member added, consent
//! granted) collect into per-table upserts keyed by row; any other change
//! first writes what has collected, then applies itself, so every row ends
//! as the log's order says.

use std::collections::HashMap;
use std::time::SystemTime;

use event_store::RecordedEvent;
use projections::Error;
use projections::tokio_postgres::Transaction;
use proto::events::envelope::Payload;
use proto::events::{CarerRelationship, JoinMethod};
use uuid::Uuid;

use super::{occurred_at, optional_uuid, timestamp, uuid};

/// A registration's row of `people`.
#[derive(Debug)]
struct Person {
    kind: &'static str,
    name: String,
    role_label: String,
    email: String,
    email_verified: bool,
    /// A patient's date of birth, hospital number and NHS number.
    identity: [String; 3],
}

impl Person {
    fn new(kind: &'static str, name: &str, role_label: &str, email: &str, verified: bool) -> Self {
        Self {
            kind,
            name: name.to_string(),
            role_label: role_label.to_string(),
            email: email.to_string(),
            email_verified: verified,
            identity: Default::default(),
        }
    }
}

/// A patient's identity as the three columns of `people` hold it.
fn identity(identity: Option<&proto::events::PatientIdentity>) -> [String; 3] {
    identity.map_or_else(Default::default, |i| {
        [
            i.date_of_birth.clone(),
            i.hospital_number.clone(),
            i.nhs_number.clone(),
        ]
    })
}

/// What a search for any part of an identity matches.
fn identifiers([date_of_birth, hospital_number, nhs_number]: &[String; 3]) -> String {
    service_kit::patient_identity::search_text(date_of_birth, hospital_number, nhs_number)
}

/// Upserts collected since the last ordered change.
#[derive(Debug, Default)]
pub(crate) struct Reference {
    people: HashMap<Uuid, Person>,
    teams: HashMap<Uuid, (String, String)>,
    members: HashMap<(Uuid, Uuid), (bool, bool)>,
    care_teams: HashMap<(Uuid, Uuid), (String, SystemTime)>,
    consents: HashMap<(Uuid, Uuid), (String, Option<SystemTime>)>,
    grants: HashMap<Uuid, (Uuid, Uuid, SystemTime, String)>,
}

const UPSERT_PEOPLE: &str = "INSERT INTO people (person_id, kind, name, role_label, email, email_verified, \
       date_of_birth, hospital_number, nhs_number, identifiers) \
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], \
       $7::text[], $8::text[], $9::text[], $10::text[]) \
     ON CONFLICT (person_id) DO UPDATE SET name = excluded.name, \
     role_label = excluded.role_label, email = excluded.email, email_verified = excluded.email_verified, \
     date_of_birth = excluded.date_of_birth, hospital_number = excluded.hospital_number, \
     nhs_number = excluded.nhs_number, identifiers = excluded.identifiers \
     WHERE people.kind = excluded.kind";
const UPSERT_TEAMS: &str = "INSERT INTO teams (team_id, name, description) \
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) \
     ON CONFLICT (team_id) DO UPDATE SET name = excluded.name, description = excluded.description";
const UPSERT_MEMBERS: &str = "INSERT INTO team_members (team_id, person_id, contactable, lead) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bool[], $4::bool[]) \
     ON CONFLICT (team_id, person_id) DO UPDATE SET contactable = excluded.contactable, lead = excluded.lead";
const UPSERT_CARE_TEAMS: &str = "INSERT INTO patient_teams (patient_id, team_id, method, joined_at) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[]) \
     ON CONFLICT (patient_id, team_id) DO UPDATE SET method = excluded.method, joined_at = excluded.joined_at";
const UPSERT_CONSENTS: &str = "INSERT INTO consents (patient_id, carer_id, relationship, expires_at) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[]) \
     ON CONFLICT (patient_id, carer_id) DO UPDATE SET relationship = excluded.relationship, expires_at = excluded.expires_at";
const UPSERT_GRANTS: &str = "INSERT INTO grants (grant_id, patient_id, team_id, expires_at, reason) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::text[]) \
     ON CONFLICT (grant_id) DO UPDATE SET patient_id = excluded.patient_id, team_id = excluded.team_id, \
     expires_at = excluded.expires_at, reason = excluded.reason";

const VERIFY_EMAIL: &str =
    "UPDATE people SET email = $2, email_verified = true WHERE person_id = $1";
const CHANGE_IDENTITY: &str = "UPDATE people SET date_of_birth = $2, hospital_number = $3, \
     nhs_number = $4, identifiers = $5 WHERE person_id = $1 AND kind = 'patient'";
const CHANGE_EMAIL: &str =
    "UPDATE people SET email = $2, email_verified = false WHERE person_id = $1";
const REMOVE_MEMBER: &str = "DELETE FROM team_members WHERE team_id = $1 AND person_id = $2";
const DEACTIVATE: &str =
    "INSERT INTO deactivated_people (person_id) VALUES ($1::uuid::text) ON CONFLICT DO NOTHING";
const RECORD_ABSENCE: &str = "INSERT INTO absences (absence_id, person_id, starts_at, ends_at, deputy_id) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
const END_ABSENCE: &str = "UPDATE absences SET ended = true WHERE absence_id = $1";
const REGISTER_SYSTEM: &str = "INSERT INTO systems (system_id, name, team_ids, registered_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
const REACTIVATE: &str = "DELETE FROM deactivated_people WHERE person_id = $1::uuid::text";
const GRANT_ROLE: &str =
    "INSERT INTO staff_roles (person_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const REVOKE_ROLE: &str = "DELETE FROM staff_roles WHERE person_id = $1 AND role = $2";
/// A closed account holds no staff role.
const DROP_ROLES: &str = "DELETE FROM staff_roles WHERE person_id = $1";
/// A closed account leaves every team, and is no team's default contact.
const LEAVE_TEAMS: &str = "WITH gone AS (DELETE FROM team_members WHERE person_id = $1) \
     UPDATE teams SET default_contact = NULL WHERE default_contact = $1";
const CLEAR_DEFAULT_CONTACT: &str =
    "UPDATE teams SET default_contact = NULL WHERE team_id = $1 AND default_contact = $2";
const SET_CONTACTABLE: &str =
    "UPDATE team_members SET contactable = $3 WHERE team_id = $1 AND person_id = $2";
const SET_LEAD: &str = "UPDATE team_members SET lead = $3 WHERE team_id = $1 AND person_id = $2";
const SET_AUTO_CC: &str = "UPDATE teams SET auto_cc = $2 WHERE team_id = $1";
const SET_JOIN_CODE: &str = "UPDATE teams SET join_code = $2 WHERE team_id = $1";
const SET_OPEN: &str = "UPDATE teams SET open_to_patients = $2 WHERE team_id = $1";
const SET_ALERTS: &str = "UPDATE teams SET alerts = $2 WHERE team_id = $1";
const SET_DEFAULT_CONTACT: &str = "UPDATE teams SET default_contact = $2 WHERE team_id = $1";
const REVOKE_CONSENT: &str = "DELETE FROM consents WHERE patient_id = $1 AND carer_id = $2";
const REVOKE_GRANT: &str =
    "UPDATE grants SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL";

/// The relationship as stored: `parent`, `guardian`, `family_member`, ...
pub(crate) fn relationship_name(r: CarerRelationship) -> String {
    r.as_str_name()
        .trim_start_matches("CARER_RELATIONSHIP_")
        .to_lowercase()
}

impl Reference {
    /// A registration; a person keeps the kind they were first registered
    /// as (in the table too: the upsert changes no kind).
    fn register(&mut self, id: Uuid, person: Person) {
        match self.people.get(&id) {
            Some(first) if first.kind != person.kind => {}
            _ => {
                self.people.insert(id, person);
            }
        }
    }

    pub(crate) async fn apply(
        &mut self,
        tx: &Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), Error> {
        let aggregate = || uuid(event, "aggregate_id", &event.envelope.aggregate_id);
        let Some(payload) = &event.envelope.payload else {
            return Ok(());
        };
        match payload {
            Payload::ProfessionalRegistered(e) => {
                self.register(
                    uuid(event, "professional_id", &e.professional_id)?,
                    Person::new(
                        "professional",
                        &e.name,
                        &e.role_label,
                        &e.work_email,
                        // Older logs' work addresses count as verified.
                        !e.work_email_unverified,
                    ),
                );
            }
            Payload::CarerRegistered(e) => {
                self.register(
                    uuid(event, "carer_id", &e.carer_id)?,
                    Person::new("carer", &e.name, "", &e.email, e.email_verified),
                );
            }
            Payload::PatientRegistered(e) => {
                let patient = uuid(event, "patient_id", &e.patient_id)?;
                self.register(
                    patient,
                    Person {
                        identity: identity(e.identity.as_ref()),
                        ..Person::new("patient", &e.name, "", &e.email, e.email_verified)
                    },
                );
                // A sign-up with a team's code: in the team from this event.
                if !e.joined_team_id.is_empty() {
                    self.care_teams.insert(
                        (patient, uuid(event, "joined_team_id", &e.joined_team_id)?),
                        ("self_registration".into(), occurred_at(event)),
                    );
                }
            }
            Payload::TeamCreated(e) => {
                self.teams.insert(
                    uuid(event, "team_id", &e.team_id)?,
                    (e.name.clone(), e.description.clone()),
                );
            }
            Payload::TeamMemberAdded(e) => {
                self.members.insert(
                    (
                        aggregate()?,
                        uuid(event, "professional_id", &e.professional_id)?,
                    ),
                    (e.contactable, e.lead),
                );
            }
            Payload::PatientJoinedTeam(e) => {
                let method = match e.method() {
                    JoinMethod::SelfRegistration => "self_registration",
                    _ => "added_by_staff",
                };
                self.care_teams.insert(
                    (aggregate()?, uuid(event, "team_id", &e.team_id)?),
                    (method.into(), occurred_at(event)),
                );
            }
            Payload::CarerConsentGranted(e) => {
                self.consents.insert(
                    (aggregate()?, uuid(event, "carer_id", &e.carer_id)?),
                    (
                        relationship_name(e.relationship()),
                        timestamp(e.expires_at.as_ref()),
                    ),
                );
            }
            Payload::RecordAccessGranted(e) => {
                self.grants.insert(
                    uuid(event, "grant_id", &e.grant_id)?,
                    (
                        aggregate()?,
                        uuid(event, "team_id", &e.team_id)?,
                        timestamp(e.expires_at.as_ref()).unwrap_or_else(|| occurred_at(event)),
                        e.reason.clone(),
                    ),
                );
            }
            other => {
                // An ordered change: what collected before it goes first.
                self.flush(tx).await?;
                self.ordered(tx, event, other).await?;
            }
        }
        Ok(())
    }

    async fn ordered(
        &self,
        tx: &Transaction<'_>,
        event: &RecordedEvent,
        payload: &Payload,
    ) -> Result<(), Error> {
        let aggregate = uuid(event, "aggregate_id", &event.envelope.aggregate_id)?;
        match payload {
            Payload::PatientEmailVerified(e) => {
                tx.execute(VERIFY_EMAIL, &[&aggregate, &e.email]).await?;
            }
            Payload::PatientEmailChanged(e) => {
                tx.execute(CHANGE_EMAIL, &[&aggregate, &e.email]).await?;
            }
            Payload::PatientDetailsChanged(e) => {
                let identity = identity(e.identity.as_ref());
                let [date_of_birth, hospital_number, nhs_number] = &identity;
                tx.execute(
                    CHANGE_IDENTITY,
                    &[
                        &aggregate,
                        date_of_birth,
                        hospital_number,
                        nhs_number,
                        &identifiers(&identity),
                    ],
                )
                .await?;
            }
            Payload::PersonEmailVerified(e) => {
                tx.execute(VERIFY_EMAIL, &[&aggregate, &e.email]).await?;
            }
            Payload::PersonEmailChanged(e) => {
                tx.execute(CHANGE_EMAIL, &[&aggregate, &e.email]).await?;
            }
            Payload::TeamMemberRemoved(e) => {
                let member = uuid(event, "professional_id", &e.professional_id)?;
                tx.execute(REMOVE_MEMBER, &[&aggregate, &member]).await?;
                tx.execute(CLEAR_DEFAULT_CONTACT, &[&aggregate, &member])
                    .await?;
            }
            Payload::TeamMemberContactabilityChanged(e) => {
                let member = uuid(event, "professional_id", &e.professional_id)?;
                tx.execute(SET_CONTACTABLE, &[&aggregate, &member, &e.contactable])
                    .await?;
                if e.default_contact_cleared {
                    tx.execute(CLEAR_DEFAULT_CONTACT, &[&aggregate, &member])
                        .await?;
                }
            }
            Payload::AbsenceRecorded(e) => {
                let deputy = optional_uuid(event, "deputy_id", &e.deputy_id)?;
                let time = |t: Option<&prost_types::Timestamp>| {
                    t.and_then(proto::time::to_system)
                        .unwrap_or(SystemTime::UNIX_EPOCH)
                };
                tx.execute(
                    RECORD_ABSENCE,
                    &[
                        &uuid(event, "absence_id", &e.absence_id)?,
                        &aggregate,
                        &time(e.from.as_ref()),
                        &time(e.until.as_ref()),
                        &deputy,
                    ],
                )
                .await?;
            }
            Payload::AbsenceEnded(e) => {
                tx.execute(END_ABSENCE, &[&uuid(event, "absence_id", &e.absence_id)?])
                    .await?;
            }
            Payload::SystemRegistered(e) => {
                let teams = e
                    .team_ids
                    .iter()
                    .map(|t| uuid(event, "team_ids", t))
                    .collect::<Result<Vec<Uuid>, Error>>()?;
                let at = occurred_at(event);
                tx.execute(
                    REGISTER_SYSTEM,
                    &[
                        &uuid(event, "system_id", &e.system_id)?,
                        &e.name,
                        &teams,
                        &at,
                    ],
                )
                .await?;
            }
            Payload::PersonDeactivated(_) => {
                tx.execute(DEACTIVATE, &[&aggregate]).await?;
                tx.execute(LEAVE_TEAMS, &[&aggregate]).await?;
                tx.execute(DROP_ROLES, &[&aggregate]).await?;
            }
            Payload::StaffRoleGranted(e) => {
                let person = uuid(event, "person_id", &e.person_id)?;
                let role = proto::contract::role_name(e.role);
                tx.execute(GRANT_ROLE, &[&person, &role]).await?;
            }
            Payload::StaffRoleRevoked(e) => {
                let person = uuid(event, "person_id", &e.person_id)?;
                let role = proto::contract::role_name(e.role);
                tx.execute(REVOKE_ROLE, &[&person, &role]).await?;
            }
            Payload::PersonReactivated(_) => {
                tx.execute(REACTIVATE, &[&aggregate]).await?;
            }
            Payload::TeamMemberLeadChanged(e) => {
                let member = uuid(event, "professional_id", &e.professional_id)?;
                tx.execute(SET_LEAD, &[&aggregate, &member, &e.lead])
                    .await?;
            }
            Payload::TeamAutoCcSwitched(e) => {
                tx.execute(SET_AUTO_CC, &[&aggregate, &e.enabled]).await?;
            }
            Payload::TeamOpenToPatientsSet(e) => {
                tx.execute(SET_OPEN, &[&aggregate, &e.open]).await?;
            }
            Payload::TeamAlertsSet(e) => {
                tx.execute(SET_ALERTS, &[&aggregate, &e.enabled]).await?;
            }
            Payload::TeamJoinCodeIssued(e) => {
                let code = e.join_code.trim().to_lowercase();
                tx.execute(SET_JOIN_CODE, &[&aggregate, &code]).await?;
            }
            Payload::TeamDefaultContactSet(e) => {
                let contact = optional_uuid(event, "professional_id", &e.professional_id)?;
                tx.execute(SET_DEFAULT_CONTACT, &[&aggregate, &contact])
                    .await?;
            }
            Payload::CarerConsentRevoked(e) => {
                let carer = uuid(event, "carer_id", &e.carer_id)?;
                tx.execute(REVOKE_CONSENT, &[&aggregate, &carer]).await?;
            }
            Payload::RecordAccessRevoked(e) => {
                let grant = uuid(event, "grant_id", &e.grant_id)?;
                tx.execute(REVOKE_GRANT, &[&grant, &occurred_at(event)])
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes every collected upsert, one statement per table.
    pub(crate) async fn flush(&mut self, tx: &Transaction<'_>) -> Result<(), Error> {
        if !self.people.is_empty() {
            let people = std::mem::take(&mut self.people);
            let (mut ids, mut kinds, mut names, mut labels, mut emails, mut verified) =
                (vec![], vec![], vec![], vec![], vec![], vec![]);
            let (mut births, mut hospital, mut nhs, mut searched) =
                (vec![], vec![], vec![], vec![]);
            for (id, person) in people {
                ids.push(id);
                kinds.push(person.kind);
                names.push(person.name);
                labels.push(person.role_label);
                emails.push(person.email);
                verified.push(person.email_verified);
                searched.push(identifiers(&person.identity));
                let [b, h, n] = person.identity;
                births.push(b);
                hospital.push(h);
                nhs.push(n);
            }
            tx.execute(
                UPSERT_PEOPLE,
                &[
                    &ids, &kinds, &names, &labels, &emails, &verified, &births, &hospital, &nhs,
                    &searched,
                ],
            )
            .await?;
        }
        if !self.teams.is_empty() {
            let teams = std::mem::take(&mut self.teams);
            let (mut ids, mut names, mut descriptions) = (vec![], vec![], vec![]);
            for (id, (name, description)) in teams {
                ids.push(id);
                names.push(name);
                descriptions.push(description);
            }
            tx.execute(UPSERT_TEAMS, &[&ids, &names, &descriptions])
                .await?;
        }
        if !self.members.is_empty() {
            let members = std::mem::take(&mut self.members);
            let (mut teams, mut people, mut contactable, mut lead) =
                (vec![], vec![], vec![], vec![]);
            for ((team, person), (c, l)) in members {
                teams.push(team);
                people.push(person);
                contactable.push(c);
                lead.push(l);
            }
            tx.execute(UPSERT_MEMBERS, &[&teams, &people, &contactable, &lead])
                .await?;
        }
        if !self.care_teams.is_empty() {
            let care_teams = std::mem::take(&mut self.care_teams);
            let (mut patients, mut teams, mut methods, mut joined) =
                (vec![], vec![], vec![], vec![]);
            for ((patient, team), (method, at)) in care_teams {
                patients.push(patient);
                teams.push(team);
                methods.push(method);
                joined.push(at);
            }
            tx.execute(UPSERT_CARE_TEAMS, &[&patients, &teams, &methods, &joined])
                .await?;
        }
        if !self.consents.is_empty() {
            let consents = std::mem::take(&mut self.consents);
            let (mut patients, mut carers, mut relationships, mut expires) =
                (vec![], vec![], vec![], vec![]);
            for ((patient, carer), (relationship, until)) in consents {
                patients.push(patient);
                carers.push(carer);
                relationships.push(relationship);
                expires.push(until);
            }
            tx.execute(
                UPSERT_CONSENTS,
                &[&patients, &carers, &relationships, &expires],
            )
            .await?;
        }
        if !self.grants.is_empty() {
            let grants = std::mem::take(&mut self.grants);
            let (mut ids, mut patients, mut teams, mut expires, mut reasons) =
                (vec![], vec![], vec![], vec![], vec![]);
            for (id, (patient, team, until, reason)) in grants {
                ids.push(id);
                patients.push(patient);
                teams.push(team);
                expires.push(until);
                reasons.push(reason);
            }
            tx.execute(
                UPSERT_GRANTS,
                &[&ids, &patients, &teams, &expires, &reasons],
            )
            .await?;
        }
        Ok(())
    }
}
