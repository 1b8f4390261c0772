//! What every Careline gRPC service shares.
//!
//! * [`auth`]: signed bearer tokens naming one person and one role; minting
//!   them (operator CLI, demo) and checking them on every call.
//! * [`server`]: serving a tonic service with gRPC health and server
//!   reflection (v1 and v1alpha, so grpcurl can list it) until shutdown.
//! * [`shutdown_signal`] and [`init_tracing`] for each binary's thin `main`.

pub mod auth;
pub mod server;

pub use auth::{Caller, Role, TokenIssuer, TokenKeys, test_issuer};

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
    tonic::Status::internal(format!(
        "{what} failed (reference {reference}: the details are in the service's log)"
    ))
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
