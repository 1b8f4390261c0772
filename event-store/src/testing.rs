//! Test support: every test gets its own stream and subject prefix on the
//! real NATS, removed when the test ends (also when it panics), so tests run
//! in parallel and leave nothing behind on a server that outlives them.

use std::ops::Not;
use std::time::Duration;

use std::time::Instant;

use async_nats::HeaderMap;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use prost::Message;
use proto::contract::headers;
use proto::events::{Actor, AggregateType, Envelope, Role, envelope::Payload};

use crate::{AggregateRef, EventStore, JetStreamStore, Position, StoreConfig};

/// The NATS server tests use: `NATS_URL`, or the local default.
/// A benchmark's setting `name` (`BENCH_SCALE`, `BENCH_BATCH`, ...) from
/// the environment, or `default` when unset or unreadable.
pub fn bench_setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| StoreConfig::default().nats_url)
}

fn unsigned() -> bool {
    std::env::var_os("BENCH_UNSIGNED").is_some()
}

/// The tests' event signing key: the command service's kind (trusted on
/// every subject), so that services sharing one store in a test all sign
/// with it.
pub fn test_signer() -> crate::EventSigner {
    crate::EventSigner::from_seed("test-command", [7; 32])
        .unwrap_or_else(|e| unreachable!("the test key is refused: {e}"))
}

/// A read service's key in tests (trusted on the access subjects only).
pub fn test_reads_signer() -> crate::EventSigner {
    crate::EventSigner::from_seed("test-reads", [8; 32])
        .unwrap_or_else(|e| unreachable!("the test key is refused: {e}"))
}

/// The public keys every test store checks events with: the two above.
pub fn test_keys() -> crate::EventKeys {
    let list = format!(
        "{},{}",
        test_signer().public_key(crate::Writer::Command),
        test_reads_signer().public_key(crate::Writer::Reads)
    );
    crate::EventKeys::parse(&list)
        .unwrap_or_else(|e| unreachable!("the test keys are refused: {e}"))
}

/// The settings that give a process started by a test the test stores'
/// keys (it signs as the command service, and checks like every reader).
pub fn signing_env() -> Vec<(&'static str, String)> {
    vec![
        (crate::signing::SIGNING_KEY_VAR, test_signer().private_key()),
        (
            crate::signing::PUBLIC_KEYS_VAR,
            format!(
                "{},{}",
                test_signer().public_key(crate::Writer::Command),
                test_reads_signer().public_key(crate::Writer::Reads)
            ),
        ),
    ]
}

/// A fresh configuration: unique stream name and subject prefix; events
/// signed with [`test_signer`] and checked against [`test_keys`] (unless
/// `BENCH_UNSIGNED` is set: a benchmark's baseline without signatures).
pub fn unique_config(label: &str) -> StoreConfig {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let label: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(24)
        .collect();
    StoreConfig {
        nats_url: nats_url(),
        stream: format!("TEST_{}_{}", label.to_uppercase(), &id[..12]),
        prefix: format!("t{}", &id[..12]),
        duplicate_window: Duration::from_secs(120),
        request_timeout: Duration::from_secs(5),
        signer: unsigned().not().then(test_signer),
        keys: unsigned().not().then(test_keys),
        ..StoreConfig::default()
    }
}

/// A JetStream store on its own stream, deleted on drop.
#[derive(Debug)]
pub struct TestStream {
    store: JetStreamStore,
}

impl TestStream {
    /// Connects to the test NATS and creates a fresh stream.
    pub async fn new(label: &str) -> Self {
        Self::with_config(unique_config(label)).await
    }

    /// A stream with settings of the test's choosing (start from
    /// [`unique_config`] so that the names stay unique).
    pub async fn with_config(config: StoreConfig) -> Self {
        let mut attempt = 1;
        loop {
            match JetStreamStore::connect(config.clone()).await {
                Ok(store) => return Self { store },
                // The server fails a stream creation racing the deletion of
                // the account's last stream (another test's) with a 500
                // ("could not create storage directory"): try again.
                Err(e) if attempt < 5 && e.to_string().contains("code 500") => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => panic!("tests need NATS with JetStream at {}: {e}", config.nats_url),
            }
        }
    }

    pub fn store(&self) -> &JetStreamStore {
        &self.store
    }

    pub fn config(&self) -> &StoreConfig {
        self.store.config()
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be shutting down: use
        // a short-lived runtime of our own on a helper thread.
        let config = self.store.config().clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    if let Ok(client) = async_nats::connect(config.nats_url.as_str()).await {
                        let js = async_nats::jetstream::new(client);
                        let _ = js.delete_stream(&config.stream).await;
                        let _ = js
                            .delete_key_value(crate::jetstream::claims_bucket(&config.stream))
                            .await;
                        let _ = js
                            .delete_stream(format!(
                                "OBJ_{}",
                                crate::files::files_bucket(&config.stream)
                            ))
                            .await;
                    }
                });
            }
        });
        let _ = cleanup.join();
    }
}

