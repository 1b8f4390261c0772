//! Patient records: registration, care teams, carers and their consent, and
//! time-limited record-access grants to teams.

use std::collections::BTreeMap;
use std::time::SystemTime;

use proto::events::{
    AggregateType, CarerConsentGranted, CarerConsentRevoked, CarerRelationship, Envelope,
    JoinMethod, PatientDetailsChanged, PatientEmailChanged, PatientEmailVerificationRequested,
    PatientEmailVerified, PatientIdentity, PatientJoinedTeam, PatientRegistered,
    RecordAccessGranted, RecordAccessRevoked, envelope::Payload,
};
use service_kit::Role;

use super::email::Address;
use super::values::{ACCESS_GRANT_MAX, to_timestamp};
use super::{Actor, Aggregate, Command, Context, DomainError, Needs, require_role};

/// A carer's consent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    pub relationship: CarerRelationship,
    pub expires_at: Option<SystemTime>,
    /// When this consent began: a grant while an earlier one was still in
    /// force continues it; after a gap (a revocation or an expiry) it is
    /// a new consent, and participation under the earlier one has ended.
    pub since: SystemTime,
}

impl Consent {
    pub fn in_force(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

/// A record-access grant to a team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub team_id: String,
    pub expires_at: SystemTime,
    pub revoked: bool,
}

impl Grant {
    pub fn in_force(&self, now: SystemTime) -> bool {
        !self.revoked && now < self.expires_at
    }
}

#[derive(Clone, Debug, Default)]
pub struct PatientRecord {
    pub exists: bool,
    pub name: String,
    /// Date of birth, hospital number, NHS number: each empty when none is
    /// recorded.
    pub identity: PatientIdentity,
    /// The patient's email address and its verification.
    pub address: Address,
    /// Care teams, and how the patient joined each.
    pub teams: BTreeMap<String, JoinMethod>,
    /// Consents granted and not revoked (they may have expired).
    pub consents: BTreeMap<String, Consent>,
    /// Every grant, by id.
    pub grants: BTreeMap<String, Grant>,
}

impl PatientRecord {
    pub fn consent_in_force(&self, carer: &str, now: SystemTime) -> bool {
        self.consents.get(carer).is_some_and(|c| c.in_force(now))
    }

    /// When the carer's consent in force began; none when none is in force.
    pub fn consent_since(&self, carer: &str, now: SystemTime) -> Option<SystemTime> {
        self.consents
            .get(carer)
            .filter(|c| c.in_force(now))
            .map(|c| c.since)
    }

    /// Whether a team holds an access grant in force.
    pub fn grant_in_force_for(&self, team: &str, now: SystemTime) -> bool {
        self.grants
            .values()
            .any(|g| g.team_id == team && g.in_force(now))
    }

    /// Teams holding a grant in force.
    pub fn grant_teams(&self, now: SystemTime) -> impl Iterator<Item = &String> {
        self.grants
            .values()
            .filter(move |g| g.in_force(now))
            .map(|g| &g.team_id)
    }

    /// Every team a decision about this record may need: care teams and
    /// teams that hold (or held) a grant.
    pub fn all_team_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.teams.keys().cloned().collect();
        for grant in self.grants.values() {
            if !ids.contains(&grant.team_id) {
                ids.push(grant.team_id.clone());
            }
        }
        ids
    }
}

fn time(ts: &Option<prost_types::Timestamp>) -> Option<SystemTime> {
    ts.as_ref()
        .and_then(|t| super::values::timestamp("expires_at", t).ok())
}

impl Aggregate for PatientRecord {
    const KIND: AggregateType = AggregateType::PatientRecord;

    fn confirms(&self, role: Role) -> Option<bool> {
        (role == Role::Patient).then_some(self.exists)
    }

    fn evolve(&mut self, event: &Envelope) {
        match &event.payload {
            Some(Payload::PatientRegistered(e)) => {
                self.exists = true;
                self.name = e.name.clone();
                self.identity = e.identity.clone().unwrap_or_default();
                self.address = Address::registered(&e.email, e.email_verified, &event.event_id);
                if !e.joined_team_id.is_empty() {
                    self.teams
                        .insert(e.joined_team_id.clone(), JoinMethod::SelfRegistration);
                }
            }
            Some(Payload::PatientEmailVerified(e)) => self.address.confirmed(&e.email),
            Some(Payload::PatientDetailsChanged(e)) => {
                self.identity = e.identity.clone().unwrap_or_default();
            }
            Some(Payload::PatientEmailChanged(e)) => {
                self.address.changed(&e.email, &event.event_id)
            }
            Some(Payload::PatientEmailVerificationRequested(_)) => {
                self.address.requested(&event.event_id)
            }
            Some(Payload::PatientJoinedTeam(e)) => {
                self.teams.insert(e.team_id.clone(), e.method());
            }
            Some(Payload::CarerConsentGranted(e)) => {
                let at = time(&event.occurred_at).unwrap_or(SystemTime::UNIX_EPOCH);
                let since = self
                    .consents
                    .get(&e.carer_id)
                    .filter(|c| c.in_force(at))
                    .map_or(at, |c| c.since);
                self.consents.insert(
                    e.carer_id.clone(),
                    Consent {
                        relationship: e.relationship(),
                        expires_at: time(&e.expires_at),
                        since,
                    },
                );
            }
            Some(Payload::CarerConsentRevoked(e)) => {
                self.consents.remove(&e.carer_id);
            }
            Some(Payload::RecordAccessGranted(e)) => {
                self.grants.insert(
                    e.grant_id.clone(),
                    Grant {
                        team_id: e.team_id.clone(),
                        expires_at: time(&e.expires_at).unwrap_or(SystemTime::UNIX_EPOCH),
                        revoked: false,
                    },
                );
            }
            Some(Payload::RecordAccessRevoked(e)) => {
                if let Some(g) = self.grants.get_mut(&e.grant_id) {
                    g.revoked = true;
                }
            }
            _ => {}
        }
    }
}

