//! The behaviour every [`EventStore`] must have, as one suite run against
//! each implementation. An implementation's test file calls
//! [`conformance_suite!`](crate::conformance_suite) with an async function
//! that makes a fresh [`Harness`]; each behaviour below becomes its own test.

// This module is a test suite: a failed `unwrap` is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use proto::events::envelope::Payload;
use proto::events::{AggregateType, TeamCreated};

use crate::testing::{TestStream, envelope, message, new_thread};
use crate::{AggregateRef, Error, EventStore, MemoryStore, Position, RecordedEvent};

/// A fresh store under test, and a way to corrupt it.
pub trait Harness: Send + Sync + 'static {
    type Store: EventStore;

    fn store(&self) -> &Self::Store;

    /// Writes bytes that are not an envelope to the aggregate's subject, as a
    /// corrupted log would hold, and returns their position.
    fn inject_undecodable(&self, aggregate: &AggregateRef)
    -> impl Future<Output = Position> + Send;
}

/// Bytes that cannot decode as an envelope (field 1 with wire type 7).
const GARBAGE: &[u8] = b"\x0f\x0f\x0fnot an envelope";

impl Harness for MemoryStore {
    type Store = MemoryStore;

    fn store(&self) -> &MemoryStore {
        self
    }

    async fn inject_undecodable(&self, aggregate: &AggregateRef) -> Position {
        self.append_raw(aggregate, bytes::Bytes::from_static(GARBAGE))
    }
}

impl Harness for TestStream {
    type Store = crate::JetStreamStore;

    fn store(&self) -> &crate::JetStreamStore {
        TestStream::store(self)
    }

    async fn inject_undecodable(&self, aggregate: &AggregateRef) -> Position {
        let subject = aggregate.subject(&self.config().prefix);
        self.store()
            .jetstream()
            .publish(subject, bytes::Bytes::from_static(GARBAGE))
            .await
            .expect("publish garbage")
            .await
            .expect("garbage acknowledged")
            .sequence
    }
}

/// Generates one `#[tokio::test]` per behaviour, each with a fresh harness
/// from `$make(label)`.
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@tests $make;
            appends_and_loads_in_order,
            new_aggregate_expects_version_zero,
            conflict_names_the_actual_version_and_writes_nothing,
            same_event_id_is_appended_once,
            any_version_appends_without_a_check,
            positions_are_global_and_dense,
            subscribe_resumes_exactly_where_asked,
            subscribe_delivers_events_appended_later,
            loads_a_thousand_event_aggregate,
            concurrent_appends_have_one_winner_per_version,
            refuses_malformed_events,
            names_the_position_of_an_undecodable_event,
            a_claimed_id_stays_its_first_owners,
            hints_are_a_set_that_only_grows_also_under_concurrent_adds
        );
    };
    (@tests $make:path; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $make(stringify!($name)).await;
                $crate::conformance::$name(&harness).await;
            }
        )*
    };
}

async fn append_chain<S: EventStore>(
    store: &S,
    aggregate: &AggregateRef,
    count: usize,
) -> Vec<RecordedEvent> {
    let mut version = store.version(aggregate).await.unwrap();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let event = message(aggregate, &format!("message {i}"));
        let appended = store.append(&event, version).await.unwrap();
        assert!(!appended.duplicate);
        version = appended.position;
        out.push(RecordedEvent {
            position: appended.position,
            envelope: event,
        });
    }
    out
}

async fn next_within<S>(stream: &mut S) -> Option<Result<RecordedEvent, Error>>
where
    S: futures::Stream<Item = Result<RecordedEvent, Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the feed stalled for 10 s")
}

