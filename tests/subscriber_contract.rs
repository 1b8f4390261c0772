//! An internal service that knows only NATS and the proto contract (no
//! Careline code) can find, filter and decode the events.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use event_store::EventStore;
use event_store::testing::{TestStream, envelope};
use futures::StreamExt;
use prost::Message;
use proto::events::{Envelope, MessagePosted, TeamCreated, envelope::Payload};

#[tokio::test]
async fn an_outside_subscriber_filters_by_subject_and_header_and_decodes() {
    let test = TestStream::new("subscriber").await;
    let store = test.store();
    let thread = event_store::testing::new_thread();
    let team = event_store::AggregateRef::new(
        proto::events::AggregateType::Team,
        uuid::Uuid::now_v7().to_string(),
    )
    .unwrap();

    let created = envelope(
        &team,
        Payload::TeamCreated(TeamCreated {
            team_id: team.id().into(),
            name: "Renal unit".into(),
            description: "Dialysis and kidney care".into(),
        }),
    );
    let posted = envelope(
        &thread,
        Payload::MessagePosted(MessagePosted {
            notice: None,
            attachments: vec![],
            message_id: uuid::Uuid::now_v7().to_string(),
            mention_ids: vec![],
            body: "Can I take ibuprofen before dialysis?".into(),
            reopened: false,
        }),
    );
    store.append(&created, 0).await.unwrap();
    let at = store.append(&posted, 0).await.unwrap().position;

    // The outside service: a plain NATS client and the documented contract.
    let client = async_nats::connect(test.config().nats_url.as_str())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(&test.config().stream).await.unwrap();
    let threads_only = format!("{}.events.thread.>", test.config().prefix);
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: threads_only,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    assert_eq!(message.info().unwrap().stream_sequence, at);
    assert_eq!(
        message.subject.as_str(),
        format!("{}.events.thread.{}", test.config().prefix, thread.id())
    );
    let headers = message.headers.as_ref().unwrap();
    let header = |name: &str| headers.get(name).unwrap().as_str().to_string();
    assert_eq!(header("Careline-Event-Type"), "MessagePosted");
    assert_eq!(header("Careline-Aggregate-Type"), "thread");
    assert_eq!(header("Careline-Aggregate-Id"), thread.id());
    assert_eq!(header("Careline-Schema-Version"), "1");
    assert_eq!(header("Nats-Msg-Id"), posted.event_id);

    let decoded = Envelope::decode(message.payload.clone()).unwrap();
    assert_eq!(decoded, posted);
    match decoded.payload {
        Some(Payload::MessagePosted(m)) => {
            assert_eq!(m.body, "Can I take ibuprofen before dialysis?")
        }
        other => panic!("unexpected payload {other:?}"),
    }
}

/// The verifying subscriber of the client crate's examples, run as an
/// internal service would run it: it prints the command service's event
/// and sets aside, saying why, one published straight onto the thread's
/// subject without the command service's signature.
#[tokio::test]
async fn the_example_subscriber_believes_only_signed_events() {
    use tokio::io::AsyncBufReadExt;
    let test = TestStream::new("verifiedsub").await;
    let store = test.store();
    let thread = event_store::testing::new_thread();
    let posted = event_store::testing::message(&thread, "Your results are fine.");
    store.append(&posted, 0).await.unwrap();
    let forged = event_store::testing::message(&thread, "Stop your dialysis.");
    store
        .jetstream()
        .publish(
            thread.subject(&test.config().prefix),
            forged.encode_to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let example = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join("examples/verified_subscriber");
    assert!(example.exists(), "{} is not built", example.display());
    let keys = event_store::testing::signing_env()
        .into_iter()
        .find(|(k, _)| *k == event_store::signing::PUBLIC_KEYS_VAR)
        .unwrap()
        .1;
    let mut child = tokio::process::Command::new(example)
        .env("NATS_URL", &test.config().nats_url)
        .env("CARELINE_STREAM", &test.config().stream)
        .env("CARELINE_PREFIX", &test.config().prefix)
        .env("CARELINE_EVENT_PUBLIC_KEYS", keys)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let wait = Duration::from_secs(10);
    let printed = tokio::time::timeout(wait, out.next_line())
        .await
        .expect("the subscriber printed the signed event")
        .unwrap()
        .unwrap();
    assert!(printed.contains(&posted.event_id), "{printed}");
    let set_aside = tokio::time::timeout(wait, err.next_line())
        .await
        .expect("the subscriber set the forged event aside")
        .unwrap()
        .unwrap();
    assert!(
        set_aside.starts_with("set aside MessagePosted") && set_aside.ends_with(": unsigned"),
        "{set_aside}"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), out.next_line())
            .await
            .is_err(),
        "the forged event was printed"
    );
}
