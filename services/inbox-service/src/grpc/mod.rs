//! The gRPC face of the inbox: `careline.inbox.v1.InboxService`.
//!
//! Every method: authenticate, check the request's fields, wait until the
//! projection has reached `min_position` (read-your-writes), query, and
//! stamp the answer with the position it reflects.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::Stream;
use tokio::sync::{mpsc, watch};

use proto::inbox as pb;
use proto::inbox::inbox_service_server::InboxService;
use service_kit::Caller;
use service_kit::ids::{PatientId, TeamId, ThreadId};
use tonic::{Request, Response, Status};

use careline_read_kit::{AccessLog, Reader, Shown};

use crate::error::{Error, Inbox};
use crate::queries::{self, ListFilter, Viewer};

/// The inbox service.
pub struct InboxGrpc {
    reader: Reader<Inbox>,
    access: AccessLog,
    /// The projection's checkpoint, and whether the service is stopping:
    /// what watchers wait on.
    checkpoint: watch::Receiver<u64>,
    stopping: watch::Receiver<bool>,
    /// Live watches open now, per person (at most [`WATCHES_PER_PERSON`]).
    watching: Arc<Mutex<HashMap<uuid::Uuid, usize>>>,
    /// Look-ups by something that could be guessed (a carer's address, a
    /// join code), per person and kind (at most [`LOOK_UPS_PER_MINUTE`]).
    look_ups: service_kit::limit::Limit,
    /// The bucket of files, opened at the first `GetFile`.
    files: Files,
}

/// Opens the bucket of files (the log's, if it keeps one).
pub type OpenFiles = Arc<
    dyn Fn() -> futures::future::BoxFuture<
            'static,
            Result<Option<event_store::FileStore>, event_store::Error>,
        > + Send
        + Sync,
>;

/// The bucket of files, opened once, when first asked for.
#[derive(Clone)]
struct Files {
    open: OpenFiles,
    opened: Arc<tokio::sync::OnceCell<Option<event_store::FileStore>>>,
}

impl Files {
    async fn get(&self) -> Result<Option<&event_store::FileStore>, Status> {
        let opened = self
            .opened
            .get_or_try_init(|| (self.open)())
            .await
            .map_err(|e| {
                Status::unavailable(format!("the files cannot be reached just now: {e}"))
            })?;
        Ok(opened.as_ref())
    }
}

/// The most bytes of a file one `GetFile` part carries.
const FILE_PART: usize = 512 * 1024;

/// A file's parts as `GetFile` sends them.
pub type FileParts = Pin<Box<dyn Stream<Item = Result<pb::FilePart, Status>> + Send>>;

/// A person's look-ups of a carer by address, or of a team by join code, a
/// minute (each kind on its own), on this instance: enough for a person
/// typing, too few to try addresses or codes one after another.
pub const LOOK_UPS_PER_MINUTE: usize = 10;

/// A person's open pages each watch: more than this at once is a runaway
/// client or a flood, not a person (on this instance of the service).
pub const WATCHES_PER_PERSON: usize = 20;

/// One of a person's watches, counted while it lasts.
struct WatchSlot {
    person: uuid::Uuid,
    watching: Arc<Mutex<HashMap<uuid::Uuid, usize>>>,
}

impl WatchSlot {
    /// A slot for `person`, unless they have every one already.
    fn take(watching: &Arc<Mutex<HashMap<uuid::Uuid, usize>>>, person: uuid::Uuid) -> Option<Self> {
        let mut open = watching.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(person).or_default();
        if *n >= WATCHES_PER_PERSON {
            return None;
        }
        *n += 1;
        Some(Self {
            person,
            watching: watching.clone(),
        })
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut open = self.watching.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.person) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.person);
            }
        }
    }
}

/// A watcher's stream of changes.
pub type Changes = Pin<Box<dyn Stream<Item = Result<pb::Change, Status>> + Send>>;

/// How long a watch lasts unless asked otherwise, and at most.
const WATCH_DEFAULT: Duration = Duration::from_secs(600);
const WATCH_MAX: Duration = Duration::from_secs(3600);
/// Changes close together are told once: a watcher looks at most this often.
const WATCH_COALESCE: Duration = Duration::from_millis(150);

impl std::fmt::Debug for InboxGrpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxGrpc")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

const PAGE_DEFAULT: u32 = 50;
const PAGE_MAX: u32 = 200;
const NAME_PREFIX_MAX: usize = 100;

