//! `careline tail` as an operator runs it: one readable line per event
//! (who did what, no clinical content), `--json` for machines, a line that
//! is not an event marked and passed, and a mistyped `--type` or a `--from`
//! past the end said at once instead of waiting forever.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use event_store::EventStore;
use event_store::testing::{TestStream, append_in_order, message, new_thread, publish_junk};
use futures::StreamExt;
use proto::events::envelope::Payload;
use testkit::{Services, System};

async fn tail(stream: &TestStream, args: &[&str]) -> (bool, String, String) {
    tail_with(stream, args, &[]).await
}

async fn tail_with(
    stream: &TestStream,
    args: &[&str],
    env: &[(&str, String)],
) -> (bool, String, String) {
    let config = stream.config();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_careline"))
        .arg("tail")
        .args(args)
        .env_remove("CARELINE_TOKEN")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("NATS_URL", &config.nats_url)
        .env("CARELINE_STREAM", &config.stream)
        .env("CARELINE_PREFIX", &config.prefix)
        .envs(event_store::testing::signing_env())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap_or_else(|_| panic!("careline tail {args:?} still waits after 30 s"))
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_readable_lines_passes_junk_and_refuses_what_cannot_be() {
    let stream = TestStream::new("clitail").await;
    let thread = new_thread();
    append_in_order(
        stream.store(),
        &[message(&thread, "my dialysis line is sore")],
    )
    .await;
    publish_junk(stream.store(), &thread).await;
    let other = new_thread();
    append_in_order(stream.store(), &[message(&other, "second")]).await;

    // Three lines: an event, the junk marked, and the event after it.
    let (ok, stdout, stderr) = tail(&stream, &["--from", "1", "--limit", "3"]).await;
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("#1 ") && lines[0].ends_with("Test Professional posted a message"),
        "{stdout}"
    );
    assert!(lines[1].starts_with("#2 SET ASIDE"), "{stdout}");
    assert!(lines[2].starts_with("#3 "), "{stdout}");
    assert!(lines.iter().all(|l| l.len() < 200), "{stdout}");
    assert!(!stdout.contains("dialysis"), "{stdout}");

    // For machines: one JSON object per line.
    let (ok, stdout, stderr) = tail(
        &stream,
        &[
            "--from",
            "1",
            "--limit",
            "1",
            "--json",
            "--type",
            "MessagePosted",
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with("{\"") && stdout.contains("\"event_type\":\"MessagePosted\""),
        "{stdout}"
    );

    // A type that does not exist, and a start past the end: said at once.
    let (ok, _, stderr) = tail(&stream, &["--type", "Bogus"]).await;
    assert!(!ok);
    assert!(
        stderr.contains("--type Bogus: no such event type") && stderr.contains("ThreadStarted"),
        "{stderr}"
    );
    let (ok, _, stderr) = tail(&stream, &["--from", "500"]).await;
    assert!(!ok);
    assert!(
        stderr.contains("--from 500 is past the end of the log (its last position is 3)"),
        "{stderr}"
    );
}

/// `--show-content` prints a body only where the person whose token is
/// given may read the conversation, asked of the inbox service, which
/// records the read: the NATS `reader` user alone shows no content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_shows_content_only_to_a_person_who_may_read_it_and_records_the_read() {
    let s = System::start(
        "clitailcontent",
        Services {
            inbox: true,
            ..Default::default()
        },
    )
    .await;
    let org = s.org().await;
    let thread = careline_client::demo::first_thread(&s.signer, &org)
        .await
        .unwrap();
    let at = s
        .post(&org.nurse, &thread, "Please weigh yourself each morning.")
        .await;
    s.settled().await;
    let from = at.to_string();
    let args = ["--from", from.as_str(), "--limit", "1", "--show-content"];
    let inbox = format!("http://{}", s.addrs.inbox.unwrap());

    // No token: refused at once, nothing printed.
    let (ok, stdout, stderr) =
        tail_with(&s.stream, &args, &[("CARELINE_INBOX_URL", inbox.clone())]).await;
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("set CARELINE_TOKEN"), "{stderr}");

    // The team's nurse: the body, and her read in the patient's trail.
    let before = s.head().await;
    let (ok, stdout, stderr) = tail_with(
        &s.stream,
        &args,
        &[
            ("CARELINE_INBOX_URL", inbox.clone()),
            ("CARELINE_TOKEN", s.signer.token(&org.nurse)),
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("body: \"Please weigh yourself each morning.\""),
        "{stdout}"
    );
    let head = s.head().await;
    assert!(head > before, "the read was not recorded");
    let mut feed = s.stream.store().subscribe(before + 1).await.unwrap();
    let event = feed.next().await.unwrap().unwrap();
    let Some(Payload::RecordsViewed(viewed)) = &event.envelope.payload else {
        panic!("not a read record: {:?}", event.envelope.event_type);
    };
    assert_eq!(
        event.envelope.actor.as_ref().unwrap().person_id,
        org.nurse.person_id.to_string()
    );
    assert!(viewed.call.ends_with("/GetThread"), "{viewed:?}");
    assert_eq!(
        viewed.records[0].patient_id,
        org.patient.person_id.to_string()
    );

    // The admin may not read conversations: the line, without the body.
    let (ok, stdout, stderr) = tail_with(
        &s.stream,
        &args,
        &[
            ("CARELINE_INBOX_URL", inbox),
            ("CARELINE_TOKEN", s.signer.token(&org.admin)),
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("posted a message | content not shown"),
        "{stdout}"
    );
    assert!(!stdout.contains("weigh"), "{stdout}");
}
