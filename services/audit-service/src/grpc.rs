//! The gRPC face of the audit trail: `careline.audit.v1.AuditService`.
//!
//! Every method: authenticate, authorize (auditors see every trail; a
//! patient their own record's; operators may verify), check the fields,
//! wait for `min_position`, read.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use careline_read_kit::{AccessLog, Reader, Shown};
use event_store::EventStore;
use futures::{Stream, StreamExt};
use proto::audit as pb;
use proto::audit::audit_service_server::AuditService;
use service_kit::ids::{PatientId, PersonId, ThreadId};
use service_kit::{Caller, Role};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::anchor;
use crate::chain::{self, Entry, Finding, hex};
use crate::describe::{self, Directory};
use crate::error::{Audit, Error};
use crate::export;
use crate::projection::link_all;
use crate::queries::{self, Page, Trail};

const PAGE_DEFAULT: u32 = 100;
const PAGE_MAX: u32 = 500;
const EXPORT_PAGE: i64 = 1000;

/// The audit service.
pub struct AuditGrpc<S> {
    reader: Reader<Audit>,
    /// Reading a record's trail is a read of the record: recorded first.
    access: AccessLog,
    store: S,
    /// Exports in progress, per person: at most [`EXPORTS_PER_PERSON`].
    exports:
        std::sync::Arc<std::sync::Mutex<HashMap<Uuid, std::sync::Arc<tokio::sync::Semaphore>>>>,
    /// How long an export waits on a client that stopped reading.
    export_stall: Duration,
}

/// Exports one person may run at once.
pub const EXPORTS_PER_PERSON: usize = 2;

impl<S> std::fmt::Debug for AuditGrpc<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditGrpc")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

fn micros(field: &'static str, t: Option<&prost_types::Timestamp>) -> Result<Option<i64>, Error> {
    match t {
        None => Ok(None),
        Some(t) => proto::time::to_micros(t).map(Some).ok_or_else(|| {
            Error::invalid(
                field,
                "not a valid time (nanos 0 to 999,999,999, within the years a timestamp holds)",
            )
        }),
    }
}

/// Where a page resumes: after the cursor's entry, or, with none, before
/// the first (oldest first) or after the last (newest first).
fn cursor(value: &str, newest_first: bool) -> Result<(i64, String), Error> {
    if value.is_empty() {
        return Ok(if newest_first {
            (i64::MAX, String::new())
        } else {
            (0, String::new())
        });
    }
    value
        .split_once('|')
        .and_then(|(p, c)| Some((p.parse().ok()?, c.to_string())))
        .ok_or_else(|| Error::invalid("range.cursor", "not a cursor this service gave"))
}

fn page(range: Option<pb::Range>) -> Result<Page, Error> {
    let range = range.unwrap_or_default();
    let size = match range.page_size {
        0 => PAGE_DEFAULT,
        n if n > PAGE_MAX => {
            return Err(Error::invalid(
                "range.page_size",
                format!("at most {PAGE_MAX}"),
            ));
        }
        n => n,
    };
    let from = micros("range.from", range.from.as_ref())?.unwrap_or(i64::MIN);
    let to = micros("range.to", range.to.as_ref())?.unwrap_or(i64::MAX);
    if from >= to {
        return Err(Error::invalid("range.to", "must be after range.from"));
    }
    let kind = match pb::EntryKind::try_from(range.kind) {
        Ok(pb::EntryKind::Unspecified) => 0,
        Ok(pb::EntryKind::Action) => 1,
        Ok(pb::EntryKind::View) => 2,
        Err(_) => return Err(Error::invalid("range.kind", "not a kind of entry")),
    };
    let actor = if range.actor_id.trim().is_empty() {
        None
    } else {
        Some(PersonId::parse("range.actor_id", &range.actor_id)?.to_string())
    };
    Ok(Page {
        actor,
        from,
        to,
        after: cursor(&range.cursor, range.newest_first)?,
        size: i64::from(size),
        newest_first: range.newest_first,
        kind,
    })
}

fn timestamp(micros: i64) -> prost_types::Timestamp {
    proto::time::from_micros(micros)
}

