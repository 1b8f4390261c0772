//! What every Careline gRPC service shares.
//!
//! * [`auth`]: signed bearer tokens naming one person and one role; minting
//!   them (operator CLI, demo) and checking them on every call.
//! * [`server`]: serving a tonic service with gRPC health and server
//!   reflection (v1 and v1alpha, so grpcurl can list it) until shutdown.
//! * [`provider`]: an OpenID Connect provider and the check of its ID
//!   tokens; [`account`]: the token of an account linked to no one yet.
//! * [`email_link`]: signed email verification links (the notification
//!   service signs them, the command service checks them).
//! * [`ids`]: the one parser of ids, and a type per kind of id.
//! * [`metrics`]: Prometheus metrics (every gRPC call counted and timed by
//!   [`server::serve`]), liveness and readiness, on an address of their own.
//! * [`shutdown_signal`] and [`init_tracing`] for each binary's thin `main`.

use std::future::Future;

pub mod account;
pub mod auth;
pub mod email_link;
pub mod ids;
pub mod limit;
pub mod media;
pub mod metrics;
pub mod patient_identity;
pub mod provider;
pub mod reason;
pub mod secret;
pub mod server;
pub mod system_credential;

pub use auth::{Caller, Role, TokenIssuer, TokenKeys, test_issuer};
pub use email_link::{Addressee, EmailLink, LinkIssuer, LinkKeys, test_link_issuer};

/// Longest input an error message repeats whole.
const ECHO_MAX: usize = 64;

/// A caller's input as an error message repeats it: quoted, and only its
/// start when it is long (an error is no place to send megabytes back).
pub fn echo(input: &str) -> String {
    if input.chars().count() <= ECHO_MAX {
        return format!("{input:?}");
    }
    let start: String = input.chars().take(32).collect();
    format!("{start:?}... ({} bytes)", input.len())
}

/// A defect as a caller sees it: what failed and a reference to quote, never
/// the details (a database's message may hold table names or values); those
/// go to the log at ERROR under the same reference.
pub fn internal(what: &str, detail: &dyn std::fmt::Display) -> tonic::Status {
    let reference = uuid::Uuid::now_v7();
    tracing::error!(%reference, error = %detail, "{what} failed");
    reason::status(
        tonic::Code::Internal,
        reason::INTERNAL,
        format!("{what} failed (reference {reference}: the details are in the service's log)"),
        &[("reference", &reference.to_string())],
    )
}

/// A service binary: its configuration from the environment, built, and
/// run until it is told to stop. Every binary's `main` is [`main`] of one.
pub trait Service: Sized {
    type Config;
    /// The configuration, from the process environment.
    fn config_from_env() -> anyhow::Result<Self::Config>;
    /// Connects what the service needs and binds its port.
    fn build(config: Self::Config) -> impl Future<Output = anyhow::Result<Self>> + Send;
    /// Where this service serves its metrics, liveness and readiness
    /// (`CARELINE_<NAME>_METRICS_ADDR`), and what they read; `None`: not
    /// served.
    fn metrics(&self) -> Option<(std::net::SocketAddr, metrics::Endpoint)> {
        None
    }
    /// Serves until `shutdown` resolves; the work in flight finishes first.
    fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A service binary's `main`: logging, configuration, build, and run until
/// Ctrl-C or SIGTERM.
pub fn main<S: Service>() -> anyhow::Result<()> {
    init_tracing();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let config = S::config_from_env()?;
            let service = S::build(config).await?;
            let (stop, stopping) = tokio::sync::watch::channel(false);
            let stopped = move || {
                let mut stopping = stopping.clone();
                async move {
                    let _ = stopping.wait_for(|&s| s).await;
                }
            };
            let beside = match service.metrics() {
                Some((addr, endpoint)) => endpoint.spawn(Some(addr), stopped()).await?,
                None => None,
            };
            tokio::spawn(async move {
                shutdown_signal().await;
                let _ = stop.send(true);
            });
            // Told to stop, the calls in flight get `CARELINE_SHUTDOWN_SECS`
            // to finish; then the process stops whatever is left.
            let grace = shutdown_grace()?;
            let told = stopped();
            let run = service.run(stopped());
            tokio::pin!(run);
            let ran = tokio::select! {
                ran = &mut run => ran,
                () = async {
                    told.await;
                    tokio::time::sleep(grace).await;
                } => {
                    tracing::warn!(?grace, "calls still in flight after the shutdown grace: stopping now");
                    Ok(())
                }
            };
            // The endpoint answers until the service has stopped.
            if let Some(task) = beside {
                task.abort();
            }
            ran
        })
}

/// How long a service told to stop waits for its calls in flight:
/// `CARELINE_SHUTDOWN_SECS`, default 5 (1 to 300).
fn shutdown_grace() -> anyhow::Result<std::time::Duration> {
    const VAR: &str = "CARELINE_SHUTDOWN_SECS";
    match std::env::var(VAR) {
        Err(_) => Ok(std::time::Duration::from_secs(5)),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n @ 1..=300) => Ok(std::time::Duration::from_secs(n)),
            _ => anyhow::bail!("{VAR}={v:?} is not a whole number of seconds from 1 to 300"),
        },
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}

/// Structured logs to stderr, filtered by `RUST_LOG` (default `info`).
/// Set `CARELINE_LOG_JSON=1` for one JSON object per line.
/// Colours only on a terminal: a log file or a collector gets plain text.
pub fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = std::env::var("CARELINE_LOG_JSON").is_ok_and(|v| v == "1" || v == "true");
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

#[cfg(test)]
mod echo_tests {
    #[test]
    fn long_input_is_cut_short() {
        assert_eq!(super::echo("abc"), "\"abc\"");
        let long = "x".repeat(3_000_000);
        let echoed = super::echo(&long);
        assert!(echoed.len() < 60, "{echoed}");
        assert!(echoed.ends_with("(3000000 bytes)"));
    }
}
