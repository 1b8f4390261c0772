//! Escalation the patient does not see, the staff side of a thread (seed
//! 000: clinicians give expert support to the front-line staff), across
//! every service. Nina asks Dr Kaur (cardiology) onto the staff side of
//! Pat's thread, and the Nutrition team with her. Pat and her father are
//! not shown them (nor their reads, nor counted them); the staff are, and
//! the Nutrition team has the thread in its inbox. Dr Kaur writes notes,
//! cannot message Pat, and is told of Pat's reply only when a colleague's
//! message mentions her. Pat's audit trail says a colleague was consulted,
//! not who. Added to the patient side, Dr Kaur is then shown to Pat.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use careline_client::Steps;
use careline_client::bearer::command_id;
use careline_client::demo::{DemoOrg, first_thread};
use proto::command as cmd;
use proto::command::recipient::Recipient;
use proto::inbox as inbox_pb;
use proto::notify as notify_pb;
use testkit::{Services, System};
use tonic::Code;

/// Who is named anywhere in what `detail` shows: its people, its
/// participant history, its read receipts.
fn named(detail: &inbox_pb::ThreadDetail) -> Vec<String> {
    let summary = detail.summary.as_ref().unwrap();
    summary
        .participants
        .iter()
        .map(|p| p.person_id.clone())
        .chain(
            detail
                .participants
                .iter()
                .map(|p| p.person.as_ref().unwrap().person_id.clone()),
        )
        .chain(
            detail
                .read_receipts
                .iter()
                .map(|r| r.reader.as_ref().unwrap().person_id.clone()),
        )
        .collect()
}

