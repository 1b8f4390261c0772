//! Building the service: bind first (port 0 in tests), then serve until told
//! to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use event_store::{EventStore, JetStreamStore};
use proto::command::command_service_server::CommandServiceServer;
use service_kit::TokenKeys;

use crate::app::App;
use crate::config::Config;
use crate::grpc::CommandGrpc;
use crate::grpc::sign_in::{SignIn, SignInSettings};

/// A bound, ready-to-run command service.
#[derive(Debug)]
pub struct Application<S> {
    listener: tokio::net::TcpListener,
    app: Arc<App<S>>,
    keys: TokenKeys,
    sign_in: Arc<SignIn>,
    tls: Option<service_kit::server::ServerTls>,
    metrics: Option<SocketAddr>,
    systems: Option<service_kit::system_credential::SystemKeys>,
}

/// The binary: connects to the event log and binds the configured address.
impl service_kit::Service for Application<JetStreamStore> {
    type Config = Config;

    fn config_from_env() -> anyhow::Result<Config> {
        Config::from_env()
    }

    async fn build(config: Config) -> anyhow::Result<Self> {
        let store = JetStreamStore::connect_patiently(config.store).await?;
        let files = store.files().await?;
        let mut app = App::new(store, config.cache_capacity);
        if let Some(files) = files {
            app = app.with_files(files, config.max_file_bytes);
        }
        if let Some(links) = config.email_links {
            app = app.with_email_links(links);
        } else {
            tracing::warn!(
                "CARELINE_EMAIL_LINK_PUBLIC_KEYS is not set: no email address can be verified"
            );
        }
        if config.posts_per_minute > 0 {
            app = app.with_post_limit(config.posts_per_minute);
        }
        if config.sign_in.demo {
            tracing::warn!(
                "CARELINE_DEMO_SIGN_IN is on: anyone may sign in as anyone (a demo only)"
            );
        }
        let sign_in = SignIn::new(config.sign_in, Some(&config.public_keys))
            .map_err(|e| anyhow::anyhow!("CARELINE_TOKEN_PUBLIC_KEYS: {e}"))?;
        let mut server = Self::with_app(config.listen, app, config.keys)
            .await?
            .with_sign_in(sign_in);
        server.metrics = config.metrics;
        server.systems = config.systems;
        Ok(match config.tls {
            Some(tls) => server.with_tls(tls),
            None => server,
        })
    }

    /// Commands by type (method) and outcome (status code) and their
    /// latency, from [`service_kit::server::serve`]; ready while the log
    /// answers.
    fn metrics(&self) -> Option<(SocketAddr, service_kit::metrics::Endpoint)> {
        Some((self.metrics?, self.readiness()))
    }

    fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        Self::run(self, shutdown)
    }
}

impl<S: EventStore> Application<S> {
    /// Binds `listen` for an already-built write side.
    pub async fn with_app(
        listen: SocketAddr,
        app: App<S>,
        keys: TokenKeys,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        Ok(Self {
            listener,
            app: Arc::new(app),
            keys,
            sign_in: Arc::new(
                SignIn::new(SignInSettings::default(), None)
                    .unwrap_or_else(|e| unreachable!("no keys to read: {e}")),
            ),
            tls: None,
            metrics: None,
            systems: None,
        })
    }

    /// Signs people in with `sign_in` (without it, `SignIn` is refused).
    pub fn with_sign_in(mut self, sign_in: SignIn) -> Self {
        self.sign_in = Arc::new(sign_in);
        self
    }

    /// Takes notices from the hospital systems whose credentials these
    /// keys check.
    pub fn with_systems(mut self, keys: service_kit::system_credential::SystemKeys) -> Self {
        self.systems = Some(keys);
        self
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

    /// Ready while the event log answers.
    fn readiness(&self) -> service_kit::metrics::Endpoint {
        let store = self.app.store().clone();
        let check = service_kit::metrics::Check::answering("event log", move || {
            let store = store.clone();
            async move { store.last_position().await }
        });
        service_kit::metrics::Endpoint::new(vec![], vec![check])
    }

    /// Serves until `shutdown` resolves; calls in flight finish first.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr(), "command service listening");
        let readiness = self.readiness();
        let service = CommandServiceServer::new(
            CommandGrpc::new(self.app, self.keys, self.sign_in).with_systems(self.systems),
        );
        service_kit::server::serve(
            self.listener,
            service,
            self.tls.as_ref(),
            readiness,
            shutdown,
        )
        .await?;
        Ok(())
    }
}
