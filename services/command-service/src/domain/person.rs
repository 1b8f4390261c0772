//! People: professionals and carers (patients are their records), the
//! staff roles (admin, operator, auditor) an admin grants, and the
//! hospital's own systems (service accounts that post notices).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use proto::events::{
    AbsenceEnded, AbsenceRecorded, AggregateType, CarerRegistered, Envelope, PersonDeactivated,
    PersonEmailChanged, PersonEmailVerificationRequested, PersonEmailVerified, PersonReactivated,
    ProfessionalRegistered, StaffRoleGranted, StaffRoleRevoked, SystemRegistered,
    envelope::Payload,
};
use service_kit::Role;

use super::email::Address;
use super::{Aggregate, Command, Context, DomainError, require_role};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PersonKind {
    #[default]
    Unregistered,
    Professional,
    Carer,
    /// One of the hospital's systems: it posts notices for its teams.
    System,
}

/// A registered person.
#[derive(Clone, Debug, Default)]
pub struct Person {
    pub kind: PersonKind,
    pub name: String,
    pub role_label: String,
    /// Their email address (a professional's work address) and its
    /// verification.
    pub address: Address,
    /// Staff roles in force, by their names ("admin", "operator", "auditor").
    pub staff: BTreeSet<&'static str>,
    /// Their account is closed: everything they ask is refused.
    pub deactivated: bool,
    /// When it was last closed: the teams they were added to and the
    /// threads they joined before then are not theirs any more, even once
    /// it is opened again.
    pub deactivated_at: Option<SystemTime>,
    /// A system's teams: those it may post notices for.
    pub system_teams: BTreeSet<String>,
    /// A professional's absences, by id.
    pub absences: BTreeMap<String, Absence>,
}

/// A time a professional is away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Absence {
    pub from: SystemTime,
    pub until: SystemTime,
    pub deputy: Option<String>,
    /// Ended before its time.
    pub ended: bool,
}

/// The longest absence recorded at once.
pub const ABSENCE_MAX: Duration = Duration::from_secs(366 * 24 * 3600);

impl Person {
    pub fn is_professional(&self) -> bool {
        self.kind == PersonKind::Professional
    }
    pub fn is_carer(&self) -> bool {
        self.kind == PersonKind::Carer
    }
    pub fn is_system(&self) -> bool {
        self.kind == PersonKind::System
    }
    /// Their absence in force at `now`, if any (the one ending last).
    pub fn away_at(&self, now: SystemTime) -> Option<&Absence> {
        self.absences
            .values()
            .filter(|a| !a.ended && a.from <= now && now < a.until)
            .max_by_key(|a| a.until)
    }
    pub fn holds(&self, role: Role) -> bool {
        self.staff.contains(role.as_str())
    }

    /// Whether a membership or participation that began at `since` is
    /// still theirs: it began after their account was last closed.
    pub fn still_holds_from(&self, since: SystemTime) -> bool {
        !self.deactivated && self.deactivated_at.is_none_or(|closed| since > closed)
    }
}

/// The staff roles, as events carry them.
pub fn staff_role(role: Role) -> Option<proto::events::Role> {
    matches!(role, Role::Admin | Role::Operator | Role::Auditor).then(|| role.to_proto())
}

fn role_from_event(role: i32) -> Option<Role> {
    match proto::events::Role::try_from(role).ok()? {
        proto::events::Role::Admin => Some(Role::Admin),
        proto::events::Role::Operator => Some(Role::Operator),
        proto::events::Role::Auditor => Some(Role::Auditor),
        _ => None,
    }
}

impl Aggregate for Person {
    const KIND: AggregateType = AggregateType::Person;

    fn deactivated(&self) -> bool {
        self.deactivated
    }

    fn confirms(&self, role: Role) -> Option<bool> {
        if self.deactivated {
            return Some(false);
        }
        match role {
            Role::Professional => Some(self.is_professional()),
            Role::Carer => Some(self.is_carer()),
            Role::Admin | Role::Operator | Role::Auditor => Some(self.holds(role)),
            Role::Service => Some(self.is_system()),
            Role::Patient | Role::System => None,
        }
    }

