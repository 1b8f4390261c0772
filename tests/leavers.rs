//! People who leave lose their access, across every service: Dr Cole,
//! removed from the Renal Unit, can no longer open Pat's thread, and the
//! audit trail says when he left; Nina, whose account the admin closed, is
//! refused by every service whatever token she holds, is emailed no more,
//! and her name stays on what she wrote.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use careline_client::bearer::command_id;
use careline_client::demo::first_thread;
use careline_client::steps::Steps;
use proto::audit as audit_pb;
use proto::command as cmd;
use proto::inbox as inbox_pb;
use proto::notify as notify_pb;
use service_kit::{Caller, Role};
use testkit::{Services, System};
use tonic::Code;

fn get(thread: &str, at: u64) -> inbox_pb::GetThreadRequest {
    inbox_pb::GetThreadRequest {
        min_position: at,
        thread_id: thread.into(),
        ..Default::default()
    }
}

/// Every service, on one stream and database.
async fn system(label: &str) -> System {
    System::start(
        label,
        Services {
            wait: Some(Duration::from_secs(10)),
            ..Services::all()
        },
    )
    .await
}

#[track_caller]
fn closed<T: std::fmt::Debug>(result: Result<T, tonic::Status>) {
    let status = result.expect_err("a closed account is refused");
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "{}",
        status.message()
    );
    assert!(
        service_kit::reason::is(&status, service_kit::reason::ACCOUNT_CLOSED),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dr_cole_removed_from_the_renal_unit_no_longer_opens_pats_thread() {
    let s = system("leavers_cole").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let at = s.head().await;
    let mut cole = s.inbox(&org.consultant);
    cole.get_thread(get(&thread, at)).await.unwrap();

    let removed = s
        .signer
        .client(&org.admin)
        .unwrap()
        .remove_team_member(cmd::RemoveTeamMemberRequest {
            command_id: command_id(),
            team_id: org.renal.clone(),
            professional_id: org.consultant.person_id.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .position;
    let refused = cole.get_thread(get(&thread, removed)).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{}", refused.message());
    let listed = cole
        .my_inbox(inbox_pb::MyInboxRequest {
            min_position: removed,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.threads.iter().all(|t| t.thread_id != thread));

    // The privacy officer reads, in what the admin did, when he left.
    let trail = s
        .audit(&org.auditor)
        .person_trail(audit_pb::PersonTrailRequest {
            min_position: removed,
            person_id: org.admin.person_id.to_string(),
            range: None,
        })
        .await
        .unwrap()
        .into_inner();
    let entry = trail
        .entries
        .iter()
        .find(|e| e.position == removed)
        .expect("the removal is in the admin's trail");
    assert!(
        entry
            .action
            .contains("removed Dr Rowan Cole from Renal Unit, who left the threads"),
        "{}",
        entry.action
    );
    assert!(entry.occurred_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_account_is_refused_everywhere_and_emailed_no_more() {
    let s = system("leavers_closed").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    s.post(&org.nurse, &thread, "Up to one litre on Sunday.")
        .await;
    // She took the thread on: closing her account unassigns it.
    s.signer
        .client(&org.nurse)
        .unwrap()
        .assign(&thread, &org.nurse)
        .await
        .unwrap();
    let mut admin = s.signer.client(&org.admin).unwrap();
    let deactivate = |who: &Caller| cmd::DeactivatePersonRequest {
        command_id: command_id(),
        person_id: who.person_id.to_string(),
    };
    admin
        .deactivate_person(deactivate(&org.nurse))
        .await
        .unwrap();
    admin
        .deactivate_person(deactivate(&org.auditor))
        .await
        .unwrap();

    // Every service refuses her, whatever her token says.
    let at = s.head().await;
    // Her colleague's team inbox and message list show the thread waiting
    // for someone again, and count it so.
    let team = s
        .inbox(&org.nurse2)
        .team_inbox(inbox_pb::TeamInboxRequest {
            min_position: at,
            team_id: org.renal.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let row = team
        .page
        .unwrap()
        .threads
        .into_iter()
        .find(|t| t.thread_id == thread)
        .expect("the thread is in the renal inbox");
    assert!(row.assignee.is_none(), "unassigned: {:?}", row.assignee);
    assert!(
        team.helping.is_empty(),
        "nobody is helping: {:?}",
        team.helping
    );
    let unassigned = inbox_pb::MyInboxRequest {
        min_position: at,
        filters: Some(inbox_pb::Filters {
            assignment: inbox_pb::AssignmentFilter::Unassigned as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mine = s
        .inbox(&org.nurse2)
        .my_inbox(unassigned)
        .await
        .unwrap()
        .into_inner();
    assert!(mine.threads.iter().any(|t| t.thread_id == thread));
    closed(s.inbox(&org.nurse).get_thread(get(&thread, at)).await);
    closed(
        s.inbox(&org.nurse)
            .my_inbox(inbox_pb::MyInboxRequest::default())
            .await,
    );
    closed(
        s.notify(&org.nurse)
            .thread_notifications(notify_pb::ThreadNotificationsRequest {
                min_position: at,
                thread_id: thread.clone(),
            })
            .await,
    );
    let as_auditor = Caller {
        role: Role::Auditor,
        ..org.nurse.clone()
    };
    let trail = audit_pb::ThreadTrailRequest {
        min_position: at,
        thread_id: thread.clone(),
        range: None,
    };
    closed(s.audit(&as_auditor).thread_trail(trail.clone()).await);
    // The closed auditor too.
    closed(s.audit(&org.auditor).thread_trail(trail).await);

    // Pat's reply is for the others on the thread, not for her; her name
    // stays on what she wrote.
    let reply = s.post(&org.patient, &thread, "Thank you, Nina.").await;
    let detail = s
        .inbox(&org.patient)
        .get_thread(get(&thread, reply))
        .await
        .unwrap()
        .into_inner();
    let hers = detail
        .messages
        .iter()
        .find(|m| m.body == "Up to one litre on Sunday.")
        .unwrap();
    assert_eq!(hers.author.as_ref().unwrap().name, org.nurse.name);
    let nina_on_it = detail
        .participants
        .iter()
        .find(|p| p.person.as_ref().unwrap().person_id == org.nurse.person_id.to_string())
        .unwrap();
    assert!(!nina_on_it.active, "she left the thread with her account");
    let told = s
        .notify(&org.nurse2)
        .thread_notifications(notify_pb::ThreadNotificationsRequest {
            min_position: reply,
            thread_id: thread.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let for_reply: Vec<_> = told
        .notifications
        .iter()
        .filter(|n| n.position == reply)
        .collect();
    assert!(!for_reply.is_empty(), "the others are told");
    assert!(
        for_reply
            .iter()
            .all(|n| n.recipient_id != org.nurse.person_id.to_string()),
        "{for_reply:?}"
    );
}
