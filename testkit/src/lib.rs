//! Careline in one process, for tests: [`System::start`] brings up the
//! command service and whichever read services a test asks for, each on
//! port 0, against one new stream and one new database (both removed when
//! the system is dropped), and hands out clients that carry a person's
//! token.

#![allow(clippy::unwrap_used)]

pub mod idp;
pub mod mail;
pub mod oidc;

use std::net::SocketAddr;
use std::time::Duration;

use audit_service::startup::AuditParts;
use careline_client::Steps;
use careline_client::bearer::Bearer;
use careline_client::demo::{DemoOrg, Signer};
use careline_read_kit::{ReadApplication, ReadParts, ReadSettings};
use event_store::EventStore;
use event_store::testing::TestStream;
use inbox_service::startup::InboxParts;
use notify_service::startup::NotifyParts;
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

/// The issuer of every test's hospital-system credentials (a key of its
/// own, as deployed: never the people's token key).
pub fn system_issuer() -> TokenIssuer {
    TokenIssuer::from_seed("systems-test", [11; 32]).unwrap()
}

/// The keys the command service under test checks systems' credentials
/// with.
pub fn system_keys() -> service_kit::system_credential::SystemKeys {
    service_kit::system_credential::SystemKeys::from_public_keys(&system_issuer().public_key())
        .unwrap()
}

/// A command service's application over `store` for a test: the test
/// link keys check verification links.
pub fn command_app<S: EventStore>(store: S) -> command_service::App<S> {
    command_service::App::new(store, 10_000)
        .with_email_links(service_kit::test_link_issuer().verifier())
}

/// The test system's sign-in: the test issuer signs people in, demo
/// people by their id (with `demo`), and, with `provider` (its issuer URL and Careline's
/// client id there), that provider's ID tokens.
pub fn sign_in(provider: Option<(String, String)>, demo: bool) -> command_service::SignIn {
    command_service::SignIn::new(
        command_service::SignInSettings {
            issuer: Some(issuer()),
            provider,
            demo,
            lifetime: Duration::from_secs(12 * 3600),
        },
        None,
    )
    .unwrap()
}

/// A seeder of the test keys, holding the test link key (so the demo's
/// verified patient follows her link).
pub fn signer(channel: Channel) -> Signer {
    Signer::new(channel, issuer()).with_links(service_kit::test_link_issuer())
}

/// The command service, as deployed (test keys and link keys), on a free
/// port of this machine over `store`, running until the test ends; its
/// address.
pub async fn run_command<S: EventStore>(store: S) -> SocketAddr {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let files = store.files().await.unwrap();
    let mut app = command_app(store);
    if let Some(files) = files {
        app = app.with_files(files, service_kit::media::DEFAULT_MAX_FILE_BYTES);
    }
    let command = command_service::Application::with_app(any, app, keys())
        .await
        .unwrap()
        .with_sign_in(sign_in(None, true))
        .with_systems(system_keys());
    let addr = command.local_addr();
    tokio::spawn(command.run(std::future::pending()));
    addr
}

/// A port of this machine nothing listens on now.
pub fn free_port() -> u16 {
    // Never the same port twice in one process: a port just given back is
    // often handed out again at once, and two servers told the same port
    // (the demo's NATS and its mail sink, once) cannot both listen.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A plaintext channel to a service on this machine.
pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .initial_stream_window_size(service_kit::server::STREAM_WINDOW)
        .initial_connection_window_size(service_kit::server::CONNECTION_WINDOW)
        .connect()
        .await
        .unwrap()
}

/// A read service's settings for a test: port 0, `db`, `stream`, the
/// test keys, plaintext; 500 events a batch and 4 connections.
pub fn read_settings(db: &TestDatabase, stream: &TestStream, wait: Duration) -> ReadSettings {
    ReadSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: db.url.clone(),
        store: stream.config().clone(),
        batch_size: 500,
        pool_size: 4,
        wait_for_position: wait,
        keys: keys(),
        tls: None,
        metrics: None,
    }
}

