//! PostMessage end to end, beside the raw JetStream rate, in one run.
//!
//! `cargo bench -p command-service` starts the command service in this
//! process on a loopback port (its own stream on the NATS at `NATS_URL`),
//! seeds the demo organisation, starts one thread per client, and has 64
//! gRPC clients (signed in as a nurse) post messages to their own thread:
//! first each client on its own HTTP/2 connection, then all of them sharing
//! one (as stubs sharing a channel do). For each it prints commands/s and
//! p50/p99 latency beside the raw async-nats 64-writer append rate measured
//! on the same stream just before and after.
//!
//! Environment: `NATS_URL`, `BENCH_CLIENTS` (64), `BENCH_POSTS` (per client,
//! 200), `BENCH_CONNECTIONS` (first configuration; default one per client).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use careline_client::bearer::command_id;
use careline_client::demo::{Signer, first_thread, seed};
use command_service::{App, Application};
use event_store::testing::{TestStream, bench_setting, raw_append_rate};
use proto::command as pb;
use tonic::transport::Channel;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let clients = bench_setting::<usize>("BENCH_CLIENTS", 64);
    let posts = bench_setting::<usize>("BENCH_POSTS", 200);
    // HTTP/2 connections the clients spread over (a gRPC channel
    // multiplexes calls; real callers share channels between stubs).
    let connections = bench_setting::<usize>("BENCH_CONNECTIONS", clients).clamp(1, clients);
    let test = TestStream::new("cmdbench").await;
    let keys = service_kit::test_issuer();
    let app = Application::with_app(
        "127.0.0.1:0".parse().unwrap(),
        App::new(test.store().clone(), 100_000),
        keys.verifier(),
    )
    .await
    .unwrap();
    let addr = app.local_addr();
    tokio::spawn(app.run(std::future::pending()));
    let connect = || async move {
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap()
    };
    let signer = Signer::new(connect().await, keys);
    let org = seed(&signer).await.unwrap();
    let mut threads = Vec::new();
    for _ in 0..clients {
        threads.push(first_thread(&signer, &org).await.unwrap());
    }
    println!(
        "command service benchmark: NATS {}, {clients} gRPC clients x {posts} PostMessage each, on distinct threads, release build",
        test.config().nats_url
    );

    let mut configurations = vec![connections];
    if connections > 1 {
        configurations.push(1);
    }
    for connections in configurations {
        let nurse_token = signer.token(&org.nurse);
        let mut channels = Vec::new();
        for _ in 0..connections {
            channels.push(connect().await);
        }
        // Warm up every connection and cache.
        let mut nurses = Vec::new();
        for (i, thread) in threads.iter().enumerate() {
            let channel = channels[i % connections].clone();
            let mut client = careline_client::bearer::client(channel, &nurse_token).unwrap();
            client.post_message(post(thread)).await.unwrap();
            nurses.push((client, thread.clone()));
        }
        let raw_before = raw_append_rate(test.store(), 64, 100).await;
        let started = Instant::now();
        let tasks: Vec<_> = nurses
            .into_iter()
            .map(|(mut client, thread)| {
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(posts);
                    for _ in 0..posts {
                        let sent = Instant::now();
                        client.post_message(post(&thread)).await.unwrap();
                        latencies.push(sent.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies: Vec<Duration> = Vec::new();
        for task in tasks {
            latencies.extend(task.await.unwrap());
        }
        let elapsed = started.elapsed();
        let raw_after = raw_append_rate(test.store(), 64, 100).await;
        let raw = (raw_before + raw_after) / 2.0;
        latencies.sort();
        let rate = latencies.len() as f64 / elapsed.as_secs_f64();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!();
        println!("{clients} clients over {connections} HTTP/2 connection(s):");
        println!(
            "  raw JetStream appends/s, 64 writers: {raw:>9.0}  (before {raw_before:.0}, after {raw_after:.0})"
        );
        println!(
            "  PostMessage commands/s:              {rate:>9.0}  ({:.1}% of raw)",
            100.0 * rate / raw
        );
        println!(
            "  PostMessage latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(pct(0.50)),
            ms(pct(0.99)),
            ms(latencies[latencies.len() - 1])
        );
    }
}

fn post(thread: &str) -> pb::PostMessageRequest {
    pb::PostMessageRequest {
        attachments: vec![],
        command_id: command_id(),
        mention_ids: vec![],
        thread_id: thread.to_string(),
        body: "Please weigh yourself before Monday's session.".into(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
