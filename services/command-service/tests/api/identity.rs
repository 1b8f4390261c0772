//! Linking an account at an identity provider to a person, and signing it
//! in: only an account token (which this service gave after checking the
//! provider's ID token) names an account, an account is linked once, and
//! only with a proof (an email link to the address on record, or the
//! patient record its own sign-up made). A sign-in's tokens are this
//! service's to issue, one per role; a demo person's id is proof only on a
//! demo.

use std::time::{Duration, SystemTime};

use careline_client::bearer::{client, command_id};
use proto::command as pb;
use proto::command::command_service_client::CommandServiceClient;
use proto::command::link_identity_request::Proof;
use proto::command::sign_in_request::Proof as SignInProof;
use service_kit::provider::Identity;
use service_kit::{Addressee, Caller, EmailLink, Role};
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::support::{issuer, keys, spawn_app};

const ISSUER: &str = "https://idp.hospital.example";

/// The account token the command service gives account `subject`.
fn account(subject: &str) -> String {
    issuer().mint_account(&Identity {
        issuer: ISSUER.into(),
        subject: subject.into(),
        name: "Nia New".into(),
        email: format!("{subject}@example.org"),
        email_verified: true,
    })
}

fn find(subject: &str) -> pb::SignInRequest {
    pb::SignInRequest {
        proof: Some(SignInProof::AccountToken(account(subject))),
    }
}

fn link(subject: &str, proof: Proof) -> pb::LinkIdentityRequest {
    pb::LinkIdentityRequest {
        command_id: command_id(),
        account_token: account(subject),
        proof: Some(proof),
    }
}