pub async fn appends_and_loads_in_order(h: &impl Harness) {
    let store = h.store();
    let thread = new_thread();
    let written = append_chain(store, &thread, 5).await;
    // Another aggregate's events interleave but never show up in this one.
    let other = new_thread();
    append_chain(store, &other, 2).await;
    append_chain(store, &thread, 0).await;

    assert_eq!(store.load(&thread, 0).await.unwrap(), written);
    assert_eq!(
        store.load(&thread, written[2].position).await.unwrap(),
        written[3..]
    );
    assert_eq!(
        store.load(&thread, written[4].position).await.unwrap(),
        vec![]
    );
    assert_eq!(store.version(&thread).await.unwrap(), written[4].position);

    let unknown = new_thread();
    assert_eq!(store.version(&unknown).await.unwrap(), 0);
    assert_eq!(store.load(&unknown, 0).await.unwrap(), vec![]);
}

pub async fn new_aggregate_expects_version_zero(h: &impl Harness) {
    let store = h.store();
    let thread = new_thread();
    let first = message(&thread, "first");
    match store.append(&first, 7).await {
        Err(Error::Conflict {
            expected: 7,
            actual: 0,
            ..
        }) => {}
        other => panic!("expected a conflict at version 0, got {other:?}"),
    }
    let appended = store.append(&first, 0).await.unwrap();
    assert!(appended.position >= 1);
    assert_eq!(store.version(&thread).await.unwrap(), appended.position);
}

pub async fn conflict_names_the_actual_version_and_writes_nothing(h: &impl Harness) {
    let store = h.store();
    let thread = new_thread();
    let written = append_chain(store, &thread, 3).await;
    let head = store.last_position().await.unwrap();
    let late = message(&thread, "written against an old version");
    for stale in [0, written[0].position, written[1].position] {
        match store.append(&late, stale).await {
            Err(Error::Conflict {
                aggregate,
                expected,
                actual,
            }) => {
                assert_eq!(aggregate, thread);
                assert_eq!(expected, stale);
                assert_eq!(actual, written[2].position);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(store.last_position().await.unwrap(), head);
    assert_eq!(store.load(&thread, 0).await.unwrap(), written);
    // The refused event id was not consumed: it can still be appended.
    let appended = store.append(&late, written[2].position).await.unwrap();
    assert!(!appended.duplicate);
}

pub async fn same_event_id_is_appended_once(h: &impl Harness) {
    let store = h.store();
    let thread = new_thread();
    let event = message(&thread, "sent twice");
    let first = store.append(&event, 0).await.unwrap();
    assert!(!first.duplicate);
    // A retry with the same expected version, and one after the caller
    // reloaded, both answer with the first position and write nothing.
    for expected in [0, first.position] {
        let again = store.append(&event, expected).await.unwrap();
        assert_eq!(again.position, first.position);
        assert!(again.duplicate);
    }
    assert_eq!(store.load(&thread, 0).await.unwrap().len(), 1);
    assert_eq!(store.last_position().await.unwrap(), first.position);
}

pub async fn any_version_appends_without_a_check(h: &impl Harness) {
    let store = h.store();
    let reader = AggregateRef::new(AggregateType::Access, uuid::Uuid::now_v7().to_string())
        .expect("a UUID is a valid aggregate id");
    let viewed = || {
        envelope(
            &reader,
            Payload::RecordsViewed(proto::events::RecordsViewed {
                call: "GetThread".into(),
                ..Default::default()
            }),
        )
    };
    // Concurrent reads by one person: every one is recorded, none conflicts.
    let appends = (0..8).map(|_| {
        let store = store.clone();
        let event = viewed();
        async move { store.append(&event, crate::ANY_VERSION).await }
    });
    let results = futures::future::join_all(appends).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|a| !a.duplicate))
    );
    assert_eq!(store.load(&reader, 0).await.unwrap().len(), 8);
    // The id still de-duplicates.
    let event = viewed();
    let first = store.append(&event, crate::ANY_VERSION).await.unwrap();
    let again = store.append(&event, crate::ANY_VERSION).await.unwrap();
    assert_eq!((again.position, again.duplicate), (first.position, true));
}

