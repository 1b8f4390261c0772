//! `careline status`.

use event_store::{EventStore, JetStreamStore, StoreConfig};

pub(crate) async fn run(config: StoreConfig) -> anyhow::Result<()> {
    let store = JetStreamStore::connect(config.clone()).await?;
    let head = store.last_position().await?;
    let mut stream = store.jetstream().get_stream(&config.stream).await?;
    let info = stream.info().await?;
    println!("event stream   {} on {}", config.stream, config.nats_url);
    println!("subjects       {}", info.config.subjects.join(", "));
    println!(
        "settings       {:?} storage, {} replica(s), duplicate window {:?}, deny delete {}, deny purge {}",
        info.config.storage,
        info.config.num_replicas,
        info.config.duplicate_window,
        info.config.deny_delete,
        info.config.deny_purge,
    );
    println!(
        "events         {} (head position {head}), {} bytes, {} aggregates",
        info.state.messages, info.state.bytes, info.state.subjects_count
    );
    Ok(())
}
