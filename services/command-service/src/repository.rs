//! Loading aggregates, with a cache that is also the per-aggregate lock.
//!
//! Each aggregate has one cache slot: a mutex around its last known state
//! and version. A command locks its target's slot for its whole run, so
//! commands on one aggregate queue up inside this process instead of
//! conflicting; other processes are held off by the log's expected-version
//! check. The target's cached state is trusted (a stale one only costs a
//! conflict and a catch-up). Aggregates read for context are checked
//! against the log's current version every time: authorisation never rests
//! on a stale consent or membership.
//!
//! Lock order (no cycles): thread, then patient record, then team, then
//! person. A command holds its target's slot and briefly locks the slots of
//! the aggregates it reads, which always come later in that order.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use event_store::{AggregateRef, Error as StoreError, EventStore, Position, Version};
use proto::events::Envelope;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::domain::Aggregate;

/// An aggregate's state at a version, with the commands it has recorded.
#[derive(Clone, Debug, Default)]
pub struct Loaded<A> {
    pub state: A,
    pub version: Version,
    /// Command id → position of the event it recorded: a retried command
    /// answers as the first time, even outside JetStream's duplicate window.
    pub commands: HashMap<String, Position>,
}

impl<A: Aggregate> Loaded<A> {
    fn apply(&mut self, position: Position, envelope: &Envelope) {
        self.state.evolve(envelope);
        self.version = position;
        if !envelope.command_id.is_empty() {
            self.commands.insert(envelope.command_id.clone(), position);
        }
    }
}

type Slot<A> = Mutex<Option<Arc<Loaded<A>>>>;
type AnySlot = Arc<dyn Any + Send + Sync>;

/// Aggregates from the log, cached.
pub struct Repository<S> {
    store: S,
    slots: moka::future::Cache<(i32, String), AnySlot>,
}

impl<S> std::fmt::Debug for Repository<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("cached", &self.slots.entry_count())
            .finish()
    }
}

impl<S: EventStore> Repository<S> {
    pub fn new(store: S, capacity: u64) -> Self {
        Self {
            store,
            slots: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(Duration::from_secs(30 * 60))
                .build(),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    async fn slot<A: Aggregate>(&self, id: &str) -> Arc<Slot<A>> {
        let key = (A::KIND as i32, id.to_string());
        let slot = self
            .slots
            .get_with(key, async { Arc::new(Slot::<A>::new(None)) as AnySlot })
            .await;
        match slot.downcast::<Slot<A>>() {
            Ok(slot) => slot,
            // The key carries the aggregate type, so this cannot happen; an
            // unshared slot is still correct, only uncached.
            Err(_) => Arc::new(Slot::<A>::new(None)),
        }
    }

    fn aggregate<A: Aggregate>(id: &str) -> Result<AggregateRef, StoreError> {
        AggregateRef::new(A::KIND, id)
    }

    /// Locks an aggregate for a command, loading it if it is not cached.
    pub async fn lock<A: Aggregate>(&self, id: &str) -> Result<Locked<'_, S, A>, StoreError> {
        let aggregate = Self::aggregate::<A>(id)?;
        let mut guard = self.slot::<A>(id).await.lock_owned().await;
        if guard.is_none() {
            *guard = Some(Arc::new(self.replay(&aggregate, Loaded::default()).await?));
        }
        Ok(Locked {
            repo: self,
            aggregate,
            guard,
        })
    }

    /// The aggregate as the log has it now, for reading.
    pub async fn fresh<A: Aggregate>(&self, id: &str) -> Result<Arc<Loaded<A>>, StoreError> {
        let aggregate = Self::aggregate::<A>(id)?;
        let slot = self.slot::<A>(id).await;
        // The common case, a cached state the log has nothing newer for, is
        // checked without holding the slot: many commands read the same
        // person or team at once, and each asks the log in parallel.
        let cached = slot.lock().await.clone();
        if let Some(cached) = cached
            && self.store.version(&aggregate).await? <= cached.version
        {
            return Ok(cached);
        }
        let mut guard = slot.lock().await;
        let current = match guard.take() {
            Some(cached) => {
                if self.store.version(&aggregate).await? > cached.version {
                    Arc::new(self.replay(&aggregate, (*cached).clone()).await?)
                } else {
                    cached
                }
            }
            None => Arc::new(self.replay(&aggregate, Loaded::default()).await?),
        };
        *guard = Some(current.clone());
        Ok(current)
    }

    async fn replay<A: Aggregate>(
        &self,
        aggregate: &AggregateRef,
        mut from: Loaded<A>,
    ) -> Result<Loaded<A>, StoreError> {
        for event in self.store.load(aggregate, from.version).await? {
            from.apply(event.position, &event.envelope);
        }
        Ok(from)
    }
}

/// An aggregate locked for one command.
pub struct Locked<'r, S, A> {
    repo: &'r Repository<S>,
    aggregate: AggregateRef,
    guard: OwnedMutexGuard<Option<Arc<Loaded<A>>>>,
}

impl<S, A> std::fmt::Debug for Locked<'_, S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locked")
            .field("aggregate", &self.aggregate)
            .finish()
    }
}

impl<S: EventStore, A: Aggregate> Locked<'_, S, A> {
    pub fn aggregate(&self) -> &AggregateRef {
        &self.aggregate
    }

    pub fn current(&self) -> Arc<Loaded<A>> {
        self.guard.clone().unwrap_or_default()
    }

    /// Reads what others appended since the cached version.
    pub async fn catch_up(&mut self) -> Result<(), StoreError> {
        let current = (*self.current()).clone();
        *self.guard = Some(Arc::new(self.repo.replay(&self.aggregate, current).await?));
        Ok(())
    }

    /// Applies the event this command just appended.
    pub fn record(&mut self, position: Position, envelope: &Envelope) {
        let mut current = self.guard.take().unwrap_or_default();
        Arc::make_mut(&mut current).apply(position, envelope);
        *self.guard = Some(current);
    }
}