/// An envelope for tests: a fresh event id, now, by a test professional.
pub fn envelope(aggregate: &AggregateRef, payload: Payload) -> Envelope {
    let id = uuid::Uuid::now_v7().to_string();
    Envelope {
        event_id: id.clone(),
        event_type: payload.event_type().to_string(),
        schema_version: proto::contract::SCHEMA_VERSION,
        aggregate_type: aggregate.kind() as i32,
        aggregate_id: aggregate.id().to_string(),
        occurred_at: Some(std::time::SystemTime::now().into()),
        actor: Some(Actor {
            person_id: "00000000-0000-7000-8000-000000000001".into(),
            role: Role::Professional as i32,
            on_behalf_of: String::new(),
            display_name: "Test Professional".into(),
        }),
        command_id: id.clone(),
        correlation_id: id,
        causation_id: String::new(),
        payload: Some(payload),
    }
}

/// A fresh thread aggregate.
/// Appends one aggregate's `events` in order, each at the version the
/// last one reached (the first at 0: a new aggregate).
pub async fn append_in_order<S: EventStore>(store: &S, events: &[Envelope]) {
    let mut version = 0;
    for event in events {
        version = store
            .append(event, version)
            .await
            .expect("append in order")
            .position;
    }
}

pub fn new_thread() -> AggregateRef {
    AggregateRef::new(AggregateType::Thread, uuid::Uuid::now_v7().to_string())
        .expect("a UUID is a valid aggregate id")
}

/// A `MessagePosted` event with the given body.
pub fn message(aggregate: &AggregateRef, body: &str) -> Envelope {
    envelope(
        aggregate,
        Payload::MessagePosted(proto::events::MessagePosted {
            notice: None,
            attachments: vec![],
            message_id: uuid::Uuid::now_v7().to_string(),
            mention_ids: vec![],
            body: body.into(),
            reopened: false,
        }),
    )
}

/// Bytes that are not an envelope (three bytes of an invalid wire type).
pub const JUNK: &[u8] = b"\x0f\x0f\x0f";

/// Publishes [`JUNK`] straight onto `aggregate`'s subject, as a client
/// outside Careline could; answers its position.
pub async fn publish_junk(store: &JetStreamStore, aggregate: &AggregateRef) -> Position {
    store
        .jetstream()
        .publish(
            aggregate.subject(&store.config().prefix),
            bytes::Bytes::from_static(JUNK),
        )
        .await
        .expect("publish junk")
        .await
        .expect("junk acknowledged")
        .sequence
}

/// A private `nats-server` with JetStream on a free port, for tests that
/// must stop the server under a running client. Killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    port: u16,
    store_dir: std::path::PathBuf,
    child: Option<std::process::Child>,
    /// A configuration file (`-c`), and the environment it reads.
    config: Option<(std::path::PathBuf, Vec<(String, String)>)>,
    /// A directory this server's configuration was written to, removed on drop.
    conf_dir: Option<std::path::PathBuf>,
    /// The nats-server binary it runs.
    bin: String,
}

/// The users `deploy/nats/users.conf` defines.
pub const NATS_USERS: [&str; 6] = ["admin", "command", "inbox", "audit", "notify", "reader"];

/// The password [`NatsServer::start_with_users`] gives `user`.
pub fn test_password(user: &str) -> String {
    format!("test-password-of-{user}")
}

/// A private CA and a server certificate for 127.0.0.1, made by
/// `deploy/nats/dev-certs.sh` in a new temporary directory.
pub fn dev_certs() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("careline-certs-{}", uuid::Uuid::new_v4().simple()));
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/dev-certs.sh");
    let made = std::process::Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .status()
        .expect("run deploy/nats/dev-certs.sh");
    assert!(made.success(), "deploy/nats/dev-certs.sh failed");
    dir
}

/// The path of a current nats-server, as `deploy/cluster/nats-server.sh`
/// finds or installs it.
pub fn current_nats_server() -> String {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/cluster/nats-server.sh");
    let found = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .expect("run deploy/cluster/nats-server.sh");
    assert!(
        found.status.success(),
        "deploy/cluster/nats-server.sh failed: {}",
        String::from_utf8_lossy(&found.stderr)
    );
    String::from_utf8_lossy(&found.stdout).trim().to_string()
}

impl NatsServer {
    /// Starts `nats-server` (from `NATS_SERVER_BIN`, `PATH` or `/usr/sbin`).
    pub async fn start() -> Self {
        Self::start_on(None).await
    }

    /// Starts `nats-server` with a configuration file (users, say), whose
    /// variables come from `env`.
    pub async fn start_with_config(config: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::start_on(Some((config.to_path_buf(), env))).await
    }

    async fn start_on(config: Option<(std::path::PathBuf, Vec<(String, String)>)>) -> Self {
        Self::start_binary(Self::binary(), config).await
    }

