//! The web pages under load (`cargo bench -p web`): a generated world (the
//! inbox benchmark's: 100,000 threads, 10,000 staff in 500 teams, 20,000
//! patients at `BENCH_SCALE=1`) in the real inbox and command services, the
//! web service in front of them, and `wrk` (Debian's package) in a second
//! process asking, as one signed-in clinician, for the message list, one
//! conversation page and their team's inbox (all active). Prints p50 and p99 of each (wrk's latency: the
//! server's time plus loopback).
//!
//! Environment: `NATS_URL`, `DATABASE_URL`, `BENCH_SCALE` (1.0),
//! `BENCH_SECONDS` (10 per page and load), `BENCH_CONNECTIONS` (`1,8`: one
//! connection at a time, the pages' own time; then eight, under load),
//! `BENCH_PAGES` (words of the labels of the pages to load; all by default).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use event_store::EventStore;
use event_store::testing::{TestStream, bench_setting};
use event_store::world::{Spec, append, generate};
use inbox_service::InboxProjection;
use projections::RunnerConfig;
use projections::testing::TestDatabase;
use service_kit::{Caller, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One HTTP/1.1 request on its own connection: (head, body).
async fn http(addr: SocketAddr, request: &str) -> (String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

fn cookie(head: &str, name: &str) -> String {
    head.lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {name} cookie in {head}"))
}

fn field(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).unwrap() + marker.len();
    body[start..start + body[start..].find('"').unwrap()].to_string()
}

/// Signs `who` in through the demo sign-in page: the session cookie.
async fn sign_in(addr: SocketAddr, who: &Caller) -> String {
    let (head, body) = http(
        addr,
        "GET /sign-in HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
    )
    .await;
    let pre = cookie(&head, "careline_pre");
    let form = format!(
        "csrf={}&next=%2Fmessages&person_id={}",
        field(&body, "csrf"),
        who.person_id
    );
    let (head, _) = http(
        addr,
        &format!(
            "POST /sign-in/demo HTTP/1.1\r\nHost: bench\r\nConnection: close\r\nCookie: careline_pre={pre}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
    .await;
    cookie(&head, "careline_session")
}

/// A wrk latency figure ("1.23ms", "870.00us", "1.02s") in milliseconds.
fn millis(value: &str) -> f64 {
    let (number, unit) = value.split_at(value.find(|c: char| c.is_ascii_alphabetic()).unwrap());
    let n: f64 = number.parse().unwrap();
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        other => panic!("unit {other}"),
    }
}

/// wrk on `url` as the session: (p50 ms, p99 ms, requests/s, errors line).
fn load(url: &str, session: &str, seconds: u64, connections: u64) -> (f64, f64, f64, String) {
    let out = std::process::Command::new("wrk")
        .args([
            &format!("-t{}", connections.min(2)),
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-H",
            &format!("Cookie: careline_session={session}"),
            url,
        ])
        .output()
        .expect("wrk (Debian package wrk: apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let figure = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {label} in {text}"))
    };
    let errors = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .collect::<Vec<_>>()
        .join("; ");
    (
        millis(&figure("50%")),
        millis(&figure("99%")),
        figure("Requests/sec:").parse().unwrap(),
        errors,
    )
}

