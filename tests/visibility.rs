//! Who sees a thread: one table, run against every service that answers
//! about a thread (docs/internals.md, "Who sees a thread"). Every service
//! runs here on one stream and one database; each row is one person in one
//! relation to the thread, each column one call, and each cell says whether
//! the call is answered (true) or refused as if the thread were not theirs
//! (false). A cell on which two services disagree is a defect.

#![allow(clippy::unwrap_used)]

use careline_client::Steps;
use proto::command::recipient::Recipient;
use std::time::{Duration, SystemTime};

use careline_client::bearer::command_id;
use careline_client::demo::{DemoOrg, first_thread, seed};
use proto::audit as audit_pb;
use proto::command as cmd;
use proto::inbox as inbox_pb;
use proto::notify as notify_pb;
use service_kit::{Caller, Role};
use testkit::{Services, System};
use tonic::{Code, Status};

/// The calls, in the order of a row's cells.
const CALLS: [&str; 7] = [
    "PostMessage",
    "MarkRead",
    "GetThread",
    "MyInbox lists it",
    "ThreadTrail",
    "ThreadNotifications",
    "PostStaffNote",
];

/// The table: who, and whether each call is answered.
const TABLE: [(&str, [bool; 7]); 20] = [
    ("the patient", [true, true, true, true, true, false, false]),
    ("another patient", [false; 7]),
    (
        "a carer on it, with consent",
        [true, true, true, true, false, false, false],
    ),
    ("a carer with consent, not on it", [false; 7]),
    ("a carer on it whose consent was revoked", [false; 7]),
    (
        "a professional on it",
        [true, true, true, true, false, true, true],
    ),
    ("a professional who left it", [false; 7]),
    (
        "a professional removed from the team that brought them",
        [false; 7],
    ),
    ("a professional whose account was closed", [false; 7]),
    (
        "a professional on its staff side (writes notes, not messages)",
        [false, true, true, true, false, true, true],
    ),
    (
        "a member of a team on its staff side, not on it",
        [false, false, true, true, false, true, true],
    ),
    (
        "a member of a team it is addressed to",
        [false, false, true, true, false, true, true],
    ),
    (
        "a member of a team holding a grant in force",
        [false, false, true, true, false, true, true],
    ),
    ("a member of a team whose grant expired", [false; 7]),
    ("a professional in no relation", [false; 7]),
    ("a token that says professional for a carer", [false; 7]),
    ("an admin", [false; 7]),
    (
        "an auditor",
        [false, false, false, false, true, false, false],
    ),
    ("an operator", [false; 7]),
    ("an admin token for someone never granted it", [false; 7]),
];

fn person(role: Role, name: &str) -> Caller {
    Caller {
        person_id: uuid::Uuid::now_v7(),
        role,
        name: name.into(),
    }
}

fn professional(id: &Caller) -> cmd::Recipient {
    cmd::Recipient {
        recipient: Some(cmd::recipient::Recipient::ProfessionalId(
            id.person_id.to_string(),
        )),
    }
}