    fn evolve(&mut self, event: &Envelope) {
        match &event.payload {
            Some(Payload::ProfessionalRegistered(e)) => {
                self.kind = PersonKind::Professional;
                self.name = e.name.clone();
                self.role_label = e.role_label.clone();
                // Older logs' work addresses count as verified.
                self.address =
                    Address::registered(&e.work_email, !e.work_email_unverified, &event.event_id);
            }
            Some(Payload::CarerRegistered(e)) => {
                self.kind = PersonKind::Carer;
                self.name = e.name.clone();
                self.address = Address::registered(&e.email, e.email_verified, &event.event_id);
            }
            Some(Payload::SystemRegistered(e)) => {
                self.kind = PersonKind::System;
                self.name = e.name.clone();
                self.system_teams = e.team_ids.iter().cloned().collect();
            }
            Some(Payload::AbsenceRecorded(e)) => {
                let time = |t: Option<&prost_types::Timestamp>| {
                    t.and_then(proto::time::to_system)
                        .unwrap_or(SystemTime::UNIX_EPOCH)
                };
                self.absences.insert(
                    e.absence_id.clone(),
                    Absence {
                        from: time(e.from.as_ref()),
                        until: time(e.until.as_ref()),
                        deputy: (!e.deputy_id.is_empty()).then(|| e.deputy_id.clone()),
                        ended: false,
                    },
                );
            }
            Some(Payload::AbsenceEnded(e)) => {
                if let Some(a) = self.absences.get_mut(&e.absence_id) {
                    a.ended = true;
                }
            }
            Some(Payload::PersonEmailChanged(e)) => self.address.changed(&e.email, &event.event_id),
            Some(Payload::PersonEmailVerificationRequested(_)) => {
                self.address.requested(&event.event_id)
            }
            Some(Payload::PersonEmailVerified(e)) => self.address.confirmed(&e.email),
            Some(Payload::StaffRoleGranted(e)) => {
                if let Some(role) = role_from_event(e.role) {
                    self.staff.insert(role.as_str());
                }
                if self.name.is_empty() {
                    self.name = e.name.clone();
                }
            }
            Some(Payload::StaffRoleRevoked(e)) => {
                if let Some(role) = role_from_event(e.role) {
                    self.staff.remove(role.as_str());
                }
            }
            Some(Payload::PersonDeactivated(_)) => {
                self.deactivated = true;
                self.deactivated_at = Some(super::occurred_at(event));
                self.staff.clear();
            }
            Some(Payload::PersonReactivated(_)) => self.deactivated = false,
            _ => {}
        }
    }
}

/// The account must be open: a closed one is changed by nobody until an
/// admin opens it again.
fn open(person: &Person, id: &str) -> Result<(), DomainError> {
    if person.deactivated {
        Err(DomainError::precondition(format!(
            "the account of {id} is deactivated: an admin reactivates it first"
        )))
    } else {
        Ok(())
    }
}

fn not_registered_yet(person: &Person, id: &str) -> Result<(), DomainError> {
    if person.kind == PersonKind::Unregistered {
        Ok(())
    } else {
        Err(DomainError::precondition(format!(
            "person {id} is already registered"
        )))
    }
}

/// Register a professional (admin).
#[derive(Clone, Debug)]
pub struct RegisterProfessional {
    pub professional_id: String,
    pub name: String,
    pub role_label: String,
    pub work_email: String,
}

impl Command for RegisterProfessional {
    type Target = Person;

    fn target_id(&self) -> &str {
        &self.professional_id
    }

    fn decide(&self, person: &Person, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(
            &ctx.actor,
            &[Role::Admin],
            "only an admin registers professionals",
        )?;
        not_registered_yet(person, &self.professional_id)?;
        Ok(Payload::ProfessionalRegistered(ProfessionalRegistered {
            professional_id: self.professional_id.clone(),
            name: self.name.clone(),
            role_label: self.role_label.clone(),
            work_email: self.work_email.clone(),
            // Unverified until its owner follows the link sent to it.
            work_email_unverified: !self.work_email.is_empty(),
        }))
    }
}

/// Register one of the hospital's systems, which may post notices for the
/// teams named (admin). The teams are checked to exist before (a team is
/// never removed), since a person's command may not read teams.
#[derive(Clone, Debug)]
pub struct RegisterSystem {
    pub system_id: String,
    pub name: String,
    pub team_ids: Vec<String>,
}

impl Command for RegisterSystem {
    type Target = Person;

    fn target_id(&self) -> &str {
        &self.system_id
    }

