//! Feeding a projection from the log.

use std::future::Future;
use std::sync::Arc;

use event_store::{EventStore, Position, RecordedEvent};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio_postgres::{Client, Transaction};

use crate::dead_letters::{self, Item};
use crate::sql::{self, generation_schema};
use crate::{Error, generations};

/// A read model: its tables, and how events change them.
pub trait Projection: Send + Sync + 'static {
    /// A lowercase identifier: readers query views in the schema of this
    /// name; generations live in `<name>_g<N>`.
    fn name(&self) -> &'static str;

    /// Migrations creating the tables, run with the generation's schema
    /// first on the search path (write unqualified table names).
    fn migrations(&self) -> refinery::Runner;

    /// The tables readers see, each as a view in schema [`Projection::name`].
    fn tables(&self) -> &'static [&'static str];

    /// Indexes (by name) that [`Projection::apply`] does not need: readers'
    /// indexes. A rebuild drops them while it loads a generation and builds
    /// each once at the end, rather than maintaining them row by row.
    /// Primary keys and unique constraints (which `ON CONFLICT` and lookups
    /// rely on) must not be listed.
    fn deferred_indexes(&self) -> &'static [&'static str] {
        &[]
    }

    /// Applies a batch of events, in order, inside `tx` (whose search path
    /// is the generation's schema). Events the projection ignores are simply
    /// skipped: the checkpoint moves over them anyway. An error rolls the
    /// batch back: an `Error::Apply` or a database error that is not
    /// transient makes the engine apply the events one by one and set aside
    /// (dead-letter) those that fail; any other error stops the batch, to
    /// be tried again.
    fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        events: &'a [RecordedEvent],
    ) -> impl Future<Output = Result<(), Error>> + Send + 'a;

    /// Whether [`Projection::apply`] does anything with `event`. A live
    /// runner passes over a batch of nothing but events of no concern in no
    /// transaction: its checkpoint moves at once in memory (readers of this
    /// process see it) and reaches the database with the next batch, or at
    /// most [`PASSED_OVER_SETTLE`] after it first fell behind (standby
    /// runners see it then; replayed after a crash, such events change
    /// nothing). Every page served records a read, an event most
    /// projections have no use for.
    fn concerns(&self, event: &RecordedEvent) -> bool {
        let _ = event;
        true
    }
}

/// At most how long a checkpoint moved over events of no concern waits to
/// be written.
pub const PASSED_OVER_SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// How often a standby runner reads the leader's checkpoint.
const STANDBY_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Which generation a runner feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The live generation, following a switch to a new one.
    Live,
    /// One generation being built, up to a position.
    Build { generation: i32, until: Position },
}

/// How a runner batches.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    pub database_url: String,
    /// Most events applied in one transaction.
    pub batch_size: usize,
}

impl RunnerConfig {
    pub fn new(database_url: impl Into<String>, batch_size: usize) -> Self {
        Self {
            database_url: database_url.into(),
            batch_size,
        }
    }
}

/// Applies the log to one projection, batch by batch.
pub struct Runner<P, S> {
    projection: Arc<P>,
    store: S,
    config: RunnerConfig,
    mode: Mode,
    checkpoint: watch::Sender<Position>,
}

impl<P, S> std::fmt::Debug for Runner<P, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("mode", &self.mode)
            .field("checkpoint", &*self.checkpoint.borrow())
            .finish()
    }
}

impl<P: Projection, S: EventStore> Runner<P, S> {
    pub fn new(projection: Arc<P>, store: S, config: RunnerConfig, mode: Mode) -> Self {
        Self {
            projection,
            store,
            config,
            mode,
            checkpoint: watch::channel(0).0,
        }
    }

