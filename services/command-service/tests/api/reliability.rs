//! Retries, concurrency, refusals that write nothing, and the log going
//! away: through the real API.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use careline_client::bearer::{client, command_id};
use careline_client::demo::first_thread;
use event_store::testing::{NatsServer, TestStream, unique_config};
use event_store::{
    AggregateRef, Appended, Error as StoreError, EventStore, MemoryStore, StoreConfig,
};
use futures::future::join_all;
use proto::command as pb;
use proto::events::{AggregateType, Envelope, TeamCreated, envelope::Payload};
use service_kit::{Caller, Role};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::support::{connect, issuer, keys, serve, spawn_app};

fn post(thread: &str, id: &str, body: &str) -> pb::PostMessageRequest {
    pb::PostMessageRequest {
        attachments: vec![],
        command_id: id.into(),
        mention_ids: vec![],
        thread_id: thread.into(),
        body: body.into(),
    }
}

#[tokio::test]
async fn a_retried_command_records_one_event() {
    let app = spawn_app("retry").await;
    let org = app.org().await;
    let thread = first_thread(&app.signer, &org).await.unwrap();
    let mut nurse = app.signer.client(&org.nurse).unwrap();
    let id = command_id();
    let first = nurse
        .post_message(post(&thread, &id, "On my way"))
        .await
        .unwrap()
        .into_inner();
    let head = app.head().await;
    let again = nurse
        .post_message(post(&thread, &id, "On my way"))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(again.position, first.position);
    assert_eq!(again.message_id, first.message_id);
    assert_eq!(app.head().await, head, "the retry wrote an event");

    // Creating commands too: a retried StartThread is the same thread.
    let mut pat = app.signer.client(&org.patient).unwrap();
    let start = pat_to_renal(&org, &command_id(), "", "Repeat prescription");
    let a = pat.start_thread(start.clone()).await.unwrap().into_inner();
    let b = pat.start_thread(start).await.unwrap().into_inner();
    assert_eq!(
        (a.aggregate_id.clone(), a.position),
        (b.aggregate_id, b.position)
    );
    assert!(b.replayed);
}

/// Pat starts thread `thread` (empty: a new id) to the Renal Unit.
fn pat_to_renal(
    org: &careline_client::demo::DemoOrg,
    command_id: &str,
    thread: &str,
    subject: &str,
) -> pb::StartThreadRequest {
    pb::StartThreadRequest {
        attachments: vec![],
        command_id: command_id.into(),
        thread_id: thread.into(),
        patient_id: org.patient.person_id.to_string(),
        subject: subject.into(),
        body: "Could you help?".into(),
        recipients: vec![pb::Recipient {
            recipient: Some(pb::recipient::Recipient::TeamId(org.renal.clone())),
        }],
        carer_ids: vec![],
    }
}

/// A stream whose duplicate window is one second: a retry soon passes it.
async fn short_window(label: &str) -> TestStream {
    TestStream::with_config(StoreConfig {
        duplicate_window: Duration::from_secs(1),
        ..unique_config(label)
    })
    .await
}

#[tokio::test]
async fn a_retry_after_the_duplicate_window_is_answered_by_the_aggregate() {
    // A one-second window, and a second service instance with a cold cache,
    // as after a restart.
    let stream = short_window("window").await;
    let (_, first_signer, _first) = serve(stream.store().clone()).await;
    let org = careline_client::demo::seed(&first_signer).await.unwrap();
    let thread = first_thread(&first_signer, &org).await.unwrap();
    let id = command_id();
    // The nurse's one command, sent through an instance.
    let send = |signer: careline_client::demo::Signer| {
        let request = post(&thread, &id, "Noted");
        let nurse = org.nurse.clone();
        async move {
            signer
                .client(&nurse)
                .unwrap()
                .post_message(request)
                .await
                .unwrap()
                .into_inner()
        }
    };
    let first = send(first_signer).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (_, second_signer, _second) = serve(stream.store().clone()).await;
    let head = stream.store().last_position().await.unwrap();
    let retried = send(second_signer).await;
    assert!(retried.replayed);
    assert_eq!(retried.position, first.position);
    assert_eq!(stream.store().last_position().await.unwrap(), head);
}

