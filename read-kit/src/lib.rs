//! What every Careline read service (inbox, audit, notifications) is made
//! of besides its own projection, queries and gRPC methods.
//!
//! * `read_server.rs` — [`ReadApplication`]: settings, the port, the
//!   projection's tables and views, the live runner supervised beside the
//!   gRPC server, readiness and metrics, one shutdown for both.
//! * `query_error.rs` — [`QueryError`]: how a call fails, and the one place
//!   that becomes a gRPC status with its reason.
//! * `access.rs` — [`AccessLog`]: every answer that shows a record's data is
//!   recorded as a read on the log first, or refused.
//!
//! It stands on the projection engine (`projections`), PostgreSQL
//! (`careline-pg`) and the event store; nothing below it depends on it.

mod access;
mod query_error;
mod read_server;

pub use access::{AccessLog, Recorder, Shown};
pub use query_error::{QueryError, ReadService};
pub use read_server::{
    Defaults, ReadApplication, ReadConfig, ReadParts, ReadServer, ReadSettings, Reader, Started,
};
