//! The Careline event log.
//!
//! Every change in the product is one [`proto::events::Envelope`] appended to
//! an aggregate's subject; the log is the only source of truth. This crate is
//! the one way the rest of the code writes and reads it:
//!
//! * [`EventStore`] is the contract: append one event with an expected
//!   aggregate version, idempotently by event id; load an aggregate; subscribe
//!   to every event from a global position; read the head position.
//! * [`JetStreamStore`] (in `jetstream.rs`) is what the product runs on: one
//!   JetStream stream, one subject per aggregate, optimistic concurrency by
//!   `Nats-Expected-Last-Subject-Sequence`, idempotency by `Nats-Msg-Id`.
//! * [`MemoryStore`] (in `memory.rs`) has the same behaviour in memory, for
//!   fast unit tests of the write side.
//! * [`conformance`] (feature `testing`) is one suite of behaviour tests that
//!   both implementations pass; [`testing`] gives each test its own stream;
//!   [`world`] generates a realistic log of any size, appended straight to a
//!   store, for benchmarks and rebuild tests.
//!
//! Versions and positions: an event's *position* is its stream sequence,
//! global and increasing. An aggregate's *version* is the position of its last
//! event (0 when it has none), which is exactly what JetStream compares
//! `Nats-Expected-Last-Subject-Sequence` against.

mod aggregate;
mod config;
mod error;
mod event;
pub mod files;
mod jetstream;
mod memory;
pub mod signing;

#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "testing")]
pub mod world;

use std::future::Future;

use futures::stream::BoxStream;

pub use aggregate::AggregateRef;
pub use config::{NatsTls, NatsUser, StoreConfig};
pub use error::Error;
pub use event::{Appended, RecordedEvent, validate_envelope};
pub use files::{FileStore, StoredFile, files_bucket};
pub use jetstream::{CONSUMER_IDLE_LIMIT, JetStreamStore, claims_bucket, inbox_prefix};
pub use memory::MemoryStore;
pub use signing::{Checked, EventKeys, EventSigner, Writer};

/// A global position in the log: the stream sequence of an event. The first
/// event is at 1; 0 means "before the first event".
pub type Position = u64;

/// An aggregate's version: the position of its last event, 0 for none.
pub type Version = u64;

/// The expected version that checks nothing: for access events, which
/// record reads and never conflict with one another. Every aggregate that
/// holds state is appended to with its real version.
pub const ANY_VERSION: Version = u64::MAX;

/// A live, ordered feed of recorded events.
pub type EventStream = BoxStream<'static, Result<RecordedEvent, Error>>;

/// The event log. Implementations are cheap to clone and shareable.
pub trait EventStore: Clone + Send + Sync + 'static {
    /// Appends one event to the aggregate named in its envelope, provided the
    /// aggregate is still at `expected` (0 for a new aggregate;
    /// [`ANY_VERSION`] to append whatever the version).
    ///
    /// * A different version is [`Error::Conflict`], carrying the actual one.
    /// * An event id that was already appended (inside the JetStream duplicate
    ///   window) is not written again: the answer is the first position, with
    ///   `duplicate` set.
    fn append(
        &self,
        envelope: &proto::events::Envelope,
        expected: Version,
    ) -> impl Future<Output = Result<Appended, Error>> + Send;

    /// The aggregate's events with a version above `after`, in order.
    /// `after = 0` loads the whole aggregate; a cached state at version `v`
    /// catches up with `after = v`.
    fn load(
        &self,
        aggregate: &AggregateRef,
        after: Version,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, Error>> + Send;

    /// The aggregate's current version (0 when it has no events).
    fn version(
        &self,
        aggregate: &AggregateRef,
    ) -> impl Future<Output = Result<Version, Error>> + Send;

    /// Every event from position `from` (inclusive) onwards, in order, and
    /// then new events as they are appended. `from = 0` and `from = 1` both
    /// start at the first event.
    fn subscribe(&self, from: Position) -> impl Future<Output = Result<EventStream, Error>> + Send;

    /// The position of the last event in the log (0 when empty).
    fn last_position(&self) -> impl Future<Output = Result<Position, Error>> + Send;

    /// Claims `id` (a command id) for `owner` (the aggregate it acts on),
    /// for good: JetStream's duplicate window forgets ids after minutes,
    /// this does not. Answers `None` when the id is now (or already was)
    /// `owner`'s, or the owner that claimed it first.
    fn claim(
        &self,
        id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<Option<String>, Error>> + Send;

    /// Adds `item` to the set of hints kept under `key` (e.g. the teams a
    /// person was ever added to). Hints are only ever added: a reader
    /// treats them as a superset to check against the log, never as truth.
    fn add_hint(&self, key: &str, item: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// The hints kept under `key`, in the order they were added (none when
    /// nothing was).
    fn hints(&self, key: &str) -> impl Future<Output = Result<Vec<String>, Error>> + Send;

    /// The bucket of files kept beside this log (see [`files`]), if it
    /// keeps one: the JetStream log does, the in-memory one does not.
    fn files(&self) -> impl Future<Output = Result<Option<FileStore>, Error>> + Send {
        async { Ok(None) }
    }
}
