//! An [`EventStore`] in memory, with the same behaviour as JetStream, for fast
//! unit tests of the write side. Events are kept encoded, as on the stream, so
//! decoding is exercised too. Unlike JetStream's duplicate window, event ids
//! are remembered for the store's whole life.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures::StreamExt;
use prost::Message;
use proto::events::Envelope;
use tokio::sync::watch;

use crate::{
    AggregateRef, Appended, Error, EventStore, EventStream, Position, RecordedEvent, Version,
    validate_envelope,
};

/// The in-memory event log. Clones share the same log.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    log: Arc<Mutex<Log>>,
    head: Arc<watch::Sender<Position>>,
}

#[derive(Debug, Default)]
struct Log {
    /// Position `p` is at index `p - 1`.
    events: Vec<Bytes>,
    by_aggregate: HashMap<AggregateRef, Vec<Position>>,
    by_event_id: HashMap<String, Position>,
    claims: HashMap<String, String>,
    hints: HashMap<String, Vec<String>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self {
            log: Arc::default(),
            head: Arc::new(watch::channel(0).0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave the log half-written
        // (each append is one push), so a poisoned lock is still consistent.
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, log: &mut Log, aggregate: AggregateRef, bytes: Bytes) -> Position {
        log.events.push(bytes);
        let position = log.events.len() as Position;
        log.by_aggregate
            .entry(aggregate)
            .or_default()
            .push(position);
        self.head.send_replace(position);
        position
    }

    /// Appends bytes that are not a valid envelope, as a corrupted log would
    /// hold, so tests can check that readers name the bad position.
    #[cfg(feature = "testing")]
    pub fn append_raw(&self, aggregate: &AggregateRef, bytes: Bytes) -> Position {
        let mut log = self.lock();
        self.push(&mut log, aggregate.clone(), bytes)
    }
}

fn decode(position: Position, bytes: &[u8]) -> Result<RecordedEvent, Error> {
    Envelope::decode(bytes)
        .map(|envelope| RecordedEvent { position, envelope })
        .map_err(|e| Error::Undecodable {
            position,
            reason: e.to_string(),
            bytes: bytes.to_vec(),
        })
}

impl EventStore for MemoryStore {
    async fn add_hint(&self, key: &str, item: &str) -> Result<(), Error> {
        let mut log = self.lock();
        let items = log.hints.entry(key.to_string()).or_default();
        if !items.iter().any(|i| i == item) {
            items.push(item.to_string());
        }
        Ok(())
    }

    async fn hints(&self, key: &str) -> Result<Vec<String>, Error> {
        Ok(self.lock().hints.get(key).cloned().unwrap_or_default())
    }

    async fn claim(&self, id: &str, owner: &str) -> Result<Option<String>, Error> {
        let mut log = self.lock();
        let holder = log
            .claims
            .entry(id.to_string())
            .or_insert_with(|| owner.to_string());
        Ok((holder != owner).then(|| holder.clone()))
    }

    async fn append(&self, envelope: &Envelope, expected: Version) -> Result<Appended, Error> {
        let aggregate = validate_envelope(envelope)?;
        let bytes = Bytes::from(envelope.encode_to_vec());
        let mut log = self.lock();
        // As on JetStream, a known event id wins over the version check: a
        // retried append answers with the first position.
        if let Some(&position) = log.by_event_id.get(&envelope.event_id) {
            return Ok(Appended {
                position,
                duplicate: true,
            });
        }
        let actual = log
            .by_aggregate
            .get(&aggregate)
            .and_then(|positions| positions.last().copied())
            .unwrap_or(0);
        if expected != crate::ANY_VERSION && actual != expected {
            return Err(Error::Conflict {
                aggregate,
                expected,
                actual,
            });
        }
        let position = self.push(&mut log, aggregate, bytes);
        log.by_event_id.insert(envelope.event_id.clone(), position);
        Ok(Appended {
            position,
            duplicate: false,
        })
    }

    async fn load(
        &self,
        aggregate: &AggregateRef,
        after: Version,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let log = self.lock();
        let Some(positions) = log.by_aggregate.get(aggregate) else {
            return Ok(Vec::new());
        };
        let start = positions.partition_point(|&p| p <= after);
        positions[start..]
            .iter()
            .map(|&p| decode(p, &log.events[p as usize - 1]))
            .collect()
    }

    async fn version(&self, aggregate: &AggregateRef) -> Result<Version, Error> {
        let log = self.lock();
        Ok(log
            .by_aggregate
            .get(aggregate)
            .and_then(|positions| positions.last().copied())
            .unwrap_or(0))
    }

    async fn subscribe(&self, from: Position) -> Result<EventStream, Error> {
        let store = self.clone();
        let head = self.head.subscribe();
        let next = from.max(1);
        let stream =
            futures::stream::unfold((store, head, next), |(store, mut head, next)| async move {
                loop {
                    let bytes = store.lock().events.get(next as usize - 1).cloned();
                    if let Some(bytes) = bytes {
                        return Some((decode(next, &bytes), (store, head, next + 1)));
                    }
                    // Wait for the next append; the sender lives as long as any
                    // clone of the store, and this stream holds one.
                    if head.changed().await.is_err() {
                        return None;
                    }
                }
            });
        Ok(stream.boxed())
    }

    async fn last_position(&self) -> Result<Position, Error> {
        Ok(self.lock().events.len() as Position)
    }
}
