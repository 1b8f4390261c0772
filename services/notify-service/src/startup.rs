//! Building the notification service: the projection runner, the delivery
//! worker and the gRPC server, all stopped by one shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use event_store::{EventStore, JetStreamStore};
use projections::{Mode, Runner, RunnerConfig};
use proto::notify::notification_service_server::NotificationServiceServer;
use service_kit::TokenKeys;
use tokio::sync::watch;

use crate::config::Config;
use crate::grpc::NotifyGrpc;
use crate::projection::NotifyProjection;

/// A bound, ready-to-run notification service.
pub struct Application<S> {
    listener: tokio::net::TcpListener,
    runner: Arc<Runner<NotifyProjection, S>>,
    pool: deadpool_postgres::Pool,
    keys: TokenKeys,
    config: Config,
    tls: Option<service_kit::server::ServerTls>,
}

impl<S> std::fmt::Debug for Application<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").finish_non_exhaustive()
    }
}

impl Application<JetStreamStore> {
    pub async fn build(config: Config, keys: TokenKeys) -> anyhow::Result<Self> {
        let store = JetStreamStore::connect(config.store.clone()).await?;
        Self::with_store(config, store, keys).await
    }
}

impl<S: EventStore> Application<S> {
    pub async fn with_store(config: Config, store: S, keys: TokenKeys) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        // Tables and views first: the worker and the queries start at once.
        let mut client = projections::connect(&config.database_url).await?;
        projections::prepare(&mut client, &NotifyProjection).await?;
        crate::delivery::prepare(&mut client).await?;
        drop(client);
        let runner = Arc::new(Runner::new(
            Arc::new(NotifyProjection),
            store,
            RunnerConfig {
                database_url: config.database_url.clone(),
                batch_size: config.batch_size,
            },
            Mode::Live,
        ));
        Ok(Self {
            listener,
            runner,
            pool: projections::pool(&config.database_url, 4, "notify")?,
            keys,
            config,
            tls: None,
        })
    }

    /// Serves over TLS with this identity.
    pub fn with_tls(mut self, tls: service_kit::server::ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The projection's checkpoint, as it moves.
    pub fn checkpoint(&self) -> watch::Receiver<u64> {
        self.runner.checkpoint()
    }

    /// Runs the projection, the delivery worker and the server until
    /// `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let (stop, stopping) = watch::channel(false);
        let (progress, projection) = projections::supervise(self.runner.clone(), stopping.clone());
        let worker = tokio::spawn(crate::delivery::run(
            self.config.database_url.clone(),
            self.config.smtp.clone(),
            self.runner.checkpoint(),
            stopping,
        ));
        let service = NotificationServiceServer::new(NotifyGrpc::new(
            self.pool,
            self.keys,
            progress,
            self.config.wait_for_position,
        ));
        tracing::info!(addr = %self.listener.local_addr()?, "notification service listening");
        let served =
            service_kit::server::serve(self.listener, service, self.tls.as_ref(), shutdown).await;
        let _ = stop.send(true);
        let _ = projection.await;
        let _ = worker.await;
        served?;
        Ok(())
    }
}
