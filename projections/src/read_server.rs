//! What every read service is besides its projection, queries and gRPC
//! methods: bind the port, prepare the projection's tables and views, run
//! the projection (supervised) beside the server, and stop both on one
//! shutdown, the batch and the calls in flight finishing first.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use event_store::EventStore;
use service_kit::server::ServerTls;
use tokio::sync::watch;
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;

use crate::{Mode, Projection, Runner, RunnerConfig, Serving};

/// A bound read service, ready to run.
pub struct ReadServer<P, S> {
    listener: tokio::net::TcpListener,
    runner: Arc<Runner<P, S>>,
    pool: deadpool_postgres::Pool,
    tls: Option<ServerTls>,
}

impl<P, S> std::fmt::Debug for ReadServer<P, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadServer").finish_non_exhaustive()
    }
}

/// What a read service's gRPC service is made from when it starts.
#[derive(Debug)]
pub struct Started {
    /// The live projection's progress, for read-your-writes.
    pub serving: Serving,
    /// Readers' connections (the projection's views first on the path).
    pub pool: deadpool_postgres::Pool,
    /// The projection's checkpoint, as it moves.
    pub checkpoint: watch::Receiver<u64>,
    /// Becomes true when the service stops: for tasks beside the server.
    pub stopping: watch::Receiver<bool>,
}

/// Where a read service keeps its read model, and how it applies the log.
#[derive(Clone, Debug)]
pub struct ReadSettings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub batch_size: usize,
    pub pool_size: usize,
}

impl<P: Projection, S: EventStore> ReadServer<P, S> {
    /// Binds `settings.listen`, prepares the projection's tables and views
    /// (queries may come in before the runner starts), and builds its live
    /// runner and readers' pool.
    pub async fn bind(settings: &ReadSettings, projection: P, store: S) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let mut client = crate::connect(&settings.database_url).await?;
        crate::prepare(&mut client, &projection).await?;
        drop(client);
        let views = crate::views_schema(&projection);
        let runner = Arc::new(Runner::new(
            Arc::new(projection),
            store,
            RunnerConfig {
                database_url: settings.database_url.clone(),
                batch_size: settings.batch_size,
            },
            Mode::Live,
        ));
        Ok(Self {
            listener,
            runner,
            pool: crate::pool(&settings.database_url, settings.pool_size, views)?,
            tls: None,
        })
    }

    /// Serves over TLS with this identity.
    pub fn with_tls(mut self, tls: ServerTls) -> Self {
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

    /// Runs the projection and serves what `service` makes of it until
    /// `shutdown` resolves; then stops the projection, and waits for the
    /// tasks `service` started beside the server (told by `stopping`).
    pub async fn run<Svc>(
        self,
        service: impl FnOnce(Started) -> (Svc, Vec<tokio::task::JoinHandle<()>>),
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()>
    where
        Svc: Service<
                http::Request<Body>,
                Response = http::Response<Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        Svc::Future: Send + 'static,
    {
        let (stop, stopping) = watch::channel(false);
        let (serving, projection) = crate::supervise(self.runner.clone(), stopping.clone());
        let (svc, beside) = service(Started {
            serving,
            pool: self.pool,
            checkpoint: self.runner.checkpoint(),
            stopping,
        });
        tracing::info!(addr = %self.listener.local_addr()?, service = Svc::NAME, "listening");
        let served =
            service_kit::server::serve(self.listener, svc, self.tls.as_ref(), shutdown).await;
        let _ = stop.send(true);
        let _ = projection.await;
        for task in beside {
            let _ = task.await;
        }
        served?;
        Ok(())
    }
}
