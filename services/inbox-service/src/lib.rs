//! The Careline inbox: the inbox projection and the gRPC service over it.
//!
//! * `projection/` — [`InboxProjection`]: events into the tables of
//!   `migrations/` (people, teams, records, threads, messages, participants,
//!   read marks, assignments), batch by batch, on the projection engine.
//! * `queries.rs` — the named queries; who may see what is one SQL fragment
//!   per role, shared by every query.
//! * `grpc/` — `careline.inbox.v1.InboxService`: authentication, field
//!   checks, read-your-writes (waiting for `min_position`).
//! * `startup.rs` — the projection runner (supervised) and the server.

pub mod config;
pub mod error;
pub mod grpc;
pub mod projection;
pub mod queries;
pub mod startup;

pub use config::Config;
pub use projection::InboxProjection;
pub use startup::Application;