pub fn to_proto(e: Entry) -> pb::Entry {
    let d = e.draft;
    pb::Entry {
        chain: d.chain,
        seq: e.seq,
        position: d.position,
        event_id: d.event_id,
        event_type: d.event_type,
        kind: d.kind.proto() as i32,
        occurred_at: Some(timestamp(d.occurred_at)),
        actor_id: d.actor_id,
        actor_name: d.actor_name,
        role: d.role,
        on_behalf_of: d.on_behalf_of,
        action: d.action,
        patient_id: d.patient_id,
        thread_id: d.thread_id,
        call: d.call,
        previous_hash: hex(&e.previous_hash),
        hash: hex(&e.hash),
    }
}

/// What a patient reading their own trail is shown of an entry: of a staff
/// note, only that one was written, and of a colleague consulted on the
/// staff side, only that one was (not who wrote, consulted or was
/// consulted). Reads of the record stay named: the trail is the patient's
/// account of who saw it.
fn as_patient_sees(entry: pb::Entry) -> pb::Entry {
    let action = match entry.event_type.as_str() {
        "StaffNotePosted" => "a staff note was written",
        "StaffSideJoined" => "staff consulted a colleague on the staff side of the thread",
        _ => return entry,
    };
    pb::Entry {
        action: action.into(),
        actor_id: String::new(),
        actor_name: String::new(),
        role: "staff".into(),
        ..entry
    }
}

fn denied(what: &str) -> Error {
    Error::PermissionDenied(format!(
        "{what} is open to auditors (and to a patient for their own record)"
    ))
}

/// May `caller` read the trail of the record `patient_id`?
fn may_read_record(caller: &Caller, patient: PatientId) -> Result<(), Error> {
    match caller.role {
        Role::Auditor => Ok(()),
        Role::Patient if caller.person_id == patient.uuid() => Ok(()),
        _ => Err(denied("a record's audit trail")),
    }
}

type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportChunk, Status>> + Send>>;

/// Runs `chunks` in a task of its own, a chunk or two ahead of the client:
/// a client that stops reading for `stall` ends the export there, and
/// whatever the export holds (its place among the caller's exports) is
/// released at once, not when the connection finally goes. A client that
/// comes back reads what was buffered, then DEADLINE_EXCEEDED.
fn stall_limited(
    chunks: impl Stream<Item = Result<pb::ExportChunk, Status>> + Send + 'static,
    stall: Duration,
) -> ExportStream {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stalled.clone();
    tokio::spawn(async move {
        let mut chunks = std::pin::pin!(chunks);
        while let Some(chunk) = chunks.next().await {
            let failed = chunk.is_err();
            match tokio::time::timeout(stall, tx.send(chunk)).await {
                Ok(Ok(())) => {}
                // The client went away.
                Ok(Err(_)) => return,
                Err(_) => {
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    tracing::warn!(
                        stall_secs = stall.as_secs(),
                        "an export's client stopped reading: the export was ended"
                    );
                    return;
                }
            }
            if failed {
                return;
            }
        }
    });
    let received = futures::stream::unfold((rx, stalled), |(mut rx, stalled)| async move {
        match rx.recv().await {
            Some(chunk) => Some((chunk, (rx, stalled))),
            None if stalled.swap(false, std::sync::atomic::Ordering::SeqCst) => Some((
                Err(Status::deadline_exceeded(
                    "the export was ended: the client stopped reading; start it again",
                )),
                (rx, stalled),
            )),
            None => None,
        }
    });
    Box::pin(received)
}

impl<S: EventStore> AuditGrpc<S> {
    pub fn new(reader: Reader<Audit>, store: S, access: AccessLog, export_stall: Duration) -> Self {
        Self {
            reader,
            access,
            store,
            exports: Default::default(),
            export_stall,
        }
    }

