//! Behaviour only the JetStream store has: the stream's settings, refusals
//! by the server, and what happens when NATS is out of reach.

use std::time::{Duration, Instant};

use async_nats::jetstream::stream::{self, StorageType};
use event_store::testing::{NatsServer, TestStream, message, new_thread, unique_config};
use event_store::{Error, EventStore, JetStreamStore, StoreConfig};

#[tokio::test]
async fn stream_is_created_with_the_audit_log_settings() {
    let test = TestStream::new("settings").await;
    let mut stream = test
        .store()
        .jetstream()
        .get_stream(&test.config().stream)
        .await
        .unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!(
        config.subjects,
        vec![format!("{}.events.>", test.config().prefix)]
    );
    assert_eq!(config.storage, StorageType::File);
    assert!(config.deny_delete && config.deny_purge && config.allow_direct);
    assert_eq!(config.max_age, Duration::ZERO);
    assert!(config.max_messages <= 0 && config.max_bytes <= 0);
    assert_eq!(config.duplicate_window, test.config().duplicate_window);

    // Connecting again to the same stream validates it and succeeds.
    JetStreamStore::connect(test.config().clone())
        .await
        .unwrap();
}

#[tokio::test]
async fn deleting_or_purging_an_event_is_refused() {
    let test = TestStream::new("deny").await;
    let store = test.store();
    let thread = new_thread();
    let first = store
        .append(&message(&thread, "kept forever"), 0)
        .await
        .unwrap();

    let stream = store
        .jetstream()
        .get_stream(&test.config().stream)
        .await
        .unwrap();
    assert!(stream.delete_message(first.position).await.is_err());
    assert!(stream.purge().await.is_err());
    assert!(
        stream
            .purge()
            .filter(thread.subject(&test.config().prefix))
            .await
            .is_err()
    );
    assert_eq!(store.load(&thread, 0).await.unwrap().len(), 1);
    assert_eq!(store.last_position().await.unwrap(), first.position);
}

#[tokio::test]
async fn an_existing_stream_with_weaker_settings_is_refused() {
    let config = unique_config("weak");
    let client = async_nats::connect(config.nats_url.as_str()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.create_stream(stream::Config {
        name: config.stream.clone(),
        subjects: vec![format!("{}.events.>", config.prefix)],
        storage: StorageType::Memory,
        max_age: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap();

    let result = JetStreamStore::connect(config.clone()).await;
    js.delete_stream(&config.stream).await.unwrap();
    match result {
        Err(Error::Config(msg)) => {
            assert!(msg.contains("storage"), "{msg}");
            assert!(msg.contains("limit"), "{msg}");
            assert!(msg.contains("deny_delete"), "{msg}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_configuration_is_refused_before_connecting() {
    let config = StoreConfig {
        prefix: "has space".into(),
        ..unique_config("badconfig")
    };
    assert!(matches!(
        JetStreamStore::connect(config).await,
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn a_list_of_servers_connects_to_one_that_answers() {
    // A port nothing listens on, then the real server: the list is several
    // servers, not one address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = unique_config("serverlist");
    let config = StoreConfig {
        nats_url: format!("nats://127.0.0.1:{port}, {}", base.nats_url),
        ..base
    };
    let store = JetStreamStore::connect(config).await.unwrap();
    let thread = new_thread();
    store.append(&message(&thread, "hello"), 0).await.unwrap();
    store.delete_stream().await.unwrap();
}

#[tokio::test]
async fn a_service_starting_before_nats_waits_for_it() {
    let mut server = NatsServer::start().await;
    server.kill();
    let config = StoreConfig {
        nats_url: server.url(),
        request_timeout: Duration::from_millis(500),
        startup_wait: Duration::from_secs(30),
        ..unique_config("startupwait")
    };
    let started = Instant::now();
    let connecting = tokio::spawn(JetStreamStore::connect_patiently(config.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!connecting.is_finished(), "it waits while NATS is down");
    server.restart().await;
    let store = tokio::time::timeout(Duration::from_secs(20), connecting)
        .await
        .expect("connected once NATS answered")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    store
        .append(&message(&new_thread(), "hello"), 0)
        .await
        .unwrap();

    // It gives up after the wait, naming it; a bad setting fails at once.
    server.kill();
    let brief = StoreConfig {
        startup_wait: Duration::from_millis(800),
        ..config.clone()
    };
    match JetStreamStore::connect_patiently(brief).await {
        Err(Error::Unavailable(why)) => {
            assert!(why.contains("CARELINE_NATS_STARTUP_WAIT_SECS"), "{why}")
        }
        other => panic!("expected Unavailable, got {:?}", other.map(|_| ())),
    }
    let bad = StoreConfig {
        prefix: "has space".into(),
        ..config
    };
    assert!(matches!(
        JetStreamStore::connect_patiently(bad).await,
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn an_unreachable_server_is_a_typed_error_within_the_timeout() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = StoreConfig {
        nats_url: format!("nats://127.0.0.1:{port}"),
        request_timeout: Duration::from_millis(500),
        ..unique_config("unreachable")
    };
    let started = Instant::now();
    let result = JetStreamStore::connect(config).await;
    assert!(
        matches!(result, Err(Error::Unavailable(_))),
        "expected Unavailable, got {result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn losing_the_server_mid_run_is_a_typed_error_and_a_retry_heals() {
    let mut server = NatsServer::start().await;
    let config = StoreConfig {
        nats_url: server.url(),
        request_timeout: Duration::from_millis(700),
        ..unique_config("lost")
    };
    let store = JetStreamStore::connect(config).await.unwrap();
    let thread = new_thread();
    let first = store.append(&message(&thread, "before"), 0).await.unwrap();

    server.kill();
    let retried = message(&thread, "during the outage");
    for attempt in 0..2 {
        let started = Instant::now();
        let result = store.append(&retried, first.position).await;
        assert!(
            matches!(result, Err(Error::Unavailable(_))),
            "attempt {attempt}: expected Unavailable, got {result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
    }
    assert!(matches!(
        store.version(&thread).await,
        Err(Error::Unavailable(_))
    ));
    assert!(matches!(
        store.last_position().await,
        Err(Error::Unavailable(_))
    ));

    // Back up: the client reconnects and the same event, retried, lands once.
    server.restart().await;
    let mut landed = None;
    for _ in 0..50 {
        match store.append(&retried, first.position).await {
            Ok(appended) => {
                landed = Some(appended);
                break;
            }
            Err(Error::Unavailable(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("after restart: {e}"),
        }
    }
    let landed = landed.expect("the store never recovered");
    let again = store.append(&retried, first.position).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.position, landed.position);
    assert_eq!(store.load(&thread, 0).await.unwrap().len(), 2);
}