fn existing<'a>(record: &'a PatientRecord, id: &str) -> Result<&'a PatientRecord, DomainError> {
    if record.exists {
        Ok(record)
    } else {
        Err(DomainError::not_found(format!(
            "patient record {id} does not exist"
        )))
    }
}

/// Is the actor the patient, or a professional of one of the record's care
/// teams (loaded in the context)?
fn is_patient(actor: &Actor, patient_id: &str) -> bool {
    actor.role == Role::Patient && actor.person_id == patient_id
}

fn is_care_team_professional(ctx: &Context, record: &PatientRecord) -> bool {
    ctx.actor.role == Role::Professional && ctx.actor_in_any(record.teams.keys())
}

/// The record's own teams (care teams and grant holders): the command
/// already holds the record itself.
fn record_teams(record: &PatientRecord) -> Needs {
    Needs {
        teams: record.all_team_ids(),
        ..Needs::default()
    }
}

/// Register a patient (admin or professional).
#[derive(Clone, Debug)]
pub struct RegisterPatient {
    pub patient_id: String,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
    pub identity: PatientIdentity,
}

impl Command for RegisterPatient {
    type Target = PatientRecord;
    fn target_id(&self) -> &str {
        &self.patient_id
    }
    fn needs(&self, _: &PatientRecord, _: &Actor) -> Needs {
        // Someone holding a staff role is not also a patient under that id.
        Needs {
            people: vec![self.patient_id.clone()],
            ..Needs::default()
        }
    }
    fn decide(&self, record: &PatientRecord, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(
            &ctx.actor,
            &[Role::Admin, Role::Professional],
            "only an admin or a professional registers patients",
        )?;
        if record.exists {
            return Err(DomainError::precondition(format!(
                "patient {} is already registered",
                self.patient_id
            )));
        }
        if ctx
            .people
            .get(&self.patient_id)
            .is_some_and(|p| !p.staff.is_empty())
        {
            return Err(DomainError::precondition(format!(
                "person {} holds a staff role and cannot be a patient",
                self.patient_id
            )));
        }
        if self.email_verified {
            return Err(DomainError::invalid(
                "email_verified",
                "an address is verified only by its owner, following the link in the verification email sent to it",
            ));
        }
        Ok(Payload::PatientRegistered(PatientRegistered {
            patient_id: self.patient_id.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
            joined_team_id: String::new(),
            identity: (self.identity != PatientIdentity::default()).then(|| self.identity.clone()),
        }))
    }
}

/// An admin, or a professional of one of the record's care teams, records
/// or corrects the patient's date of birth, hospital number and NHS number
/// (all three: an empty one is no longer recorded).
#[derive(Clone, Debug)]
pub struct ChangePatientDetails {
    pub patient_id: String,
    pub identity: PatientIdentity,
}

impl Command for ChangePatientDetails {
    type Target = PatientRecord;
    fn target_id(&self) -> &str {
        &self.patient_id
    }
    fn needs(&self, record: &PatientRecord, _: &Actor) -> Needs {
        record_teams(record)
    }
    fn decide(&self, record: &PatientRecord, ctx: &Context) -> Result<Payload, DomainError> {
        let record = existing(record, &self.patient_id)?;
        if !(ctx.actor.is(Role::Admin) || is_care_team_professional(ctx, record)) {
            return Err(DomainError::denied(
                "only an admin or a professional of one of the patient's care teams records their date of birth and numbers",
            ));
        }
        if record.identity == self.identity {
            return Err(DomainError::precondition(
                "these are already the patient's date of birth and numbers",
            ));
        }
        Ok(Payload::PatientDetailsChanged(PatientDetailsChanged {
            identity: Some(self.identity.clone()),
        }))
    }
}

/// The patient, or an admin, changes the patient's email address: it is
/// unverified until its owner follows the link sent to it.
#[derive(Clone, Debug)]
pub struct ChangePatientEmail {
    pub patient_id: String,
    pub email: String,
}

