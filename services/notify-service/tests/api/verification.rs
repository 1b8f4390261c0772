//! An address is verified only by its owner following the link of the
//! verification email: read from the real mail server's maildir, followed
//! through the command API.

use std::time::{Duration, SystemTime};

use careline_client::Steps;
use careline_client::bearer::command_id;
use proto::command as cmd;
use service_kit::{Addressee, Caller, EmailLink, Role, test_link_issuer};
use tonic::Code;

use crate::support::{Sink, header, smtp, system};

/// The verification emails sent to `address` so far.
fn verifications_to(sink: &Sink, address: &str) -> Vec<String> {
    sink.received()
        .into_iter()
        .filter(|m| {
            header(m, "To").is_some_and(|to| to.contains(address))
                && header(m, "Subject") == Some("Confirm your email address for Careline")
        })
        .collect()
}

/// Waits for the first verification email to `address`; answers its
/// link's token.
async fn first_link(sink: &Sink, address: &str) -> String {
    const LINK: &str = "https://careline.test/email/confirm?token=";
    for _ in 0..300 {
        if let Some(mail) = verifications_to(sink, address).first() {
            let start = mail.find(LINK).expect("the email carries the link") + LINK.len();
            return mail[start..].split_whitespace().next().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no verification email to {address} in 15 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_is_verified_by_following_the_emailed_link_once() {
    let mut sink = Sink::reserve("notifyverify");
    sink.start().await;
    let mut settings = smtp(sink.port);
    settings.links = Some(test_link_issuer());
    let s = system("notifyverify", settings).await;
    let org = s.org().await;
    let lee = Caller {
        person_id: uuid::Uuid::now_v7(),
        role: Role::Patient,
        name: "Lee Park".into(),
    };
    let mut nurse = s.signer.client(&org.nurse).unwrap();

    // Staff cannot claim an address verified: refused, nothing written.
    let before = s.head().await;
    let claimed = nurse
        .register_patient(cmd::RegisterPatientRequest {
            command_id: command_id(),
            patient_id: lee.person_id.to_string(),
            name: lee.name.clone(),
            email: "lee.park@example.org".into(),
            email_verified: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(claimed.code(), Code::InvalidArgument, "{claimed:?}");
    assert!(claimed.message().contains("email_verified"), "{claimed:?}");
    assert_eq!(s.head().await, before);

    // Registered with an address: a verification email goes to it.
    nurse
        .register_patient(cmd::RegisterPatientRequest {
            command_id: command_id(),
            patient_id: lee.person_id.to_string(),
            name: lee.name.clone(),
            email: "lee.park@example.org".into(),
            email_verified: false,
            ..Default::default()
        })
        .await
        .unwrap();
    let token = first_link(&sink, "lee.park@example.org").await;
    let mail = &verifications_to(&sink, "lee.park@example.org")[0];
    assert!(mail.contains("Hello Lee Park"), "{mail}");
    assert!(mail.contains("works once"), "{mail}");

    let confirm = |token: &str| cmd::ConfirmEmailRequest {
        command_id: command_id(),
        token: token.into(),
    };
    // Not Lee: refused, whoever else is signed in; no token, unauthenticated;
    // a made-up token, invalid; an expired one, said so.
    let pat = s
        .signer
        .client(&org.patient)
        .unwrap()
        .confirm_email(confirm(&token))
        .await
        .unwrap_err();
    assert_eq!(pat.code(), Code::PermissionDenied, "{pat:?}");
    let mut lee_client = s.signer.client(&lee).unwrap();
    let junk = lee_client
        .confirm_email(confirm("not.a.link"))
        .await
        .unwrap_err();
    assert_eq!(junk.code(), Code::InvalidArgument, "{junk:?}");
    let expired = test_link_issuer().mint(&EmailLink {
        person_id: lee.person_id,
        addressee: Addressee::Patient,
        email: "lee.park@example.org".into(),
        request_id: "whatever".into(),
        expires_at: SystemTime::now() - Duration::from_secs(3600),
    });
    let late = lee_client
        .confirm_email(confirm(&expired))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    assert!(late.message().contains("expired"), "{late:?}");
    let mut anonymous =
        proto::command::command_service_client::CommandServiceClient::new(s.signer.channel());
    let nobody = anonymous.confirm_email(confirm(&token)).await.unwrap_err();
    assert_eq!(nobody.code(), Code::Unauthenticated, "{nobody:?}");
    // The claim of old is refused too.
    let old_claim = nurse
        .verify_patient_email(cmd::VerifyPatientEmailRequest {
            command_id: command_id(),
            patient_id: lee.person_id.to_string(),
            email: "lee.park@example.org".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(old_claim.code(), Code::FailedPrecondition, "{old_claim:?}");
    assert_eq!(
        s.head().await,
        before + 1,
        "only the registration was written"
    );

    // Lee follows the link: verified, once.
    lee_client.confirm_email(confirm(&token)).await.unwrap();
    let again = lee_client.confirm_email(confirm(&token)).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    assert!(again.message().contains("already verified"), "{again:?}");

    // Lee changes the address: unverified, a link to the new one; the old
    // link verifies nothing. Another email may be asked for.
    lee_client
        .change_patient_email(cmd::ChangePatientEmailRequest {
            command_id: command_id(),
            patient_id: lee.person_id.to_string(),
            email: "lee.new@example.org".into(),
        })
        .await
        .unwrap();
    let changed = first_link(&sink, "lee.new@example.org").await;
    let stale = lee_client.confirm_email(confirm(&token)).await.unwrap_err();
    assert!(stale.message().contains("no longer on record"), "{stale:?}");
    lee_client
        .request_email_verification(cmd::RequestEmailVerificationRequest {
            person_id: String::new(),
            command_id: command_id(),
            patient_id: lee.person_id.to_string(),
        })
        .await
        .unwrap();
    for _ in 0..300 {
        if verifications_to(&sink, "lee.new@example.org").len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(verifications_to(&sink, "lee.new@example.org").len(), 2);
    lee_client.confirm_email(confirm(&changed)).await.unwrap();

    // Verified, Lee hears of replies: in the renal team, she writes, the
    // nurse answers, and an email comes to the new address.
    nurse
        .add_patient_to_team(cmd::AddPatientToTeamRequest {
            command_id: command_id(),
            patient_id: lee.person_id.to_string(),
            team_id: org.renal.clone(),
        })
        .await
        .unwrap();
    let thread = lee_client
        .start_to_team(&lee, &org.renal, "A question", "About my appointment")
        .await
        .unwrap();
    nurse.post(&thread, "We will call you.").await.unwrap();
    for _ in 0..300 {
        let told = sink.received().into_iter().any(|m| {
            header(&m, "To").is_some_and(|to| to.contains("lee.new@example.org"))
                && header(&m, "Subject").is_some_and(|s| s.starts_with("New message"))
        });
        if told {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no notification reached Lee's verified address");
}

/// A professional's work address follows the same flow: unverified when an
/// admin registers it, verified by the professional following the link,
/// then the address notifications go to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_address_is_verified_by_its_owner_and_then_notified() {
    let mut sink = Sink::reserve("notifyworkmail");
    sink.start().await;
    let mut settings = smtp(sink.port);
    settings.links = Some(test_link_issuer());
    let s = system("notifyworkmail", settings).await;
    let org = s.org().await;
    let zoe = Caller {
        person_id: uuid::Uuid::now_v7(),
        role: Role::Professional,
        name: "Zoe Hart".into(),
    };
    let mut admin = s.signer.client(&org.admin).unwrap();
    admin
        .register_professional(cmd::RegisterProfessionalRequest {
            command_id: command_id(),
            professional_id: zoe.person_id.to_string(),
            name: zoe.name.clone(),
            role_label: "Renal Nurse".into(),
            work_email: "zoe.hart@hospital.example".into(),
        })
        .await
        .unwrap();
    // A carer's address cannot be claimed verified either.
    let claimed = admin
        .register_carer(cmd::RegisterCarerRequest {
            command_id: command_id(),
            carer_id: uuid::Uuid::now_v7().to_string(),
            name: "Kim Hart".into(),
            email: "kim@example.org".into(),
            email_verified: true,
        })
        .await
        .unwrap_err();
    assert_eq!(claimed.code(), Code::InvalidArgument, "{claimed:?}");

    let token = first_link(&sink, "zoe.hart@hospital.example").await;
    // Only Zoe, signed in, verifies it.
    let nurse = s
        .signer
        .client(&org.nurse)
        .unwrap()
        .confirm_email(cmd::ConfirmEmailRequest {
            command_id: command_id(),
            token: token.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(nurse.code(), Code::PermissionDenied, "{nurse:?}");
    let mut zoe_client = s.signer.client(&zoe).unwrap();
    zoe_client
        .confirm_email(cmd::ConfirmEmailRequest {
            command_id: command_id(),
            token,
        })
        .await
        .unwrap();

    // On the renal team (automatic CC), she is emailed of Pat's message.
    admin
        .add_team_member(cmd::AddTeamMemberRequest {
            command_id: command_id(),
            team_id: org.renal.clone(),
            professional_id: zoe.person_id.to_string(),
            contactable: true,
            lead: false,
        })
        .await
        .unwrap();
    careline_client::demo::first_thread(&s.signer, &org)
        .await
        .unwrap();
    for _ in 0..300 {
        let told = sink.received().into_iter().any(|m| {
            header(&m, "To").is_some_and(|to| to.contains("zoe.hart@hospital.example"))
                && header(&m, "Subject").is_some_and(|s| s.starts_with("New message"))
        });
        if told {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no notification reached Zoe's verified work address");
}
