//! The fault drills run long, as a benchmark of recovery: each for
//! `DRILL_SECONDS` (120, scaled by `BENCH_SCALE`, at least 12) with
//! `DRILL_WRITERS` writers (16; 8 for PostgreSQL's), printing its figures.
//! `DRILLS` picks some (comma-separated: killed, own, cut, instance,
//! outsider, postgresql; all by default).
//!
//! `cargo build --release --bin careline-command && cargo bench --workspace
//! --bench drills` (the command instance drill runs that binary).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use event_store::testing::bench_setting;
use tests::drills;

fn main() {
    let scale: f64 = bench_setting("BENCH_SCALE", 1.0);
    let seconds: u64 = bench_setting("DRILL_SECONDS", ((120.0 * scale) as u64).max(12));
    let writers: usize = bench_setting("DRILL_WRITERS", 16);
    let chosen = std::env::var("DRILLS").unwrap_or_default();
    let runs = |name: &str| chosen.is_empty() || chosen.split(',').any(|c| c.trim() == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    if runs("instance") {
        let bin = drills::command_binary();
        assert!(
            bin.exists(),
            "{} is not built: cargo build --release --bin careline-command",
            bin.display()
        );
    }
    println!("drills: {seconds} s each, {writers} writers");
    runtime.block_on(async {
        if runs("killed") {
            drills::stream_leader_killed(seconds, writers).await;
        }
        if runs("own") {
            drills::command_services_own_node_killed(seconds, writers).await;
        }
        if runs("cut") && drills::may_partition() {
            drills::stream_leader_cut_off(seconds, writers).await;
        }
        if runs("instance") {
            drills::command_instance_killed(seconds, writers).await;
        }
        if runs("outsider") {
            drills::outsider_cannot_join().await;
        }
        if runs("postgresql") {
            drills::postgresql_restarted(seconds, (writers / 2).max(1)).await;
        }
    });
}
