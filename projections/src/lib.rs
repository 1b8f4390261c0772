//! The projection engine every Careline read model runs on.
//!
//! A [`Projection`] turns events into rows of its own PostgreSQL tables. The
//! engine feeds it: one ordered consumer per projection, from the checkpoint
//! onwards, in batches, each applied in one transaction together with the
//! checkpoint (moved forward only, and only from the value this runner
//! read, so a stale second runner can neither apply a batch twice nor move
//! the checkpoint back).
//!
//! Generations make replay safe: a projection's tables live in a schema per
//! generation (`inbox_g1`, `inbox_g2`, ...); readers query views in a stable
//! schema (`inbox.threads`). [`rebuild`] fills a new generation from
//! position 1 beside the live one, then switches the views, the live
//! generation and drops the old one in one transaction. The live runner
//! notices the switch at its next batch and follows.
//!
//! * `engine.rs` — [`Projection`], [`Runner`] (live or building).
//! * `generations.rs` — preparing, switching and inspecting generations.
//! * `rebuild.rs` — [`rebuild`], with progress.
//! * `dead_letters.rs` — events a projection cannot apply are set aside,
//!   recorded and shown, and the rest of the log goes on.
//! * `serving.rs` — [`supervise`] a live runner; [`Serving`]: wait for a
//!   position (read-your-writes).
//! * `sql.rs` — the engine's queries. PostgreSQL itself (connections,
//!   TLS, migrations) is `careline-pg`; the gRPC read server built around a
//!   live runner is `careline-read-kit`.
//! * `testing.rs` (feature `testing`) — a throw-away database per test.

mod dead_letters;
mod engine;
mod error;
mod generations;
mod rebuild;
mod serving;
mod sql;

#[cfg(feature = "testing")]
pub mod testing;

/// PostgreSQL itself lives in `careline-pg`; the engine's callers reach it
/// here too.
pub use careline_pg::{
    DATABASE_CA_VAR, Failure, PgTls, answers, classify, connect, connect_with, describe_error,
    listen, migrate, pool,
};

/// The batch sizes a read service accepts (events per projection
/// transaction), the same for every one.
pub const BATCH_SIZES: std::ops::RangeInclusive<u64> = 1..=50_000;
pub use dead_letters::{DeadLetter, count as dead_letter_count, dead_letters};
pub use engine::{Mode, PASSED_OVER_SETTLE, Projection, Runner, RunnerConfig};
pub use error::Error;
pub use generations::{ProjectionStatus, live_checkpoint, prepare, status, views_schema};
pub use rebuild::{Progress, RebuildReport, rebuild};
pub use serving::{Backoff, Serving, supervise, try_lead};

/// Re-exported for projections' `migrations()`.
pub use refinery;
pub use tokio_postgres;
