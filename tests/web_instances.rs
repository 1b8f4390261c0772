//! Two instances of the web service (the real binary) behind Debian's
//! nginx terminating TLS (`deploy/web/nginx.sh`, a certificate of the
//! drill's own CA), their sessions shared through PostgreSQL
//! (`CARELINE_WEB_DATABASE_URL`), against the real command, inbox, audit
//! and notification services, NATS and PostgreSQL.
//!
//! A patient signs in once and her pages are answered by both instances;
//! one instance is killed with SIGKILL and every page still answers (nginx
//! tries the other); restarted, it knows her session (nothing was in the
//! process); she signs out through one and neither knows the session any
//! more. Prints the pages asked, answered by each instance, and failed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{Services, System, free_port};

/// A process killed (SIGKILL) on drop.
struct Process(Child);

impl Process {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// nginx, stopped on drop with SIGTERM: its master then stops its workers
/// (SIGKILL would leave them serving the port).
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One instance of the web service: its pages' port and its metrics' port.
struct Web {
    port: u16,
    metrics: u16,
    env: Vec<(String, String)>,
    process: Option<Process>,
}

impl Web {
    fn start(env: &[(String, String)]) -> Self {
        let mut web = Self {
            port: free_port(),
            metrics: free_port(),
            env: env.to_vec(),
            process: None,
        };
        web.restart();
        web
    }

    fn restart(&mut self) {
        let exe = std::env::current_exe().unwrap();
        let bin = exe
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .join("careline-web");
        assert!(bin.exists(), "{} is not built", bin.display());
        let child = Command::new(&bin)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("CARELINE_WEB_ADDR", format!("127.0.0.1:{}", self.port))
            .env(
                "CARELINE_WEB_METRICS_ADDR",
                format!("127.0.0.1:{}", self.metrics),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.process = Some(Process(child));
        wait_for_port(self.port, "the web service");
    }

    fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Sends SIGTERM, as a rolling deploy does: how long the process took
    /// to stop (up to 15 s).
    fn terminate(&mut self) -> Duration {
        let Some(mut p) = self.process.take() else {
            return Duration::ZERO;
        };
        let started = std::time::Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &p.0.id().to_string()])
            .status();
        while started.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = p.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        started.elapsed()
    }

