//! PostgreSQL, as every Careline process that keeps state in it uses it:
//! one connection or a pool (TLS trusting the CA of `CARELINE_DATABASE_CA`),
//! LISTEN/NOTIFY, migrations into a schema, a readiness check, and what a
//! database error means (`classify`: try again, or a defect). The read
//! models' engine (`projections`) and the web's sessions both use it.

mod db;
mod tls;

pub use db::{
    Failure, answers, classify, connect, connect_with, describe_error, listen, migrate, pool,
};
pub use tls::{DATABASE_CA_VAR, PgTls};

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {}", describe_error(.0))]
    Database(#[from] tokio_postgres::Error),

    #[error("database pool: {0}")]
    Pool(String),

    #[error("migrations of {projection}: {message}")]
    Migration { projection: String, message: String },

    /// A setting that cannot be used, or a server that does not answer.
    #[error("{0}")]
    Config(String),
}
