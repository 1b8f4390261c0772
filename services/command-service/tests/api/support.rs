//! Starting the real command service for a test: its own stream on the real
//! NATS, port 0, tokens signed with a test secret.

use std::net::SocketAddr;

use careline_client::demo::{DemoOrg, Signer};
use command_service::{App, Application};
use event_store::testing::TestStream;
use event_store::{EventStore, RecordedEvent};
use futures::StreamExt;
use service_kit::{TokenIssuer, TokenKeys};
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub fn issuer() -> TokenIssuer {
    service_kit::test_issuer()
}

pub fn keys() -> TokenKeys {
    issuer().verifier()
}

/// Signing in with the test issuer; demo people by their id with `demo`.
pub fn sign_in(demo: bool) -> command_service::SignIn {
    command_service::SignIn::new(
        command_service::SignInSettings {
            issuer: Some(issuer()),
            provider: None,
            demo,
            lifetime: std::time::Duration::from_secs(12 * 3600),
        },
        None,
    )
    .unwrap()
}

/// A running command service; stopped (and its stream deleted) on drop.
pub struct TestApp {
    pub stream: TestStream,
    pub addr: SocketAddr,
    pub signer: Signer,
    _server: Server,
}

/// A running server, stopped on drop.
pub struct Server {
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a command service over `store` on port 0.
pub async fn serve<S: EventStore>(store: S) -> (SocketAddr, Signer, Server) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let app = Application::with_app(
        "127.0.0.1:0".parse().unwrap(),
        App::new(store, 10_000).with_email_links(service_kit::test_link_issuer().verifier()),
        keys(),
    )
    .await
    .expect("bind port 0")
    .with_sign_in(sign_in(true));
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let channel = connect(addr).await;
    (
        addr,
        Signer::new(channel, issuer()).with_links(service_kit::test_link_issuer()),
        Server { stop: Some(stop) },
    )
}

pub async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a valid uri")
        .connect()
        .await
        .expect("connect to the test server")
}

pub async fn spawn_app(label: &str) -> TestApp {
    let stream = TestStream::new(label).await;
    let (addr, signer, server) = serve(stream.store().clone()).await;
    TestApp {
        stream,
        addr,
        signer,
        _server: server,
    }
}

impl TestApp {
    /// The demo organisation, seeded through the API.
    pub async fn org(&self) -> DemoOrg {
        careline_client::demo::seed(&self.signer)
            .await
            .expect("seed the demo organisation")
    }

    pub async fn head(&self) -> u64 {
        self.stream.store().last_position().await.unwrap()
    }

    /// Every event in the log after `after`.
    pub async fn events_after(&self, after: u64) -> Vec<RecordedEvent> {
        let head = self.head().await;
        if head <= after {
            return vec![];
        }
        let feed = self.stream.store().subscribe(after + 1).await.unwrap();
        feed.take((head - after) as usize)
            .map(|e| e.unwrap())
            .collect()
            .await
    }
}
