//! The read side's figures, in one run (`cargo bench -p tests --bench inbox`):
//!
//! 1. a generated log of about a million events: 100,000 threads, 10,000
//!    staff in 500 teams with automatic CC, 20,000 patients;
//! 2. the rebuild rate of the inbox projection over it, in events/s, beside
//!    a raw set-based PostgreSQL insert of as many message-shaped rows
//!    (`unnest`, same batch size, same indexes), measured the same way;
//! 3. my-inbox and thread query latency (p50/p99) through the gRPC API;
//! 4. projection lag (append acknowledged → applied) p99 while 5,000
//!    events/s are appended.
//!
//! Environment: `NATS_URL`, `DATABASE_URL` (a server to create databases
//! on), `BENCH_SCALE` (1.0 = the sizes above), `BENCH_BATCH` (2000),
//! `BENCH_KEEP` (leave the database and stream behind, for EXPLAIN).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use careline_client::bearer::Bearer;
use event_store::testing::{TestStream, bench_setting, message};
use event_store::world::{Spec, append, generate};
use event_store::{AggregateRef, EventStore};
use inbox_service::InboxProjection;
use projections::RunnerConfig;
use projections::testing::TestDatabase;
use proto::events::AggregateType;
use proto::inbox as pb;
use service_kit::{Caller, Role};
use tonic::transport::Channel;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let scale: f64 = bench_setting("BENCH_SCALE", 1.0);
    let batch: usize = bench_setting("BENCH_BATCH", 2000);
    let spec = Spec::benchmark(scale);

    // 1. The log.
    let stream = TestStream::new("inboxbench").await;
    let log = generate(spec, Duration::from_secs(30 * 86_400));
    let events = log.len();
    println!(
        "inbox benchmark: {events} events ({} threads, {} staff in {} teams, {} patients), batches of {batch}",
        spec.threads,
        spec.teams * spec.staff_per_team,
        spec.teams,
        spec.patients
    );
    let started = Instant::now();
    let world = append(stream.store(), log, 64).await;
    println!(
        "appended in {:.1} s ({:.0} events/s)",
        started.elapsed().as_secs_f64(),
        events as f64 / started.elapsed().as_secs_f64()
    );

    // The log alone: subscribe and decode every event.
    let started = Instant::now();
    let mut feed = stream.store().subscribe(1).await.unwrap();
    for _ in 0..events {
        futures::StreamExt::next(&mut feed).await.unwrap().unwrap();
    }
    drop(feed);
    println!(
        "reading the log (subscribe, decode): {:.0} events/s",
        events as f64 / started.elapsed().as_secs_f64()
    );

    // 2. Rebuild vs raw set-based inserts.
    let db = TestDatabase::new("inboxbench").await;
    let config = RunnerConfig::new(db.url.clone(), batch);
    let report = projections::rebuild(
        Arc::new(InboxProjection),
        stream.store().clone(),
        config,
        |_| {},
    )
    .await
    .unwrap();
    let rebuild_rate = report.events as f64 / report.elapsed.as_secs_f64();
    let rows = rows_written(&db.url).await;
    let raw_rate = raw_insert_rate(&db.url, events, batch).await;
    println!();
    println!(
        "rebuild of the inbox:                {rebuild_rate:>9.0} events/s ({} events in {:.1} s)",
        report.events,
        report.elapsed.as_secs_f64()
    );
    println!("raw set-based INSERT (unnest):       {raw_rate:>9.0} rows/s");
    println!(
        "rebuild / raw:                       {:>9.1}%",
        100.0 * rebuild_rate / raw_rate
    );
    let row_rate = rows as f64 / report.elapsed.as_secs_f64();
    println!(
        "rows the rebuild wrote: {rows} ({:.1} per event), {row_rate:.0} rows/s = {:.1}% of the raw row rate",
        rows as f64 / report.events as f64,
        100.0 * row_rate / raw_rate
    );

    if std::env::var("BENCH_KEEP").is_ok() {
        println!(
            "keeping database {} and stream {} (BENCH_KEEP)",
            db.name,
            stream.config().stream
        );
    }

    // 3. Queries through the API, with reads recorded (as deployed) and,
    //    interleaved, through a second service that does not record them.
    let keys = service_kit::test_issuer();
    let samples = 2000;
    // [recorded, not recorded] × [my inbox, one thread]; one service at a
    // time (two live runners on one projection would contend), the one that
    // records reads last, as deployed, staying up for the lag measurement.
    let mut times: [[Vec<Duration>; 2]; 2] = Default::default();
    let mut listed = 0usize;
    let mut serving = None;
    for recorded in [false, true] {
        let mut config = testkit::inbox_config(&db, &stream, Duration::from_secs(5));
        config.read.batch_size = 1000;
        config.read.pool_size = 8;
        config.record_reads = recorded;
        let app = inbox_service::Application::with_store(config, stream.store().clone())
            .await
            .unwrap();
        let addr = app.local_addr();
        let checkpoint = app.checkpoint();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(app.run(async {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let client = |who: uuid::Uuid| {
            let caller = Caller {
                person_id: who,
                role: Role::Professional,
                name: "Bench".into(),
            };
            pb::inbox_service_client::InboxServiceClient::with_interceptor(
                channel.clone(),
                Bearer::new(&keys.mint(&caller, Duration::from_secs(3600))).unwrap(),
            )
        };
        let head = stream.store().last_position().await.unwrap();
        let mut at = checkpoint.clone();
        at.wait_for(|&c| c >= head).await.unwrap();

        let mode = usize::from(!recorded);
        for i in 0..samples {
            let team = (i * 7919) % world.teams.len();
            let staff = world.staff[team][i % world.staff[team].len()];
            let mut inbox = client(staff);
            let sent = Instant::now();
            let page = inbox
                .my_inbox(pb::MyInboxRequest::default())
                .await
                .unwrap()
                .into_inner();
            times[mode][0].push(sent.elapsed());
            listed += page.threads.len();

            let (thread, _, thread_team) = world.threads[(i * 104_729) % world.threads.len()];
            let mut reader = client(world.staff[thread_team][0]);
            let sent = Instant::now();
            let detail = reader
                .get_thread(pb::GetThreadRequest {
                    min_position: 0,
                    thread_id: thread.to_string(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            times[mode][1].push(sent.elapsed());
            assert!(!detail.messages.is_empty());
        }
        if recorded {
            serving = Some((checkpoint, stop, running));
        } else {
            let _ = stop.send(());
            running.await.unwrap().unwrap();
        }
    }
    let (checkpoint, _stop, _running) = serving.unwrap();
    println!();
    for (recorded, label) in [
        (0, "reads recorded (as deployed)"),
        (1, "reads not recorded"),
    ] {
        for query in &mut times[recorded] {
            query.sort();
        }
        let [inbox_times, thread_times] = &times[recorded];
        println!("{label}:");
        println!(
            "  my inbox (50 per page, {:.0} threads listed on average): p50 {:.2} ms, p99 {:.2} ms",
            listed as f64 / (2 * samples) as f64,
            percentile(inbox_times, 0.5),
            percentile(inbox_times, 0.99)
        );
        println!(
            "  one thread ({} messages):                           p50 {:.2} ms, p99 {:.2} ms",
            1 + spec.replies,
            percentile(thread_times, 0.5),
            percentile(thread_times, 0.99)
        );
    }

    // 4. Lag at 5,000 events/s.
    let rate = 5_000usize;
    let seconds = 10usize;
    let writers = 50usize;
    let targets: Vec<AggregateRef> = world
        .threads
        .iter()
        .take(writers)
        .map(|(t, _, _)| AggregateRef::new(AggregateType::Thread, t.to_string()).unwrap())
        .collect();
    let applied = Arc::new(std::sync::Mutex::new(Vec::<(u64, Instant)>::new()));
    {
        let applied = applied.clone();
        let mut watch = checkpoint.clone();
        tokio::spawn(async move {
            while watch.changed().await.is_ok() {
                let c = *watch.borrow();
                applied.lock().unwrap().push((c, Instant::now()));
            }
        });
    }
    let mut appended: Vec<(u64, Instant)> = Vec::with_capacity(rate * seconds);
    let tasks: Vec<_> = targets
        .into_iter()
        .map(|thread| {
            let store = stream.store().clone();
            tokio::spawn(async move {
                let mut version = store.version(&thread).await.unwrap();
                let mut out = Vec::new();
                let mut ticker =
                    tokio::time::interval(Duration::from_secs_f64(writers as f64 / rate as f64));
                for _ in 0..(rate * seconds / writers) {
                    ticker.tick().await;
                    let mut event = message(&thread, "lag probe");
                    event.occurred_at = Some(SystemTime::now().into());
                    version = store.append(&event, version).await.unwrap().position;
                    out.push((version, Instant::now()));
                }
                out
            })
        })
        .collect();
    let started = Instant::now();
    for task in tasks {
        appended.extend(task.await.unwrap());
    }
    let achieved = appended.len() as f64 / started.elapsed().as_secs_f64();
    let last = appended.iter().map(|a| a.0).max().unwrap();
    let mut at = checkpoint.clone();
    at.wait_for(|&c| c >= last).await.unwrap();
    let caught_up = Instant::now();
    // The watch keeps only the newest value: the recorder may not have seen
    // the last one yet.
    let mut applied = applied.lock().unwrap().clone();
    applied.push((last, caught_up));
    let mut lags: Vec<Duration> = appended
        .iter()
        .map(|(position, acked)| {
            let i = applied.partition_point(|(c, _)| c < position);
            applied[i].1.saturating_duration_since(*acked)
        })
        .collect();
    lags.sort();
    println!();
    println!(
        "projection lag at {achieved:.0} events/s appended: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().unwrap().as_secs_f64() * 1000.0
    );
    if std::env::var("BENCH_KEEP").is_ok() {
        std::mem::forget(db);
        std::mem::forget(stream);
    }
}

/// Rows in the inbox tables (each written at least once by the rebuild).
async fn rows_written(url: &str) -> u64 {
    let client = projections::connect(url).await.unwrap();
    let mut total = 0u64;
    for table in inbox_service::projection::TABLES {
        let n: i64 = client
            .query_one(format!("SELECT count(*) FROM inbox.{table}").as_str(), &[])
            .await
            .unwrap()
            .get(0);
        total += n as u64;
    }
    total
}

/// Rows/s for `rows` message-shaped rows inserted with `unnest`, `batch`
/// per transaction, into a table with the inbox's messages indexes.
async fn raw_insert_rate(url: &str, rows: usize, batch: usize) -> f64 {
    let mut client = projections::connect(url).await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE raw_messages (thread_id uuid NOT NULL, seq integer NOT NULL, message_id uuid NOT NULL UNIQUE, \
             author_id uuid NOT NULL, author_role text NOT NULL, body text NOT NULL, posted_at timestamptz NOT NULL, \
             position bigint NOT NULL, PRIMARY KEY (thread_id, seq))",
        )
        .await
        .unwrap();
    let threads: Vec<uuid::Uuid> = (0..rows / 10 + 1).map(|_| uuid::Uuid::now_v7()).collect();
    let started = Instant::now();
    let mut done = 0usize;
    while done < rows {
        let size = batch.min(rows - done);
        let mut c = (
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        );
        for i in done..done + size {
            c.0.push(threads[i / 10]);
            c.1.push((i % 10) as i32 + 1);
            c.2.push(uuid::Uuid::now_v7());
            c.3.push(threads[i / 10]);
            c.4.push("professional");
            c.5.push("Reply 3: please take it with food and keep a diary.");
            c.6.push(SystemTime::now());
            c.7.push(i as i64);
        }
        let tx = client.transaction().await.unwrap();
        // As the projection's batches do.
        tx.batch_execute("SET LOCAL synchronous_commit TO off")
            .await
            .unwrap();
        tx.execute(
            "INSERT INTO raw_messages SELECT * FROM unnest($1::uuid[], $2::int4[], $3::uuid[], $4::uuid[], \
             $5::text[], $6::text[], $7::timestamptz[], $8::int8[])",
            &[&c.0, &c.1, &c.2, &c.3, &c.4, &c.5, &c.6, &c.7],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        done += size;
    }
    rows as f64 / started.elapsed().as_secs_f64()
}
