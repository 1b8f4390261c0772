//! Signed events on the real JetStream: what a store appends carries its
//! signature and reads back; an event published without one is set aside as
//! forged, unless it stands before the position signing began.

#![allow(clippy::unwrap_used)]

use event_store::testing::{TestStream, message, new_thread};
use event_store::{Error, EventStore, JetStreamStore, StoreConfig};
use futures::StreamExt;
use prost::Message;

async fn read(store: &JetStreamStore, n: usize) -> Vec<Result<u64, String>> {
    let mut feed = store.subscribe(1).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(match feed.next().await.unwrap() {
            Ok(event) => Ok(event.position),
            Err(Error::Forged { reason, .. }) => Err(reason),
            Err(e) => panic!("{e}"),
        });
    }
    out
}

#[tokio::test]
async fn unsigned_events_are_forged_from_the_position_signing_began() {
    let test = TestStream::new("signing").await;
    let thread = new_thread();
    // Recorded before signing: published without a signature.
    test.store()
        .jetstream()
        .publish(
            thread.subject(&test.config().prefix),
            message(&thread, "older").encode_to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    test.store()
        .append(&message(&thread, "signed"), event_store::ANY_VERSION)
        .await
        .unwrap();

    assert_eq!(
        read(test.store(), 2).await,
        vec![Err("unsigned".to_string()), Ok(2)]
    );
    let from_two = JetStreamStore::connect(StoreConfig {
        signed_from: 2,
        ..test.config().clone()
    })
    .await
    .unwrap();
    assert_eq!(read(&from_two, 2).await, vec![Ok(1), Ok(2)]);
    // The aggregate as the command service loads it: the unsigned event
    // stands empty (nothing happened there), the signed one as written.
    let loaded = test.store().load(&thread, 0).await.unwrap();
    assert_eq!(loaded.len(), 2);
    assert!(loaded[0].envelope.payload.is_none());
    assert!(loaded[1].envelope.payload.is_some());
    // Without the writers' keys, nothing is checked.
    let unchecked = JetStreamStore::connect(StoreConfig {
        keys: None,
        ..test.config().clone()
    })
    .await
    .unwrap();
    assert_eq!(read(&unchecked, 2).await, vec![Ok(1), Ok(2)]);
}
