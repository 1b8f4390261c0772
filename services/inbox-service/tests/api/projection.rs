//! The inbox projection's correctness under crashes, races and replay:
//! every way of getting to the end of the log yields the same tables.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_store::testing::TestStream;
use event_store::world::{Spec, append, generate};
use event_store::{EventStore, JetStreamStore};
use inbox_service::InboxProjection;
use inbox_service::projection::TABLES;
use projections::testing::TestDatabase;
use projections::{Mode, Runner, RunnerConfig};

use crate::support::issuer;

const SPEC: Spec = Spec {
    teams: 6,
    staff_per_team: 4,
    patients: 60,
    threads: 400,
    replies: 12,
    busy_team_threads: 0,
};

/// Every inbox table as text, row by row, in a stable order.
async fn dump(url: &str) -> Vec<(String, String)> {
    let client = projections::connect(url).await.unwrap();
    let mut out = Vec::new();
    for table in TABLES {
        let rows: String = client
            .query_one(
                &format!("SELECT coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '') FROM inbox.{table} x"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        out.push((table.to_string(), rows));
    }
    out
}

async fn checkpoint(url: &str) -> u64 {
    let Ok(client) = projections::connect(url).await else {
        return 0;
    };
    client
        .query_opt(
            "SELECT c.position FROM careline_projections.projection_checkpoints c \
             JOIN careline_projections.projection_generations g ON g.name = c.name AND g.live_generation = c.generation \
             WHERE c.name = 'inbox'",
            &[],
        )
        .await
        .ok()
        .flatten()
        .map_or(0, |r| r.get::<_, i64>(0) as u64)
}

/// Applies the whole log in this process, uninterrupted.
async fn reference_run(store: &JetStreamStore, db: &TestDatabase) {
    let runner = Runner::new(
        Arc::new(InboxProjection),
        store.clone(),
        RunnerConfig::new(db.url.clone(), 500),
        Mode::Live,
    );
    let head = store.last_position().await.unwrap();
    let mut at = runner.checkpoint();
    let run = runner.run(async move {
        let _ = at.wait_for(|&c| c >= head).await;
    });
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap();
}

/// The inbox binary, and the port it serves on.
struct Inbox(Child, u16);

impl Inbox {
    fn start(stream: &TestStream, db: &TestDatabase) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_careline-inbox"))
            .env("NATS_URL", &stream.config().nats_url)
            .env("CARELINE_STREAM", &stream.config().stream)
            .env("CARELINE_PREFIX", &stream.config().prefix)
            .envs(event_store::testing::signing_env())
            .env("DATABASE_URL", &db.url)
            .env(service_kit::auth::PUBLIC_KEYS_VAR, issuer().public_key())
            .env("CARELINE_INBOX_ADDR", format!("127.0.0.1:{port}"))
            // Small batches: many transactions for the kill to land in.
            .env("CARELINE_INBOX_BATCH", "20")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start careline-inbox");
        Inbox(child, port)
    }

    fn kill(&mut self) {
        // SIGKILL: no chance to finish anything.
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_killed_mid_run_resumes_to_the_same_tables() {
    let stream = TestStream::new("sigkill").await;
    let log = generate(SPEC, Duration::from_secs(86_400));
    let events = log.len() as u64;
    append(stream.store(), log, 16).await;
    let head = stream.store().last_position().await.unwrap();
    assert_eq!(head, events);

    let killed = TestDatabase::new("sigkill").await;
    let mut inbox = Inbox::start(&stream, &killed);
    wait_until("some progress", Duration::from_secs(30), async || {
        checkpoint(&killed.url).await > head / 10
    })
    .await;
    inbox.kill();
    let at_kill = checkpoint(&killed.url).await;
    assert!(
        at_kill < head,
        "the projection finished before it could be killed ({at_kill} of {head})"
    );

    let _restarted = Inbox::start(&stream, &killed);
    wait_until(
        "catching up after the restart",
        Duration::from_secs(60),
        async || checkpoint(&killed.url).await == head,
    )
    .await;

    let uninterrupted = TestDatabase::new("sigkillref").await;
    reference_run(stream.store(), &uninterrupted).await;
    let (a, b) = (dump(&killed.url).await, dump(&uninterrupted.url).await);
    for ((table, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "table {table} differs after the kill");
    }
    assert!(
        a.iter()
            .any(|(t, rows)| t == "messages" && rows.lines().count() == 400 * 13)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_at_once_apply_each_batch_once() {
    let stream = TestStream::new("tworunners").await;
    append(
        stream.store(),
        generate(
            Spec {
                threads: 150,
                ..SPEC
            },
            Duration::from_secs(3600),
        ),
        16,
    )
    .await;
    let head = stream.store().last_position().await.unwrap();
    let raced = TestDatabase::new("raced").await;
    let runner = || {
        Arc::new(Runner::new(
            Arc::new(InboxProjection),
            stream.store().clone(),
            RunnerConfig::new(raced.url.clone(), 37),
            Mode::Live,
        ))
    };
    let (a, b) = (runner(), runner());
    let run = |r: Arc<Runner<InboxProjection, JetStreamStore>>| async move {
        let mut at = r.checkpoint();
        let mut stop = at.clone();
        let _ = &mut at;
        r.run(async move {
            let _ = stop.wait_for(|&c| c >= head).await;
        })
        .await
    };
    // Both stop once their own view of the checkpoint reaches the head; the
    // loser of a race re-reads it, so both get there.
    let (ra, rb) = tokio::join!(run(a), run(b));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(checkpoint(&raced.url).await, head);

    let single = TestDatabase::new("single").await;
    reference_run(stream.store(), &single).await;
    assert_eq!(dump(&raced.url).await, dump(&single.url).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_yields_exactly_the_live_tables() {
    let stream = TestStream::new("inboxrebuild").await;
    append(
        stream.store(),
        generate(
            Spec {
                threads: 200,
                ..SPEC
            },
            Duration::from_secs(3600),
        ),
        16,
    )
    .await;
    let db = TestDatabase::new("inboxrebuild").await;
    reference_run(stream.store(), &db).await;
    let live = dump(&db.url).await;

    let config = RunnerConfig::new(db.url.clone(), 1000);
    let report = projections::rebuild(
        Arc::new(InboxProjection),
        stream.store().clone(),
        config,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!((report.generation, report.replaced), (2, 1));
    assert_eq!(dump(&db.url).await, live);
}

/// A drill: two inbox processes on one database, the first leading (it
/// holds the projection's lock), the second standing by, while the log
/// keeps growing (a second world appended as they run). The leader is
/// killed with SIGKILL mid-load: the standby takes the lock over and
/// carries on to the head, and the tables equal an uninterrupted run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_runner_killed_under_load_leaves_the_standby_to_finish() {
    let stream = TestStream::new("standby").await;
    append(
        stream.store(),
        generate(SPEC, Duration::from_secs(86_400)),
        16,
    )
    .await;
    let first = stream.store().last_position().await.unwrap();
    let db = TestDatabase::new("standby").await;
    let mut leader = Inbox::start(&stream, &db);
    wait_until(
        "the leader's progress",
        Duration::from_secs(30),
        async || checkpoint(&db.url).await > first / 10,
    )
    .await;
    let _standby = Inbox::start(&stream, &db);

    // The load: more events appended while they run.
    let store = stream.store().clone();
    let more = tokio::spawn(async move {
        append(&store, generate(SPEC, Duration::from_secs(3_600)), 4).await;
    });
    wait_until("the load under way", Duration::from_secs(30), async || {
        stream.store().last_position().await.unwrap() > first + first / 4
    })
    .await;
    leader.kill();
    let killed = Instant::now();
    let at_kill = checkpoint(&db.url).await;
    wait_until(
        "the standby taking over",
        Duration::from_secs(30),
        async || checkpoint(&db.url).await > at_kill,
    )
    .await;
    let took_over = killed.elapsed();
    more.await.unwrap();
    let head = stream.store().last_position().await.unwrap();
    wait_until(
        "the standby reaching the head",
        Duration::from_secs(120),
        async || checkpoint(&db.url).await == head,
    )
    .await;
    let finished = killed.elapsed();

    let uninterrupted = TestDatabase::new("standbyref").await;
    reference_run(stream.store(), &uninterrupted).await;
    let (a, b) = (dump(&db.url).await, dump(&uninterrupted.url).await);
    println!(
        "standby drill: {head} events ({} appended during the run); leader SIGKILLed at checkpoint \
         {at_kill}; the standby moved the checkpoint on {:.2} s later and reached the head {:.2} s \
         after the kill; tables equal to an uninterrupted run: {}",
        head - first,
        took_over.as_secs_f64(),
        finished.as_secs_f64(),
        a == b
    );
    for ((table, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "table {table} differs after the takeover");
    }
    assert!(at_kill < head, "the leader finished before it was killed");
}

/// A rolling deploy sends SIGTERM: with patients' pages open (their live
/// `Watch` streams), the inbox ends the streams at once (the pages
/// reconnect to another instance) and stops, instead of waiting until
/// every page is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn told_to_stop_with_live_pages_open_it_stops_at_once() {
    use proto::inbox as pb;
    let stream = TestStream::new("sigterm").await;
    let log = generate(SPEC, Duration::from_secs(86_400));
    let patients: Vec<_> = log.world.patients.iter().take(3).copied().collect();
    append(stream.store(), log, 16).await;
    let head = stream.store().last_position().await.unwrap();
    let db = TestDatabase::new("sigterm").await;
    let mut inbox = Inbox::start(&stream, &db);
    wait_until(
        "the inbox caught up",
        Duration::from_secs(120),
        async || checkpoint(&db.url).await >= head,
    )
    .await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", inbox.1).parse().unwrap();
    let mut watches = Vec::new();
    for patient in patients {
        let caller = service_kit::Caller {
            person_id: patient,
            role: service_kit::Role::Patient,
            name: "A patient".into(),
        };
        let token = issuer().mint(&caller, Duration::from_secs(300));
        let mut request = tonic::Request::new(pb::WatchRequest { max_seconds: 600 });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let mut client = proto::inbox::inbox_service_client::InboxServiceClient::new(
            crate::support::channel(addr).await,
        );
        watches.push(client.watch(request).await.unwrap().into_inner());
    }

    let started = Instant::now();
    let sent = Command::new("kill")
        .args(["-TERM", &inbox.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut stopped = None;
    while started.elapsed() < Duration::from_secs(15) {
        if inbox.0.try_wait().unwrap().is_some() {
            stopped = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = stopped.expect("the inbox did not stop within 15 s of SIGTERM");
    for watch in &mut watches {
        let ended = tokio::time::timeout(Duration::from_secs(2), watch.message()).await;
        assert!(
            matches!(ended, Ok(Ok(None) | Err(_))),
            "a watch went on after the service stopped: {ended:?}"
        );
    }
    println!("inbox told to stop with 3 live watches open: stopped in {stopped:?}");
    assert!(
        stopped < Duration::from_secs(3),
        "with live watches open the inbox stopped in {stopped:?}"
    );
}
