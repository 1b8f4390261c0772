//! Connections and migrations.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::Error;
use crate::tls::PgTls;

/// Session settings of every connection: the server sends warnings and
/// errors only. Its NOTICEs ("view ... does not exist, skipping") are
/// expected chatter of idempotent schema statements, and the driver would
/// log each one.
const QUIET: &str = "-c client_min_messages=warning";

/// One connection, its driver running on the runtime. For runners and
/// schema changes, which need a session of their own. TLS when
/// `CARELINE_DATABASE_CA` names the server's CA.
pub async fn connect(database_url: &str) -> Result<Client, Error> {
    connect_with(database_url, PgTls::from_env()?.as_ref()).await
}

/// As [`connect`], over TLS trusting `tls`'s CA when given.
pub async fn connect_with(database_url: &str, tls: Option<&PgTls>) -> Result<Client, Error> {
    let mut config: tokio_postgres::Config = database_url
        .parse()
        .map_err(|e| Error::Config(format!("DATABASE_URL is not a PostgreSQL URL: {e}")))?;
    config.options(QUIET);
    let timed_out = || {
        Error::Config(format!(
            "PostgreSQL at {} did not answer within 10 s",
            redact(database_url)
        ))
    };
    let limit = Duration::from_secs(10);
    let client = match tls {
        Some(tls) => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let (client, connection) = tokio::time::timeout(limit, config.connect(tls.clone()))
                .await
                .map_err(|_| timed_out())??;
            drive(connection);
            client
        }
        None => {
            let (client, connection) = tokio::time::timeout(limit, config.connect(NoTls))
                .await
                .map_err(|_| timed_out())??;
            drive(connection);
            client
        }
    };
    Ok(client)
}

/// Listens on PostgreSQL channel `channel` (LISTEN/NOTIFY) over a
/// connection of its own (TLS as [`connect`]'s): each notification's
/// payload as it comes. The receiver ends when the connection does (the
/// caller listens again); dropping it closes the connection.
pub async fn listen(
    database_url: &str,
    channel: &str,
) -> Result<tokio::sync::mpsc::Receiver<String>, Error> {
    if !channel
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::Config(format!("{channel:?} is not a channel name")));
    }
    let mut config: tokio_postgres::Config = database_url
        .parse()
        .map_err(|e| Error::Config(format!("DATABASE_URL is not a PostgreSQL URL: {e}")))?;
    config.options(QUIET);
    let limit = Duration::from_secs(10);
    let timed_out = || {
        Error::Config(format!(
            "PostgreSQL at {} did not answer within 10 s",
            redact(database_url)
        ))
    };
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let client = match PgTls::from_env()? {
        Some(tls) => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let (client, connection) = tokio::time::timeout(limit, config.connect(tls))
                .await
                .map_err(|_| timed_out())??;
            forward(connection, tx.clone());
            client
        }
        None => {
            let (client, connection) = tokio::time::timeout(limit, config.connect(NoTls))
                .await
                .map_err(|_| timed_out())??;
            forward(connection, tx.clone());
            client
        }
    };
    client.batch_execute(&format!("LISTEN {channel}")).await?;
    // The connection lives while someone receives.
    tokio::spawn(async move {
        tx.closed().await;
        drop(client);
    });
    Ok(rx)
}

/// Drives `connection`, sending each notification's payload to `tx`.
fn forward<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    tx: tokio::sync::mpsc::Sender<String>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = futures::StreamExt::next(&mut messages).await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "a listening connection closed");
                    return;
                }
            }
        }
    });
}

fn drive<F>(connection: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection closed");
        }
    });
}

/// A readiness check named `name`: ready while a connection of `pool`
/// answers a query.
pub fn answers(name: &'static str, pool: deadpool_postgres::Pool) -> service_kit::metrics::Check {
    service_kit::metrics::Check::new(name, move || {
        let pool = pool.clone();
        async move {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            client
                .simple_query("SELECT 1")
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
}

/// A pool for a projection's readers: every connection has the
/// projection's view schema (e.g. `inbox`) first on its search path, so
/// queries name tables unqualified and always read the live generation.
pub fn pool(
    database_url: &str,
    size: usize,
    views_schema: &str,
) -> Result<deadpool_postgres::Pool, Error> {
    let mut config: tokio_postgres::Config = database_url
        .parse()
        .map_err(|e| Error::Config(format!("DATABASE_URL is not a PostgreSQL URL: {e}")))?;
    if !views_schema
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::Config(format!(
            "{views_schema:?} is not a schema name"
        )));
    }
    // Readers run the same few statements all day: plan each once (generic
    // plans), rather than re-planning on every call, which can cost more
    // than running the query.
    config.options(format!(
        "{QUIET} -c search_path={views_schema} -c plan_cache_mode=force_generic_plan"
    ));
    let manager_config = deadpool_postgres::ManagerConfig {
        recycling_method: deadpool_postgres::RecyclingMethod::Fast,
    };
    let manager = match PgTls::from_env()? {
        Some(tls) => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            deadpool_postgres::Manager::from_config(config, tls, manager_config)
        }
        None => deadpool_postgres::Manager::from_config(config, NoTls, manager_config),
    };
    deadpool_postgres::Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| Error::Pool(e.to_string()))
}

/// Runs `migrations` with `schema` first on the search path, so that their
/// tables (and refinery's history) land in that schema.
pub async fn migrate(
    client: &mut Client,
    schema: &str,
    migrations: &refinery::Runner,
    projection: &str,
) -> Result<usize, Error> {
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}"
        ))
        .await?;
    let result = migrations.run_async(client).await;
    client.batch_execute("RESET search_path").await?;
    result
        .map(|report| report.applied_migrations().len())
        .map_err(|e| Error::Migration {
            projection: projection.to_string(),
            message: e.to_string(),
        })
}

/// A URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A database error with the server's own code and message (its `Display`
/// alone says only "db error").
pub fn describe_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// What a database error means to the caller of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A transient conflict with another transaction (a deadlock, a
    /// serialization failure, a lock wait that timed out): trying the
    /// same call again will work (gRPC `ABORTED`).
    Conflict,
    /// The database is out of reach, shutting down or starting up (gRPC
    /// `UNAVAILABLE`).
    Unavailable,
    /// Anything else: a defect (gRPC `INTERNAL`).
    Defect,
}

/// Classifies a database error: see [`Failure`].
pub fn classify(e: &tokio_postgres::Error) -> Failure {
    use tokio_postgres::error::SqlState;
    if e.is_closed() {
        return Failure::Unavailable;
    }
    let Some(code) = e.code() else {
        // No server answer at all: the connection broke (I/O, TLS, protocol).
        return Failure::Unavailable;
    };
    match code {
        c if [
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::LOCK_NOT_AVAILABLE,
        ]
        .contains(c) =>
        {
            Failure::Conflict
        }
        c if c.code().starts_with("08")
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::TOO_MANY_CONNECTIONS,
            ]
            .contains(c) =>
        {
            Failure::Unavailable
        }
        _ => Failure::Defect,
    }
}
