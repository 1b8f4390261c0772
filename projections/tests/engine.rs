//! The engine against the real NATS and PostgreSQL, with a tiny projection
//! that records every message once (its primary key refuses a second time).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use event_store::testing::{JUNK, TestStream, envelope, message, new_thread, publish_junk};
use event_store::{AggregateRef, EventStore, JetStreamStore, RecordedEvent};
use projections::testing::TestDatabase;
use projections::tokio_postgres::Transaction;
use projections::{Error, Mode, Projection, Runner, RunnerConfig};
use proto::events::envelope::Payload;
use proto::events::{AggregateType, TeamCreated};
use tokio::sync::watch;

mod seen_migrations {
    projections::refinery::embed_migrations!("tests/seen_migrations");
}

struct Seen;

/// A message body the projection cannot apply.
const REFUSED: &str = "cannot apply this";

impl Projection for Seen {
    fn name(&self) -> &'static str {
        "seen"
    }
    fn migrations(&self) -> projections::refinery::Runner {
        seen_migrations::migrations::runner()
    }
    fn tables(&self) -> &'static [&'static str] {
        &["seen"]
    }
    fn deferred_indexes(&self) -> &'static [&'static str] {
        &["seen_body"]
    }
    /// Only messages: a team event is passed over.
    fn concerns(&self, event: &RecordedEvent) -> bool {
        matches!(event.envelope.payload, Some(Payload::MessagePosted(_)))
    }
    async fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        events: &'a [RecordedEvent],
    ) -> Result<(), Error> {
        for event in events {
            if let Some(Payload::MessagePosted(m)) = &event.envelope.payload {
                if m.body == REFUSED {
                    return Err(Error::Apply {
                        projection: "seen".into(),
                        position: event.position,
                        message: "a message this projection refuses".into(),
                    });
                }
                tx.execute(
                    "INSERT INTO seen (position, body) VALUES ($1, $2)",
                    &[&(event.position as i64), &m.body],
                )
                .await?;
            }
        }
        Ok(())
    }
}

struct World {
    stream: TestStream,
    db: TestDatabase,
}

async fn world(label: &str) -> World {
    World {
        stream: TestStream::new(label).await,
        db: TestDatabase::new(label).await,
    }
}

impl World {
    fn store(&self) -> JetStreamStore {
        self.stream.store().clone()
    }

    fn config(&self) -> RunnerConfig {
        RunnerConfig::new(self.db.url.clone(), 50)
    }

    fn live_runner(&self) -> Arc<Runner<Seen, JetStreamStore>> {
        Arc::new(Runner::new(
            Arc::new(Seen),
            self.store(),
            self.config(),
            Mode::Live,
        ))
    }

    /// Appends `n` messages on one thread and a team event after each
    /// tenth (which the projection ignores). Returns the message positions.
    async fn append(&self, n: usize) -> Vec<u64> {
        let store = self.store();
        let thread = new_thread();
        let mut version = store.version(&thread).await.unwrap();
        let mut positions = Vec::new();
        for i in 0..n {
            version = store
                .append(&message(&thread, &format!("message {i}")), version)
                .await
                .unwrap()
                .position;
            positions.push(version);
            if i % 10 == 9 {
                let team = AggregateRef::new(AggregateType::Team, uuid::Uuid::now_v7().to_string())
                    .unwrap();
                store
                    .append(
                        &envelope(
                            &team,
                            Payload::TeamCreated(TeamCreated {
                                team_id: team.id().into(),
                                name: "Team".into(),
                                description: String::new(),
                            }),
                        ),
                        0,
                    )
                    .await
                    .unwrap();
            }
        }
        positions
    }

    async fn seen(&self) -> Vec<(i64, String)> {
        let client = projections::connect(&self.db.url).await.unwrap();
        pairs(
            &client,
            "SELECT position, body FROM seen.seen ORDER BY position",
        )
        .await
    }

    /// Runs a live runner until it reaches the log's head, and stops it;
    /// answers the head.
    async fn live_to_head(&self) -> u64 {
        let runner = self.live_runner();
        let (stop, task) = spawn(&runner);
        let head = self.store().last_position().await.unwrap();
        until_at(runner.checkpoint(), head).await;
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        head
    }

