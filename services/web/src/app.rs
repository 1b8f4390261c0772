//! The web service as a process: its port, readiness (every service the
//! pages ask answers), metrics, presence shared between instances, and
//! stopping.

use tonic::transport::Channel;

use crate::session::Sessions;
use crate::{Backends, Config, Web, oidc, presence, read_demo_people, router};

/// The web service as a process.
#[derive(Debug)]
pub struct Application {
    listener: tokio::net::TcpListener,
    web: Web,
    metrics: Option<std::net::SocketAddr>,
    /// The sessions' database, where presence is shared too.
    shared: Option<String>,
    /// Ready while every service the pages ask can answer.
    readiness: service_kit::metrics::Endpoint,
}

/// Ready while `channel`'s service says, by gRPC health, that it serves
/// `service` (it says not when its own NATS or PostgreSQL is gone).
fn serving(
    name: &'static str,
    channel: Channel,
    service: &'static str,
) -> service_kit::metrics::Check {
    service_kit::metrics::Check::new(name, move || {
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        async move {
            let answer = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: service.to_string(),
                })
                .await
                .map_err(|e| format!("unreachable: {}", e.message()))?;
            match answer.into_inner().status() {
                tonic_health::pb::health_check_response::ServingStatus::Serving => Ok(()),
                other => Err(other.as_str_name().to_lowercase()),
            }
        }
    })
}

impl Application {
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

impl service_kit::Service for Application {
    type Config = Config;

    fn config_from_env() -> anyhow::Result<Config> {
        Config::from_settings(&careline_settings::Settings::from_env())
    }

    async fn build(config: Config) -> anyhow::Result<Self> {
        let connect = |url: String| async move {
            service_kit::server::connect(&url)
                .await
                .map_err(|e| anyhow::anyhow!("{url}: {e}"))
        };
        let backends = Backends {
            command: connect(config.command_url.clone()).await?,
            inbox: connect(config.inbox_url.clone()).await?,
            audit: connect(config.audit_url.clone()).await?,
            notify: connect(config.notify_url.clone()).await?,
        };
        let mut checks = vec![
            serving(
                "command service",
                backends.command.clone(),
                "careline.command.v1.CommandService",
            ),
            serving(
                "inbox service",
                backends.inbox.clone(),
                "careline.inbox.v1.InboxService",
            ),
            serving(
                "audit service",
                backends.audit.clone(),
                "careline.audit.v1.AuditService",
            ),
            serving(
                "notification service",
                backends.notify.clone(),
                "careline.notify.v1.NotificationService",
            ),
        ];
        let demo = match &config.demo_people {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("CARELINE_WEB_DEMO_PEOPLE {}: {e}", path.display())
                })?;
                Some(read_demo_people(&text)?)
            }
            None => None,
        };
        let oidc = match &config.oidc {
            Some(settings) => Some(oidc::Oidc::discover(settings.clone()).await.map_err(|e| {
                anyhow::anyhow!("CARELINE_WEB_OIDC_ISSUER {}: {e}", settings.issuer)
            })?),
            None => None,
        };
        let sessions = match &config.sessions_database {
            Some(url) => {
                let pool = careline_pg::pool(url, 8, "careline_web")
                    .map_err(|e| anyhow::anyhow!("CARELINE_WEB_DATABASE_URL: {e}"))?;
                let sessions = Sessions::in_database(pool.clone(), config.idle, config.absolute);
                checks.push(careline_pg::answers("sessions database", pool));
                sessions
                    .prepare()
                    .await
                    .map_err(|e| anyhow::anyhow!("CARELINE_WEB_DATABASE_URL: {e}"))?;
                sessions
            }
            None => Sessions::new(config.idle, config.absolute),
        };
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|e| anyhow::anyhow!("CARELINE_WEB_ADDR {}: {e}", config.addr))?;
        Ok(Self {
            listener,
            web: Web::with_sessions(backends, &config, demo, oidc, sessions),
            metrics: config.metrics,
            shared: config.sessions_database.clone(),
            readiness: service_kit::metrics::Endpoint::new(vec![], checks),
        })
    }

    /// Requests by route and status and their latency; ready while every
    /// service the pages ask serves (by its gRPC health, which follows its
    /// own readiness) and the sessions' database answers.
    fn metrics(&self) -> Option<(std::net::SocketAddr, service_kit::metrics::Endpoint)> {
        Some((self.metrics?, self.readiness.clone()))
    }

    async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        tracing::info!(addr = %self.listener.local_addr()?, demo = self.web.demo(), "web pages served");
        if let Some(url) = self.shared.clone() {
            tokio::spawn(presence::relay(self.web.inner.presence.clone(), url));
        }
        let web = self.web.clone();
        let app = router(self.web).into_make_service_with_connect_info::<std::net::SocketAddr>();
        // Told to stop: no new connections, and every live stream ends
        // now (a browser's reconnects to another instance), so the calls
        // in flight are all that is waited for.
        let shutdown = async move {
            shutdown.await;
            web.inner.stopping.send_replace(true);
        };
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
