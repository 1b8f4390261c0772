//! The notification service killed (SIGKILL) in the middle of its queue and
//! started again: nothing is lost, nothing is sent more than twice (only
//! the sends in flight can be), and a second copy carries the same Message-ID.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use careline_client::bearer::command_id;
use event_store::testing::TestStream;
use projections::testing::TestDatabase;
use proto::command as cmd;

use crate::support::{Sink, header, issuer, keys};

struct Notify(Child);

impl Notify {
    fn start(stream: &TestStream, db: &TestDatabase, smtp_port: u16) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_careline-notify"))
            .env("NATS_URL", &stream.config().nats_url)
            .env("CARELINE_STREAM", &stream.config().stream)
            .env("CARELINE_PREFIX", &stream.config().prefix)
            .envs(event_store::testing::signing_env())
            .env("DATABASE_URL", &db.url)
            .env(service_kit::auth::PUBLIC_KEYS_VAR, issuer().public_key())
            .env("CARELINE_NOTIFY_ADDR", "127.0.0.1:0")
            .env("CARELINE_SMTP_HOST", "127.0.0.1")
            .env("CARELINE_SMTP_PORT", smtp_port.to_string())
            .env("CARELINE_SMTP_TLS", "none")
            .env("CARELINE_NOTIFY_COALESCE_SECS", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start careline-notify");
        Notify(child)
    }

    fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_queue_it_loses_nothing_and_doubles_at_most_once() {
    let mut sink = Sink::reserve("notifykill");
    sink.start().await;
    let stream = TestStream::new("notifykill").await;
    let db = TestDatabase::new("notifykill").await;

    // Forty threads from Pat to the Renal Unit, her father CC'd: 160 emails.
    let command = command_service::Application::with_app(
        "127.0.0.1:0".parse().unwrap(),
        testkit::command_app(stream.store().clone()),
        keys(),
    )
    .await
    .unwrap();
    let addr = command.local_addr();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(command.run(async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let signer = testkit::signer(channel);
    let org = careline_client::demo::seed(&signer).await.unwrap();
    let mut pat = signer.client(&org.patient).unwrap();
    let threads = 40;
    for i in 0..threads {
        pat.start_thread(cmd::StartThreadRequest {
            attachments: vec![],
            command_id: command_id(),
            thread_id: String::new(),
            patient_id: org.patient.person_id.to_string(),
            subject: format!("Question {i}"),
            body: "Is this normal?".into(),
            recipients: vec![cmd::Recipient {
                recipient: Some(cmd::recipient::Recipient::TeamId(org.renal.clone())),
            }],
            carer_ids: vec![org.carer.person_id.to_string()],
        })
        .await
        .unwrap();
    }
    let total = threads * 4;

    let mut first = Notify::start(&stream, &db, sink.port);
    for _ in 0..600 {
        if !sink.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill();
    let at_kill = sink.received().len();
    assert!(
        (1..total).contains(&at_kill),
        "the kill did not land mid-queue ({at_kill} of {total} sent)"
    );

    let _second = Notify::start(&stream, &db, sink.port);
    let mails = sink.wait_for(total).await;
    let mut copies: HashMap<String, usize> = HashMap::new();
    for mail in &mails {
        *copies
            .entry(header(mail, "Message-ID").unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(copies.len(), total, "every notification sent");
    assert!(
        copies.values().all(|&n| n <= 2),
        "a notification was sent more than twice"
    );
    assert!(
        mails.len() <= total + notify_service::delivery::CONCURRENT_SENDS,
        "{} emails for {total}: more duplicates than sends in flight",
        mails.len()
    );

    let client = projections::connect(&db.url).await.unwrap();
    let sent: i64 = client
        .query_one(
            "SELECT count(*) FROM careline_notify.deliveries WHERE state = 'sent'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sent as usize, total);
}
