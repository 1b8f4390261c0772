//! Files' figures, in one run (`cargo bench -p tests --bench files`):
//!
//! 1. upload of one file (100 MB at `BENCH_SCALE=1`) through the API
//!    (`UploadFile`: checked, spooled, stored in the bucket) against a raw
//!    object-store `put` of as many bytes on the same NATS;
//! 2. its download through the API (`GetFile`: authorised, recorded, read
//!    from the bucket) against a raw object-store `get`;
//! 3. the process's peak memory growth while the API streams it (the
//!    services run in this process; the bytes are generated as they are
//!    sent, never held whole here).
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
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
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
    let (read, download_growth) = peak_growth(async {
        let mut parts = nurse
            .get_file(inbox_pb::GetFileRequest {
                thread_id: thread.clone(),
                digest: file.digest.clone(),
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
    })
    .await;
    let api_get = started.elapsed();
    assert_eq!(read, size);

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
    let _ = js.delete_object_store(&raw_bucket).await;
}
