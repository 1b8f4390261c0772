//! The command service over TLS (CARELINE_TLS_CERT / CARELINE_TLS_KEY):
//! a client that trusts the CA works; plaintext, or TLS without the CA,
//! gets nothing.

use careline_client::bearer::{client, command_id};
use command_service::{App, Application};
use event_store::EventStore;
use event_store::testing::{TestStream, dev_certs};
use proto::command as pb;
use service_kit::server::{ServerTls, connect_with};
use service_kit::{Caller, Role};

use crate::support::{issuer, keys};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_only_clients_that_trust_the_ca_get_an_answer() {
    let certs = dev_certs();
    let stream = TestStream::new("grpctls").await;
    let tls = ServerTls::from_files(&certs.join("server.pem"), &certs.join("server.key")).unwrap();
    let app = Application::with_app(
        "127.0.0.1:0".parse().unwrap(),
        App::new(stream.store().clone(), 1_000),
        keys(),
    )
    .await
    .unwrap()
    .with_tls(tls);
    let port = app.local_addr().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));

    let ada = Caller {
        person_id: uuid::Uuid::now_v7(),
        role: Role::Admin,
        name: "Ada Lovelace".into(),
    };
    let token = issuer().mint(&ada, std::time::Duration::from_secs(600));
    let first_admin = || pb::GrantStaffRoleRequest {
        command_id: command_id(),
        person_id: ada.person_id.to_string(),
        role: "admin".into(),
        name: ada.name.clone(),
    };

    // Plaintext to a TLS port: no answer.
    let plain = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plain {
        let refused = client(channel, &token)
            .unwrap()
            .grant_staff_role(first_admin())
            .await;
        assert!(refused.is_err(), "a plaintext call was answered");
    }
    // TLS without the CA: the certificate is not trusted.
    let untrusted = connect_with(&format!("https://localhost:{port}"), None).await;
    if let Ok(channel) = untrusted {
        let refused = client(channel, &token)
            .unwrap()
            .grant_staff_role(first_admin())
            .await;
        assert!(refused.is_err(), "a call that trusts no CA was answered");
    }
    assert_eq!(stream.store().last_position().await.unwrap(), 0);

    // With the CA: the call is answered and recorded.
    let channel = connect_with(
        &format!("https://localhost:{port}"),
        Some(&certs.join("ca.pem")),
    )
    .await
    .unwrap();
    client(channel, &token)
        .unwrap()
        .grant_staff_role(first_admin())
        .await
        .unwrap();
    assert_eq!(stream.store().last_position().await.unwrap(), 1);
    let _ = stop.send(());
    let _ = std::fs::remove_dir_all(&certs);
}