    async fn start_binary(
        bin: String,
        config: Option<(std::path::PathBuf, Vec<(String, String)>)>,
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let store_dir =
            std::env::temp_dir().join(format!("careline-nats-{}", uuid::Uuid::new_v4().simple()));
        let mut server = Self {
            port,
            store_dir,
            child: None,
            config,
            conf_dir: None,
            bin,
        };
        server.restart().await;
        server
    }

    fn binary() -> String {
        if let Ok(bin) = std::env::var("NATS_SERVER_BIN") {
            return bin;
        }
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nats-server"))
                .find(|p| p.is_file())
        });
        on_path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "/usr/sbin/nats-server".into())
    }

    /// Starts `nats-server` with the NATS users Careline ships
    /// (`deploy/nats/users.conf`), each with its [`test_password`], and,
    /// given a directory made by `deploy/nats/dev-certs.sh`, TLS required of
    /// every client.
    pub async fn start_with_users(tls: Option<&std::path::Path>) -> Self {
        Self::start_users_on(Self::binary(), tls).await
    }

    /// [`NatsServer::start_with_users`] on a current nats-server (2.12 or
    /// later, found or installed by `deploy/cluster/nats-server.sh`), for
    /// what Debian's 2.9 does not do.
    pub async fn start_current_with_users(tls: Option<&std::path::Path>) -> Self {
        Self::start_users_on(current_nats_server(), tls).await
    }

    async fn start_users_on(bin: String, tls: Option<&std::path::Path>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "careline-nats-conf-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("a configuration directory");
        let users =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/users.conf");
        std::fs::copy(&users, dir.join("users.conf")).expect("copy users.conf");
        let mut conf = String::from("include users.conf\n");
        if let Some(certs) = tls {
            conf.push_str(&format!(
                "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  timeout: 2\n}}\n",
                certs.join("server.pem").display(),
                certs.join("server.key").display()
            ));
        }
        std::fs::write(dir.join("nats.conf"), conf).expect("write nats.conf");
        let env: Vec<(String, String)> = NATS_USERS
            .iter()
            .map(|u| {
                (
                    format!("CARELINE_NATS_{}_PASSWORD", u.to_uppercase()),
                    test_password(u),
                )
            })
            .collect();
        let mut server = Self::start_binary(bin, Some((dir.join("nats.conf"), env))).await;
        server.conf_dir = Some(dir);
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (like a crash); its stored events stay on disk.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store.
    pub async fn restart(&mut self) {
        self.kill();
        let mut command = std::process::Command::new(&self.bin);
        if let Some((config, env)) = &self.config {
            command.arg("-c").arg(config).envs(env.iter().cloned());
        }
        let child = command
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin));
        self.child = Some(child);
        listening(self.port, "nats-server").await;
    }
}

/// Waits until something listens on `port` of this machine (`what` names
/// it if nothing does within 5 s).
pub async fn listening(port: u16, what: &str) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not listen on port {port} within 5 s");
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store_dir);
        if let Some(dir) = &self.conf_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The baseline for benchmarks: appends/s as raw async-nats publishes with
/// the headers the event store sends (message id, expected last subject
/// sequence, event type, aggregate type and id, schema version) and the same
/// encoded payload, awaiting each acknowledgement. `writers` tasks each
/// publish `each` events to their own new aggregate on `store`'s stream.
pub async fn raw_append_rate(store: &JetStreamStore, writers: usize, each: usize) -> f64 {
    let prefix = store.config().prefix.clone();
    let batches: Vec<_> = (0..writers)
        .map(|_| {
            let thread = new_thread();
            let events: Vec<_> = (0..each)
                .map(|i| message(&thread, &format!("message {i}")))
                .collect();
            (thread, events)
        })
        .collect();
    let started = Instant::now();
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|(thread, events)| {
            let js = store.jetstream().clone();
            let subject = thread.subject(&prefix);
            tokio::spawn(async move {
                let mut version = 0u64;
                for event in &events {
                    let mut map = HeaderMap::new();
                    map.insert(headers::MSG_ID, event.event_id.as_str());
                    map.insert(
                        async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                        version.to_string().as_str(),
                    );
                    map.insert(headers::EVENT_TYPE, event.event_type.as_str());
                    map.insert(headers::AGGREGATE_TYPE, "thread");
                    map.insert(headers::AGGREGATE_ID, thread.id());
                    map.insert(headers::SCHEMA_VERSION, "1");
                    let publish = PublishMessage::build()
                        .payload(Bytes::from(event.encode_to_vec()))
                        .headers(map);
                    let ack = js
                        .send_publish(subject.clone(), publish)
                        .await
                        .expect("raw publish")
                        .await
                        .expect("raw publish");
                    version = ack.sequence;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("raw publish");
    }
    (writers * each) as f64 / started.elapsed().as_secs_f64()
}
