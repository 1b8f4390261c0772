//! Two patients of the same name are told apart: a date of birth, a
//! hospital number and an NHS number recorded at registration (or later, by
//! an admin or the patient's care team), checked by the command service,
//! shown beside the name wherever staff see the patient, found by search,
//! and on the record's trail without their values.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use careline_client::bearer::command_id;
use careline_client::demo::first_thread;
use proto::command as cmd;
use proto::inbox as inbox_pb;
use testkit::{Services, System};
use tonic::Code;

fn identity(
    date_of_birth: &str,
    hospital_number: &str,
    nhs_number: &str,
) -> inbox_pb::PatientIdentity {
    inbox_pb::PatientIdentity {
        date_of_birth: date_of_birth.into(),
        hospital_number: hospital_number.into(),
        nhs_number: nhs_number.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patients_of_the_same_name_are_told_apart() {
    let s = System::start(
        "patient_identity",
        Services {
            wait: Some(Duration::from_secs(10)),
            ..Services::all()
        },
    )
    .await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let mut nina = s.signer.client(&org.nurse).unwrap();

    // A wrong NHS number (its check digit) or date is refused, naming the
    // field, and nothing is written.
    let before = s.head().await;
    for (field, request) in [
        (
            "nhs_number",
            cmd::RegisterPatientRequest {
                nhs_number: "943 476 5918".into(),
                ..Default::default()
            },
        ),
        (
            "date_of_birth",
            cmd::RegisterPatientRequest {
                date_of_birth: "31/02/1961".into(),
                ..Default::default()
            },
        ),
        (
            "hospital_number",
            cmd::RegisterPatientRequest {
                hospital_number: "RX 44".into(),
                ..Default::default()
            },
        ),
    ] {
        let refused = nina
            .register_patient(cmd::RegisterPatientRequest {
                command_id: command_id(),
                name: "Pat Jones".into(),
                ..request
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().contains(field), "{refused:?}");
    }
    assert_eq!(s.head().await, before, "nothing was written");

    // Another Pat Jones, born on another day, joins the renal team and
    // writes to it too.
    let other = uuid::Uuid::now_v7().to_string();
    nina.register_patient(cmd::RegisterPatientRequest {
        command_id: command_id(),
        patient_id: other.clone(),
        name: "Pat Jones".into(),
        date_of_birth: "02/09/1974".into(),
        hospital_number: "rx7781203".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let at = nina
        .add_patient_to_team(cmd::AddPatientToTeamRequest {
            command_id: command_id(),
            patient_id: other.clone(),
            team_id: org.renal.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .position;

    // Staff see each with what tells them apart.
    let found = s
        .inbox(&org.nurse)
        .team_patients(inbox_pb::TeamPatientsRequest {
            min_position: at,
            team_id: org.renal.clone(),
            name_prefix: "pat jones".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .patients;
    let shown = |id: &str| {
        found
            .iter()
            .find(|p| p.person_id == id)
            .and_then(|p| p.identity.clone())
            .unwrap()
    };
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        shown(&org.patient.person_id.to_string()),
        identity("1961-04-23", "RX4409217", "9434765919")
    );
    assert_eq!(shown(&other), identity("1974-09-02", "RX7781203", ""));

    // Found by any of them, as people write them.
    let search = |term: &str| {
        let mut inbox = s.inbox(&org.nurse);
        let term = term.to_string();
        let renal = org.renal.clone();
        async move {
            inbox
                .team_patients(inbox_pb::TeamPatientsRequest {
                    min_position: at,
                    team_id: renal,
                    name_prefix: term,
                })
                .await
                .unwrap()
                .into_inner()
                .patients
                .into_iter()
                .map(|p| p.person_id)
                .collect::<Vec<_>>()
        }
    };
    let pat = org.patient.person_id.to_string();
    for term in [
        "23/4/1961",
        "1961-04-23",
        "rx4409217",
        "943 476 5919",
        "9434765919",
    ] {
        assert_eq!(search(term).await, vec![pat.clone()], "{term}");
    }
    assert_eq!(search("02/09/1974").await, vec![other.clone()]);

    // The team inbox: Pat's thread, by her hospital number, with her
    // identity beside her name.
    let inbox = s
        .inbox(&org.nurse)
        .team_inbox(inbox_pb::TeamInboxRequest {
            min_position: at,
            team_id: org.renal.clone(),
            filters: Some(inbox_pb::Filters {
                patient_name_prefix: "RX4409217".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let threads = inbox.page.unwrap().threads;
    assert_eq!(threads.len(), 1, "{threads:?}");
    assert_eq!(threads[0].thread_id, thread);
    assert_eq!(
        threads[0]
            .patient_identity
            .as_ref()
            .unwrap()
            .hospital_number,
        "RX4409217"
    );

    // Who may record them: an admin or the patient's care team; not the
    // patient, not a professional of another team.
    let change = |patient: &str, hospital_number: &str| cmd::ChangePatientDetailsRequest {
        command_id: command_id(),
        patient_id: patient.into(),
        date_of_birth: "1974-09-02".into(),
        hospital_number: hospital_number.into(),
        nhs_number: "4010232137".into(),
    };
    let before = s.head().await;
    for who in [&org.patient, &org.cardiologist] {
        let refused = s
            .signer
            .client(who)
            .unwrap()
            .change_patient_details(change(&pat, "RX1"))
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{}: {refused:?}",
            who.name
        );
    }
    assert_eq!(s.head().await, before, "nothing was written");
    let changed = nina
        .change_patient_details(change(&other, "RX7781204"))
        .await
        .unwrap()
        .into_inner()
        .position;
    let again = nina
        .change_patient_details(change(&other, "RX7781204"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    let people = s
        .inbox(&org.admin)
        .find_people(inbox_pb::FindPeopleRequest {
            min_position: changed,
            name_prefix: "4010232137".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .people;
    assert_eq!(people.len(), 1, "{people:?}");
    assert_eq!(
        people[0].person.as_ref().unwrap().identity,
        Some(identity("1974-09-02", "RX7781204", "4010232137"))
    );

    // The record's trail says what was recorded, never the values.
    let trail = s
        .audit(&org.auditor)
        .record_trail(proto::audit::RecordTrailRequest {
            min_position: changed,
            patient_id: other.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let entry = trail
        .entries
        .iter()
        .find(|e| e.event_type == "PatientDetailsChanged")
        .unwrap();
    assert!(
        entry
            .action
            .contains("recorded the patient's date of birth, hospital number and NHS number"),
        "{entry:?}"
    );
    assert!(
        trail
            .entries
            .iter()
            .all(|e| !e.action.contains("RX77") && !e.action.contains("1974")),
        "{:?}",
        trail.entries
    );
}
