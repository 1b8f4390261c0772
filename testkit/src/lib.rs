//! Careline in one process, for tests: [`System::start`] brings up the
//! command service and whichever read services a test asks for, each on
//! port 0, against one new stream and one new database (both removed when
//! the system is dropped), and hands out clients that carry a person's
//! token.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use command_service::client::Bearer;
use command_service::demo::{DemoOrg, Signer};
use event_store::EventStore;
use event_store::testing::TestStream;
use projections::testing::TestDatabase;
use proto::audit::audit_service_client::AuditServiceClient;
use proto::inbox::inbox_service_client::InboxServiceClient;
use proto::notify::notification_service_client::NotificationServiceClient;
use service_kit::{Caller, TokenIssuer, TokenKeys};
use tokio::sync::{oneshot, watch};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Inbox = InboxServiceClient<InterceptedService<Channel, Bearer>>;
pub type Audit = AuditServiceClient<InterceptedService<Channel, Bearer>>;
pub type Notify = NotificationServiceClient<InterceptedService<Channel, Bearer>>;

/// The issuer of every test's tokens.
pub fn issuer() -> TokenIssuer {
    service_kit::test_issuer()
}

/// The keys every service under test checks tokens with.
pub fn keys() -> TokenKeys {
    issuer().verifier()
}

/// A plaintext channel to a service on this machine.
pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// The inbox service's settings for a test: port 0, `db`, `stream`.
pub fn inbox_config(
    db: &TestDatabase,
    stream: &TestStream,
    wait: Duration,
) -> inbox_service::Config {
    inbox_service::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: db.url.clone(),
        store: stream.config().clone(),
        wait_for_position: wait,
        batch_size: 500,
        pool_size: 4,
        record_reads: true,
    }
}

/// Which read services to start beside the command service.
#[derive(Debug, Clone, Default)]
pub struct Services {
    pub inbox: bool,
    pub audit: bool,
    /// The notification service, mailing through this SMTP server.
    pub notify: Option<notify_service::Smtp>,
    /// How long a query waits for its `min_position` (default 5 s).
    pub wait: Option<Duration>,
    /// The delivery worker's clock (default: the system's).
    pub clock: Option<notify_service::Clock>,
}

impl Services {
    /// Every service; notifications mail to a port where nothing listens
    /// (deliveries wait and retry).
    pub fn all() -> Self {
        Self {
            inbox: true,
            audit: true,
            notify: Some(smtp(9)),
            wait: None,
            clock: None,
        }
    }
}

/// SMTP settings for a local server on `port`, retrying fast.
pub fn smtp(port: u16) -> notify_service::Smtp {
    notify_service::Smtp {
        host: "127.0.0.1".into(),
        port,
        tls: notify_service::TlsMode::None,
        credentials: None,
        from: "Careline <no-reply@careline.test>".parse().unwrap(),
        domain: "careline.test".into(),
        base_url: "https://careline.test".into(),
        max_attempts: 100,
        backoff: Duration::from_millis(100),
        poll: Duration::from_millis(100),
        coalesce: Duration::ZERO,
        reminder_after: Duration::from_secs(7 * 86_400),
    }
}

/// The running services; stopped, and their stream and database removed,
/// on drop.
pub struct System {
    pub stream: TestStream,
    pub db: TestDatabase,
    pub signer: Signer,
    inbox: Option<Channel>,
    audit: Option<Channel>,
    notify: Option<Channel>,
    /// Each started projection's checkpoint.
    checkpoints: Vec<watch::Receiver<u64>>,
    audit_checkpoint: Option<watch::Receiver<u64>>,
    _stops: Vec<oneshot::Sender<()>>,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("stream", &self.stream.config().stream)
            .finish()
    }
}

fn stopper() -> (oneshot::Sender<()>, impl Future<Output = ()> + Send) {
    let (stop, stopped) = oneshot::channel::<()>();
    (stop, async {
        let _ = stopped.await;
    })
}

