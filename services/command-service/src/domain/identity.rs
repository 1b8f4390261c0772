//! An account at an identity provider (an OpenID Connect issuer and the
//! subject its ID tokens name) and the person it signs in as: linked once,
//! by the web service's sign-in, after the person proved who they are.
//!
//! Two proofs: the link of an email sent to the person's address on record
//! (an invitation, checked by the service holding the link keys before the
//! command is made), or a sign-up with a team's code, which made a patient
//! record under the id derived from this very account
//! (`service_kit::ids::identity::sign_up_patient`), so that no other
//! account can claim it.

use proto::events::{IdentityLinked, IdentityProof, envelope::Payload};
use service_kit::Role;

use super::{Actor, Aggregate, Command, Context, DomainError, Needs};

/// The account, as the log knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Whom it signs in as, once linked.
    pub linked: Option<Linked>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linked {
    pub person_id: String,
    pub role: Role,
}

impl Aggregate for Identity {
    const KIND: proto::events::AggregateType = proto::events::AggregateType::Identity;

    fn evolve(&mut self, event: &proto::events::Envelope) {
        if let Some(Payload::IdentityLinked(e)) = &event.payload {
            let role = match proto::events::Role::try_from(e.role) {
                Ok(proto::events::Role::Patient) => Role::Patient,
                Ok(proto::events::Role::Carer) => Role::Carer,
                _ => Role::Professional,
            };
            self.linked = Some(Linked {
                person_id: e.person_id.clone(),
                role,
            });
        }
    }
}

/// Whom the person proved to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proof {
    /// An email link to the address on record of this patient (`patient`)
    /// or professional or carer.
    Invitation {
        person_id: String,
        patient: bool,
        email: String,
    },
    /// The patient record this account signed up.
    SignUp { patient_id: String },
}

/// Link an account at an identity provider to a person.
#[derive(Clone, Debug)]
pub struct LinkIdentity {
    /// `service_kit::ids::identity::account(issuer, subject)`.
    pub identity_id: String,
    pub issuer: String,
    pub subject: String,
    pub proof: Proof,
}

impl LinkIdentity {
    fn patient(&self) -> Option<&str> {
        match &self.proof {
            Proof::Invitation {
                person_id,
                patient: true,
                ..
            }
            | Proof::SignUp {
                patient_id: person_id,
            } => Some(person_id),
            Proof::Invitation { .. } => None,
        }
    }
}

impl Command for LinkIdentity {
    type Target = Identity;

    fn target_id(&self) -> &str {
        &self.identity_id
    }

    fn admission(&self, _: &Actor) -> super::Admission {
        super::Admission::SignIn
    }

    fn needs(&self, _: &Identity, _: &Actor) -> Needs {
        match (&self.proof, self.patient()) {
            (_, Some(patient)) => Needs {
                record: Some(patient.to_string()),
                ..Needs::default()
            },
            (Proof::Invitation { person_id, .. }, None) => Needs {
                people: vec![person_id.clone()],
                ..Needs::default()
            },
            (Proof::SignUp { .. }, None) => Needs::default(),
        }
    }

