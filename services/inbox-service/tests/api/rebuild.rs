//! A rebuild is the operator's zero-downtime replay: while generations are
//! rebuilt and switched in, over and over, every inbox query keeps
//! answering, the same, and no reader waits longer than a switch.

use std::sync::Arc;
use std::time::Duration;

use event_store::testing::TestStream;
use event_store::world::{Spec, World, generated};
use inbox_service::InboxProjection;
use projections::grpc_query;
use projections::testing::{Query, TestDatabase, assert_rebuilds_leave_readers_alone};
use proto::inbox as pb;
use proto::inbox::inbox_service_client::InboxServiceClient;
use service_kit::{Caller, Role};
use tonic::transport::Channel;

use crate::support::{Inbox, inbox_config, start_inbox};

const REBUILDS: usize = 20;
const CALLERS: usize = 8;

/// A client acting as `who`.
fn client(channel: &Channel, who: &Caller) -> Inbox {
    InboxServiceClient::with_interceptor(channel.clone(), testkit::bearer(who))
}

/// Every inbox query, as a lead and as a patient of each of two teams.
fn queries(channel: &Channel, world: &World) -> Vec<Query> {
    let mut out = Vec::new();
    for team in 0..2 {
        let team_id = world.teams[team].to_string();
        let (thread, patient, _) = *world.threads.iter().find(|(_, _, t)| *t == team).unwrap();
        let thread = thread.to_string();
        let lead = client(
            channel,
            &Caller {
                person_id: world.staff[team][0],
                role: Role::Professional,
                name: "Lead".into(),
            },
        );
        let patient_id = patient.to_string();
        let patient = client(
            channel,
            &Caller {
                person_id: patient,
                role: Role::Patient,
                name: "Patient".into(),
            },
        );
        for who in [&lead, &patient] {
            out.push(grpc_query!(who, my_inbox, pb::MyInboxRequest::default()));
            let request = pb::GetThreadRequest {
                thread_id: thread.clone(),
                ..Default::default()
            };
            out.push(grpc_query!(who, get_thread, request));
        }
        let request = pb::TeamInboxRequest {
            team_id: team_id.clone(),
            ..Default::default()
        };
        out.push(grpc_query!(lead, team_inbox, request));
        let request = pb::NotReadByPatientRequest {
            team_id: team_id.clone(),
            days: Some(7),
            ..Default::default()
        };
        out.push(grpc_query!(lead, not_read_by_patient, request));
        let request = pb::WhoCanIMessageRequest {
            patient_id: patient_id.clone(),
            ..Default::default()
        };
        out.push(grpc_query!(patient, who_can_i_message, request));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_fail_or_stall_while_rebuilds_switch() {
    let stream = TestStream::new("inboxswitch").await;
    let world = generated(
        stream.store(),
        Spec {
            teams: 4,
            staff_per_team: 4,
            patients: 40,
            threads: 200,
            replies: 6,
            busy_team_threads: 0,
        },
    )
    .await;
    let db = TestDatabase::new("inboxswitch").await;
    let mut config = inbox_config(&db, &stream, Duration::from_secs(10));
    config.record_reads = false;
    config.read.pool_size = CALLERS;
    let (addr, checkpoint, _stop) = start_inbox(config, stream.store().clone()).await;
    testkit::caught_up(&checkpoint, stream.store()).await;
    let channel = crate::support::channel(addr).await;

    assert_rebuilds_leave_readers_alone(
        Arc::new(InboxProjection),
        stream.store().clone(),
        &db.url,
        REBUILDS,
        queries(&channel, &world),
        CALLERS,
    )
    .await;
}
