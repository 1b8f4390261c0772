//! Building the audit service: the read services' scaffold
//! (`projections::ReadServer`) around the audit projection and its gRPC
//! methods.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use event_store::{EventStore, JetStreamStore};
use projections::{ReadServer, ReadSettings};
use proto::audit::audit_service_server::AuditServiceServer;
use service_kit::TokenKeys;
use tokio::sync::watch;

use crate::config::Config;
use crate::grpc::AuditGrpc;
use crate::projection::AuditProjection;

/// A bound, ready-to-run audit service.
pub struct Application<S> {
    server: ReadServer<AuditProjection, S>,
    store: S,
    keys: TokenKeys,
    wait: Duration,
    export_stall: Duration,
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
            pool_size: config.pool_size,
        };
        Ok(Self {
            server: ReadServer::bind(&settings, AuditProjection, store.clone()).await?,
            store,
            keys,
            wait: config.wait_for_position,
            export_stall: config.export_stall,
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

    /// Runs the projection and serves until `shutdown` resolves; the batch
    /// in flight and the calls in flight finish first.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Self {
            server,
            store,
            keys,
            wait,
            export_stall,
        } = self;
        server
            .run(
                |started| {
                    let grpc = AuditGrpc::new(
                        started.pool,
                        keys,
                        started.serving,
                        wait,
                        store,
                        export_stall,
                    );
                    (AuditServiceServer::new(grpc), Vec::new())
                },
                shutdown,
            )
            .await
    }
}