/// A case-insensitive part of a name as a LIKE pattern that finds it
/// anywhere in the name ("jones" finds Pat Jones), or in a patient's date
/// of birth, hospital number or NHS number (a date as people write it,
/// "12/3/1950", finds 1950-03-12), its wildcards escaped.
fn name_pattern(prefix: &str) -> Result<Option<String>, Error> {
    let prefix = prefix.trim();
    if prefix.is_empty() {
        return Ok(None);
    }
    let date =
        service_kit::patient_identity::parse_date(prefix).map(service_kit::patient_identity::iso);
    let prefix = date.as_deref().unwrap_or(prefix);
    if prefix.chars().count() > NAME_PREFIX_MAX {
        return Err(Error::invalid(
            "filters.patient_name_prefix",
            format!("at most {NAME_PREFIX_MAX} characters"),
        ));
    }
    let mut pattern = String::with_capacity(prefix.len() + 2);
    pattern.push('%');
    for c in prefix.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Ok(Some(pattern))
}

fn filter(filters: Option<pb::Filters>, page_size: u32, cursor: &str) -> Result<ListFilter, Error> {
    let filters = filters.unwrap_or_default();
    let status = match pb::StatusFilter::try_from(filters.status) {
        Ok(pb::StatusFilter::Unspecified | pb::StatusFilter::Active) => "active",
        Ok(pb::StatusFilter::Archived) => "archived",
        Ok(pb::StatusFilter::All) => "all",
        Err(_) => {
            return Err(Error::invalid(
                "filters.status",
                "is not a known status filter",
            ));
        }
    };
    let assignment = match pb::AssignmentFilter::try_from(filters.assignment) {
        Ok(pb::AssignmentFilter::Unspecified | pb::AssignmentFilter::Any) => "any",
        Ok(pb::AssignmentFilter::AssignedToMe) => "me",
        Ok(pb::AssignmentFilter::Unassigned) => "unassigned",
        Ok(pb::AssignmentFilter::AssignedToOthers) => "others",
        Err(_) => {
            return Err(Error::invalid(
                "filters.assignment",
                "is not a known assignment filter",
            ));
        }
    };
    let team = if filters.team_id.is_empty() {
        None
    } else {
        Some(TeamId::parse("filters.team_id", &filters.team_id)?.uuid())
    };
    let patient = if filters.patient_id.is_empty() {
        None
    } else {
        Some(PatientId::parse("filters.patient_id", &filters.patient_id)?.uuid())
    };
    let page_size = match page_size {
        0 => PAGE_DEFAULT,
        n if n > PAGE_MAX => {
            return Err(Error::invalid(
                "page_size",
                format!("is {n}; at most {PAGE_MAX}"),
            ));
        }
        n => n,
    };
    let cursor = if cursor.is_empty() {
        None
    } else {
        Some(
            queries::parse_cursor(cursor)
                .ok_or_else(|| Error::invalid("cursor", "is not a cursor from a previous page"))?,
        )
    };
    let longest_waiting = match pb::ThreadOrder::try_from(filters.order) {
        Ok(pb::ThreadOrder::Unspecified | pb::ThreadOrder::NewestActivity) => false,
        Ok(pb::ThreadOrder::LongestWaiting) => true,
        Err(_) => {
            return Err(Error::invalid("filters.order", "is not a known order"));
        }
    };
    Ok(ListFilter {
        longest_waiting,
        status,
        assignment,
        team,
        name_pattern: name_pattern(&filters.patient_name_prefix)?,
        on_by_name: filters.on_by_name,
        patient,
        cursor,
        page_size: i64::from(page_size),
    })
}

impl InboxGrpc {
    pub fn new(
        reader: Reader<Inbox>,
        access: AccessLog,
        checkpoint: watch::Receiver<u64>,
        stopping: watch::Receiver<bool>,
        files: OpenFiles,
    ) -> Self {
        Self {
            reader,
            access,
            checkpoint,
            stopping,
            watching: Arc::default(),
            look_ups: service_kit::limit::Limit::per_minute(LOOK_UPS_PER_MINUTE),
            files: Files {
                open: files,
                opened: Arc::default(),
            },
        }
    }

