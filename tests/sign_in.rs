//! No key on the internet-facing web that mints identities: the command
//! service signs people in, on the identity provider's ID token, which it
//! checks itself (the provider's keys, issuer, audience, expiry, nonce).
//! Everything the web relays is refused unless the trusted provider signed
//! it for this sign-in; a demo person's id is proof only on a demo. Each
//! attack runs against the real command and inbox services, the real NATS,
//! and a provider serving its keys over HTTP.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use proto::command as pb;
use proto::command::command_service_client::CommandServiceClient;
use proto::command::link_identity_request::Proof;
use proto::command::sign_in_request::Proof as SignInProof;
use serde_json::json;
use service_kit::{Addressee, EmailLink, Role};
use testkit::idp::{CLIENT_ID, TestProvider};
use testkit::{Services, System};
use tonic::Code;
use tonic::transport::Channel;

async fn system(label: &str, idp: &TestProvider) -> System {
    System::start(
        label,
        Services {
            inbox: true,
            provider: Some((idp.issuer.clone(), CLIENT_ID.into())),
            // As in production: no demo sign-in.
            no_demo: true,
            wait: Some(Duration::from_secs(10)),
            ..Services::default()
        },
    )
    .await
}

fn command(s: &System) -> CommandServiceClient<Channel> {
    CommandServiceClient::new(s.signer.channel())
}

async fn sign_in(
    s: &System,
    id_token: &str,
    nonce: &str,
) -> Result<pb::SignInReply, tonic::Status> {
    command(s)
        .sign_in(pb::SignInRequest {
            proof: Some(SignInProof::IdToken(pb::IdTokenProof {
                id_token: id_token.into(),
                nonce: nonce.into(),
            })),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_trusted_providers_id_token_for_this_sign_in_signs_anyone_in() {
    let idp = TestProvider::start([1; 32]).await;
    let s = system("sign_in_id_tokens", &idp).await;
    let org = s.org().await;

    // The nurse links her account at the provider once, by the invitation
    // her email carried: with the account token a good ID token gave.
    let first = sign_in(&s, &idp.sign(&idp.claims("nurse-7", "n1")), "n1")
        .await
        .unwrap();
    assert!(!first.linked && first.tokens.is_empty());
    let invitation = service_kit::test_link_issuer().mint(&EmailLink {
        person_id: org.nurse.person_id,
        addressee: Addressee::Person,
        email: format!(
            "{}@hospital.example",
            org.nurse.name.to_lowercase().replace([' ', '.'], "")
        ),
        request_id: careline_client::bearer::command_id(),
        expires_at: std::time::SystemTime::now() + Duration::from_secs(3600),
    });
    command(&s)
        .link_identity(pb::LinkIdentityRequest {
            command_id: careline_client::bearer::command_id(),
            account_token: first.account_token.clone(),
            proof: Some(Proof::InvitationToken(invitation)),
        })
        .await
        .unwrap();

    // Signing in at the provider now gives her token, which the inbox
    // accepts as her.
    let signed_in = sign_in(&s, &idp.sign(&idp.claims("nurse-7", "n2")), "n2")
        .await
        .unwrap();
    assert!(signed_in.linked);
    assert_eq!(signed_in.person_id, org.nurse.person_id.to_string());
    let token = &signed_in.tokens[0];
    assert_eq!(token.role, Role::Professional.as_str());
    s.inbox_with_token(&token.token)
        .my_inbox(proto::inbox::MyInboxRequest::default())
        .await
        .unwrap();

    // Whatever else a relay brings names no one: each is refused, and
    // nothing is written.
    let head = s.head().await;
    let good = idp.claims("nurse-7", "n3");
    let with = |key: &str, value: serde_json::Value| {
        let mut claims = good.clone();
        claims.insert(key.into(), value);
        claims
    };
    let stranger = TestProvider::start([2; 32]).await;
    let mut unsigned = idp.sign(&good);
    unsigned.truncate(unsigned.rfind('.').unwrap() + 1);
    let attacks: Vec<(&str, String, &str)> = vec![
        (
            "signed by another key under the provider's key id",
            idp.forge(&good),
            "n3",
        ),
        (
            "signed by another provider, naming the trusted one",
            stranger.sign(&good),
            "n3",
        ),
        (
            "another provider's own token",
            stranger.sign(&stranger.claims("nurse-7", "n3")),
            "n3",
        ),
        (
            "for another client",
            idp.sign(&with("aud", json!("another-app"))),
            "n3",
        ),
        (
            "expired",
            idp.sign(&with(
                "exp",
                json!(TestProvider::expired(Duration::from_secs(3600))),
            )),
            "n3",
        ),
        ("answering another sign-in's nonce", idp.sign(&good), "n4"),
        ("answering no nonce", idp.sign(&good), ""),
        ("without a signature", unsigned, "n3"),
        (
            "an account token of the command service",
            first.account_token.clone(),
            "n3",
        ),
        ("a Careline token of the nurse", token.token.clone(), "n3"),
        ("not a token", "eyJhbGciOiJub25lIn0.e30.".into(), "n3"),
    ];
    for (what, id_token, nonce) in &attacks {
        let refused = sign_in(&s, id_token, nonce).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{what}: {refused:?}");
        assert!(
            !refused.message().contains("eyJ"),
            "{what}: no token echoed"
        );
        println!("{what}: {}", refused.message());
    }
    // The demo's way in is shut: a person's id signs no one in.
    for who in [&org.admin, &org.nurse, &org.patient, &org.auditor] {
        let refused = command(&s)
            .sign_in(pb::SignInRequest {
                proof: Some(SignInProof::DemoPersonId(who.person_id.to_string())),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }
    assert_eq!(s.head().await, head, "no refusal wrote anything");
    println!(
        "refused: {} ID tokens, 4 demo sign-ins, on a provider serving its keys over HTTP",
        attacks.len()
    );
}
