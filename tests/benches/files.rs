//! Files' figures, in one run (`cargo bench -p tests --bench files`):
//!
//! 1. upload of one file (100 MB at `BENCH_SCALE=1`) through the API
//!    (`UploadFile`: checked, spooled, stored in the bucket) against a raw
//!    object-store `put` of as many bytes on the same NATS;
//! 2. its download through the API (`GetFile`: authorised, recorded, read
//!    from the bucket) against a raw object-store `get`;
//! 3. the process's peak memory growth while the API streams it (the
//!    services run in this process; the bytes are generated as they are
//!    sent, never held whole here);
//! 4. the inbox service's own peak memory growth while it sends the file,
//!    run as its own process (`careline-inbox` from `CARELINE_BIN_DIR`, or
//!    this build's folder: `cargo build -p inbox-service` first), apart
//!    from the client reading it.
//!
//! Environment: `NATS_URL`, `DATABASE_URL`, `BENCH_SCALE` (1.0 = 100 MB).

#![allow(clippy::unwrap_used)]

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use careline_client::bearer::command_id;
use careline_client::demo::first_thread;
use event_store::testing::bench_setting;
use futures::StreamExt as _;
use proto::command as cmd;
use proto::inbox as inbox_pb;
use testkit::{Services, System};
use tokio::io::{AsyncRead, AsyncReadExt as _, ReadBuf};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `len` bytes of a PDF-looking file, made as they are read.
struct Generated {
    left: u64,
    state: u64,
    started: bool,
}

impl Generated {
    fn new(len: u64) -> Self {
        Self {
            left: len,
            state: 0x9E37_79B9_7F4A_7C15,
            started: false,
        }
    }

    fn fill(&mut self, out: &mut [u8]) -> usize {
        let n = (out.len() as u64).min(self.left) as usize;
        let mut i = 0;
        if !self.started && n >= 9 {
            out[..9].copy_from_slice(b"%PDF-1.7\n");
            i = 9;
            self.started = true;
        }
        while i < n {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let bytes = self.state.to_le_bytes();
            let take = (n - i).min(8);
            out[i..i + take].copy_from_slice(&bytes[..take]);
            i += take;
        }
        self.left -= n as u64;
        n
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// This process's resident memory now, in bytes.
fn resident() -> u64 {
    memory("self", "VmRSS:")
}

/// A line of a process's `/proc/<pid>/status` (`VmRSS:` now, `VmHWM:` its
/// peak), in bytes.
fn memory(pid: &str, line: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(line))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The file's bytes as `inbox` sends them to `who`: how many.
async fn download(inbox: &mut testkit::Inbox, thread: &str, digest: &str) -> u64 {
    let mut parts = inbox
        .get_file(inbox_pb::GetFileRequest {
            thread_id: thread.to_string(),
            digest: digest.to_string(),
            preview: false,
        })
        .await
        .unwrap()
        .into_inner();
    let mut read = 0u64;
    while let Some(part) = parts.next().await {
        if let Some(inbox_pb::file_part::Part::Chunk(c)) = part.unwrap().part {
            read += c.len() as u64;
        }
    }
    read
}

/// The inbox service as its own process, on the benchmark's stream and a
/// database of its own, once it answers; `None` when it is not built.
async fn inbox_apart(
    s: &System,
    db: &projections::testing::TestDatabase,
) -> Option<(std::process::Child, std::net::SocketAddr)> {
    let dir = std::env::var_os("CARELINE_BIN_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.to_path_buf())
        })?;
    let binary = dir.join("careline-inbox");
    if !binary.exists() {
        println!(
            "  (careline-inbox is not built in {}: the inbox's own memory is not measured)",
            dir.display()
        );
        return None;
    }
    let port = testkit::free_port();
    let config = s.stream.config();
    let mut command = std::process::Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CARELINE_INBOX_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &db.url)
        .env("NATS_URL", &config.nats_url)
        .env("CARELINE_STREAM", &config.stream)
        .env("CARELINE_PREFIX", &config.prefix)
        .env("CARELINE_TOKEN_PUBLIC_KEYS", testkit::issuer().public_key())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null());
    for (var, value) in event_store::testing::signing_env() {
        command.env(var, value);
    }
    command.env(
        event_store::signing::SIGNING_KEY_VAR,
        event_store::testing::test_reads_signer().private_key(),
    );
    let child = command.spawn().ok()?;
    event_store::testing::listening(port, "careline-inbox").await;
    Some((child, ([127, 0, 0, 1], port).into()))
}

