//! A client that starts exports and stops reading holds no database
//! connection, and one person runs at most two exports at once.

use std::time::Duration;

use event_store::EventStore;
use event_store::testing::TestStream;
use event_store::world::{Spec, append, generate};
use projections::testing::TestDatabase;
use proto::audit as pb;
use proto::audit::audit_service_client::AuditServiceClient;
use tonic::transport::Channel;

use crate::support::auditor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_exports_hold_no_connection_and_are_limited_per_person() {
    let stream = TestStream::new("stalledexport").await;
    // One patient with a long trail: an export of several megabytes.
    let world = append(
        stream.store(),
        generate(
            Spec {
                teams: 1,
                staff_per_team: 2,
                patients: 1,
                threads: 300,
                replies: 20,
                busy_team_threads: 0,
            },
            Duration::from_secs(3600),
        ),
        16,
    )
    .await;
    let db = TestDatabase::new("stalledexport").await;
    let mut config = testkit::audit_config(&db, &stream, Duration::from_secs(30));
    config.read.batch_size = 1000;
    // As few connections as stalled exports.
    config.read.pool_size = 2;
    config.export_stall = Duration::from_secs(STALL);
    let service = testkit::run_read::<audit_service::startup::AuditParts<_>, _>(
        config,
        stream.store().clone(),
    )
    .await;
    let addr = service.addr;
    let head = stream.store().last_position().await.unwrap();
    let patient_id = world.patients[0].to_string();
    let officer = auditor(&world);
    let client =
        |channel: Channel| AuditServiceClient::with_interceptor(channel, testkit::bearer(&officer));
    let connect = || crate::support::channel(addr);
    let export = pb::ExportRequest {
        min_position: head,
        patient_id: patient_id.clone(),
        ..Default::default()
    };

    // Two exports, each read for one chunk and then left unread.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut c = client(connect().await);
        let mut chunks = c.export(export.clone()).await.unwrap().into_inner();
        assert!(chunks.message().await.unwrap().is_some());
        stalled.push((c, chunks));
    }
    // A third at once is refused, clearly.
    let refused = client(connect().await)
        .export(export.clone())
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );

    // Queries still get a connection.
    for _ in 0..4 {
        let answer = tokio::time::timeout(
            Duration::from_secs(3),
            client(connect().await).record_trail(pb::RecordTrailRequest {
                min_position: head,
                patient_id: patient_id.clone(),
                ..Default::default()
            }),
        )
        .await
        .expect("a query waited on the stalled exports");
        assert!(answer.is_ok(), "{answer:?}");
    }
    // Once one is dropped, a new export may start: as soon as the service
    // has seen the connection go (a moment; longer on a loaded machine).
    stalled.pop();
    let gone = tokio::time::Instant::now();
    let mut again = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match client(connect().await).export(export.clone()).await {
            Ok(answer) => break answer.into_inner(),
            Err(e)
                if e.code() == tonic::Code::ResourceExhausted
                    && gone.elapsed() < Duration::from_secs(10) => {}
            Err(e) => panic!(
                "no new export {:?} after one was dropped: {e:?}",
                gone.elapsed()
            ),
        }
    };
    assert!(again.message().await.unwrap().is_some());
    drop(again);

    // A client that stops reading for longer than the stall limit loses
    // its export, and its place: two new exports start, and the stalled
    // one, read again, ends with DEADLINE_EXCEEDED after what was buffered.
    tokio::time::sleep(Duration::from_secs(STALL + 2)).await;
    let mut fresh = Vec::new();
    for _ in 0..2 {
        let mut c = client(connect().await);
        let mut chunks = c.export(export.clone()).await.unwrap().into_inner();
        assert!(chunks.message().await.unwrap().is_some());
        fresh.push((c, chunks));
    }
    let (_c, mut stalled_chunks) = stalled.pop().unwrap();
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), stalled_chunks.message())
            .await
            .expect("the stalled export neither ended nor answered")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a stalled export ended as if complete"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), tonic::Code::DeadlineExceeded, "{ended:?}");
}

/// Seconds an export waits on a client that stopped reading, here.
const STALL: u64 = 5;
