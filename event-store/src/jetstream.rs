//! The [`EventStore`] the product runs on: one JetStream stream, one subject
//! per aggregate.
//!
//! * Append publishes one message with `Nats-Msg-Id` (the event id) and
//!   `Nats-Expected-Last-Subject-Sequence` (the expected version); JetStream
//!   checks both atomically, so neither a race nor a retry can double an event.
//! * Load reads short histories with direct gets (no server-side state) and
//!   long ones with an ordered consumer filtered on the aggregate's subject.
//! * Subscribe is an ordered consumer on `<prefix>.events.>` from a position.
//! * Every request is bounded by `request_timeout`; an unreachable server is
//!   [`Error::Unavailable`], never a hang.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{
    self, ConsumerErrorKind, DirectGetErrorKind, DiscardPolicy, RetentionPolicy, StorageType,
};
use async_nats::jetstream::{self, ErrorCode};
use bytes::Bytes;
use futures::StreamExt;
use prost::Message;
use proto::contract::{all_events_filter, headers};
use proto::events::{AggregateType, Envelope};
use tracing::{debug, info, warn};

use crate::{
    AggregateRef, Appended, Error, EventStore, EventStream, Position, RecordedEvent, StoreConfig,
    Version, validate_envelope,
};

/// How many events a load reads with direct gets before it switches to a
/// consumer. Measured on loopback (see the append bench): a direct get costs
/// about 0.12 ms, setting up a consumer about 1.3 ms, so direct gets win
/// below about ten events. Most teams, records and people are that short.
const DIRECT_GET_LIMIT: u64 = 12;

/// How long any consumer of the log may stand unused before the server
/// removes it (the stream's consumer limit, on nats-server 2.10 or later):
/// every consumer Careline makes asks for 30 s, and a consumer someone else
/// makes under a service's user, durable or not, goes the same way instead
/// of staying on the server.
pub const CONSUMER_IDLE_LIMIT: Duration = Duration::from_secs(300);

/// How long a request on the command path waits for its answer before it
/// is sent again (see `JetStreamStore::resending`).
const RESEND: Duration = Duration::from_secs(1);

/// How many events of the feed, ready at once, are checked as one batch.
const CHECKED_AHEAD: usize = 64;

/// The pauses before each read of a claim that exists but was not seen.
const CLAIM_READ_BACK: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_millis(500),
];

/// The JetStream event log. Clones share one connection.
#[derive(Clone, Debug)]
pub struct JetStreamStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: StoreConfig,
    client: async_nats::Client,
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    /// Command ids claimed, for good: see [`EventStore::claim`].
    claims: jetstream::kv::Store,
}

/// The key-value bucket of claimed command ids beside `stream`.
pub fn claims_bucket(stream: &str) -> String {
    format!("{stream}_COMMAND_IDS")
}

async fn ensure_claims(
    js: &jetstream::Context,
    config: &StoreConfig,
) -> Result<jetstream::kv::Store, Error> {
    let bucket = claims_bucket(&config.stream);
    if let Ok(store) = js.get_key_value(&bucket).await {
        return Ok(store);
    }
    // The bucket's stream, made by hand with the key-value conventions:
    // the client's own create sends settings Debian's 2.9 server cannot
    // answer. No key is ever deleted or replaced (create only).
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        description: Some("Careline: every command id, and the aggregate it acted on".into()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        storage: jetstream::stream::StorageType::File,
        num_replicas: config.replicas,
        discard: jetstream::stream::DiscardPolicy::New,
        deny_delete: true,
        deny_purge: true,
        allow_direct: true,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| Error::Unavailable(format!("cannot create the bucket {bucket}: {e}")))?;
    js.get_key_value(&bucket)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot create the bucket {bucket}: {e}")))
}

