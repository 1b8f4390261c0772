//! The engine's named queries. Schema names cannot be bind parameters; the
//! ones formatted in are built from checked projection names and integers.

pub const ENGINE_SCHEMA: &str = "careline_projections";

/// Serialises preparation and switching across processes.
pub const LOCK_PREPARE: &str = "SELECT pg_advisory_lock(hashtext('careline_projections'))";
pub const UNLOCK_PREPARE: &str = "SELECT pg_advisory_unlock(hashtext('careline_projections'))";

/// Held for its connection's life by the one live runner of a projection.
pub const TRY_LEAD: &str =
    "SELECT pg_try_advisory_lock(hashtext('careline_projections'), hashtext($1))";

/// Whether a process holds [`TRY_LEAD`]'s lock for projection `$1` in this
/// database: whether anything runs it now. (A two-key advisory lock shows
/// in `pg_locks` as classid and objid, the keys read as unsigned.)
pub const RUNNING: &str = "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND d.datname = current_database() \
       AND l.classid::int8 = (hashtext('careline_projections')::int8 & 4294967295) \
       AND l.objid::int8 = (hashtext($1)::int8 & 4294967295))";

pub const LIVE_GENERATION: &str =
    "SELECT live_generation FROM careline_projections.projection_generations WHERE name = $1";

/// Taken by the live runner at the start of every batch: a switch waits for
/// the batch in flight, and the batch sees a switch that committed first.
pub const LIVE_GENERATION_FOR_SHARE: &str = "SELECT live_generation FROM careline_projections.projection_generations WHERE name = $1 FOR SHARE";

pub const LIVE_GENERATION_FOR_UPDATE: &str = "SELECT live_generation FROM careline_projections.projection_generations WHERE name = $1 FOR UPDATE";

pub const INSERT_GENERATION: &str = "INSERT INTO careline_projections.projection_generations (name, live_generation) VALUES ($1, $2)";

pub const SET_LIVE_GENERATION: &str = "UPDATE careline_projections.projection_generations SET live_generation = $2, switched_at = now() WHERE name = $1";

pub const CHECKPOINT: &str = "SELECT position FROM careline_projections.projection_checkpoints WHERE name = $1 AND generation = $2";

pub const INSERT_CHECKPOINT: &str = "INSERT INTO careline_projections.projection_checkpoints (name, generation, position) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING";

/// Moves a checkpoint forward from the value the runner read. Zero rows
/// means another runner moved it: this batch must not be applied.
pub const ADVANCE_CHECKPOINT: &str = "UPDATE careline_projections.projection_checkpoints SET position = $3, updated_at = now() WHERE name = $1 AND generation = $2 AND position = $4 AND $3 > position";

pub const DELETE_CHECKPOINT: &str =
    "DELETE FROM careline_projections.projection_checkpoints WHERE name = $1 AND generation = $2";

pub const GENERATIONS: &str = "SELECT generation, position, updated_at FROM careline_projections.projection_checkpoints WHERE name = $1 ORDER BY generation";

pub const PROJECTIONS: &str = "SELECT name, live_generation, switched_at FROM careline_projections.projection_generations ORDER BY name";

pub fn generation_schema(projection: &str, generation: i32) -> String {
    format!("{projection}_g{generation}")
}

/// Records how to recreate the listed indexes ($3) of schema $4, for
/// generation $2 of projection $1, before they are dropped.
pub const DEFER_INDEXES: &str = "INSERT INTO careline_projections.deferred_indexes (name, generation, index_name, definition) SELECT $1, $2, c.relname, pg_get_indexdef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $4 AND c.relkind = 'i' AND c.relname = ANY($3) ON CONFLICT DO NOTHING";

pub const DEFERRED_INDEXES: &str = "SELECT index_name, definition FROM careline_projections.deferred_indexes WHERE name = $1 AND generation = $2 ORDER BY index_name";

pub const FORGET_DEFERRED_INDEXES: &str =
    "DELETE FROM careline_projections.deferred_indexes WHERE name = $1 AND generation = $2";