    /// The projection's name.
    pub fn name(&self) -> &'static str {
        self.projection.name()
    }

    /// The checkpoint after every committed batch (for read-your-writes,
    /// progress and lag).
    pub fn checkpoint(&self) -> watch::Receiver<Position> {
        self.checkpoint.subscribe()
    }

    /// Applies events until `shutdown` resolves (the batch in flight is
    /// finished first) or, when building, the target position is reached.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let mut client = crate::connect(&self.config.database_url).await?;
        let mut shutdown = std::pin::pin!(shutdown.fuse());
        if self.mode == Mode::Live {
            generations::prepare(&mut client, self.projection.as_ref()).await?;
            if !self.lead(&client, &mut shutdown).await? {
                return Ok(());
            }
        }
        loop {
            match self.run_generation(&mut client, &mut shutdown).await? {
                Next::Stop => return Ok(()),
                Next::Restart => continue,
            }
        }
    }

    /// One live runner per projection applies events: the one holding the
    /// projection's advisory lock (on its own connection, so a crash frees
    /// it). Others stand by, publishing the checkpoint the leader commits
    /// (so their service's read-your-writes works), and take over when the
    /// lock comes free. Answers false when shut down while standing by.
    async fn lead<F>(
        &self,
        client: &Client,
        shutdown: &mut std::pin::Pin<&mut futures::future::Fuse<F>>,
    ) -> Result<bool, Error>
    where
        F: Future<Output = ()>,
    {
        let name = self.projection.name();
        let mut standing_by = false;
        loop {
            if crate::serving::try_lead(client, name).await? {
                if standing_by {
                    tracing::info!(projection = name, "taking over as the live runner");
                }
                return Ok(true);
            }
            if !standing_by {
                tracing::info!(
                    projection = name,
                    "another runner applies this projection; standing by"
                );
                standing_by = true;
            }
            // Follow the leader's checkpoint for a while, then try again.
            for _ in 0..10 {
                let at = generations::live_checkpoint(client, name).await?;
                self.checkpoint.send_replace(at);
                tokio::select! {
                    _ = tokio::time::sleep(STANDBY_POLL) => {}
                    _ = &mut *shutdown => return Ok(false),
                }
            }
        }
    }

    async fn run_generation<F>(
        &self,
        client: &mut Client,
        shutdown: &mut std::pin::Pin<&mut futures::future::Fuse<F>>,
    ) -> Result<Next, Error>
    where
        F: Future<Output = ()>,
    {
        let name = self.projection.name();
        let generation = match self.mode {
            Mode::Live => client
                .query_one(sql::LIVE_GENERATION, &[&name])
                .await?
                .get(0),
            Mode::Build { generation, .. } => generation,
        };
        let mut checkpoint = client
            .query_opt(sql::CHECKPOINT, &[&name, &generation])
            .await?
            .map(|row| row.get::<_, i64>(0) as Position)
            .ok_or_else(|| Error::Config(format!("{name} has no generation {generation}")))?;
        let head = self.store.last_position().await?;
        if checkpoint > head {
            return Err(Error::LogLostTail {
                projection: name.to_string(),
                checkpoint,
                head,
            });
        }
        self.checkpoint.send_replace(checkpoint);
        if let Mode::Build { until, .. } = self.mode
            && checkpoint >= until
        {
            return Ok(Next::Stop);
        }
        tracing::info!(
            projection = name,
            generation,
            checkpoint,
            head,
            "projection running"
        );
        let schema = generation_schema(name, generation);
        let mut feed = read_ahead(
            self.store.subscribe(checkpoint + 1).await?,
            2 * self.config.batch_size,
        );
        // What the database holds: behind `checkpoint` only while events of
        // no concern are passed over, since `behind_since`.
        let mut persisted = checkpoint;
        let mut behind_since: Option<tokio::time::Instant> = None;
        loop {
            let settle = async move {
                match behind_since {
                    Some(since) => tokio::time::sleep_until(since + PASSED_OVER_SETTLE).await,
                    None => std::future::pending::<()>().await,
                }
            };
            let first = futures::select_biased! {
                () = shutdown.as_mut() => return Ok(Next::Stop),
                event = feed.next().fuse() => Some(event),
                () = settle.fuse() => None,
            };
            let Some(first) = first else {
                // Quiet after events passed over: the database hears of them.
                let moved = client
                    .execute(
                        sql::ADVANCE_CHECKPOINT,
                        &[
                            &name,
                            &generation,
                            &(checkpoint as i64),
                            &(persisted as i64),
                        ],
                    )
                    .await?;
                if moved != 1 {
                    return Ok(Next::Restart);
                }
                persisted = checkpoint;
                behind_since = None;
                continue;
            };
            let mut batch = vec![item(
                first.ok_or_else(|| Error::FeedEnded(name.to_string()))?,
            )?];
            while batch.len() < self.config.batch_size {
                // Unconstrained: tokio's cooperative budget would otherwise
                // end every batch at 128 events, however many are waiting.
                match tokio::task::unconstrained(feed.next()).now_or_never() {
                    Some(Some(event)) => batch.push(item(event)?),
                    Some(None) => return Err(Error::FeedEnded(name.to_string())),
                    None => break,
                }
            }
            if let Mode::Build { until, .. } = self.mode {
                batch.retain(|e| e.position() <= until);
                if batch.is_empty() {
                    return Ok(Next::Stop);
                }
            }
            let last = batch.last().map_or(checkpoint, Item::position);
            let passed_over = self.mode == Mode::Live
                && batch.iter().all(|i| match i {
                    Item::Event(e) => !self.projection.concerns(e),
                    Item::SetAside(_) => false,
                });
            if passed_over {
                let since = *behind_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() < PASSED_OVER_SETTLE {
                    checkpoint = last;
                    self.checkpoint.send_replace(checkpoint);
                    continue;
                }
            }

            let mut tx = client.transaction().await?;
            if self.mode == Mode::Live {
                let live: i32 = tx
                    .query_one(sql::LIVE_GENERATION_FOR_SHARE, &[&name])
                    .await?
                    .get(0);
                if live != generation {
                    tracing::info!(
                        projection = name,
                        from = generation,
                        to = live,
                        "following the switch to a new generation"
                    );
                    return Ok(Next::Restart);
                }
            }
            // Claim the batch first: a second runner on the same batch waits
            // here for this transaction, then finds the checkpoint moved and
            // applies nothing. If applying fails, the claim rolls back too.
            let moved = tx
                .execute(
                    sql::ADVANCE_CHECKPOINT,
                    &[&name, &generation, &(last as i64), &(persisted as i64)],
                )
                .await?;
            if moved != 1 {
                tracing::warn!(
                    projection = name,
                    generation,
                    checkpoint = persisted,
                    "checkpoint moved by another runner; resyncing"
                );
                return Ok(Next::Restart);
            }
            // The checkpoint commits with the rows, so a crash can lose only
            // whole batches with their checkpoint, which are then applied
            // again: waiting for each commit to reach the disk buys nothing.
            tx.batch_execute(&format!(
                "SET LOCAL search_path TO {schema}; SET LOCAL synchronous_commit TO off"
            ))
            .await?;
            let set_aside = dead_letters::apply(self.projection.as_ref(), &mut tx, batch).await?;
            dead_letters::record(&tx, name, generation, &set_aside).await?;
            tx.commit().await?;
            checkpoint = last;
            persisted = last;
            behind_since = None;
            self.checkpoint.send_replace(checkpoint);
            if let Mode::Build { until, .. } = self.mode
                && checkpoint >= until
            {
                return Ok(Next::Stop);
            }
        }
    }
}