    /// The message lists this instance answered, by its own metrics.
    fn lists_served(&self) -> u64 {
        let text = curl(&[&format!("http://127.0.0.1:{}/metrics", self.metrics)]).2;
        text.lines()
            .filter(|l| {
                l.starts_with("careline_web_requests_total{") && l.contains("route=\"/messages\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

/// curl with `args`: (status, Location, body).
fn curl(args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "-", "-D", "/dev/stderr"])
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", "0"));
    let headers = String::from_utf8_lossy(&out.stderr).to_string();
    let location = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .unwrap_or("")
        .trim()
        .to_string();
    (code.trim().parse().unwrap_or(0), location, body.to_string())
}

/// A browser over HTTPS through the proxy, keeping its cookies.
struct Browser {
    base: String,
    ca: PathBuf,
    jar: PathBuf,
}

impl Browser {
    fn get(&self, path: &str) -> (u16, String, String) {
        let url = format!("{}{path}", self.base);
        let (ca, jar) = (self.ca.to_str().unwrap(), self.jar.to_str().unwrap());
        curl(&["--cacert", ca, "-b", jar, "-c", jar, &url])
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
        let url = format!("{}{path}", self.base);
        let (ca, jar) = (self.ca.to_str().unwrap(), self.jar.to_str().unwrap());
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace('/', "%2F")))
            .collect::<Vec<_>>()
            .join("&");
        curl(&[
            "--cacert",
            ca,
            "-b",
            jar,
            "-c",
            jar,
            "--data-raw",
            &body,
            &url,
        ])
    }

    /// The session cookie, as the jar keeps it, and whether it is Secure.
    fn session_cookie(&self) -> Option<(String, bool)> {
        let jar = std::fs::read_to_string(&self.jar).ok()?;
        jar.lines().find_map(|l| {
            let f: Vec<&str> = l.trim_start_matches("#HttpOnly_").split('\t').collect();
            (f.len() == 7 && f[5] == "careline_session").then(|| (f[6].to_string(), f[3] == "TRUE"))
        })
    }
}

/// The value of the first field `name` of a page.
fn field(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + marker.len();
    let end = body[start..].find('"').unwrap();
    body[start..start + end].to_string()
}

/// A page of the instance on `port`, directly (plain HTTP, past the
/// proxy), with the session cookie `session`; `extra` are more curl
/// arguments (a form, a time limit).
fn direct_with(port: u16, path: &str, session: &str, extra: &[&str]) -> (u16, String, String) {
    let cookie = format!("Cookie: careline_session={session}");
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut args = vec!["-H", cookie.as_str()];
    args.extend_from_slice(extra);
    args.push(url.as_str());
    curl(&args)
}

fn direct(port: u16, path: &str, session: &str) -> (u16, String, String) {
    direct_with(port, path, session, &[])
}

/// Signs `who` in through the proxy, in a browser of its own (cookie jar
/// `jar` in `dir`): the browser and its session id.
fn signed_in(
    base: &str,
    ca: &Path,
    dir: &Path,
    jar: &str,
    who: &service_kit::Caller,
) -> (Browser, String) {
    let browser = Browser {
        base: base.to_string(),
        ca: ca.to_path_buf(),
        jar: dir.join(jar),
    };
    let (_, _, page) = browser.get("/sign-in");
    let csrf = field(&page, "csrf");
    let id = who.person_id.to_string();
    let (code, _, page) = browser.post(
        "/sign-in/demo",
        &[("csrf", &csrf), ("next", "/teams"), ("person_id", &id)],
    );
    assert_eq!(code, 303, "{page}");
    let session = browser.session_cookie().expect("a session cookie").0;
    (browser, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_web_instances_behind_tls_share_sessions_and_survive_one_lost() {
    let s = System::start("webinstances", Services::all()).await;
    let org = s.org().await;
    let addrs = s.addrs;
    let dir = std::env::temp_dir().join(format!("careline-webdrill-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();

    // The demo sign-in, for the organisation just seeded.
    let people: String = org
        .people()
        .iter()
        .map(|(what, c)| format!("{}\t{}\t{}\t{what}\n", c.person_id, c.role.as_str(), c.name))
        .collect();
    let people_file = dir.join("people.tsv");
    std::fs::write(&people_file, people).unwrap();

    let proxy_port = free_port();
    let base = format!("https://127.0.0.1:{proxy_port}");
    let url = |a: Option<std::net::SocketAddr>| format!("http://{}", a.unwrap());
    let env: Vec<(String, String)> = [
        ("CARELINE_COMMAND_URL", format!("http://{}", addrs.command)),
        ("CARELINE_INBOX_URL", url(addrs.inbox)),
        ("CARELINE_AUDIT_URL", url(addrs.audit)),
        ("CARELINE_NOTIFY_URL", url(addrs.notify)),
        ("CARELINE_BASE_URL", base.clone()),
        (
            "CARELINE_WEB_DEMO_PEOPLE",
            people_file.to_str().unwrap().into(),
        ),
        ("CARELINE_WEB_SECURE_COOKIES", "true".into()),
        ("CARELINE_WEB_DATABASE_URL", s.db.url.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut one = Web::start(&env);
    let two = Web::start(&env);

    let certs = event_store::testing::dev_certs();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/web/nginx.sh");
    let nginx = Command::new("bash")
        .arg(&script)
        .arg(dir.join("nginx"))
        .arg(format!("127.0.0.1:{proxy_port}"))
        .arg(certs.join("server.pem"))
        .arg(certs.join("server.key"))
        .arg(format!("127.0.0.1:{}", one.port))
        .arg(format!("127.0.0.1:{}", two.port))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _nginx = Nginx(nginx);
    wait_for_port(proxy_port, "nginx");

    // Pat signs in once, over TLS.
    let pat = Browser {
        base,
        ca: certs.join("ca.pem"),
        jar: dir.join("cookies"),
    };
    let (code, _, page) = pat.get("/sign-in?next=/messages");
    assert_eq!(code, 200, "{page}");
    let csrf = field(&page, "csrf");
    let pat_id = org.patient.person_id.to_string();
    let (code, to, _) = pat.post(
        "/sign-in/demo",
        &[
            ("csrf", &csrf),
            ("next", "/messages"),
            ("person_id", &pat_id),
        ],
    );
    assert_eq!((code, to.as_str()), (303, "/messages"));
    let (session, secure) = pat.session_cookie().expect("a session cookie");
    assert!(secure, "the session cookie is Secure behind TLS");

    // Her pages, spread over both instances: each knows her session.
    let asked = 20;
    let mut failed = 0;
    for _ in 0..asked {
        let (code, _, page) = pat.get("/messages");
        if code != 200 || !page.contains("Messages") {
            failed += 1;
        }
    }
    let (by_one, by_two) = (one.lists_served(), two.lists_served());

    // Two nurses on the same conversation, each on another instance: the
    // one who writes is told to the other within 2 s (presence, shared
    // through the sessions' database).
    let thread = careline_client::demo::first_thread(&s.signer, &org)
        .await
        .unwrap();
    let ca = certs.join("ca.pem");
    let (_, nina) = signed_in(&pat.base, &ca, &dir, "nina", &org.nurse);
    let (_, ned) = signed_in(&pat.base, &ca, &dir, "ned", &org.nurse2);
    let conversation = format!("/threads/{thread}");
    let (code, _, _) = direct(one.port, &conversation, &nina);
    assert_eq!(code, 200);
    let (code, _, page) = direct(two.port, &conversation, &ned);
    assert_eq!(code, 200);
    let ned_csrf = field(&page, "csrf");
    let nina_port = one.port;
    let nina_session = nina.clone();
    let watching = std::thread::spawn(move || {
        direct_with(
            nina_port,
            "/live",
            &nina_session,
            &["-N", "--max-time", "4"],
        )
        .2
    });
    // The stream ends 2.5 s after Ned starts writing.
    std::thread::sleep(Duration::from_millis(1500));
    let (code, _, _) = direct_with(
        two.port,
        &format!("/threads/{thread}/typing"),
        &ned,
        &["--data-raw", &format!("csrf={ned_csrf}")],
    );
    assert_eq!(code, 204);
    let stream = watching.join().unwrap();
    let told = stream.contains("event: presence") && stream.contains(&org.nurse2.name);

    // One instance lost: every page still answers.
    one.kill();
    let mut failed_after = 0;
    for _ in 0..asked {
        let (code, _, page) = pat.get("/messages");
        if code != 200 || !page.contains("Messages") {
            failed_after += 1;
        }
    }
    let by_two_after = two.lists_served() - by_two;

    // Back, it knows her session: nothing of it was in the process.
    one.restart();
    let (code, _, page) = direct(one.port, "/messages", &session);
    let known_after_restart = code == 200 && page.contains("Messages");

    // Signed out through the proxy: neither instance knows it.
    let (_, _, page) = pat.get("/messages");
    let csrf = field(&page, "csrf");
    let (code, to, _) = pat.post("/sign-out", &[("csrf", &csrf)]);
    assert_eq!((code, to.as_str()), (303, "/sign-in?out=1"));
    let ended: Vec<(u16, String)> = [one.port, two.port]
        .iter()
        .map(|&port| {
            let (code, to, _) = direct(port, "/messages", &session);
            (code, to)
        })
        .collect();

    // Told to stop (SIGTERM) with Nina's live page open on it: the
    // instance ends her stream at once (her browser reconnects through
    // nginx to the other) and stops, without waiting for the page.
    let nina_session = nina.clone();
    let two_port = two.port;
    let live = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        direct_with(
            two_port,
            "/live",
            &nina_session,
            &["-N", "--max-time", "12"],
        );
        started.elapsed()
    });
    std::thread::sleep(Duration::from_millis(1000));
    let mut two = two;
    let stopped_in = two.terminate();
    let live_lasted = live.join().unwrap();

    println!(
        "web instances drill: {asked} pages through nginx (TLS) over 2 instances: \
         instance 1 answered {by_one}, instance 2 {by_two}, failed {failed}; \
         instance 1 SIGKILLed: {asked} pages, failed {failed_after}, instance 2 answered {by_two_after}; \
         restarted, knew the session: {known_after_restart}; signed out: {ended:?}; \
         a nurse writing on instance 2 told to a nurse on instance 1: {told}; \
         instance 2 told to stop with a live page open: stopped in {stopped_in:?}, \
         the live stream lasted {live_lasted:?}"
    );
    assert!(
        stopped_in < Duration::from_secs(3),
        "a web instance with a live page open stopped in {stopped_in:?}"
    );
    assert!(
        live_lasted < Duration::from_secs(5),
        "the live stream outlived the stop: {live_lasted:?}"
    );
    assert!(told, "presence crosses instances: {stream}");

    assert_eq!(failed, 0, "every page answered");
    assert!(
        by_one > 0 && by_two > 0,
        "both instances answered ({by_one}, {by_two})"
    );
    assert_eq!(failed_after, 0, "no page failed with one instance lost");
    assert_eq!(by_two_after, asked, "the other instance answered them all");
    assert!(
        known_after_restart,
        "a restarted instance knows the session"
    );
    for (code, to) in ended {
        assert_eq!(code, 303);
        assert!(to.starts_with("/sign-in"), "signed out everywhere: {to}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&certs);
}
