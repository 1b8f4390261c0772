//! Rebuilding the notification queue while staff look at it: every
//! thread's notification states keep answering the same (delivery state
//! lives outside the generations), never waiting longer than a switch.

use std::sync::Arc;
use std::time::Duration;

use event_store::EventStore;
use event_store::testing::TestStream;
use event_store::world::{Spec, generated};
use projections::grpc_query;
use projections::testing::{Query, TestDatabase, assert_rebuilds_leave_readers_alone};
use proto::notify as pb;
use proto::notify::notification_service_client::NotificationServiceClient;
use service_kit::{Caller, Role};

use crate::support::{Sink, smtp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notification_states_never_fail_or_stall_while_rebuilds_switch() {
    let mut sink = Sink::reserve("notifyswitch");
    sink.start().await;
    let stream = TestStream::new("notifyswitch").await;
    let world = generated(
        stream.store(),
        Spec {
            teams: 3,
            staff_per_team: 3,
            patients: 20,
            threads: 40,
            replies: 3,
            busy_team_threads: 0,
        },
    )
    .await;
    let db = TestDatabase::new("notifyswitch").await;
    let mut settings = smtp(sink.port);
    // No reminders come due while the test looks: the answers stay put.
    settings.reminder_after = Duration::from_secs(3650 * 86_400);
    let mut config = testkit::notify_config(&db, &stream, Duration::from_secs(10), settings);
    config.read.batch_size = 500;
    // The answers must stay the same while they are compared (each records
    // a read, moving the position it answers at): reads are not recorded
    // here (every other test records them).
    config.record_reads = false;
    let service = testkit::run_read::<notify_service::startup::NotifyParts, _>(
        config,
        stream.store().clone(),
    )
    .await;
    let channel = service.channel().await;
    let head = stream.store().last_position().await.unwrap();

    let mut queries: Vec<Query> = Vec::new();
    for &(thread, _, team) in world.threads.iter().take(6) {
        let lead = Caller {
            person_id: world.staff[team][0],
            role: Role::Professional,
            name: "Lead".into(),
        };
        let c =
            NotificationServiceClient::with_interceptor(channel.clone(), testkit::bearer(&lead));
        let request = pb::ThreadNotificationsRequest {
            thread_id: thread.to_string(),
            min_position: head,
        };
        queries.push(grpc_query!(c, thread_notifications, request));
    }
    // Everything due is sent before the answers are taken as the baseline.
    let mut sent = usize::MAX;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = sink.received().len();
        if now == sent && now > 0 {
            break;
        }
        sent = now;
    }
    let settled: Vec<String> = futures::future::join_all(queries.iter().map(|q| q()))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        settled
            .iter()
            .all(|a| a.contains("Sent") && !a.contains("Pending")),
        "not everything was sent: {settled:?}"
    );

    assert_rebuilds_leave_readers_alone(
        Arc::new(notify_service::NotifyProjection),
        stream.store().clone(),
        &db.url,
        20,
        queries,
        8,
    )
    .await;
}
