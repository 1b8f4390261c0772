//! Generations of a projection's tables, and the views readers use.

use std::time::{Duration, SystemTime};

use tokio_postgres::{Client, GenericClient};

use crate::sql::{self, generation_schema};
use crate::{Error, Projection};
use careline_pg::migrate;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The schema readers query: the projection's name.
pub fn views_schema<P: Projection>(projection: &P) -> &'static str {
    projection.name()
}

/// Checks a projection's name and tables are plain lowercase identifiers
/// (they are formatted into schema and view statements).
fn check_names<P: Projection>(projection: &P) -> Result<(), Error> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 40
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if !ok(projection.name()) {
        return Err(Error::Config(format!(
            "projection name {:?} must be a lowercase identifier",
            projection.name()
        )));
    }
    if let Some(bad) = projection.tables().iter().find(|t| !ok(t)) {
        return Err(Error::Config(format!(
            "table {bad:?} of {} must be a lowercase identifier",
            projection.name()
        )));
    }
    Ok(())
}

/// Makes a projection ready to run and to read: the engine's tables, a live
/// generation (the first one is created empty, at position 0), its pending
/// migrations, and the reader views pointing at it. Safe to call from many
/// processes at once. Returns the live generation.
pub async fn prepare<P: Projection>(client: &mut Client, projection: &P) -> Result<i32, Error> {
    check_names(projection)?;
    client.execute(sql::LOCK_PREPARE, &[]).await?;
    let result = prepare_locked(client, projection).await;
    client.execute(sql::UNLOCK_PREPARE, &[]).await?;
    result
}

async fn prepare_locked<P: Projection>(client: &mut Client, projection: &P) -> Result<i32, Error> {
    migrate(
        client,
        sql::ENGINE_SCHEMA,
        &embedded::migrations::runner(),
        "the projection engine",
    )
    .await?;
    let name = projection.name();
    let live = match client.query_opt(sql::LIVE_GENERATION, &[&name]).await? {
        Some(row) => row.get::<_, i32>(0),
        None => {
            let generation = 1;
            migrate(
                client,
                &generation_schema(name, generation),
                &projection.migrations(),
                name,
            )
            .await?;
            let tx = client.transaction().await?;
            tx.execute(sql::INSERT_CHECKPOINT, &[&name, &generation])
                .await?;
            tx.execute(sql::INSERT_GENERATION, &[&name, &generation])
                .await?;
            point_views(&tx, projection, generation).await?;
            tx.commit().await?;
            tracing::info!(
                projection = name,
                generation,
                "created the first generation"
            );
            return Ok(generation);
        }
    };
    // Additive migrations (new tables or columns) apply to the live
    // generation in place; the views are recreated so new columns show.
    // Otherwise the views stay as they are: recreating them takes exclusive
    // locks that would stall (or deadlock with) readers of a running service.
    let applied = migrate(
        client,
        &generation_schema(name, live),
        &projection.migrations(),
        name,
    )
    .await?;
    let views: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.views WHERE table_schema = $1 AND table_name = ANY($2)",
            &[&name, &projection.tables()],
        )
        .await?
        .get(0);
    if applied > 0 || views != projection.tables().len() as i64 {
        repoint(client, projection, live).await?;
    }
    Ok(live)
}

/// Points the reader views at a generation's tables.
pub(crate) async fn point_views<P: Projection, C: GenericClient>(
    tx: &C,
    projection: &P,
    generation: i32,
) -> Result<(), Error> {
    let views = projection.name();
    let tables = generation_schema(views, generation);
    let mut statements = format!("CREATE SCHEMA IF NOT EXISTS {views};");
    for table in projection.tables() {
        statements.push_str(&format!(
            "DROP VIEW IF EXISTS {views}.{table}; CREATE VIEW {views}.{table} AS SELECT * FROM {tables}.{table};"
        ));
    }
    tx.batch_execute(&statements).await?;
    Ok(())
}

/// How long a switch waits for readers to let go of the views before it
/// lets go itself and tries again: it must be far below PostgreSQL's
/// `deadlock_timeout` (1 s by default), so the switch gives up before any
/// deadlock check could pick a reader as the victim.
pub(crate) const VIEW_LOCK_TIMEOUT: Duration = Duration::from_millis(50);