    fn decide(&self, identity: &Identity, ctx: &Context) -> Result<Payload, DomainError> {
        if !ctx.actor.is(Role::System) {
            return Err(DomainError::denied(
                "only the sign-in links an identity provider's account to a person",
            ));
        }
        if identity.linked.is_some() {
            return Err(DomainError::precondition(
                "this account at the identity provider is already linked to a Careline person: an account is linked once",
            ));
        }
        let (person_id, role, email, proof) = match &self.proof {
            Proof::SignUp { patient_id } => {
                ctx.record(patient_id)?;
                (patient_id, Role::Patient, None, IdentityProof::SignUp)
            }
            Proof::Invitation {
                person_id,
                patient: true,
                email,
            } => {
                let record = ctx.record(person_id)?;
                (
                    person_id,
                    Role::Patient,
                    Some((email, &record.address.email)),
                    IdentityProof::Invitation,
                )
            }
            Proof::Invitation {
                person_id,
                patient: false,
                email,
            } => {
                let person = ctx
                    .people
                    .get(person_id)
                    .filter(|p| p.is_professional() || p.is_carer())
                    .ok_or_else(|| {
                        DomainError::not_found(format!("person {person_id} is not registered"))
                    })?;
                if person.deactivated {
                    return Err(DomainError::precondition(
                        "this person's account is deactivated: an admin opens it again",
                    ));
                }
                let role = if person.is_carer() {
                    Role::Carer
                } else {
                    Role::Professional
                };
                (
                    person_id,
                    role,
                    Some((email, &person.address.email)),
                    IdentityProof::Invitation,
                )
            }
        };
        if let Some((sent_to, on_record)) = email
            && !sent_to.eq_ignore_ascii_case(on_record)
        {
            return Err(DomainError::precondition(
                "this link was sent to an email address that is no longer the one on record: use the link of the latest email",
            ));
        }
        Ok(Payload::IdentityLinked(IdentityLinked {
            issuer: self.issuer.clone(),
            subject: self.subject.clone(),
            person_id: person_id.clone(),
            role: role.to_proto() as i32,
            proof: proof as i32,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::*;
    use crate::domain::{PatientRecord, Person};
    use proto::events::{CarerRegistered, PatientRegistered, PersonDeactivated};
    use std::sync::Arc;
    use std::time::SystemTime;

    fn sign_in() -> Actor {
        person(Role::System, "Careline sign-in")
    }

    fn link(proof: Proof) -> LinkIdentity {
        LinkIdentity {
            identity_id: new_id(),
            issuer: "https://idp.example".into(),
            subject: "alice".into(),
            proof,
        }
    }

    fn with_record(id: &str, email: &str) -> Context {
        let admin = person(Role::Admin, "Ada Admin");
        let record: PatientRecord = given(
            &admin,
            [Payload::PatientRegistered(PatientRegistered {
                patient_id: id.into(),
                name: "Pat Patient".into(),
                email: email.into(),
                ..Default::default()
            })],
        );
        let mut ctx = Context::new(sign_in(), SystemTime::now());
        ctx.record = Some(Arc::new(record));
        ctx
    }

    #[test]
    fn a_sign_up_links_the_record_it_made() {
        let patient = new_id();
        let ctx = with_record(&patient, "");
        let Payload::IdentityLinked(e) = link(Proof::SignUp {
            patient_id: patient.clone(),
        })
        .decide(&Identity::default(), &ctx)
        .unwrap() else {
            panic!("not a link")
        };
        assert_eq!(e.person_id, patient);
        assert_eq!(e.role, proto::events::Role::Patient as i32);
        assert_eq!(e.proof, IdentityProof::SignUp as i32);
    }

    #[test]
    fn an_account_is_linked_once_and_only_by_the_sign_in() {
        let patient = new_id();
        let mut ctx = with_record(&patient, "");
        let command = link(Proof::SignUp {
            patient_id: patient.clone(),
        });
        let linked: Identity = given(
            &sign_in(),
            [command.decide(&Identity::default(), &ctx).unwrap()],
        );
        assert_refused(command.decide(&linked, &ctx), "precondition", "linked once");
        ctx.actor = person(Role::Patient, "Pat Patient");
        assert_refused(
            command.decide(&Identity::default(), &ctx),
            "denied",
            "only the sign-in",
        );
    }

    #[test]
    fn an_invitation_must_be_to_the_address_on_record() {
        let patient = new_id();
        let ctx = with_record(&patient, "pat@example.org");
        let invited = |email: &str| {
            link(Proof::Invitation {
                person_id: patient.clone(),
                patient: true,
                email: email.into(),
            })
        };
        assert!(
            invited("PAT@example.org")
                .decide(&Identity::default(), &ctx)
                .is_ok()
        );
        assert_refused(
            invited("old@example.org").decide(&Identity::default(), &ctx),
            "precondition",
            "no longer the one on record",
        );
        let nobody = with_record(&patient, "pat@example.org");
        let mut nobody = nobody;
        nobody.record = Some(Arc::new(PatientRecord::default()));
        assert_refused(
            invited("pat@example.org").decide(&Identity::default(), &nobody),
            "not found",
            "does not exist",
        );
    }

    #[test]
    fn a_carer_is_linked_as_a_carer_and_a_closed_account_not_at_all() {
        let admin = person(Role::Admin, "Ada Admin");
        let carer_id = new_id();
        let registered = Payload::CarerRegistered(CarerRegistered {
            carer_id: carer_id.clone(),
            name: "Cara Carer".into(),
            email: "cara@example.org".into(),
            ..Default::default()
        });
        let carer: Person = given(&admin, [registered.clone()]);
        let mut ctx = Context::new(sign_in(), SystemTime::now());
        ctx.people.insert(carer_id.clone(), Arc::new(carer));
        let command = link(Proof::Invitation {
            person_id: carer_id.clone(),
            patient: false,
            email: "cara@example.org".into(),
        });
        let Payload::IdentityLinked(e) = command.decide(&Identity::default(), &ctx).unwrap() else {
            panic!("not a link")
        };
        assert_eq!(e.role, proto::events::Role::Carer as i32);
        let closed: Person = given(
            &admin,
            [
                registered,
                Payload::PersonDeactivated(PersonDeactivated::default()),
            ],
        );
        ctx.people.insert(carer_id, Arc::new(closed));
        assert_refused(
            command.decide(&Identity::default(), &ctx),
            "precondition",
            "deactivated",
        );
    }
}