impl JetStreamStore {
    /// Connects to NATS and creates the stream, or checks that the existing
    /// one has the settings the log requires. Fails within the configured
    /// request timeout when NATS cannot be reached.
    pub async fn connect(config: StoreConfig) -> Result<Self, Error> {
        config.validate()?;
        let client = connect_client(&config).await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.request_timeout)
            .build(client.clone());
        let stream = ensure_stream(&js, &config, consumer_limits_known(&client)).await?;
        let claims = ensure_claims(&js, &config).await?;
        match (&config.signer, &config.keys) {
            (_, None) => info!(
                "CARELINE_EVENT_PUBLIC_KEYS is not set: events read are not checked for their writer's signature"
            ),
            (None, Some(_)) => info!(
                "CARELINE_EVENT_SIGNING_KEY is not set: events appended here are unsigned, and readers that check will set them aside"
            ),
            (Some(signer), Some(_)) => info!(kid = signer.kid(), "events signed and checked"),
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                client,
                js,
                stream,
                claims,
            }),
        })
    }

    /// As [`Self::connect`], for a service starting up: while NATS or
    /// JetStream does not answer (it is starting, or electing a stream
    /// leader), tries again with backoff (0.1 s, doubling to 5 s) for up to
    /// `config.startup_wait`, saying each time what it waits for. Any other
    /// error (a bad setting, a stream with the wrong settings) fails at once.
    pub async fn connect_patiently(config: StoreConfig) -> Result<Self, Error> {
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1u32;
        loop {
            match Self::connect(config.clone()).await {
                Err(Error::Unavailable(why)) if started.elapsed() + delay < config.startup_wait => {
                    tracing::warn!(
                        attempt,
                        retry_in = ?delay,
                        "waiting for the event log at {}: {why}",
                        config.nats_url
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                Err(Error::Unavailable(why)) => {
                    return Err(Error::Unavailable(format!(
                        "{why} (waited {:?} for it, CARELINE_NATS_STARTUP_WAIT_SECS)",
                        started.elapsed()
                    )));
                }
                other => return other,
            }
        }
    }

    /// Runs `request` and, when no answer came within [`RESEND`], runs it
    /// again, until `request_timeout`; `None` when nothing answered by then.
    /// Every request on the command path goes this way (the append, the
    /// command id's claim and its read back, the direct gets of a version
    /// or an event): a request lost with a dying node (the connection's, or
    /// a stream's leader) then costs the election and at most a second
    /// more, not the whole timeout, because the next try goes over the
    /// reconnected client to whichever replica answers now. Each request
    /// must be safe to repeat: an append carries its `Nats-Msg-Id` (the new
    /// leader answers `duplicate` if the first was stored), a claim finds
    /// its own owner, a read reads again.
    async fn resending<T, E, F, Fut>(&self, what: &str, request: F) -> Result<T, Option<E>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let deadline = tokio::time::Instant::now() + self.inner.config.request_timeout;
        loop {
            let now = tokio::time::Instant::now();
            let wait = RESEND.min(deadline.saturating_duration_since(now));
            match tokio::time::timeout(wait, request()).await {
                Ok(answer) => return answer.map_err(Some),
                Err(_) if tokio::time::Instant::now() < deadline => {
                    debug!(what, "no answer yet: asking again");
                }
                Err(_) => return Err(None),
            }
        }
    }

    /// Publishes `message` and waits for JetStream's acknowledgement,
    /// [`resending`](Self::resending) it.
    async fn publish_resending(
        &self,
        subject: String,
        message: PublishMessage,
    ) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
        self.resending("append", || async {
            match self
                .inner
                .js
                .send_publish(subject.clone(), message.clone())
                .await
            {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| {
            e.unwrap_or_else(|| jetstream::context::PublishError::new(PublishErrorKind::TimedOut))
        })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The underlying NATS connection, for callers that publish or subscribe
    /// outside the event log (benchmarks, tests).
    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// The JetStream context, for operator tooling.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.inner.js
    }

    fn subject(&self, aggregate: &AggregateRef) -> String {
        aggregate.subject(&self.inner.config.prefix)
    }

    fn decode(&self, position: Position, payload: &[u8]) -> Result<RecordedEvent, Error> {
        Envelope::decode(payload)
            .map(|envelope| RecordedEvent { position, envelope })
            .map_err(|e| Error::Undecodable {
                position,
                reason: e.to_string(),
                bytes: payload.to_vec(),
            })
    }

    /// Whether `event`, read at `subject` with `signature`, is one its
    /// subject may carry (read records only on the access subjects) and,
    /// with the writers' keys, signed by a key that may write there; why
    /// not, otherwise.
    fn check(
        &self,
        subject: &str,
        event: &RecordedEvent,
        payload: &[u8],
        signature: Option<&str>,
    ) -> Result<(), String> {
        let config = &self.inner.config;
        proto::contract::check_origin(&config.prefix, subject, &event.envelope)?;
        match &config.keys {
            None => Ok(()),
            // Recorded before events were signed.
            Some(_) if event.position < config.signed_from => Ok(()),
            Some(keys) => keys.check(
                subject,
                event.envelope.aggregate_type() == AggregateType::Access,
                payload,
                signature,
            ),
        }
    }

    /// Events from the feed, decoded, each if its subject may carry it and,
    /// with the writers' keys, a key that may write there signed it (the
    /// signatures checked as one batch).
    fn admit_all(
        &self,
        chunk: Vec<Result<jetstream::Message, jetstream::consumer::pull::OrderedError>>,
    ) -> Vec<Result<RecordedEvent, Error>> {
        let config = &self.inner.config;
        let mut out: Vec<Result<RecordedEvent, Error>> = Vec::with_capacity(chunk.len());
        // (index in `out`, the message) of the events whose signature is due.
        let mut due = Vec::new();
        for message in &chunk {
            let message = match message {
                Ok(message) => message,
                Err(e) => {
                    out.push(Err(Error::Unavailable(format!(
                        "event feed interrupted: {e}"
                    ))));
                    continue;
                }
            };
            let admitted = message
                .info()
                .map_err(|e| Error::Stream(format!("message without metadata: {e}")))
                .and_then(|info| self.decode(info.stream_sequence, &message.payload))
                .and_then(|event| {
                    let subject = message.subject.as_str();
                    match proto::contract::check_origin(&config.prefix, subject, &event.envelope) {
                        Ok(()) => Ok(event),
                        Err(reason) => Err(forged(&event, subject, reason, &message.payload)),
                    }
                });
            if let Ok(event) = &admitted
                && config.keys.is_some()
                && event.position >= config.signed_from
            {
                due.push((out.len(), message));
            }
            out.push(admitted);
        }
        let Some(keys) = &config.keys else {
            return out;
        };
        let checked: Vec<crate::Checked<'_>> = due
            .iter()
            .map(|(i, message)| crate::Checked {
                subject: message.subject.as_str(),
                access: matches!(&out[*i], Ok(e) if e.envelope.aggregate_type() == AggregateType::Access),
                payload: &message.payload,
                signature: message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(crate::signing::SIGNATURE_HEADER))
                    .map(|v| v.as_str()),
            })
            .collect();
        let answers = keys.check_all(&checked);
        for ((i, message), answer) in due.iter().zip(answers) {
            if let Err(reason) = answer
                && let Ok(event) = &out[*i]
            {
                out[*i] = Err(forged(
                    event,
                    message.subject.as_str(),
                    reason,
                    &message.payload,
                ));
            }
        }
        out
    }

    /// An aggregate's event as loaded. A forged one (not its writer's) is
    /// set aside, and said in the log: it stands as an empty envelope at
    /// its position, so that a command decides on what the command service
    /// wrote only while the aggregate's version still counts it (the
    /// log's expected version is its subject's last sequence).
    fn loaded(
        &self,
        subject: &str,
        position: Position,
        payload: &[u8],
        signature: Option<&str>,
    ) -> Result<Option<RecordedEvent>, Error> {
        let event = match self.decode(position, payload) {
            Ok(event) => event,
            // The read services may write the access subjects: junk there
            // is set aside like a forgery, and stops no reader of them.
            Err(e) if subject.contains(".events.access.") => {
                warn!(position, %subject, reason = %e, "an undecodable event on an access subject is set aside");
                return Ok(Some(RecordedEvent {
                    position,
                    envelope: Envelope::default(),
                }));
            }
            Err(e) => return Err(e),
        };
        match self.check(subject, &event, payload, signature) {
            Ok(()) => Ok(Some(event)),
            Err(reason) => {
                warn!(position, %subject, %reason, "a forged event in an aggregate's history is set aside");
                Ok(Some(RecordedEvent {
                    position,
                    envelope: Envelope::default(),
                }))
            }
        }
    }

    /// The next event of a subject at or after `from`, by direct get: its
    /// position, and the event unless it is forged.
    async fn next_on_subject(
        &self,
        subject: &str,
        from: Position,
    ) -> Result<Option<(Position, Option<RecordedEvent>)>, Error> {
        let got = self
            .resending("direct get", || {
                self.inner
                    .stream
                    .direct_get_next_for_subject(subject, Some(from))
            })
            .await;
        match got {
            Ok(message) => {
                let signature = message
                    .headers
                    .get(crate::signing::SIGNATURE_HEADER)
                    .map(|v| v.as_str());
                let event = self.loaded(subject, message.sequence, &message.payload, signature)?;
                Ok(Some((message.sequence, event)))
            }
            Err(Some(e)) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(None),
            Err(e) => Err(direct_get_error(e.map(|e| e.kind()))),
        }
    }

    /// Reads the events of `subject` from `from` up to and including `last`
    /// with an ordered consumer, deleted when done.
    async fn consume_subject(
        &self,
        subject: &str,
        from: Position,
        last: Position,
        out: &mut Vec<RecordedEvent>,
    ) -> Result<(), Error> {
        let name = format!("load_{}", uuid::Uuid::new_v4().simple());
        let consumer = self
            .inner
            .stream
            .create_consumer(pull::OrderedConfig {
                name: Some(name.clone()),
                filter_subject: subject.to_string(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                },
                ..Default::default()
            })
            .await
            .map_err(consumer_error)?;
        let result = async {
            let mut messages = consumer
                .messages()
                .await
                .map_err(|e| Error::Unavailable(format!("cannot read the aggregate: {e}")))?;
            loop {
                let next = tokio::time::timeout(self.inner.config.request_timeout, messages.next())
                    .await
                    .map_err(|_| {
                        Error::Unavailable(format!(
                            "no events arrived for {subject} within {:?}",
                            self.inner.config.request_timeout
                        ))
                    })?;
                let message = match next {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => {
                        return Err(Error::Unavailable(format!("reading {subject}: {e}")));
                    }
                    None => {
                        return Err(Error::Unavailable(format!(
                            "the feed of {subject} ended early"
                        )));
                    }
                };
                let position = message
                    .info()
                    .map_err(|e| Error::Stream(format!("message without metadata: {e}")))?
                    .stream_sequence;
                let signature = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(crate::signing::SIGNATURE_HEADER))
                    .map(|v| v.as_str());
                if let Some(event) = self.loaded(subject, position, &message.payload, signature)? {
                    out.push(event);
                }
                if position >= last {
                    return Ok(());
                }
            }
        }
        .await;
        // The consumer would otherwise linger on the server until its
        // inactivity threshold; deleting it is best effort.
        let stream = self.inner.stream.clone();
        tokio::spawn(async move {
            if let Err(e) = stream.delete_consumer(&name).await {
                debug!(consumer = %name, error = %e, "load consumer not deleted");
            }
        });
        result
    }

    /// Deletes this store's stream and every event in it. Operators never do
    /// this to a live log (the stream refuses deleting single events, not the
    /// whole stream); tests use it to clean up after themselves.
    pub async fn delete_stream(&self) -> Result<(), Error> {
        self.inner
            .js
            .delete_stream(&self.inner.config.stream)
            .await
            .map(|_| ())
            .map_err(|e| Error::Stream(format!("cannot delete stream: {e}")))
    }
}