    fn decide(&self, person: &Person, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(
            &ctx.actor,
            &[Role::Admin],
            "only an admin registers the hospital's systems",
        )?;
        not_registered_yet(person, &self.system_id)?;
        if !person.staff.is_empty() {
            return Err(DomainError::precondition(format!(
                "person {} holds a staff role: a system is no person",
                self.system_id
            )));
        }
        if self.team_ids.is_empty() {
            return Err(DomainError::invalid(
                "team_ids",
                "name at least one team the system may post notices for",
            ));
        }
        Ok(Payload::SystemRegistered(SystemRegistered {
            system_id: self.system_id.clone(),
            name: self.name.clone(),
            team_ids: self.team_ids.clone(),
        }))
    }
}

/// Only the professional themself, or an admin, records or ends their
/// absence; only a professional's whose account is open.
fn may_set_absence(person: &Person, id: &str, ctx: &Context) -> Result<(), DomainError> {
    if !(ctx.actor.is(Role::Admin)
        || (ctx.actor.is(Role::Professional) && ctx.actor.person_id == id))
    {
        return Err(DomainError::denied(
            "a professional records their own absence, or an admin records it for them",
        ));
    }
    if !person.is_professional() {
        return Err(DomainError::not_found(format!(
            "no professional {id} is registered"
        )));
    }
    open(person, id)
}

/// Record a professional's absence (themself, or an admin). The deputy is
/// checked to be an open professional's account before (a person's
/// command may not read another person).
#[derive(Clone, Debug)]
pub struct RecordAbsence {
    pub person_id: String,
    pub absence_id: String,
    /// None: from now.
    pub from: Option<SystemTime>,
    pub until: SystemTime,
    pub deputy_id: Option<String>,
}

impl Command for RecordAbsence {
    type Target = Person;

    fn target_id(&self) -> &str {
        &self.person_id
    }

    fn decide(&self, person: &Person, ctx: &Context) -> Result<Payload, DomainError> {
        may_set_absence(person, &self.person_id, ctx)?;
        let from = self.from.unwrap_or(ctx.now);
        if self.until <= from || self.until <= ctx.now {
            return Err(DomainError::invalid(
                "until",
                "must be after the absence starts, and in the future",
            ));
        }
        if self.until.duration_since(from).unwrap_or_default() > ABSENCE_MAX {
            return Err(DomainError::invalid(
                "until",
                "an absence is recorded for at most a year at a time",
            ));
        }
        if self.deputy_id.as_deref() == Some(self.person_id.as_str()) {
            return Err(DomainError::invalid(
                "deputy_id",
                "someone else stands in: not the one away",
            ));
        }
        Ok(Payload::AbsenceRecorded(AbsenceRecorded {
            absence_id: self.absence_id.clone(),
            from: Some(super::values::to_timestamp(from)),
            until: Some(super::values::to_timestamp(self.until)),
            deputy_id: self.deputy_id.clone().unwrap_or_default(),
        }))
    }
}

/// End an absence before its time (themself, or an admin).
#[derive(Clone, Debug)]
pub struct EndAbsence {
    pub person_id: String,
    pub absence_id: String,
}

impl Command for EndAbsence {
    type Target = Person;

    fn target_id(&self) -> &str {
        &self.person_id
    }

    fn decide(&self, person: &Person, ctx: &Context) -> Result<Payload, DomainError> {
        may_set_absence(person, &self.person_id, ctx)?;
        let absence = person.absences.get(&self.absence_id).ok_or_else(|| {
            DomainError::not_found(format!("no absence {} is recorded", self.absence_id))
        })?;
        if absence.ended || absence.until <= ctx.now {
            return Err(DomainError::precondition("that absence is over already"));
        }
        Ok(Payload::AbsenceEnded(AbsenceEnded {
            absence_id: self.absence_id.clone(),
        }))
    }
}

/// Register a carer (admin, or a professional registering a parent).
#[derive(Clone, Debug)]
pub struct RegisterCarer {
    pub carer_id: String,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
}

impl Command for RegisterCarer {
    type Target = Person;

    fn target_id(&self) -> &str {
        &self.carer_id
    }

    fn decide(&self, person: &Person, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(
            &ctx.actor,
            &[Role::Admin, Role::Professional],
            "only an admin or a professional registers carers",
        )?;
        not_registered_yet(person, &self.carer_id)?;
        if !person.staff.is_empty() {
            return Err(DomainError::precondition(format!(
                "person {} holds a staff role and cannot be a carer",
                self.carer_id
            )));
        }
        if self.email_verified {
            return Err(DomainError::invalid(
                "email_verified",
                "an address is verified only by its owner, following the link in the verification email sent to it",
            ));
        }
        Ok(Payload::CarerRegistered(CarerRegistered {
            carer_id: self.carer_id.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            email_verified: false,
        }))
    }
}

