//! People who leave lose their access, through the real API: an account an
//! admin closes can do nothing more, whatever token it holds, and is in no
//! team and on no thread; a professional removed from a team leaves the
//! threads that team brought them to, and keeps those they were named on.

use careline_client::Steps;
use careline_client::bearer::command_id;
use careline_client::demo::first_thread;
use proto::command as pb;
use service_kit::{Caller, Role};
use tonic::Code;

use crate::support::spawn_app;

#[track_caller]
fn refused(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, says: &str) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), code, "{}", status.message());
    assert!(status.message().contains(says), "{}", status.message());
}

fn deactivate(who: &Caller) -> pb::DeactivatePersonRequest {
    pb::DeactivatePersonRequest {
        command_id: command_id(),
        person_id: who.person_id.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_account_can_do_nothing_and_opened_again_rejoins_nothing() {
    let app = spawn_app("leavers_closed").await;
    let org = app.org().await;
    let thread = first_thread(&app.signer, &org).await.unwrap();
    let mut admin = app.signer.client(&org.admin).unwrap();
    let mut nina = app.signer.client(&org.nurse).unwrap();
    nina.post(&thread, "Up to one litre on Sunday.")
        .await
        .unwrap();
    nina.assign(&thread, &org.nurse).await.unwrap();

    admin
        .deactivate_person(deactivate(&org.nurse))
        .await
        .unwrap();
    let head = app.head().await;
    // Every command, whatever token: refused, nothing written.
    refused(
        nina.post(&thread, "One more thing.").await,
        Code::PermissionDenied,
        "account deactivated",
    );
    refused(
        nina.leave(&thread).await,
        Code::PermissionDenied,
        "account deactivated",
    );
    let as_admin = Caller {
        role: Role::Admin,
        ..org.nurse.clone()
    };
    refused(
        app.signer
            .client(&as_admin)
            .unwrap()
            .create_team(pb::CreateTeamRequest {
                command_id: command_id(),
                name: "Shadow".into(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        "account deactivated",
    );
    refused(
        admin.deactivate_person(deactivate(&org.nurse)).await,
        Code::FailedPrecondition,
        "already deactivated",
    );
    // Nobody can bring her back onto a thread or into a team.
    let mut lena = app.signer.client(&org.lead).unwrap();
    refused(
        lena.add_professional(&thread, &org.nurse).await,
        Code::FailedPrecondition,
        "account is deactivated",
    );
    refused(
        admin
            .add_team_member(pb::AddTeamMemberRequest {
                command_id: command_id(),
                team_id: org.renal.clone(),
                professional_id: org.nurse.person_id.to_string(),
                contactable: true,
                lead: false,
            })
            .await,
        Code::FailedPrecondition,
        "account is deactivated",
    );
    assert_eq!(app.head().await, head, "a refusal writes nothing");

    // A new thread to her team reaches the others, not her.
    let mut pat = app.signer.client(&org.patient).unwrap();
    let started = pat
        .start_to_team(
            &org.patient,
            &org.renal,
            "Dialysis times",
            "Can I move Monday's slot?",
        )
        .await
        .unwrap();
    let events = app.events_after(head).await;
    let Some(proto::events::envelope::Payload::ThreadStarted(e)) = events
        .iter()
        .find(|e| e.envelope.aggregate_id == started)
        .and_then(|e| e.envelope.payload.clone())
    else {
        panic!("no ThreadStarted in {events:?}");
    };
    let on: Vec<&str> = e
        .participants
        .iter()
        .map(|p| p.person_id.as_str())
        .collect();
    assert!(on.contains(&org.nurse2.person_id.to_string().as_str()));
    assert!(!on.contains(&org.nurse.person_id.to_string().as_str()));

    // Opened again: she may act, but is on no thread and in no team.
    admin
        .reactivate_person(pb::ReactivatePersonRequest {
            command_id: command_id(),
            person_id: org.nurse.person_id.to_string(),
        })
        .await
        .unwrap();
    refused(
        nina.post(&thread, "I am back.").await,
        Code::PermissionDenied,
        "no longer on this thread",
    );
    // Added back by name, she is on it again.
    lena.add_professional(&thread, &org.nurse).await.unwrap();
    nina.post(&thread, "I am back.").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_from_a_team_a_professional_leaves_the_threads_it_brought_them_to() {
    let app = spawn_app("leavers_team").await;
    let org = app.org().await;
    let thread = first_thread(&app.signer, &org).await.unwrap();
    let mut admin = app.signer.client(&org.admin).unwrap();
    // The cardiologist is named on the thread; Ned came with the Renal Unit.
    let mut nina = app.signer.client(&org.nurse).unwrap();
    nina.add_professional(&thread, &org.cardiologist)
        .await
        .unwrap();
    let mut ned = app.signer.client(&org.nurse2).unwrap();
    ned.post(&thread, "I can see this.").await.unwrap();

    admin
        .remove_team_member(pb::RemoveTeamMemberRequest {
            command_id: command_id(),
            team_id: org.renal.clone(),
            professional_id: org.nurse2.person_id.to_string(),
        })
        .await
        .unwrap();
    refused(
        ned.post(&thread, "Still here?").await,
        Code::PermissionDenied,
        "no longer on this thread",
    );
    // Nina brings him back by name (the Renal Unit's automatic CC does not
    // stand in the way of someone who was on the thread).
    admin
        .add_team_member(pb::AddTeamMemberRequest {
            command_id: command_id(),
            team_id: org.renal.clone(),
            professional_id: org.nurse2.person_id.to_string(),
            contactable: true,
            lead: false,
        })
        .await
        .unwrap();
    refused(
        ned.post(&thread, "Back in the team.").await,
        Code::PermissionDenied,
        "no longer on this thread",
    );
    nina.add_professional(&thread, &org.nurse2).await.unwrap();
    ned.post(&thread, "Back on the thread.").await.unwrap();
    // Removing the cardiologist from Cardiology does not take them off a
    // thread they were named on.
    admin
        .remove_team_member(pb::RemoveTeamMemberRequest {
            command_id: command_id(),
            team_id: org.cardiology.clone(),
            professional_id: org.cardiologist.person_id.to_string(),
        })
        .await
        .unwrap();
    app.signer
        .client(&org.cardiologist)
        .unwrap()
        .post(&thread, "Named on it, still on it.")
        .await
        .unwrap();
    nina.post(&thread, "Thanks.").await.unwrap();
}