    /// Waits (20 s at most) until the checkpoints are `expected`.
    async fn until_checkpoints(&self, expected: Vec<(i32, i64)>, failure: &str) {
        tokio::time::timeout(Duration::from_secs(20), async {
            while self.checkpoints().await != expected {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect(failure);
    }

    /// The checkpoint of every generation (none before a runner has
    /// prepared the engine's tables).
    async fn checkpoints(&self) -> Vec<(i32, i64)> {
        let client = projections::connect(&self.db.url).await.unwrap();
        let prepared: bool = client
            .query_one(
                "SELECT to_regclass('careline_projections.projection_checkpoints') IS NOT NULL",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if !prepared {
            return Vec::new();
        }
        pairs(
            &client,
            "SELECT generation, position FROM careline_projections.projection_checkpoints WHERE name = 'seen' ORDER BY generation",
        )
        .await
    }
}

/// The rows of a two-column query, as pairs.
async fn pairs<A, B>(client: &tokio_postgres::Client, sql: &str) -> Vec<(A, B)>
where
    A: for<'a> tokio_postgres::types::FromSql<'a>,
    B: for<'a> tokio_postgres::types::FromSql<'a>,
{
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Whether generation `generation` has the readers' index, and how many
/// indexes the engine still has to rebuild.
async fn indexes(w: &World, generation: i32) -> (bool, i64) {
    let client = projections::connect(&w.db.url).await.unwrap();
    let present: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("seen_g{generation}.seen_body")],
        )
        .await
        .unwrap()
        .get(0);
    let deferred: i64 = client
        .query_one(
            "SELECT count(*) FROM careline_projections.deferred_indexes",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (present, deferred)
}

async fn until_at(mut checkpoint: watch::Receiver<u64>, target: u64) {
    tokio::time::timeout(
        Duration::from_secs(20),
        checkpoint.wait_for(|&c| c >= target),
    )
    .await
    .expect("the projection did not catch up within 20 s")
    .unwrap();
}

fn spawn(
    runner: &Arc<Runner<Seen, JetStreamStore>>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), Error>>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = runner.clone();
    let task = tokio::spawn(async move {
        runner
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_live_runner_stands_by_follows_and_takes_over() {
    let w = world("standby").await;
    w.append(20).await;
    let a = w.live_runner();
    let (stop_a, task_a) = spawn(&a);
    let head = w.store().last_position().await.unwrap();
    until_at(a.checkpoint(), head).await;

    // The second runner applies nothing, but its checkpoint follows.
    let b = w.live_runner();
    let (stop_b, task_b) = spawn(&b);
    until_at(b.checkpoint(), head).await;
    w.append(10).await;
    let head = w.store().last_position().await.unwrap();
    until_at(b.checkpoint(), head).await;

    // The leader stops: the standby takes over and applies what follows.
    stop_a.send(()).unwrap();
    task_a.await.unwrap().unwrap();
    w.append(10).await;
    let head = w.store().last_position().await.unwrap();
    until_at(b.checkpoint(), head).await;
    assert_eq!(w.checkpoints().await, vec![(1, head as i64)]);
    stop_b.send(()).unwrap();
    task_b.await.unwrap().unwrap();
    assert_eq!(w.seen().await.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_every_event_once_and_the_checkpoint_moves_over_ignored_ones() {
    let w = world("apply").await;
    let positions = w.append(95).await;
    let runner = w.live_runner();
    let (stop, task) = spawn(&runner);
    let head = w.store().last_position().await.unwrap();
    until_at(runner.checkpoint(), head).await;
    // More events while it runs.
    let more = w.append(15).await;
    let head = w.store().last_position().await.unwrap();
    until_at(runner.checkpoint(), head).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();

    let seen = w.seen().await;
    let expected: Vec<i64> = positions.iter().chain(&more).map(|&p| p as i64).collect();
    assert_eq!(seen.iter().map(|r| r.0).collect::<Vec<_>>(), expected);
    // The last events are ignored team events: the checkpoint covers them too.
    assert_eq!(w.checkpoints().await, vec![(1, head as i64)]);
}

/// Events of no concern (team events here) cost no transaction: the
/// checkpoint moves over them at once in memory, and reaches the database
/// when the log goes quiet, within `PASSED_OVER_SETTLE`, where a standby
/// runner sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_no_concern_are_passed_over_and_their_checkpoint_settles() {
    let w = world("passover").await;
    let positions = w.append(10).await;
    let runner = w.live_runner();
    let (stop, task) = spawn(&runner);
    until_at(runner.checkpoint(), *positions.last().unwrap()).await;
    let standby = w.live_runner();
    let (stop_standby, standby_task) = spawn(&standby);
    // Nothing but team events now.
    let store = w.store();
    for _ in 0..20 {
        let team =
            AggregateRef::new(AggregateType::Team, uuid::Uuid::now_v7().to_string()).unwrap();
        let created = Payload::TeamCreated(TeamCreated {
            team_id: team.id().into(),
            name: "Team".into(),
            description: String::new(),
        });
        store.append(&envelope(&team, created), 0).await.unwrap();
    }
    let head = store.last_position().await.unwrap();
    until_at(runner.checkpoint(), head).await;
    let waited = std::time::Instant::now();
    while w.checkpoints().await != vec![(1, head as i64)] {
        assert!(
            waited.elapsed() < projections::PASSED_OVER_SETTLE + Duration::from_secs(2),
            "the database's checkpoint did not reach the passed-over events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until_at(standby.checkpoint(), head).await;
    stop.send(()).unwrap();
    stop_standby.send(()).unwrap();
    task.await.unwrap().unwrap();
    standby_task.await.unwrap().unwrap();
    let seen: Vec<i64> = w.seen().await.iter().map(|r| r.0).collect();
    let expected: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_on_one_projection_never_apply_a_batch_twice() {
    let w = world("tworunners").await;
    w.append(40).await;
    let a = w.live_runner();
    let b = w.live_runner();
    let (stop_a, task_a) = spawn(&a);
    let (stop_b, task_b) = spawn(&b);
    let writer = {
        let w_store = w.store();
        tokio::spawn(async move {
            let thread = new_thread();
            let mut version = 0;
            for i in 0..300 {
                version = w_store
                    .append(&message(&thread, &format!("late {i}")), version)
                    .await
                    .unwrap()
                    .position;
            }
        })
    };
    writer.await.unwrap();
    let head = w.store().last_position().await.unwrap();
    // Whichever runner wins each batch, the checkpoint reaches the head.
    w.until_checkpoints(vec![(1, head as i64)], "did not reach the head")
        .await;
    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    // A second application would have hit the primary key and failed a runner.
    task_a.await.unwrap().unwrap();
    task_b.await.unwrap().unwrap();
    assert_eq!(w.seen().await.len(), 340);
}

#[tokio::test]
async fn a_checkpoint_beyond_the_end_of_the_log_stops_the_projection() {
    let w = world("losttail").await;
    w.append(5).await;
    let head = w.live_to_head().await;

    // The log "lost its tail": the projection is further than the log.
    let client = projections::connect(&w.db.url).await.unwrap();
    client
        .execute(
            "UPDATE careline_projections.projection_checkpoints SET position = position + 100",
            &[],
        )
        .await
        .unwrap();
    let result = w.live_runner().run(std::future::pending()).await;
    match result {
        Err(Error::LogLostTail {
            checkpoint,
            head: at,
            ..
        }) => {
            assert_eq!(checkpoint, head + 100);
            assert_eq!(at, head);
        }
        other => panic!("expected LogLostTail, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_reproduces_the_live_tables_while_the_live_one_serves_and_follows() {
    let w = world("rebuild").await;
    w.append(120).await;
    let live = w.live_runner();
    let (stop, task) = spawn(&live);
    let head = w.store().last_position().await.unwrap();
    until_at(live.checkpoint(), head).await;
    let before = w.seen().await;

    let mut reports = Vec::new();
    let report = projections::rebuild(Arc::new(Seen), w.store(), w.config(), |p| reports.push(*p))
        .await
        .unwrap();
    assert_eq!(
        (report.generation, report.replaced, report.resumed),
        (2, 1, false)
    );
    assert_eq!(report.events, head);
    assert!(
        reports
            .last()
            .is_some_and(|p| p.done == head && p.total == head)
    );
    assert_eq!(
        w.seen().await,
        before,
        "the rebuilt tables differ from the live ones"
    );
    assert_eq!(w.checkpoints().await, vec![(2, head as i64)]);
    assert_eq!(
        indexes(&w, 2).await,
        (true, 0),
        "the deferred index was not rebuilt"
    );

    // The live runner follows the switch: new events land in generation 2.
    w.append(7).await;
    let head = w.store().last_position().await.unwrap();
    w.until_checkpoints(
        vec![(2, head as i64)],
        "the live runner did not follow the switch",
    )
    .await;
    assert_eq!(w.seen().await.len(), before.len() + 7);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();

    // The old generation is gone.
    let client = projections::connect(&w.db.url).await.unwrap();
    let old: bool = client
        .query_one("SELECT to_regnamespace('seen_g1') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_rebuild_leaves_the_live_generation_and_resumes() {
    let w = world("interrupted").await;
    w.append(400).await;
    let head = w.live_to_head().await;
    let before = w.seen().await;

    // Interrupt the rebuild once it has applied something.
    let config = RunnerConfig {
        batch_size: 1,
        ..w.config()
    };
    let (progressed, mut watch_progress) = watch::channel(0u64);
    let rebuilding = projections::rebuild(Arc::new(Seen), w.store(), config.clone(), move |p| {
        progressed.send_replace(p.done);
    });
    tokio::select! {
        _ = rebuilding => panic!("the rebuild finished before it could be interrupted"),
        _ = watch_progress.wait_for(|&done| done > 50) => {}
    }
    let checkpoints = w.checkpoints().await;
    assert_eq!(
        checkpoints[0],
        (1, head as i64),
        "the live generation moved"
    );
    // Built part of the way (or all of it, but not switched).
    assert!(
        checkpoints[1].0 == 2 && checkpoints[1].1 > 50,
        "{checkpoints:?}"
    );
    assert_eq!(
        w.seen().await,
        before,
        "readers saw the half-built generation"
    );
    // The half-built generation loads without its readers' index.
    assert_eq!(indexes(&w, 2).await, (false, 1));
    assert!(indexes(&w, 1).await.0);

    let report = projections::rebuild(Arc::new(Seen), w.store(), config, |_| {})
        .await
        .unwrap();
    assert!(report.resumed);
    assert_eq!(report.generation, 2);
    assert!(report.events <= head - 50);
    assert_eq!(w.seen().await, before);
    assert_eq!(indexes(&w, 2).await, (true, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_and_impossible_events_are_set_aside_and_the_rest_is_applied() {
    let w = world("deadletters").await;
    let store = w.store();
    let before = w.append(15).await;
    // Three junk bytes straight onto a thread subject, and a message the
    // projection refuses, in the middle of the log.
    let thread = new_thread();
    let junk = publish_junk(&store, &thread).await;
    let refused = store
        .append(&message(&new_thread(), REFUSED), 0)
        .await
        .unwrap()
        .position;
    let after = w.append(15).await;

    let runner = w.live_runner();
    let (stop, task) = spawn(&runner);
    let head = store.last_position().await.unwrap();
    until_at(runner.checkpoint(), head).await;
    // Every good message is there, before and after the bad ones.
    let seen: Vec<i64> = w.seen().await.iter().map(|(p, _)| *p).collect();
    let good: Vec<i64> = before.iter().chain(&after).map(|p| *p as i64).collect();
    assert_eq!(seen, good);

    let client = projections::connect(&w.db.url).await.unwrap();
    let letters = projections::dead_letters(&client, "seen").await.unwrap();
    assert_eq!(
        letters.iter().map(|l| l.position).collect::<Vec<_>>(),
        vec![junk, refused]
    );
    assert_eq!(letters[0].bytes, JUNK);
    assert!(letters[0].reason.starts_with("undecodable"), "{letters:?}");
    assert_eq!(letters[1].event_type, "MessagePosted");
    assert!(letters[1].reason.contains("refuses"), "{letters:?}");
    let status = projections::status(&client).await.unwrap();
    assert_eq!(status[0].dead_letters, 2);

    // A rebuild sets the same events aside in its own generation.
    projections::rebuild(Arc::new(Seen), store.clone(), w.config(), |_| {})
        .await
        .unwrap();
    let rebuilt = projections::dead_letters(&client, "seen").await.unwrap();
    assert_eq!(rebuilt, letters);
    assert_eq!(
        projections::status(&client).await.unwrap()[0].dead_letters,
        2
    );
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
