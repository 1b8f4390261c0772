//! The fault drills of `tests::drills`, short (12 s each), in
//! `deploy/test.sh`: each prints attempted, acknowledged, refused, lost
//! (must be 0), duplicated (must be 0) and the longest time without an
//! acknowledgement. `DRILL_SECONDS` and `DRILL_WRITERS` make them longer or
//! busier; `cargo bench --workspace --bench drills` runs them long.

use event_store::testing::bench_setting;
use tests::drills;

fn seconds() -> u64 {
    bench_setting("DRILL_SECONDS", 12)
}

fn writers(default: usize) -> usize {
    bench_setting("DRILL_WRITERS", default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_leader_killed_under_load_loses_and_doubles_no_acknowledged_message() {
    drills::stream_leader_killed(seconds(), writers(8)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_command_services_own_node_killed_under_load_stalls_writes_under_a_second_and_a_half() {
    drills::command_services_own_node_killed(seconds(), writers(8)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_leader_cut_off_the_network_under_load_loses_and_doubles_no_acknowledged_message()
{
    if drills::may_partition() {
        drills::stream_leader_cut_off(seconds(), writers(8)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_instance_killed_under_load_leaves_its_clients_to_the_other() {
    drills::command_instance_killed(seconds(), writers(8)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_clusters_credentials_cannot_join_it() {
    drills::outsider_cannot_join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_restarted_under_load_loses_no_message_and_reads_recover() {
    drills::postgresql_restarted(seconds(), writers(4)).await;
}