/// The command service without a bearer token: signing in and linking
/// carry their proof in the request.
fn anonymous(channel: &Channel) -> CommandServiceClient<Channel> {
    CommandServiceClient::new(channel.clone())
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
    let mut system = anonymous(&channel);

    let unlinked = system.sign_in(find("new-patient")).await.unwrap();
    let unlinked = unlinked.get_ref();
    assert!(!unlinked.linked);
    assert!(unlinked.tokens.is_empty());
    // Its sign-up token is the patient its sign-up would make, no one else.
    let sign_up = keys().verify(&unlinked.sign_up_token).unwrap();
    assert_eq!(
        (sign_up.person_id, sign_up.role),
        (
            service_kit::ids::identity::sign_up_patient(ISSUER, "new-patient"),
            Role::Patient
        )
    );

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
        .sign_in(find("new-patient"))
        .await
        .unwrap()
        .into_inner();
    assert!(found.linked);
    assert_eq!(found.person_id, patient.person_id.to_string());
    assert_eq!(found.role, "patient");
    assert_eq!(found.name, "Nia New");
    assert!(!found.deactivated);
    // One token, the patient's, which every service accepts as her.
    assert_eq!(found.tokens.len(), 1);
    assert_eq!(keys().verify(&found.tokens[0].token).unwrap(), patient);
    assert!(found.account_token.is_empty() && found.sign_up_token.is_empty());

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
    let mut system = anonymous(&channel);

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
        .sign_in(find("nurse-at-idp"))
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
    let carer = system.sign_in(find("carer-at-idp")).await.unwrap();
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
    let closed = system.sign_in(find("carer-at-idp")).await.unwrap();
    assert!(closed.get_ref().deactivated);
    assert!(
        closed.get_ref().tokens.is_empty(),
        "a closed account gets no token"
    );
    system
        .link_identity(link(
            "pat-at-idp",
            invitation(&org.patient, Addressee::Patient, "pat.jones@example.org"),
        ))
        .await
        .unwrap();
    let pat = system.sign_in(find("pat-at-idp")).await.unwrap();
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
    let unlinked = system.sign_in(find("nurse-second-account")).await.unwrap();
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
        .sign_in(pb::SignInRequest {
            proof: Some(SignInProof::AccountToken(issuer().mint_account(
                &Identity {
                    issuer: "idp".into(),
                    subject: "x".into(),
                    name: String::new(),
                    email: String::new(),
                    email_verified: false,
                },
            ))),
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
async fn only_an_account_token_of_this_service_names_an_account() {
    let app = spawn_app("identity-principals").await;
    let org = app.org().await;
    let channel = app.signer.channel();
    let token = |who: &Caller| issuer().mint(who, Duration::from_secs(600));
    let head = app.head().await;
    let mut system = anonymous(&channel);
    let good = invitation(&org.patient, Addressee::Patient, "pat.jones@example.org");

    // A person's own token, an account token of another key, one changed
    // after signing, and none: no account is named, nothing is linked.
    let stranger = service_kit::TokenIssuer::from_seed("test", [9; 32]).unwrap();
    let forged = stranger.mint_account(&Identity {
        issuer: ISSUER.into(),
        subject: "mallory".into(),
        name: "Mallory".into(),
        email: String::new(),
        email_verified: false,
    });
    let mut changed = account("mallory");
    changed.insert(changed.len() / 2, 'x');
    for account_token in [
        token(&org.admin),
        token(&org.patient),
        forged,
        changed,
        String::new(),
    ] {
        let linked = system
            .link_identity(pb::LinkIdentityRequest {
                command_id: command_id(),
                account_token: account_token.clone(),
                proof: Some(good.clone()),
            })
            .await
            .unwrap_err();
        assert_eq!(linked.code(), Code::Unauthenticated, "{linked:?}");
        let found = system
            .sign_in(pb::SignInRequest {
                proof: Some(SignInProof::AccountToken(account_token)),
            })
            .await
            .unwrap_err();
        assert_eq!(found.code(), Code::Unauthenticated, "{found:?}");
    }
    // A token of the sign-in's role may not act as anyone.
    let sign_in = Caller {
        person_id: Uuid::now_v7(),
        role: Role::System,
        name: "Careline sign-in".into(),
    };
    let registered = client(channel.clone(), &token(&sign_in))
        .unwrap()
        .register_patient(pb::RegisterPatientRequest {
            command_id: command_id(),
            patient_id: Uuid::now_v7().to_string(),
            name: "Mallory".into(),
            email: String::new(),
            email_verified: false,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(registered.code(), Code::PermissionDenied, "{registered:?}");
    // No ID token is accepted where no provider is trusted.
    let no_provider = system
        .sign_in(pb::SignInRequest {
            proof: Some(SignInProof::IdToken(pb::IdTokenProof {
                id_token: account("x"),
                nonce: "n".into(),
            })),
        })
        .await
        .unwrap_err();
    assert_eq!(
        no_provider.code(),
        Code::FailedPrecondition,
        "{no_provider:?}"
    );
    let none = system
        .sign_in(pb::SignInRequest { proof: None })
        .await
        .unwrap_err();
    assert_eq!(none.code(), Code::InvalidArgument, "{none:?}");
    assert_eq!(app.head().await, head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_person_signs_in_by_id_only_on_a_demo() {
    let app = spawn_app("identity-demo").await;
    let org = app.org().await;
    let channel = app.signer.channel();
    let mut demo = anonymous(&channel);
    let by_id = |who: &Caller| pb::SignInRequest {
        proof: Some(SignInProof::DemoPersonId(who.person_id.to_string())),
    };

    // On a demo: a token per role each demo person may work in.
    for (who, roles) in [
        (&org.nurse, vec!["professional"]),
        (&org.patient, vec!["patient"]),
        (&org.carer, vec!["carer"]),
        (&org.admin, vec!["admin"]),
        (&org.auditor, vec!["auditor"]),
    ] {
        let found = demo.sign_in(by_id(who)).await.unwrap().into_inner();
        let got: Vec<&str> = found.tokens.iter().map(|t| t.role.as_str()).collect();
        assert_eq!(got, roles, "{}", who.name);
        let caller = keys().verify(&found.tokens[0].token).unwrap();
        assert_eq!((caller.person_id, caller.role), (who.person_id, who.role));
        let lives = found.expires_at
            - i64::try_from(service_kit::auth::seconds(SystemTime::now())).unwrap();
        assert!((11 * 3600..=12 * 3600).contains(&lives), "{lives}");
    }
    let nobody = demo
        .sign_in(pb::SignInRequest {
            proof: Some(SignInProof::DemoPersonId(Uuid::now_v7().to_string())),
        })
        .await
        .unwrap_err();
    assert_eq!(nobody.code(), Code::NotFound, "{nobody:?}");

    // The same service, not a demo: a person's id signs no one in.
    let store = app.stream.store().clone();
    let production = command_service::Application::with_app(
        "127.0.0.1:0".parse().unwrap(),
        command_service::App::new(store, 1_000),
        keys(),
    )
    .await
    .unwrap()
    .with_sign_in(crate::support::sign_in(false));
    let addr = production.local_addr();
    tokio::spawn(production.run(std::future::pending()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    for who in [&org.admin, &org.nurse, &org.patient] {
        let refused = anonymous(&channel).sign_in(by_id(who)).await.unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }
}