pub async fn positions_are_global_and_dense(h: &impl Harness) {
    let store = h.store();
    assert_eq!(store.last_position().await.unwrap(), 0);
    let aggregates = [new_thread(), new_thread(), new_thread()];
    let mut versions = [0; 3];
    let mut positions = Vec::new();
    for round in 0..4 {
        for (i, aggregate) in aggregates.iter().enumerate() {
            let appended = store
                .append(&message(aggregate, &format!("{round}")), versions[i])
                .await
                .unwrap();
            versions[i] = appended.position;
            positions.push(appended.position);
        }
    }
    assert_eq!(positions, (1..=12).collect::<Vec<Position>>());
    assert_eq!(store.last_position().await.unwrap(), 12);
}

pub async fn subscribe_resumes_exactly_where_asked(h: &impl Harness) {
    let store = h.store();
    let mut all = Vec::new();
    for _ in 0..3 {
        all.extend(append_chain(store, &new_thread(), 3).await);
    }
    all.sort_by_key(|e| e.position);
    let last = all.last().unwrap().position;
    assert_eq!(last, 9);
    for from in [0, 1, 2, 5, 9] {
        let mut feed = store.subscribe(from).await.unwrap();
        let expected: Vec<_> = all.iter().filter(|e| e.position >= from.max(1)).collect();
        for want in expected {
            let got = next_within(&mut feed).await.unwrap().unwrap();
            assert_eq!(&got, want, "subscribed from {from}");
        }
        // Nothing more until something is appended.
        let more = tokio::time::timeout(Duration::from_millis(200), feed.next()).await;
        assert!(more.is_err(), "subscribed from {from}: unexpected {more:?}");
    }
}

pub async fn subscribe_delivers_events_appended_later(h: &impl Harness) {
    let store = h.store();
    let earlier = append_chain(store, &new_thread(), 2).await;
    let mut feed = store.subscribe(earlier[1].position + 1).await.unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            append_chain(&store, &new_thread(), 3).await
        })
    };
    let later = writer.await.unwrap();
    for want in &later {
        assert_eq!(&next_within(&mut feed).await.unwrap().unwrap(), want);
    }
}

pub async fn loads_a_thousand_event_aggregate(h: &impl Harness) {
    let store = h.store();
    let thread = new_thread();
    let written = append_chain(store, &thread, 1000).await;
    let loaded = store.load(&thread, 0).await.unwrap();
    assert_eq!(loaded.len(), 1000);
    assert_eq!(loaded, written);
    let tail = store.load(&thread, written[499].position).await.unwrap();
    assert_eq!(tail, written[500..]);
}

pub async fn concurrent_appends_have_one_winner_per_version(h: &impl Harness) {
    const TASKS: usize = 16;
    const EACH: usize = 10;
    let store = h.store().clone();
    let thread = new_thread();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        let thread = thread.clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            for i in 0..EACH {
                let event = message(&thread, &format!("task {t} message {i}"));
                let mut conflicts = 0;
                loop {
                    let version = store.version(&thread).await.unwrap();
                    match store.append(&event, version).await {
                        Ok(appended) => {
                            assert!(!appended.duplicate);
                            wins.push((version, appended.position, event.event_id.clone()));
                            break;
                        }
                        Err(Error::Conflict { .. }) => {
                            conflicts += 1;
                            assert!(conflicts < 10_000, "task {t} never won");
                            tokio::task::yield_now().await;
                        }
                        Err(e) => panic!("task {t}: {e}"),
                    }
                }
            }
            wins
        }));
    }
    let mut wins = Vec::new();
    for task in tasks {
        wins.extend(task.await.unwrap());
    }
    assert_eq!(wins.len(), TASKS * EACH, "an append was lost");
    // Exactly one winner per version: ordered by position, each win expected
    // exactly the previous win's position.
    wins.sort_by_key(|w| w.1);
    let mut previous = 0;
    for (expected, position, _) in &wins {
        assert_eq!(*expected, previous, "two appends won the same version");
        previous = *position;
    }
    let loaded = store.load(&thread, 0).await.unwrap();
    let loaded_ids: HashSet<_> = loaded.iter().map(|e| e.envelope.event_id.clone()).collect();
    let won_ids: HashSet<_> = wins.iter().map(|w| w.2.clone()).collect();
    assert_eq!(loaded.len(), TASKS * EACH);
    assert_eq!(loaded_ids, won_ids);
}

