//! The Careline command service: every change to the system goes through it.
//!
//! A command travels: `grpc/` (authenticated caller, the request checked
//! into a domain command by `grpc/convert.rs`) → `app.rs` (lock the target
//! aggregate, load what the decision reads, decide, append exactly one event
//! with the expected version and the command id as event id, retry on
//! conflict) → `domain/` (the product's rules as pure `decide` functions
//! over states folded from events) and `repository.rs` (aggregates from the
//! log, cached; the cache slot is also the per-aggregate lock).
//!
//! `limit.rs` caps the messages one person posts a minute; `claims.rs`
//! backfills the id claims of a log written before them. `error.rs` is
//! the one place errors become gRPC statuses; `startup.rs`
//! binds and serves (with health and reflection) so tests run the same code
//! on port 0.

pub mod app;
pub mod claims;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod repository;
pub mod startup;

pub use app::App;
pub use config::Config;
pub use grpc::sign_in::{SignIn, SignInSettings};
pub use startup::Application;