/// Who was told of the event at `at`.
async fn told(s: &System, org: &DemoOrg, thread: &str, at: u64) -> Vec<String> {
    s.notify(&org.nurse)
        .thread_notifications(notify_pb::ThreadNotificationsRequest {
            min_position: at,
            thread_id: thread.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .notifications
        .into_iter()
        .filter(|n| n.position == at)
        .map(|n| n.recipient_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_staff_side_is_shown_to_staff_only() {
    let s = System::start(
        "staff_side",
        Services {
            wait: Some(Duration::from_secs(10)),
            ..Services::all()
        },
    )
    .await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let before = s.thread(&org.patient, &thread, s.head().await).await;
    let count_before = before.summary.as_ref().unwrap().participant_count;
    let kaur = org.cardiologist.person_id.to_string();
    let susan = org.dietitian.person_id.to_string();

    let mut nina = s.signer.client(&org.nurse).unwrap();
    nina.add_recipient(&thread, Recipient::ProfessionalId(kaur.clone()), true)
        .await
        .unwrap();
    nina.add_recipient(&thread, Recipient::TeamId(org.nutrition.clone()), true)
        .await
        .unwrap();
    let mut kaur_client = s.signer.client(&org.cardiologist).unwrap();
    let note = kaur_client
        .post_staff_note(cmd::PostStaffNoteRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
            body: "Check her potassium before any change.".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // She reads Pat's message: a read receipt only staff are shown.
    let first = s.thread(&org.cardiologist, &thread, note.position).await;
    let read = kaur_client
        .mark_read(cmd::MarkReadRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
            message_id: first.messages[0].message_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .position;
    // Not a message to Pat.
    let refused = kaur_client
        .post(&thread, "Hello Pat, I am the cardiologist.")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        service_kit::reason::is(&refused, service_kit::reason::STAFF_SIDE),
        "{refused:?}"
    );

    // Pat and her father: neither Dr Kaur nor Susan nor the team, counts as before.
    for side in [&org.patient, &org.carer] {
        let shown = s.thread(side, &thread, read).await;
        let people = named(&shown);
        assert!(
            !people.contains(&kaur) && !people.contains(&susan),
            "{}",
            side.name
        );
        let summary = shown.summary.unwrap();
        assert!(!summary.team_ids.contains(&org.nutrition), "{}", side.name);
        assert!(summary.staff_side_team_ids.is_empty());
        assert_eq!(summary.participant_count, count_before, "{}", side.name);
        assert!(shown.staff_notes.is_empty());
    }
    let pats = s
        .inbox(&org.patient)
        .my_inbox(inbox_pb::MyInboxRequest {
            min_position: read,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let listed = pats.threads.iter().find(|t| t.thread_id == thread).unwrap();
    assert!(listed.participants.iter().all(|p| p.person_id != kaur));
    assert_eq!(listed.participant_count, count_before);

    // Staff: both, marked as the staff side, and her read; the team's inbox.
    let staff_view = s.thread(&org.nurse2, &thread, read).await;
    let on_staff_side: Vec<String> = staff_view
        .participants
        .iter()
        .filter(|p| p.staff_side && p.active)
        .map(|p| p.person.as_ref().unwrap().person_id.clone())
        .collect();
    assert!(on_staff_side.contains(&kaur) && on_staff_side.contains(&susan));
    assert!(
        staff_view
            .read_receipts
            .iter()
            .any(|r| r.reader.as_ref().unwrap().person_id == kaur)
    );
    let summary = staff_view.summary.unwrap();
    assert_eq!(summary.staff_side_team_ids, vec![org.nutrition.clone()]);
    assert_eq!(summary.participant_count, count_before + 2);
    assert_eq!(staff_view.staff_notes.len(), 1);
    let team_inbox = s
        .inbox(&org.dietitian)
        .team_inbox(inbox_pb::TeamInboxRequest {
            min_position: read,
            team_id: org.nutrition.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let page = team_inbox.page.unwrap();
    assert!(page.threads.iter().any(|t| t.thread_id == thread));

    // Told: of Pat's reply, not the staff side; of Nina's message that
    // mentions Dr Kaur, her and not Susan; of the note, staff both sides.
    let mut pat = s.signer.client(&org.patient).unwrap();
    let reply = pat.post(&thread, "Thank you, I will wait.").await.unwrap();
    let of_reply = told(&s, &org, &thread, reply).await;
    assert!(of_reply.contains(&org.nurse.person_id.to_string()));
    assert!(!of_reply.contains(&kaur) && !of_reply.contains(&susan));
    let mention = nina
        .post_mentioning(
            &thread,
            "Dr Kaur will advise on Monday.",
            &[&org.cardiologist],
        )
        .await
        .unwrap();
    let of_mention = told(&s, &org, &thread, mention).await;
    assert!(of_mention.contains(&kaur), "{of_mention:?}");
    assert!(!of_mention.contains(&susan));
    assert!(of_mention.contains(&org.patient.person_id.to_string()));
    let of_note = told(&s, &org, &thread, note.position).await;
    assert!(of_note.contains(&susan) && of_note.contains(&org.nurse.person_id.to_string()));

    // Pat's trail: a colleague was consulted, not who; the auditor's: who.
    let trail = |entries: Vec<proto::audit::Entry>| {
        let joins = entries
            .into_iter()
            .filter(|e| e.event_type == "StaffSideJoined");
        joins.collect::<Vec<_>>()
    };
    let pat_sees = trail(s.thread_trail(&org.patient, &thread, mention).await);
    assert_eq!(pat_sees.len(), 2);
    for entry in &pat_sees {
        assert_eq!(
            entry.action,
            "staff consulted a colleague on the staff side of the thread"
        );
        assert!(entry.actor_id.is_empty());
    }
    let auditor_sees = trail(s.thread_trail(&org.auditor, &thread, mention).await);
    assert!(
        auditor_sees[0].action.contains(&org.cardiologist.name)
            && auditor_sees[0].action.contains("staff side"),
        "{}",
        auditor_sees[0].action
    );

    // On the patient side, Pat is shown Dr Kaur, who may now write to her.
    let moved = nina
        .add_recipient(&thread, Recipient::ProfessionalId(kaur.clone()), false)
        .await
        .unwrap();
    let shown = s.thread(&org.patient, &thread, moved).await;
    assert!(named(&shown).contains(&kaur));
    assert!(!named(&shown).contains(&susan));
    assert_eq!(
        shown.summary.unwrap().participant_count,
        count_before + 1,
        "moved, not added twice"
    );
    kaur_client
        .post(&thread, "Hello Pat, I am the cardiologist.")
        .await
        .unwrap();
}
