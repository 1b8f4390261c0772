//! `deploy/run.sh` as a newcomer runs it, with the binaries this build
//! made (`CARELINE_BIN_DIR`), on free ports, in a folder and a database of
//! the test's own: its own NATS with TLS and a user per service, every
//! service, the demo organisation, the web pages and the demo identity
//! provider.
//!
//! Signing in at the demo identity provider works end to end (the provider
//! run.sh starts accepts the web service's client secret, which run.sh
//! once read from the wrong folder); the emails' links are the address the
//! web pages are served on (not `localhost` while the pages are on
//! 127.0.0.1: another cookie host); the instructions come last and the event log
//! goes to its file; SIGTERM stops everything run.sh started, at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use testkit::free_port;
use testkit::oidc::Browser;

/// run.sh in a process group of its own: SIGKILLed with everything in it
/// on drop, whatever the test did before.
struct RunSh(Child);

impl Drop for RunSh {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The folder of this build's binaries (the test's own folder's parent).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sh_starts_the_demo_signs_in_at_its_identity_provider_and_stops_on_sigterm() {
    for binary in [
        "careline",
        "careline-command",
        "careline-web",
        "careline-notify",
    ] {
        assert!(
            bin_dir().join(binary).exists(),
            "{binary} is not built in {}",
            bin_dir().display()
        );
    }
    let database = projections::testing::TestDatabase::new("demo_run").await;
    let dev = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("demo-{}", uuid::Uuid::new_v4().simple()));
    let port = |_: &str| free_port();
    let (nats, smtp, oidc, web) = (port("nats"), port("smtp"), port("oidc"), port("web"));
    let mut command = Command::new("bash");
    command
        .arg(root().join("deploy/run.sh"))
        .current_dir(root())
        .env("CARELINE_BIN_DIR", bin_dir())
        .env("CARELINE_DEV_DIR", &dev)
        .env("DATABASE_URL", &database.url)
        .env("CARELINE_DEMO_NATS_PORT", nats.to_string())
        .env("CARELINE_DEMO_SMTP_PORT", smtp.to_string())
        .env("CARELINE_DEMO_OIDC_PORT", oidc.to_string())
        .env("CARELINE_WEB_ADDR", format!("127.0.0.1:{web}"))
        .env("RUST_LOG", "warn");
    let command_port = free_port();
    for service in ["COMMAND", "INBOX", "AUDIT", "NOTIFY"] {
        let service_port = match service {
            "COMMAND" => command_port,
            _ => free_port(),
        };
        command
            .env(
                format!("CARELINE_{service}_ADDR"),
                format!("127.0.0.1:{service_port}"),
            )
            .env(
                format!("CARELINE_{service}_METRICS_ADDR"),
                format!("127.0.0.1:{}", free_port()),
            );
    }
    command.env(
        "CARELINE_WEB_METRICS_ADDR",
        format!("127.0.0.1:{}", free_port()),
    );
    for unset in [
        "NATS_URL",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_CA",
        "CARELINE_BASE_URL",
        "CARELINE_SMTP_HOST",
        "CARELINE_TOKEN_SIGNING_KEY",
        "CARELINE_TOKEN_PUBLIC_KEYS",
        "CARELINE_EMAIL_LINK_SIGNING_KEY",
        "CARELINE_EMAIL_LINK_PUBLIC_KEYS",
        "CARELINE_SYSTEM_TOKEN_SIGNING_KEY",
        "CARELINE_SYSTEM_TOKEN_PUBLIC_KEYS",
    ] {
        command.env_remove(unset);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("bash");
    let stdout = child.stdout.take().unwrap();
    let run = RunSh(child);
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    // Until it says it is running (or it ends).
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = line.starts_with("careline: running;");
                printed.push(line);
                if done {
                    break;
                }
            }
            Err(_) => panic!(
                "run.sh did not say it was running within 240 s; it printed:\n{}",
                printed.join("\n")
            ),
        }
    }
    let printed = printed.join("\n");
    let base = format!("http://127.0.0.1:{web}");
    assert!(
        printed.contains(&format!("Open {base} in a browser")),
        "{printed}"
    );
    // The event log is in its file, not between the instructions.
    assert!(
        !printed.lines().any(|l| l.starts_with('#')),
        "no event lines on the terminal: {printed}"
    );
    let instructions = printed.split(&format!("Open {base}")).nth(1).unwrap();
    assert!(
        instructions.contains("demo identity provider"),
        "{instructions}"
    );

    // The demo's OpenID Connect sign-in, as a browser goes through it: to
    // the provider, signed in there, back with a code that the web service
    // exchanges with its client secret for an ID token.
    let mut browser = Browser::default();
    let away = browser
        .send(
            "GET",
            &format!("{base}/sign-in/oidc?next=%2Fmessages"),
            None,
        )
        .await;
    assert!(away.status.is_redirection(), "{away:?}");
    assert!(
        away.location
            .starts_with(&format!("http://127.0.0.1:{oidc}/")),
        "{away:?}"
    );
    let back = browser
        .sign_in_at_provider(
            &format!("http://127.0.0.1:{oidc}"),
            &away.location,
            "nia.new",
            &format!("{base}/sign-in/callback"),
        )
        .await;
    let landed = browser.send("GET", &back, None).await;
    assert_eq!(landed.status, 200, "{landed:?}");
    assert!(
        landed.body.contains("Link your account") && landed.body.contains("Nia New"),
        "signed in at the provider, not linked to anyone yet: {}",
        landed.body
    );

    // The events went to their file.
    let events = std::fs::read_to_string(dev.join("events.log")).unwrap_or_default();
    assert!(events.contains("ThreadStarted"), "{events}");

    // The demo's emails (after its 10 s of gathering) link to the address
    // the pages are served on: another host name would not carry the
    // session cookie.
    let mail = dev.join("mail/new");
    let linked = Instant::now();
    let email = loop {
        let found = std::fs::read_dir(&mail)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|f| std::fs::read_to_string(f.path()).ok())
            .find(|text| text.contains("/threads/"));
        if let Some(text) = found {
            break text;
        }
        assert!(
            linked.elapsed() < Duration::from_secs(60),
            "no email with a link within 60 s in {}",
            mail.display()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        email.contains(&format!("{base}/threads/")),
        "links to {base}: {email}"
    );

    // The demo's appointments system (its credential in demo.env) books Pat
    // an appointment with the client crate's worked example; she is
    // emailed that the Renal Unit wrote, by way of Appointments.
    let demo_env = std::fs::read_to_string(dev.join("demo.env")).unwrap();
    let var = |name: &str| {
        demo_env
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("no {name} in demo.env"))
            .to_string()
    };
    let example = bin_dir().join("examples/appointments");
    assert!(example.exists(), "{} is not built", example.display());
    let booked = Command::new(&example)
        .args([var("PAT_JONES_ID"), var("RENAL_TEAM")])
        .env(
            "CARELINE_COMMAND_URL",
            format!("http://127.0.0.1:{command_port}"),
        )
        .env(
            "CARELINE_SYSTEM_CREDENTIAL",
            var("CARELINE_SYSTEM_CREDENTIAL"),
        )
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&booked.stdout);
    assert!(
        booked.status.success() && said.contains("booked APT-"),
        "{said}{}",
        String::from_utf8_lossy(&booked.stderr)
    );
    let told = Instant::now();
    loop {
        let found = std::fs::read_dir(&mail)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|f| std::fs::read_to_string(f.path()).ok())
            .find(|text| text.contains("via Appointments"));
        if let Some(text) = found {
            assert!(!text.contains("Outpatients"), "no content in email: {text}");
            break;
        }
        assert!(
            told.elapsed() < Duration::from_secs(60),
            "no email of the notice within 60 s in {}",
            mail.display()
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // SIGTERM stops everything, at once.
    let pid = run.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = Instant::now();
    let mut run = run;
    loop {
        if run.0.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "run.sh still runs 15 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for (what, port) in [
        ("the web pages", web),
        ("NATS", nats),
        ("the identity provider", oidc),
        ("the mail sink", smtp),
    ] {
        let gone = Instant::now();
        while listening(port) {
            assert!(
                gone.elapsed() < Duration::from_secs(10),
                "{what} still listen on {port} after run.sh stopped"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    drop(run);
    let _ = std::fs::remove_dir_all(&dev);
}
