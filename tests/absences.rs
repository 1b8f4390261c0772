//! A professional's absence, across every service: Susan Turner, the
//! dietitian, will be away and names Ned Brown to stand in. Pat is shown
//! that Susan is away, until when and who gets her message; a thread she
//! starts to Susan also brings Ned in, saying whom he stands in for; the
//! Nutrition team's colleagues see who is away. Back early, everything is
//! as before. Only Susan or an admin records it.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use careline_client::bearer::command_id;
use proto::command as cmd;
use proto::inbox as inbox_pb;
use testkit::{Services, System};
use tonic::Code;

fn to_susan(s: &careline_client::DemoOrg) -> cmd::StartThreadRequest {
    cmd::StartThreadRequest {
        command_id: command_id(),
        patient_id: s.patient.person_id.to_string(),
        subject: "Low potassium foods".into(),
        body: "Which fruit can I have?".into(),
        recipients: vec![cmd::Recipient {
            recipient: Some(cmd::recipient::Recipient::ProfessionalId(
                s.dietitian.person_id.to_string(),
            )),
        }],
        ..Default::default()
    }
}

/// Pat starts a thread to Susan by name: the command's answer, and the
/// thread as Susan is shown it.
async fn pat_writes_to_susan(
    s: &System,
    org: &careline_client::DemoOrg,
) -> (cmd::CommandReply, inbox_pb::ThreadDetail) {
    let started = s
        .signer
        .client(&org.patient)
        .unwrap()
        .start_thread(to_susan(org))
        .await
        .unwrap()
        .into_inner();
    let detail = s
        .thread(&org.dietitian, &started.aggregate_id, started.position)
        .await;
    (started, detail)
}

/// Susan as Pat's new-message page offers her, as of `at`.
async fn susan_as_pat_sees_her(
    s: &System,
    org: &careline_client::DemoOrg,
    at: u64,
) -> inbox_pb::ProfessionalContact {
    let who = s
        .inbox(&org.patient)
        .who_can_i_message(inbox_pb::WhoCanIMessageRequest {
            min_position: at,
            patient_id: org.patient.person_id.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    let susan = org.dietitian.person_id.to_string();
    who.professionals
        .into_iter()
        .find(|p| p.person.as_ref().unwrap().person_id == susan)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_professionals_deputy_gets_what_patients_write_to_them() {
    let s = System::start(
        "absences",
        Services {
            inbox: true,
            audit: true,
            notify: None,
            ..Services::all()
        },
    )
    .await;
    let org = s.org().await;
    let susan = org.dietitian.person_id.to_string();
    let week = SystemTime::now() + Duration::from_secs(7 * 86_400);

    // Only Susan, or an admin, records her absence; it ends in the future.
    let absence_id = command_id();
    let absence = |id: &str, by: &service_kit::Caller, until: SystemTime, deputy: &str| {
        let mut c = s.signer.client(by).unwrap();
        let request = cmd::RecordAbsenceRequest {
            command_id: id.to_string(),
            person_id: susan.clone(),
            from: None,
            until: Some(proto::time::from_system(until)),
            deputy_id: deputy.to_string(),
        };
        async move { c.record_absence(request).await }
    };
    let refused = absence(&command_id(), &org.nurse, week, "")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let past = SystemTime::now() - Duration::from_secs(60);
    let refused = absence(&command_id(), &org.dietitian, past, "")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let refused = absence(
        &command_id(),
        &org.dietitian,
        week,
        &org.carer.person_id.to_string(),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    let recorded = absence(
        &absence_id,
        &org.dietitian,
        week,
        &org.nurse2.person_id.to_string(),
    )
    .await
    .unwrap()
    .into_inner();

    // Pat sees that Susan is away, until when, and who gets her message.
    let contact = susan_as_pat_sees_her(&s, &org, recorded.position).await;
    assert!(contact.away_until.is_some());
    assert_eq!(contact.stand_in.as_ref().unwrap().name, org.nurse2.name);

    // Her message to Susan also goes to Ned, who stands in.
    let (started, detail) = pat_writes_to_susan(&s, &org).await;
    let ned = detail
        .participants
        .iter()
        .find(|p| p.person.as_ref().unwrap().person_id == org.nurse2.person_id.to_string())
        .expect("Ned is on the thread");
    assert_eq!(ned.reason, "deputy");
    assert_eq!(ned.deputy_for.as_ref().unwrap().person_id, susan);
    assert!(
        detail
            .participants
            .iter()
            .any(|p| p.person.as_ref().unwrap().person_id == susan)
    );
    // Ned reads it like anyone on it.
    s.thread(&org.nurse2, &started.aggregate_id, started.position)
        .await;

    // The Nutrition team sees who of it is away.
    let team = s
        .inbox(&org.dietitian)
        .team_inbox(inbox_pb::TeamInboxRequest {
            min_position: started.position,
            team_id: org.nutrition.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(team.away.len(), 1);
    assert_eq!(team.away[0].person.as_ref().unwrap().person_id, susan);
    assert_eq!(team.away[0].deputy.as_ref().unwrap().name, org.nurse2.name);

    // The audit trail says who recorded it.
    let trail = s
        .audit(&org.auditor)
        .person_trail(proto::audit::PersonTrailRequest {
            min_position: started.position,
            person_id: susan.clone(),
            ..Default::default()
        })
        .await;
    if let Ok(trail) = trail {
        let said: Vec<String> = trail
            .into_inner()
            .entries
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert!(
            said.iter()
                .any(|a| a.contains("is away from") && a.contains(&org.nurse2.name)),
            "{said:?}"
        );
    }

    // Back early: as before.
    let ended = s
        .signer
        .client(&org.dietitian)
        .unwrap()
        .end_absence(cmd::EndAbsenceRequest {
            command_id: command_id(),
            person_id: susan.clone(),
            absence_id: absence_id.clone(),
        })
        .await;
    // The absence's id is the command id that recorded it.
    let ended = ended.unwrap().into_inner();
    let contact = susan_as_pat_sees_her(&s, &org, ended.position).await;
    assert!(contact.away_until.is_none() && contact.stand_in.is_none());
    let (_, detail) = pat_writes_to_susan(&s, &org).await;
    assert!(
        detail
            .participants
            .iter()
            .all(|p| p.person.as_ref().unwrap().person_id != org.nurse2.person_id.to_string()),
        "nobody stands in once she is back"
    );
}
