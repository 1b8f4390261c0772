//! Building the inbox service: the projection runner (supervised) and the
//! gRPC server, both stopped by one shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use event_store::{EventStore, JetStreamStore};
use projections::{Mode, Runner, RunnerConfig};
use proto::inbox::inbox_service_server::InboxServiceServer;
use service_kit::TokenKeys;
use tokio::sync::watch;

use crate::access::AccessLog;
use crate::config::Config;
use crate::grpc::InboxGrpc;
use crate::projection::InboxProjection;

/// A bound, ready-to-run inbox service.
pub struct Application<S> {
    listener: tokio::net::TcpListener,
    runner: Arc<Runner<InboxProjection, S>>,
    pool: deadpool_postgres::Pool,
    keys: TokenKeys,
    wait: Duration,
    access: AccessLog,
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
        let access = if config.record_reads {
            AccessLog::recording(store.clone())
        } else {
            AccessLog::off()
        };
        // Tables and views first: queries may come in before the runner starts.
        let mut client = projections::connect(&config.database_url).await?;
        projections::prepare(&mut client, &InboxProjection).await?;
        drop(client);
        let runner = Arc::new(Runner::new(
            Arc::new(InboxProjection),
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
            pool: projections::pool(&config.database_url, config.pool_size, "inbox")?,
            keys,
            wait: config.wait_for_position,
            access,
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

    /// Runs the projection and serves queries until `shutdown` resolves; the
    /// batch in flight and the calls in flight finish first.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let (stop, stopping) = watch::channel(false);
        let (progress, projection) = projections::supervise(self.runner.clone(), stopping);
        let service = InboxServiceServer::new(InboxGrpc::new(
            self.pool,
            self.keys,
            progress,
            self.wait,
            self.access,
        ));
        tracing::info!(addr = %self.listener.local_addr()?, "inbox service listening");
        let served =
            service_kit::server::serve(self.listener, service, self.tls.as_ref(), shutdown).await;
        let _ = stop.send(true);
        let _ = projection.await;
        served?;
        Ok(())
    }
}
