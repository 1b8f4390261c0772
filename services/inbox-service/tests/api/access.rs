//! Reads are recorded: every query that shows a record's threads appends a
//! `RecordsViewed` event first, and a read that cannot be recorded fails.

use careline_client::demo::first_thread;
use event_store::EventStore;
use futures::StreamExt;
use proto::events::envelope::Payload;
use proto::events::{RecordsViewed, Role};
use proto::inbox as pb;
use tonic::Code;

use crate::support::system;

/// The `RecordsViewed` events after `after`, with their actor.
async fn views(s: &crate::support::System, after: u64) -> Vec<(String, i32, RecordsViewed)> {
    let head = s.head().await;
    let mut feed = s.stream.store().subscribe(after + 1).await.unwrap();
    let mut out = Vec::new();
    let mut at = after;
    while at < head {
        let event = feed.next().await.unwrap().unwrap();
        at = event.position;
        if let Some(Payload::RecordsViewed(v)) = event.envelope.payload {
            let actor = event.envelope.actor.unwrap();
            out.push((actor.person_id, actor.role, v));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_path_records_who_saw_which_record() {
    let s = system("accessreads").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let patient = org.patient.person_id.to_string();
    let nurse = org.nurse.person_id.to_string();
    // A staff reply the patient has not read, for NotReadByPatient to show.
    s.post(&org.nurse, &thread, "Please weigh yourself each morning.")
        .await;
    let at = s.head().await;
    let mut inbox = s.inbox(&org.nurse);

    let calls = [
        "MyInbox",
        "TeamInbox",
        "GetThread",
        "WhoCanIMessage",
        "NotReadByPatient",
    ];
    for call in calls {
        let before = s.head().await;
        match call {
            "MyInbox" => drop(
                inbox
                    .my_inbox(pb::MyInboxRequest {
                        min_position: at,
                        ..Default::default()
                    })
                    .await
                    .unwrap(),
            ),
            "TeamInbox" => drop(
                inbox
                    .team_inbox(pb::TeamInboxRequest {
                        min_position: at,
                        team_id: org.renal.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap(),
            ),
            "GetThread" => drop(
                inbox
                    .get_thread(pb::GetThreadRequest {
                        min_position: at,
                        thread_id: thread.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap(),
            ),
            "WhoCanIMessage" => drop(
                inbox
                    .who_can_i_message(pb::WhoCanIMessageRequest {
                        min_position: at,
                        patient_id: patient.clone(),
                    })
                    .await
                    .unwrap(),
            ),
            _ => drop(
                inbox
                    .not_read_by_patient(pb::NotReadByPatientRequest {
                        min_position: at,
                        team_id: org.renal.clone(),
                        days: Some(0),
                    })
                    .await
                    .unwrap(),
            ),
        }
        let recorded = views(&s, before).await;
        assert_eq!(recorded.len(), 1, "{call}: {recorded:?}");
        let (who, role, view) = &recorded[0];
        assert_eq!(who, &nurse, "{call}");
        assert_eq!(*role, Role::Professional as i32, "{call}");
        assert_eq!(view.call, format!("careline.inbox.v1.InboxService/{call}"));
        assert_eq!(view.records.len(), 1, "{call}: {view:?}");
        assert_eq!(view.records[0].patient_id, patient, "{call}");
        if call != "WhoCanIMessage" {
            assert_eq!(view.records[0].thread_ids, vec![thread.clone()], "{call}");
        }
    }

    // A refused read shows nothing and records nothing.
    let before = s.head().await;
    let refused = s
        .inbox(&org.cardiologist)
        .get_thread(pb::GetThreadRequest {
            min_position: at,
            thread_id: thread.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    assert!(views(&s, before).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_cannot_be_recorded_is_refused() {
    let s = system("accessfails").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let at = s.head().await;
    let mut inbox = s.inbox(&org.nurse);
    let request = || pb::GetThreadRequest {
        min_position: at,
        thread_id: thread.clone(),
        ..Default::default()
    };
    inbox.get_thread(request()).await.unwrap();

    // The log goes away: the projection still holds the thread, but showing
    // it unrecorded is not allowed (nor can the caller's account be checked
    // against the log, which is asked first).
    s.stream.store().delete_stream().await.unwrap();
    let refused = inbox.get_thread(request()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    assert!(
        refused.message().contains("could not be recorded")
            || refused.message().contains("the event log"),
        "{}",
        refused.message()
    );
}

/// An admin's people search shows patients' names and addresses: each
/// patient listed is a read of their record, recorded as the admin's, so it
/// is in the patient's "who has looked at my record".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admins_people_search_is_recorded_as_a_read_of_each_patient_listed() {
    let s = system("accesspeople").await;
    let org = s.org().await;
    let before = s.head().await;
    let found = s
        .inbox(&org.admin)
        .find_people(pb::FindPeopleRequest {
            min_position: before,
            name_prefix: "PAT".into(),
            kind: pb::PersonKind::Patient as i32,
            limit: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.people.len(), 1);
    let seen = views(&s, before).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (reader, role, viewed) = &seen[0];
    assert_eq!(*reader, org.admin.person_id.to_string());
    assert_eq!(*role, Role::Admin as i32);
    assert!(viewed.call.ends_with("/FindPeople"), "{viewed:?}");
    assert_eq!(viewed.records.len(), 1);
    assert_eq!(
        viewed.records[0].patient_id,
        org.patient.person_id.to_string()
    );
}

/// A patient's look-up of a carer by address shows the carer's name: a
/// read of the carer's record, in their "who has looked at my record"; a
/// look-up that finds no one records nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patients_carer_look_up_is_recorded_as_a_read_of_the_carers_record() {
    let s = system("accesscarer").await;
    let org = s.org().await;
    let before = s.head().await;
    let mut inbox = s.inbox(&org.patient);
    let missing = inbox
        .find_carer(pb::FindCarerRequest {
            min_position: before,
            email: "nobody@example.org".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let found = inbox
        .find_carer(pb::FindCarerRequest {
            min_position: before,
            email: "chris.jones@example.org".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.person_id, org.carer.person_id.to_string());
    let seen = views(&s, before).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (reader, role, viewed) = &seen[0];
    assert_eq!(*reader, org.patient.person_id.to_string());
    assert_eq!(*role, Role::Patient as i32);
    assert!(viewed.call.ends_with("/FindCarer"), "{viewed:?}");
    assert_eq!(viewed.records.len(), 1);
    assert_eq!(
        viewed.records[0].patient_id,
        org.carer.person_id.to_string()
    );
}
