//! The whole system for a test: the command service and the inbox service
//! in this process, on their own stream and their own database (`testkit`),
//! and an inbox alone for tests that start and stop it.

use std::net::SocketAddr;
use std::time::Duration;

use event_store::JetStreamStore;
use tokio::sync::{oneshot, watch};

pub use testkit::{Inbox, System, channel, inbox_config, issuer};

/// Starts an inbox service over `store` and `db`; returns its address,
/// checkpoint, and the sender that stops it.
pub async fn start_inbox(
    config: inbox_service::Config,
    store: JetStreamStore,
) -> (SocketAddr, watch::Receiver<u64>, oneshot::Sender<()>) {
    let app = inbox_service::Application::with_store(config, store)
        .await
        .unwrap();
    let addr = app.local_addr();
    let checkpoint = app.checkpoint();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    (addr, checkpoint, stop)
}

pub async fn system(label: &str) -> System {
    system_with_wait(label, Duration::from_secs(5)).await
}

pub async fn system_with_wait(label: &str, wait: Duration) -> System {
    System::start(
        label,
        testkit::Services {
            inbox: true,
            wait: Some(wait),
            ..Default::default()
        },
    )
    .await
}
