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

async fn keep_running<P: Projection, S: EventStore>(
    runner: Arc<Runner<P, S>>,
    stopping: watch::Receiver<bool>,
    stopped: watch::Sender<Option<String>>,
) {
    let name = runner.name();
    let mut pause = Duration::from_millis(200);
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
                tracing::warn!(projection = name, error = %e, retry_in = ?pause, "projection failed; restarting");
                stopped.send_replace(Some(format!("{e} (restarting)")));
            }
        }
        let mut stop = stopping.clone();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        stopped.send_replace(None);
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}
