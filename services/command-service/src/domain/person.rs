//! People: professionals and carers (patients are their records), and the
//! staff roles (admin, operator, auditor) an admin grants.

use std::collections::BTreeSet;

use proto::events::{
    AggregateType, CarerRegistered, Envelope, ProfessionalRegistered, StaffRoleGranted,
    StaffRoleRevoked, envelope::Payload,
};
use service_kit::Role;

use super::{Aggregate, Command, Context, DomainError, require_role};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PersonKind {
    #[default]
    Unregistered,
    Professional,
    Carer,
}

/// A registered person.
#[derive(Clone, Debug, Default)]
pub struct Person {
    pub kind: PersonKind,
    pub name: String,
    pub role_label: String,
    pub email: String,
    pub email_verified: bool,
    /// Staff roles in force, by their names ("admin", "operator", "auditor").
    pub staff: BTreeSet<&'static str>,
}

impl Person {
    pub fn is_professional(&self) -> bool {
        self.kind == PersonKind::Professional
    }
    pub fn is_carer(&self) -> bool {
        self.kind == PersonKind::Carer
    }
    pub fn holds(&self, role: Role) -> bool {
        self.staff.contains(role.as_str())
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

    fn confirms(&self, role: Role) -> Option<bool> {
        match role {
            Role::Professional => Some(self.is_professional()),
            Role::Carer => Some(self.is_carer()),
            Role::Admin | Role::Operator | Role::Auditor => Some(self.holds(role)),
            Role::Patient => None,
        }
    }

    fn evolve(&mut self, event: &Envelope) {
        match &event.payload {
            Some(Payload::ProfessionalRegistered(e)) => {
                self.kind = PersonKind::Professional;
                self.name = e.name.clone();
                self.role_label = e.role_label.clone();
                self.email = e.work_email.clone();
                self.email_verified = true;
            }
            Some(Payload::CarerRegistered(e)) => {
                self.kind = PersonKind::Carer;
                self.name = e.name.clone();
                self.email = e.email.clone();
                self.email_verified = e.email_verified;
            }
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
            _ => {}
        }
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
        Ok(Payload::CarerRegistered(CarerRegistered {
            carer_id: self.carer_id.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
        }))
    }
}

/// Give a person a staff role (admin). The first admin of a deployment
/// grants itself the admin role, once ([`Command::bootstraps`]).
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

    fn bootstraps(&self, actor: &super::Actor) -> bool {
        self.role == Role::Admin && actor.person_id == self.person_id && actor.is(Role::Admin)
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
        if person.is_carer() {
            return Err(DomainError::precondition(format!(
                "person {} is a carer: staff roles are for hospital staff",
                self.person_id
            )));
        }
        if person.holds(self.role) {
            return Err(DomainError::precondition(format!(
                "person {} already holds the {} role",
                self.person_id, self.role
            )));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::*;
    use std::time::SystemTime;

    fn register(id: &str) -> RegisterProfessional {
        RegisterProfessional {
            professional_id: id.into(),
            name: "Susan Turner".into(),
            role_label: "Dietitian".into(),
            work_email: "susan.turner@nhs.net".into(),
        }
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
            email_verified: true,
        };
        for role in [Role::Admin, Role::Professional] {
            let ctx = Context::new(person(role, "Staff"), SystemTime::now());
            assert!(carer.decide(&Person::default(), &ctx).is_ok());
        }
        let ctx = Context::new(person(Role::Patient, "Pat"), SystemTime::now());
        assert_refused(carer.decide(&Person::default(), &ctx), "denied", "carers");
    }
}