/// A professional or carer, registered.
fn registered<'a>(person: &'a Person, id: &str) -> Result<&'a Person, DomainError> {
    if person.kind == PersonKind::Unregistered {
        Err(DomainError::not_found(format!(
            "no professional or carer {id} is registered"
        )))
    } else {
        Ok(person)
    }
}

/// Is the actor this very person (a professional or carer signed in as
/// themself)?
fn is_themself(ctx: &Context, person: &Person, id: &str) -> bool {
    ctx.actor.person_id == id
        && ((person.is_professional() && ctx.actor.role == Role::Professional)
            || (person.is_carer() && ctx.actor.role == Role::Carer))
}

/// Change a professional's work address (an admin) or a carer's address (the
/// carer, or an admin): unverified until its owner follows the link.
#[derive(Clone, Debug)]
pub struct ChangePersonEmail {
    pub person_id: String,
    pub email: String,
}

impl Command for ChangePersonEmail {
    type Target = Person;

    fn target_id(&self) -> &str {
        &self.person_id
    }

    fn decide(&self, person: &Person, ctx: &Context) -> Result<Payload, DomainError> {
        let person = registered(person, &self.person_id)?;
        open(person, &self.person_id)?;
        let carer_themself = person.is_carer() && is_themself(ctx, person, &self.person_id);
        if !(ctx.actor.is(Role::Admin) || carer_themself) {
            return Err(DomainError::denied(
                "an admin changes a professional's work address; a carer's address, the carer or an admin",
            ));
        }
        person.address.may_change_to(&self.email)?;
        Ok(Payload::PersonEmailChanged(PersonEmailChanged {
            email: self.email.clone(),
        }))
    }
}

/// Another verification email (the person themself, or an admin).
#[derive(Clone, Debug)]
pub struct RequestPersonEmailVerification {
    pub person_id: String,
}

impl Command for RequestPersonEmailVerification {
    type Target = Person;

    fn target_id(&self) -> &str {
        &self.person_id
    }

    fn decide(&self, person: &Person, ctx: &Context) -> Result<Payload, DomainError> {
        let person = registered(person, &self.person_id)?;
        open(person, &self.person_id)?;
        if !(ctx.actor.is(Role::Admin) || is_themself(ctx, person, &self.person_id)) {
            return Err(DomainError::denied(
                "only the person or an admin asks for a verification email",
            ));
        }
        person.address.may_request()?;
        Ok(Payload::PersonEmailVerificationRequested(
            PersonEmailVerificationRequested {
                email: person.address.email.clone(),
            },
        ))
    }
}

/// The signed-in professional or carer followed a verification link (its
/// signature and lifetime already checked).
#[derive(Clone, Debug)]
pub struct ConfirmPersonEmail {
    pub person_id: String,
    pub email: String,
    pub request_id: String,
}

impl Command for ConfirmPersonEmail {
    type Target = Person;

    fn target_id(&self) -> &str {
        &self.person_id
    }

    fn decide(&self, person: &Person, ctx: &Context) -> Result<Payload, DomainError> {
        let person = registered(person, &self.person_id)?;
        if !is_themself(ctx, person, &self.person_id) {
            return Err(DomainError::denied(
                "this verification link is for another person: sign in as the person it was sent to",
            ));
        }
        person.address.may_confirm(&self.email, &self.request_id)?;
        Ok(Payload::PersonEmailVerified(PersonEmailVerified {
            email: person.address.email.clone(),
            request_id: self.request_id.clone(),
        }))
    }
}

/// Give a person a staff role (admin). The first admin of a deployment
/// grants itself the admin role, once ([`super::Admission::FirstAdmin`]).
#[derive(Clone, Debug)]
pub struct GrantStaffRole {
    pub person_id: String,
    pub role: Role,
    pub name: String,
}

impl Command for GrantStaffRole {
    type Target = Person;

    fn target_id(&self) -> &str {
        &self.person_id
    }

    fn admission(&self, actor: &super::Actor) -> super::Admission {
        if self.role == Role::Admin && actor.person_id == self.person_id && actor.is(Role::Admin) {
            super::Admission::FirstAdmin
        } else {
            super::Admission::Confirmed
        }
    }

