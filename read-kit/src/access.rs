//! Recording reads, for every read service: every answer that shows a
//! patient record's data (its threads, whom one may message in it, who was
//! told of its messages) is first recorded as a `RecordsViewed` event on the
//! reader's access subject.
//! If it cannot be recorded, the read is refused (UNAVAILABLE): an
//! unaudited read of a health record is not allowed.
//!
//! A query records through a [`Recorder`] as soon as it knows which threads
//! it will show, beside its last lookup (naming the people), so recording
//! adds little to an answer's latency; the answer leaves only once the
//! record is acknowledged. (An answer that then fails has still been
//! recorded: the trail errs on the side of a read that was not shown.)

use std::collections::BTreeMap;
use std::sync::Arc;

use event_store::{ANY_VERSION, EventStore};
use futures::FutureExt;
use futures::future::BoxFuture;
use proto::events::envelope::Payload;
use proto::events::{Actor, Envelope, RecordView, RecordsViewed};
use service_kit::{Caller, Role};

use crate::{QueryError, ReadService};

/// Records what one answer shows (once); see [`AccessLog::recorder`].
pub type Recorder<'a, N> =
    Box<dyn FnOnce(Shown) -> BoxFuture<'a, Result<(), QueryError<N>>> + Send + 'a>;

type Append = dyn Fn(Envelope) -> BoxFuture<'static, Result<(), event_store::Error>> + Send + Sync;

/// Where reads are recorded.
#[derive(Clone)]
pub struct AccessLog {
    append: Option<Arc<Append>>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("recording", &self.append.is_some())
            .finish()
    }
}

/// What one answer showed: record → threads, in a stable order.
#[derive(Debug, Default)]
pub struct Shown {
    /// Per record, the threads shown and the files handed over.
    records: BTreeMap<String, (Vec<String>, Vec<String>)>,
}

impl Shown {
    pub fn thread(&mut self, patient_id: &str, thread_id: &str) {
        let (threads, _) = self.records.entry(patient_id.to_string()).or_default();
        if !thread_id.is_empty() && !threads.iter().any(|t| t == thread_id) {
            threads.push(thread_id.to_string());
        }
    }

    /// A file sent on a thread, handed over (by its digest).
    pub fn file(&mut self, patient_id: &str, thread_id: &str, digest: &str) {
        self.thread(patient_id, thread_id);
        let (_, files) = self.records.entry(patient_id.to_string()).or_default();
        if !files.iter().any(|f| f == digest) {
            files.push(digest.to_string());
        }
    }

    /// A record read as a whole (whom one may message in it), no thread.
    pub fn record(&mut self, patient_id: &str) {
        self.records.entry(patient_id.to_string()).or_default();
    }
}

impl AccessLog {
    /// Records reads in `store`'s log.
    pub fn recording<S: EventStore>(store: S) -> Self {
        let append = move |envelope: Envelope| {
            let store = store.clone();
            async move { store.append(&envelope, ANY_VERSION).await.map(|_| ()) }.boxed()
        };
        Self {
            append: Some(Arc::new(append)),
        }
    }

    /// Records nothing: only for measuring what recording costs.
    pub fn off() -> Self {
        Self { append: None }
    }

    /// Records, for `caller`'s call `call` (the method's name), what the
    /// answer shows.
    pub fn recorder<'a, N: ReadService>(
        &'a self,
        caller: &'a Caller,
        call: &'a str,
        team_id: Option<uuid::Uuid>,
    ) -> Recorder<'a, N> {
        Box::new(move |shown| self.record(caller, call, team_id, shown).boxed())
    }

    /// Records that `caller` was shown `shown` by `call`; nothing when the
    /// answer showed no record.
    pub async fn record<N: ReadService>(
        &self,
        caller: &Caller,
        call: &str,
        team_id: Option<uuid::Uuid>,
        shown: Shown,
    ) -> Result<(), QueryError<N>> {
        let Some(append) = &self.append else {
            return Ok(());
        };
        if shown.records.is_empty() {
            return Ok(());
        }
        // A carer reads on the patient's behalf; a patient in their own record
        // and staff act on their own.
        let on_behalf_of = match (caller.role, shown.records.len()) {
            (Role::Carer, 1) => shown.records.keys().next().cloned().unwrap_or_default(),
            _ => String::new(),
        };
        let payload = Payload::RecordsViewed(RecordsViewed {
            call: format!("{}/{call}", N::GRPC),
            records: shown
                .records
                .into_iter()
                .map(|(patient_id, (thread_ids, file_digests))| RecordView {
                    patient_id,
                    thread_ids,
                    file_digests,
                })
                .collect(),
            team_id: team_id.map(|t| t.to_string()).unwrap_or_default(),
        });
        let actor = Actor {
            person_id: caller.person_id.to_string(),
            role: caller.role.to_proto() as i32,
            on_behalf_of,
            display_name: caller.name.clone(),
        };
        let envelope = Envelope {
            event_id: uuid::Uuid::now_v7().to_string(),
            ..proto::contract::envelope(
                payload,
                caller.person_id.to_string(),
                actor,
                std::time::SystemTime::now(),
            )
        };
        append(envelope).await.map_err(|e| {
            tracing::error!(error = %e, call, "a read could not be recorded; refused");
            QueryError::Unavailable(format!(
                "this read could not be recorded in the audit trail, so it is refused; retry shortly ({e})"
            ))
        })
    }
}