/// Takes every reader view of the projection in ACCESS EXCLUSIVE mode, in
/// one statement, waiting at most [`VIEW_LOCK_TIMEOUT`] for the lot
/// (a longer wait is `55P03 lock_not_available`, see [`retry_switch`]).
/// Every lock the transaction takes from then on waits at most as long.
pub(crate) async fn lock_views<P: Projection, C: GenericClient>(
    tx: &C,
    projection: &P,
) -> Result<(), Error> {
    let views = projection.name();
    let exists: Vec<String> = tx
        .query(
            "SELECT table_name::text FROM information_schema.views WHERE table_schema = $1 AND table_name = ANY($2)",
            &[&views, &projection.tables()],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut statement = format!(
        "SET LOCAL lock_timeout = '{}ms';",
        VIEW_LOCK_TIMEOUT.as_millis()
    );
    if !exists.is_empty() {
        let list: Vec<String> = exists.iter().map(|t| format!("{views}.{t}")).collect();
        statement.push_str(&format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            list.join(", ")
        ));
    }
    tx.batch_execute(&statement).await?;
    Ok(())
}

/// Whether a switch attempt gave up on a lock (or lost a deadlock check,
/// which the lock timeout should make impossible) and may simply be tried
/// again.
pub(crate) fn retry_switch(e: &Error) -> bool {
    use tokio_postgres::error::SqlState;
    match e {
        Error::Database(e) => matches!(
            e.code(),
            Some(&SqlState::LOCK_NOT_AVAILABLE | &SqlState::T_R_DEADLOCK_DETECTED)
        ),
        _ => false,
    }
}

/// The pause before switch attempt `attempt` (from 1): short, growing,
/// never the same for two attempts in a row.
pub(crate) fn switch_backoff(attempt: u32) -> Duration {
    let jitter = u64::from(std::process::id().wrapping_mul(attempt) % 7);
    Duration::from_millis((5 * u64::from(attempt.min(10))) + jitter)
}

/// Gives up after this many attempts: readers that hold the views this
/// long are a defect to look at, not something to wait out silently.
pub(crate) const SWITCH_ATTEMPTS: u32 = 200;

/// Re-points the reader views at `generation` (after a migration of the
/// live generation), taking them as a switch does.
async fn repoint<P: Projection>(
    client: &mut Client,
    projection: &P,
    generation: i32,
) -> Result<(), Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let tx = client.transaction().await?;
        let done = async {
            lock_views(&tx, projection).await?;
            point_views(&tx, projection, generation).await
        }
        .await;
        match done {
            Ok(()) => {
                tx.commit().await?;
                return Ok(());
            }
            Err(e) if retry_switch(&e) && attempt < SWITCH_ATTEMPTS => {
                drop(tx);
                tokio::time::sleep(switch_backoff(attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The second half of a switch, in the caller's transaction, which holds
/// the projection's generation row (`FOR UPDATE`, so the live runner is
/// between batches) and has already read the replaced generation `old`:
/// takes the views (see [`lock_views`]), points them at `generation`,
/// records the switch, and drops the old generation. Readers see the old
/// tables or the new ones, never a mix.
pub(crate) async fn switch_locked<P: Projection, C: GenericClient>(
    tx: &C,
    projection: &P,
    generation: i32,
    old: i32,
) -> Result<(), Error> {
    let name = projection.name();
    lock_views(tx, projection).await?;
    point_views(tx, projection, generation).await?;
    tx.execute(sql::SET_LIVE_GENERATION, &[&name, &generation])
        .await?;
    tx.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        generation_schema(name, old)
    ))
    .await?;
    tx.execute(sql::DELETE_CHECKPOINT, &[&name, &old]).await?;
    tx.execute(
        "DELETE FROM careline_projections.dead_letters WHERE name = $1 AND generation = $2",
        &[&name, &old],
    )
    .await?;
    Ok(())
}

/// One generation's progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerationStatus {
    pub generation: i32,
    pub checkpoint: u64,
    pub updated_at: SystemTime,
    pub live: bool,
}

/// A projection as operators see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: String,
    pub switched_at: SystemTime,
    /// The live generation first, then any rebuild in progress.
    pub generations: Vec<GenerationStatus>,
    /// Events the live generation set aside (could not apply).
    pub dead_letters: u64,
    /// Whether a process runs the projection now (holds its lead).
    pub running: bool,
}

impl ProjectionStatus {
    pub fn live(&self) -> Option<&GenerationStatus> {
        self.generations.iter().find(|g| g.live)
    }
}

