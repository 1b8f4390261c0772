//! Notification benchmark: how fast notifications are queued (the notify
//! projection rebuilt over a generated log) and delivered (the worker
//! sending to a local SMTP server, aiosmtpd, as fast as it accepts).
//!
//! `BENCH_SCALE` (default 0.02: 2,000 threads of 7 messages) scales the
//! generated organisation.

// A benchmark: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_store::testing::{TestStream, bench_setting};
use event_store::world::{Spec, append, generate};
use notify_service::{Clock, NotifyProjection, Smtp, TlsMode};
use projections::RunnerConfig;
use projections::testing::TestDatabase;
use tokio::sync::watch;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn count(url: &str, sql: &str) -> i64 {
    let client = projections::connect(url).await.unwrap();
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::main]
async fn main() {
    let scale: f64 = bench_setting("BENCH_SCALE", 0.02);
    let spec = Spec::benchmark(scale);
    let stream = TestStream::new("notifybench").await;
    let log = generate(spec, Duration::from_secs(86_400));
    let events = log.len();
    append(stream.store(), log, 64).await;
    println!(
        "notification benchmark: {events} events ({} threads, {} messages each)",
        spec.threads,
        1 + spec.replies
    );

    // Queueing: the projection over the whole log.
    let db = TestDatabase::new("notifybench").await;
    let report = projections::rebuild(
        Arc::new(NotifyProjection),
        stream.store().clone(),
        RunnerConfig::new(db.url.clone(), 1000),
        |_| {},
    )
    .await
    .unwrap();
    let queued = count(&db.url, "SELECT count(*) FROM notify.notifications").await;
    let deliverable = count(
        &db.url,
        "SELECT count(*) FROM notify.notifications WHERE deliverable",
    )
    .await;
    let secs = report.elapsed.as_secs_f64();
    println!(
        "queued: {queued} notifications ({deliverable} deliverable) in {secs:.1} s: {:.0} notifications/s ({:.0} events/s)",
        queued as f64 / secs,
        report.events as f64 / secs
    );

    // Delivery to a local SMTP server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("careline-notifybench-{port}"));
    let mut sink = tokio::process::Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Sink"])
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with aiosmtpd");
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let smtp = Smtp {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        credentials: None,
        from: "Careline <no-reply@careline.test>".parse().unwrap(),
        domain: "careline.test".into(),
        base_url: "https://careline.test".into(),
        max_attempts: 8,
        backoff: Duration::from_millis(100),
        poll: Duration::from_millis(50),
        coalesce: Duration::ZERO,
        reminder_after: Duration::from_secs(7 * 86_400),
        links: None,
        link_lifetime: Duration::from_secs(24 * 3600),
    };
    let (stop, stopping) = watch::channel(false);
    let (_checkpoint_tx, checkpoint) = watch::channel(0u64);
    let started = Instant::now();
    let worker = tokio::spawn(notify_service::delivery::run(
        db.url.clone(),
        smtp,
        Clock::system(),
        checkpoint,
        stopping,
    ));
    let sent_sql = "SELECT count(*) FROM careline_notify.deliveries WHERE state = 'sent'";
    let mut sent = 0;
    for _ in 0..12_000 {
        // The worker creates the table on start.
        let client = projections::connect(&db.url).await.unwrap();
        if let Ok(row) = client.query_one(sent_sql, &[]).await {
            sent = row.get::<_, i64>(0);
            if sent >= deliverable {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = worker.await;
    let _ = sink.kill().await;
    let _ = std::fs::remove_dir_all(dir);
    let emails = count(
        &db.url,
        "SELECT count(DISTINCT message_id) FROM careline_notify.deliveries WHERE state = 'sent'",
    )
    .await;
    println!(
        "delivered: {sent} notifications as {emails} emails (one per person and thread) in {secs:.1} s: \
         {:.0} notifications/s, {:.0} emails/s",
        sent as f64 / secs,
        emails as f64 / secs
    );
}