#[tokio::test]
async fn a_command_id_reused_for_another_command_is_refused() {
    let app = spawn_app("reuse").await;
    let org = app.org().await;
    let a = first_thread(&app.signer, &org).await.unwrap();
    let b = first_thread(&app.signer, &org).await.unwrap();
    let mut nurse = app.signer.client(&org.nurse).unwrap();
    let id = command_id();
    nurse
        .post_message(post(&a, &id, "For thread A"))
        .await
        .unwrap();
    let head = app.head().await;
    let refused = nurse
        .post_message(post(&b, &id, "For thread B"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("command_id"),
        "{}",
        refused.message()
    );
    assert_eq!(app.head().await, head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_posts_on_one_thread_all_land() {
    let app = spawn_app("hundred").await;
    let org = app.org().await;
    let thread = first_thread(&app.signer, &org).await.unwrap();
    let head = app.head().await;
    let posts = (0..100).map(|i| {
        let mut nurse = app.signer.client(&org.nurse).unwrap();
        let thread = thread.clone();
        async move {
            nurse
                .post_message(post(&thread, &command_id(), &format!("message {i}")))
                .await
                .map(|r| r.into_inner().position)
        }
    });
    let positions: Vec<u64> = join_all(posts)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let distinct: HashSet<u64> = positions.iter().copied().collect();
    assert_eq!(distinct.len(), 100);
    let events = app.events_after(head).await;
    assert_eq!(events.len(), 100);
    assert!(events.iter().all(|e| e.event_type() == "MessagePosted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_service_instances_write_one_thread_without_losing_a_post() {
    let app = spawn_app("twoinstances").await;
    let org = app.org().await;
    let thread = first_thread(&app.signer, &org).await.unwrap();
    let (_, other_signer, _other) = serve(app.stream.store().clone()).await;
    let head = app.head().await;
    let posts = (0..60).map(|i| {
        let signer = if i % 2 == 0 {
            &app.signer
        } else {
            &other_signer
        };
        let mut nurse = signer.client(&org.nurse).unwrap();
        let thread = thread.clone();
        async move {
            nurse
                .post_message(post(&thread, &command_id(), &format!("message {i}")))
                .await
                .map(|_| ())
        }
    });
    for result in join_all(posts).await {
        result.unwrap();
    }
    assert_eq!(app.events_after(head).await.len(), 60);
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated_and_write_nothing() {
    let app = spawn_app("authn").await;
    let org = app.org().await;
    let thread = first_thread(&app.signer, &org).await.unwrap();
    let head = app.head().await;
    let channel = connect(app.addr).await;

    let mut anonymous = pb::command_service_client::CommandServiceClient::new(channel.clone());
    let missing = anonymous
        .post_message(post(&thread, &command_id(), "hi"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);

    let forger = service_kit::TokenIssuer::from_seed("test", [42; 32]).unwrap();
    let forged = forger.mint(&org.nurse, Duration::from_secs(60));
    let expired = issuer().mint_until(&org.nurse, SystemTime::now() - Duration::from_secs(3600));
    for token in [forged, expired, "not.a.token".to_string()] {
        let status = client(channel.clone(), &token)
            .unwrap()
            .post_message(post(&thread, &command_id(), "hi"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{}", status.message());
    }
    assert_eq!(app.head().await, head);
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let app = spawn_app("badinput").await;
    let org = app.org().await;
    let thread = first_thread(&app.signer, &org).await.unwrap();
    let head = app.head().await;
    let mut nurse = app.signer.client(&org.nurse).unwrap();
    let cases = [
        (post("not-a-uuid", &command_id(), "hi"), "thread_id"),
        (post(&thread, "", "hi"), "command_id"),
        (post(&thread, "12345", "hi"), "command_id"),
        (post(&thread, &command_id(), "   "), "body"),
        (post(&thread, &command_id(), &"x".repeat(20_001)), "body"),
        (post(&thread, &command_id(), "bell\u{7}"), "body"),
    ];
    for (request, field) in cases {
        let status = nurse.post_message(request).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{field}: {}",
            status.message()
        );
        assert!(
            status.message().starts_with(field),
            "{field}: {}",
            status.message()
        );
    }
    let too_many = pb::StartThreadRequest {
        attachments: vec![],
        command_id: command_id(),
        thread_id: String::new(),
        patient_id: org.patient.person_id.to_string(),
        subject: "s".into(),
        body: "b".into(),
        recipients: (0..21)
            .map(|_| pb::Recipient {
                recipient: Some(pb::recipient::Recipient::TeamId(command_id())),
            })
            .collect(),
        carer_ids: vec![],
    };
    let status = nurse.start_thread(too_many).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("recipients"),
        "{}",
        status.message()
    );
    let unknown = nurse
        .post_message(post(&command_id(), &command_id(), "hi"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(app.head().await, head);
}

#[tokio::test]
async fn an_unreachable_event_log_is_unavailable_and_a_retry_heals() {
    let mut nats = NatsServer::start().await;
    let config = StoreConfig {
        nats_url: nats.url(),
        request_timeout: Duration::from_millis(700),
        ..unique_config("outage")
    };
    let store = event_store::JetStreamStore::connect(config).await.unwrap();
    let (addr, signer, _server) = serve(store.clone()).await;
    let org = careline_client::demo::seed(&signer).await.unwrap();
    let thread = first_thread(&signer, &org).await.unwrap();
    let mut nurse = signer.client(&org.nurse).unwrap();
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(crate::support::connect(addr).await);
    assert_eq!(serving(&mut health, true).await, ServingStatus::Serving);

    nats.kill();
    // Its gRPC health says it cannot answer (the web's readiness asks it).
    assert_eq!(serving(&mut health, false).await, ServingStatus::NotServing);
    let id = command_id();
    let status = nurse
        .post_message(post(&thread, &id, "during the outage"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());
    assert!(status.message().contains("retry"), "{}", status.message());

    nats.restart().await;
    let mut landed = None;
    for _ in 0..50 {
        match nurse
            .post_message(post(&thread, &id, "during the outage"))
            .await
        {
            Ok(reply) => {
                landed = Some(reply.into_inner());
                break;
            }
            Err(s) if s.code() == Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(s) => panic!("after the restart: {s}"),
        }
    }
    let landed = landed.expect("never recovered");
    assert_eq!(serving(&mut health, true).await, ServingStatus::Serving);
    let again = nurse
        .post_message(post(&thread, &id, "during the outage"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.position, landed.position);
}

/// The command service's health once it is `serving` (or not), within 10 s:
/// what it last said.
async fn serving(
    health: &mut tonic_health::pb::health_client::HealthClient<tonic::transport::Channel>,
    serving: bool,
) -> ServingStatus {
    let mut last = ServingStatus::Unknown;
    for _ in 0..100 {
        last = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "careline.command.v1.CommandService".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        if (last == ServingStatus::Serving) == serving {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// A log where someone else always got there first.
#[derive(Clone, Debug, Default)]
struct AlwaysConflicting(MemoryStore);

impl EventStore for AlwaysConflicting {
    async fn append(&self, envelope: &Envelope, expected: u64) -> Result<Appended, StoreError> {
        let aggregate = event_store::validate_envelope(envelope)?;
        Err(StoreError::Conflict {
            aggregate,
            expected,
            actual: expected + 1,
        })
    }
    async fn load(
        &self,
        aggregate: &AggregateRef,
        after: u64,
    ) -> Result<Vec<event_store::RecordedEvent>, StoreError> {
        self.0.load(aggregate, after).await
    }
    async fn version(&self, aggregate: &AggregateRef) -> Result<u64, StoreError> {
        self.0.version(aggregate).await
    }
    async fn subscribe(&self, from: u64) -> Result<event_store::EventStream, StoreError> {
        self.0.subscribe(from).await
    }
    async fn last_position(&self) -> Result<u64, StoreError> {
        self.0.last_position().await
    }
    async fn claim(&self, id: &str, owner: &str) -> Result<Option<String>, StoreError> {
        self.0.claim(id, owner).await
    }
    async fn add_hint(&self, key: &str, item: &str) -> Result<(), StoreError> {
        self.0.add_hint(key, item).await
    }
    async fn hints(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.0.hints(key).await
    }
}

#[tokio::test]
async fn exhausted_conflict_retries_answer_aborted() {
    let store = AlwaysConflicting::default();
    let team = uuid::Uuid::now_v7().to_string();
    let aggregate = AggregateRef::new(AggregateType::Team, team.clone()).unwrap();
    store
        .0
        .append(
            &event_store::testing::envelope(
                &aggregate,
                Payload::TeamCreated(TeamCreated {
                    team_id: team.clone(),
                    name: "Renal".into(),
                    description: String::new(),
                }),
            ),
            0,
        )
        .await
        .unwrap();
    let admin = Caller {
        person_id: uuid::Uuid::now_v7(),
        role: Role::Admin,
        name: "Ada".into(),
    };
    // The admin's role, granted before the store started conflicting.
    let person = AggregateRef::new(AggregateType::Person, admin.person_id.to_string()).unwrap();
    store
        .0
        .append(
            &event_store::testing::envelope(
                &person,
                Payload::StaffRoleGranted(proto::events::StaffRoleGranted {
                    person_id: admin.person_id.to_string(),
                    role: proto::events::Role::Admin as i32,
                    name: admin.name.clone(),
                    bootstrap: true,
                }),
            ),
            0,
        )
        .await
        .unwrap();
    let (_, signer, _server) = serve(store).await;
    let status = signer
        .client(&admin)
        .unwrap()
        .set_auto_cc(pb::SetAutoCcRequest {
            command_id: command_id(),
            team_id: team,
            enabled: true,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{}", status.message());
    assert!(status.message().contains("retry"), "{}", status.message());
}

#[tokio::test]
async fn health_and_both_reflection_versions_are_served() {
    let app = spawn_app("health").await;
    let channel = connect(app.addr).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "careline.command.v1.CommandService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::{v1, v1alpha};
    // Both reflection versions list the service: the same calls on two
    // generated packages.
    macro_rules! services {
        ($v:ident) => {{
            let request = $v::ServerReflectionRequest {
                host: String::new(),
                message_request: Some($v::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                )),
            };
            let mut client =
                $v::server_reflection_client::ServerReflectionClient::new(channel.clone());
            let mut answers = client
                .server_reflection_info(futures::stream::iter([request]))
                .await
                .unwrap()
                .into_inner();
            let answer = answers.message().await.unwrap().unwrap();
            let Some($v::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
                answer.message_response
            else {
                panic!("no service list");
            };
            list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
        }};
    }
    for listed in [services!(v1), services!(v1alpha)] {
        assert!(
            listed
                .iter()
                .any(|s| s == "careline.command.v1.CommandService"),
            "{listed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_id_is_refused_on_another_aggregate_also_after_the_duplicate_window() {
    let stream = short_window("reuseforever").await;
    let (_, signer, _server) = serve(stream.store().clone()).await;
    let org = careline_client::demo::seed(&signer).await.unwrap();
    let mut pat = signer.client(&org.patient).unwrap();
    let start = |id: &str, thread: &str| pat_to_renal(&org, id, thread, "A question");
    let id = command_id();
    pat.start_thread(start(&id, &command_id())).await.unwrap();
    // JetStream has forgotten the id by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let head = stream.store().last_position().await.unwrap();
    let refused = pat
        .start_thread(start(&id, &command_id()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("command_id"), "{refused:?}");
    assert_eq!(stream.store().last_position().await.unwrap(), head);
}

#[tokio::test]
async fn a_huge_bad_id_is_not_echoed_back_whole() {
    let app = spawn_app("echo").await;
    let org = app.org().await;
    let mut nurse = app.signer.client(&org.nurse).unwrap();
    let huge = "x".repeat(1_000_000);
    let refused = nurse
        .post_message(post(&huge, &command_id(), "Hello"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("thread_id"),
        "{}",
        &refused.message()[..100]
    );
    assert!(
        refused.message().len() < 300,
        "{} bytes echoed",
        refused.message().len()
    );
}

#[tokio::test]
async fn posting_faster_than_the_limit_is_refused_until_the_minute_passes() {
    let stream = TestStream::new("postlimit").await;
    let files = event_store::FileStore::open(stream.store()).await.unwrap();
    let app = command_service::App::new(stream.store().clone(), 1000)
        .with_post_limit(3)
        .with_files(files, 1000);
    let server =
        command_service::Application::with_app("127.0.0.1:0".parse().unwrap(), app, keys())
            .await
            .unwrap();
    let addr = server.local_addr();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let signer = careline_client::demo::Signer::new(connect(addr).await, issuer());
    let org = careline_client::demo::seed(&signer).await.unwrap();
    // The demo's first thread is one of the patient's posts.
    let thread = first_thread(&signer, &org).await.unwrap();
    let mut nurse = signer.client(&org.nurse).unwrap();
    for i in 0..3 {
        nurse
            .post_message(post(&thread, &command_id(), &format!("reply {i}")))
            .await
            .unwrap();
    }
    let head = stream.store().last_position().await.unwrap();
    let refused = nurse
        .post_message(post(&thread, &command_id(), "one too many"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("at most 3 messages a minute"),
        "{refused:?}"
    );
    assert_eq!(stream.store().last_position().await.unwrap(), head);
    // Files are limited alike: each is kept for good.
    for i in 0..3 {
        careline_client::files::upload(&mut nurse, "note.txt", format!("note {i}").into_bytes())
            .await
            .unwrap();
    }
    let refused = careline_client::files::upload(&mut nurse, "note.txt", b"one more".to_vec())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("too many files sent"),
        "{refused:?}"
    );
    // Someone else still posts.
    signer
        .client(&org.patient)
        .unwrap()
        .post_message(post(&thread, &command_id(), "Thank you"))
        .await
        .unwrap();

    // Many at once cannot all pass the check before any is counted: of 12
    // concurrent posts by Ned (limit 3), exactly 3 land.
    let ned = signer.client(&org.nurse2).unwrap();
    let head = stream.store().last_position().await.unwrap();
    let posts = (0..12).map(|i| {
        let mut ned = ned.clone();
        let thread = thread.clone();
        async move {
            ned.post_message(post(&thread, &command_id(), &format!("at once {i}")))
                .await
        }
    });
    let outcomes = futures::future::join_all(posts).await;
    let landed = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(landed, 3, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .filter_map(|o| o.as_ref().err())
            .all(|e| e.code() == Code::ResourceExhausted)
    );
    assert_eq!(stream.store().last_position().await.unwrap(), head + 3);
}

#[tokio::test]
async fn an_instance_whose_copy_of_a_team_is_old_decides_on_the_log_not_on_it() {
    let app = spawn_app("staleinstance").await;
    let org = app.org().await;
    let (_, other_signer, _other) = serve(app.stream.store().clone()).await;
    // Instance B reads the renal team (and keeps it).
    let mut admin_b = other_signer.client(&org.admin).unwrap();
    admin_b
        .set_team_alerts(pb::SetTeamAlertsRequest {
            command_id: command_id(),
            team_id: org.renal.clone(),
            enabled: true,
        })
        .await
        .unwrap();
    // Instance A adds the dietitian to it.
    app.signer
        .client(&org.admin)
        .unwrap()
        .add_team_member(pb::AddTeamMemberRequest {
            command_id: command_id(),
            team_id: org.renal.clone(),
            professional_id: org.dietitian.person_id.to_string(),
            contactable: true,
            lead: false,
        })
        .await
        .unwrap();
    // B is asked to make her the default contact: its copy says she is
    // not a member, the log says she is.
    let set = admin_b
        .set_default_contact(pb::SetDefaultContactRequest {
            command_id: command_id(),
            team_id: org.renal.clone(),
            professional_id: org.dietitian.person_id.to_string(),
        })
        .await;
    assert!(set.is_ok(), "{set:?}");
    // And a refusal that holds on the log still refuses.
    let stranger = admin_b
        .set_default_contact(pb::SetDefaultContactRequest {
            command_id: command_id(),
            team_id: org.renal.clone(),
            professional_id: org.cardiologist.person_id.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        stranger.code(),
        tonic::Code::FailedPrecondition,
        "{stranger:?}"
    );
}