/// Hints are kept beside the claims, one key per set, its items one per
/// line; a change is a compare-and-set on the key's revision.
const HINT_ATTEMPTS: usize = 50;

impl EventStore for JetStreamStore {
    async fn files(&self) -> Result<Option<crate::FileStore>, Error> {
        crate::FileStore::open(self).await.map(Some)
    }

    async fn add_hint(&self, key: &str, item: &str) -> Result<(), Error> {
        use jetstream::kv::{CreateErrorKind, UpdateErrorKind};
        let kv = &self.inner.claims;
        let unavailable = |e: &dyn std::fmt::Display| {
            Error::Unavailable(format!("cannot record the hint {key}: {e}"))
        };
        let no_answer = || unavailable(&"no answer in time");
        // Each step may be sent again (see `resending`): a create or an
        // update that was stored but not acknowledged fails its retry as a
        // conflict, and the next round finds the item there.
        for _ in 0..HINT_ATTEMPTS {
            let entry = match self.resending("hint", || kv.entry(key)).await {
                Ok(entry) => entry,
                Err(Some(e)) => return Err(unavailable(&e)),
                Err(None) => return Err(no_answer()),
            };
            match entry {
                None => match self
                    .resending("hint", || kv.create(key, item.to_string().into()))
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(Some(e)) if e.kind() == CreateErrorKind::AlreadyExists => continue,
                    Err(Some(e)) => return Err(unavailable(&e)),
                    Err(None) => return Err(no_answer()),
                },
                Some(entry) => {
                    let text = String::from_utf8_lossy(&entry.value).into_owned();
                    if text.lines().any(|i| i == item) {
                        return Ok(());
                    }
                    let value = if text.is_empty() {
                        item.to_string()
                    } else {
                        format!("{text}\n{item}")
                    };
                    let value: Bytes = value.into();
                    match self
                        .resending("hint", || kv.update(key, value.clone(), entry.revision))
                        .await
                    {
                        Ok(_) => return Ok(()),
                        Err(Some(e)) if e.kind() == UpdateErrorKind::WrongLastRevision => continue,
                        Err(Some(e)) => return Err(unavailable(&e)),
                        Err(None) => return Err(no_answer()),
                    }
                }
            }
        }
        Err(Error::Unavailable(format!(
            "the hint {key} changed {HINT_ATTEMPTS} times while it was being added to"
        )))
    }

    async fn hints(&self, key: &str) -> Result<Vec<String>, Error> {
        let value = self
            .resending("hint", || self.inner.claims.get(key))
            .await
            .map_err(|e| {
                Error::Unavailable(match e {
                    Some(e) => format!("cannot read the hint {key}: {e}"),
                    None => format!("cannot read the hint {key}: no answer in time"),
                })
            })?;
        Ok(value
            .map(|v| {
                String::from_utf8_lossy(&v)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn claim(&self, id: &str, owner: &str) -> Result<Option<String>, Error> {
        use jetstream::kv::CreateErrorKind;
        let claims = &self.inner.claims;
        let created = self
            .resending("claim", || claims.create(id, owner.to_string().into()))
            .await;
        let created = match created {
            Ok(created) => Ok(created),
            Err(Some(e)) => Err(e),
            Err(None) => {
                return Err(Error::Unavailable(format!(
                    "cannot record command id {id}: no answer in time"
                )));
            }
        };
        match created {
            Ok(_) => Ok(None),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                // A claim never changes once made, but a replica that has
                // not applied it yet answers that there is none (a read
                // is served by any replica): that is no other holder, so
                // read again, and answer "unavailable" rather than guess.
                // (A create whose acknowledgement was lost, retried,
                // lands here too: it finds its own owner.)
                for wait in CLAIM_READ_BACK {
                    tokio::time::sleep(wait).await;
                    let read = self
                        .resending("claim read back", || claims.get(id))
                        .await
                        .map_err(|e| match e {
                            Some(e) => {
                                Error::Unavailable(format!("cannot read command id {id}: {e}"))
                            }
                            None => Error::Unavailable(format!(
                                "cannot read command id {id}: no answer in time"
                            )),
                        })?;
                    if let Some(value) = read {
                        let holder = String::from_utf8_lossy(&value).into_owned();
                        return Ok((holder != owner).then_some(holder));
                    }
                }
                Err(Error::Unavailable(format!(
                    "command id {id} is recorded but cannot be read back yet"
                )))
            }
            Err(e) if e.kind() == CreateErrorKind::InvalidKey => Err(Error::InvalidEvent(format!(
                "command id {id:?} cannot be recorded"
            ))),
            Err(e) => Err(Error::Unavailable(format!(
                "cannot record command id {id}: {e}"
            ))),
        }
    }

    async fn append(&self, envelope: &Envelope, expected: Version) -> Result<Appended, Error> {
        let aggregate = validate_envelope(envelope)?;
        let subject = self.subject(&aggregate);
        let mut headers = HeaderMap::new();
        headers.insert(headers::MSG_ID, envelope.event_id.as_str());
        if expected != crate::ANY_VERSION {
            headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                expected.to_string().as_str(),
            );
        }
        headers.insert(headers::EVENT_TYPE, envelope.event_type.as_str());
        headers.insert(
            headers::AGGREGATE_TYPE,
            aggregate.kind().subject_token().unwrap_or_default(),
        );
        headers.insert(headers::AGGREGATE_ID, aggregate.id());
        headers.insert(
            headers::SCHEMA_VERSION,
            envelope.schema_version.to_string().as_str(),
        );
        let payload = Bytes::from(envelope.encode_to_vec());
        if let Some(signer) = &self.inner.config.signer {
            headers.insert(
                crate::signing::SIGNATURE_HEADER,
                signer.sign(&subject, &payload).as_str(),
            );
        }
        let message = PublishMessage::build().payload(payload).headers(headers);

        let ack = self.publish_resending(subject, message).await;
        match ack {
            Ok(ack) => Ok(Appended {
                position: ack.sequence,
                duplicate: ack.duplicate,
            }),
            Err(e) if is_wrong_last_sequence(&e) => {
                let actual = self.version(&aggregate).await?;
                Err(Error::Conflict {
                    aggregate,
                    expected,
                    actual,
                })
            }
            Err(e) => Err(match e.kind() {
                PublishErrorKind::MaxPayloadExceeded => {
                    Error::InvalidEvent(format!("event too large for the server: {e}"))
                }
                PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => {
                    Error::Unavailable(format!("no acknowledgement from JetStream: {e}"))
                }
                PublishErrorKind::StreamNotFound => Error::Unavailable(format!(
                    "no JetStream stream answered for {aggregate} (stream {} may be electing a leader; if this lasts, check that JetStream is up and the stream exists)",
                    self.inner.config.stream
                )),
                _ => Error::Stream(format!("append to {aggregate} refused: {e}")),
            }),
        }
    }

    async fn load(
        &self,
        aggregate: &AggregateRef,
        after: Version,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let subject = self.subject(aggregate);
        let last = self.version(aggregate).await?;
        let mut events = Vec::new();
        let mut from = after + 1;
        // Short histories, and catching up a cached state, by direct get.
        let mut got = 0;
        while from <= last && got < DIRECT_GET_LIMIT {
            let Some((position, event)) = self.next_on_subject(&subject, from).await? else {
                break;
            };
            got += 1;
            from = position + 1;
            events.extend(event);
            if position >= last {
                return Ok(events);
            }
        }
        if from <= last {
            self.consume_subject(&subject, from, last, &mut events)
                .await?;
        }
        Ok(events)
    }

    async fn version(&self, aggregate: &AggregateRef) -> Result<Version, Error> {
        let subject = self.subject(aggregate);
        let got = self
            .resending("direct get", || {
                self.inner.stream.direct_get_last_for_subject(&subject)
            })
            .await;
        match got {
            Ok(message) => Ok(message.sequence),
            Err(Some(e)) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(0),
            Err(e) => Err(direct_get_error(e.map(|e| e.kind()))),
        }
    }

    async fn subscribe(&self, from: Position) -> Result<EventStream, Error> {
        let consumer = self
            .inner
            .stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: all_events_filter(&self.inner.config.prefix),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(consumer_error)?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| Error::Unavailable(format!("cannot start the event feed: {e}")))?;
        let store = self.clone();
        let checking = self.inner.config.keys.is_some();
        // Signature checks cost tens of microseconds an event: the events
        // ready are checked together, as one batch, on another thread,
        // while the ones before are applied; in order.
        Ok(messages
            .ready_chunks(CHECKED_AHEAD)
            .map(move |chunk| {
                let store = store.clone();
                async move {
                    if checking {
                        tokio::task::spawn_blocking(move || store.admit_all(chunk))
                            .await
                            .unwrap_or_else(|e| {
                                vec![Err(Error::Stream(format!("checking events failed: {e}")))]
                            })
                    } else {
                        store.admit_all(chunk)
                    }
                }
            })
            .buffered(2)
            .flat_map(futures::stream::iter)
            .boxed())
    }

    async fn last_position(&self) -> Result<Position, Error> {
        let stream = self
            .inner
            .js
            .get_stream(&self.inner.config.stream)
            .await
            .map_err(get_stream_error)?;
        Ok(stream.cached_info().state.last_sequence)
    }
}

