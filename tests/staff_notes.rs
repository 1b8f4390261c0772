//! Escalation the patient does not see (clinicians support the front-line
//! staff), across every service: Nina writes a staff note on
//! Pat's thread; the staff on it read it and are told of it; Pat and her
//! father never see it, are not told, and their counts do not move; Pat's
//! audit trail says only that a staff note was written.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use careline_client::bearer::command_id;
use careline_client::demo::first_thread;
use proto::command as cmd;
use proto::inbox as inbox_pb;
use proto::notify as notify_pb;
use testkit::{Services, System};

const NOTE: &str = "Potassium 6.1 on Friday: consultant to advise before we answer.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_note_is_for_staff_only() {
    let s = System::start(
        "staff_notes",
        Services {
            wait: Some(Duration::from_secs(10)),
            ..Services::all()
        },
    )
    .await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let before = s.head().await;
    let pat_before = s.thread(&org.patient, &thread, before).await;

    let note = s
        .signer
        .client(&org.nurse)
        .unwrap()
        .post_staff_note(cmd::PostStaffNoteRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
            body: NOTE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let at = note.position;

    // Staff on the thread, and of the team it is addressed to, read it.
    for staff in [&org.nurse2, &org.consultant] {
        let detail = s.thread(staff, &thread, at).await;
        assert_eq!(detail.staff_notes.len(), 1, "{}", staff.name);
        let shown = &detail.staff_notes[0];
        assert_eq!(shown.body, NOTE);
        assert_eq!(shown.message_id, note.message_id);
        assert_eq!(shown.author.as_ref().unwrap().name, org.nurse.name);
        assert!(detail.messages.iter().all(|m| m.body != NOTE));
    }
    // The patient and her father: nothing of it, and nothing moved.
    for side in [&org.patient, &org.carer] {
        let detail = s.thread(side, &thread, at).await;
        assert!(detail.staff_notes.is_empty(), "{}", side.name);
        assert!(detail.messages.iter().all(|m| m.body != NOTE));
        let summary = detail.summary.unwrap();
        let was = pat_before.summary.clone().unwrap();
        assert_eq!(summary.message_count, was.message_count);
        assert_eq!(summary.last_activity_at, was.last_activity_at);
    }
    let pats = s
        .inbox(&org.patient)
        .my_inbox(inbox_pb::MyInboxRequest {
            min_position: at,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let listed = pats.threads.iter().find(|t| t.thread_id == thread).unwrap();
    assert_eq!(listed.unread_count, 0, "the note is not unread for Pat");

    // Told: the professionals on it, not Pat or her father.
    let told = s
        .notify(&org.nurse2)
        .thread_notifications(notify_pb::ThreadNotificationsRequest {
            min_position: at,
            thread_id: thread.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let of_note: Vec<_> = told
        .notifications
        .iter()
        .filter(|n| n.position == at)
        .collect();
    assert!(!of_note.is_empty());
    assert!(
        of_note.iter().all(|n| n.recipient_kind == "professional"),
        "{of_note:?}"
    );
    assert!(
        of_note
            .iter()
            .any(|n| n.recipient_id == org.nurse2.person_id.to_string())
    );

    // Pat's trail: that a note was written, not by whom; the auditor's: who.
    let trail =
        |entries: Vec<proto::audit::Entry>| entries.into_iter().find(|e| e.position == at).unwrap();
    let pat_sees = trail(s.thread_trail(&org.patient, &thread, at).await);
    assert_eq!(pat_sees.action, "a staff note was written");
    assert!(pat_sees.actor_name.is_empty() && pat_sees.actor_id.is_empty());
    let auditor_sees = trail(s.thread_trail(&org.auditor, &thread, at).await);
    assert!(
        auditor_sees.action.contains("wrote a staff note"),
        "{}",
        auditor_sees.action
    );
    assert_eq!(auditor_sees.actor_id, org.nurse.person_id.to_string());
    assert!(!auditor_sees.action.contains("Potassium"));
}
