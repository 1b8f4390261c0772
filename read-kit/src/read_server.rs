//! What every read service is besides its projection, queries and gRPC
//! methods: its settings, binding the port, preparing the projection's
//! tables and views, running the projection (supervised) beside the server,
//! and stopping both on one shutdown, the batch and the calls in flight
//! finishing first.
//!
//! A read service implements [`ReadParts`] (its configuration, projection
//! and gRPC methods); [`ReadApplication`] is the rest, and its binary's
//! `main` is `service_kit::main` of it.

use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use careline_settings::Settings;
use event_store::{EventStore, JetStreamStore, StoreConfig};
use service_kit::metrics::{Check, Endpoint, Gauge};
use service_kit::server::{ServerTls, TLS_CERT_VAR, TLS_KEY_VAR};
use service_kit::{Caller, TokenKeys};
use tokio::sync::watch;
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;

use projections::{Mode, Projection, Runner, RunnerConfig, Serving};

use crate::{QueryError, ReadService};

/// A bound read service, ready to run.
pub struct ReadServer<P, S> {
    listener: tokio::net::TcpListener,
    runner: Arc<Runner<P, S>>,
    pool: deadpool_postgres::Pool,
    keys: TokenKeys,
    accounts: Accounts,
    wait: Duration,
    tls: Option<ServerTls>,
    store: S,
}

impl<P, S> std::fmt::Debug for ReadServer<P, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadServer").finish_non_exhaustive()
    }
}

/// What a read service's gRPC service is made from when it starts.
#[derive(Debug)]
pub struct Started<N: ReadService> {
    /// What every call of the service reads with.
    pub reader: Reader<N>,
    /// The projection's checkpoint, as it moves.
    pub checkpoint: watch::Receiver<u64>,
    /// Becomes true when the service stops: for tasks beside the server.
    pub stopping: watch::Receiver<bool>,
}

/// What every call of a read service starts from: who is calling, has the
/// projection reached what they wrote, and a connection to read with.
pub struct Reader<N: ReadService> {
    /// Readers' connections (the projection's views first on the path).
    pub pool: deadpool_postgres::Pool,
    keys: TokenKeys,
    accounts: Accounts,
    serving: Serving,
    wait: Duration,
    name: PhantomData<N>,
}

impl<N: ReadService> Clone for Reader<N> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            keys: self.keys.clone(),
            accounts: self.accounts.clone(),
            serving: self.serving.clone(),
            wait: self.wait,
            name: PhantomData,
        }
    }
}

impl<N: ReadService> std::fmt::Debug for Reader<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("service", &N::NAME)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl<N: ReadService> Reader<N> {
    /// The caller the request's bearer token names (UNAUTHENTICATED without
    /// one), refused if their account is closed (PERMISSION_DENIED,
    /// "account deactivated"): the read model first applies the person's
    /// last event in the log, then its `deactivated_people` table is asked,
    /// so a deactivation counts from its event on, whatever token is held.
    pub async fn authenticate<T>(
        &self,
        request: &tonic::Request<T>,
    ) -> Result<Caller, tonic::Status> {
        let caller = self.keys.authenticate(request)?;
        self.open_account(&caller).await?;
        Ok(caller)
    }

    async fn open_account(&self, caller: &Caller) -> Result<(), QueryError<N>> {
        let person = caller.person_id.to_string();
        let last = (self.accounts.last_event)(person.clone()).await?;
        if last > 0 {
            self.reached(last).await?;
            let client = self.client().await?;
            if client.query_opt(DEACTIVATED, &[&person]).await?.is_some() {
                return Err(QueryError::Refused {
                    code: tonic::Code::PermissionDenied,
                    reason: service_kit::reason::ACCOUNT_CLOSED,
                    message: "account deactivated: an admin closed this account".into(),
                });
            }
        }
        Ok(())
    }

    /// Waits (at most the configured wait) until the projection has applied
    /// `min`; answers the position reached, or UNAVAILABLE saying how far
    /// behind it is.
    pub async fn reached(&self, min: u64) -> Result<u64, QueryError<N>> {
        self.serving
            .reached(min, self.wait)
            .await
            .map_err(|e| QueryError::Unavailable(format!("{} has {e}", N::READ_MODEL)))
    }

