//! Fault drills: the write path (the command service, as deployed) against
//! a 3-node JetStream cluster on loopback (`deploy/cluster/cluster.sh`:
//! nats-server 2.12 or later, `sync_interval: always`, the stream on 3
//! replicas), under a steady load of messages, while the stream's leader is
//! killed with SIGKILL and later restarted. Afterwards the log is read
//! back: every acknowledged message must be in it exactly once.
//!
//! Prints commands attempted, acknowledged, refused (by code), lost
//! (acknowledged, absent from the log: must be 0), duplicated (must be 0)
//! and the longest time without an acknowledgement (recovery).
//!
//! Another cuts the stream's leader (the node the command service is
//! connected to) off the network, each node in a network namespace of its
//! own, and heals it: nothing is refused or reset, packets are lost.
//!
//! The second drill runs two command service processes behind one
//! client channel and SIGKILLs one of them under the same load: the
//! clients' retries, with the same command ids, reach the other.
//!
//! The fourth stops PostgreSQL (a server of the drill's own) at once, as a
//! crash, under the load and starts it again: writing goes on (it needs
//! only the log), the inbox's reads answer UNAVAILABLE while it is down and
//! recover, and the inbox, caught up, holds every acknowledged message once;
//! every notification of them is sent, none lost, and an email is sent
//! twice (with the same Message-ID) only if it was in flight at the crash.
//!
//! `tests/drills.rs` runs each for 12 s, in `deploy/test.sh`;
//! `benches/drills.rs` runs them long.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use careline_client::bearer::command_id;
use careline_client::demo::{first_thread, seed};
use event_store::EventStore;
use event_store::testing::{TestStream, unique_config};
use futures::StreamExt;
use proto::command as cmd;
use proto::events::envelope::Payload;

/// A cluster of `deploy/cluster/cluster.sh` in a folder of its own, on
/// ports of its own; stopped and removed on drop.
struct Cluster {
    script: PathBuf,
    dir: PathBuf,
    urls: String,
}

/// A first port of ten (clients, routes, monitoring: base, +10, +20) that
/// nothing listens on now.
fn free_base() -> u16 {
    // Drills of one process run at once: each call starts further along,
    // so that two clusters started together never pick the same ports.
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let seed = (std::process::id() as u16).wrapping_add(call.wrapping_mul(1_009));
    (0..200)
        .map(|i| 20_000 + (seed.wrapping_add(i * 37) % 9_000) / 10 * 10)
        .find(|&b| {
            (0..4).all(|k| free(b + k) && free(b + 10 + k) && free(b + 20 + k))
                && !Path::new(&format!("/var/run/netns/cl{b}-hub")).exists()
        })
        .expect("no free ports for the cluster")
}

impl Cluster {
    fn start() -> Self {
        Self::start_with(false)
    }

    /// With `netns`, each node in a network namespace of its own
    /// (`cluster.sh`'s `CARELINE_CLUSTER_NETNS`), so that it can be cut off.
    fn start_with(netns: bool) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let script = root.join("deploy/cluster/cluster.sh");
        let dir = std::env::temp_dir().join(format!("careline-drill-{}", uuid::Uuid::new_v4()));
        let mut start = Command::new(&script);
        if netns {
            start.env("CARELINE_CLUSTER_NETNS", "1");
        }
        let out = start
            .args(["start", dir.to_str().unwrap(), &free_base().to_string()])
            .output()
            .unwrap();
        let mut cluster = Self {
            script,
            dir,
            urls: String::new(),
        };
        assert!(
            out.status.success(),
            "the cluster did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.urls = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("NATS_URL=").map(str::to_string))
            .unwrap();
        cluster
    }