impl System {
    /// Starts the command service and `services` on a new stream and
    /// database named after `label`.
    pub async fn start(label: &str, services: Services) -> Self {
        let stream = TestStream::new(label).await;
        let db = TestDatabase::new(label).await;
        let store = stream.store().clone();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let wait = services.wait.unwrap_or(Duration::from_secs(5));
        let mut stops = Vec::new();
        let mut checkpoints = Vec::new();

        let command = command_service::Application::with_app(
            any,
            command_service::App::new(store.clone(), 10_000),
            keys(),
        )
        .await
        .unwrap();
        let command_addr = command.local_addr();
        let (stop, stopped) = stopper();
        tokio::spawn(command.run(stopped));
        stops.push(stop);

        let mut inbox = None;
        if services.inbox {
            let app = inbox_service::Application::with_store(
                inbox_config(&db, &stream, wait),
                store.clone(),
                keys(),
            )
            .await
            .unwrap();
            checkpoints.push(app.checkpoint());
            inbox = Some(channel(app.local_addr()).await);
            let (stop, stopped) = stopper();
            tokio::spawn(app.run(stopped));
            stops.push(stop);
        }

        let mut audit = None;
        let mut audit_checkpoint = None;
        if services.audit {
            let app = audit_service::Application::with_store(
                audit_service::Config {
                    listen: any,
                    database_url: db.url.clone(),
                    store: stream.config().clone(),
                    wait_for_position: wait,
                    batch_size: 500,
                    pool_size: 4,
                    export_stall: Duration::from_secs(60),
                },
                store.clone(),
                keys(),
            )
            .await
            .unwrap();
            checkpoints.push(app.checkpoint());
            audit_checkpoint = Some(app.checkpoint());
            audit = Some(channel(app.local_addr()).await);
            let (stop, stopped) = stopper();
            tokio::spawn(app.run(stopped));
            stops.push(stop);
        }

        let mut notify = None;
        if let Some(smtp) = services.notify {
            let app = notify_service::Application::with_store(
                notify_service::Config {
                    listen: any,
                    database_url: db.url.clone(),
                    store: stream.config().clone(),
                    smtp,
                    wait_for_position: wait,
                    batch_size: 100,
                    clock: services
                        .clock
                        .clone()
                        .unwrap_or_else(notify_service::Clock::system),
                },
                store,
                keys(),
            )
            .await
            .unwrap();
            checkpoints.push(app.checkpoint());
            notify = Some(channel(app.local_addr()).await);
            let (stop, stopped) = stopper();
            tokio::spawn(app.run(stopped));
            stops.push(stop);
        }

        System {
            signer: Signer::new(channel(command_addr).await, issuer()),
            inbox,
            audit,
            notify,
            checkpoints,
            audit_checkpoint,
            stream,
            db,
            _stops: stops,
        }
    }

    /// The demo organisation, seeded through the command service.
    pub async fn org(&self) -> DemoOrg {
        command_service::demo::seed(&self.signer).await.unwrap()
    }

    /// The log's head position.
    pub async fn head(&self) -> u64 {
        self.stream.store().last_position().await.unwrap()
    }

    /// Waits until every started projection has applied the whole log;
    /// answers the head it waited for.
    pub async fn settled(&self) -> u64 {
        let head = self.head().await;
        for checkpoint in &self.checkpoints {
            let mut at = checkpoint.clone();
            tokio::time::timeout(Duration::from_secs(10), at.wait_for(|&c| c >= head))
                .await
                .expect("a projection did not catch up in 10 s")
                .unwrap();
        }
        head
    }

    /// The audit projection's checkpoint (the audit service must run).
    pub fn audit_checkpoint(&self) -> watch::Receiver<u64> {
        self.audit_checkpoint
            .clone()
            .expect("the audit service runs")
    }

    fn bearer(&self, who: &Caller) -> Bearer {
        Bearer::new(&self.signer.token(who)).unwrap()
    }

    /// The inbox API as `who` (the inbox service must run).
    pub fn inbox(&self, who: &Caller) -> Inbox {
        self.inbox_with_token(&self.signer.token(who))
    }

    /// The inbox API with any token.
    pub fn inbox_with_token(&self, token: &str) -> Inbox {
        InboxServiceClient::with_interceptor(
            self.inbox.clone().expect("the inbox service runs"),
            Bearer::new(token).unwrap(),
        )
    }

    /// The audit API as `who` (the audit service must run).
    pub fn audit(&self, who: &Caller) -> Audit {
        AuditServiceClient::with_interceptor(
            self.audit.clone().expect("the audit service runs"),
            self.bearer(who),
        )
    }

    /// The audit API without a token.
    pub fn audit_without_token(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.audit.clone().expect("the audit service runs"))
    }

    /// The notification API as `who` (the notification service must run).
    pub fn notify(&self, who: &Caller) -> Notify {
        NotificationServiceClient::with_interceptor(
            self.notify.clone().expect("the notification service runs"),
            self.bearer(who),
        )
    }
}
