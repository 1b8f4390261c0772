//! A rebuild is the operator's zero-downtime replay: while generations are
//! rebuilt and switched in, over and over, every inbox query keeps
//! answering, the same, and no reader waits longer than a switch.

use std::sync::Arc;
use std::time::Duration;

use event_store::EventStore;
use event_store::testing::TestStream;
use inbox_service::InboxProjection;
use inbox_service::testing::{Spec, World, append, generate};
use projections::testing::{Query, TestDatabase, assert_rebuilds_leave_readers_alone, query};
use proto::inbox as pb;
use proto::inbox::inbox_service_client::InboxServiceClient;
use service_kit::{Caller, Role};
use tonic::transport::Channel;

use command_service::client::Bearer;

use crate::support::{Inbox, inbox_config, issuer, start_inbox};

const REBUILDS: usize = 20;
const CALLERS: usize = 8;

/// A client acting as `who`.
fn client(channel: &Channel, who: &Caller) -> Inbox {
    let token = issuer().mint(who, Duration::from_secs(3600));
    InboxServiceClient::with_interceptor(channel.clone(), Bearer::new(&token).unwrap())
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
            let c = who.clone();
            out.push(query(move || {
                let mut c = c.clone();
                async move {
                    c.my_inbox(pb::MyInboxRequest::default())
                        .await
                        .map(tonic::Response::into_inner)
                }
            }));
            let (c, thread) = (who.clone(), thread.clone());
            out.push(query(move || {
                let (mut c, thread_id) = (c.clone(), thread.clone());
                async move {
                    c.get_thread(pb::GetThreadRequest {
                        thread_id,
                        ..Default::default()
                    })
                    .await
                    .map(tonic::Response::into_inner)
                }
            }));
        }
        let (c, team) = (lead.clone(), team_id.clone());
        out.push(query(move || {
            let (mut c, team_id) = (c.clone(), team.clone());
            async move {
                c.team_inbox(pb::TeamInboxRequest {
                    team_id,
                    ..Default::default()
                })
                .await
                .map(tonic::Response::into_inner)
            }
        }));
        let (c, team) = (lead.clone(), team_id.clone());
        out.push(query(move || {
            let (mut c, team_id) = (c.clone(), team.clone());
            async move {
                c.not_read_by_patient(pb::NotReadByPatientRequest {
                    team_id,
                    days: Some(7),
                    ..Default::default()
                })
                .await
                .map(tonic::Response::into_inner)
            }
        }));
        let c = patient.clone();
        out.push(query(move || {
            let (mut c, patient_id) = (c.clone(), patient_id.clone());
            async move {
                c.who_can_i_message(pb::WhoCanIMessageRequest {
                    patient_id,
                    ..Default::default()
                })
                .await
                .map(tonic::Response::into_inner)
            }
        }));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_fail_or_stall_while_rebuilds_switch() {
    let stream = TestStream::new("inboxswitch").await;
    let world = append(
        stream.store(),
        generate(
            Spec {
                teams: 4,
                staff_per_team: 4,
                patients: 40,
                threads: 200,
                replies: 6,
            },
            Duration::from_secs(30 * 86_400),
        ),
        16,
    )
    .await;
    let db = TestDatabase::new("inboxswitch").await;
    let mut config = inbox_config(&db, &stream, Duration::from_secs(10));
    config.record_reads = false;
    config.pool_size = CALLERS;
    let (addr, mut checkpoint, _stop) = start_inbox(config, stream.store().clone()).await;
    let head = stream.store().last_position().await.unwrap();
    // Catching up is not what this test measures: on a loaded machine (every
    // API test at once on two cores) it may take minutes.
    tokio::time::timeout(
        Duration::from_secs(180),
        checkpoint.wait_for(|at| *at >= head),
    )
    .await
    .unwrap()
    .unwrap();
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