    fn decide(&self, person: &Person, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(
            &ctx.actor,
            &[Role::Admin],
            "only an admin grants staff roles",
        )?;
        let role = staff_role(self.role)
            .ok_or_else(|| DomainError::invalid("role", "must be admin, operator or auditor"))?;
        // (A patient's id is refused by its claim: see `claims::person_claim`.)
        open(person, &self.person_id)?;
        if person.is_carer() {
            return Err(DomainError::precondition(format!(
                "person {} is a carer: staff roles are for hospital staff",
                self.person_id
            )));
        }
        if person.holds(self.role) {
            return Err(DomainError::precondition_because(
                service_kit::reason::ROLE_ALREADY_HELD,
                format!(
                    "person {} already holds the {} role",
                    self.person_id, self.role
                ),
            ));
        }
        Ok(Payload::StaffRoleGranted(StaffRoleGranted {
            person_id: self.person_id.clone(),
            role: role as i32,
            name: if person.name.is_empty() {
                self.name.clone()
            } else {
                person.name.clone()
            },
            bootstrap: ctx.bootstrap,
        }))
    }
}

/// Take a staff role away (admin, from someone else).
#[derive(Clone, Debug)]
pub struct RevokeStaffRole {
    pub person_id: String,
    pub role: Role,
}

impl Command for RevokeStaffRole {
    type Target = Person;

    fn target_id(&self) -> &str {
        &self.person_id
    }

    fn decide(&self, person: &Person, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(
            &ctx.actor,
            &[Role::Admin],
            "only an admin revokes staff roles",
        )?;
        let role = staff_role(self.role)
            .ok_or_else(|| DomainError::invalid("role", "must be admin, operator or auditor"))?;
        if ctx.actor.person_id == self.person_id {
            return Err(DomainError::denied(
                "an admin cannot take away their own staff roles: ask another admin",
            ));
        }
        if !person.holds(self.role) {
            return Err(DomainError::precondition(format!(
                "person {} does not hold the {} role",
                self.person_id, self.role
            )));
        }
        Ok(Payload::StaffRoleRevoked(StaffRoleRevoked {
            person_id: self.person_id.clone(),
            role: role as i32,
        }))
    }
}

/// Close a professional's or carer's account (admin): they leave every team
/// and thread, in this one event, and every service refuses them from then
/// on.
#[derive(Clone, Debug)]
pub struct DeactivatePerson {
    pub person_id: String,
}

impl Command for DeactivatePerson {
    type Target = Person;

    fn target_id(&self) -> &str {
        &self.person_id
    }

    fn decide(&self, person: &Person, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(&ctx.actor, &[Role::Admin], "only an admin closes accounts")?;
        if person.kind == PersonKind::Unregistered && person.staff.is_empty() && !person.deactivated
        {
            return Err(DomainError::not_found(format!(
                "no professional, carer or staff member {} is registered",
                self.person_id
            )));
        }
        if ctx.actor.person_id == self.person_id {
            return Err(DomainError::denied(
                "an admin cannot close their own account: ask another admin",
            ));
        }
        if person.deactivated {
            return Err(DomainError::precondition(format!(
                "the account of {} is already deactivated",
                self.person_id
            )));
        }
        Ok(Payload::PersonDeactivated(PersonDeactivated {
            person_id: self.person_id.clone(),
        }))
    }
}

/// Open a deactivated account again (admin). Nothing is rejoined.
#[derive(Clone, Debug)]
pub struct ReactivatePerson {
    pub person_id: String,
}

impl Command for ReactivatePerson {
    type Target = Person;

    fn target_id(&self) -> &str {
        &self.person_id
    }

