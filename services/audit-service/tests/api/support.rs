//! The whole system for a test: command, inbox and audit services in this
//! process, on their own stream and their own database.

use std::net::SocketAddr;
use std::time::Duration;

use command_service::client::Bearer;
use command_service::demo::{DemoOrg, Signer};
use event_store::EventStore;
use event_store::testing::TestStream;
use projections::testing::TestDatabase;
use proto::audit::audit_service_client::AuditServiceClient;
use proto::inbox::inbox_service_client::InboxServiceClient;
use service_kit::{Caller, Role, TokenIssuer, TokenKeys};
use tokio::sync::{oneshot, watch};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Audit = AuditServiceClient<InterceptedService<Channel, Bearer>>;
pub type Inbox = InboxServiceClient<InterceptedService<Channel, Bearer>>;

pub struct System {
    pub stream: TestStream,
    pub db: TestDatabase,
    pub signer: Signer,
    pub audit_checkpoint: watch::Receiver<u64>,
    audit: Channel,
    inbox: Channel,
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

fn stopper() -> (oneshot::Sender<()>, impl Future<Output = ()> + Send) {
    let (stop, stopped) = oneshot::channel::<()>();
    (stop, async {
        let _ = stopped.await;
    })
}

pub async fn system(label: &str) -> System {
    let stream = TestStream::new(label).await;
    let db = TestDatabase::new(label).await;
    let store = stream.store().clone();
    let any = "127.0.0.1:0".parse().unwrap();

    let command = command_service::Application::with_app(
        any,
        command_service::App::new(store.clone(), 10_000),
        keys(),
    )
    .await
    .unwrap();
    let command_addr = command.local_addr();
    let (stop_command, stopped) = stopper();
    tokio::spawn(command.run(stopped));

    let inbox = inbox_service::Application::with_store(
        inbox_service::Config {
            listen: any,
            database_url: db.url.clone(),
            store: stream.config().clone(),
            wait_for_position: Duration::from_secs(5),
            batch_size: 500,
            pool_size: 4,
            record_reads: true,
        },
        store.clone(),
        keys(),
    )
    .await
    .unwrap();
    let inbox_addr = inbox.local_addr();
    let (stop_inbox, stopped) = stopper();
    tokio::spawn(inbox.run(stopped));

    let audit = audit_service::Application::with_store(
        audit_service::Config {
            listen: any,
            database_url: db.url.clone(),
            store: stream.config().clone(),
            wait_for_position: Duration::from_secs(5),
            batch_size: 500,
            pool_size: 4,
            export_stall: Duration::from_secs(60),
        },
        store,
        keys(),
    )
    .await
    .unwrap();
    let audit_addr = audit.local_addr();
    let audit_checkpoint = audit.checkpoint();
    let (stop_audit, stopped) = stopper();
    tokio::spawn(audit.run(stopped));

    System {
        signer: Signer::new(channel(command_addr).await, issuer()),
        inbox: channel(inbox_addr).await,
        audit: channel(audit_addr).await,
        audit_checkpoint,
        stream,
        db,
        _stops: vec![stop_command, stop_inbox, stop_audit],
    }
}

impl System {
    pub async fn org(&self) -> DemoOrg {
        command_service::demo::seed(&self.signer).await.unwrap()
    }

    pub fn audit(&self, who: &Caller) -> Audit {
        AuditServiceClient::with_interceptor(
            self.audit.clone(),
            Bearer::new(&self.signer.token(who)).unwrap(),
        )
    }

    pub fn audit_without_token(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.audit.clone())
    }

    pub fn inbox(&self, who: &Caller) -> Inbox {
        InboxServiceClient::with_interceptor(
            self.inbox.clone(),
            Bearer::new(&self.signer.token(who)).unwrap(),
        )
    }

    pub async fn head(&self) -> u64 {
        self.stream.store().last_position().await.unwrap()
    }

    /// Waits until the audit trail has applied everything in the log.
    pub async fn settled(&self) -> u64 {
        let head = self.head().await;
        let mut at = self.audit_checkpoint.clone();
        tokio::time::timeout(Duration::from_secs(10), at.wait_for(|&c| c >= head))
            .await
            .expect("the audit trail did not catch up in 10 s")
            .unwrap();
        head
    }
}

/// The generated world's privacy officer (granted the auditor role).
pub fn auditor(world: &inbox_service::testing::World) -> Caller {
    Caller {
        person_id: world.auditor,
        role: Role::Auditor,
        name: "Generated Auditor".into(),
    }
}

/// The generated world's operator (granted the operator role).
pub fn operator(world: &inbox_service::testing::World) -> Caller {
    Caller {
        person_id: world.operator,
        role: Role::Operator,
        name: "Generated Operator".into(),
    }
}
