//! The one conformance suite, run against both event stores.

mod memory {
    async fn harness(_label: &str) -> event_store::MemoryStore {
        event_store::MemoryStore::new()
    }
    event_store::conformance_suite!(harness);
}

mod jetstream {
    async fn harness(label: &str) -> event_store::testing::TestStream {
        event_store::testing::TestStream::new(label).await
    }
    event_store::conformance_suite!(harness);
}
