//! The Careline audit trail: every action and every view, one entry per
//! record it concerns, hash-chained per record, exportable.
//!
//! * `describe.rs` — events into entries: chain, actor, plain words (pure).
//! * `chain.rs` — canonical content, SHA-256 links, checking a chain.
//! * `anchor.rs` — the chains' heads recorded in the log, and checked.
//! * `projection.rs` — [`AuditProjection`] on the projection engine.
//! * `queries.rs` — trails by record, thread or person; whole chains.
//! * `export.rs` — JSON lines, and FHIR R4 AuditEvent bundles.
//! * `grpc.rs` — `careline.audit.v1.AuditService`: authorization, paging,
//!   verify (against the table, and against the log), export.
//! * `startup.rs` — the projection runner (supervised) and the server.

pub mod anchor;
pub mod chain;
pub mod config;
pub mod describe;
pub mod error;
pub mod export;
pub mod grpc;
pub mod projection;
pub mod queries;
pub mod startup;

pub use config::Config;
pub use projection::AuditProjection;
pub use startup::Application;
