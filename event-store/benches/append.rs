//! Event store throughput against the raw NATS client, in one run.
//!
//! `cargo bench -p event-store` prints appends/s with 1 writer and with 64
//! writers on 64 aggregates, through the event store and as raw async-nats
//! publishes carrying the same headers, their ratio, and the time to load
//! aggregates of 10 and 1,000 events. Rounds alternate raw and store so that
//! drift on a shared machine hits both alike; the median round is reported.
//!
//! Environment: `NATS_URL` (default nats://127.0.0.1:4222), `BENCH_ROUNDS`.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use event_store::testing::{TestStream, append_in_order, message, new_thread, raw_append_rate};
use event_store::{EventStore, JetStreamStore};

const SINGLE_WRITER_APPENDS: usize = 2_000;
const WRITERS: usize = 64;
const APPENDS_PER_WRITER: usize = 100;

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let test = TestStream::new("bench").await;
    let store = test.store().clone();
    println!(
        "event store benchmark: NATS {}, stream {} (file storage), {rounds} rounds, median shown",
        test.config().nats_url,
        test.config().stream
    );

    // Warm up the connection and the stream.
    run_store(&store, 1, 200).await;
    raw_append_rate(&store, 1, 200).await;

    let mut table = Vec::new();
    for (label, writers, each) in [
        ("1 writer", 1, SINGLE_WRITER_APPENDS),
        ("64 writers, 64 aggregates", WRITERS, APPENDS_PER_WRITER),
    ] {
        let mut raw = Vec::new();
        let mut ours = Vec::new();
        for _ in 0..rounds {
            raw.push(raw_append_rate(&store, writers, each).await);
            ours.push(run_store(&store, writers, each).await);
        }
        table.push((label, median(raw), median(ours)));
    }

    println!();
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "appends/s", "raw async-nats", "event store", "ratio"
    );
    for (label, raw, ours) in &table {
        println!(
            "{label:<28} {raw:>14.0} {ours:>14.0} {:>7.1}%",
            100.0 * ours / raw
        );
    }

    println!();
    for size in [10, 100, 1_000] {
        let thread = new_thread();
        let mut version = 0;
        for i in 0..size {
            version = store
                .append(&message(&thread, &format!("message {i}")), version)
                .await
                .unwrap()
                .position;
        }
        let mut times = Vec::new();
        for _ in 0..21 {
            let started = Instant::now();
            let events = store.load(&thread, 0).await.unwrap();
            times.push(started.elapsed());
            assert_eq!(events.len(), size);
        }
        times.sort();
        println!(
            "load a {size}-event aggregate: median {:.2} ms, min {:.2} ms, max {:.2} ms",
            ms(times[times.len() / 2]),
            ms(times[0]),
            ms(times[times.len() - 1])
        );
    }

    signing();
}

/// What a signature costs one core: signing an event (once per command)
/// and checking one (once per event each reader reads, a rebuild included).
fn signing() {
    use prost::Message;
    const N: usize = 20_000;
    let signer = event_store::testing::test_signer();
    let keys = event_store::testing::test_keys();
    let thread = new_thread();
    let subject = thread.subject("careline");
    let body = "I have been feeling more tired since Tuesday and my ankles are swollen \
                again in the evenings; should I change my fluid allowance before Monday?";
    let payloads: Vec<Vec<u8>> = (0..N)
        .map(|_| message(&thread, body).encode_to_vec())
        .collect();
    let started = Instant::now();
    let signatures: Vec<String> = payloads.iter().map(|p| signer.sign(&subject, p)).collect();
    let sign = started.elapsed() / N as u32;
    let started = Instant::now();
    for (payload, signature) in payloads.iter().zip(&signatures) {
        keys.check(&subject, false, payload, Some(signature))
            .unwrap();
    }
    let check = started.elapsed() / N as u32;
    // As the feed checks them: 64 at a time, as one batch.
    let started = Instant::now();
    for (payloads, signatures) in payloads.chunks(64).zip(signatures.chunks(64)) {
        let checked: Vec<event_store::Checked<'_>> = payloads
            .iter()
            .zip(signatures)
            .map(|(payload, signature)| event_store::Checked {
                subject: &subject,
                access: false,
                payload,
                signature: Some(signature),
            })
            .collect();
        assert!(keys.check_all(&checked).iter().all(Result::is_ok));
    }
    let batch = started.elapsed() / N as u32;
    println!();
    println!(
        "signatures ({} bytes an event), one core: sign {:.1} µs; check {:.1} µs alone, \
         {:.1} µs in batches of 64 (at most {:.0} events/s checked per core)",
        payloads[0].len(),
        sign.as_secs_f64() * 1e6,
        check.as_secs_f64() * 1e6,
        batch.as_secs_f64() * 1e6,
        1.0 / batch.as_secs_f64()
    );
}

/// Appends/s through the event store: `writers` tasks, each appending
/// `each` events to its own new aggregate with its expected version.
async fn run_store(store: &JetStreamStore, writers: usize, each: usize) -> f64 {
    let batches: Vec<_> = (0..writers)
        .map(|_| {
            let thread = new_thread();
            (0..each)
                .map(|i| message(&thread, &format!("message {i}")))
                .collect::<Vec<_>>()
        })
        .collect();
    let started = Instant::now();
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|events| {
            let store = store.clone();
            tokio::spawn(async move { append_in_order(&store, &events).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (writers * each) as f64 / started.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
