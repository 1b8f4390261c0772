//! Operator replay: a new generation built from position 1 beside the live
//! one (which keeps serving), then switched in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_store::{EventStore, Position};

use crate::engine::{Mode, Runner, RunnerConfig};
use crate::generations::{
    SWITCH_ATTEMPTS, defer_indexes, prepare, restore_indexes, retry_switch, switch_backoff,
    switch_locked,
};
use crate::sql::{self, generation_schema};
use crate::{Error, Projection};
use careline_pg::migrate;

/// Catching up once more is cheaper than switching this far behind: the
/// live runner would have to apply the gap on the new generation.
const SWITCH_WITHIN: Position = 1_000;

/// Where a rebuild stands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub generation: i32,
    /// The new generation's checkpoint.
    pub done: Position,
    /// The log's head when this pass started.
    pub total: Position,
    /// Events per second since the rebuild (or its resumption) began.
    pub rate: f64,
    pub eta: Option<Duration>,
}

/// What a rebuild did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RebuildReport {
    pub generation: i32,
    pub replaced: i32,
    /// Events applied by this run (a resumed rebuild counts only its own).
    pub events: Position,
    pub elapsed: Duration,
    /// Whether an interrupted rebuild of this generation was resumed.
    pub resumed: bool,
    /// How long the switch took, from asking for the live generation to
    /// readers seeing the new one (readers wait at most this long).
    pub switch: Duration,
}

/// Rebuilds `projection` from the log into a new generation and switches
/// readers to it. An interrupted rebuild leaves the live generation
/// untouched; running it again resumes where it stopped.
pub async fn rebuild<P: Projection, S: EventStore>(
    projection: Arc<P>,
    store: S,
    config: RunnerConfig,
    mut progress: impl FnMut(&Progress),
) -> Result<RebuildReport, Error> {
    let name = projection.name();
    let mut client = crate::connect(&config.database_url).await?;
    let live = prepare(&mut client, projection.as_ref()).await?;

    client.execute(sql::LOCK_PREPARE, &[]).await?;
    let newest: i32 = client
        .query(sql::GENERATIONS, &[&name])
        .await?
        .iter()
        .map(|row| row.get::<_, i32>(0))
        .max()
        .unwrap_or(live);
    let (generation, resumed) = if newest > live {
        (newest, true)
    } else {
        (newest + 1, false)
    };
    let prepared = async {
        migrate(
            &mut client,
            &generation_schema(name, generation),
            &projection.migrations(),
            name,
        )
        .await?;
        client
            .execute(sql::INSERT_CHECKPOINT, &[&name, &generation])
            .await?;
        Ok::<_, Error>(())
    }
    .await;
    client.execute(sql::UNLOCK_PREPARE, &[]).await?;
    prepared?;

    defer_indexes(&mut client, projection.as_ref(), generation).await?;

    let started = Instant::now();
    let from: Position = client
        .query_one(sql::CHECKPOINT, &[&name, &generation])
        .await?
        .get::<_, i64>(0) as Position;
    tracing::info!(projection = name, generation, from, resumed, "rebuilding");

    loop {
        let head = store.last_position().await?;
        let runner = Runner::new(
            projection.clone(),
            store.clone(),
            config.clone(),
            Mode::Build {
                generation,
                until: head,
            },
        );
        let checkpoint = runner.checkpoint();
        let report = |done: Position| {
            let elapsed = started.elapsed().as_secs_f64();
            let applied = done.saturating_sub(from) as f64;
            let rate = if elapsed > 0.0 {
                applied / elapsed
            } else {
                0.0
            };
            let eta = (rate > 0.0)
                .then(|| Duration::from_secs_f64(head.saturating_sub(done) as f64 / rate));
            Progress {
                generation,
                done,
                total: head,
                rate,
                eta,
            }
        };
        let run = runner.run(std::future::pending());
        let mut run = std::pin::pin!(run);
        let mut ticker = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                result = &mut run => { result?; break; }
                _ = ticker.tick() => progress(&report(*checkpoint.borrow())),
            }
        }
        let done = *checkpoint.borrow();
        progress(&report(done));
        if store.last_position().await?.saturating_sub(done) <= SWITCH_WITHIN {
            break;
        }
    }

    // Fresh tables have no statistics and no visibility map: without them
    // the first readers of the new generation would get blind plans and no
    // index-only scans. (VACUUM cannot run inside a transaction: one each.)
    restore_indexes(&mut client, projection.as_ref(), generation).await?;
    let schema = generation_schema(name, generation);
    for table in projection.tables() {
        client
            .batch_execute(&format!("VACUUM (ANALYZE) {schema}.{table}"))
            .await?;
    }
    // Indexing and vacuuming took a while: catch up again, so the pause
    // of the live runner below is short.
    let head = store.last_position().await?;
    build_until(&projection, &store, &config, generation, head).await?;

    let switching = Instant::now();
    let mut attempt = 0;
    let replaced = loop {
        attempt += 1;
        let tx = client.transaction().await?;
        // Waits for the live runner's batch in flight, and holds the next.
        let old: i32 = tx
            .query_one(sql::LIVE_GENERATION_FOR_UPDATE, &[&name])
            .await?
            .get(0);
        let at = |generation: i32| {
            let tx = &tx;
            async move {
                Ok::<_, Error>(
                    tx.query_one(sql::CHECKPOINT, &[&name, &generation])
                        .await?
                        .get::<_, i64>(0) as Position,
                )
            }
        };
        // Never behind what readers were last shown: a reader that waited
        // for a position must find it in whichever generation it reads.
        let live_at = at(old).await?;
        if at(generation).await? < live_at {
            build_until(&projection, &store, &config, generation, live_at).await?;
        }
        match switch_locked(&tx, projection.as_ref(), generation, old).await {
            Ok(()) => {
                tx.commit().await?;
                break old;
            }
            Err(e) if retry_switch(&e) && attempt < SWITCH_ATTEMPTS => {
                drop(tx);
                tracing::debug!(
                    projection = name,
                    attempt,
                    "readers hold the views; switching again"
                );
                tokio::time::sleep(switch_backoff(attempt)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let switch = switching.elapsed();
    let done: Position = client
        .query_one(sql::CHECKPOINT, &[&name, &generation])
        .await?
        .get::<_, i64>(0) as Position;
    tracing::info!(
        projection = name,
        generation,
        replaced,
        "switched readers to the rebuilt generation"
    );
    Ok(RebuildReport {
        generation,
        replaced,
        events: done.saturating_sub(from),
        elapsed: started.elapsed(),
        resumed,
        switch,
    })
}

/// Applies the log to the generation being built up to `until` (no
/// further), without progress reports: the short catch-ups before a switch.
async fn build_until<P: Projection, S: EventStore>(
    projection: &Arc<P>,
    store: &S,
    config: &RunnerConfig,
    generation: i32,
    until: Position,
) -> Result<(), Error> {
    Runner::new(
        projection.clone(),
        store.clone(),
        config.clone(),
        Mode::Build { generation, until },
    )
    .run(std::future::pending())
    .await
}