enum Next {
    Stop,
    Restart,
}

/// An event from the feed as a batch item: undecodable bytes, and events
/// their subject may not carry (forged), are items to set aside; any other
/// error stops the runner.
fn item(event: Result<RecordedEvent, event_store::Error>) -> Result<Item, Error> {
    match event {
        Ok(e) => Ok(Item::Event(Box::new(e))),
        Err(event_store::Error::Undecodable {
            position,
            reason,
            bytes,
        }) => Ok(Item::SetAside(crate::DeadLetter {
            position,
            event_type: String::new(),
            subject: String::new(),
            reason: format!("undecodable: {reason}"),
            bytes,
        })),
        Err(event_store::Error::Forged {
            position,
            subject,
            event_type,
            reason,
            bytes,
        }) => Ok(Item::SetAside(crate::DeadLetter {
            position,
            event_type,
            subject,
            reason: format!("forged: {reason}"),
            bytes,
        })),
        Err(e) => Err(e.into()),
    }
}

/// Reads `feed` on its own task into a buffer of `capacity` events, so the
/// log is fetched and decoded while a batch is applied (the store fetches
/// more only while its stream is polled), and batches fill up. The task
/// (and the store's consumer) ends when the returned stream is dropped.
fn read_ahead(
    mut feed: event_store::EventStream,
    capacity: usize,
) -> futures::stream::BoxStream<'static, Result<RecordedEvent, event_store::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
    tokio::spawn(async move {
        loop {
            // Also ends when the reader goes while the log is quiet.
            let event = tokio::select! {
                () = tx.closed() => return,
                event = feed.next() => event,
            };
            let Some(event) = event else { return };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }).boxed()
}