    /// A pooled connection.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, QueryError<N>> {
        Ok(self.pool.get().await?)
    }
}

/// Every read model keeps who is deactivated in a table of this name
/// (`person_id text PRIMARY KEY`), set by `PersonDeactivated` and cleared
/// by `PersonReactivated`.
const DEACTIVATED: &str = "SELECT 1 FROM deactivated_people WHERE person_id = $1";

/// The position of a person's last event in the log (0: none).
#[derive(Clone)]
struct Accounts {
    last_event: Arc<
        dyn Fn(String) -> futures::future::BoxFuture<'static, Result<u64, event_store::Error>>
            + Send
            + Sync,
    >,
}

impl Accounts {
    fn of<S: EventStore>(store: S) -> Self {
        use futures::FutureExt;
        let last_event = move |person: String| {
            let store = store.clone();
            async move {
                let aggregate =
                    event_store::AggregateRef::new(proto::events::AggregateType::Person, person)?;
                store.version(&aggregate).await
            }
            .boxed()
        };
        Self {
            last_event: Arc::new(last_event),
        }
    }
}

/// What every read service is configured with: where it listens and keeps
/// its read model, where the log is, how it applies it, and how callers
/// are checked.
#[derive(Clone, Debug)]
pub struct ReadSettings {
    /// `CARELINE_<NAME>_ADDR`.
    pub listen: SocketAddr,
    /// `DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/careline.
    pub database_url: String,
    pub store: StoreConfig,
    /// `CARELINE_<NAME>_BATCH`: most events per projection transaction.
    pub batch_size: usize,
    /// `CARELINE_<NAME>_POOL`: database connections for queries.
    pub pool_size: usize,
    /// `CARELINE_<NAME>_WAIT_MS`: how long a query waits for its
    /// `min_position`, default 2000.
    pub wait_for_position: Duration,
    /// `CARELINE_TOKEN_PUBLIC_KEYS`.
    pub keys: TokenKeys,
    /// `CARELINE_TLS_CERT` and `CARELINE_TLS_KEY`, or plaintext.
    pub tls: Option<ServerTls>,
    /// `CARELINE_<NAME>_METRICS_ADDR`: where metrics, `/livez` and
    /// `/readyz` are served (by the binary); unset, nowhere.
    pub metrics: Option<SocketAddr>,
}

/// One read service's name in its settings, and its defaults.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// `INBOX` reads `CARELINE_INBOX_ADDR` and the rest.
    pub name: &'static str,
    pub port: u16,
    pub batch: u64,
    pub pool: u64,
}

impl ReadSettings {
    pub fn from_settings(s: &Settings, d: Defaults) -> anyhow::Result<Self> {
        let var = |what: &str| format!("CARELINE_{}_{what}", d.name);
        Ok(Self {
            listen: s.address(&var("ADDR"), &format!("127.0.0.1:{}", d.port))?,
            database_url: s.database_url(),
            store: StoreConfig::from_settings(s)?,
            batch_size: s.number_in(&var("BATCH"), d.batch, projections::BATCH_SIZES)? as usize,
            pool_size: s.number(&var("POOL"), d.pool)?.max(1) as usize,
            wait_for_position: s.millis(&var("WAIT_MS"), 2000)?,
            keys: TokenKeys::from_setting(s.get(service_kit::auth::PUBLIC_KEYS_VAR))
                .map_err(anyhow::Error::msg)?,
            tls: ServerTls::from_setting(s.pair(TLS_CERT_VAR, TLS_KEY_VAR)?)
                .map_err(anyhow::Error::msg)?,
            metrics: s.optional_address(&var("METRICS_ADDR"))?,
        })
    }
}