/// `event`, read on `subject`, set aside as forged for `reason`.
fn forged(event: &RecordedEvent, subject: &str, reason: String, bytes: &[u8]) -> Error {
    Error::Forged {
        position: event.position,
        subject: subject.to_string(),
        event_type: event.envelope.event_type.clone(),
        reason,
        bytes: bytes.to_vec(),
    }
}

/// The inbox prefix of NATS user `user`: `_INBOX_<user>`.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

async fn connect_client(config: &StoreConfig) -> Result<async_nats::Client, Error> {
    let mut options = match &config.user {
        // Each user's replies come to an inbox prefix of its own, the only
        // one it may subscribe to (deploy/nats/users.conf): no user sees
        // another's JetStream answers.
        Some(user) => async_nats::ConnectOptions::with_user_and_password(
            user.name.clone(),
            user.password.clone(),
        )
        .custom_inbox_prefix(inbox_prefix(&user.name)),
        None => async_nats::ConnectOptions::new(),
    };
    options = options
        .name("careline")
        .connection_timeout(config.connect_timeout)
        .ping_interval(config.ping_interval)
        .request_timeout(Some(config.request_timeout));
    if let Some(tls) = &config.tls {
        options = options.require_tls(true);
        if let Some(ca) = &tls.ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &tls.client {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
    }
    let connecting = options.connect(config.servers()?);
    match tokio::time::timeout(config.request_timeout, connecting).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(Error::Unavailable(format!(
            "cannot connect to NATS at {}: {e}",
            config.nats_url
        ))),
        Err(_) => Err(Error::Unavailable(format!(
            "NATS at {} did not answer within {:?}",
            config.nats_url, config.request_timeout
        ))),
    }
}