/// Only the patient or an admin looks after the patient's address (staff
/// of a care team ask an admin: an address is where the patient is told of
/// replies).
fn require_patient_or_admin(
    ctx: &Context,
    patient_id: &str,
    what: &str,
) -> Result<(), DomainError> {
    if is_patient(&ctx.actor, patient_id) || ctx.actor.is(Role::Admin) {
        Ok(())
    } else {
        Err(DomainError::denied(format!(
            "only the patient or an admin {what}"
        )))
    }
}

impl Command for ChangePatientEmail {
    type Target = PatientRecord;
    fn target_id(&self) -> &str {
        &self.patient_id
    }
    fn decide(&self, record: &PatientRecord, ctx: &Context) -> Result<Payload, DomainError> {
        let record = existing(record, &self.patient_id)?;
        require_patient_or_admin(ctx, &self.patient_id, "changes the patient's email address")?;
        record.address.may_change_to(&self.email)?;
        Ok(Payload::PatientEmailChanged(PatientEmailChanged {
            email: self.email.clone(),
        }))
    }
}

/// The patient, or an admin, asks for another verification email.
#[derive(Clone, Debug)]
pub struct RequestEmailVerification {
    pub patient_id: String,
}

impl Command for RequestEmailVerification {
    type Target = PatientRecord;
    fn target_id(&self) -> &str {
        &self.patient_id
    }
    fn decide(&self, record: &PatientRecord, ctx: &Context) -> Result<Payload, DomainError> {
        let record = existing(record, &self.patient_id)?;
        require_patient_or_admin(ctx, &self.patient_id, "asks for a verification email")?;
        record.address.may_request()?;
        Ok(Payload::PatientEmailVerificationRequested(
            PatientEmailVerificationRequested {
                email: record.address.email.clone(),
            },
        ))
    }
}

/// The signed-in patient followed a verification link (its signature and
/// lifetime already checked): `email` is theirs, answering `request_id`.
/// The only way an address becomes verified.
#[derive(Clone, Debug)]
pub struct ConfirmPatientEmail {
    pub patient_id: String,
    pub email: String,
    pub request_id: String,
}

impl Command for ConfirmPatientEmail {
    type Target = PatientRecord;
    fn target_id(&self) -> &str {
        &self.patient_id
    }
    fn decide(&self, record: &PatientRecord, ctx: &Context) -> Result<Payload, DomainError> {
        let record = existing(record, &self.patient_id)?;
        if !is_patient(&ctx.actor, &self.patient_id) {
            return Err(DomainError::denied(
                "this verification link is for another person: sign in as the person it was sent to",
            ));
        }
        record.address.may_confirm(&self.email, &self.request_id)?;
        Ok(Payload::PatientEmailVerified(PatientEmailVerified {
            email: record.address.email.clone(),
            request_id: self.request_id.clone(),
        }))
    }
}

/// The patient joins a team, however they came to it, unless already in it.
fn join(
    record: &PatientRecord,
    team_id: &str,
    team_name: &str,
    method: JoinMethod,
) -> Result<Payload, DomainError> {
    if record.teams.contains_key(team_id) {
        return Err(DomainError::precondition(format!(
            "the patient is already in team {team_name}"
        )));
    }
    Ok(Payload::PatientJoinedTeam(PatientJoinedTeam {
        team_id: team_id.to_string(),
        method: method as i32,
    }))
}

/// A professional of a team (or an admin) adds the patient to that team.
#[derive(Clone, Debug)]
pub struct AddPatientToTeam {
    pub patient_id: String,
    pub team_id: String,
}

impl Command for AddPatientToTeam {
    type Target = PatientRecord;
    fn target_id(&self) -> &str {
        &self.patient_id
    }
    fn needs(&self, _: &PatientRecord, _: &Actor) -> Needs {
        Needs {
            teams: vec![self.team_id.clone()],
            ..Needs::default()
        }
    }
    fn decide(&self, record: &PatientRecord, ctx: &Context) -> Result<Payload, DomainError> {
        let record = existing(record, &self.patient_id)?;
        let team = ctx.team(&self.team_id)?;
        let staff_of_team =
            ctx.actor.is(Role::Professional) && ctx.is_member(team, &ctx.actor.person_id);
        if !(staff_of_team || ctx.actor.is(Role::Admin)) {
            return Err(DomainError::denied(format!(
                "only a professional of team {} (or an admin) adds patients to it",
                team.name
            )));
        }
        join(record, &self.team_id, &team.name, JoinMethod::AddedByStaff)
    }
}

/// Self-registration: the signed-in patient joins a team with its current
/// public join code; a person with no record yet signs up this way, their
/// record created (email unverified) and in the team, in one event.
#[derive(Clone, Debug)]
pub struct JoinTeamWithCode {
    pub patient_id: String,
    pub team_id: String,
    pub join_code: String,
    /// For a sign-up: the name the record takes, and where notifications go.
    pub name: String,
    pub email: String,
}

