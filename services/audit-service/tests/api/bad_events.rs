//! Bad events in the middle of a busy log (undecodable bytes on a thread's
//! subject, a message on a thread never started): the inbox and the audit
//! trail set them aside, keep serving and say so in their status; the
//! command service refuses commands on the damaged thread only.

use std::time::Duration;

use careline_client::Steps;
use careline_client::demo::first_thread;
use event_store::testing::{message, new_thread, publish_junk};
use event_store::{AggregateRef, EventStore};
use proto::audit as audit_pb;
use proto::events::AggregateType;
use proto::inbox as pb;
use tonic::Code;

use crate::support::system;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_and_impossible_events_stop_no_read_model() {
    let s = system("badevents").await;
    let org = s.org().await;
    let damaged = first_thread(&s.signer, &org).await.unwrap();
    let healthy = first_thread(&s.signer, &org).await.unwrap();
    let store = s.stream.store().clone();

    let damaged_ref = AggregateRef::new(AggregateType::Thread, damaged.clone()).unwrap();
    let junk = publish_junk(&store, &damaged_ref).await;
    let impossible = store
        .append(&message(&new_thread(), "a message on no thread"), 0)
        .await
        .unwrap()
        .position;

    // The log goes on: a reply on the healthy thread.
    let mut nurse = s.signer.client(&org.nurse).unwrap();
    let reply = nurse.post(&healthy, "Thank you, noted.").await.unwrap();
    // The damaged thread refuses commands with a clear status.
    let refused = nurse.post(&damaged, "Hello?").await.unwrap_err();
    assert_eq!(refused.code(), Code::DataLoss, "{refused:?}");
    assert!(refused.message().contains(&junk.to_string()), "{refused:?}");

    // Both read models reach the reply and answer.
    let detail = s
        .inbox(&org.patient)
        .get_thread(pb::GetThreadRequest {
            min_position: reply,
            thread_id: healthy.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detail.messages.len(), 2);
    let at = s.settled().await;
    let trail = s
        .audit(&org.auditor)
        .thread_trail(audit_pb::ThreadTrailRequest {
            min_position: at,
            thread_id: healthy,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(trail.entries.iter().any(|e| e.position == reply));

    // Each says what it set aside. (The audit trail records even an event
    // that makes no sense, on a chain of its thread: it happened in the
    // log. Only bytes that are not an event are set aside.)
    let client = projections::connect(&s.db.url).await.unwrap();
    for (projection, expected) in [("inbox", vec![junk, impossible]), ("audit", vec![junk])] {
        let letters = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let letters = projections::dead_letters(&client, projection)
                    .await
                    .unwrap();
                if letters.len() >= expected.len() {
                    return letters;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{projection} did not set the bad events aside"));
        let positions: Vec<u64> = letters.iter().map(|l| l.position).collect();
        assert_eq!(positions, expected, "{projection}: {letters:?}");
        let status = projections::status(&client).await.unwrap();
        let p = status.iter().find(|p| p.name == projection).unwrap();
        assert_eq!(p.dead_letters, expected.len() as u64, "{projection}");
    }
}