/// Every projection in the database, with each generation's checkpoint.
pub async fn status(client: &Client) -> Result<Vec<ProjectionStatus>, Error> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('careline_projections.projection_generations') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    // (No dead-letter table yet: the engine's tables are older than it,
    // until a service of this version prepares them.)
    let has_dead_letters: bool = client
        .query_one(
            "SELECT to_regclass('careline_projections.dead_letters') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    let mut out = Vec::new();
    for row in client.query(sql::PROJECTIONS, &[]).await? {
        let name: String = row.get(0);
        let live: i32 = row.get(1);
        let mut generations: Vec<GenerationStatus> = client
            .query(sql::GENERATIONS, &[&name])
            .await?
            .iter()
            .map(|g| GenerationStatus {
                generation: g.get(0),
                checkpoint: g.get::<_, i64>(1) as u64,
                updated_at: g.get(2),
                live: g.get::<_, i32>(0) == live,
            })
            .collect();
        generations.sort_by_key(|g| !g.live);
        let dead_letters: i64 = if has_dead_letters {
            client
                .query_one(
                    "SELECT count(*) FROM careline_projections.dead_letters WHERE name = $1 AND generation = $2",
                    &[&name, &live],
                )
                .await?
                .get(0)
        } else {
            0
        };
        let running: bool = client.query_one(sql::RUNNING, &[&name]).await?.get(0);
        out.push(ProjectionStatus {
            running,
            name,
            switched_at: row.get(2),
            generations,
            dead_letters: dead_letters as u64,
        });
    }
    Ok(out)
}

/// The live generation's checkpoint of a projection, read with `client`
/// (inside a transaction, it is the position that snapshot reflects).
pub async fn live_checkpoint(
    client: &impl tokio_postgres::GenericClient,
    projection: &str,
) -> Result<u64, Error> {
    let row = client
        .query_opt(
            "SELECT c.position FROM careline_projections.projection_checkpoints c \
             JOIN careline_projections.projection_generations g \
               ON g.name = c.name AND g.live_generation = c.generation WHERE c.name = $1",
            &[&projection],
        )
        .await?;
    row.map(|r| r.get::<_, i64>(0) as u64)
        .ok_or_else(|| Error::Config(format!("projection {projection} has no live generation")))
}

/// Drops the projection's deferred indexes from a generation being built,
/// first recording how to recreate them (once: a resumed rebuild finds them
/// recorded and gone).
pub(crate) async fn defer_indexes<P: Projection>(
    client: &mut Client,
    projection: &P,
    generation: i32,
) -> Result<(), Error> {
    let deferred = projection.deferred_indexes();
    if deferred.is_empty() {
        return Ok(());
    }
    let name = projection.name();
    let schema = generation_schema(name, generation);
    let tx = client.transaction().await?;
    tx.execute(
        sql::DEFER_INDEXES,
        &[&name, &generation, &deferred, &schema],
    )
    .await?;
    let recorded: Vec<String> = tx
        .query(sql::DEFERRED_INDEXES, &[&name, &generation])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if let Some(missing) = deferred.iter().find(|i| !recorded.iter().any(|r| r == *i)) {
        return Err(Error::Config(format!(
            "{name} defers index {missing}, which its migrations do not create in {schema}"
        )));
    }
    for index in deferred {
        tx.batch_execute(&format!("DROP INDEX IF EXISTS {schema}.{index}"))
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Builds the indexes [`defer_indexes`] dropped, and forgets them, in one
/// transaction.
pub(crate) async fn restore_indexes<P: Projection>(
    client: &mut Client,
    projection: &P,
    generation: i32,
) -> Result<(), Error> {
    let name = projection.name();
    let tx = client.transaction().await?;
    // Building several indexes of a table at once: more memory than the
    // small default makes each a single in-memory sort.
    tx.batch_execute("SET LOCAL maintenance_work_mem TO '256MB'")
        .await?;
    for row in tx
        .query(sql::DEFERRED_INDEXES, &[&name, &generation])
        .await?
    {
        let (index, definition): (String, String) = (row.get(0), row.get(1));
        tracing::info!(projection = name, generation, index, "building index");
        tx.batch_execute(&definition).await?;
    }
    tx.execute(sql::FORGET_DEFERRED_INDEXES, &[&name, &generation])
        .await?;
    tx.commit().await?;
    Ok(())
}