impl Command for JoinTeamWithCode {
    type Target = PatientRecord;
    fn target_id(&self) -> &str {
        &self.patient_id
    }
    fn ration(&self) -> super::Ration {
        super::Ration::Guess
    }
    fn needs(&self, _: &PatientRecord, _: &Actor) -> Needs {
        Needs {
            teams: vec![self.team_id.clone()],
            ..Needs::default()
        }
    }
    fn admission(&self, actor: &Actor) -> super::Admission {
        if is_patient(actor, &self.patient_id) {
            super::Admission::Registers
        } else {
            super::Admission::Confirmed
        }
    }
    fn decide(&self, record: &PatientRecord, ctx: &Context) -> Result<Payload, DomainError> {
        if !is_patient(&ctx.actor, &self.patient_id) {
            return Err(DomainError::denied(
                "only a signed-in patient joins a team with its code",
            ));
        }
        let team = ctx.team(&self.team_id)?;
        let matches = team
            .join_code
            .as_deref()
            .is_some_and(|code| code.eq_ignore_ascii_case(self.join_code.trim()));
        if !matches {
            return Err(DomainError::denied(format!(
                "the join code is not team {}'s current code: a team's code changes when a new one is issued, so ask the team for its code today",
                team.name
            )));
        }
        if !record.exists {
            return Ok(Payload::PatientRegistered(PatientRegistered {
                patient_id: self.patient_id.clone(),
                name: self.name.clone(),
                email: self.email.clone(),
                email_verified: false,
                joined_team_id: self.team_id.clone(),
                identity: None,
            }));
        }
        join(
            record,
            &self.team_id,
            &team.name,
            JoinMethod::SelfRegistration,
        )
    }
}

/// Grant a carer consent to see and join the patient's threads: the patient;
/// or, for a child's parent or guardian, a professional of a care team.
#[derive(Clone, Debug)]
pub struct GrantCarerConsent {
    pub patient_id: String,
    pub carer_id: String,
    pub relationship: CarerRelationship,
    pub expires_at: Option<SystemTime>,
}

impl Command for GrantCarerConsent {
    type Target = PatientRecord;
    fn target_id(&self) -> &str {
        &self.patient_id
    }
    fn needs(&self, record: &PatientRecord, _: &Actor) -> Needs {
        Needs {
            people: vec![self.carer_id.clone()],
            ..record_teams(record)
        }
    }
    fn decide(&self, record: &PatientRecord, ctx: &Context) -> Result<Payload, DomainError> {
        let record = existing(record, &self.patient_id)?;
        let parental = matches!(
            self.relationship,
            CarerRelationship::Parent | CarerRelationship::Guardian
        );
        if !(is_patient(&ctx.actor, &self.patient_id)
            || (parental && is_care_team_professional(ctx, record)))
        {
            return Err(DomainError::denied(
                "consent is granted by the patient, or for a parent or guardian by a professional of the patient's care teams",
            ));
        }
        ctx.carer(&self.carer_id)?;
        if self.expires_at.is_some_and(|t| t <= ctx.now) {
            return Err(DomainError::invalid("expires_at", "must be in the future"));
        }
        Ok(Payload::CarerConsentGranted(CarerConsentGranted {
            carer_id: self.carer_id.clone(),
            relationship: self.relationship as i32,
            expires_at: self.expires_at.map(to_timestamp),
        }))
    }
}

/// Revoke a carer's consent: the patient, a professional of a care team, or
/// an admin. From then on the carer neither sees nor joins the threads.
#[derive(Clone, Debug)]
pub struct RevokeCarerConsent {
    pub patient_id: String,
    pub carer_id: String,
}

impl Command for RevokeCarerConsent {
    type Target = PatientRecord;
    fn target_id(&self) -> &str {
        &self.patient_id
    }
    fn needs(&self, record: &PatientRecord, _: &Actor) -> Needs {
        record_teams(record)
    }
    fn decide(&self, record: &PatientRecord, ctx: &Context) -> Result<Payload, DomainError> {
        let record = existing(record, &self.patient_id)?;
        if !(is_patient(&ctx.actor, &self.patient_id)
            || ctx.actor.is(Role::Admin)
            || is_care_team_professional(ctx, record))
        {
            return Err(DomainError::denied(
                "consent is revoked by the patient, an admin or a professional of the patient's care teams",
            ));
        }
        if !record.consent_in_force(&self.carer_id, ctx.now) {
            return Err(DomainError::precondition(format!(
                "carer {} holds no consent in force",
                self.carer_id
            )));
        }
        Ok(Payload::CarerConsentRevoked(CarerConsentRevoked {
            carer_id: self.carer_id.clone(),
        }))
    }
}

/// The patient grants a team temporary access to their record (e.g. PALS).
#[derive(Clone, Debug)]
pub struct GrantRecordAccess {
    pub patient_id: String,
    pub grant_id: String,
    pub team_id: String,
    pub expires_at: SystemTime,
    pub reason: String,
}

