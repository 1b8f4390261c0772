//! `careline verify-files` reads every file the messages name from the
//! bucket and checks it; a file a message names that is not there fails it.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use careline_client::bearer::command_id;
use careline_client::demo::first_thread;
use careline_client::files::upload;
use event_store::{AggregateRef, EventStore, StoreConfig};
use proto::command as cmd;
use proto::events::{AggregateType, Attachment, MessagePosted, envelope::Payload};
use testkit::{Services, System};

/// `careline verify-files` against `config`: (success, stdout).
async fn verify(config: &StoreConfig) -> (bool, String) {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_careline"))
        .arg("verify-files")
        .env("NATS_URL", &config.nats_url)
        .env("CARELINE_STREAM", &config.stream)
        .env("CARELINE_PREFIX", &config.prefix)
        .envs(event_store::testing::signing_env())
        .env("RUST_LOG", "warn")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("careline verify-files answers within 60 s")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_files_reads_every_file_sent_and_fails_on_one_missing() {
    let s = System::start("verify_files", Services::default()).await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let mut pat = s.signer.client(&org.patient).unwrap();
    let scan = b"%PDF-1.7 a discharge letter".to_vec();
    let file = upload(&mut pat, "letter.pdf", scan.clone()).await.unwrap();
    upload(&mut pat, "draft.txt", b"never sent".to_vec())
        .await
        .unwrap();
    pat.post_message(cmd::PostMessageRequest {
        command_id: command_id(),
        thread_id: thread.clone(),
        attachments: vec![file],
        ..Default::default()
    })
    .await
    .unwrap();

    let config = s.stream.config();
    let (ok, out) = verify(config).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "1 file(s) named by messages, {} bytes read and checked; 0 problem(s); 1 uploaded but never sent",
            scan.len()
        )),
        "{out}"
    );

    // A message naming a file the bucket does not hold (as a restore from
    // an older backup of the bucket would leave it).
    let store = s.stream.store();
    let aggregate = AggregateRef::new(AggregateType::Thread, thread.clone()).unwrap();
    let version = store.version(&aggregate).await.unwrap();
    let missing = "ab".repeat(32);
    let mut posted = event_store::testing::envelope(
        &aggregate,
        Payload::MessagePosted(MessagePosted {
            message_id: uuid::Uuid::now_v7().to_string(),
            attachments: vec![Attachment {
                digest: missing.clone(),
                file_name: "gone.pdf".into(),
                media_type: "application/pdf".into(),
                size: 10,
            }],
            ..Default::default()
        }),
    );
    posted.actor = Some(proto::events::Actor {
        person_id: org.nurse.person_id.to_string(),
        role: proto::events::Role::Professional as i32,
        ..Default::default()
    });
    store.append(&posted, version).await.unwrap();
    let (ok, out) = verify(config).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("{missing}  MISSING (sent on thread {thread})")),
        "{out}"
    );
}