#[tokio::main]
async fn main() {
    let scale: f64 = bench_setting("BENCH_SCALE", 1.0);
    let seconds: u64 = bench_setting("BENCH_SECONDS", 10);
    let loads: Vec<u64> = std::env::var("BENCH_CONNECTIONS")
        .unwrap_or_else(|_| "1,8".into())
        .split(',')
        .map(|c| {
            c.trim()
                .parse()
                .expect("BENCH_CONNECTIONS: numbers, as 1,8")
        })
        .collect();
    let spec = Spec::benchmark(scale);

    let stream = TestStream::new("webbench").await;
    let log = generate(spec, Duration::from_secs(30 * 86_400));
    let events = log.len();
    let world = append(stream.store(), log, 64).await;
    let db = TestDatabase::new("webbench").await;
    projections::rebuild(
        Arc::new(InboxProjection),
        stream.store().clone(),
        RunnerConfig::new(db.url.clone(), 2000),
        |_| {},
    )
    .await
    .unwrap();
    println!(
        "web benchmark: {events} events ({} threads, {} staff, {} patients); wrk, {loads:?} connections, {seconds} s a page",
        spec.threads,
        spec.teams * spec.staff_per_team,
        spec.patients
    );

    // The services, as deployed: reads recorded.
    let store = stream.store().clone();
    let command_addr = testkit::run_command(store.clone()).await;
    let mut config = testkit::inbox_config(&db, &stream, Duration::from_secs(5));
    config.read.pool_size = 8;
    config.record_reads = true;
    let inbox = inbox_service::Application::with_store(config, store.clone())
        .await
        .unwrap();
    let inbox_addr = inbox.local_addr();
    let mut checkpoint = inbox.checkpoint();
    tokio::spawn(inbox.run(std::future::pending()));
    let head = store.last_position().await.unwrap();
    checkpoint.wait_for(|&c| c >= head).await.unwrap();

    // The web service, with one clinician to sign in as: the lead of the
    // team of the first thread.
    let (thread, _, team) = world.threads[0];
    let clinician = Caller {
        person_id: world.staff[team][0],
        role: Role::Professional,
        name: "Bench Clinician".into(),
    };
    let settings = careline_settings::Settings::from_pairs(&[]);
    let web_config = web::Config::from_settings(&settings).unwrap();
    let backends = web::Backends {
        command: testkit::channel(command_addr).await,
        inbox: testkit::channel(inbox_addr).await,
        // The pages call no audit.
        audit: Channel::from_static("http://127.0.0.1:9").connect_lazy(),
        // Nor is the notification service running: a staff member's
        // conversation page then says its states cannot be shown.
        notify: Channel::from_static("http://127.0.0.1:9").connect_lazy(),
    };
    // And the lead of the busy team (the last), for its inbox.
    let busy = world.teams.len() - 1;
    let busy_lead = Caller {
        person_id: world.staff[busy][0],
        role: Role::Professional,
        name: "Bench Busy Lead".into(),
    };
    let demo = vec![
        web::DemoPerson {
            what: "bench".into(),
            caller: clinician.clone(),
        },
        web::DemoPerson {
            what: "bench busy team".into(),
            caller: busy_lead.clone(),
        },
    ];
    let app = web::router(web::Web::new(backends, &web_config, Some(demo)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let session = sign_in(addr, &clinician).await;
    let busy_session = sign_in(addr, &busy_lead).await;
    let team_id = world.teams[team];
    let busy_id = world.teams[busy];
    let busy_threads = world.threads.iter().filter(|t| t.2 == busy).count();
    let busy_label = format!("busy team inbox ({busy_threads} thr.)");
    let pages = [
        (
            "message list (/messages)".to_string(),
            "/messages".to_string(),
            &session,
        ),
        (
            "a conversation (/threads/<id>)".to_string(),
            format!("/threads/{thread}"),
            &session,
        ),
        (
            format!(
                "team inbox ({} thr.)",
                world.threads.iter().filter(|t| t.2 == team).count()
            ),
            format!("/teams/{team_id}/inbox?show=active"),
            &session,
        ),
        (
            busy_label.clone(),
            format!("/teams/{busy_id}/inbox?show=active"),
            &busy_session,
        ),
        (
            format!("{busy_label}, unassigned"),
            format!("/teams/{busy_id}/inbox"),
            &busy_session,
        ),
    ];
    // Each once first (the conversation is then read: no marking on every load).
    for (_, path, session) in &pages {
        let (head, _) = http(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\nCookie: careline_session={session}\r\n\r\n"),
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    }
    // BENCH_PAGES: only the pages whose label contains one of these words
    // (comma-separated: "message", "conversation", "team inbox", "busy").
    let only = std::env::var("BENCH_PAGES").unwrap_or_default();
    let chosen = |label: &str| {
        only.is_empty()
            || only
                .split(',')
                .any(|w| !w.trim().is_empty() && label.contains(w.trim()))
    };
    for connections in loads {
        println!("{connections} connection(s):");
        for (label, path, session) in pages.iter().filter(|p| chosen(&p.0)) {
            let url = format!("http://{addr}{path}");
            let session = (*session).clone();
            let (p50, p99, rate, errors) =
                tokio::task::spawn_blocking(move || load(&url, &session, seconds, connections))
                    .await
                    .unwrap();
            println!(
                "  {label:<40} p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  {rate:>7.0} pages/s{}",
                if errors.is_empty() {
                    String::new()
                } else {
                    format!("  ({errors})")
                }
            );
        }
    }
}