/// The stream settings the log requires (DESIGN: an audit log is never
/// edited, never expires, and is readable by direct get).
fn wanted_stream(config: &StoreConfig) -> stream::Config {
    stream::Config {
        name: config.stream.clone(),
        description: Some("Careline domain events: the only source of truth".into()),
        subjects: vec![all_events_filter(&config.prefix)],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        max_age: Duration::ZERO,
        max_messages: -1,
        max_bytes: -1,
        max_messages_per_subject: -1,
        discard: DiscardPolicy::Old,
        num_replicas: config.replicas,
        duplicate_window: config.duplicate_window,
        deny_delete: true,
        deny_purge: true,
        allow_direct: true,
        consumer_limits: Some(stream::ConsumerLimits {
            inactive_threshold: CONSUMER_IDLE_LIMIT,
            max_ack_pending: 0,
        }),
        ..Default::default()
    }
}

/// Whether the server keeps a stream's consumer limits (2.10 and later;
/// Debian's 2.9 ignores them).
fn consumer_limits_known(client: &async_nats::Client) -> bool {
    let version = client.server_info().version;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 10)
}

/// Creates the stream, or checks an existing one. Settings that protect the
/// log (storage, subjects, limits, deny flags, replicas) must already match:
/// changing them silently could lose events, so a mismatch is a
/// configuration error naming each one. The duplicate window and direct get
/// are brought in line.
async fn ensure_stream(
    js: &jetstream::Context,
    config: &StoreConfig,
    consumer_limits_known: bool,
) -> Result<jetstream::stream::Stream, Error> {
    let wanted = wanted_stream(config);
    let existing = match js.get_stream(&config.stream).await {
        Ok(stream) => stream,
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(err)
                if err.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                info!(stream = %config.stream, subjects = ?wanted.subjects, "creating event stream");
                return js.create_stream(wanted).await.map_err(|e| match e.kind() {
                    CreateStreamErrorKind::TimedOut
                    | CreateStreamErrorKind::JetStreamUnavailable => {
                        Error::Unavailable(format!("cannot create stream: {e}"))
                    }
                    _ => Error::Config(format!(
                        "cannot create stream {} for {}: {e}",
                        config.stream,
                        all_events_filter(&config.prefix)
                    )),
                });
            }
            GetStreamErrorKind::Request => {
                return Err(Error::Unavailable(format!(
                    "JetStream did not answer (is it enabled on {}?): {e}",
                    config.nats_url
                )));
            }
            _ => {
                return Err(Error::Stream(format!(
                    "cannot read stream {}: {e}",
                    config.stream
                )));
            }
        },
    };

    let have = &existing.cached_info().config;
    let mut wrong = Vec::new();
    if have.subjects != wanted.subjects {
        wrong.push(format!(
            "subjects are {:?}, need {:?}",
            have.subjects, wanted.subjects
        ));
    }
    if have.storage != StorageType::File {
        wrong.push(format!("storage is {:?}, need file", have.storage));
    }
    if have.retention != RetentionPolicy::Limits {
        wrong.push(format!("retention is {:?}, need limits", have.retention));
    }
    if have.max_age != Duration::ZERO || have.max_messages > 0 || have.max_bytes > 0 {
        wrong.push("an age, message or byte limit is set, need none".into());
    }
    if have.max_messages_per_subject > 0 {
        wrong.push("a per-subject message limit is set, need none".into());
    }
    if !have.deny_delete || !have.deny_purge {
        wrong.push("deny_delete and deny_purge must both be on".into());
    }
    if have.num_replicas != wanted.num_replicas {
        wrong.push(format!(
            "replicas are {}, configured {}",
            have.num_replicas, wanted.num_replicas
        ));
    }
    if !wrong.is_empty() {
        return Err(Error::Config(format!(
            "existing stream {} does not have the event log's settings: {}",
            config.stream,
            wrong.join("; ")
        )));
    }
    if !have.allow_direct || have.duplicate_window != wanted.duplicate_window {
        warn!(stream = %config.stream, "updating the stream's direct get and duplicate window");
        let mut updated = have.clone();
        updated.allow_direct = true;
        updated.duplicate_window = wanted.duplicate_window;
        js.update_stream(updated)
            .await
            .map_err(|e| Error::Config(format!("cannot update stream {}: {e}", config.stream)))?;
        return js
            .get_stream(&config.stream)
            .await
            .map_err(get_stream_error);
    }
    if consumer_limits_known && have.consumer_limits != wanted.consumer_limits {
        // A stream made before the limit, or by hand: only the deployment's
        // admin may change it, so a service says so and goes on.
        let mut updated = have.clone();
        updated.consumer_limits = wanted.consumer_limits.clone();
        match js.update_stream(updated).await {
            Ok(_) => {
                info!(stream = %config.stream, "unused consumers now expire after {CONSUMER_IDLE_LIMIT:?}");
                return js
                    .get_stream(&config.stream)
                    .await
                    .map_err(get_stream_error);
            }
            Err(e) => warn!(
                stream = %config.stream,
                error = %e,
                "the stream has no idle limit for its consumers; connect once as the NATS admin to set it"
            ),
        }
    }
    Ok(existing)
}

