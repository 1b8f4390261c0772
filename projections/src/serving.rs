//! What a read service needs around its live runner: keeping it running,
//! and waiting for a position (read-your-writes).

use std::sync::Arc;
use std::time::Duration;

use event_store::{EventStore, Position};
use tokio::sync::watch;

use crate::{Error, Projection, Runner};

/// Where a live projection stands, for queries that wait on a position.
#[derive(Clone, Debug)]
pub struct Serving {
    /// The last position applied.
    pub checkpoint: watch::Receiver<Position>,
    /// Why the projection stopped, if it did.
    pub stopped: watch::Receiver<Option<String>>,
}

impl Serving {
    /// Waits (at most `wait`) until the projection has applied `min`;
    /// answers the position reached, or says how far behind it is.
    pub async fn reached(&self, min: Position, wait: Duration) -> Result<Position, String> {
        let mut checkpoint = self.checkpoint.clone();
        let waiting = checkpoint.wait_for(|&c| c >= min);
        match tokio::time::timeout(wait, waiting).await {
            Ok(Ok(c)) => Ok(*c),
            _ => {
                let at = *self.checkpoint.borrow();
                let why = match &*self.stopped.borrow() {
                    Some(reason) => format!(" The projection has stopped: {reason}"),
                    None => String::new(),
                };
                Err(format!(
                    "applied the log up to position {at}, {} behind the requested {min}; \
                     retry shortly.{why}",
                    min.saturating_sub(at)
                ))
            }
        }
    }
}

/// Runs `runner` until `stopping` turns true: a transient failure (database
/// or NATS out of reach) restarts it after a growing pause; a log that lost
/// its tail stops it for good. Why it is not running is published on the
/// returned [`Serving`].
pub fn supervise<P: Projection, S: EventStore>(
    runner: Arc<Runner<P, S>>,
    stopping: watch::Receiver<bool>,
) -> (Serving, tokio::task::JoinHandle<()>) {
    let (stopped_tx, stopped) = watch::channel(None::<String>);
    let progress = Serving {
        checkpoint: runner.checkpoint(),
        stopped,
    };
    let task = tokio::spawn(keep_running(runner, stopping, stopped_tx));
    (progress, task)
}

/// The pause before work that failed starts again: 200 ms, doubling each
/// time up to 30 s. For every long-running task of a service.
#[derive(Debug)]
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_millis(200))
    }
}

impl Backoff {
    /// The pause the next [`Backoff::wait`] takes.
    pub fn next(&self) -> Duration {
        self.0
    }

    /// Waits the pause, or until `stopping` turns true (then answers
    /// false), and doubles the next one.
    pub async fn wait(&mut self, stopping: &watch::Receiver<bool>) -> bool {
        let mut stop = stopping.clone();
        let waited = tokio::select! {
            _ = tokio::time::sleep(self.0) => true,
            _ = stop.wait_for(|s| *s) => false,
        };
        self.0 = (self.0 * 2).min(Duration::from_secs(30));
        waited
    }
}

/// Whether this connection now leads the work called `name`: one leader
/// per deployment, the holder of an advisory lock for its connection's
/// life (so a crash frees it). Projections' live runners lead this way;
/// so may any task that must run once.
pub async fn try_lead(client: &tokio_postgres::Client, name: &str) -> Result<bool, Error> {
    Ok(client
        .query_one(crate::sql::TRY_LEAD, &[&name])
        .await?
        .get(0))
}

async fn keep_running<P: Projection, S: EventStore>(
    runner: Arc<Runner<P, S>>,
    stopping: watch::Receiver<bool>,
    stopped: watch::Sender<Option<String>>,
) {
    let name = runner.name();
    let mut backoff = Backoff::default();
    loop {
        let mut stop = stopping.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        match runner.run(shutdown).await {
            Ok(()) => return,
            Err(e @ Error::LogLostTail { .. }) => {
                tracing::error!(projection = name, error = %e, "projection stopped");
                stopped.send_replace(Some(e.to_string()));
                return;
            }
            Err(e) => {
                tracing::warn!(projection = name, error = %e, retry_in = ?backoff.next(), "projection failed; restarting");
                stopped.send_replace(Some(format!("{e} (restarting)")));
            }
        }
        if !backoff.wait(&stopping).await {
            return;
        }
        stopped.send_replace(None);
    }
}
