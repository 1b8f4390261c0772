//! Linking an account at an identity provider to a person, and finding whom
//! it signs in as: only the sign-in principal asks, an account is linked
//! once, and only with a proof (an email link to the address on record, or
//! the patient record its own sign-up made).

use std::time::{Duration, SystemTime};

use careline_client::bearer::{client, command_id};
use proto::command as pb;
use proto::command::link_identity_request::Proof;
use service_kit::{Addressee, Caller, EmailLink, Role};
use tonic::Code;
use uuid::Uuid;

use crate::support::{issuer, spawn_app};

const ISSUER: &str = "https://idp.hospital.example";

fn sign_in() -> Caller {
    Caller {
        person_id: Uuid::now_v7(),
        role: Role::System,
        name: "Careline sign-in".into(),
    }
}

fn find(subject: &str) -> pb::FindIdentityRequest {
    pb::FindIdentityRequest {
        issuer: ISSUER.into(),
        subject: subject.into(),
    }
}

fn link(subject: &str, proof: Proof) -> pb::LinkIdentityRequest {
    pb::LinkIdentityRequest {
        command_id: command_id(),
        issuer: ISSUER.into(),
        subject: subject.into(),
        proof: Some(proof),
    }
}

fn invitation(who: &Caller, addressee: Addressee, email: &str) -> Proof {
    Proof::InvitationToken(service_kit::test_link_issuer().mint(&EmailLink {
        person_id: who.person_id,
        addressee,
        email: email.into(),
        request_id: command_id(),
        expires_at: SystemTime::now() + Duration::from_secs(3600),
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_links_its_account_once_and_sign_in_finds_it() {
    let app = spawn_app("identity-sign-up").await;
    let org = app.org().await;
    let channel = app.signer.channel();
    let token = |who: &Caller| issuer().mint(who, Duration::from_secs(600));
    let mut system = client(channel.clone(), &token(&sign_in())).unwrap();

    let unlinked = system.find_identity(find("new-patient")).await.unwrap();
    assert!(!unlinked.get_ref().linked);

    // No record made by this account's sign-up yet: nothing to link.
    let refused = system
        .link_identity(link("new-patient", Proof::SignUp(true)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");

    // The sign-up: the patient record under the id derived from the account.
    let patient = Caller {
        person_id: service_kit::ids::identity::sign_up_patient(ISSUER, "new-patient"),
        role: Role::Patient,
        name: "Nia New".into(),
    };
    client(channel.clone(), &token(&patient))
        .unwrap()
        .join_team_with_code(pb::JoinTeamWithCodeRequest {
            command_id: command_id(),
            team_id: org.renal.clone(),
            join_code: org.renal_join_code.clone(),
            name: String::new(),
            email: "nia@example.org".into(),
        })
        .await
        .unwrap();
    let head = app.head().await;
    let linked = system
        .link_identity(link("new-patient", Proof::SignUp(true)))
        .await
        .unwrap();
    let events = app.events_after(head).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].envelope.event_type, "IdentityLinked");
    assert_eq!(
        events[0].envelope.aggregate_id,
        service_kit::ids::identity::account(ISSUER, "new-patient").to_string()
    );
    assert_eq!(linked.get_ref().position, events[0].position);

    let found = system
        .find_identity(find("new-patient"))
        .await
        .unwrap()
        .into_inner();
    assert!(found.linked);
    assert_eq!(found.person_id, patient.person_id.to_string());
    assert_eq!(found.role, "patient");
    assert_eq!(found.name, "Nia New");
    assert!(!found.deactivated);

    // Linked once: a second link, by either proof, is refused.
    let again = system
        .link_identity(link("new-patient", Proof::SignUp(true)))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    assert!(again.message().contains("linked once"), "{again:?}");
    // Another account cannot claim that record by signing up.
    let other = system
        .link_identity(link("someone-else", Proof::SignUp(true)))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound, "{other:?}");
    assert_eq!(app.head().await, events[0].position);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_links_the_person_it_was_sent_to() {
    let app = spawn_app("identity-invitation").await;
    let org = app.org().await;
    let channel = app.signer.channel();
    let token = |who: &Caller| issuer().mint(who, Duration::from_secs(600));
    let mut system = client(channel.clone(), &token(&sign_in())).unwrap();

    // The nurse's work address, as the demo registered it.
    let nurse_email = format!(
        "{}@hospital.example",
        org.nurse.name.to_lowercase().replace([' ', '.'], "")
    );
    system
        .link_identity(link(
            "nurse-at-idp",
            invitation(&org.nurse, Addressee::Person, &nurse_email),
        ))
        .await
        .unwrap();
    let found = system
        .find_identity(find("nurse-at-idp"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (found.person_id.as_str(), found.role.as_str()),
        (org.nurse.person_id.to_string().as_str(), "professional")
    );

    // A carer is linked as a carer; a patient as a patient.
    system
        .link_identity(link(
            "carer-at-idp",
            invitation(&org.carer, Addressee::Person, "chris.jones@example.org"),
        ))
        .await
        .unwrap();
    let carer = system.find_identity(find("carer-at-idp")).await.unwrap();
    assert_eq!(carer.get_ref().role, "carer");
    assert!(!carer.get_ref().deactivated);
    // Their account closed, the sign-in is told so.
    client(channel.clone(), &token(&org.admin))
        .unwrap()
        .deactivate_person(pb::DeactivatePersonRequest {
            command_id: command_id(),
            person_id: org.carer.person_id.to_string(),
        })
        .await
        .unwrap();
    let closed = system.find_identity(find("carer-at-idp")).await.unwrap();
    assert!(closed.get_ref().deactivated);
    system
        .link_identity(link(
            "pat-at-idp",
            invitation(&org.patient, Addressee::Patient, "pat.jones@example.org"),
        ))
        .await
        .unwrap();
    let pat = system.find_identity(find("pat-at-idp")).await.unwrap();
    assert_eq!(pat.get_ref().role, "patient");

    // The nurse is linked at this provider once: a second account there,
    // even with a good invitation, is refused.
    let second = system
        .link_identity(link(
            "nurse-second-account",
            invitation(&org.nurse, Addressee::Person, &nurse_email),
        ))
        .await
        .unwrap_err();
    assert_eq!(second.code(), Code::FailedPrecondition, "{second:?}");
    assert!(second.message().contains("once per provider"), "{second:?}");
    let unlinked = system
        .find_identity(find("nurse-second-account"))
        .await
        .unwrap();
    assert!(!unlinked.get_ref().linked);

    let head = app.head().await;
    // A link to an address no longer on record, a forged link, no proof.
    let stale = system
        .link_identity(link(
            "stale",
            invitation(&org.patient, Addressee::Patient, "pat.old@example.org"),
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition, "{stale:?}");
    let forged = system
        .link_identity(link("forged", Proof::InvitationToken("eyJhbGc.x.y".into())))
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::InvalidArgument, "{forged:?}");
    let mut no_proof = link("none", Proof::SignUp(true));
    no_proof.proof = None;
    let none = system.link_identity(no_proof).await.unwrap_err();
    assert_eq!(none.code(), Code::InvalidArgument, "{none:?}");
    let bad_issuer = system
        .find_identity(pb::FindIdentityRequest {
            issuer: "idp".into(),
            subject: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_issuer.code(), Code::InvalidArgument);
    assert!(
        bad_issuer.message().starts_with("issuer:"),
        "{bad_issuer:?}"
    );
    assert_eq!(app.head().await, head, "a refusal wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_sign_in_asks_and_it_asks_nothing_else() {
    let app = spawn_app("identity-principals").await;
    let org = app.org().await;
    let channel = app.signer.channel();
    let token = |who: &Caller| issuer().mint(who, Duration::from_secs(600));
    let head = app.head().await;

    // People (an admin, the patient herself) may not ask or link.
    for who in [&org.admin, &org.patient] {
        let mut as_person = client(channel.clone(), &token(who)).unwrap();
        let asked = as_person.find_identity(find("x")).await.unwrap_err();
        assert_eq!(asked.code(), Code::PermissionDenied, "{asked:?}");
        let linked = as_person
            .link_identity(link(
                "x",
                invitation(&org.patient, Addressee::Patient, "pat.jones@example.org"),
            ))
            .await
            .unwrap_err();
        assert_eq!(linked.code(), Code::PermissionDenied, "{linked:?}");
    }
    // The sign-in may not act as anyone.
    let mut system = client(channel.clone(), &token(&sign_in())).unwrap();
    let registered = system
        .register_patient(pb::RegisterPatientRequest {
            command_id: command_id(),
            patient_id: Uuid::now_v7().to_string(),
            name: "Mallory".into(),
            email: String::new(),
            email_verified: false,
        })
        .await
        .unwrap_err();
    assert_eq!(registered.code(), Code::PermissionDenied, "{registered:?}");
    // Without a token: unauthenticated.
    let anonymous = proto::command::command_service_client::CommandServiceClient::new(channel)
        .find_identity(find("x"))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!(app.head().await, head);
}