/// A direct get's failure; `None` when nothing answered in time.
fn direct_get_error(kind: Option<DirectGetErrorKind>) -> Error {
    match kind {
        None => Error::Unavailable("direct get: no answer in time".into()),
        Some(kind @ (DirectGetErrorKind::TimedOut | DirectGetErrorKind::Request)) => {
            Error::Unavailable(format!("direct get failed: {kind}"))
        }
        Some(other) => Error::Stream(format!("direct get failed: {other}")),
    }
}

fn consumer_error(e: async_nats::jetstream::stream::ConsumerError) -> Error {
    match e.kind() {
        ConsumerErrorKind::TimedOut | ConsumerErrorKind::Request => {
            Error::Unavailable(format!("cannot create a consumer: {e}"))
        }
        _ => Error::Stream(format!("cannot create a consumer: {e}")),
    }
}

fn get_stream_error(e: async_nats::jetstream::context::GetStreamError) -> Error {
    match e.kind() {
        GetStreamErrorKind::Request => {
            Error::Unavailable(format!("cannot read the stream's state: {e}"))
        }
        _ => Error::Stream(format!("cannot read the stream's state: {e}")),
    }
}

/// Whether JetStream refused an append because the subject's last sequence
/// was not the one expected: 10071, or 10164, which a replicated stream
/// answers while another conditional append to the same subject is still in
/// flight. Both mean another writer got there first: catch up and decide
/// again.
fn is_wrong_last_sequence(e: &async_nats::jetstream::context::PublishError) -> bool {
    use async_nats::jetstream::ErrorCode;
    if e.kind() == PublishErrorKind::WrongLastSequence {
        return true;
    }
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
        .is_some_and(|j| j.error_code() == ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::jetstream::context::PublishError;

    fn refused(code: u64) -> PublishError {
        let error: async_nats::jetstream::Error = serde_json::from_str(&format!(
            r#"{{"code":400,"err_code":{code},"description":"wrong last sequence"}}"#
        ))
        .unwrap();
        PublishError::with_source(PublishErrorKind::Other, error)
    }

    #[test]
    fn both_wrong_last_sequence_answers_are_conflicts() {
        assert!(is_wrong_last_sequence(&PublishError::new(
            PublishErrorKind::WrongLastSequence
        )));
        // A replicated stream, with another append to the subject in flight.
        assert!(is_wrong_last_sequence(&refused(10164)));
        assert!(!is_wrong_last_sequence(&refused(10077)));
        assert!(!is_wrong_last_sequence(&PublishError::new(
            PublishErrorKind::TimedOut
        )));
    }
}
