//! The whole system for a test: the command service and the inbox service
//! in this process, on their own stream and their own database.

use std::net::SocketAddr;
use std::time::Duration;

use command_service::client::Bearer;
use command_service::demo::{DemoOrg, Signer};
use event_store::testing::TestStream;
use event_store::{EventStore, JetStreamStore};
use projections::testing::TestDatabase;
use proto::inbox::inbox_service_client::InboxServiceClient;
use service_kit::{Caller, TokenIssuer, TokenKeys};
use tokio::sync::{oneshot, watch};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Inbox = InboxServiceClient<InterceptedService<Channel, Bearer>>;

pub struct System {
    pub stream: TestStream,
    pub signer: Signer,
    inbox: Channel,
    /// Dropped (and deleted) with the system.
    _db: TestDatabase,
    _stops: Vec<oneshot::Sender<()>>,
}

pub fn issuer() -> TokenIssuer {
    service_kit::test_issuer()
}

pub fn keys() -> TokenKeys {
    issuer().verifier()
}

pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

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

/// Starts an inbox service over `store` and `db`; returns its address,
/// checkpoint, and the sender that stops it.
pub async fn start_inbox(
    config: inbox_service::Config,
    store: JetStreamStore,
) -> (SocketAddr, watch::Receiver<u64>, oneshot::Sender<()>) {
    let app = inbox_service::Application::with_store(config, store, keys())
        .await
        .unwrap();
    let addr = app.local_addr();
    let checkpoint = app.checkpoint();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    (addr, checkpoint, stop)
}

pub async fn system(label: &str) -> System {
    system_with_wait(label, Duration::from_secs(5)).await
}

pub async fn system_with_wait(label: &str, wait: Duration) -> System {
    let stream = TestStream::new(label).await;
    let db = TestDatabase::new(label).await;
    let store = stream.store().clone();

    let command = command_service::Application::with_app(
        "127.0.0.1:0".parse().unwrap(),
        command_service::App::new(store.clone(), 10_000),
        keys(),
    )
    .await
    .unwrap();
    let command_addr = command.local_addr();
    let (stop_command, command_stopped) = oneshot::channel::<()>();
    tokio::spawn(command.run(async {
        let _ = command_stopped.await;
    }));

    let (inbox_addr, _, stop_inbox) = start_inbox(inbox_config(&db, &stream, wait), store).await;
    System {
        signer: Signer::new(channel(command_addr).await, issuer()),
        inbox: channel(inbox_addr).await,
        stream,
        _db: db,
        _stops: vec![stop_command, stop_inbox],
    }
}

impl System {
    pub async fn org(&self) -> DemoOrg {
        command_service::demo::seed(&self.signer).await.unwrap()
    }

    pub fn inbox(&self, who: &Caller) -> Inbox {
        self.inbox_with_token(&self.signer.token(who))
    }

    pub fn inbox_with_token(&self, token: &str) -> Inbox {
        InboxServiceClient::with_interceptor(self.inbox.clone(), Bearer::new(token).unwrap())
    }

    pub async fn head(&self) -> u64 {
        self.stream.store().last_position().await.unwrap()
    }
}