    /// A place among the caller's exports, held until the export's stream
    /// ends or is dropped; none when they already run the most.
    fn export_slot(&self, caller: &Caller) -> Result<tokio::sync::OwnedSemaphorePermit, Status> {
        let semaphore = {
            let mut exports = self.exports.lock().unwrap_or_else(|p| p.into_inner());
            // Forget people with no export running (bounded memory).
            exports.retain(|_, s| s.available_permits() < EXPORTS_PER_PERSON);
            exports
                .entry(caller.person_id)
                .or_insert_with(|| {
                    std::sync::Arc::new(tokio::sync::Semaphore::new(EXPORTS_PER_PERSON))
                })
                .clone()
        };
        semaphore.try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "at most {EXPORTS_PER_PERSON} exports at once per person: finish or cancel one first"
            ))
        })
    }

    /// The authenticated caller, whose staff role (auditor, operator,
    /// admin), if their token names one, is in force in the log: looked up
    /// in the trail's own copy once it has caught up with the log's head
    /// (so a role granted a moment ago counts, and one revoked a moment ago
    /// does not).
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let caller = self.reader.authenticate(request).await?;
        if !matches!(caller.role, Role::Auditor | Role::Operator | Role::Admin) {
            return Ok(caller);
        }
        let person = caller.person_id.to_string();
        let role = caller.role.as_str();
        let head = self.store.last_position().await.map_err(Error::from)?;
        self.reached(head).await?;
        if self.holds(&person, role).await? {
            return Ok(caller);
        }
        Err(Error::PermissionDenied(format!(
            "your token says you are an {role}, but that role is not granted to you (an admin grants staff roles)"
        ))
        .into())
    }

    async fn holds(&self, person: &str, role: &str) -> Result<bool, Error> {
        let client = self.reader.client().await?;
        Ok(queries::holds_role(&**client, person, role).await?)
    }

    async fn reached(&self, min: u64) -> Result<u64, Error> {
        self.reader.reached(min).await
    }

    /// One page of `trail` for `caller`'s `call`; the records its entries
    /// show are recorded as read before it is answered.
    async fn page(
        &self,
        (caller, call): (&Caller, &str),
        trail: Trail,
        range: Option<pb::Range>,
        min: u64,
    ) -> Result<pb::TrailPage, Error> {
        let page = page(range)?;
        let position = self.reached(min).await?;
        let client = self.reader.client().await?;
        let (entries, more) = queries::trail(&client, &trail, &page).await?;
        // A read of each record's trail (not of its threads' messages).
        let mut shown = Shown::default();
        for e in entries.iter().filter(|e| !e.draft.patient_id.is_empty()) {
            shown.record(&e.draft.patient_id);
        }
        self.access.record(caller, call, None, shown).await?;
        let next_cursor = match (more, entries.last()) {
            (true, Some(last)) => format!("{}|{}", last.draft.position, last.draft.chain),
            _ => String::new(),
        };
        let for_patient = caller.role == Role::Patient;
        Ok(pb::TrailPage {
            entries: entries
                .into_iter()
                .map(to_proto)
                .map(|e| if for_patient { as_patient_sees(e) } else { e })
                .collect(),
            next_cursor,
            position,
        })
    }

    /// The chains rebuilt from the log up to `until`: only `chain`, or all.
    async fn expected_chains(
        &self,
        until: u64,
        chain: Option<&str>,
    ) -> Result<HashMap<String, Vec<Entry>>, Error> {
        let mut dir = Directory::default();
        let mut heads = HashMap::new();
        let mut chains: HashMap<String, Vec<Entry>> = HashMap::new();
        if until == 0 {
            return Ok(chains);
        }
        let mut feed = self.store.subscribe(1).await?;
        while let Some(event) = feed.next().await {
            // What the trail's projection set aside is on no chain; a junk or
            // forged event stops nothing.
            let event = match event {
                Ok(event) => event,
                Err(
                    event_store::Error::Undecodable { position, .. }
                    | event_store::Error::Forged { position, .. },
                ) => {
                    if position >= until {
                        break;
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let drafts = describe::describe(&event, &mut dir);
            for entry in link_all(drafts, &mut heads) {
                if chain.is_none_or(|c| c == entry.draft.chain) {
                    chains
                        .entry(entry.draft.chain.clone())
                        .or_default()
                        .push(entry);
                }
            }
            if event.position >= until {
                break;
            }
        }
        Ok(chains)
    }
}

#[tonic::async_trait]
impl<S: EventStore> AuditService for AuditGrpc<S> {
    async fn record_trail(
        &self,
        request: Request<pb::RecordTrailRequest>,
    ) -> Result<Response<pb::TrailPage>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let patient = PatientId::parse("patient_id", &r.patient_id)?;
        may_read_record(&caller, patient)?;
        let trail = Trail::Record(patient);
        Ok(Response::new(
            self.page((&caller, "RecordTrail"), trail, r.range, r.min_position)
                .await?,
        ))
    }

    async fn thread_trail(
        &self,
        request: Request<pb::ThreadTrailRequest>,
    ) -> Result<Response<pb::TrailPage>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let thread = ThreadId::parse("thread_id", &r.thread_id)?;
        match caller.role {
            Role::Auditor => {}
            Role::Patient => {
                self.reached(r.min_position).await?;
                let client = self.reader.client().await?;
                let record = queries::record_of_thread(&**client, thread)
                    .await
                    .map_err(Error::from)?;
                if record != Some(caller.person_id.to_string()) {
                    return Err(denied("a thread's audit trail").into());
                }
            }
            _ => return Err(denied("a thread's audit trail").into()),
        }
        Ok(Response::new(
            self.page(
                (&caller, "ThreadTrail"),
                Trail::Thread(thread),
                r.range,
                r.min_position,
            )
            .await?,
        ))
    }

    async fn person_trail(
        &self,
        request: Request<pb::PersonTrailRequest>,
    ) -> Result<Response<pb::TrailPage>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let person = PersonId::parse("person_id", &r.person_id)?;
        if caller.role != Role::Auditor {
            return Err(Error::PermissionDenied(
                "what a person did and viewed is open to auditors only".into(),
            )
            .into());
        }
        Ok(Response::new(
            self.page(
                (&caller, "PersonTrail"),
                Trail::Person(person),
                r.range,
                r.min_position,
            )
            .await?,
        ))
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyReply>, Status> {
        let caller = self.caller(&request).await?;
        if !matches!(caller.role, Role::Auditor | Role::Operator) {
            return Err(Error::PermissionDenied(
                "verifying the audit trail is open to auditors and operators".into(),
            )
            .into());
        }
        let r = request.into_inner();
        let chain = if r.patient_id.is_empty() {
            None
        } else {
            Some(format!(
                "patient/{}",
                PatientId::parse("patient_id", &r.patient_id)?
            ))
        };
        self.reached(r.min_position).await?;

        // The stored chains and the position they reflect, in one snapshot.
        let mut client = self.reader.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(Error::from)?;
        // The view first, before the snapshot is taken: a rebuild's switch
        // cannot then land between the checkpoint and the chains, and the
        // two come from the same generation.
        tx.batch_execute("LOCK TABLE entries IN ACCESS SHARE MODE")
            .await
            .map_err(Error::from)?;
        let position = projections::live_checkpoint(&*tx, "audit")
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        let stored = queries::chains(&*tx, chain.as_deref())
            .await
            .map_err(Error::from)?;
        tx.commit().await.map_err(Error::from)?;
        drop(client);

        let mut findings: Vec<Finding> = Vec::new();
        let entries = stored.iter().map(|(_, e)| e.len() as u64).sum();
        for (name, entries) in &stored {
            chain::check(name, entries, &mut findings);
        }
        // The heads anchored in the log: what no database owner can rewrite.
        let anchors = anchor::load(&self.store).await.map_err(Error::from)?;
        let anchored = anchor::check(&stored, &anchors, position, chain.as_deref(), &mut findings);
        let mut chains = stored.len() as u64;
        if r.against_stream {
            let mut expected = self.expected_chains(position, chain.as_deref()).await?;
            for (name, entries) in &stored {
                let want = expected.remove(name).unwrap_or_default();
                chain::compare(name, entries, &want, &mut findings);
            }
            let mut missing: Vec<_> = expected.into_iter().collect();
            missing.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, want) in missing {
                chains += 1;
                chain::compare(&name, &[], &want, &mut findings);
            }
        }
        Ok(Response::new(pb::VerifyReply {
            intact: findings.is_empty(),
            chains,
            entries,
            findings: findings
                .into_iter()
                .map(|f| pb::Finding {
                    chain: f.chain,
                    seq: f.seq,
                    problem: f.problem,
                })
                .collect(),
            position,
            anchored_position: anchored.position,
            anchored_at: anchored.recorded,
            anchors: anchored.anchors,
            unanchored_entries: anchored.unanchored,
        }))
    }

    type ExportStream = ExportStream;

    async fn export(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let patient = PatientId::parse("patient_id", &r.patient_id)?;
        may_read_record(&caller, patient)?;
        let fhir = match pb::ExportFormat::try_from(r.format) {
            Ok(pb::ExportFormat::Unspecified | pb::ExportFormat::JsonLines) => false,
            Ok(pb::ExportFormat::FhirBundle) => true,
            Err(_) => return Err(Error::invalid("format", "unknown export format").into()),
        };
        let slot = self.export_slot(&caller)?;
        self.reached(r.min_position).await?;
        let mut shown = Shown::default();
        shown.record(&patient.to_string());
        self.access
            .record::<Audit>(&caller, "Export", None, shown)
            .await?;
        // A connection per page, not per export: a client that stops
        // reading holds none while it waits.
        let pool = self.reader.pool.clone();
        let content_type = if fhir {
            export::FHIR_JSON
        } else {
            export::JSON_LINES
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        let trail = Trail::Record(patient);
        let start = fhir.then(|| export::bundle_start(&patient.to_string(), now));

        // (the export's place, where the next page starts (None: done),
        // nothing written yet)
        let state = (slot, Some((0i64, String::new())), true);
        let pages = futures::stream::unfold(state, move |(slot, after, first)| {
            let (trail, pool) = (trail.clone(), pool.clone());
            async move {
                let after = after?;
                let page = Page {
                    from: i64::MIN,
                    to: i64::MAX,
                    after,
                    size: EXPORT_PAGE,
                    newest_first: false,
                    kind: 0,
                    actor: None,
                };
                let found = match pool.get().await {
                    Ok(client) => queries::trail(&client, &trail, &page)
                        .await
                        .map_err(|e| Status::from(Error::from(e))),
                    Err(e) => Err(Status::from(Error::from(e))),
                };
                let (entries, more) = match found {
                    Ok(found) => found,
                    Err(e) => return Some((Err(e), (slot, None, first))),
                };
                let next = if more {
                    entries
                        .last()
                        .map(|e| (e.draft.position as i64, e.draft.chain.clone()))
                } else {
                    None
                };
                let mut data = String::new();
                let mut first = first;
                for e in &entries {
                    if fhir {
                        if !first {
                            data.push(',');
                        }
                        data.push_str(&export::bundle_entry(e).to_string());
                    } else {
                        data.push_str(&export::json(e).to_string());
                        data.push('\n');
                    }
                    first = false;
                }
                if fhir && next.is_none() {
                    data.push_str(export::BUNDLE_END);
                }
                Some((Ok(data), (slot, next, first)))
            }
        });
        let chunks = futures::stream::iter(start.map(Ok)).chain(pages).map(
            move |data: Result<String, Status>| {
                data.map(|d| pb::ExportChunk {
                    data: d.into_bytes(),
                    content_type: content_type.to_string(),
                })
            },
        );
        Ok(Response::new(stall_limited(chunks, self.export_stall)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_and_named() {
        let field = |e: Error| match e {
            Error::InvalidArgument { field, .. } => field,
            other => panic!("{other:?}"),
        };
        let range = |f: fn(&mut pb::Range)| {
            let mut r = pb::Range::default();
            f(&mut r);
            page(Some(r))
        };
        assert_eq!(
            field(range(|r| r.page_size = 501).unwrap_err()),
            "range.page_size"
        );
        assert_eq!(
            field(range(|r| r.cursor = "x".into()).unwrap_err()),
            "range.cursor"
        );
        assert_eq!(field(range(|r| r.kind = 9).unwrap_err()), "range.kind");
        assert_eq!(range(|r| r.kind = 2).unwrap().kind, 2);
        // Newest first starts after the last entry.
        assert_eq!(range(|r| r.newest_first = true).unwrap().after.0, i64::MAX);
        assert_eq!(
            field(
                range(|r| {
                    r.from = Some(prost_types::Timestamp {
                        seconds: 10,
                        nanos: 0,
                    });
                    r.to = Some(prost_types::Timestamp {
                        seconds: 5,
                        nanos: 0,
                    });
                })
                .unwrap_err()
            ),
            "range.to"
        );
        let ok = page(None).unwrap();
        assert_eq!((ok.size, ok.after.0), (100, 0));
    }
}
