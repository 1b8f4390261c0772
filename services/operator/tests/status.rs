//! `careline status` tells an operator on call what is wrong, and says so
//! in its exit status: a projection that nothing runs (its service down),
//! and the read models' database unreachable, are failures, not "lag 0".

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use event_store::StoreConfig;
use testkit::{Services, System};

/// `careline status` against `config` and `database`: (success, stdout, stderr).
async fn status(config: &StoreConfig, database: &str) -> (bool, String, String) {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_careline"))
        .arg("status")
        .env("NATS_URL", &config.nats_url)
        .env("CARELINE_STREAM", &config.stream)
        .env("CARELINE_PREFIX", &config.prefix)
        .envs(event_store::testing::signing_env())
        .env("DATABASE_URL", database)
        .env("RUST_LOG", "warn")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("careline status answers within 60 s")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_whether_each_projection_runs_and_fails_when_something_is_wrong() {
    let s = System::start(
        "clistatus",
        Services {
            inbox: true,
            ..Default::default()
        },
    )
    .await;
    let config = s.stream.config();

    // The inbox service runs: all well, exit 0.
    let mut last = (false, String::new(), String::new());
    for _ in 0..100 {
        last = status(config, &s.db.url).await;
        if last.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, stdout, stderr) = last;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("inbox      running"), "{stdout}");
    assert!(
        stdout.contains(
            "signatures     checked from position 1 against command: test-command; reads: test-reads"
        ),
        "{stdout}"
    );

    // The same projection's tables with nothing running them (a database
    // its service is not connected to): NOT RUNNING, and a failure.
    let stopped = projections::testing::TestDatabase::new("clistatusstopped").await;
    let rebuild = tokio::process::Command::new(env!("CARGO_BIN_EXE_careline"))
        .args(["rebuild", "inbox"])
        .env("NATS_URL", &config.nats_url)
        .env("CARELINE_STREAM", &config.stream)
        .env("CARELINE_PREFIX", &config.prefix)
        .envs(event_store::testing::signing_env())
        .env("DATABASE_URL", &stopped.url)
        .output();
    let rebuilt = tokio::time::timeout(Duration::from_secs(120), rebuild)
        .await
        .unwrap()
        .unwrap();
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let (ok, stdout, stderr) = status(config, &stopped.url).await;
    assert!(!ok, "nothing runs the inbox projection: {stdout}");
    assert!(stdout.contains("inbox      NOT RUNNING"), "{stdout}");
    assert!(stderr.contains("nothing runs projection inbox"), "{stderr}");

    // The database unreachable: said, and a failure.
    let (ok, stdout, _) = status(config, "postgres://postgres@127.0.0.1:9/nowhere").await;
    assert!(!ok, "the database is unreachable: {stdout}");
    assert!(stdout.contains("database unreachable"), "{stdout}");
}
