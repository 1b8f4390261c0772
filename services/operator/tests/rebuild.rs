//! `careline rebuild` as an operator runs it, with the service's usual
//! `RUST_LOG=info`: the progress bar and the report, log lines on lines of
//! their own, and none of PostgreSQL's notices.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use event_store::testing::TestStream;
use event_store::world::{Spec, append, generate};
use projections::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_shows_its_bar_and_report_and_no_database_chatter() {
    let stream = TestStream::new("clirebuild").await;
    append(
        stream.store(),
        generate(
            Spec {
                teams: 2,
                staff_per_team: 2,
                patients: 10,
                threads: 20,
                replies: 2,
                busy_team_threads: 0,
            },
            Duration::from_secs(3600),
        ),
        4,
    )
    .await;
    let db = TestDatabase::new("clirebuild").await;
    let config = stream.config();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_careline"))
        .args(["rebuild", "inbox"])
        .env("NATS_URL", &config.nats_url)
        .env("CARELINE_STREAM", &config.stream)
        .env("CARELINE_PREFIX", &config.prefix)
        .envs(event_store::testing::signing_env())
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "info")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("inbox rebuilt: generation 1 is live")
            || stdout.contains("inbox rebuilt: generation 2 is live"),
        "{stdout}"
    );
    assert!(!stderr.contains("NOTICE"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "colours in a pipe: {stderr}");
    let bars: Vec<&str> = stderr
        .split(['\n', '\r'])
        .filter(|l| l.contains(" ev/s"))
        .collect();
    assert!(!bars.is_empty(), "no progress shown: {stderr}");
    for line in bars {
        assert!(
            line.trim_start().starts_with("generation"),
            "a log line shares a line with the bar: {line:?}"
        );
    }
    assert!(
        stderr.contains("100.0%"),
        "the bar does not end at 100%: {stderr}"
    );
}