impl<P: Projection, S: EventStore> ReadServer<P, S> {
    /// Binds `settings.listen`, prepares the projection's tables and views
    /// (queries may come in before the runner starts), and builds its live
    /// runner and readers' pool.
    pub async fn bind(settings: &ReadSettings, projection: P, store: S) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let mut client = projections::connect(&settings.database_url).await?;
        projections::prepare(&mut client, &projection).await?;
        drop(client);
        let views = projections::views_schema(&projection);
        let accounts = Accounts::of(store.clone());
        let runner = Arc::new(Runner::new(
            Arc::new(projection),
            store.clone(),
            RunnerConfig::new(settings.database_url.clone(), settings.batch_size),
            Mode::Live,
        ));
        Ok(Self {
            listener,
            runner,
            pool: projections::pool(&settings.database_url, settings.pool_size, views)?,
            keys: settings.keys.clone(),
            accounts,
            wait: settings.wait_for_position,
            tls: settings.tls.clone(),
            store,
        })
    }

    /// What the metrics endpoint reads: the projection's checkpoint, the
    /// log's head and the lag between them; ready while the log and
    /// PostgreSQL answer. `more`: the service's own gauges.
    pub fn endpoint(&self, more: Vec<Gauge>) -> Endpoint {
        let name = self.runner.name();
        let checkpoint = self.runner.checkpoint();
        let at = move || {
            let checkpoint = checkpoint.clone();
            async move { *checkpoint.borrow() }
        };
        let store = self.store.clone();
        let head = move || {
            let store = store.clone();
            async move { store.last_position().await.ok() }
        };
        let labels = move || vec![("projection", name.to_string())];
        let mut gauges = vec![
            Gauge::new(
                "careline_projection_checkpoint",
                "The last log position the projection applied.",
                {
                    let at = at.clone();
                    move || {
                        let at = at();
                        async move { vec![(labels(), at.await as f64)] }
                    }
                },
            ),
            Gauge::new(
                "careline_projection_lag",
                "Events in the log the projection has not applied yet.",
                {
                    let (at, head) = (at.clone(), head.clone());
                    move || {
                        let (at, head) = (at(), head());
                        async move {
                            match head.await {
                                Some(head) => {
                                    vec![(labels(), head.saturating_sub(at.await) as f64)]
                                }
                                None => vec![],
                            }
                        }
                    }
                },
            ),
            Gauge::new("careline_log_head", "The log's last position.", {
                let head = head.clone();
                move || {
                    let head = head();
                    async move {
                        head.await
                            .map(|h| vec![(vec![], h as f64)])
                            .unwrap_or_default()
                    }
                }
            }),
        ];
        let pool = self.pool.clone();
        gauges.push(Gauge::new(
            "careline_projection_set_aside",
            "Events the projection set aside: undecodable, forged (on a subject that may not carry them), or not applicable.",
            move || {
                let pool = pool.clone();
                async move {
                    let Ok(client) = pool.get().await else {
                        return vec![];
                    };
                    match projections::dead_letter_count(&**client, name).await {
                        Ok(n) => vec![(labels(), n as f64)],
                        Err(_) => vec![],
                    }
                }
            },
        ));
        gauges.extend(more);
        let store = self.store.clone();
        let pool = self.pool.clone();
        Endpoint::new(
            gauges,
            vec![
                Check::answering("event log", move || {
                    let store = store.clone();
                    async move { store.last_position().await }
                }),
                careline_pg::answers("postgres", pool),
            ],
        )
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
    pub async fn run<N: ReadService, Svc>(
        self,
        service: impl FnOnce(Started<N>) -> (Svc, Vec<tokio::task::JoinHandle<()>>),
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
        let readiness = self.endpoint(vec![]);
        let (stop, stopping) = watch::channel(false);
        let (serving, projection) = projections::supervise(self.runner.clone(), stopping.clone());
        let (svc, beside) = service(Started {
            reader: Reader {
                pool: self.pool,
                keys: self.keys,
                accounts: self.accounts,
                serving,
                wait: self.wait,
                name: PhantomData,
            },
            checkpoint: self.runner.checkpoint(),
            stopping,
        });
        tracing::info!(addr = %self.listener.local_addr()?, service = Svc::NAME, "listening");
        // Told to stop, the tasks beside the server and every live stream
        // (`Watch`) are told at once: the server waits for its calls in
        // flight, and a stream would otherwise hold it as long as a page
        // stays open.
        let stop = &stop;
        let shutdown = async move {
            shutdown.await;
            stop.send_replace(true);
        };
        let served =
            service_kit::server::serve(self.listener, svc, self.tls.as_ref(), readiness, shutdown)
                .await;
        let _ = stop.send(true);
        let _ = projection.await;
        for task in beside {
            let _ = task.await;
        }
        served?;
        Ok(())
    }
}