    fn decide(&self, person: &Person, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(
            &ctx.actor,
            &[Role::Admin],
            "only an admin opens accounts again",
        )?;
        if !person.deactivated {
            return Err(DomainError::precondition(format!(
                "the account of {} is not deactivated",
                self.person_id
            )));
        }
        Ok(Payload::PersonReactivated(PersonReactivated {
            person_id: self.person_id.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Actor;
    use crate::domain::testing::*;
    use std::time::{Duration, SystemTime};

    fn register(id: &str) -> RegisterProfessional {
        RegisterProfessional {
            professional_id: id.into(),
            name: "Susan Turner".into(),
            role_label: "Dietitian".into(),
            work_email: "susan.turner@nhs.net".into(),
        }
    }

    #[test]
    fn an_admin_registers_a_system_once_for_some_teams_and_it_confirms_only_the_service_role() {
        let admin = person(Role::Admin, "Ada Admin");
        let ctx = Context::new(admin.clone(), SystemTime::now());
        let id = new_id();
        let register = RegisterSystem {
            system_id: id.clone(),
            name: "Appointments".into(),
            team_ids: vec![new_id()],
        };
        let event = register.decide(&Person::default(), &ctx).unwrap();
        let system: Person = given(&admin, [event]);
        assert!(system.is_system());
        assert_eq!(system.confirms(Role::Service), Some(true));
        assert_eq!(system.confirms(Role::Professional), Some(false));
        assert_eq!(system.confirms(Role::Admin), Some(false));
        assert_refused(
            register.decide(&system, &ctx),
            "precondition",
            "already registered",
        );
        let none = RegisterSystem {
            team_ids: vec![],
            ..register.clone()
        };
        assert_refused(
            none.decide(&Person::default(), &ctx),
            "invalid",
            "at least one team",
        );
        let nurse = person(Role::Professional, "Nina Nurse");
        let ctx = Context::new(nurse, SystemTime::now());
        assert_refused(
            register.decide(&Person::default(), &ctx),
            "denied",
            "only an admin",
        );
        // A professional's role is never confirmed as a system's.
        let professional: Person = given(&admin, [register_payload(&id)]);
        assert_eq!(professional.confirms(Role::Service), Some(false));
    }

    #[test]
    fn a_professional_or_an_admin_records_an_absence_in_the_future_and_ends_it() {
        let admin = person(Role::Admin, "Ada Admin");
        let id = new_id();
        let nurse = Actor {
            person_id: id.clone(),
            ..person(Role::Professional, "Nina Nurse")
        };
        let mut registered: Person = given(&admin, [register_payload(&id)]);
        let now = SystemTime::now();
        let week = now + Duration::from_secs(7 * 86_400);
        let record = |until, deputy: Option<String>| RecordAbsence {
            person_id: id.clone(),
            absence_id: "a1".into(),
            from: None,
            until,
            deputy_id: deputy,
        };
        let own = Context::new(nurse.clone(), now);
        let event = record(week, None).decide(&registered, &own).unwrap();
        let colleague = Context::new(person(Role::Professional, "Ned"), now);
        assert_refused(
            record(week, None).decide(&registered, &colleague),
            "denied",
            "their own absence",
        );
        let by_admin = Context::new(admin.clone(), now);
        assert!(record(week, None).decide(&registered, &by_admin).is_ok());
        assert_refused(
            record(now, None).decide(&registered, &own),
            "invalid",
            "in the future",
        );
        let years = now + Duration::from_secs(400 * 86_400);
        assert_refused(
            record(years, None).decide(&registered, &own),
            "invalid",
            "at most a year",
        );
        assert_refused(
            record(week, Some(id.clone())).decide(&registered, &own),
            "invalid",
            "not the one away",
        );
        registered.evolve(&envelope(&nurse, event));
        assert_eq!(
            registered
                .away_at(now + Duration::from_secs(1))
                .map(|a| a.until > now),
            Some(true)
        );
        assert!(registered.away_at(week + Duration::from_secs(1)).is_none());
        let end = EndAbsence {
            person_id: id.clone(),
            absence_id: "a1".into(),
        };
        let ended = end.decide(&registered, &own).unwrap();
        registered.evolve(&envelope(&nurse, ended));
        assert!(registered.away_at(now + Duration::from_secs(1)).is_none());
        assert_refused(
            end.decide(&registered, &own),
            "precondition",
            "over already",
        );
        let unknown = EndAbsence {
            absence_id: "nope".into(),
            ..end
        };
        assert_refused(unknown.decide(&registered, &own), "not found", "no absence");
    }

    fn register_payload(id: &str) -> Payload {
        let admin = person(Role::Admin, "Ada Admin");
        register(id)
            .decide(&Person::default(), &Context::new(admin, SystemTime::now()))
            .unwrap()
    }

    #[test]
    fn an_admin_registers_a_professional_once() {
        let admin = person(Role::Admin, "Ada Admin");
        let ctx = Context::new(admin.clone(), SystemTime::now());
        let id = new_id();
        // Given nothing, when an admin registers, then ProfessionalRegistered.
        let event = register(&id).decide(&Person::default(), &ctx).unwrap();
        assert!(
            matches!(&event, Payload::ProfessionalRegistered(p) if p.role_label == "Dietitian")
        );
        // Given the registration, when it is registered again, then refused.
        let registered: Person = given(&admin, [event]);
        assert!(registered.is_professional());
        assert_refused(
            register(&id).decide(&registered, &ctx),
            "precondition",
            "already registered",
        );
    }

    #[test]
    fn only_an_admin_registers_professionals() {
        for role in [
            Role::Patient,
            Role::Carer,
            Role::Professional,
            Role::Operator,
        ] {
            let ctx = Context::new(person(role, "Someone"), SystemTime::now());
            assert_refused(
                register(&new_id()).decide(&Person::default(), &ctx),
                "denied",
                "only an admin registers professionals",
            );
        }
    }

    #[test]
    fn admins_and_professionals_register_carers() {
        let carer = RegisterCarer {
            carer_id: new_id(),
            name: "Paul Parent".into(),
            email: "paul@example.org".into(),
            email_verified: false,
        };
        for role in [Role::Admin, Role::Professional] {
            let ctx = Context::new(person(role, "Staff"), SystemTime::now());
            assert!(carer.decide(&Person::default(), &ctx).is_ok());
        }
        let ctx = Context::new(person(Role::Patient, "Pat"), SystemTime::now());
        assert_refused(carer.decide(&Person::default(), &ctx), "denied", "carers");
        // Nobody claims a carer's address verified.
        let admin = Context::new(person(Role::Admin, "Ada"), SystemTime::now());
        let claimed = RegisterCarer {
            email_verified: true,
            ..carer
        };
        assert_refused(
            claimed.decide(&Person::default(), &admin),
            "invalid",
            "verified only by its owner",
        );
    }

    #[test]
    fn a_work_address_is_verified_only_by_its_owner_following_a_pending_link() {
        let admin = person(Role::Admin, "Ada Admin");
        let at = |who: &Actor| Context::new(who.clone(), SystemTime::now());
        let id = new_id();
        let susan = Actor {
            person_id: id.clone(),
            ..person(Role::Professional, "Susan Turner")
        };
        let registration = envelope(
            &admin,
            register(&id)
                .decide(&Person::default(), &at(&admin))
                .unwrap(),
        );
        let mut person_state = Person::default();
        person_state.evolve(&registration);
        // Registered: unverified, the registration a pending request.
        assert!(!person_state.address.verified);
        let confirm = |request: &str| ConfirmPersonEmail {
            person_id: id.clone(),
            email: "SUSAN.TURNER@nhs.net".into(),
            request_id: request.into(),
        };
        for who in [&admin, &person(Role::Professional, "Someone Else")] {
            assert_refused(
                confirm(&registration.event_id).decide(&person_state, &at(who)),
                "denied",
                "another person",
            );
        }
        assert_refused(
            confirm("not-a-request").decide(&person_state, &at(&susan)),
            "precondition",
            "used or replaced",
        );
        let verified = confirm(&registration.event_id)
            .decide(&person_state, &at(&susan))
            .unwrap();
        let mut after = person_state.clone();
        after.evolve(&envelope(&susan, verified));
        assert!(after.address.verified);
        assert_refused(
            confirm(&registration.event_id).decide(&after, &at(&susan)),
            "precondition",
            "already verified",
        );
        // An admin changes a work address; the professional cannot, and the
        // old link then verifies nothing.
        let change = ChangePersonEmail {
            person_id: id.clone(),
            email: "s.turner@nhs.net".into(),
        };
        assert_refused(change.decide(&after, &at(&susan)), "denied", "an admin");
        let changed = envelope(&admin, change.decide(&after, &at(&admin)).unwrap());
        after.evolve(&changed);
        assert!(!after.address.verified);
        assert_refused(
            confirm(&registration.event_id).decide(&after, &at(&susan)),
            "precondition",
            "no longer on record",
        );
        // Susan asks for another; the change's link and the new one work.
        let again = RequestPersonEmailVerification {
            person_id: id.clone(),
        };
        assert!(again.decide(&after, &at(&susan)).is_ok());
        assert_refused(
            again.decide(&after, &at(&person(Role::Carer, "Chris"))),
            "denied",
            "the person or an admin",
        );
        let confirmed = ConfirmPersonEmail {
            person_id: id.clone(),
            email: "s.turner@nhs.net".into(),
            request_id: changed.event_id.clone(),
        }
        .decide(&after, &at(&susan))
        .unwrap();
        after.evolve(&envelope(&susan, confirmed));
        assert!(after.address.verified);
        // An older log's registration (no flag) counts as verified.
        let mut older = Person::default();
        let mut old_event = registration.clone();
        if let Some(Payload::ProfessionalRegistered(p)) = &mut old_event.payload {
            p.work_email_unverified = false;
        }
        older.evolve(&old_event);
        assert!(older.address.verified);
    }

    #[test]
    fn a_carer_changes_their_own_address() {
        let admin = person(Role::Admin, "Ada Admin");
        let chris = person(Role::Carer, "Chris Jones");
        let registered: Person = given(
            &admin,
            [Payload::CarerRegistered(CarerRegistered {
                carer_id: chris.person_id.clone(),
                name: chris.name.clone(),
                email: "chris@example.org".into(),
                email_verified: false,
            })],
        );
        let change = ChangePersonEmail {
            person_id: chris.person_id.clone(),
            email: "chris.jones@example.org".into(),
        };
        for who in [&chris, &admin] {
            assert!(
                change
                    .decide(&registered, &Context::new(who.clone(), SystemTime::now()))
                    .is_ok()
            );
        }
        let stranger = Context::new(person(Role::Carer, "Alex"), SystemTime::now());
        assert_refused(change.decide(&registered, &stranger), "denied", "the carer");
        assert_refused(
            ChangePersonEmail {
                email: "CHRIS@example.org".into(),
                ..change.clone()
            }
            .decide(&registered, &Context::new(chris.clone(), SystemTime::now())),
            "precondition",
            "already the email address",
        );
    }

    #[test]
    fn an_admin_closes_an_account_and_opens_it_again() {
        let admin = person(Role::Admin, "Ada Admin");
        let nurse = person(Role::Professional, "Nina Nurse");
        let mut state: Person = given(
            &admin,
            [
                Payload::ProfessionalRegistered(ProfessionalRegistered {
                    professional_id: nurse.person_id.clone(),
                    name: nurse.name.clone(),
                    role_label: "Nurse".into(),
                    work_email: String::new(),
                    work_email_unverified: false,
                }),
                Payload::StaffRoleGranted(StaffRoleGranted {
                    person_id: nurse.person_id.clone(),
                    role: proto::events::Role::Operator as i32,
                    name: nurse.name.clone(),
                    bootstrap: false,
                }),
            ],
        );
        let ctx = |actor: &Actor| Context::new(actor.clone(), SystemTime::now());
        let close = DeactivatePerson {
            person_id: nurse.person_id.clone(),
        };
        let open_again = ReactivatePerson {
            person_id: nurse.person_id.clone(),
        };
        assert_refused(
            close.decide(&state, &ctx(&nurse)),
            "denied",
            "only an admin closes accounts",
        );
        assert_refused(
            DeactivatePerson {
                person_id: admin.person_id.clone(),
            }
            .decide(&Person::default(), &ctx(&admin)),
            "not found",
            "is registered",
        );
        assert_refused(
            open_again.decide(&state, &ctx(&admin)),
            "precondition",
            "is not deactivated",
        );
        let closed = close.decide(&state, &ctx(&admin)).unwrap();
        state.evolve(&envelope(&admin, closed));
        assert!(state.deactivated && state.deactivated_at.is_some());
        assert!(
            state.staff.is_empty(),
            "a closed account holds no staff role"
        );
        assert_eq!(state.confirms(Role::Professional), Some(false));
        assert!(state.deactivated());
        assert_refused(
            close.decide(&state, &ctx(&admin)),
            "precondition",
            "already deactivated",
        );
        // Nothing is changed on a closed account.
        assert_refused(
            RequestPersonEmailVerification {
                person_id: nurse.person_id.clone(),
            }
            .decide(&state, &ctx(&admin)),
            "precondition",
            "reactivates it first",
        );
        let opened = open_again.decide(&state, &ctx(&admin)).unwrap();
        state.evolve(&envelope(&admin, opened));
        assert!(!state.deactivated);
        assert_eq!(state.confirms(Role::Professional), Some(true));
        // What began before it was closed is not theirs any more.
        let before = state.deactivated_at.unwrap() - std::time::Duration::from_secs(1);
        assert!(!state.still_holds_from(before));
        assert!(state.still_holds_from(SystemTime::now()));
    }

    #[test]
    fn an_admin_does_not_close_their_own_account() {
        let admin = person(Role::Admin, "Ada Admin");
        let state: Person = given(
            &admin,
            [Payload::StaffRoleGranted(StaffRoleGranted {
                person_id: admin.person_id.clone(),
                role: proto::events::Role::Admin as i32,
                name: admin.name.clone(),
                bootstrap: true,
            })],
        );
        assert_refused(
            DeactivatePerson {
                person_id: admin.person_id.clone(),
            }
            .decide(&state, &Context::new(admin.clone(), SystemTime::now())),
            "denied",
            "their own account",
        );
    }
}