/// The largest resident memory seen while `work` runs, above what it was
/// before.
async fn peak_growth<T>(work: impl std::future::Future<Output = T>) -> (T, u64) {
    let before = resident();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let watching = peak.clone();
    let sampler = tokio::spawn(async move {
        loop {
            watching.fetch_max(resident(), std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let out = work.await;
    sampler.abort();
    let peak = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(resident());
    (out, peak.saturating_sub(before))
}

fn rate(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / took.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let scale: f64 = bench_setting("BENCH_SCALE", 1.0);
    let size = ((100.0 * 1024.0 * 1024.0 * scale) as u64).max(1024);
    let mb = size as f64 / (1024.0 * 1024.0);
    println!("files benchmark: one file of {mb:.1} MB");
    let s = System::start(
        "filesbench",
        Services {
            inbox: true,
            wait: Some(Duration::from_secs(30)),
            max_file_bytes: Some(size + 1),
            ..Default::default()
        },
    )
    .await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();

    // Raw object store on the same NATS.
    let js = s.stream.store().jetstream().clone();
    let raw_bucket = format!("{}_RAW", s.stream.config().stream);
    let raw = js
        .create_object_store(async_nats::jetstream::object_store::Config {
            bucket: raw_bucket.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let started = Instant::now();
    raw.put("raw", &mut Generated::new(size)).await.unwrap();
    let raw_put = started.elapsed();
    let started = Instant::now();
    let mut object = raw.get("raw").await.unwrap();
    let mut buf = vec![0u8; 128 * 1024];
    let mut read = 0u64;
    loop {
        let n = object.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        read += n as u64;
    }
    assert_eq!(read, size);
    let raw_get = started.elapsed();

    // Through the API.
    let mut pat = s.signer.client(&org.patient).unwrap();
    let chunks = futures::stream::unfold(Generated::new(size), |mut g| async move {
        let mut chunk = vec![0u8; careline_client::files::PART];
        let n = g.fill(&mut chunk);
        (n > 0).then(|| {
            chunk.truncate(n);
            (chunk, g)
        })
    });
    let started = Instant::now();
    let (file, upload_growth) = peak_growth(careline_client::files::upload_stream(
        &mut pat, "scan.pdf", size, chunks,
    ))
    .await;
    let api_put = started.elapsed();
    let file = file.unwrap();
    let at = pat
        .post_message(cmd::PostMessageRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
            attachments: vec![file.clone()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    s.thread(&org.nurse, &thread, at).await;
    let mut nurse = s.inbox(&org.nurse);
    let started = Instant::now();
    let (read, download_growth) = peak_growth(download(&mut nurse, &thread, &file.digest)).await;
    let api_get = started.elapsed();
    assert_eq!(read, size);

    // The inbox service alone, in its own process: its peak memory while
    // it sends the file, apart from the client reading it.
    let apart_db = projections::testing::TestDatabase::new("filesbench_apart").await;
    let apart = match inbox_apart(&s, &apart_db).await {
        Some((mut child, addr)) => {
            let channel = testkit::channel(addr).await;
            let mut inbox =
                proto::inbox::inbox_service_client::InboxServiceClient::with_interceptor(
                    channel,
                    careline_client::Bearer::new(&s.signer.token(&org.nurse)).unwrap(),
                );
            // Caught up with the log (the thread is there), then measured.
            inbox
                .get_thread(inbox_pb::GetThreadRequest {
                    min_position: at,
                    thread_id: thread.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let pid = child.id().to_string();
            let (rss, peak_before) = (memory(&pid, "VmRSS:"), memory(&pid, "VmHWM:"));
            let started = Instant::now();
            let read = download(&mut inbox, &thread, &file.digest).await;
            let took = started.elapsed();
            assert_eq!(read, size);
            let peak = memory(&pid, "VmHWM:");
            let _ = child.kill();
            let _ = child.wait();
            Some((rss, peak.saturating_sub(peak_before.max(rss)), took))
        }
        None => None,
    };

    println!(
        "  upload:   API {:.0} MB/s ({:.2} s), raw put {:.0} MB/s ({:.2} s): {:.0}% of raw",
        rate(size, api_put),
        api_put.as_secs_f64(),
        rate(size, raw_put),
        raw_put.as_secs_f64(),
        100.0 * raw_put.as_secs_f64() / api_put.as_secs_f64()
    );
    println!(
        "  download: API {:.0} MB/s ({:.2} s), raw get {:.0} MB/s ({:.2} s): {:.0}% of raw",
        rate(size, api_get),
        api_get.as_secs_f64(),
        rate(size, raw_get),
        raw_get.as_secs_f64(),
        100.0 * raw_get.as_secs_f64() / api_get.as_secs_f64()
    );
    println!(
        "  memory:   peak growth while uploading {:.1} MB, while downloading {:.1} MB (the file is {mb:.1} MB)",
        upload_growth as f64 / (1024.0 * 1024.0),
        download_growth as f64 / (1024.0 * 1024.0),
    );
    if let Some((rss, growth, took)) = apart {
        println!(
            "  the inbox service in its own process: resident {:.1} MB before, peak growth {:.1} MB while sending the file ({:.0} MB/s)",
            rss as f64 / (1024.0 * 1024.0),
            growth as f64 / (1024.0 * 1024.0),
            rate(size, took),
        );
    }
    let _ = js.delete_object_store(&raw_bucket).await;
}
