//! The seed documents' scenarios, end to end through the gRPC API and NATS.

use careline_client::Steps;
use careline_client::bearer::command_id;
use careline_client::demo::first_thread;
use proto::command as pb;
use proto::events::envelope::Payload;
use proto::events::{JoinReason, Role};
use tonic::Code;

use crate::support::spawn_app;

fn recipient_professional(id: &uuid::Uuid) -> pb::Recipient {
    pb::Recipient {
        recipient: Some(pb::recipient::Recipient::ProfessionalId(id.to_string())),
    }
}

#[tokio::test]
async fn a_patient_writes_a_nurse_handles_escalates_and_archives_and_the_reply_reopens() {
    let app = spawn_app("scenario").await;
    let org = app.org().await;
    let before = app.head().await;
    let mut nurse = app.signer.client(&org.nurse).unwrap();

    // Pat writes to the Renal Unit (automatic CC), copying in her father.
    let thread = first_thread(&app.signer, &org).await.unwrap();
    // Nina assigns it to herself and adds the consultant for advice.
    let assigned = nurse
        .assign_thread(pb::AssignThreadRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
            assignee_id: org.nurse.person_id.to_string(),
            if_assignee_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    nurse
        .add_participants(pb::AddParticipantsRequest {
            command_id: command_id(),
            staff_side: false,
            thread_id: thread.clone(),
            recipients: vec![recipient_professional(&org.consultant.person_id)],
            carer_ids: vec![],
        })
        .await
        .unwrap();
    // The consultant answers and leaves; Nina archives the thread.
    let mut consultant = app.signer.client(&org.consultant).unwrap();
    consultant
        .post(
            &thread,
            "One litre on Sunday, and weigh yourself in the morning.",
        )
        .await
        .unwrap();
    consultant.leave(&thread).await.unwrap();
    nurse.archive(&thread).await.unwrap();
    // Pat replies: the thread comes back.
    let reply = app
        .signer
        .client(&org.patient)
        .unwrap()
        .post_message(pb::PostMessageRequest {
            attachments: vec![],
            command_id: command_id(),
            mention_ids: vec![],
            thread_id: thread.clone(),
            body: "Thank you, that helps.".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.aggregate_id, thread);
    assert_eq!(reply.version, reply.position);
    assert!(!reply.message_id.is_empty());

    let events = app.events_after(before).await;
    let summary: Vec<(&str, String, i32)> = events
        .iter()
        .map(|e| {
            let actor = e.envelope.actor.as_ref().unwrap();
            (e.event_type(), actor.display_name.clone(), actor.role)
        })
        .collect();
    let professional = Role::Professional as i32;
    assert_eq!(
        summary,
        vec![
            ("ThreadStarted", "Pat Jones".into(), Role::Patient as i32),
            ("ThreadAssigned", "Nina Patel".into(), professional),
            ("ParticipantsAdded", "Nina Patel".into(), professional),
            ("MessagePosted", "Dr Rowan Cole".into(), professional),
            ("ParticipantLeft", "Dr Rowan Cole".into(), professional),
            ("ThreadArchived", "Nina Patel".into(), professional),
            ("MessagePosted", "Pat Jones".into(), Role::Patient as i32),
        ]
    );
    assert!(events.iter().all(|e| e.envelope.aggregate_id == thread));
    assert_eq!(events[1].position, assigned.position);
    assert_eq!(events[6].position, reply.position);

    // One event recorded the whole auto-CC expansion: every contactable
    // member, never the consultant, and the carer as CC.
    let Some(Payload::ThreadStarted(started)) = &events[0].envelope.payload else {
        panic!("not ThreadStarted");
    };
    let mut people: Vec<(String, JoinReason)> = started
        .participants
        .iter()
        .map(|p| (p.person_id.clone(), p.reason()))
        .collect();
    people.sort();
    let mut expected = vec![
        (org.patient.person_id.to_string(), JoinReason::Author),
        (org.nurse.person_id.to_string(), JoinReason::TeamAutoCc),
        (org.nurse2.person_id.to_string(), JoinReason::TeamAutoCc),
        (org.lead.person_id.to_string(), JoinReason::TeamAutoCc),
        (org.carer.person_id.to_string(), JoinReason::Cc),
    ];
    expected.sort();
    assert_eq!(people, expected);
    assert_eq!(started.team_ids, vec![org.renal.clone()]);

    let Some(Payload::ParticipantLeft(left)) = &events[4].envelope.payload else {
        panic!("not ParticipantLeft");
    };
    assert_eq!(left.person_id, org.consultant.person_id.to_string());
    let Some(Payload::MessagePosted(posted)) = &events[6].envelope.payload else {
        panic!("not MessagePosted");
    };
    assert!(
        posted.reopened,
        "the patient's reply must reopen the archived thread"
    );
}

#[tokio::test]
async fn revoking_consent_stops_the_carer_from_then_on_and_keeps_the_history() {
    let app = spawn_app("consent").await;
    let org = app.org().await;
    let thread = first_thread(&app.signer, &org).await.unwrap();
    let mut carer = app.signer.client(&org.carer).unwrap();
    let post = |body: &str| pb::PostMessageRequest {
        attachments: vec![],
        command_id: command_id(),
        mention_ids: vec![],
        thread_id: thread.clone(),
        body: body.into(),
    };
    let before_revoke = carer
        .post_message(post("Dad here: she is worried."))
        .await
        .unwrap();
    assert_eq!(
        before_revoke.get_ref().aggregate_id,
        thread,
        "a carer with consent posts"
    );
    let carer_event = app.events_after(before_revoke.get_ref().position - 1).await;
    assert_eq!(
        carer_event[0].envelope.actor.as_ref().unwrap().on_behalf_of,
        org.patient.person_id.to_string(),
        "a carer acts on the patient's behalf"
    );

    app.signer
        .client(&org.patient)
        .unwrap()
        .revoke_carer_consent(pb::RevokeCarerConsentRequest {
            command_id: command_id(),
            patient_id: org.patient.person_id.to_string(),
            carer_id: org.carer.person_id.to_string(),
        })
        .await
        .unwrap();
    let refused = carer.post_message(post("Still here?")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("consent"),
        "{}",
        refused.message()
    );

    // What the carer wrote stays in the record.
    let events = app.events_after(0).await;
    assert!(
        events
            .iter()
            .any(|e| e.position == before_revoke.get_ref().position)
    );
}

#[tokio::test]
async fn self_registration_needs_the_teams_current_code() {
    let app = spawn_app("joincode").await;
    let org = app.org().await;
    let mut admin = app.signer.client(&org.admin).unwrap();
    let code = admin.issue_code(&org.cardiology).await.unwrap();
    assert_eq!(code.len(), 10);
    let mut sam = app.signer.client(&org.other_patient).unwrap();
    let join = |code: &str| pb::JoinTeamWithCodeRequest {
        command_id: command_id(),
        team_id: org.cardiology.clone(),
        join_code: code.into(),
        ..Default::default()
    };
    let wrong = sam
        .join_team_with_code(join("WRONGCODE2"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::PermissionDenied);
    // A newer code replaces the old one.
    let newer = admin.issue_code(&org.cardiology).await.unwrap();
    let old = sam.join_team_with_code(join(&code)).await.unwrap_err();
    assert_eq!(old.code(), Code::PermissionDenied);
    sam.join_team_with_code(join(&newer)).await.unwrap();

    // Now Sam can message the team: its default contact receives it.
    let started = sam
        .start_thread(pb::StartThreadRequest {
            attachments: vec![],
            command_id: command_id(),
            thread_id: String::new(),
            patient_id: org.other_patient.person_id.to_string(),
            subject: "Palpitations".into(),
            body: "Should I be worried?".into(),
            recipients: vec![pb::Recipient {
                recipient: Some(pb::recipient::Recipient::TeamId(org.cardiology.clone())),
            }],
            carer_ids: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let events = app.events_after(started.position - 1).await;
    let Some(Payload::ThreadStarted(e)) = &events[0].envelope.payload else {
        panic!("not ThreadStarted");
    };
    assert!(
        e.participants
            .iter()
            .any(|p| p.person_id == org.cardiologist.person_id.to_string()
                && p.reason() == JoinReason::TeamDefaultContact)
    );
}

/// Guessing a team's join code: after ten refused codes in an hour a
/// person is stopped, even with the right code, and nothing is written; a
/// right code does not count, and someone else still joins.
#[tokio::test]
async fn guessing_join_codes_is_stopped_after_ten_refusals_an_hour() {
    let app = spawn_app("joinguess").await;
    let org = app.org().await;
    let mut admin = app.signer.client(&org.admin).unwrap();
    let code = admin.issue_code(&org.cardiology).await.unwrap();
    let join = |code: &str| pb::JoinTeamWithCodeRequest {
        command_id: command_id(),
        team_id: org.cardiology.clone(),
        join_code: code.into(),
        ..Default::default()
    };
    let mut sam = app.signer.client(&org.other_patient).unwrap();
    for i in 0..command_service::app::WRONG_CODES_PER_HOUR {
        let wrong = sam
            .join_team_with_code(join(&format!("GUESS{i:05}")))
            .await
            .unwrap_err();
        assert_eq!(wrong.code(), Code::PermissionDenied, "{wrong:?}");
    }
    let head = app.head().await;
    let stopped = sam.join_team_with_code(join(&code)).await.unwrap_err();
    assert_eq!(stopped.code(), Code::ResourceExhausted, "{stopped:?}");
    assert!(
        stopped
            .message()
            .contains("too many join codes refused: at most 10 an hour"),
        "{stopped:?}"
    );
    assert_eq!(app.head().await, head);
    // Someone else, with the right code, joins.
    let mut pat = app.signer.client(&org.patient).unwrap();
    pat.join_team_with_code(join(&code)).await.unwrap();
}

#[tokio::test]
async fn a_patient_who_addresses_one_nurse_of_an_auto_cc_team_is_told_which_team_to_write_to() {
    let app = spawn_app("autoccalone").await;
    let org = app.org().await;
    let before = app.head().await;
    let mut patient = app.signer.client(&org.patient).unwrap();
    let refused = patient
        .start_thread(pb::StartThreadRequest {
            attachments: vec![],
            command_id: command_id(),
            thread_id: String::new(),
            patient_id: org.patient.person_id.to_string(),
            subject: "A question".into(),
            body: "Can I ask you directly?".into(),
            recipients: vec![recipient_professional(&org.nurse.person_id)],
            carer_ids: vec![],
        })
        .await
        .unwrap_err();
    // A rule of the team, not a malformed request; it names the person
    // and the team to address instead.
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains(&org.nurse.name), "{refused:?}");
    assert!(
        refused.message().contains("address team Renal Unit"),
        "{refused:?}"
    );
    assert_eq!(app.head().await, before, "nothing was written");
}

/// Dr Shah is contactable on the cardiology ward, which has automatic CC:
/// the renal nurse writing about Pat cannot pick him out by name (the ward
/// has nothing to do with Pat yet), and is told to address the ward.
#[tokio::test]
async fn a_member_of_an_unrelated_auto_cc_team_is_reached_through_that_team() {
    let app = spawn_app("autoccelsewhere").await;
    let org = app.org().await;
    let mut admin = app.signer.client(&org.admin).unwrap();
    let ward = command_id();
    admin
        .create_team(pb::CreateTeamRequest {
            command_id: ward.clone(),
            team_id: String::new(),
            name: "Cardiology Ward".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    admin
        .add_team_member(pb::AddTeamMemberRequest {
            command_id: command_id(),
            team_id: ward.clone(),
            professional_id: org.cardiologist.person_id.to_string(),
            contactable: true,
            lead: false,
        })
        .await
        .unwrap();
    admin
        .set_auto_cc(pb::SetAutoCcRequest {
            command_id: command_id(),
            team_id: ward.clone(),
            enabled: true,
        })
        .await
        .unwrap();
    let before = app.head().await;
    let refused = app
        .signer
        .client(&org.nurse)
        .unwrap()
        .start_thread(pb::StartThreadRequest {
            attachments: vec![],
            command_id: command_id(),
            thread_id: String::new(),
            patient_id: org.patient.person_id.to_string(),
            subject: "Palpitations".into(),
            body: "Could cardiology advise?".into(),
            recipients: vec![
                pb::Recipient {
                    recipient: Some(pb::recipient::Recipient::TeamId(org.renal.clone())),
                },
                recipient_professional(&org.cardiologist.person_id),
            ],
            carer_ids: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("address team Cardiology Ward"),
        "{refused:?}"
    );
    assert_eq!(app.head().await, before, "nothing was written");
}

#[tokio::test]
async fn an_id_registered_as_one_kind_of_person_cannot_be_registered_as_another() {
    let app = spawn_app("onekind").await;
    let org = app.org().await;
    let before = app.head().await;
    // A professional (in no team) tries to take over the consultant's id
    // as a patient, and the patient's id as a carer.
    let mut cardiologist = app.signer.client(&org.cardiologist).unwrap();
    let as_patient = cardiologist
        .register_patient(pb::RegisterPatientRequest {
            command_id: command_id(),
            patient_id: org.consultant.person_id.to_string(),
            name: "Someone".into(),
            email: "someone@example.org".into(),
            email_verified: false,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        as_patient.code(),
        Code::FailedPrecondition,
        "{as_patient:?}"
    );
    assert!(
        as_patient.message().contains("professional"),
        "{as_patient:?}"
    );
    let as_carer = cardiologist
        .register_carer(pb::RegisterCarerRequest {
            command_id: command_id(),
            carer_id: org.patient.person_id.to_string(),
            name: "Someone".into(),
            email: "someone@example.org".into(),
            email_verified: false,
        })
        .await
        .unwrap_err();
    assert_eq!(as_carer.code(), Code::FailedPrecondition, "{as_carer:?}");
    assert!(as_carer.message().contains("patient"), "{as_carer:?}");
    assert_eq!(app.head().await, before, "nothing was written");
}

#[tokio::test]
async fn a_carer_with_a_professional_token_is_still_a_carer_on_the_thread() {
    let app = spawn_app("carerrole").await;
    let org = app.org().await;
    let thread = first_thread(&app.signer, &org).await.unwrap();
    let mut pat = app.signer.client(&org.patient).unwrap();
    pat.revoke_carer_consent(pb::RevokeCarerConsentRequest {
        command_id: command_id(),
        patient_id: org.patient.person_id.to_string(),
        carer_id: org.carer.person_id.to_string(),
    })
    .await
    .unwrap();
    let before = app.head().await;
    let posing = service_kit::Caller {
        role: service_kit::Role::Professional,
        ..org.carer.clone()
    };
    let refused = app
        .signer
        .client(&posing)
        .unwrap()
        .post_message(pb::PostMessageRequest {
            attachments: vec![],
            command_id: command_id(),
            mention_ids: vec![],
            thread_id: thread,
            body: "Still here".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert_eq!(app.head().await, before);
}

/// Sam Green is in no team with PALS and has given it no access, yet PALS
/// takes complaints from every patient: he writes to it and Pam Reid, its
/// default contact, receives it. Once an admin closes PALS to patients
/// outside it, he is told whom he may write to.
#[tokio::test]
async fn any_patient_writes_to_pals_while_it_is_open_to_every_patient() {
    let app = spawn_app("openpals").await;
    let org = app.org().await;
    let mut sam = app.signer.client(&org.other_patient).unwrap();
    let thread = sam
        .start_to_team(
            &org.other_patient,
            &org.pals,
            "A complaint",
            "I waited four hours.",
        )
        .await
        .unwrap();
    let events = app.events_after(0).await;
    let started = events
        .iter()
        .find_map(|e| match &e.envelope.payload {
            Some(Payload::ThreadStarted(t)) if e.envelope.aggregate_id == thread => Some(t),
            _ => None,
        })
        .expect("the thread started");
    assert!(
        started
            .participants
            .iter()
            .any(|p| p.person_id == org.pals_officer.person_id.to_string()
                && p.reason == JoinReason::TeamDefaultContact as i32)
    );

    let mut admin = app.signer.client(&org.admin).unwrap();
    admin
        .set_team_open_to_patients(pb::SetTeamOpenToPatientsRequest {
            command_id: command_id(),
            team_id: org.pals.clone(),
            open: false,
        })
        .await
        .unwrap();
    let refused = sam
        .start_to_team(&org.other_patient, &org.pals, "Again", "Still waiting.")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("open to every patient"),
        "{}",
        refused.message()
    );
    // The thread already started stays: Sam still writes on it.
    sam.post(&thread, "Any news?").await.unwrap();
}

/// Nia Newcomer has signed in but no one has registered her: with the
/// renal unit's code (printed on its clinic letters) she signs herself up,
/// is in the team, and writes to it. A rotated code is refused, saying why.
#[tokio::test]
async fn a_newcomer_signs_up_with_a_teams_code_and_writes_to_it() {
    let app = spawn_app("signup").await;
    let org = app.org().await;
    let nia = service_kit::Caller {
        person_id: uuid::Uuid::now_v7(),
        role: service_kit::Role::Patient,
        name: "Nia Newcomer".into(),
    };
    let mut client = app.signer.client(&nia).unwrap();
    // Before signing up she is nobody the log knows.
    let unknown = client
        .start_to_team(&nia, &org.renal, "Hello", "First question")
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::PermissionDenied);

    let mut admin = app.signer.client(&org.admin).unwrap();
    let old = org.renal_join_code.clone();
    let current = admin.issue_code(&org.renal).await.unwrap();
    let join = |code: &str| pb::JoinTeamWithCodeRequest {
        command_id: command_id(),
        team_id: org.renal.clone(),
        join_code: code.into(),
        name: String::new(),
        email: "nia@example.org".into(),
    };
    let rotated = client.join_team_with_code(join(&old)).await.unwrap_err();
    assert_eq!(rotated.code(), Code::PermissionDenied);
    assert!(
        rotated
            .message()
            .contains("changes when a new one is issued"),
        "{}",
        rotated.message()
    );
    let signed_up = client
        .join_team_with_code(join(&current))
        .await
        .unwrap()
        .into_inner();
    let events = app.events_after(signed_up.position - 1).await;
    let Some(Payload::PatientRegistered(e)) = &events[0].envelope.payload else {
        panic!("not a registration: {:?}", events[0].envelope.payload);
    };
    assert_eq!(e.patient_id, nia.person_id.to_string());
    assert_eq!(e.name, "Nia Newcomer", "the name her sign-in gives");
    assert_eq!(e.joined_team_id, org.renal);
    assert!(!e.email_verified);

    // Now she is a patient of the renal unit, and writes to it.
    client
        .start_to_team(&nia, &org.renal, "Hello", "First question")
        .await
        .unwrap();
}
