//! Rebuilding the audit trail while it is read: every trail, and verify,
//! keeps answering the same, never waiting longer than a switch.

use std::sync::Arc;
use std::time::Duration;

use command_service::client::Bearer;
use event_store::EventStore;
use event_store::testing::TestStream;
use inbox_service::testing::{Spec, append, generate};
use projections::testing::{Query, TestDatabase, assert_rebuilds_leave_readers_alone, query};
use proto::audit as pb;
use proto::audit::audit_service_client::AuditServiceClient;
use service_kit::{Caller, Role};
use tonic::Response;
use tonic::transport::Channel;

use crate::support::{Audit, auditor, issuer, keys, operator};

fn client(channel: &Channel, who: &Caller) -> Audit {
    let token = issuer().mint(who, Duration::from_secs(3600));
    AuditServiceClient::with_interceptor(channel.clone(), Bearer::new(&token).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trails_never_fail_or_stall_while_rebuilds_switch() {
    let stream = TestStream::new("auditswitch").await;
    let world = append(
        stream.store(),
        generate(
            Spec {
                teams: 3,
                staff_per_team: 3,
                patients: 30,
                threads: 120,
                replies: 5,
            },
            Duration::from_secs(30 * 86_400),
        ),
        16,
    )
    .await;
    let db = TestDatabase::new("auditswitch").await;
    let app = audit_service::Application::with_store(
        audit_service::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: db.url.clone(),
            store: stream.config().clone(),
            wait_for_position: Duration::from_secs(10),
            batch_size: 500,
            pool_size: 8,
            export_stall: Duration::from_secs(60),
        },
        stream.store().clone(),
        keys(),
    )
    .await
    .unwrap();
    let addr = app.local_addr();
    let mut checkpoint = app.checkpoint();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let head = stream.store().last_position().await.unwrap();
    // Catching up is not what this test measures (see the inbox's).
    tokio::time::timeout(
        Duration::from_secs(180),
        checkpoint.wait_for(|at| *at >= head),
    )
    .await
    .unwrap()
    .unwrap();
    let channel = crate::support::channel(addr).await;

    let officer = client(&channel, &auditor(&world));
    let operator = client(&channel, &operator(&world));
    let mut queries: Vec<Query> = Vec::new();
    for &(thread, patient, _) in world.threads.iter().take(2) {
        let (c, patient_id) = (officer.clone(), patient.to_string());
        queries.push(query(move || {
            let (mut c, patient_id) = (c.clone(), patient_id.clone());
            async move {
                c.record_trail(pb::RecordTrailRequest {
                    patient_id,
                    ..Default::default()
                })
                .await
                .map(Response::into_inner)
            }
        }));
        let own = client(
            &channel,
            &Caller {
                person_id: patient,
                role: Role::Patient,
                name: "Patient".into(),
            },
        );
        let patient_id = patient.to_string();
        queries.push(query(move || {
            let (mut c, patient_id) = (own.clone(), patient_id.clone());
            async move {
                c.record_trail(pb::RecordTrailRequest {
                    patient_id,
                    ..Default::default()
                })
                .await
                .map(Response::into_inner)
            }
        }));
        let (c, thread_id) = (officer.clone(), thread.to_string());
        queries.push(query(move || {
            let (mut c, thread_id) = (c.clone(), thread_id.clone());
            async move {
                c.thread_trail(pb::ThreadTrailRequest {
                    thread_id,
                    ..Default::default()
                })
                .await
                .map(Response::into_inner)
            }
        }));
    }
    let (c, person_id) = (officer.clone(), world.staff[0][0].to_string());
    queries.push(query(move || {
        let (mut c, person_id) = (c.clone(), person_id.clone());
        async move {
            c.person_trail(pb::PersonTrailRequest {
                person_id,
                ..Default::default()
            })
            .await
            .map(Response::into_inner)
        }
    }));
    let patient_id = world.patients[0].to_string();
    for against_stream in [false, true] {
        let (c, patient_id) = (operator.clone(), patient_id.clone());
        queries.push(query(move || {
            let (mut c, patient_id) = (c.clone(), patient_id.clone());
            async move {
                c.verify(pb::VerifyRequest {
                    patient_id,
                    against_stream,
                    ..Default::default()
                })
                .await
                .map(Response::into_inner)
            }
        }));
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
