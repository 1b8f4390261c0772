//! The NATS users Careline ships (`deploy/nats/users.conf`) on a real
//! nats-server: only the command service writes domain events, only the
//! read services write record reads, every service reads, and nobody but the
//! deployment's admin can delete or edit the log.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use event_store::testing::{NatsServer, envelope, message, new_thread, test_password};
use event_store::{ANY_VERSION, AggregateRef, EventStore, JetStreamStore, NatsUser, StoreConfig};
use futures::StreamExt;
use proto::events::envelope::Payload;
use proto::events::{AggregateType, RecordsViewed};

fn config(server: &NatsServer, user: Option<&str>) -> StoreConfig {
    StoreConfig {
        nats_url: server.url(),
        request_timeout: Duration::from_millis(700),
        user: user.map(|name| NatsUser {
            name: name.into(),
            password: test_password(name),
        }),
        ..StoreConfig::default()
    }
}

async fn server() -> NatsServer {
    NatsServer::start_with_users(None).await
}

fn read(reader: &AggregateRef) -> proto::events::Envelope {
    envelope(
        reader,
        Payload::RecordsViewed(RecordsViewed {
            ..Default::default()
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_may_do_only_what_it_does() {
    let server = server().await;
    // Without a user, nothing.
    assert!(
        JetStreamStore::connect(config(&server, None))
            .await
            .is_err()
    );
    // The deployment's admin creates the stream and the bucket.
    let admin = JetStreamStore::connect(config(&server, Some("admin")))
        .await
        .unwrap();

    let command = JetStreamStore::connect(config(&server, Some("command")))
        .await
        .unwrap();
    let thread = new_thread();
    let first = command.append(&message(&thread, "hello"), 0).await.unwrap();
    assert_eq!(
        command
            .claim(&uuid::Uuid::now_v7().to_string(), "thread/x")
            .await
            .unwrap(),
        None
    );
    assert_eq!(command.load(&thread, 0).await.unwrap().len(), 1);

    let reader_ref =
        AggregateRef::new(AggregateType::Access, uuid::Uuid::now_v7().to_string()).unwrap();
    for user in ["inbox", "audit", "notify", "reader"] {
        let store = JetStreamStore::connect(config(&server, Some(user)))
            .await
            .unwrap();
        // Reads: the feed from the start, a load, the head.
        let mut feed = store.subscribe(1).await.unwrap();
        let event = tokio::time::timeout(Duration::from_secs(5), feed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.position, first.position, "{user}");
        assert_eq!(store.load(&thread, 0).await.unwrap().len(), 1, "{user}");
        // Writing a domain event, or claiming an id, is refused.
        let forged = store
            .append(&message(&thread, "forged"), first.position)
            .await;
        assert!(forged.is_err(), "{user} wrote a domain event");
        let claim = store
            .claim(&uuid::Uuid::now_v7().to_string(), "thread/x")
            .await;
        assert!(claim.is_err(), "{user} claimed a command id");
        // Only the services that answer with a record's data record reads.
        let viewed = store.append(&read(&reader_ref), ANY_VERSION).await;
        assert_eq!(
            viewed.is_ok(),
            matches!(user, "inbox" | "audit" | "notify"),
            "{user}: {viewed:?}"
        );
        // Only the audit service anchors the audit trail.
        let anchors = AggregateRef::new(AggregateType::Access, proto::contract::ANCHOR_ID).unwrap();
        let mut anchor = envelope(
            &anchors,
            Payload::AuditAnchored(proto::events::AuditAnchored::default()),
        );
        anchor.actor.as_mut().unwrap().person_id = proto::contract::ANCHOR_ID.into();
        let anchored = store.append(&anchor, ANY_VERSION).await;
        assert_eq!(anchored.is_ok(), user == "audit", "{user}: {anchored:?}");
        // Nobody edits the log.
        let js = store.jetstream();
        assert!(
            js.delete_stream("CARELINE").await.is_err(),
            "{user} deleted the stream"
        );
        let stream = js.get_stream("CARELINE").await.unwrap();
        assert!(stream.purge().await.is_err(), "{user} purged the stream");
        assert!(
            stream.delete_message(first.position).await.is_err(),
            "{user} deleted an event"
        );
    }
    // The command service cannot edit it either, nor record reads.
    let js = command.jetstream();
    assert!(js.delete_stream("CARELINE").await.is_err());
    assert!(
        command
            .append(&read(&reader_ref), ANY_VERSION)
            .await
            .is_err()
    );
    // Everything refused wrote nothing.
    let head = admin.last_position().await.unwrap();
    assert_eq!(
        head,
        first.position + 4,
        "only the read services' reads and the audit's anchor were added"
    );
}

/// Each user's JetStream answers come to an inbox prefix of its own, the
/// only one it may subscribe to: a service listening on every inbox
/// (`_INBOX.>`) or on another's is refused by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_user_listens_to_another_users_answers() {
    let server = server().await;
    JetStreamStore::connect(config(&server, Some("admin")))
        .await
        .unwrap();
    for (user, other) in [("inbox", "command"), ("reader", "audit")] {
        let (told, mut refusals) = tokio::sync::mpsc::unbounded_channel();
        let client =
            async_nats::ConnectOptions::with_user_and_password(user.into(), test_password(user))
                .custom_inbox_prefix(event_store::inbox_prefix(user))
                .event_callback(move |event| {
                    let told = told.clone();
                    async move {
                        if let async_nats::Event::ServerError(e) = event {
                            let _ = told.send(e.to_string());
                        }
                    }
                })
                .connect(server.url())
                .await
                .unwrap();
        for subject in [
            "_INBOX.>".to_string(),
            format!("{}.>", event_store::inbox_prefix(other)),
        ] {
            let _listening = client.subscribe(subject.clone()).await.unwrap();
            client.flush().await.unwrap();
            let refused = tokio::time::timeout(Duration::from_secs(5), refusals.recv())
                .await
                .unwrap_or_else(|_| panic!("{user} listened on {subject}"))
                .unwrap();
            assert!(
                refused.contains("Permissions Violation for Subscription"),
                "{user}: {refused}"
            );
        }
        // Its own store, on its own prefix, reads as before.
        let store = JetStreamStore::connect(config(&server, Some(user)))
            .await
            .unwrap();
        store.last_position().await.unwrap();
    }
}

/// A service's user cannot find another's consumers, and cannot leave one
/// of its own on the server: the consumers Careline makes are named at
/// random and no service user may list them, and every consumer, a durable
/// one made by hand too, is removed once unused for
/// [`event_store::CONSUMER_IDLE_LIMIT`] (nats-server 2.10 or later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_user_finds_another_users_consumers_or_keeps_one() {
    let server = NatsServer::start_current_with_users(None).await;
    let admin = JetStreamStore::connect(config(&server, Some("admin")))
        .await
        .unwrap();
    let thread = new_thread();
    JetStreamStore::connect(config(&server, Some("command")))
        .await
        .unwrap()
        .append(&message(&thread, "hello"), 0)
        .await
        .unwrap();
    // The inbox follows the log: a consumer of its own.
    let inbox = JetStreamStore::connect(config(&server, Some("inbox")))
        .await
        .unwrap();
    let mut feed = inbox.subscribe(1).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), feed.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut log = admin.jetstream().get_stream("CARELINE").await.unwrap();
    assert_eq!(log.info().await.unwrap().state.consumer_count, 1);

    for thief in ["audit", "notify", "reader"] {
        let store = JetStreamStore::connect(config(&server, Some(thief)))
            .await
            .unwrap();
        let stream = store.jetstream().get_stream("CARELINE").await.unwrap();
        // Neither the names nor the list of the stream's consumers.
        let listed = stream.consumer_names().next().await;
        assert!(
            matches!(listed, Some(Err(_))),
            "{thief} listed consumer names: {listed:?}"
        );
        let listed = stream.consumers().next().await;
        assert!(
            matches!(listed, Some(Err(_))),
            "{thief} listed consumers: {listed:?}"
        );
        // A durable consumer made by hand (the permissions cannot tell it
        // from the feed's) is given the stream's idle limit: it goes.
        let mut squatter = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some(format!("squatter-{thief}")),
                ..Default::default()
            })
            .await
            .unwrap();
        let info = squatter.info().await.unwrap();
        assert_eq!(
            info.config.inactive_threshold,
            event_store::CONSUMER_IDLE_LIMIT,
            "{thief}'s durable consumer would stay"
        );
    }
    // The admin sees the limit on the stream.
    let config = log.info().await.unwrap().config.clone();
    assert_eq!(
        config.consumer_limits.map(|l| l.inactive_threshold),
        Some(event_store::CONSUMER_IDLE_LIMIT)
    );
}