    /// Takes one of `caller`'s look-ups of `kind` this minute, or refuses.
    fn look_up(&self, caller: &Caller, kind: &str) -> Result<(), Status> {
        let key = format!("{kind}:{}", caller.person_id);
        self.look_ups
            .take(&key, std::time::Instant::now())
            .map(|_| ())
            .map_err(|wait| self.look_ups.refusal(kind, wait))
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<(Caller, Viewer), Status> {
        let caller = self.reader.authenticate(request).await?;
        let viewer = Viewer {
            id: caller.person_id,
            role: caller.role,
        };
        Ok((caller, viewer))
    }

    /// Waits until the projection has applied `min`; answers the position
    /// reached.
    async fn reached(&self, min: u64) -> Result<u64, Error> {
        self.reader.reached(min).await
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, Error> {
        self.reader.client().await
    }
}

/// The receiving end of a channel as a stream.
fn tokio_stream_from<T: Send + 'static>(
    mut receiver: mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// Tells `changes` of `viewer`'s threads changing after `after`, until
/// `until`, the service stops, or the watcher goes.
async fn watch_changes(
    reader: Reader<Inbox>,
    viewer: Viewer,
    mut after: u64,
    until: tokio::time::Instant,
    mut checkpoint: watch::Receiver<u64>,
    mut stopping: watch::Receiver<bool>,
    changes: mpsc::Sender<Result<pb::Change, Status>>,
) {
    let mut watched = queries::Watched::default();
    let look = async |after: u64, watched: &mut queries::Watched| {
        let client = reader.client().await?;
        queries::changed(&client, viewer, SystemTime::now(), after, watched).await
    };
    // A patient's or carer's threads as they are now: what a change changes.
    if viewer.role != service_kit::Role::Professional
        && let Err(e) = look(0, &mut watched).await
    {
        let _ = changes.send(Err(e.into())).await;
        return;
    }
    loop {
        tokio::select! {
            moved = checkpoint.changed() => if moved.is_err() { return },
            _ = stopping.changed() => return,
            () = changes.closed() => return,
            () = tokio::time::sleep_until(until) => return,
        }
        if *stopping.borrow() {
            return;
        }
        tokio::time::sleep(WATCH_COALESCE).await;
        let now = *checkpoint.borrow_and_update();
        if now <= after {
            continue;
        }
        let threads = match look(after, &mut watched).await {
            Ok(t) => t,
            Err(e) => {
                let _ = changes.send(Err(e.into())).await;
                return;
            }
        };
        after = now;
        if !threads.is_empty() {
            let change = pb::Change {
                position: now,
                thread_ids: threads,
            };
            if changes.send(Ok(change)).await.is_err() {
                return;
            }
        }
    }
}

#[tonic::async_trait]
impl InboxService for InboxGrpc {
    type WatchStream = Changes;
    type GetFileStream = FileParts;

    async fn get_file(
        &self,
        request: Request<pb::GetFileRequest>,
    ) -> Result<Response<FileParts>, Status> {
        let (caller, viewer) = self.caller(&request).await?;
        let r = request.into_inner();
        let thread = ThreadId::parse("thread_id", &r.thread_id)?;
        if !event_store::files::is_digest(&r.digest) {
            return Err(Error::invalid("digest", "is a file's SHA-256, in lowercase hex").into());
        }
        let client = self.client().await?;
        let (file, patient) =
            queries::thread_file(&client, viewer, SystemTime::now(), thread, &r.digest).await?;
        drop(client);
        let Some(files) = self.files.get().await? else {
            return Err(Status::failed_precondition("this service keeps no files"));
        };
        let Some((_, mut reader)) = files.read(&r.digest).await.map_err(|e| {
            Status::unavailable(format!("the file cannot be reached just now: {e}"))
        })?
        else {
            tracing::error!(digest = %r.digest, "a file a message names is not in the bucket");
            return Err(Status::data_loss(
                "the file is missing from the store: tell the operator",
            ));
        };
        // Recorded before a byte goes out.
        let mut shown = Shown::default();
        shown.file(&patient.to_string(), &thread.to_string(), &r.digest);
        let call = if r.preview {
            "GetFilePreview"
        } else {
            "GetFile"
        };
        self.access
            .record::<Inbox>(&caller, call, None, shown)
            .await?;
        let (send, parts) = mpsc::channel(4);
        tokio::spawn(async move {
            if send
                .send(Ok(pb::FilePart {
                    part: Some(pb::file_part::Part::File(file)),
                }))
                .await
                .is_err()
            {
                return;
            }
            loop {
                // Parts of up to `FILE_PART` (several stored chunks, each
                // fetched only when the last part went out): fewer, larger
                // messages cost less per byte, and nothing is read ahead.
                let mut buf = Vec::with_capacity(FILE_PART);
                let read = loop {
                    match reader.next_chunk().await {
                        Ok(Some(chunk)) => {
                            buf.extend_from_slice(&chunk);
                            if buf.len() >= FILE_PART {
                                break Ok(());
                            }
                        }
                        Ok(None) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                };
                let part = match read {
                    Ok(()) if buf.is_empty() => return,
                    Ok(()) => Ok(pb::FilePart {
                        part: Some(pb::file_part::Part::Chunk(buf)),
                    }),
                    Err(e) => {
                        tracing::error!(error = %e, "a stored file could not be read whole");
                        Err(Status::data_loss("the stored file could not be read whole"))
                    }
                };
                let failed = part.is_err();
                if send.send(part).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream_from(parts))))
    }

    async fn watch(&self, request: Request<pb::WatchRequest>) -> Result<Response<Changes>, Status> {
        let (_, viewer) = self.caller(&request).await?;
        let r = request.into_inner();
        let lasts = match r.max_seconds {
            0 => WATCH_DEFAULT,
            n if Duration::from_secs(n.into()) > WATCH_MAX => {
                return Err(Error::invalid("max_seconds", "at most 3600").into());
            }
            n => Duration::from_secs(n.into()),
        };
        let Some(slot) = WatchSlot::take(&self.watching, viewer.id) else {
            return Err(Status::resource_exhausted(format!(
                "at most {WATCHES_PER_PERSON} live watches per person at once: close some pages"
            )));
        };
        let after = *self.checkpoint.borrow();
        let (tx, mut rx) = mpsc::channel(16);
        let watching = watch_changes(
            self.reader.clone(),
            viewer,
            after,
            tokio::time::Instant::now() + lasts,
            self.checkpoint.clone(),
            self.stopping.clone(),
            tx,
        );
        tokio::spawn(async move {
            watching.await;
            drop(slot);
        });
        let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Response::new(Box::pin(stream)))
    }
    async fn my_inbox(
        &self,
        request: Request<pb::MyInboxRequest>,
    ) -> Result<Response<pb::ThreadPage>, Status> {
        let (caller, viewer) = self.caller(&request).await?;
        let r = request.into_inner();
        let filter = filter(r.filters, r.page_size, &r.cursor)?;
        if filter.longest_waiting {
            return Err(Error::invalid(
                "filters.order",
                "only a team inbox is ordered longest-waiting first; this list is newest first",
            )
            .into());
        }
        let position = self.reached(r.min_position).await?;
        let client = self.client().await?;
        let record = self.access.recorder(&caller, "MyInbox", None);
        let (threads, next_cursor) =
            queries::my_inbox(&client, viewer, SystemTime::now(), &filter, record).await?;
        Ok(Response::new(pb::ThreadPage {
            threads,
            next_cursor,
            position,
        }))
    }

    async fn team_inbox(
        &self,
        request: Request<pb::TeamInboxRequest>,
    ) -> Result<Response<pb::TeamInboxReply>, Status> {
        let (caller, viewer) = self.caller(&request).await?;
        let r = request.into_inner();
        let team = TeamId::parse("team_id", &r.team_id)?;
        let filter = filter(r.filters, r.page_size, &r.cursor)?;
        let position = self.reached(r.min_position).await?;
        let client = self.client().await?;
        let record = self
            .access
            .recorder(&caller, "TeamInbox", Some(team.uuid()));
        let mut reply =
            queries::team_inbox(&client, viewer, SystemTime::now(), team, &filter, record).await?;
        if let Some(page) = reply.page.as_mut() {
            page.position = position;
        }
        Ok(Response::new(reply))
    }

    async fn get_thread(
        &self,
        request: Request<pb::GetThreadRequest>,
    ) -> Result<Response<pb::ThreadDetail>, Status> {
        let (caller, viewer) = self.caller(&request).await?;
        let r = request.into_inner();
        let thread = ThreadId::parse("thread_id", &r.thread_id)?;
        let page = queries::MessagePage {
            size: match r.page_size {
                0 => queries::THREAD_PAGE,
                n if n <= queries::THREAD_PAGE_MAX => n,
                n => {
                    return Err(Error::invalid(
                        "page_size",
                        format!("{n} is more than {}", queries::THREAD_PAGE_MAX),
                    )
                    .into());
                }
            },
            before: (r.before_seq > 0).then_some(r.before_seq),
        };
        let position = self.reached(r.min_position).await?;
        let client = self.client().await?;
        let record = self.access.recorder(&caller, "GetThread", None);
        let mut detail =
            queries::thread(&client, viewer, SystemTime::now(), thread, page, record).await?;
        detail.position = position;
        Ok(Response::new(detail))
    }

    async fn who_can_i_message(
        &self,
        request: Request<pb::WhoCanIMessageRequest>,
    ) -> Result<Response<pb::WhoCanIMessageReply>, Status> {
        let (caller, viewer) = self.caller(&request).await?;
        let r = request.into_inner();
        let patient = PatientId::parse("patient_id", &r.patient_id)?;
        let position = self.reached(r.min_position).await?;
        let client = self.client().await?;
        let mut reply =
            queries::who_can_i_message(&client, viewer, SystemTime::now(), patient).await?;
        reply.position = position;
        let mut shown = Shown::default();
        shown.record(&patient.to_string());
        self.access
            .record::<Inbox>(&caller, "WhoCanIMessage", None, shown)
            .await?;
        Ok(Response::new(reply))
    }

    async fn not_read_by_patient(
        &self,
        request: Request<pb::NotReadByPatientRequest>,
    ) -> Result<Response<pb::NotReadByPatientReply>, Status> {
        let (caller, viewer) = self.caller(&request).await?;
        let r = request.into_inner();
        let team = TeamId::parse("team_id", &r.team_id)?;
        let days = match r.days {
            None => 7,
            Some(d) if d > 3650 => return Err(Error::invalid("days", "at most 3650").into()),
            Some(d) => d,
        };
        let position = self.reached(r.min_position).await?;
        let client = self.client().await?;
        let record = self
            .access
            .recorder(&caller, "NotReadByPatient", Some(team.uuid()));
        let mut reply =
            queries::not_read_by_patient(&client, viewer, SystemTime::now(), team, days, record)
                .await?;
        reply.position = position;
        Ok(Response::new(reply))
    }

    async fn team_by_join_code(
        &self,
        request: Request<pb::TeamByJoinCodeRequest>,
    ) -> Result<Response<pb::TeamContact>, Status> {
        let (caller, _) = self.caller(&request).await?;
        let r = request.into_inner();
        if r.join_code.trim().is_empty() || r.join_code.len() > 100 {
            return Err(Error::invalid("join_code", "a team's join code").into());
        }
        self.look_up(&caller, "join code look-ups")?;
        self.reached(r.min_position).await?;
        let client = self.client().await?;
        // A team's public name: no record is shown, nothing to audit.
        Ok(Response::new(
            queries::team_by_join_code(&client, &r.join_code).await?,
        ))
    }

    async fn my_account(
        &self,
        request: Request<pb::MyAccountRequest>,
    ) -> Result<Response<pb::MyAccountReply>, Status> {
        let (caller, viewer) = self.caller(&request).await?;
        let r = request.into_inner();
        let position = self.reached(r.min_position).await?;
        let client = self.client().await?;
        let mut shown = Shown::default();
        let mut reply = queries::my_account(&client, viewer, SystemTime::now(), &mut shown).await?;
        reply.position = position;
        self.access
            .record::<Inbox>(&caller, "MyAccount", None, shown)
            .await?;
        Ok(Response::new(reply))
    }

    async fn teams(
        &self,
        request: Request<pb::TeamsRequest>,
    ) -> Result<Response<pb::TeamsReply>, Status> {
        let (_, viewer) = self.caller(&request).await?;
        let r = request.into_inner();
        let team = if r.team_id.trim().is_empty() {
            None
        } else {
            Some(TeamId::parse("team_id", &r.team_id)?)
        };
        let position = self.reached(r.min_position).await?;
        let client = self.client().await?;
        // Teams and their staff: no record is shown, nothing to audit.
        let teams = queries::teams(&client, viewer, team).await?;
        Ok(Response::new(pb::TeamsReply { teams, position }))
    }

    async fn systems(
        &self,
        request: Request<pb::SystemsRequest>,
    ) -> Result<Response<pb::SystemsReply>, Status> {
        let (_, viewer) = self.caller(&request).await?;
        let position = self.reached(request.get_ref().min_position).await?;
        let client = self.client().await?;
        // Systems and their teams: no record is shown, nothing to audit.
        let systems = queries::systems(&client, viewer).await?;
        Ok(Response::new(pb::SystemsReply { systems, position }))
    }

    async fn find_people(
        &self,
        request: Request<pb::FindPeopleRequest>,
    ) -> Result<Response<pb::FindPeopleReply>, Status> {
        let (caller, viewer) = self.caller(&request).await?;
        let r = request.into_inner();
        let pattern = name_pattern(&r.name_prefix)?;
        let kind = match pb::PersonKind::try_from(r.kind).unwrap_or_default() {
            pb::PersonKind::Patient => "patient",
            pb::PersonKind::Carer => "carer",
            pb::PersonKind::Professional => "professional",
            // Systems are no people: none is listed.
            pb::PersonKind::System => "system",
            pb::PersonKind::Unspecified => "",
        };
        let limit = match r.limit {
            0 => 50,
            n @ 1..=100 => i64::from(n),
            _ => return Err(Error::invalid("limit", "from 1 to 100").into()),
        };
        let position = self.reached(r.min_position).await?;
        let client = self.client().await?;
        let only = if r.person_id.trim().is_empty() {
            None
        } else {
            Some(service_kit::ids::PersonId::parse("person_id", &r.person_id)?.uuid())
        };
        let people = queries::find_people(&client, viewer, pattern, kind, only, limit).await?;
        // An admin's search shows patients' names and addresses: a read of
        // each patient's record listed, recorded before it is answered.
        let mut shown = Shown::default();
        for p in people
            .iter()
            .filter_map(|r| r.person.as_ref())
            .filter(|p| p.kind == pb::PersonKind::Patient as i32)
        {
            shown.record(&p.person_id);
        }
        self.access
            .record::<Inbox>(&caller, "FindPeople", None, shown)
            .await?;
        Ok(Response::new(pb::FindPeopleReply { people, position }))
    }

    async fn team_patients(
        &self,
        request: Request<pb::TeamPatientsRequest>,
    ) -> Result<Response<pb::TeamPatientsReply>, Status> {
        let (caller, viewer) = self.caller(&request).await?;
        let r = request.into_inner();
        let team = TeamId::parse("team_id", &r.team_id)?;
        let pattern = name_pattern(&r.name_prefix)?
            .ok_or_else(|| Error::invalid("name_prefix", "a part of a patient's name"))?;
        let position = self.reached(r.min_position).await?;
        let client = self.client().await?;
        let record = self
            .access
            .recorder(&caller, "TeamPatients", Some(team.uuid()));
        let patients = queries::team_patients(&client, viewer, team, pattern, record).await?;
        Ok(Response::new(pb::TeamPatientsReply { patients, position }))
    }

    async fn find_carer(
        &self,
        request: Request<pb::FindCarerRequest>,
    ) -> Result<Response<pb::Person>, Status> {
        let (caller, viewer) = self.caller(&request).await?;
        let r = request.into_inner();
        if r.email.trim().is_empty() || r.email.len() > 320 {
            return Err(Error::invalid("email", "an email address, at most 320 characters").into());
        }
        self.look_up(&caller, "carer look-ups")?;
        self.reached(r.min_position).await?;
        let client = self.client().await?;
        let carer = queries::find_carer(&client, viewer, &r.email).await?;
        // A carer's name, found by their address: a read of their record,
        // in their "who has looked at my record", recorded before it is
        // answered.
        let mut shown = Shown::default();
        shown.record(&carer.person_id);
        self.access
            .record::<Inbox>(&caller, "FindCarer", None, shown)
            .await?;
        Ok(Response::new(carer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_names_become_escaped_lowercase_patterns() {
        assert_eq!(name_pattern("  ").unwrap(), None);
        assert_eq!(name_pattern("Jones").unwrap().as_deref(), Some("%jones%"));
        assert_eq!(
            name_pattern("12/3/1950").unwrap().as_deref(),
            Some("%1950-03-12%")
        );
        assert_eq!(
            name_pattern("5%_\\").unwrap().as_deref(),
            Some("%5\\%\\_\\\\%")
        );
        assert!(name_pattern(&"x".repeat(101)).is_err());
    }

    #[test]
    fn filters_are_checked_and_named() {
        let bad_team = pb::Filters {
            team_id: "nope".into(),
            ..Default::default()
        };
        let field = |e: Error| match e {
            Error::InvalidArgument { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(filter(Some(bad_team), 0, "").unwrap_err()),
            "filters.team_id"
        );
        assert_eq!(field(filter(None, 201, "").unwrap_err()), "page_size");
        assert_eq!(field(filter(None, 0, "garbage").unwrap_err()), "cursor");
        let ok = filter(None, 0, "").unwrap();
        assert_eq!(
            (ok.status, ok.assignment, ok.page_size),
            ("active", "any", 50)
        );
    }
}
