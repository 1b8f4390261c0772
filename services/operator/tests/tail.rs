//! `careline tail` as an operator runs it: one readable line per event
//! (who did what, no clinical content), `--json` for machines, a line that
//! is not an event marked and passed, and a mistyped `--type` or a `--from`
//! past the end said at once instead of waiting forever.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use event_store::testing::{TestStream, append_in_order, message, new_thread, publish_junk};

async fn tail(stream: &TestStream, args: &[&str]) -> (bool, String, String) {
    let config = stream.config();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_careline"))
        .arg("tail")
        .args(args)
        .env("NATS_URL", &config.nats_url)
        .env("CARELINE_STREAM", &config.stream)
        .env("CARELINE_PREFIX", &config.prefix)
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