    fn run(&self, what: &str, node: u8) {
        let out = Command::new(&self.script)
            .args([what, self.dir.to_str().unwrap(), &node.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what} {node}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Cluster {
    /// The first client port (`cluster.sh`'s BASE).
    fn base(&self) -> u16 {
        std::fs::read_to_string(self.dir.join("base"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The server names node 1 has routes to now (its `/routez`).
    fn routed(&self) -> Vec<String> {
        let port = self.base() + 20;
        let out = Command::new("curl")
            .args(["-fsS", "--max-time", "2"])
            .arg(format!("http://127.0.0.1:{port}/routez"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut names: Vec<String> = text
            .split("\"remote_name\":")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .args(["stop", self.dir.to_str().unwrap()])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The node (1 to 3) leading `stream` now.
async fn leader(urls: &str, stream: &str) -> u8 {
    let servers: Vec<async_nats::ServerAddr> =
        urls.split(',').map(|u| u.parse().unwrap()).collect();
    let client = async_nats::connect(servers).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.unwrap();
    let info = stream.info().await.unwrap();
    let name = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .unwrap_or_default();
    name.strip_prefix("careline-n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// How long after now each of `streams` has a leader other than node
/// `gone` (polled every 50 ms, for at most 30 s).
async fn elected(urls: String, streams: Vec<String>, gone: u8) -> Vec<Duration> {
    let started = Instant::now();
    let servers: Vec<async_nats::ServerAddr> =
        urls.split(',').map(|u| u.parse().unwrap()).collect();
    let client = async_nats::connect(servers).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut found = Vec::new();
    for name in streams {
        loop {
            let ask = async {
                let mut stream = js.get_stream(&name).await.ok()?;
                let info = stream.info().await.ok()?;
                let leader = info.cluster.as_ref()?.leader.clone()?;
                (leader != format!("careline-n{gone}")).then_some(())
            };
            let led = tokio::time::timeout(Duration::from_millis(250), ask)
                .await
                .ok()
                .flatten();
            if led.is_some() || started.elapsed() > Duration::from_secs(30) {
                found.push(started.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    found
}

#[derive(Default)]
struct Tally {
    attempted: u64,
    /// (message id, when acknowledged)
    acknowledged: Vec<(String, Instant)>,
    refused: BTreeMap<String, u64>,
    /// Each refusal's words (their start), how often.
    why: BTreeMap<String, u64>,
    gave_up: u64,
}

/// The load: each writer posts to its own thread of `org`'s patient, back
/// to back, until `end`; a refused message is sent again with the same
/// command id, 100 ms apart, for up to 20 s (an election takes seconds),
/// as a client should.
fn post_until(
    signer: &careline_client::Signer,
    org: &careline_client::DemoOrg,
    threads: Vec<String>,
    end: Instant,
) -> (Arc<Mutex<Tally>>, Vec<tokio::task::JoinHandle<()>>) {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut load = Vec::new();
    for thread in threads {
        let mut client = signer.client(&org.patient).unwrap();
        let tally = tally.clone();
        load.push(tokio::spawn(async move {
            while Instant::now() < end {
                let id = command_id();
                tally.lock().unwrap().attempted += 1;
                let first = Instant::now();
                loop {
                    let sent = client
                        .post_message(cmd::PostMessageRequest {
                            attachments: vec![],
                            command_id: id.clone(),
                            thread_id: thread.clone(),
                            body: "How much can I drink on Sunday?".into(),
                            mention_ids: vec![],
                        })
                        .await;
                    match sent {
                        Ok(reply) => {
                            let reply = reply.into_inner();
                            tally
                                .lock()
                                .unwrap()
                                .acknowledged
                                .push((reply.message_id, Instant::now()));
                            break;
                        }
                        Err(status) => {
                            {
                                let mut t = tally.lock().unwrap();
                                let code = format!("{:?}", status.code());
                                *t.refused.entry(code).or_default() += 1;
                                let why: String = status.message().chars().take(90).collect();
                                *t.why.entry(why).or_default() += 1;
                            }
                            if first.elapsed() > Duration::from_secs(20) {
                                tally.lock().unwrap().gave_up += 1;
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
        }));
    }
    (tally, load)
}

/// What [`load_on`] started: when, its tally, its writers, and the
/// organisation it seeded.
type Load = (
    Instant,
    Arc<Mutex<Tally>>,
    Vec<tokio::task::JoinHandle<()>>,
    careline_client::DemoOrg,
);

/// A demo organisation seeded through `signer`, a thread of its patient's
/// for each of `writers`, and the load on them for `seconds` from now.
async fn load_on(signer: &careline_client::Signer, writers: usize, seconds: u64) -> Load {
    let org = seed(signer).await.unwrap();
    let mut threads = Vec::new();
    for _ in 0..writers {
        threads.push(first_thread(signer, &org).await.unwrap());
    }
    let started = Instant::now();
    let (tally, load) = post_until(
        signer,
        &org,
        threads,
        started + Duration::from_secs(seconds),
    );
    (started, tally, load, org)
}

/// How often each message id is in the log.
async fn messages_in_log(store: &event_store::JetStreamStore) -> HashMap<String, u32> {
    // Just after a partition heals, the cluster's meta leader may still be
    // settling and answer "temporarily unavailable" (503): that is the
    // cluster catching up, not a lost message, so ask again for a while.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (head, mut feed) = loop {
        let read = async {
            Ok::<_, event_store::Error>((store.last_position().await?, store.subscribe(0).await?))
        };
        match read.await {
            Ok(read) => break read,
            Err(e) if Instant::now() < deadline => {
                eprintln!("  the log cannot be read yet ({e}); asking again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("the log could not be read within 30 s: {e}"),
        }
    };
    let mut in_log: HashMap<String, u32> = HashMap::new();
    while let Some(event) = feed.next().await {
        let event = event.unwrap();
        if let Some(Payload::MessagePosted(m)) = &event.envelope.payload {
            *in_log.entry(m.message_id.clone()).or_default() += 1;
        }
        if event.position >= head {
            break;
        }
    }
    in_log
}

/// Prints the drill's figures (`what` says what was done) and checks them:
/// every acknowledged message in the log once, none given up, some
/// acknowledged after `restarted`, and every refusal one of `expected`.
fn verdict(
    what: &str,
    tally: &Tally,
    in_log: &HashMap<String, u32>,
    restarted: Instant,
    expected: &[&str],
) -> Duration {
    let lost = tally
        .acknowledged
        .iter()
        .filter(|(id, _)| !in_log.contains_key(id))
        .count();
    let duplicated = in_log.values().filter(|&&n| n > 1).count();
    let mut times: Vec<Instant> = tally.acknowledged.iter().map(|(_, at)| *at).collect();
    times.sort();
    let gap = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    let after_restart = times.iter().filter(|&&t| t > restarted).count();
    println!(
        "drill ({what}): attempted {}, acknowledged {}, refused {:?}, gave up {}, lost {lost}, \
         duplicated {duplicated}, in the log {}, longest time without an acknowledgement {:.0} ms, \
         {after_restart} acknowledged after the restart",
        tally.attempted,
        tally.acknowledged.len(),
        tally.refused,
        tally.gave_up,
        in_log.len(),
        gap.as_secs_f64() * 1000.0,
    );
    for (why, n) in &tally.why {
        println!("  refused {n}×: {why}");
    }
    assert_eq!(lost, 0, "acknowledged messages missing from the log");
    assert_eq!(duplicated, 0, "messages in the log twice");
    assert!(
        after_restart > 0,
        "no message was acknowledged after the restart"
    );
    assert_eq!(tally.gave_up, 0, "a message was refused for 20 s");
    let unexpected: Vec<_> = tally
        .refused
        .keys()
        .filter(|code| !expected.contains(&code.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "refusals other than {expected:?}: {:?}",
        tally.refused
    );
    gap
}

/// The stream's leader SIGKILLed a quarter of the way into `seconds` of
/// load by `writers`, restarted half way.
pub async fn stream_leader_killed(seconds: u64, writers: usize) {
    let cluster = Cluster::start();
    let mut config = unique_config("drill");
    config.nats_url = cluster.urls.clone();
    config.replicas = 3;
    let stream = TestStream::with_config(config.clone()).await;
    let store = stream.store().clone();

    let addr = testkit::run_command(store.clone()).await;
    let signer = testkit::signer(testkit::channel(addr).await);
    let (started, tally, load, _) = load_on(&signer, writers, seconds).await;

    // The fault: the stream's leader dies a quarter of the way in, and is
    // back half way.
    tokio::time::sleep_until((started + Duration::from_secs(seconds) / 4).into()).await;
    let victim = leader(&cluster.urls, &config.stream).await;
    let killed = Instant::now();
    cluster.run("kill", victim);
    // How long the log's two streams (the events, the claimed command ids)
    // take to have a leader again: the election that bounds recovery.
    let claims = format!("KV_{}", event_store::claims_bucket(&config.stream));
    let elections = tokio::spawn(elected(
        cluster.urls.clone(),
        vec![config.stream.clone(), claims],
        victim,
    ));
    tokio::time::sleep_until((started + Duration::from_secs(seconds) / 2).into()).await;
    cluster.run("restart", victim);
    let restarted = Instant::now();
    for writer in load {
        writer.await.unwrap();
    }

    let in_log = messages_in_log(&store).await;
    let elections = elections.await.unwrap();
    let election = elections.iter().max().copied().unwrap_or_default();
    let shown: Vec<String> = elections
        .iter()
        .map(|d| format!("{} ms", d.as_millis()))
        .collect();
    let what = format!(
        "node {victim}, the stream leader, killed at {:.1} s, back at {:.1} s, new leaders elected after {shown:?}; {writers} writers, {seconds} s",
        (killed - started).as_secs_f64(),
        (restarted - started).as_secs_f64(),
    );
    let gap = verdict(
        &what,
        &tally.lock().unwrap(),
        &in_log,
        restarted,
        &["Unavailable"],
    );
    // The election, and then at most the second before a lost request is
    // sent again.
    assert!(
        gap < election + Duration::from_secs(1),
        "writes stalled {} ms, the election took {} ms",
        gap.as_millis(),
        election.as_millis()
    );
}

/// The node the command service is connected to SIGKILLed a quarter of the
/// way in, back half way. The service is given that node's address alone
/// (it learns the others from it) and the node is one that leads neither
/// the events' stream nor the command ids' bucket, so no election follows:
/// the stall is the reconnection and the requests lost with the node, sent
/// again after a second. Returns the longest time without an
/// acknowledgement, which must stay under 1.5 s.
pub async fn command_services_own_node_killed(seconds: u64, writers: usize) {
    let cluster = Cluster::start();
    let mut config = unique_config("drill_own_node");
    config.nats_url = cluster.urls.clone();
    config.replicas = 3;
    let stream = TestStream::with_config(config.clone()).await;
    let store = stream.store().clone();
    // Both leaders settle before a node is chosen.
    let claims = format!("KV_{}", event_store::claims_bucket(&config.stream));
    store.claim("drill-warm-up", "drill").await.unwrap();
    let leaders = [
        leader(&cluster.urls, &config.stream).await,
        leader(&cluster.urls, &claims).await,
    ];
    let victim = (1..=3u8).find(|n| !leaders.contains(n)).unwrap();
    let own = cluster
        .urls
        .split(',')
        .nth(usize::from(victim - 1))
        .unwrap();
    let mut at_victim = config.clone();
    at_victim.nats_url = own.to_string();
    let command_store = event_store::JetStreamStore::connect(at_victim)
        .await
        .unwrap();
    assert_eq!(
        command_store.client().server_info().server_name,
        format!("careline-n{victim}")
    );

    let addr = testkit::run_command(command_store).await;
    let signer = testkit::signer(testkit::channel(addr).await);
    let (started, tally, load, _) = load_on(&signer, writers, seconds).await;

    tokio::time::sleep_until((started + Duration::from_secs(seconds) / 4).into()).await;
    let killed = Instant::now();
    cluster.run("kill", victim);
    tokio::time::sleep_until((started + Duration::from_secs(seconds) / 2).into()).await;
    cluster.run("restart", victim);
    let restarted = Instant::now();
    for writer in load {
        writer.await.unwrap();
    }
    let still_leading = [
        leader(&cluster.urls, &config.stream).await,
        leader(&cluster.urls, &claims).await,
    ];

    let in_log = messages_in_log(&store).await;
    let what = format!(
        "node {victim}, the command service's own (leaders {leaders:?} before, {still_leading:?} after), killed at {:.1} s, back at {:.1} s; {writers} writers, {seconds} s",
        (killed - started).as_secs_f64(),
        (restarted - started).as_secs_f64(),
    );
    let gap = verdict(
        &what,
        &tally.lock().unwrap(),
        &in_log,
        restarted,
        &["Unavailable"],
    );
    assert!(
        gap < Duration::from_millis(1_500),
        "writes stalled {} ms when the command service's own node died",
        gap.as_millis()
    );
}

/// Whether this machine lets the drill make network namespaces (root, and
/// iproute2's `ip`); under `CI` it must.
pub fn may_partition() -> bool {
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let ip = Command::new("sh")
        .args(["-c", "command -v ip"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !(root && ip) && std::env::var_os("CI").is_none() {
        println!("drill skipped: network namespaces need root and iproute2's ip");
        return false;
    }
    true
}

/// The stream's leader, the node the command service talks to, cut off
/// the network a quarter of the way in, healed half way. Needs
/// [`may_partition`].
pub async fn stream_leader_cut_off(seconds: u64, writers: usize) {
    // The partition lasts until the others have elected new leaders (5 to
    // 10 s) and 6 s more, so the load runs at least 30 s.
    let seconds = seconds.max(30);
    let cluster = Cluster::start_with(true);
    let mut config = unique_config("partition");
    config.nats_url = cluster.urls.clone();
    config.replicas = 3;
    let stream = TestStream::with_config(config.clone()).await;

    // The command service talks to the stream's leader, the node to be
    // cut off (the worst case: its own connection goes silent too).
    let urls: Vec<&str> = cluster.urls.split(',').collect();
    let victim = leader(&cluster.urls, &config.stream).await;
    let mut through_victim = config.clone();
    through_victim.nats_url = urls[usize::from(victim) - 1].to_string();
    let store = event_store::JetStreamStore::connect(through_victim)
        .await
        .unwrap();
    let addr = testkit::run_command(store.clone()).await;
    let signer = testkit::signer(testkit::channel(addr).await);
    let (started, tally, load, _) = load_on(&signer, writers, seconds).await;

    tokio::time::sleep_until((started + Duration::from_secs(seconds) / 4).into()).await;
    assert_eq!(
        leader(&cluster.urls, &config.stream).await,
        victim,
        "the leader moved before the partition"
    );
    let cut = Instant::now();
    cluster.run("partition", victim);
    let others: Vec<&str> = urls
        .iter()
        .enumerate()
        .filter(|(i, _)| i + 1 != usize::from(victim))
        .map(|(_, u)| *u)
        .collect();
    let claims = format!("KV_{}", event_store::claims_bucket(&config.stream));
    let elections = elected(
        others.join(","),
        vec![config.stream.clone(), claims],
        victim,
    )
    .await;
    // Six seconds on the majority alone, then the network is back.
    tokio::time::sleep(Duration::from_secs(6)).await;
    cluster.run("heal", victim);
    let healed = Instant::now();
    assert!(
        healed < started + Duration::from_secs(seconds) - Duration::from_secs(3),
        "the election took so long that the load ended before the network was back"
    );
    for writer in load {
        writer.await.unwrap();
    }

    let in_log = messages_in_log(stream.store()).await;
    let election = elections.iter().max().copied().unwrap_or_default();
    let elections: Vec<String> = elections
        .iter()
        .map(|d| format!("{} ms", d.as_millis()))
        .collect();
    let what = format!(
        "node {victim}, the stream leader and the command service's node, cut off the network at {:.1} s, \
         healed at {:.1} s, new leaders elected after {elections:?}; {writers} writers, {seconds} s",
        (cut - started).as_secs_f64(),
        (healed - started).as_secs_f64(),
    );
    let gap = verdict(
        &what,
        &tally.lock().unwrap(),
        &in_log,
        healed,
        &["Unavailable"],
    );
    println!(
        "  recovery: the longest gap was the election plus {:.0} ms",
        (gap.as_secs_f64() - election.as_secs_f64()) * 1000.0
    );
    // Writing resumes on the majority, not when the network is back: the
    // silent connection is given up after three missed pings.
    assert!(
        gap < election + Duration::from_secs(4),
        "the writers waited {gap:?}, the election took {election:?}"
    );
}

/// The `careline-command` binary of this build (the profile's folder of
/// the running test or benchmark), which the command instance drill runs.
pub fn command_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .unwrap()
        .join("careline-command")
}

/// A command service run as its own process (the binary beside this
/// test's), on `stream`, listening on `port`; killed on drop.
struct Instance(std::process::Child);

impl Instance {
    fn start(stream: &event_store::StoreConfig, port: u16) -> Self {
        let bin = command_binary();
        assert!(bin.exists(), "{} is not built", bin.display());
        let child = Command::new(&bin)
            .env("CARELINE_COMMAND_ADDR", format!("127.0.0.1:{port}"))
            .env("NATS_URL", &stream.nats_url)
            .env("CARELINE_STREAM", &stream.stream)
            .env("CARELINE_PREFIX", &stream.prefix)
            .envs(event_store::testing::signing_env())
            .env(
                "CARELINE_DUPLICATE_WINDOW_SECS",
                stream.duplicate_window.as_secs().to_string(),
            )
            .env(
                "CARELINE_TOKEN_PUBLIC_KEYS",
                service_kit::test_issuer().public_key(),
            )
            .env(
                "CARELINE_EMAIL_LINK_PUBLIC_KEYS",
                service_kit::test_link_issuer().public_key(),
            )
            .env("CARELINE_POSTS_PER_MINUTE", "0")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the command service on port {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child)
    }

    /// SIGKILL: a lost machine.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One of two command service processes SIGKILLed a third of the way in,
/// started again two thirds of the way; the clients' retries reach the
/// other. Needs the `careline-command` binary built beside this one.
pub async fn command_instance_killed(seconds: u64, writers: usize) {
    let stream = TestStream::new("drill_instances").await;
    let config = stream.config().clone();
    let ports = [testkit::free_port(), testkit::free_port()];
    let mut a = Instance::start(&config, ports[0]);
    let _b = Instance::start(&config, ports[1]);
    // One channel over both instances, as the web service and the CLI
    // take a comma-separated list.
    let urls = format!(
        "http://127.0.0.1:{},http://127.0.0.1:{}",
        ports[0], ports[1]
    );
    let channel = service_kit::server::connect_with(&urls, None)
        .await
        .unwrap();
    let signer = testkit::signer(channel);
    let (started, tally, load, _) = load_on(&signer, writers, seconds).await;

    // Instance A dies a third of the way in (calls in flight on it are
    // lost with it) and comes back two thirds of the way.
    tokio::time::sleep_until((started + Duration::from_secs(seconds) / 3).into()).await;
    let killed = Instant::now();
    a.kill();
    tokio::time::sleep_until((started + Duration::from_secs(seconds) * 2 / 3).into()).await;
    let _a = Instance::start(&config, ports[0]);
    let restarted = Instant::now();
    for writer in load {
        writer.await.unwrap();
    }

    let in_log = messages_in_log(stream.store()).await;
    let what = format!(
        "one of two command service instances SIGKILLed at {:.1} s, back at {:.1} s; {writers} writers, {seconds} s",
        (killed - started).as_secs_f64(),
        (restarted - started).as_secs_f64(),
    );
    // A call cut off with its connection ends UNKNOWN or CANCELLED; one
    // sent to the dead instance, UNAVAILABLE.
    verdict(
        &what,
        &tally.lock().unwrap(),
        &in_log,
        restarted,
        &["Unavailable", "Unknown", "Cancelled"],
    );
}

/// A fourth server without the route password (and then with the
/// cluster's certificate but still without it) cannot join or publish.
pub async fn outsider_cannot_join() {
    for how in ["", "cert"] {
        let cluster = Cluster::start();
        let mut config = unique_config("drill_outsider");
        config.nats_url = cluster.urls.clone();
        config.replicas = 3;
        let stream = TestStream::with_config(config.clone()).await;
        let head = stream.store().last_position().await.unwrap();
        let before = cluster.routed();
        assert_eq!(before, ["careline-n2", "careline-n3"], "{before:?}");

        // A server that knows where the routes are, not the password (and,
        // the second time, holding a copy of the cluster's certificate).
        let out = Command::new(&cluster.script)
            .args(["outsider", cluster.dir.to_str().unwrap(), how])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let outsider = format!("nats://127.0.0.1:{}", cluster.base() + 3);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", cluster.base() + 3)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the outsider did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Long enough for several tries at the routes.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = cluster.routed();
        assert_eq!(after, before, "the outsider ({how:?}) joined: {after:?}");
        let log = std::fs::read_to_string(cluster.dir.join("n1.log")).unwrap();
        let refused = if how == "cert" {
            "Authentication Failure"
        } else {
            "TLS Handshake Failure"
        };
        assert!(log.contains(refused), "node 1 logged no {refused:?}");

        // Through the outsider the log is out of reach: neither read nor
        // written.
        let client = async_nats::connect(outsider.as_str()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let found =
            tokio::time::timeout(Duration::from_secs(5), js.get_stream(&config.stream)).await;
        assert!(
            !matches!(found, Ok(Ok(_))),
            "the stream is reachable through the outsider ({how:?})"
        );
        assert_eq!(stream.store().last_position().await.unwrap(), head);
        println!(
            "drill (a server with {} and no password): not routed, refused with {refused:?}, the stream out of its reach",
            if how == "cert" {
                "a copy of the cluster's certificate"
            } else {
                "no certificate"
            }
        );
    }
}

/// A PostgreSQL server of the drill's own (the machine's `initdb` and
/// `pg_ctl`; run as user postgres when the drill runs as root), on a port
/// of its own, so that it can be stopped without touching anyone else's;
/// removed on drop.
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    fn bin_dir() -> PathBuf {
        let found = Command::new("sh")
            .args([
                "-c",
                "command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1",
            ])
            .output()
            .unwrap();
        let initdb = String::from_utf8_lossy(&found.stdout).trim().to_string();
        assert!(
            !initdb.is_empty(),
            "the drill needs PostgreSQL's initdb and pg_ctl"
        );
        std::fs::canonicalize(initdb)
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf()
    }

    /// `program` of PostgreSQL's with `args`, as user postgres when root.
    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        let mut command = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = command
            .args(args)
            .stdout(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("careline-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        // The server's user owns its folder.
        let _ = Command::new("chown").args(["postgres:"]).arg(&dir).status();
        let pg = Self {
            bin: Self::bin_dir(),
            dir,
            port: testkit::free_port(),
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        pg.up();
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").to_str().unwrap().to_string()
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").to_str().unwrap().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// Stops the server at once, as a crash would (no shutdown checkpoint:
    /// it recovers from its write-ahead log when started again).
    fn crash(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.crash()));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads of the inbox during the drill, by phase (before, while
/// PostgreSQL is down, after) and answer.
#[derive(Default, Debug)]
struct Reads {
    by_phase: BTreeMap<(u8, String), u64>,
    /// When the first read succeeded after the restart.
    first_after: Option<Instant>,
}

/// PostgreSQL (a server of the drill's own) stopped as a crash a third of
/// the way in, started again two thirds of the way.
pub async fn postgresql_restarted(seconds: u64, writers: usize) {
    let pg = Postgres::start();
    let db = projections::testing::TestDatabase::on(&pg.url(), "pgdrill").await;
    let stream = TestStream::new("pgdrill").await;
    let store = stream.store().clone();
    let addr = testkit::run_command(store.clone()).await;
    let signer = testkit::signer(testkit::channel(addr).await);
    let inbox = testkit::run_read::<inbox_service::startup::InboxParts, _>(
        testkit::inbox_config(&db, &stream, Duration::from_secs(2)),
        store.clone(),
    )
    .await;
    let mut sink = testkit::mail::Sink::reserve("pgdrill");
    sink.start().await;
    let notify = testkit::run_read::<notify_service::startup::NotifyParts, _>(
        testkit::notify_config(
            &db,
            &stream,
            Duration::from_secs(2),
            testkit::smtp(sink.port),
        ),
        store.clone(),
    )
    .await;
    let (started, tally, load, org) = load_on(&signer, writers, seconds).await;

    // A clinician reads her inbox all along.
    let crashed_at = started + Duration::from_secs(seconds) / 3;
    let back_at = started + Duration::from_secs(seconds) * 2 / 3;
    let reads = Arc::new(Mutex::new(Reads::default()));
    // 0 before the crash, 1 from it until PostgreSQL accepts connections
    // again (`pg_ctl -w start` has returned), 2 after.
    let phase = Arc::new(std::sync::atomic::AtomicU8::new(0));
    let reader = {
        let reads = reads.clone();
        let phase = phase.clone();
        let mut client = proto::inbox::inbox_service_client::InboxServiceClient::with_interceptor(
            inbox.channel().await,
            testkit::bearer(&org.nurse),
        );
        let end = started + Duration::from_secs(seconds);
        tokio::spawn(async move {
            while Instant::now() < end {
                let phase = phase.load(std::sync::atomic::Ordering::SeqCst);
                let answer = client
                    .my_inbox(proto::inbox::MyInboxRequest::default())
                    .await;
                let code = match &answer {
                    Ok(_) => "Ok".to_string(),
                    Err(s) => format!("{:?}", s.code()),
                };
                {
                    let mut r = reads.lock().unwrap();
                    if phase == 2 && answer.is_ok() && r.first_after.is_none() {
                        r.first_after = Some(Instant::now());
                    }
                    *r.by_phase.entry((phase, code)).or_default() += 1;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    tokio::time::sleep_until(crashed_at.into()).await;
    phase.store(1, std::sync::atomic::Ordering::SeqCst);
    pg.crash();
    let crashed = Instant::now();
    tokio::time::sleep_until(back_at.into()).await;
    pg.up();
    let restarted = Instant::now();
    phase.store(2, std::sync::atomic::Ordering::SeqCst);
    for writer in load {
        writer.await.unwrap();
    }
    reader.await.unwrap();

    // The log has every acknowledged message once; the inbox, caught up,
    // has each of them once too.
    let in_log = messages_in_log(&store).await;
    let head = testkit::caught_up(&inbox.checkpoint, &store).await;
    let client = projections::connect(&db.url).await.unwrap();
    let rows = client
        .query(
            "SELECT message_id::text, count(*) FROM inbox.messages GROUP BY 1",
            &[],
        )
        .await
        .unwrap();
    let in_inbox: HashMap<String, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    // Every writer and the reader have finished: the tallies are theirs.
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    let missing = tally
        .acknowledged
        .iter()
        .filter(|(id, _)| !in_inbox.contains_key(id))
        .count();
    let doubled = in_inbox.values().filter(|&&n| n > 1).count();
    let reads = std::mem::take(&mut *reads.lock().unwrap());
    let recovered = reads
        .first_after
        .map(|t| format!("{:.2} s", (t - restarted).as_secs_f64()));
    let what = format!(
        "PostgreSQL stopped at once (as a crash) at {:.1} s, back at {:.1} s; {writers} writers, {seconds} s; \
         inbox reads by phase (0 before, 1 down or starting, 2 after it accepts connections) {:?}, first read after the restart {recovered:?} later; \
         inbox caught up to {head}: {} messages, missing {missing}, doubled {doubled}",
        (crashed - started).as_secs_f64(),
        (restarted - started).as_secs_f64(),
        reads.by_phase,
        in_inbox.len(),
    );
    verdict(&what, &tally, &in_log, restarted, &[]);
    assert_eq!(missing, 0, "acknowledged messages missing from the inbox");
    assert_eq!(doubled, 0, "messages in the inbox twice");
    let down: Vec<_> = reads
        .by_phase
        .keys()
        .filter(|(phase, code)| *phase == 1 && code != "Ok")
        .map(|(_, code)| code.clone())
        .collect();
    assert!(
        down.iter().all(|c| c == "Unavailable"),
        "reads while PostgreSQL is down answer UNAVAILABLE: {:?}",
        reads.by_phase
    );
    assert!(
        reads.first_after.is_some(),
        "reads recovered after the restart"
    );
    notifications_once(&db, &notify, &store, &sink, &tally).await;
}

/// After the PostgreSQL drill: every acknowledged message has the same
/// notifications (one per person on the thread to tell), every one of
/// them was sent, and the mail server holds every email; an email sent
/// twice (with the same Message-ID, so mail clients show it once) can only
/// be one in flight when PostgreSQL stopped: sent, its delivery not
/// recorded.
async fn notifications_once(
    db: &projections::testing::TestDatabase,
    notify: &testkit::Running,
    store: &event_store::JetStreamStore,
    sink: &testkit::mail::Sink,
    tally: &Tally,
) {
    testkit::caught_up(&notify.checkpoint, store).await;
    let client = projections::connect(&db.url).await.unwrap();
    let unsent = "SELECT count(*) FROM notify.notifications n \
         LEFT JOIN careline_notify.deliveries d ON d.id = n.id \
         WHERE n.deliverable AND d.state IS DISTINCT FROM 'sent'";
    let waited = Instant::now();
    loop {
        let left: i64 = client.query_one(unsent, &[]).await.unwrap().get(0);
        if left == 0 {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "{left} notifications still unsent 120 s after the drill"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let per_message: HashMap<String, i64> = client
        .query(
            "SELECT m.message_id, count(n.id) FROM notify.messages m \
             LEFT JOIN notify.notifications n ON n.event_id = m.event_id AND n.deliverable \
             GROUP BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected = tally
        .acknowledged
        .iter()
        .filter_map(|(id, _)| per_message.get(id).copied())
        .max()
        .unwrap_or(0);
    let short = tally
        .acknowledged
        .iter()
        .filter(|(id, _)| per_message.get(id).copied().unwrap_or(0) < expected)
        .count();
    let sent: std::collections::HashSet<String> = client
        .query(
            "SELECT DISTINCT message_id FROM careline_notify.deliveries WHERE state = 'sent'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mails = sink.wait_for(sent.len()).await;
    let mut copies: HashMap<String, usize> = HashMap::new();
    for mail in &mails {
        let id = testkit::mail::header(mail, "Message-ID").unwrap_or_default();
        *copies.entry(id.to_string()).or_default() += 1;
    }
    let not_received = sent.iter().filter(|id| !copies.contains_key(*id)).count();
    let unknown = copies.keys().filter(|id| !sent.contains(*id)).count();
    let twice = copies.values().filter(|&&n| n > 1).count();
    let notifications: i64 = per_message.values().sum();
    println!(
        "drill (PostgreSQL stopped, notifications): {notifications} notifications ({expected} for each \
         of {} messages), sent as {} emails; messages with fewer notifications {short}, \
         emails recorded as sent but not received {not_received}, received but not recorded {unknown}, \
         sent twice (the same Message-ID) {twice}",
        per_message.len(),
        sent.len(),
    );
    assert!(expected > 0, "the drill's messages notify someone");
    assert_eq!(short, 0, "acknowledged messages missing notifications");
    assert_eq!(
        not_received, 0,
        "emails recorded as sent that never arrived"
    );
    assert_eq!(unknown, 0, "emails that arrived without a sent delivery");
    assert!(
        twice <= notify_service::delivery::CONCURRENT_SENDS,
        "{twice} emails sent twice: more than the sends in flight at the crash"
    );
}
