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
