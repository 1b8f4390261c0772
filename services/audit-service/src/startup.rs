//! Building the audit service: the audit projection runner (supervised) and
//! the gRPC server, both stopped by one shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use event_store::{EventStore, JetStreamStore};
use projections::{Mode, Runner, RunnerConfig};
use proto::audit::audit_service_server::AuditServiceServer;
use service_kit::TokenKeys;
use tokio::sync::watch;

use crate::config::Config;
use crate::grpc::AuditGrpc;
use crate::projection::AuditProjection;

/// A bound, ready-to-run audit service.
pub struct Application<S> {
    listener: tokio::net::TcpListener,
    runner: Arc<Runner<AuditProjection, S>>,
    store: S,
    pool: deadpool_postgres::Pool,
    keys: TokenKeys,
    wait: Duration,
    export_stall: Duration,
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
        // Tables and views first: queries may come in before the runner starts.
        let mut client = projections::connect(&config.database_url).await?;
        projections::prepare(&mut client, &AuditProjection).await?;
        drop(client);
        let runner = Arc::new(Runner::new(
            Arc::new(AuditProjection),
            store.clone(),
            RunnerConfig {
                database_url: config.database_url.clone(),
                batch_size: config.batch_size,
            },
            Mode::Live,
        ));
        Ok(Self {
            listener,
            runner,
            store,
            pool: projections::pool(&config.database_url, config.pool_size, "audit")?,
            keys,
            wait: config.wait_for_position,
            export_stall: config.export_stall,
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

    /// Runs the projection and serves until `shutdown` resolves; the batch
    /// in flight and the calls in flight finish first.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let (stop, stopping) = watch::channel(false);
        let (progress, projection) = projections::supervise(self.runner.clone(), stopping);
        let service = AuditServiceServer::new(AuditGrpc::new(
            self.pool,
            self.keys,
            progress,
            self.wait,
            self.store,
            self.export_stall,
        ));
        tracing::info!(addr = %self.listener.local_addr()?, "audit service listening");
        let served =
            service_kit::server::serve(self.listener, service, self.tls.as_ref(), shutdown).await;
        let _ = stop.send(true);
        let _ = projection.await;
        served?;
        Ok(())
    }
}
