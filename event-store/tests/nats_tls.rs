//! TLS to NATS on a real nats-server that requires it of every client
//! (with the shipped users): a service with the deployment's CA connects
//! and works; without the CA, or without TLS, nothing connects at all.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::time::Duration;

use event_store::testing::{NatsServer, dev_certs, message, new_thread, test_password};
use event_store::{EventStore, JetStreamStore, NatsTls, NatsUser, StoreConfig};

fn config(server: &NatsServer, user: &str, tls: Option<NatsTls>) -> StoreConfig {
    StoreConfig {
        nats_url: server.url(),
        request_timeout: Duration::from_millis(1500),
        user: Some(NatsUser {
            name: user.into(),
            password: test_password(user),
        }),
        tls,
        ..StoreConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tls_required_only_clients_that_trust_the_ca_connect() {
    let certs = dev_certs();
    let server = NatsServer::start_with_users(Some(&certs)).await;
    let trusted = Some(NatsTls {
        ca: Some(certs.join("ca.pem")),
        client: None,
    });

    // The server says so before anything else: no plaintext session.
    let port = server.url().rsplit(':').next().unwrap().to_string();
    let info = tokio::task::spawn_blocking(move || {
        let stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    assert!(info.contains("\"tls_required\":true"), "{info}");

    // With the CA: the admin makes the stream, the command service writes.
    JetStreamStore::connect(config(&server, "admin", trusted.clone()))
        .await
        .unwrap();
    let command = JetStreamStore::connect(config(&server, "command", trusted.clone()))
        .await
        .unwrap();
    let thread = new_thread();
    command.append(&message(&thread, "hello"), 0).await.unwrap();
    assert_eq!(command.load(&thread, 0).await.unwrap().len(), 1);

    // Without the CA (the system's roots do not know it), or without TLS.
    let untrusted =
        JetStreamStore::connect(config(&server, "command", Some(NatsTls::default()))).await;
    assert!(untrusted.is_err(), "connected without trusting the CA");
    let plaintext = JetStreamStore::connect(config(&server, "command", None)).await;
    assert!(plaintext.is_err(), "connected without TLS");
    drop(server);
    let _ = std::fs::remove_dir_all(&certs);
}

#[test]
fn tls_settings_come_from_the_environment_and_bad_ones_are_named() {
    let certs = dev_certs();
    let ca = certs.join("ca.pem").display().to_string();
    let lookup = |pairs: Vec<(&'static str, String)>| {
        move |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        }
    };
    let config = StoreConfig::from_lookup(lookup(vec![("NATS_CA", ca.clone())])).unwrap();
    assert_eq!(config.tls.unwrap().ca.unwrap().display().to_string(), ca);
    let config =
        StoreConfig::from_lookup(lookup(vec![("NATS_URL", "tls://nats.example:4222".into())]))
            .unwrap();
    assert_eq!(config.tls, Some(NatsTls::default()));
    assert!(
        StoreConfig::from_lookup(lookup(vec![]))
            .unwrap()
            .tls
            .is_none()
    );
    let missing =
        StoreConfig::from_lookup(lookup(vec![("NATS_CA", "/no/such/ca.pem".into())])).unwrap_err();
    assert!(missing.to_string().contains("NATS_CA"), "{missing}");
    let half = StoreConfig::from_lookup(lookup(vec![("NATS_CERT", ca.clone())])).unwrap_err();
    assert!(half.to_string().contains("NATS_KEY"), "{half}");
    let _ = std::fs::remove_dir_all(&certs);
}