pub async fn refuses_malformed_events(h: &impl Harness) {
    let store = h.store();
    let thread = new_thread();
    let good = message(&thread, "fine");

    let mut no_payload = good.clone();
    no_payload.payload = None;
    let mut wrong_type = good.clone();
    wrong_type.event_type = "ThreadStarted".into();
    let mut wrong_aggregate = envelope(
        &thread,
        Payload::TeamCreated(TeamCreated {
            team_id: "t".into(),
            name: "Renal".into(),
            description: String::new(),
        }),
    );
    wrong_aggregate.aggregate_type = AggregateType::Thread as i32;
    let mut bad_id = good.clone();
    bad_id.aggregate_id = "a.b".into();
    let mut bad_event_id = good.clone();
    bad_event_id.event_id = "not-a-uuid".into();
    let mut nobody = good.clone();
    nobody.actor = None;
    let mut no_time = good.clone();
    no_time.occurred_at = None;

    for (what, event) in [
        ("no payload", no_payload),
        ("event_type mismatch", wrong_type),
        ("payload of another aggregate", wrong_aggregate),
        ("aggregate id with a dot", bad_id),
        ("event id not a UUID", bad_event_id),
        ("no actor", nobody),
        ("no time", no_time),
    ] {
        match store.append(&event, 0).await {
            Err(Error::InvalidEvent(_)) => {}
            other => panic!("{what}: expected InvalidEvent, got {other:?}"),
        }
    }
    assert_eq!(
        store.last_position().await.unwrap(),
        0,
        "a refused event was written"
    );
}

pub async fn names_the_position_of_an_undecodable_event(h: &impl Harness) {
    let store = h.store();
    let thread = new_thread();
    let good = append_chain(store, &thread, 1).await;
    let bad = h.inject_undecodable(&thread).await;
    assert_eq!(bad, good[0].position + 1);

    match store.load(&thread, 0).await {
        Err(Error::Undecodable { position, .. }) => assert_eq!(position, bad),
        other => panic!("expected Undecodable, got {other:?}"),
    }
    let mut feed = store.subscribe(1).await.unwrap();
    assert_eq!(next_within(&mut feed).await.unwrap().unwrap(), good[0]);
    match next_within(&mut feed).await {
        Some(Err(Error::Undecodable { position, .. })) => assert_eq!(position, bad),
        other => panic!("expected Undecodable, got {other:?}"),
    }
}

pub async fn a_claimed_id_stays_its_first_owners(h: &impl Harness) {
    let store = h.store();
    let id = uuid::Uuid::now_v7().to_string();
    assert_eq!(store.claim(&id, "thread/a").await.unwrap(), None);
    // Claiming again for the same owner is a retry: fine.
    assert_eq!(store.claim(&id, "thread/a").await.unwrap(), None);
    assert_eq!(
        store.claim(&id, "thread/b").await.unwrap().as_deref(),
        Some("thread/a")
    );
    let other = uuid::Uuid::now_v7().to_string();
    assert_eq!(store.claim(&other, "thread/b").await.unwrap(), None);
}

pub async fn hints_are_a_set_that_only_grows_also_under_concurrent_adds<H: Harness>(h: &H)
where
    H::Store: Clone + 'static,
{
    let store = h.store();
    let key = format!("team-of.{}", uuid::Uuid::now_v7());
    assert!(store.hints(&key).await.unwrap().is_empty());
    store.add_hint(&key, "team-a").await.unwrap();
    store.add_hint(&key, "team-a").await.unwrap();
    store.add_hint(&key, "team-b").await.unwrap();
    assert_eq!(store.hints(&key).await.unwrap(), vec!["team-a", "team-b"]);
    // Eight writers at once lose nothing.
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move { store.add_hint(&key, &format!("team-{i}")).await })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    let mut all = store.hints(&key).await.unwrap();
    all.sort();
    let mut expected: Vec<String> = (0..8).map(|i| format!("team-{i}")).collect();
    expected.extend(["team-a".to_string(), "team-b".to_string()]);
    expected.sort();
    assert_eq!(all, expected);
}