/// The inbox service's settings for a test: port 0, `db`, `stream`.
pub fn inbox_config(
    db: &TestDatabase,
    stream: &TestStream,
    wait: Duration,
) -> inbox_service::Config {
    inbox_service::Config {
        read: read_settings(db, stream, wait),
        record_reads: true,
    }
}

/// The audit service's settings for a test: port 0, `db`, `stream`.
pub fn audit_config(
    db: &TestDatabase,
    stream: &TestStream,
    wait: Duration,
) -> audit_service::Config {
    audit_service::Config {
        read: read_settings(db, stream, wait),
        export_stall: Duration::from_secs(60),
        record_reads: true,
        anchor_every: Some(Duration::from_secs(30)),
    }
}

/// The notification service's settings for a test, mailing through `smtp`.
pub fn notify_config(
    db: &TestDatabase,
    stream: &TestStream,
    wait: Duration,
    smtp: notify_service::Smtp,
) -> notify_service::Config {
    notify_service::Config {
        read: ReadSettings {
            batch_size: 100,
            ..read_settings(db, stream, wait)
        },
        smtp,
        clock: notify_service::Clock::system(),
        record_reads: true,
    }
}

/// A read service running in this process until the value is dropped.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    /// Its projection's checkpoint, as it moves.
    pub checkpoint: watch::Receiver<u64>,
    _stop: oneshot::Sender<()>,
}

impl Running {
    /// A plaintext channel to it.
    pub async fn channel(&self) -> Channel {
        channel(self.addr).await
    }
}

/// Waits until `checkpoint` reaches the head of `store`'s log. Catching up
/// is slow on a loaded machine (every API test at once on two cores): up to
/// three minutes, for tests that measure something else.
pub async fn caught_up(checkpoint: &watch::Receiver<u64>, store: &impl EventStore) -> u64 {
    let head = store.last_position().await.unwrap();
    let mut at = checkpoint.clone();
    tokio::time::timeout(Duration::from_secs(180), at.wait_for(|c| *c >= head))
        .await
        .expect("the projection did not catch up in 3 minutes")
        .unwrap();
    head
}