/// A read service's configuration: the read services' settings and its own.
pub trait ReadConfig: Sized + Send {
    /// The configuration, read through `settings`.
    fn from_settings(settings: &Settings) -> anyhow::Result<Self>;
    /// The read services' part of it.
    fn read(&self) -> &ReadSettings;
}

/// What makes one read service: its configuration, its projection, any
/// tables of its own, and its gRPC methods (and tasks beside them).
pub trait ReadParts<S: EventStore>: Sized + Send + 'static {
    type Config: ReadConfig;
    /// The service's name in its errors.
    type Name: ReadService;
    type Projection: Projection;
    type Grpc: Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = std::convert::Infallible,
            Future: Send,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static;

    /// The parts, from the configuration and the log.
    fn new(config: Self::Config, store: &S) -> Self;
    fn projection(&self) -> Self::Projection;
    /// Prepares tables of the service's own, beside the projection's.
    fn prepare(
        &self,
        _client: &mut tokio_postgres::Client,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        async { Ok(()) }
    }
    /// Gauges of the service's own for its metrics endpoint, read with
    /// `pool` (the readers' connections) when scraped.
    fn gauges(&self, _pool: &deadpool_postgres::Pool) -> Vec<Gauge> {
        Vec::new()
    }
    /// The gRPC service, and any tasks it starts beside the server.
    fn start(self, started: Started<Self::Name>) -> (Self::Grpc, Vec<tokio::task::JoinHandle<()>>);
}

/// A bound read service, ready to run: [`ReadServer`] around its parts.
pub struct ReadApplication<R: ReadParts<S>, S: EventStore> {
    server: ReadServer<R::Projection, S>,
    parts: R,
    metrics: Option<SocketAddr>,
}

impl<R: ReadParts<S>, S: EventStore> std::fmt::Debug for ReadApplication<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadApplication").finish_non_exhaustive()
    }
}

impl<R: ReadParts<S>, S: EventStore> ReadApplication<R, S> {
    /// Binds, and prepares the projection's tables and the service's own.
    pub async fn with_store(config: R::Config, store: S) -> anyhow::Result<Self> {
        let settings = config.read().clone();
        let parts = R::new(config, &store);
        let server = ReadServer::bind(&settings, parts.projection(), store).await?;
        let mut client = projections::connect(&settings.database_url).await?;
        parts.prepare(&mut client).await?;
        Ok(Self {
            server,
            parts,
            metrics: settings.metrics,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The projection's checkpoint, as it moves.
    pub fn checkpoint(&self) -> watch::Receiver<u64> {
        self.server.checkpoint()
    }

    /// Runs the projection and serves until `shutdown` resolves; the batch
    /// in flight, the calls in flight and the tasks beside them finish first.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let parts = self.parts;
        self.server
            .run(|started| parts.start(started), shutdown)
            .await
    }
}

impl<R: ReadParts<JetStreamStore>> service_kit::Service for ReadApplication<R, JetStreamStore> {
    type Config = R::Config;

    fn config_from_env() -> anyhow::Result<R::Config> {
        R::Config::from_settings(&Settings::from_env())
    }

    /// Connects to the log named in `config`, then as [`Self::with_store`].
    async fn build(config: R::Config) -> anyhow::Result<Self> {
        let store = JetStreamStore::connect_patiently(config.read().store.clone()).await?;
        Self::with_store(config, store).await
    }

    fn metrics(&self) -> Option<(SocketAddr, Endpoint)> {
        let addr = self.metrics?;
        let more = self.parts.gauges(&self.server.pool);
        Some((addr, self.server.endpoint(more)))
    }

    fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        Self::run(self, shutdown)
    }
}
