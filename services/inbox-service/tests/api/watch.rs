//! Watching: a new message reaches every watcher who may see the thread,
//! as a thread id, at once; a staff note only staff; nobody else anything.

use std::time::Duration;

use careline_client::bearer::command_id;
use careline_client::demo::first_thread;
use proto::command as cmd;
use proto::inbox as pb;

use crate::support::{System, system};

type Changes = tonic::Streaming<pb::Change>;

async fn watch(s: &System, who: &service_kit::Caller) -> Changes {
    s.inbox(who)
        .watch(pb::WatchRequest { max_seconds: 60 })
        .await
        .unwrap()
        .into_inner()
}

/// The next change within `wait`, if any.
async fn next(changes: &mut Changes, wait: Duration) -> Option<pb::Change> {
    tokio::time::timeout(wait, changes.message())
        .await
        .ok()
        .map(|m| m.unwrap().expect("the watch goes on"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_are_told_which_of_their_threads_changed_and_nothing_else() {
    let s = system("watch").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    s.settled().await;
    let mut pat = watch(&s, &org.patient).await;
    let mut nina = watch(&s, &org.nurse).await;
    let mut sam = watch(&s, &org.other_patient).await;
    let mut omar = watch(&s, &org.cardiologist).await;

    // A staff note: staff on the thread are told; the patient is not.
    s.signer
        .client(&org.nurse)
        .unwrap()
        .post_staff_note(cmd::PostStaffNoteRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
            body: "Check her potassium.".into(),
        })
        .await
        .unwrap();
    let told = next(&mut nina, Duration::from_secs(5))
        .await
        .expect("staff told");
    assert_eq!(told.thread_ids, std::slice::from_ref(&thread));
    assert!(
        next(&mut pat, Duration::from_millis(800)).await.is_none(),
        "a note is not the patient's change"
    );

    // A message: the patient is told (the thread's id, no content).
    let posted = s.post(&org.nurse, &thread, "Your results are fine.").await;
    let told = next(&mut pat, Duration::from_secs(2))
        .await
        .expect("the patient is told within 2 s");
    assert_eq!(told.thread_ids, std::slice::from_ref(&thread));
    assert!(told.position >= posted);
    assert!(next(&mut nina, Duration::from_secs(2)).await.is_some());

    // Someone else's patient, and staff off the team: nothing at all.
    assert!(next(&mut sam, Duration::from_millis(300)).await.is_none());
    assert!(next(&mut omar, Duration::from_millis(300)).await.is_none());
}

/// One person cannot hold open more than 20 live watches at once (300 from
/// one patient were accepted): the 21st is refused RESOURCE_EXHAUSTED, and
/// a watch closed frees its place. Someone else is not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_watches_are_capped_per_person() {
    let s = system("watchcap").await;
    let org = s.org().await;
    let mut open = Vec::new();
    for _ in 0..inbox_service::grpc::WATCHES_PER_PERSON {
        open.push(watch(&s, &org.patient).await);
    }
    let refused = s
        .inbox(&org.patient)
        .watch(pb::WatchRequest { max_seconds: 60 })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    let _other = watch(&s, &org.carer).await;
    // One closed (the browser went): its place is free again.
    drop(open.pop());
    let mut again = None;
    for _ in 0..50 {
        match s
            .inbox(&org.patient)
            .watch(pb::WatchRequest { max_seconds: 60 })
            .await
        {
            Ok(w) => {
                again = Some(w);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(again.is_some(), "a closed watch frees its place");
}

/// A carer whose consent ends is told at once of every thread of hers he
/// was watching (so an open page says his access ended), and of nothing
/// of hers after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carer_whose_consent_ends_is_told_of_each_thread_he_can_no_longer_see() {
    let s = system("watchconsent").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    s.settled().await;
    let mut chris = watch(&s, &org.carer).await;
    // While her consent holds he hears of her messages.
    s.post(&org.nurse, &thread, "Your results are fine.").await;
    let told = next(&mut chris, Duration::from_secs(5))
        .await
        .expect("the carer is told of a message within 5 s");
    assert_eq!(told.thread_ids, std::slice::from_ref(&thread));
    let mut patient = s.signer.client(&org.patient).unwrap();
    patient
        .revoke_carer_consent(cmd::RevokeCarerConsentRequest {
            command_id: command_id(),
            patient_id: org.patient.person_id.to_string(),
            carer_id: org.carer.person_id.to_string(),
        })
        .await
        .unwrap();
    let told = next(&mut chris, Duration::from_secs(5))
        .await
        .expect("the carer is told within 5 s");
    assert!(told.thread_ids.contains(&thread), "{told:?}");
    // What she writes afterwards is not his to hear of.
    s.post(&org.patient, &thread, "Just between me and the team.")
        .await;
    assert!(next(&mut chris, Duration::from_millis(800)).await.is_none());
}