impl Command for GrantRecordAccess {
    type Target = PatientRecord;
    fn target_id(&self) -> &str {
        &self.patient_id
    }
    fn needs(&self, _: &PatientRecord, _: &Actor) -> Needs {
        Needs {
            teams: vec![self.team_id.clone()],
            ..Needs::default()
        }
    }
    fn decide(&self, record: &PatientRecord, ctx: &Context) -> Result<Payload, DomainError> {
        if !is_patient(&ctx.actor, &self.patient_id) {
            return Err(DomainError::denied(
                "only the patient grants access to their record",
            ));
        }
        let record = existing(record, &self.patient_id)?;
        let team = ctx.team(&self.team_id)?;
        if self.expires_at <= ctx.now {
            return Err(DomainError::invalid("expires_at", "must be in the future"));
        }
        if self.expires_at > ctx.now + ACCESS_GRANT_MAX {
            return Err(DomainError::invalid(
                "expires_at",
                "must be at most a year ahead",
            ));
        }
        if record.grant_in_force_for(&self.team_id, ctx.now) {
            return Err(DomainError::precondition_because(
                service_kit::reason::ACCESS_ALREADY_GRANTED,
                format!(
                    "team {} already has access to the record; revoke that grant first",
                    team.name
                ),
            ));
        }
        if record.grants.contains_key(&self.grant_id) {
            return Err(DomainError::precondition(format!(
                "grant {} already exists",
                self.grant_id
            )));
        }
        Ok(Payload::RecordAccessGranted(RecordAccessGranted {
            grant_id: self.grant_id.clone(),
            team_id: self.team_id.clone(),
            expires_at: Some(to_timestamp(self.expires_at)),
            reason: self.reason.clone(),
        }))
    }
    fn created(&self) -> super::Created {
        super::Created {
            grant_id: Some(self.grant_id.clone()),
            ..Default::default()
        }
    }
}

/// End a grant early: the patient, or a professional of the granted team
/// once the enquiry is solved.
#[derive(Clone, Debug)]
pub struct RevokeRecordAccess {
    pub patient_id: String,
    pub grant_id: String,
}

