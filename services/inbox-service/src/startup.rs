//! Building the inbox service: the read services' scaffold
//! (`projections::ReadServer`) around the inbox projection, its record of
//! reads and its gRPC methods.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use event_store::{EventStore, JetStreamStore};
use projections::{ReadServer, ReadSettings};
use proto::inbox::inbox_service_server::InboxServiceServer;
use service_kit::TokenKeys;
use tokio::sync::watch;

use crate::access::AccessLog;
use crate::config::Config;
use crate::grpc::InboxGrpc;
use crate::projection::InboxProjection;

/// A bound, ready-to-run inbox service.
pub struct Application<S> {
    server: ReadServer<InboxProjection, S>,
    keys: TokenKeys,
    wait: Duration,
    access: AccessLog,
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
        let access = if config.record_reads {
            AccessLog::recording(store.clone())
        } else {
            AccessLog::off()
        };
        let settings = ReadSettings {
            listen: config.listen,
            database_url: config.database_url.clone(),
            batch_size: config.batch_size,
            pool_size: config.pool_size,
        };
        Ok(Self {
            server: ReadServer::bind(&settings, InboxProjection, store).await?,
            keys,
            wait: config.wait_for_position,
            access,
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

    /// Runs the projection and serves queries until `shutdown` resolves; the
    /// batch in flight and the calls in flight finish first.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Self {
            server,
            keys,
            wait,
            access,
        } = self;
        server
            .run(
                |started| {
                    let grpc = InboxGrpc::new(started.pool, keys, started.serving, wait, access);
                    (InboxServiceServer::new(grpc), Vec::new())
                },
                shutdown,
            )
            .await
    }
}
