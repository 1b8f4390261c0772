//! The trail of the seeds' scenario, every read path on it, and who may
//! read which trail.

use careline_client::Steps;
use careline_client::bearer::command_id;
use careline_client::demo::{consult, first_thread};
use proto::audit as pb;
use proto::command as cmd;
use proto::inbox;
use tonic::Code;

use crate::support::{System, system};

async fn record_trail(
    s: &System,
    who: &service_kit::Caller,
    patient: &str,
    at: u64,
) -> Vec<pb::Entry> {
    record_trail_as(s, who, patient, at, pb::Range::default()).await
}

/// Every page of a record's trail, seven at a time, as `asked` orders and
/// filters it.
async fn record_trail_as(
    s: &System,
    who: &service_kit::Caller,
    patient: &str,
    at: u64,
    asked: pb::Range,
) -> Vec<pb::Entry> {
    let mut audit = s.audit(who);
    let mut entries = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = audit
            .record_trail(pb::RecordTrailRequest {
                min_position: at,
                patient_id: patient.into(),
                range: Some(pb::Range {
                    page_size: 7,
                    cursor: cursor.clone(),
                    ..asked.clone()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        entries.extend(page.entries);
        if page.next_cursor.is_empty() {
            return entries;
        }
        cursor = page.next_cursor;
    }
}

/// Patient writes, nurse assigns, consultant added and leaves, archive,
/// reply, the carer's consent revoked: the record's trail says so, in
/// order, naming each person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_is_on_the_record_trail_in_order() {
    let s = system("audittrail").await;
    let org = s.org().await;
    let patient = org.patient.person_id.to_string();
    let before = s.head().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    consult(&s.signer, &org, &thread).await.unwrap();
    let mut nurse = s.signer.client(&org.nurse).unwrap();
    nurse.archive(&thread).await.unwrap();
    let mut pat = s.signer.client(&org.patient).unwrap();
    pat.post(&thread, "Thank you.").await.unwrap();
    pat.revoke_carer_consent(cmd::RevokeCarerConsentRequest {
        command_id: command_id(),
        patient_id: patient.clone(),
        carer_id: org.carer.person_id.to_string(),
    })
    .await
    .unwrap();
    // The nurse opens the thread: a view on the same trail.
    let at = s.head().await;
    s.inbox(&org.nurse)
        .get_thread(inbox::GetThreadRequest {
            min_position: at,
            thread_id: thread.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let at = s.settled().await;

    let trail = record_trail(&s, &org.auditor, &patient, at).await;
    // Reading the trail is itself recorded (page by page): those entries
    // are looked at below.
    let trail_reads = |e: &&pb::Entry| e.call.starts_with("careline.audit.v1.AuditService/");
    let recent: Vec<&str> = trail
        .iter()
        .filter(|e| e.position > before && !trail_reads(e))
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        recent,
        vec![
            "Pat Jones started a thread to Renal Unit, with Nina Patel, Ned Brown, Lena Okafor and Chris Jones",
            "Nina Patel assigned the thread to themself",
            "Nina Patel added Dr Rowan Cole to the thread",
            "Dr Rowan Cole posted a message",
            "Dr Rowan Cole left the thread",
            "Nina Patel archived the thread",
            "Pat Jones posted a message, which reopened the thread",
            "Pat Jones revoked Chris Jones's consent to the record; Chris Jones's access ended: consent revoked",
            "Nina Patel opened the thread",
        ]
    );
    // Seq runs 1, 2, 3, ... and each entry links to the one before.
    for (i, e) in trail.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        if i > 0 {
            assert_eq!(e.previous_hash, trail[i - 1].hash);
        }
        assert_eq!(e.chain, format!("patient/{patient}"));
    }
    let view = trail.iter().rfind(|e| !trail_reads(e)).unwrap();
    assert_eq!(view.kind, pb::EntryKind::View as i32);
    assert_eq!(view.thread_id, thread);
    assert_eq!(view.call, "careline.inbox.v1.InboxService/GetThread");
    assert_eq!(view.actor_id, org.nurse.person_id.to_string());
    assert_eq!(view.role, "professional");

    // Newest first, page by page, it is the same trail backwards (up to
    // where it was read: reading it adds to it); and by kind, only reads
    // or only changes, together the whole of it.
    let last = trail.last().unwrap().position;
    let upto = |entries: Vec<pb::Entry>| -> Vec<(u64, String)> {
        entries
            .into_iter()
            .filter(|e| e.position <= last)
            .map(|e| (e.seq, e.action))
            .collect()
    };
    let asked = |newest_first, kind: pb::EntryKind| pb::Range {
        newest_first,
        kind: kind as i32,
        ..Default::default()
    };
    let mut backwards = upto(
        record_trail_as(
            &s,
            &org.auditor,
            &patient,
            at,
            asked(true, pb::EntryKind::Unspecified),
        )
        .await,
    );
    backwards.reverse();
    let forwards = upto(trail.clone());
    assert_eq!(backwards, forwards);
    let views = upto(
        record_trail_as(
            &s,
            &org.auditor,
            &patient,
            at,
            asked(false, pb::EntryKind::View),
        )
        .await,
    );
    let changes = upto(
        record_trail_as(
            &s,
            &org.auditor,
            &patient,
            at,
            asked(false, pb::EntryKind::Action),
        )
        .await,
    );
    assert!(
        views
            .iter()
            .any(|(_, a)| a == "Nina Patel opened the thread"),
        "{views:?}"
    );
    assert!(
        !changes
            .iter()
            .any(|(_, a)| a == "Nina Patel opened the thread"),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|(_, a)| a == "Nina Patel archived the thread"),
        "{changes:?}"
    );
    let mut both: Vec<(u64, String)> = views.into_iter().chain(changes).collect();
    both.sort();
    assert_eq!(both, forwards);
    // Who: only what Nina did and read on the record, and all of that.
    let nina = org.nurse.person_id.to_string();
    let hers = record_trail_as(
        &s,
        &org.auditor,
        &patient,
        at,
        pb::Range {
            actor_id: nina.clone(),
            ..Default::default()
        },
    )
    .await;
    let expected: Vec<u64> = trail
        .iter()
        .filter(|e| e.actor_id == nina)
        .map(|e| e.seq)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(
        hers.iter()
            .filter(|e| e.position <= last)
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        expected
    );
    assert!(hers.iter().all(|e| e.actor_id == nina));
    let refused = s
        .audit(&org.auditor)
        .record_trail(pb::RecordTrailRequest {
            min_position: at,
            patient_id: patient.clone(),
            range: Some(pb::Range {
                actor_id: "not-an-id".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("range.actor_id"), "{refused:?}");

    // Priya's reading of the trail is on it: read again, it says so.
    let head = s.settled().await;
    let again = record_trail(&s, &org.auditor, &patient, head).await;
    let read = again
        .iter()
        .find(|e| trail_reads(e))
        .expect("the privacy officer's read of the trail is recorded");
    assert_eq!(read.action, "Priya Shah read the record's audit trail");
    assert_eq!(read.kind, pb::EntryKind::View as i32);
    assert_eq!(read.actor_id, org.auditor.person_id.to_string());

    // The thread's trail is the thread's part of it.
    let thread_trail = s
        .audit(&org.auditor)
        .thread_trail(pb::ThreadTrailRequest {
            min_position: at,
            thread_id: thread.clone(),
            range: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(thread_trail.entries.len(), 8);

    // What the consultant did, from their own trail; and a time window.
    let rowan = s
        .audit(&org.auditor)
        .person_trail(pb::PersonTrailRequest {
            min_position: at,
            person_id: org.consultant.person_id.to_string(),
            range: None,
        })
        .await
        .unwrap()
        .into_inner();
    let actions: Vec<&str> = rowan.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            // At the demo's seeding, from his verification email.
            "Dr Rowan Cole verified the email address by the link sent to it",
            "Dr Rowan Cole posted a message",
            "Dr Rowan Cole left the thread"
        ]
    );
    let future = s
        .audit(&org.auditor)
        .record_trail(pb::RecordTrailRequest {
            min_position: at,
            patient_id: patient.clone(),
            range: Some(pb::Range {
                from: Some(std::time::SystemTime::now().into()),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(future.entries.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_path_leaves_a_view_entry() {
    let s = system("auditviews").await;
    let org = s.org().await;
    let patient = org.patient.person_id.to_string();
    let thread = first_thread(&s.signer, &org).await.unwrap();
    s.post(&org.nurse, &thread, "Please weigh yourself each morning.")
        .await;
    let at = s.head().await;
    let mut nurse = s.inbox(&org.nurse);
    nurse
        .my_inbox(inbox::MyInboxRequest {
            min_position: at,
            ..Default::default()
        })
        .await
        .unwrap();
    nurse
        .team_inbox(inbox::TeamInboxRequest {
            min_position: at,
            team_id: org.renal.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    nurse
        .get_thread(inbox::GetThreadRequest {
            min_position: at,
            thread_id: thread.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    nurse
        .who_can_i_message(inbox::WhoCanIMessageRequest {
            min_position: at,
            patient_id: patient.clone(),
        })
        .await
        .unwrap();
    nurse
        .not_read_by_patient(inbox::NotReadByPatientRequest {
            min_position: at,
            team_id: org.renal.clone(),
            days: Some(0),
        })
        .await
        .unwrap();
    let at = s.settled().await;
    // As of `at`: Pat's own reads of her trail, page by page, are on it too
    // (after `at`), and may show on a later page.
    let views: Vec<String> = record_trail(&s, &org.patient, &patient, at)
        .await
        .into_iter()
        .filter(|e| e.kind == pb::EntryKind::View as i32 && e.position <= at)
        .map(|e| e.action)
        .collect();
    assert_eq!(
        views,
        vec![
            "Nina Patel listed 1 thread of the record in their inbox",
            "Nina Patel listed 1 thread of the record in the Renal Unit inbox",
            "Nina Patel opened the thread",
            "Nina Patel looked up whom they may message in the record",
            "Nina Patel listed 1 thread of the record the patient has not read (Renal Unit)",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_read_which_trail_role_by_role() {
    let s = system("auditauthz").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let at = s.settled().await;
    let patient = org.patient.person_id.to_string();
    let officer = org.auditor.clone();
    let ops = org.operator.clone();

    let people = [
        ("auditor", &officer, Ok(())),
        ("the patient", &org.patient, Ok(())),
        (
            "another patient",
            &org.other_patient,
            Err(Code::PermissionDenied),
        ),
        ("the carer", &org.carer, Err(Code::PermissionDenied)),
        ("a nurse", &org.nurse, Err(Code::PermissionDenied)),
        ("an admin", &org.admin, Err(Code::PermissionDenied)),
        ("an operator", &ops, Err(Code::PermissionDenied)),
    ];
    let code = |answer: Result<_, tonic::Status>| answer.map(|_| ()).map_err(|e| e.code());
    for (label, who, expected) in &people {
        let mut audit = s.audit(who);
        let record = audit
            .record_trail(pb::RecordTrailRequest {
                min_position: at,
                patient_id: patient.clone(),
                range: None,
            })
            .await;
        assert_eq!(code(record), *expected, "record trail as {label}");
        let trail = audit
            .thread_trail(pb::ThreadTrailRequest {
                min_position: at,
                thread_id: thread.clone(),
                range: None,
            })
            .await;
        assert_eq!(code(trail), *expected, "thread trail as {label}");
    }

    for (label, who) in [("the patient", &org.patient), ("a nurse", &org.nurse)] {
        let denied = s
            .audit(who)
            .person_trail(pb::PersonTrailRequest {
                min_position: at,
                person_id: org.nurse.person_id.to_string(),
                range: None,
            })
            .await
            .unwrap_err();
        assert_eq!(
            denied.code(),
            Code::PermissionDenied,
            "person trail as {label}"
        );
    }
    for (label, who, expected) in [
        ("auditor", &officer, Code::Ok),
        ("operator", &ops, Code::Ok),
        ("the patient", &org.patient, Code::PermissionDenied),
        ("a nurse", &org.nurse, Code::PermissionDenied),
    ] {
        let got = s
            .audit(who)
            .verify(pb::VerifyRequest {
                min_position: at,
                ..Default::default()
            })
            .await
            .map(|_| Code::Ok)
            .unwrap_or_else(|e| e.code());
        assert_eq!(got, expected, "verify as {label}");
    }

    // Bad input names the field; no token is UNAUTHENTICATED.
    let bad = s
        .audit(&officer)
        .record_trail(pb::RecordTrailRequest {
            min_position: 0,
            patient_id: "not-a-uuid".into(),
            range: None,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("patient_id"), "{}", bad.message());
    let anonymous = s
        .audit_without_token()
        .record_trail(pb::RecordTrailRequest {
            min_position: 0,
            patient_id: patient.clone(),
            range: None,
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
}