impl Command for RevokeRecordAccess {
    type Target = PatientRecord;
    fn target_id(&self) -> &str {
        &self.patient_id
    }
    fn needs(&self, record: &PatientRecord, _: &Actor) -> Needs {
        Needs {
            teams: record
                .grants
                .get(&self.grant_id)
                .map(|g| vec![g.team_id.clone()])
                .unwrap_or_default(),
            ..Needs::default()
        }
    }
    fn decide(&self, record: &PatientRecord, ctx: &Context) -> Result<Payload, DomainError> {
        let record = existing(record, &self.patient_id)?;
        let grant = record.grants.get(&self.grant_id).ok_or_else(|| {
            DomainError::not_found(format!("grant {} does not exist", self.grant_id))
        })?;
        let of_team = ctx.actor.is(Role::Professional)
            && ctx
                .teams
                .get(&grant.team_id)
                .is_some_and(|t| ctx.is_member(t, &ctx.actor.person_id));
        if !(is_patient(&ctx.actor, &self.patient_id) || of_team) {
            return Err(DomainError::denied(
                "a grant is ended by the patient or by a professional of the team holding it",
            ));
        }
        if !grant.in_force(ctx.now) {
            return Err(DomainError::precondition(format!(
                "grant {} is no longer in force",
                self.grant_id
            )));
        }
        Ok(Payload::RecordAccessRevoked(RecordAccessRevoked {
            grant_id: self.grant_id.clone(),
            team_id: grant.team_id.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::*;
    use crate::domain::{Person, Team};
    use proto::events::{CarerRegistered, TeamCreated, TeamJoinCodeIssued, TeamMemberAdded};
    use std::sync::Arc;
    use std::time::Duration;

    struct World {
        patient: Actor,
        nurse: Actor,
        admin: Actor,
        carer: Actor,
        team_id: String,
        team: Team,
        record: PatientRecord,
    }

    fn world() -> World {
        let admin = person(Role::Admin, "Ada Admin");
        let patient = person(Role::Patient, "Pat Patel");
        let nurse = person(Role::Professional, "Nina Nurse");
        let carer = person(Role::Carer, "Paul Patel");
        let team_id = new_id();
        let team: Team = given(
            &admin,
            [
                Payload::TeamCreated(TeamCreated {
                    team_id: team_id.clone(),
                    name: "Renal".into(),
                    description: String::new(),
                }),
                Payload::TeamMemberAdded(TeamMemberAdded {
                    professional_id: nurse.person_id.clone(),
                    contactable: true,
                    lead: false,
                }),
                Payload::TeamJoinCodeIssued(TeamJoinCodeIssued {
                    join_code: "RENAL23456".into(),
                }),
            ],
        );
        let record: PatientRecord = given(
            &admin,
            [
                Payload::PatientRegistered(PatientRegistered {
                    patient_id: patient.person_id.clone(),
                    name: "Pat Patel".into(),
                    email: "pat@example.org".into(),
                    email_verified: false,
                    joined_team_id: String::new(),
                    identity: None,
                }),
                Payload::PatientJoinedTeam(PatientJoinedTeam {
                    team_id: team_id.clone(),
                    method: JoinMethod::AddedByStaff as i32,
                }),
            ],
        );
        World {
            patient,
            nurse,
            admin,
            carer,
            team_id,
            team,
            record,
        }
    }

    fn ctx(w: &World, actor: &Actor) -> Context {
        let mut ctx = Context::new(actor.clone(), SystemTime::now());
        ctx.record = Some(Arc::new(w.record.clone()));
        ctx.teams
            .insert(w.team_id.clone(), Arc::new(w.team.clone()));
        ctx.people.insert(
            w.carer.person_id.clone(),
            Arc::new(given::<Person>(
                &w.admin,
                [Payload::CarerRegistered(CarerRegistered {
                    carer_id: w.carer.person_id.clone(),
                    name: "Paul Patel".into(),
                    email: "paul@example.org".into(),
                    email_verified: true,
                })],
            )),
        );
        ctx
    }

    fn consent(w: &World, relationship: CarerRelationship) -> GrantCarerConsent {
        GrantCarerConsent {
            patient_id: w.patient.person_id.clone(),
            carer_id: w.carer.person_id.clone(),
            relationship,
            expires_at: None,
        }
    }

    #[test]
    fn self_registration_needs_the_current_code() {
        let w = world();
        let join = |code: &str| JoinTeamWithCode {
            patient_id: w.patient.person_id.clone(),
            team_id: w.team_id.clone(),
            join_code: code.into(),
            name: "Pat Patel".into(),
            email: "pat@example.org".into(),
        };
        let mut record = w.record.clone();
        record.teams.clear();
        let mut c = ctx(&w, &w.patient);
        c.record = Some(Arc::new(record.clone()));
        assert_refused(join("WRONG").decide(&record, &c), "denied", "current code");
        let event = join("renal23456").decide(&record, &c).unwrap();
        assert!(
            matches!(&event, Payload::PatientJoinedTeam(e) if e.method() == JoinMethod::SelfRegistration)
        );

        // An old code stops working once a new one is issued.
        let mut team = w.team.clone();
        team.evolve(&envelope(
            &w.admin,
            Payload::TeamJoinCodeIssued(TeamJoinCodeIssued {
                join_code: "NEWCODE234".into(),
            }),
        ));
        c.teams.insert(w.team_id.clone(), Arc::new(team));
        assert_refused(
            join("RENAL23456").decide(&record, &c),
            "denied",
            "current code",
        );

        // Only the patient themself joins with a code.
        let other = person(Role::Patient, "Other");
        assert_refused(
            join("NEWCODE234").decide(&record, &ctx(&w, &other)),
            "denied",
            "signed-in patient",
        );
    }

    #[test]
    fn a_person_without_a_record_signs_up_with_the_current_code_in_one_event() {
        let w = world();
        let newcomer = person(Role::Patient, "Nia Newcomer");
        let join = |code: &str| JoinTeamWithCode {
            patient_id: newcomer.person_id.clone(),
            team_id: w.team_id.clone(),
            join_code: code.into(),
            name: "Nia Newcomer".into(),
            email: "nia@example.org".into(),
        };
        // Accepted from a patient the log does not know yet, for their own
        // record only.
        assert_eq!(
            join("renal23456").admission(&newcomer),
            super::super::Admission::Registers
        );
        assert_eq!(
            join("renal23456").admission(&w.patient),
            super::super::Admission::Confirmed
        );
        let nobody = PatientRecord::default();
        let c = ctx(&w, &newcomer);
        assert_refused(
            join("WRONG").decide(&nobody, &c),
            "denied",
            "changes when a new one is issued",
        );
        let event = join("renal23456").decide(&nobody, &c).unwrap();
        let Payload::PatientRegistered(registered) = &event else {
            panic!("not a registration: {event:?}");
        };
        assert_eq!(registered.patient_id, newcomer.person_id);
        assert_eq!(registered.joined_team_id, w.team_id);
        assert!(!registered.email_verified, "unverified until proven");
        let mut record = nobody.clone();
        record.evolve(&envelope(&newcomer, event));
        assert!(record.exists);
        assert_eq!(
            record.teams.get(&w.team_id),
            Some(&JoinMethod::SelfRegistration)
        );
        assert_eq!(record.confirms(Role::Patient), Some(true));
        // Signed up, the same code is a join that has already happened.
        assert_refused(
            join("renal23456").decide(&record, &c),
            "precondition",
            "already in team",
        );
    }

    #[test]
    fn staff_add_patients_to_their_own_team_only() {
        let w = world();
        let mut record = w.record.clone();
        record.teams.clear();
        let add = AddPatientToTeam {
            patient_id: w.patient.person_id.clone(),
            team_id: w.team_id.clone(),
        };
        assert!(add.decide(&record, &ctx(&w, &w.nurse)).is_ok());
        assert!(add.decide(&record, &ctx(&w, &w.admin)).is_ok());
        let stranger = person(Role::Professional, "Dr Other");
        assert_refused(
            add.decide(&record, &ctx(&w, &stranger)),
            "denied",
            "only a professional of team Renal",
        );
        assert_refused(
            add.decide(&w.record, &ctx(&w, &w.nurse)),
            "precondition",
            "already in team",
        );
    }

    #[test]
    fn consent_is_the_patients_or_staffs_for_parents_and_guardians() {
        let w = world();
        assert!(
            consent(&w, CarerRelationship::FamilyMember)
                .decide(&w.record, &ctx(&w, &w.patient))
                .is_ok()
        );
        assert!(
            consent(&w, CarerRelationship::Parent)
                .decide(&w.record, &ctx(&w, &w.nurse))
                .is_ok()
        );
        assert_refused(
            consent(&w, CarerRelationship::FamilyMember).decide(&w.record, &ctx(&w, &w.nurse)),
            "denied",
            "parent or guardian",
        );
        let stranger = person(Role::Professional, "Dr Other");
        assert_refused(
            consent(&w, CarerRelationship::Guardian).decide(&w.record, &ctx(&w, &stranger)),
            "denied",
            "care teams",
        );
        let mut past = consent(&w, CarerRelationship::Parent);
        past.expires_at = Some(SystemTime::now() - Duration::from_secs(1));
        assert_refused(
            past.decide(&w.record, &ctx(&w, &w.patient)),
            "invalid",
            "expires_at",
        );
        let mut unknown = consent(&w, CarerRelationship::Parent);
        unknown.carer_id = new_id();
        assert_refused(
            unknown.decide(&w.record, &ctx(&w, &w.patient)),
            "not found",
            "not registered",
        );
    }

    #[test]
    fn consent_ends_when_revoked_or_expired() {
        let w = world();
        let now = SystemTime::now();
        let mut record = w.record.clone();
        let mut granted = consent(&w, CarerRelationship::Parent);
        granted.expires_at = Some(now + Duration::from_secs(3600));
        let event = granted.decide(&record, &ctx(&w, &w.patient)).unwrap();
        record.evolve(&envelope(&w.patient, event));
        assert!(record.consent_in_force(&w.carer.person_id, now));
        assert!(!record.consent_in_force(&w.carer.person_id, now + Duration::from_secs(3601)));

        let revoke = RevokeCarerConsent {
            patient_id: w.patient.person_id.clone(),
            carer_id: w.carer.person_id.clone(),
        };
        let carer_ctx = ctx(&w, &w.carer);
        assert_refused(
            revoke.decide(&record, &carer_ctx),
            "denied",
            "revoked by the patient",
        );
        let event = revoke.decide(&record, &ctx(&w, &w.patient)).unwrap();
        record.evolve(&envelope(&w.patient, event));
        assert!(!record.consent_in_force(&w.carer.person_id, now));
        assert_refused(
            revoke.decide(&record, &ctx(&w, &w.patient)),
            "precondition",
            "no consent in force",
        );
    }

    #[test]
    fn record_access_is_granted_by_the_patient_for_a_bounded_time() {
        let w = world();
        let now = SystemTime::now();
        let grant = |expires: SystemTime| GrantRecordAccess {
            patient_id: w.patient.person_id.clone(),
            grant_id: new_id(),
            team_id: w.team_id.clone(),
            expires_at: expires,
            reason: "complaint".into(),
        };
        let week = grant(now + Duration::from_secs(7 * 86400));
        assert_refused(
            week.decide(&w.record, &ctx(&w, &w.nurse)),
            "denied",
            "only the patient",
        );
        assert_refused(
            grant(now - Duration::from_secs(1)).decide(&w.record, &ctx(&w, &w.patient)),
            "invalid",
            "future",
        );
        assert_refused(
            grant(now + Duration::from_secs(400 * 86400)).decide(&w.record, &ctx(&w, &w.patient)),
            "invalid",
            "a year",
        );
        let event = week.decide(&w.record, &ctx(&w, &w.patient)).unwrap();
        let mut record = w.record.clone();
        record.evolve(&envelope(&w.patient, event));
        assert!(record.grant_in_force_for(&w.team_id, now));
        assert!(!record.grant_in_force_for(&w.team_id, now + Duration::from_secs(8 * 86400)));
        assert_refused(
            grant(now + Duration::from_secs(86400)).decide(&record, &ctx(&w, &w.patient)),
            "precondition",
            "already has access",
        );

        // The team ends it once the enquiry is solved; a stranger cannot.
        let revoke = RevokeRecordAccess {
            patient_id: w.patient.person_id.clone(),
            grant_id: week.grant_id.clone(),
        };
        let stranger = person(Role::Professional, "Dr Other");
        assert_refused(
            revoke.decide(&record, &ctx(&w, &stranger)),
            "denied",
            "team holding it",
        );
        let event = revoke.decide(&record, &ctx(&w, &w.nurse)).unwrap();
        record.evolve(&envelope(&w.nurse, event));
        assert!(!record.grant_in_force_for(&w.team_id, now));
        assert_refused(
            revoke.decide(&record, &ctx(&w, &w.patient)),
            "precondition",
            "no longer in force",
        );
    }

    #[test]
    fn an_email_is_verified_only_by_its_owner_following_a_pending_link() {
        let w = world();
        // Registered with an address: one request pending, unverified.
        assert!(!w.record.address.verified);
        assert_eq!(w.record.address.requests.len(), 1);
        let registered = w.record.address.requests.first().unwrap().clone();
        let confirm = |email: &str, request: &str| ConfirmPatientEmail {
            patient_id: w.patient.person_id.clone(),
            email: email.into(),
            request_id: request.into(),
        };
        // Someone else holding the link is refused: the link is the
        // patient's, followed while signed in as the patient.
        for who in [&w.admin, &w.nurse, &person(Role::Patient, "Someone Else")] {
            assert_refused(
                confirm("pat@example.org", &registered).decide(&w.record, &ctx(&w, who)),
                "denied",
                "another person",
            );
        }
        assert_refused(
            confirm("other@example.org", &registered).decide(&w.record, &ctx(&w, &w.patient)),
            "precondition",
            "no longer on record",
        );
        assert_refused(
            confirm("pat@example.org", "not-a-request").decide(&w.record, &ctx(&w, &w.patient)),
            "precondition",
            "used or replaced",
        );
        let event = confirm("PAT@example.org", &registered)
            .decide(&w.record, &ctx(&w, &w.patient))
            .unwrap();
        let mut record = w.record.clone();
        record.evolve(&envelope(&w.patient, event));
        assert!(record.address.verified);
        assert!(record.address.requests.is_empty());
        // A link works once.
        assert_refused(
            confirm("pat@example.org", &registered).decide(&record, &ctx(&w, &w.patient)),
            "precondition",
            "already verified",
        );
    }

    #[test]
    fn a_changed_email_is_unverified_and_old_links_verify_nothing() {
        let w = world();
        let registered = w.record.address.requests.first().unwrap().clone();
        let change = ChangePatientEmail {
            patient_id: w.patient.person_id.clone(),
            email: "pat.new@example.org".into(),
        };
        assert_refused(
            change.decide(&w.record, &ctx(&w, &w.nurse)),
            "denied",
            "only the patient or an admin",
        );
        assert_refused(
            ChangePatientEmail {
                email: "PAT@example.org".into(),
                ..change.clone()
            }
            .decide(&w.record, &ctx(&w, &w.patient)),
            "precondition",
            "already the email address",
        );
        let mut record = w.record.clone();
        for who in [&w.patient, &w.admin] {
            assert!(change.decide(&record, &ctx(&w, who)).is_ok());
        }
        let changed = envelope(
            &w.admin,
            change.decide(&record, &ctx(&w, &w.admin)).unwrap(),
        );
        record.evolve(&changed);
        assert_eq!(record.address.email, "pat.new@example.org");
        assert!(!record.address.verified);
        assert_eq!(
            record.address.requests,
            std::collections::BTreeSet::from([changed.event_id.clone()])
        );
        // The old address's link no longer verifies anything.
        assert_refused(
            ConfirmPatientEmail {
                patient_id: w.patient.person_id.clone(),
                email: "pat@example.org".into(),
                request_id: registered,
            }
            .decide(&record, &ctx(&w, &w.patient)),
            "precondition",
            "no longer on record",
        );
        // Another email may be asked for; both links then work, once.
        let again = RequestEmailVerification {
            patient_id: w.patient.person_id.clone(),
        };
        assert_refused(
            again.decide(&record, &ctx(&w, &w.carer)),
            "denied",
            "verification email",
        );
        let asked = envelope(
            &w.patient,
            again.decide(&record, &ctx(&w, &w.patient)).unwrap(),
        );
        record.evolve(&asked);
        assert_eq!(record.address.requests.len(), 2);
        let verified = ConfirmPatientEmail {
            patient_id: w.patient.person_id.clone(),
            email: "pat.new@example.org".into(),
            request_id: asked.event_id.clone(),
        }
        .decide(&record, &ctx(&w, &w.patient))
        .unwrap();
        record.evolve(&envelope(&w.patient, verified));
        assert!(record.address.verified);
        assert_refused(
            again.decide(&record, &ctx(&w, &w.admin)),
            "precondition",
            "already verified",
        );
    }

    #[test]
    fn patients_are_registered_by_staff_once() {
        let w = world();
        let register = RegisterPatient {
            patient_id: new_id(),
            name: "New Patient".into(),
            email: String::new(),
            email_verified: false,
            identity: Default::default(),
        };
        assert!(
            register
                .decide(&PatientRecord::default(), &ctx(&w, &w.nurse))
                .is_ok()
        );
        assert_refused(
            register.decide(&PatientRecord::default(), &ctx(&w, &w.patient)),
            "denied",
            "registers patients",
        );
        assert_refused(
            register.decide(&w.record, &ctx(&w, &w.admin)),
            "precondition",
            "already registered",
        );
        // Staff cannot claim an address verified.
        let claimed = RegisterPatient {
            email: "new@example.org".into(),
            email_verified: true,
            ..register
        };
        assert_refused(
            claimed.decide(&PatientRecord::default(), &ctx(&w, &w.admin)),
            "invalid",
            "verified only by its owner",
        );
    }
}