/// `who`'s bearer token (the test issuer's, valid an hour) for any client.
/// The first page of `inbox`'s active threads, as of `at`.
pub async fn inbox_page(inbox: &mut Inbox, at: u64) -> proto::inbox::ThreadPage {
    inbox
        .my_inbox(proto::inbox::MyInboxRequest {
            min_position: at,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

pub fn bearer(who: &Caller) -> Bearer {
    Bearer::new(&issuer().mint(who, Duration::from_secs(3600))).unwrap()
}

/// Binds and runs the read service `config` describes, on `store`.
pub async fn run_read<R, S>(config: R::Config, store: S) -> Running
where
    R: ReadParts<S>,
    S: EventStore,
{
    let app = ReadApplication::<R, S>::with_store(config, store)
        .await
        .unwrap();
    let addr = app.local_addr();
    let checkpoint = app.checkpoint();
    let (stop, stopped) = stopper();
    tokio::spawn(app.run(stopped));
    Running {
        addr,
        checkpoint,
        _stop: stop,
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
    /// How often the audit service anchors its chains (default 30 s).
    pub anchor_every: Option<Duration>,
    /// The identity provider whose ID tokens the command service accepts
    /// (its issuer URL, and Careline's client id there).
    pub provider: Option<(String, String)>,
    /// The command service refuses demo sign-ins (as in production).
    pub no_demo: bool,
    /// Every service as its own production NATS user, on a server started
    /// with those users (and TLS); else one connection to the test NATS.
    pub nats_users: Option<NatsUsers>,
    /// The largest file the command service takes (default 100 MB).
    pub max_file_bytes: Option<u64>,
}

/// A NATS server with the users Careline ships (`deploy/nats/users.conf`,
/// [`event_store::testing::NatsServer::start_with_users`]), requiring TLS.
#[derive(Clone, Debug)]
pub struct NatsUsers {
    pub url: String,
    /// The CA that signed the server's certificate.
    pub ca: std::path::PathBuf,
}

impl NatsUsers {
    /// The store settings of NATS user `user` (its test password), over
    /// TLS, on the stream and prefix users.conf is written for; its events
    /// signed with the command service's test key for `command` and
    /// `admin`, a read service's for the others.
    pub fn config(&self, user: &str) -> event_store::StoreConfig {
        use event_store::testing::{test_keys, test_password, test_reads_signer, test_signer};
        event_store::StoreConfig {
            nats_url: self.url.clone(),
            stream: "CARELINE".into(),
            prefix: "careline".into(),
            duplicate_window: Duration::from_secs(120),
            request_timeout: Duration::from_secs(5),
            user: Some(event_store::NatsUser {
                name: user.into(),
                password: test_password(user),
            }),
            tls: Some(event_store::NatsTls {
                ca: Some(self.ca.clone()),
                client: None,
            }),
            signer: Some(if matches!(user, "command" | "admin") {
                test_signer()
            } else {
                test_reads_signer()
            }),
            keys: Some(test_keys()),
            ..event_store::StoreConfig::default()
        }
    }
}

/// The store a service connects with: its own NATS user's with `users`,
/// else the test stream's one connection.
async fn store_as(
    users: Option<&NatsUsers>,
    stream: &TestStream,
    user: &str,
) -> event_store::JetStreamStore {
    match users {
        Some(users) => event_store::JetStreamStore::connect(users.config(user))
            .await
            .unwrap(),
        None => stream.store().clone(),
    }
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
            anchor_every: None,
            provider: None,
            no_demo: false,
            nats_users: None,
            max_file_bytes: None,
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
        // No verification emails unless a test asks for them (they would
        // add to every count of emails received).
        links: None,
        link_lifetime: Duration::from_secs(24 * 3600),
    }
}

/// The running services; stopped, and their stream and database removed,
/// on drop.
pub struct System {
    pub stream: TestStream,
    pub db: TestDatabase,
    pub signer: Signer,
    /// Where each service listens (for processes of a test's own that call
    /// them: the web service, say).
    pub addrs: Addrs,
    inbox: Option<Channel>,
    audit: Option<Channel>,
    notify: Option<Channel>,
    /// Each started projection's checkpoint.
    checkpoints: Vec<watch::Receiver<u64>>,
    audit_checkpoint: Option<watch::Receiver<u64>>,
    _command: oneshot::Sender<()>,
    _running: Vec<Running>,
}

/// The addresses of a [`System`]'s services; `None` for one not started.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    pub command: SocketAddr,
    pub inbox: Option<SocketAddr>,
    pub audit: Option<SocketAddr>,
    pub notify: Option<SocketAddr>,
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
    /// Stops the inbox service (its calls in flight finish): what its
    /// callers see when it is down.
    pub fn stop_inbox(&mut self) {
        let inbox = self.addrs.inbox.take();
        self._running.retain(|r| Some(r.addr) != inbox);
    }

    pub async fn start(label: &str, services: Services) -> Self {
        let users = services.nats_users.as_ref();
        let stream = match users {
            // The deployment's admin creates the stream.
            Some(users) => TestStream::with_config(users.config("admin")).await,
            None => TestStream::new(label).await,
        };
        let db = TestDatabase::new(label).await;
        let store = store_as(users, &stream, "command").await;
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let wait = services.wait.unwrap_or(Duration::from_secs(5));

        // The deployment's admin makes the bucket of files, as the stream.
        if let Some(users) = users {
            let admin = event_store::JetStreamStore::connect(users.config("admin"))
                .await
                .unwrap();
            admin.files().await.unwrap();
        }
        let mut app = command_app(store.clone());
        if let Some(files) = store.files().await.unwrap() {
            app = app.with_files(
                files,
                services
                    .max_file_bytes
                    .unwrap_or(service_kit::media::DEFAULT_MAX_FILE_BYTES),
            );
        }
        let command = command_service::Application::with_app(any, app, keys())
            .await
            .unwrap()
            .with_sign_in(sign_in(services.provider.clone(), !services.no_demo))
            .with_systems(system_keys());
        let command_addr = command.local_addr();
        let (stop, stopped) = stopper();
        tokio::spawn(command.run(stopped));
        let command_stop = stop;

        let mut running = Vec::new();
        let mut addrs = Addrs {
            command: command_addr,
            inbox: None,
            audit: None,
            notify: None,
        };
        let mut inbox = None;
        if services.inbox {
            let store = store_as(users, &stream, "inbox").await;
            let mut config = inbox_config(&db, &stream, wait);
            config.read.store = store.config().clone();
            let service = run_read::<InboxParts, _>(config, store).await;
            inbox = Some(service.channel().await);
            addrs.inbox = Some(service.addr);
            running.push(service);
        }

        let mut audit = None;
        let mut audit_checkpoint = None;
        if services.audit {
            let mut config = audit_config(&db, &stream, wait);
            if let Some(every) = services.anchor_every {
                config.anchor_every = Some(every);
            }
            let store = store_as(users, &stream, "audit").await;
            config.read.store = store.config().clone();
            let service = run_read::<AuditParts<_>, _>(config, store).await;
            audit_checkpoint = Some(service.checkpoint.clone());
            audit = Some(service.channel().await);
            addrs.audit = Some(service.addr);
            running.push(service);
        }

        let mut notify = None;
        if let Some(smtp) = services.notify {
            let mut config = notify_config(&db, &stream, wait, smtp);
            if let Some(clock) = services.clock.clone() {
                config.clock = clock;
            }
            let store = store_as(users, &stream, "notify").await;
            config.read.store = store.config().clone();
            let service = run_read::<NotifyParts, _>(config, store).await;
            notify = Some(service.channel().await);
            addrs.notify = Some(service.addr);
            running.push(service);
        }
        let checkpoints = running.iter().map(|r| r.checkpoint.clone()).collect();

        System {
            signer: signer(channel(command_addr).await),
            addrs,
            inbox,
            audit,
            notify,
            checkpoints,
            audit_checkpoint,
            stream,
            db,
            _command: command_stop,
            _running: running,
        }
    }

    /// The demo organisation, seeded through the command service.
    pub async fn org(&self) -> DemoOrg {
        careline_client::demo::seed(&self.signer).await.unwrap()
    }

    /// `who` posts `body` on `thread`; answers the event's position.
    pub async fn post(&self, who: &Caller, thread: &str, body: &str) -> u64 {
        self.signer
            .client(who)
            .unwrap()
            .post(thread, body)
            .await
            .unwrap()
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

    /// The inbox service's channel (the inbox service must run).
    pub fn inbox_channel(&self) -> Channel {
        self.inbox.clone().expect("the inbox service runs")
    }

    /// The audit service's channel (the audit service must run).
    pub fn audit_channel(&self) -> Channel {
        self.audit.clone().expect("the audit service runs")
    }

    /// The notification service's channel (for a client with its own token).
    pub fn notify_channel(&self) -> Channel {
        self.notify.clone().expect("the notification service runs")
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

    /// `thread` as `who` is shown it, as of `at`.
    pub async fn thread(&self, who: &Caller, thread: &str, at: u64) -> proto::inbox::ThreadDetail {
        self.inbox(who)
            .get_thread(proto::inbox::GetThreadRequest {
                min_position: at,
                thread_id: thread.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// The audit trail of `thread` as `who` is shown it, as of `at`.
    pub async fn thread_trail(
        &self,
        who: &Caller,
        thread: &str,
        at: u64,
    ) -> Vec<proto::audit::Entry> {
        self.audit(who)
            .thread_trail(proto::audit::ThreadTrailRequest {
                min_position: at,
                thread_id: thread.into(),
                range: None,
            })
            .await
            .unwrap()
            .into_inner()
            .entries
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
