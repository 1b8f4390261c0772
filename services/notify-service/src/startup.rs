//! Building the notification service: the read services' scaffold
//! (`projections::ReadServer`) around the notification projection and its
//! gRPC methods, with the delivery worker beside them, all stopped by one
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;

use event_store::{EventStore, JetStreamStore};
use projections::{ReadServer, ReadSettings};
use proto::notify::notification_service_server::NotificationServiceServer;
use service_kit::TokenKeys;
use tokio::sync::watch;

use crate::config::Config;
use crate::grpc::NotifyGrpc;
use crate::projection::NotifyProjection;

/// A bound, ready-to-run notification service.
pub struct Application<S> {
    server: ReadServer<NotifyProjection, S>,
    keys: TokenKeys,
    config: Config,
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
        let settings = ReadSettings {
            listen: config.listen,
            database_url: config.database_url.clone(),
            batch_size: config.batch_size,
            pool_size: 4,
        };
        let server = ReadServer::bind(&settings, NotifyProjection, store).await?;
        // The delivery tables too before anything starts.
        let mut client = projections::connect(&config.database_url).await?;
        crate::delivery::prepare(&mut client).await?;
        Ok(Self {
            server,
            keys,
            config,
        })
    }

    /// Serves over TLS with this identity.
    pub fn with_tls(mut self, tls: service_kit::server::ServerTls) -> Self {
        self.server = self.server.with_tls(tls);
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The projection's checkpoint, as it moves.
    pub fn checkpoint(&self) -> watch::Receiver<u64> {
        self.server.checkpoint()
    }

    /// Runs the projection, the delivery worker and the server until
    /// `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Self {
            server,
            keys,
            config,
        } = self;
        server
            .run(
                |started| {
                    let worker = tokio::spawn(crate::delivery::run(
                        config.database_url.clone(),
                        config.smtp.clone(),
                        config.clock.clone(),
                        started.checkpoint,
                        started.stopping,
                    ));
                    let grpc = NotifyGrpc::new(
                        started.pool,
                        keys,
                        started.serving,
                        config.wait_for_position,
                    );
                    (NotificationServiceServer::new(grpc), vec![worker])
                },
                shutdown,
            )
            .await
    }
}