/// Registers a professional in a new team of their own.
async fn in_new_team(s: &System, org: &DemoOrg, who: &Caller, team: &str) -> String {
    let team_id = s
        .signer
        .client(&org.admin)
        .unwrap()
        .create_team(cmd::CreateTeamRequest {
            command_id: command_id(),
            name: team.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .aggregate_id;
    in_team(s, org, who, &team_id).await;
    team_id
}

/// Registers a professional in `team`, contactable.
async fn in_team(s: &System, org: &DemoOrg, who: &Caller, team: &str) {
    let mut admin = s.signer.client(&org.admin).unwrap();
    admin
        .register_professional(cmd::RegisterProfessionalRequest {
            command_id: command_id(),
            professional_id: who.person_id.to_string(),
            name: who.name.clone(),
            role_label: "Physiotherapist".into(),
            work_email: format!("{}@hospital.example", who.person_id.simple()),
        })
        .await
        .unwrap();
    admin
        .add_team_member(cmd::AddTeamMemberRequest {
            command_id: command_id(),
            team_id: team.into(),
            professional_id: who.person_id.to_string(),
            contactable: true,
            lead: false,
        })
        .await
        .unwrap();
}

/// The thread, its latest message (a staff reply nobody else has read),
/// and the people of each row.
async fn scenario(s: &System) -> (String, String, Vec<Caller>) {
    let org = seed(&s.signer).await.unwrap();
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let patient_id = org.patient.person_id.to_string();
    let mut nina = s.signer.client(&org.nurse).unwrap();
    let mut pat = s.signer.client(&org.patient).unwrap();

    // Specialists brought in; the dietitian then leaves.
    nina.add_participants(cmd::AddParticipantsRequest {
        command_id: command_id(),
        staff_side: false,
        thread_id: thread.clone(),
        recipients: vec![
            professional(&org.cardiologist),
            professional(&org.dietitian),
        ],
        carer_ids: vec![],
    })
    .await
    .unwrap();
    s.signer
        .client(&org.dietitian)
        .unwrap()
        .leave(&thread)
        .await
        .unwrap();

    // A second carer, copied in under consent, which the patient revokes.
    let revoked = person(Role::Carer, "Rita Evans");
    s.signer
        .client(&org.admin)
        .unwrap()
        .register_carer(cmd::RegisterCarerRequest {
            command_id: command_id(),
            carer_id: revoked.person_id.to_string(),
            name: revoked.name.clone(),
            email: "rita.evans@example.org".into(),
            email_verified: false,
        })
        .await
        .unwrap();
    pat.grant_carer_consent(cmd::GrantCarerConsentRequest {
        command_id: command_id(),
        patient_id: patient_id.clone(),
        carer_id: revoked.person_id.to_string(),
        relationship: cmd::CarerRelationship::FamilyMember as i32,
        expires_at: None,
    })
    .await
    .unwrap();
    nina.add_participants(cmd::AddParticipantsRequest {
        command_id: command_id(),
        staff_side: false,
        thread_id: thread.clone(),
        recipients: vec![],
        carer_ids: vec![revoked.person_id.to_string()],
    })
    .await
    .unwrap();
    pat.revoke_carer_consent(cmd::RevokeCarerConsentRequest {
        command_id: command_id(),
        patient_id: patient_id.clone(),
        carer_id: revoked.person_id.to_string(),
    })
    .await
    .unwrap();

    // A carer with consent who is not on the thread: the patient's consent
    // to the demo's second carer.
    pat.grant_carer_consent(cmd::GrantCarerConsentRequest {
        command_id: command_id(),
        patient_id: patient_id.clone(),
        carer_id: org.carer_without_consent.person_id.to_string(),
        relationship: cmd::CarerRelationship::Friend as i32,
        expires_at: None,
    })
    .await
    .unwrap();

    // A team whose grant runs out in two seconds.
    let phil = person(Role::Professional, "Phil Moss");
    let physio = in_new_team(s, &org, &phil, "Physiotherapy").await;
    let expiry = SystemTime::now() + Duration::from_secs(2);
    pat.grant_record_access(cmd::GrantRecordAccessRequest {
        command_id: command_id(),
        patient_id: patient_id.clone(),
        team_id: physio,
        expires_at: Some(expiry.into()),
        reason: "Exercises after the fall".into(),
    })
    .await
    .unwrap();

    // Consulted on the staff side: Sam by name, and the Neurology team
    // (through Nora, its default contact; Olly, its other member, is not on
    // the thread).
    let sam = person(Role::Professional, "Sam Reid");
    in_new_team(s, &org, &sam, "Haematology").await;
    nina.add_recipient(
        &thread,
        Recipient::ProfessionalId(sam.person_id.to_string()),
        true,
    )
    .await
    .unwrap();
    let (nora, olly) = (
        person(Role::Professional, "Nora Hale"),
        person(Role::Professional, "Olly Hart"),
    );
    let neurology = in_new_team(s, &org, &nora, "Neurology").await;
    in_team(s, &org, &olly, &neurology).await;
    s.signer
        .client(&org.admin)
        .unwrap()
        .set_default_contact(cmd::SetDefaultContactRequest {
            command_id: command_id(),
            team_id: neurology.clone(),
            professional_id: nora.person_id.to_string(),
        })
        .await
        .unwrap();
    nina.add_recipient(&thread, Recipient::TeamId(neurology), true)
        .await
        .unwrap();

    let unrelated = person(Role::Professional, "Una Burke");
    in_new_team(s, &org, &unrelated, "Dermatology").await;
    let posing = Caller {
        role: Role::Professional,
        ..org.carer.clone()
    };
    let self_made = person(Role::Admin, "Max Power");

    let reply = nina
        .post_message(cmd::PostMessageRequest {
            attachments: vec![],
            command_id: command_id(),
            mention_ids: vec![],
            thread_id: thread.clone(),
            body: "Up to one litre on Sunday.".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .message_id;

    // Ned, brought by the Renal Unit, is removed from it; Lena's account
    // is closed.
    let mut admin = s.signer.client(&org.admin).unwrap();
    admin
        .remove_team_member(cmd::RemoveTeamMemberRequest {
            command_id: command_id(),
            team_id: org.renal.clone(),
            professional_id: org.nurse2.person_id.to_string(),
        })
        .await
        .unwrap();
    admin
        .deactivate_person(cmd::DeactivatePersonRequest {
            command_id: command_id(),
            person_id: org.lead.person_id.to_string(),
        })
        .await
        .unwrap();

    // Let the grant lapse.
    let left = expiry.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(500)).await;

    let people = vec![
        org.patient.clone(),
        org.other_patient.clone(),
        org.carer.clone(),
        org.carer_without_consent.clone(),
        revoked,
        org.cardiologist.clone(),
        org.dietitian.clone(),
        org.nurse2.clone(),
        org.lead.clone(),
        sam,
        olly,
        org.consultant.clone(),
        org.pals_officer.clone(),
        phil,
        unrelated,
        posing,
        org.admin.clone(),
        org.auditor.clone(),
        org.operator.clone(),
        self_made,
    ];
    (thread, reply, people)
}

/// Answered, or refused as not theirs (or, to someone on the staff side, a
/// message refused as one the patient would see); anything else fails the
/// test.
fn answered<T>(call: &str, who: &str, result: Result<T, Status>) -> bool {
    match result {
        Ok(_) => true,
        Err(s) if matches!(s.code(), Code::NotFound | Code::PermissionDenied) => false,
        Err(s) if service_kit::reason::is(&s, service_kit::reason::STAFF_SIDE) => false,
        Err(s) => panic!("{call} for {who}: {:?} {}", s.code(), s.message()),
    }
}

async fn row(
    s: &System,
    (thread, reply): (&str, &str),
    who: &Caller,
    label: &str,
    at: u64,
) -> [bool; 7] {
    let mut inbox = s.inbox(who);
    let mut audit = s.audit(who);
    let mut notify = s.notify(who);
    let get = inbox
        .get_thread(inbox_pb::GetThreadRequest {
            min_position: at,
            thread_id: thread.into(),
            ..Default::default()
        })
        .await;
    let listed = inbox
        .my_inbox(inbox_pb::MyInboxRequest {
            min_position: at,
            page_size: 200,
            ..Default::default()
        })
        .await
        .map(|page| {
            page.into_inner()
                .threads
                .iter()
                .any(|t| t.thread_id == thread)
        });
    let listed = match listed {
        Ok(listed) => listed,
        Err(e) => {
            !matches!(e.code(), Code::NotFound | Code::PermissionDenied)
                && panic!("MyInbox for {label}: {e:?}")
        }
    };
    let trail = audit
        .thread_trail(audit_pb::ThreadTrailRequest {
            min_position: at,
            thread_id: thread.into(),
            range: None,
        })
        .await;
    let notifications = notify
        .thread_notifications(notify_pb::ThreadNotificationsRequest {
            min_position: at,
            thread_id: thread.into(),
        })
        .await;
    // Commands last: they change the thread (nothing, when refused).
    let mut command = s.signer.client(who).unwrap();
    let marked = command
        .mark_read(cmd::MarkReadRequest {
            command_id: command_id(),
            thread_id: thread.into(),
            message_id: reply.into(),
        })
        .await;
    let posted = command
        .post_message(cmd::PostMessageRequest {
            attachments: vec![],
            command_id: command_id(),
            mention_ids: vec![],
            thread_id: thread.into(),
            body: "Checking in.".into(),
        })
        .await;
    let noted = command
        .post_staff_note(cmd::PostStaffNoteRequest {
            command_id: command_id(),
            thread_id: thread.into(),
            body: "For the team: checking in.".into(),
        })
        .await;
    [
        answered(CALLS[0], label, posted),
        answered(CALLS[1], label, marked),
        answered(CALLS[2], label, get),
        listed,
        answered(CALLS[4], label, trail),
        answered(CALLS[5], label, notifications),
        answered(CALLS[6], label, noted),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_follows_one_rule_of_who_sees_a_thread() {
    let s = System::start(
        "visibility",
        Services {
            wait: Some(Duration::from_secs(10)),
            ..Services::all()
        },
    )
    .await;
    let (thread, reply, people) = scenario(&s).await;
    assert_eq!(people.len(), TABLE.len());
    let mut wrong = Vec::new();
    for ((label, expected), who) in TABLE.iter().zip(&people) {
        let at = s.head().await;
        let got = row(&s, (&thread, &reply), who, label, at).await;
        for (i, call) in CALLS.iter().enumerate() {
            if got[i] != expected[i] {
                wrong.push(format!(
                    "{label}: {call} {} (the table says {})",
                    if got[i] { "answered" } else { "refused" },
                    if expected[i] { "answered" } else { "refused" }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "cells that differ:\n{}", wrong.join("\n"));
}
