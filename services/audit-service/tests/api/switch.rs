//! Rebuilding the audit trail while it is read: every trail, and verify,
//! keeps answering the same, never waiting longer than a switch.

use std::sync::Arc;
use std::time::Duration;

use event_store::testing::TestStream;
use event_store::world::{Spec, generated};
use projections::grpc_query;
use projections::testing::{Query, TestDatabase, assert_rebuilds_leave_readers_alone};
use proto::audit as pb;
use proto::audit::audit_service_client::AuditServiceClient;
use service_kit::{Caller, Role};
use tonic::transport::Channel;

use crate::support::{Audit, auditor, operator};

fn client(channel: &Channel, who: &Caller) -> Audit {
    AuditServiceClient::with_interceptor(channel.clone(), testkit::bearer(who))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trails_never_fail_or_stall_while_rebuilds_switch() {
    let stream = TestStream::new("auditswitch").await;
    let world = generated(
        stream.store(),
        Spec {
            teams: 3,
            staff_per_team: 3,
            patients: 30,
            threads: 120,
            replies: 5,
            busy_team_threads: 0,
        },
    )
    .await;
    let db = TestDatabase::new("auditswitch").await;
    let mut config = testkit::audit_config(&db, &stream, Duration::from_secs(10));
    config.read.pool_size = 8;
    // The answers must stay the same while they are compared: reads are
    // not recorded here, nor the trail anchored (every other test does both).
    config.record_reads = false;
    config.anchor_every = None;
    let service = testkit::run_read::<audit_service::startup::AuditParts<_>, _>(
        config,
        stream.store().clone(),
    )
    .await;
    testkit::caught_up(&service.checkpoint, stream.store()).await;
    let channel = service.channel().await;

    let officer = client(&channel, &auditor(&world));
    let operator = client(&channel, &operator(&world));
    let mut queries: Vec<Query> = Vec::new();
    for &(thread, patient, _) in world.threads.iter().take(2) {
        let record = pb::RecordTrailRequest {
            patient_id: patient.to_string(),
            ..Default::default()
        };
        queries.push(grpc_query!(officer, record_trail, record.clone()));
        let own = client(
            &channel,
            &Caller {
                person_id: patient,
                role: Role::Patient,
                name: "Patient".into(),
            },
        );
        queries.push(grpc_query!(own, record_trail, record));
        let request = pb::ThreadTrailRequest {
            thread_id: thread.to_string(),
            ..Default::default()
        };
        queries.push(grpc_query!(officer, thread_trail, request));
    }
    let request = pb::PersonTrailRequest {
        person_id: world.staff[0][0].to_string(),
        ..Default::default()
    };
    queries.push(grpc_query!(officer, person_trail, request));
    for against_stream in [false, true] {
        let request = pb::VerifyRequest {
            patient_id: world.patients[0].to_string(),
            against_stream,
            ..Default::default()
        };
        queries.push(grpc_query!(operator, verify, request));
    }

    assert_rebuilds_leave_readers_alone(
        Arc::new(audit_service::AuditProjection),
        stream.store().clone(),
        &db.url,
        20,
        queries,
        8,
    )
    .await;
}
