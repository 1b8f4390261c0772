//! Notices from the hospital's own systems, across every service: an admin
//! registers the appointments system for the Renal Unit; with the
//! credential an operator issued it, the system books an appointment and
//! tells Pat (the client crate's worked example). Pat reads it from
//! "Renal Unit (via Appointments)", is emailed that a message arrived and
//! nothing of it, and the same booking told again is one message. The
//! system may do nothing else, nor speak for another team, nor reach a
//! patient not under its team's care; closed, it posts nothing; its
//! credential is no person's token, and a person's token posts no notice.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use careline_client::appointments::{Appointment, notify};
use careline_client::bearer::{client, command_id};
use proto::command as cmd;
use proto::inbox as inbox_pb;
use testkit::{Services, System};
use tonic::Code;

const WHEN: &str = "Tuesday 12 January, 10:30";

/// An admin registers the appointments system for `teams`; an operator
/// issues its credential.
async fn register_appointments(
    s: &System,
    admin: &service_kit::Caller,
    teams: &[&String],
) -> (String, String) {
    let system_id = command_id();
    s.signer
        .client(admin)
        .unwrap()
        .register_system(cmd::RegisterSystemRequest {
            command_id: system_id.clone(),
            system_id: String::new(),
            name: "Appointments".into(),
            team_ids: teams.iter().map(|t| t.to_string()).collect(),
        })
        .await
        .unwrap();
    let credential = testkit::system_issuer().mint_system(
        system_id.parse().unwrap(),
        "Appointments",
        Duration::from_secs(3600),
    );
    (system_id, credential)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_appointments_system_tells_a_patient_of_her_appointment() {
    let mut sink = testkit::mail::Sink::reserve("notices");
    sink.start().await;
    let s = System::start(
        "notices",
        Services {
            wait: Some(Duration::from_secs(10)),
            notify: Some(testkit::smtp(sink.port)),
            ..Services::all()
        },
    )
    .await;
    let org = s.org().await;
    let (system_id, credential) = register_appointments(&s, &org.admin, &[&org.renal]).await;

    // The worked example: book, and tell Pat.
    let appointment = Appointment::book(
        &org.patient.person_id.to_string(),
        &org.renal,
        WHEN,
        "Renal clinic, Outpatients B",
    );
    let channel = s.signer.channel();
    let told = notify(channel.clone(), &credential, &appointment)
        .await
        .unwrap();
    assert!(!told.replayed);
    let thread = told.aggregate_id.clone();

    // Told again (a retry, a restart): the same answer, nothing new.
    let again = notify(channel.clone(), &credential, &appointment)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.aggregate_id.as_str(), again.position),
        (thread.as_str(), told.position)
    );

    // Pat reads it from the team, by way of the system.
    let detail = s.thread(&org.patient, &thread, told.position).await;
    assert_eq!(detail.messages.len(), 1, "one booking, one message");
    let message = &detail.messages[0];
    assert!(message.body.contains(WHEN), "{}", message.body);
    let author = message.author.as_ref().unwrap();
    assert_eq!(author.display, "Renal Unit (via Appointments)");
    assert_eq!(author.kind, inbox_pb::PersonKind::System as i32);
    let summary = detail.summary.unwrap();
    assert_eq!(summary.subject, "Your appointment");
    assert!(summary.team_ids.contains(&org.renal));
    // The Renal Unit sees it in its team inbox; nobody waits on it.
    let renal = s
        .inbox(&org.nurse)
        .team_inbox(inbox_pb::TeamInboxRequest {
            min_position: told.position,
            team_id: org.renal.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let listed = renal
        .page
        .unwrap()
        .threads
        .into_iter()
        .find(|t| t.thread_id == thread);
    assert!(listed.is_some(), "the notice is in the Renal Unit's inbox");

    // A follow-up on the same thread.
    let follow_up = client(channel.clone(), &credential)
        .unwrap()
        .post_notice(cmd::PostNoticeRequest {
            reference: format!("{}-moved", appointment.id),
            team_id: org.renal.clone(),
            patient_id: org.patient.person_id.to_string(),
            thread_id: thread.clone(),
            subject: String::new(),
            body: "Your appointment has moved to 11:00, same place.".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(follow_up.aggregate_id, thread);
    let detail = s.thread(&org.patient, &thread, follow_up.position).await;
    assert_eq!(detail.messages.len(), 2);

    // The audit trail names the system and the team it spoke for.
    let trail = s
        .thread_trail(&org.patient, &thread, follow_up.position)
        .await;
    let said: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert!(
        said.iter()
            .any(|a| a.contains("Appointments (a hospital system)")
                && a.contains("Renal Unit")
                && a.contains(&appointment.id)),
        "{said:?}"
    );
    assert!(trail.iter().any(|e| e.actor_id == system_id), "{said:?}");

    // Pat is emailed that a message arrived from the Renal Unit by way of
    // Appointments, and nothing of what it says.
    let email = wait_for_mail(&sink, "(via Appointments)").await;
    assert!(email.contains("Renal Unit"), "{email}");
    for clinical in [WHEN, "Outpatients", "Your appointment", &appointment.id] {
        assert!(!email.contains(clinical), "{clinical:?} in {email}");
    }
}

/// The first email received whose text holds `needle`, within 30 s.
async fn wait_for_mail(sink: &testkit::mail::Sink, needle: &str) -> String {
    for _ in 0..300 {
        if let Some(found) = sink.received().into_iter().find(|m| m.contains(needle)) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no email with {needle:?} in 30 s: {:?}", sink.received());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_posts_notices_for_its_own_teams_and_patients_and_does_nothing_else() {
    let s = System::start(
        "notices_refused",
        Services {
            inbox: true,
            audit: false,
            notify: None,
            ..Services::all()
        },
    )
    .await;
    let org = s.org().await;
    let (system_id, credential) =
        register_appointments(&s, &org.admin, &[&org.renal, &org.cardiology]).await;
    let channel = s.signer.channel();
    let mut system = client(channel.clone(), &credential).unwrap();
    let notice = |team: &str, patient: &str| cmd::PostNoticeRequest {
        reference: command_id(),
        team_id: team.into(),
        patient_id: patient.into(),
        thread_id: String::new(),
        subject: "Your appointment".into(),
        body: "Booked.".into(),
    };
    let pat = org.patient.person_id.to_string();

    // Not for a team it was not registered for.
    let refused = system
        .post_notice(notice(&org.nutrition, &pat))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // Not to a patient not under its team's care (Cardiology only holds
    // a grant to Pat's record).
    let refused = system
        .post_notice(notice(&org.cardiology, &pat))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    // Bad input names the field.
    let mut bad = notice(&org.renal, &pat);
    bad.reference = " ".into();
    let refused = system.post_notice(bad).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("reference"), "{refused:?}");
    let mut bad = notice(&org.renal, &pat);
    bad.subject = String::new();
    let refused = system.post_notice(bad).await.unwrap_err();
    assert!(refused.message().contains("subject"), "{refused:?}");

    // Every other command: refused for what the credential is.
    let refused = system
        .start_thread(cmd::StartThreadRequest {
            command_id: command_id(),
            patient_id: pat.clone(),
            subject: "Hello".into(),
            body: "Hello".into(),
            recipients: vec![cmd::Recipient {
                recipient: Some(cmd::recipient::Recipient::TeamId(org.renal.clone())),
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = system
        .register_system(cmd::RegisterSystemRequest {
            command_id: command_id(),
            name: "Rogue".into(),
            team_ids: vec![org.cardiology.clone()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // Every query: the read services do not know its key.
    let refused = s
        .inbox_with_token(&credential)
        .my_inbox(inbox_pb::MyInboxRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    // A person's token posts no notice, not even an admin's.
    let refused = s
        .signer
        .client(&org.admin)
        .unwrap()
        .post_notice(notice(&org.renal, &pat))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // A credential signed with the people's token key is no credential.
    let forged = testkit::issuer().mint_system(
        system_id.parse().unwrap(),
        "Appointments",
        Duration::from_secs(3600),
    );
    let refused = client(channel.clone(), &forged)
        .unwrap()
        .post_notice(notice(&org.renal, &pat))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // A credential for a system no admin registered posts nothing.
    let stranger = testkit::system_issuer().mint_system(
        uuid::Uuid::now_v7(),
        "Appointments",
        Duration::from_secs(3600),
    );
    let refused = client(channel.clone(), &stranger)
        .unwrap()
        .post_notice(notice(&org.renal, &pat))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // Only an admin registers a system, and only for teams that exist.
    let refused = s
        .signer
        .client(&org.nurse)
        .unwrap()
        .register_system(cmd::RegisterSystemRequest {
            command_id: command_id(),
            name: "Pharmacy".into(),
            team_ids: vec![org.renal.clone()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = s
        .signer
        .client(&org.admin)
        .unwrap()
        .register_system(cmd::RegisterSystemRequest {
            command_id: command_id(),
            name: "Pharmacy".into(),
            team_ids: vec![command_id()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");

    // Closed by an admin, the system posts nothing, whatever its credential.
    let before = s.head().await;
    s.signer
        .client(&org.admin)
        .unwrap()
        .deactivate_person(cmd::DeactivatePersonRequest {
            command_id: command_id(),
            person_id: system_id.clone(),
        })
        .await
        .unwrap();
    let refused = system
        .post_notice(notice(&org.renal, &pat))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // Nothing refused wrote anything: only the deactivation is new.
    let head = s.head().await;
    assert_eq!(head, before + 1);

    // The admins' list says which teams it spoke for and that it is closed;
    // it is for admins only.
    let listed = s
        .inbox(&org.admin)
        .systems(inbox_pb::SystemsRequest { min_position: head })
        .await
        .unwrap()
        .into_inner()
        .systems;
    let appointments = listed.iter().find(|x| x.system_id == system_id).unwrap();
    assert_eq!(appointments.name, "Appointments");
    assert_eq!(appointments.team_names, ["Renal Unit", "Cardiology"]);
    assert!(appointments.closed);
    let refused = s
        .inbox(&org.nurse)
        .systems(inbox_pb::SystemsRequest { min_position: head })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
}
