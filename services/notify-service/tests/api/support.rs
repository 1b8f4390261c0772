//! The command and notification services on their own stream and database,
//! and an SMTP sink that writes what it receives to a maildir.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use command_service::client::Bearer;
use command_service::demo::{DemoOrg, Signer};
use event_store::EventStore;
use event_store::testing::TestStream;
use notify_service::{Clock, Smtp, TlsMode};
use projections::testing::TestDatabase;
use proto::notify::notification_service_client::NotificationServiceClient;
use service_kit::{Caller, TokenIssuer, TokenKeys};
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Notify = NotificationServiceClient<InterceptedService<Channel, Bearer>>;

pub fn issuer() -> TokenIssuer {
    service_kit::test_issuer()
}

pub fn keys() -> TokenKeys {
    issuer().verifier()
}

/// A real SMTP server (aiosmtpd) on a loopback port, storing each message
/// it accepts as one file. Stopped on drop.
pub struct Sink {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<tokio::process::Child>,
}

impl Sink {
    /// A free port and a fresh maildir, with no server yet.
    pub fn reserve(label: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("careline-{label}-{}", uuid::Uuid::now_v7()));
        Self {
            port,
            dir,
            child: None,
        }
    }

    pub async fn start(&mut self) {
        let child = tokio::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.dir)
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd, or Debian python3-aiosmtpd)");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not start on port {}", self.port);
    }

    /// Every message received so far, as text: folded header lines and
    /// quoted-printable soft line breaks joined (so nothing hides across a
    /// break).
    pub fn received(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("new")) else {
            return Vec::new();
        };
        entries
            .map(|e| {
                std::fs::read_to_string(e.unwrap().path())
                    .unwrap()
                    .replace("\r\n", "\n")
                    .replace("=\n", "")
                    .replace("\n ", " ")
            })
            .collect()
    }

    /// Waits until `n` messages have arrived, then a little longer to see
    /// that no more come.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..300 {
            if self.received().len() >= n {
                tokio::time::sleep(Duration::from_millis(700)).await;
                return self.received();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} of {n} messages arrived in 15 s", self.received().len());
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A header of a raw message (unfolded).
pub fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

pub struct System {
    pub stream: TestStream,
    pub signer: Signer,
    notify: Channel,
    pub db: TestDatabase,
    _stops: Vec<oneshot::Sender<()>>,
}

pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub fn smtp(port: u16) -> Smtp {
    Smtp {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        credentials: None,
        from: "Careline <no-reply@careline.test>".parse().unwrap(),
        domain: "careline.test".into(),
        base_url: "https://careline.test".into(),
        max_attempts: 100,
        backoff: Duration::from_millis(100),
        poll: Duration::from_millis(100),
        coalesce: Duration::ZERO,
        reminder_after: Duration::from_secs(7 * 86_400),
        clock: Clock::system(),
    }
}

pub async fn system(label: &str, smtp: Smtp) -> System {
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
    let (stop_command, stopped) = oneshot::channel::<()>();
    tokio::spawn(command.run(async {
        let _ = stopped.await;
    }));

    let notify = notify_service::Application::with_store(
        notify_service::Config {
            listen: any,
            database_url: db.url.clone(),
            store: stream.config().clone(),
            smtp,
            wait_for_position: Duration::from_secs(5),
            batch_size: 100,
        },
        store,
        keys(),
    )
    .await
    .unwrap();
    let notify_addr = notify.local_addr();
    let (stop_notify, stopped) = oneshot::channel::<()>();
    tokio::spawn(notify.run(async {
        let _ = stopped.await;
    }));

    System {
        signer: Signer::new(channel(command_addr).await, issuer()),
        notify: channel(notify_addr).await,
        stream,
        db,
        _stops: vec![stop_command, stop_notify],
    }
}

impl System {
    pub async fn org(&self) -> DemoOrg {
        command_service::demo::seed(&self.signer).await.unwrap()
    }

    pub fn notify(&self, who: &Caller) -> Notify {
        NotificationServiceClient::with_interceptor(
            self.notify.clone(),
            Bearer::new(&self.signer.token(who)).unwrap(),
        )
    }

    pub async fn head(&self) -> u64 {
        self.stream.store().last_position().await.unwrap()
    }
}
