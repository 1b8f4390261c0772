//! Thread events, folded in memory per batch and written set-based.
//!
//! The threads a batch touches are read once; every event is then applied
//! to those rows in memory, in log order (so a reply that reopens a thread
//! and a later archive end as "archived"); finally each table is written
//! with one statement over arrays (`unnest`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::SystemTime;

use event_store::RecordedEvent;
use projections::Error;
use projections::tokio_postgres::Transaction;
use proto::events::envelope::Payload;
use proto::events::{JoinReason, Participant, ParticipantKind, Role};
use uuid::Uuid;

use super::{actor, occurred_at, optional_uuid, uuid};

const LOAD_THREADS: &str = "SELECT thread_id, patient_id, subject, status, assignee, started_by, started_at, \
     last_activity_at, last_position, message_count, last_staff_seq, last_staff_at, participant_count, \
     waiting_since FROM threads WHERE thread_id = ANY($1)";
const LOAD_MESSAGE_SEQS: &str =
    "SELECT message_id, thread_id, seq FROM messages WHERE message_id = ANY($1)";
const UPSERT_THREADS: &str = "INSERT INTO threads (thread_id, patient_id, subject, status, assignee, started_by, \
     started_at, last_activity_at, last_position, message_count, last_staff_seq, last_staff_at, participant_count, \
     waiting_since) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::uuid[], \
     $7::timestamptz[], $8::timestamptz[], $9::int8[], $10::int4[], $11::int4[], $12::timestamptz[], $13::int4[], \
     $14::timestamptz[]) \
     ON CONFLICT (thread_id) DO UPDATE SET status = excluded.status, assignee = excluded.assignee, \
     last_activity_at = excluded.last_activity_at, last_position = excluded.last_position, \
     message_count = excluded.message_count, last_staff_seq = excluded.last_staff_seq, \
     last_staff_at = excluded.last_staff_at, participant_count = excluded.participant_count, \
     waiting_since = excluded.waiting_since";
const INSERT_MESSAGES: &str = "INSERT INTO messages (thread_id, seq, message_id, author_id, author_role, body, posted_at, position, sender_label) \
     SELECT * FROM unnest($1::uuid[], $2::int4[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::timestamptz[], $8::int8[], $9::text[])";
const INSERT_FILES: &str = "INSERT INTO message_files (thread_id, seq, ord, digest, file_name, media_type, size) \
     SELECT * FROM unnest($1::uuid[], $2::int4[], $3::int4[], $4::text[], $5::text[], $6::text[], $7::int8[])";
const INSERT_NOTES: &str = "INSERT INTO staff_notes (thread_id, note_id, author_id, author_role, body, posted_at, position) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[], $7::int8[])";
const UPSERT_PARTICIPANTS: &str = "INSERT INTO thread_participants (thread_id, person_id, kind, reason, via_team, active, joined_at, left_at, staff_side, deputy_for) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::bool[], $7::timestamptz[], $8::timestamptz[], $9::bool[], $10::uuid[]) \
     ON CONFLICT (thread_id, person_id) DO UPDATE SET kind = excluded.kind, reason = excluded.reason, \
     via_team = excluded.via_team, active = excluded.active, joined_at = excluded.joined_at, left_at = excluded.left_at, \
     staff_side = excluded.staff_side, deputy_for = excluded.deputy_for";
const LEAVE_PARTICIPANTS: &str = "UPDATE thread_participants p SET active = false, left_at = x.left_at \
     FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS x(thread_id, person_id, left_at) \
     WHERE p.thread_id = x.thread_id AND p.person_id = x.person_id";
/// A team addressed again moves only from the staff side to the patient side.
const INSERT_THREAD_TEAMS: &str = "INSERT INTO thread_teams (team_id, thread_id, added_at, staff_side, \
     status, assignee, last_activity_at, patient_id, waiting_since) \
     SELECT x.team_id, x.thread_id, x.added_at, x.staff_side, \
            t.status, t.assignee, t.last_activity_at, t.patient_id, t.waiting_since \
     FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::bool[]) AS x(team_id, thread_id, added_at, staff_side) \
     LEFT JOIN threads t ON t.thread_id = x.thread_id \
     ON CONFLICT (team_id, thread_id) DO UPDATE SET staff_side = false \
     WHERE thread_teams.staff_side AND NOT excluded.staff_side";
/// A team inbox's copy of its threads' state (`thread_teams`, V9), taken
/// from `threads` (already written in this transaction) for the threads a
/// batch touched, where it changed.
const COPY_TO_TEAMS: &str = "UPDATE thread_teams tt SET status = t.status, assignee = t.assignee, \
     last_activity_at = t.last_activity_at, patient_id = t.patient_id, waiting_since = t.waiting_since \
     FROM threads t WHERE t.thread_id = ANY($1::uuid[]) AND tt.thread_id = t.thread_id \
       AND (tt.status, tt.assignee, tt.last_activity_at, tt.patient_id, tt.waiting_since) \
           IS DISTINCT FROM (t.status, t.assignee, t.last_activity_at, t.patient_id, t.waiting_since)";
/// The same copy for the professionals on those threads now, one row each
/// (`professional_threads`, V11: their own message list's index range); a
/// professional no longer on one loses its row.
const COPY_TO_PROFESSIONALS: &str = "WITH gone AS (DELETE FROM professional_threads pt \
       USING thread_participants p \
       WHERE p.thread_id = ANY($1::uuid[]) AND pt.person_id = p.person_id AND pt.thread_id = p.thread_id \
         AND NOT (p.active AND p.kind = 'professional')) \
     INSERT INTO professional_threads (person_id, thread_id, status, assignee, last_activity_at, patient_id) \
     SELECT p.person_id, p.thread_id, t.status, t.assignee, t.last_activity_at, t.patient_id \
     FROM thread_participants p JOIN threads t ON t.thread_id = p.thread_id \
     WHERE p.thread_id = ANY($1::uuid[]) AND p.active AND p.kind = 'professional' \
     ON CONFLICT (person_id, thread_id) DO UPDATE SET status = excluded.status, \
       assignee = excluded.assignee, last_activity_at = excluded.last_activity_at, \
       patient_id = excluded.patient_id \
     WHERE (professional_threads.status, professional_threads.assignee, \
            professional_threads.last_activity_at, professional_threads.patient_id) \
       IS DISTINCT FROM (excluded.status, excluded.assignee, excluded.last_activity_at, excluded.patient_id)";
const UPSERT_READ_MARKS: &str = "INSERT INTO read_marks (thread_id, person_id, seq, read_at) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::timestamptz[]) \
     ON CONFLICT (thread_id, person_id) DO UPDATE SET seq = excluded.seq, read_at = excluded.read_at \
     WHERE excluded.seq > read_marks.seq";
const INSERT_ASSIGNMENTS: &str = "INSERT INTO assignments (thread_id, position, assignee, by_id, at) \
     SELECT * FROM unnest($1::uuid[], $2::int8[], $3::uuid[], $4::uuid[], $5::timestamptz[])";

#[derive(Clone, Debug)]
struct ThreadRow {
    patient_id: Uuid,
    subject: String,
    status: &'static str,
    assignee: Option<Uuid>,
    started_by: Uuid,
    started_at: SystemTime,
    last_activity_at: SystemTime,
    last_position: i64,
    message_count: i32,
    last_staff_seq: i32,
    last_staff_at: Option<SystemTime>,
    /// People on the thread now.
    participants: i32,
    /// The patient side's first message since staff last wrote.
    waiting_since: Option<SystemTime>,
}

/// How a participant joined: kind, reason, via team, joined at, on the
/// staff side, standing in for.
type Joined = (String, String, Option<Uuid>, SystemTime, bool, Option<Uuid>);

/// A participant's final state in this batch. Without `joined`, only a
/// departure of someone who joined in an earlier batch is known.
#[derive(Clone, Debug)]
struct ParticipantRow {
    joined: Option<Joined>,
    active: bool,
    left_at: Option<SystemTime>,
}

/// (thread, seq, message id, author, author role, body, posted at,
/// position, a notice's sender)
type MessageRow = (
    Uuid,
    i32,
    Uuid,
    Uuid,
    String,
    String,
    SystemTime,
    i64,
    Option<String>,
);

/// (thread, seq, order, digest, file name, media type, size)
type FileRow = (Uuid, i32, i32, String, String, String, i64);

/// (thread, note id, author, author role, body, posted at, position)
type NoteRow = (Uuid, Uuid, Uuid, String, String, SystemTime, i64);

#[derive(Default)]
struct Fold {
    threads: HashMap<Uuid, ThreadRow>,
    messages: Vec<MessageRow>,
    files: Vec<FileRow>,
    notes: Vec<NoteRow>,
    message_seqs: HashMap<Uuid, (Uuid, i32)>,
    participants: HashMap<(Uuid, Uuid), ParticipantRow>,
    /// Teams addressed, and whether on the staff side.
    thread_teams: BTreeMap<(Uuid, Uuid), bool>,
    team_added_at: HashMap<(Uuid, Uuid), SystemTime>,
    read_marks: HashMap<(Uuid, Uuid), (i32, SystemTime)>,
    assignments: Vec<(Uuid, i64, Option<Uuid>, Uuid, SystemTime)>,
}

fn status_name(s: &str) -> &'static str {
    match s {
        "complete" => "complete",
        "archived" => "archived",
        _ => "open",
    }
}

fn kind_name(kind: ParticipantKind) -> &'static str {
    match kind {
        ParticipantKind::Patient => "patient",
        ParticipantKind::Carer => "carer",
        _ => "professional",
    }
}

fn reason_name(reason: JoinReason) -> String {
    reason
        .as_str_name()
        .trim_start_matches("JOIN_REASON_")
        .to_lowercase()
}

fn role_of(event: &RecordedEvent) -> Role {
    event
        .envelope
        .actor
        .as_ref()
        .and_then(|a| Role::try_from(a.role).ok())
        .unwrap_or(Role::Unspecified)
}

/// A message from the hospital's side: a professional's, or a notice a
/// hospital system posted for a team. It answers whoever was waiting.
fn from_staff(event: &RecordedEvent) -> bool {
    matches!(role_of(event), Role::Professional | Role::Service)
}

fn role_name(role: Role) -> &'static str {
    proto::contract::role_name(role as i32)
}

fn unknown(event: &RecordedEvent) -> Error {
    Error::Apply {
        projection: "inbox".into(),
        position: event.position,
        message: format!(
            "{} for thread {}, which was never started",
            event.event_type(),
            event.envelope.aggregate_id
        ),
    }
}

impl Fold {
    fn row(&mut self, event: &RecordedEvent, id: Uuid) -> Result<&mut ThreadRow, Error> {
        let row = self.threads.get_mut(&id).ok_or_else(|| unknown(event))?;
        row.last_position = event.position as i64;
        Ok(row)
    }

    /// Message `message`, number `seq` of `thread`, posted by `by` (a
    /// hospital system's, when a `notice`).
    #[allow(clippy::too_many_arguments)]
    fn message(
        &mut self,
        event: &RecordedEvent,
        (thread, seq): (Uuid, i32),
        message: Uuid,
        by: Uuid,
        body: &str,
        at: SystemTime,
        notice: Option<&proto::events::Notice>,
    ) {
        self.messages.push((
            thread,
            seq,
            message,
            by,
            role_name(role_of(event)).to_string(),
            body.to_string(),
            at,
            event.position as i64,
            notice.map(proto::contract::notice_sender),
        ));
        self.message_seqs.insert(message, (thread, seq));
    }

    fn files(&mut self, thread: Uuid, seq: i32, attachments: &[proto::events::Attachment]) {
        for (ord, a) in attachments.iter().enumerate() {
            self.files.push((
                thread,
                seq,
                ord as i32,
                a.digest.clone(),
                a.file_name.clone(),
                a.media_type.clone(),
                i64::try_from(a.size).unwrap_or(i64::MAX),
            ));
        }
    }

    fn read(&mut self, thread: Uuid, person: Uuid, seq: i32, at: SystemTime) {
        let mark = self.read_marks.entry((thread, person)).or_insert((seq, at));
        if seq >= mark.0 {
            *mark = (seq, at);
        }
    }

    /// People and teams joining `thread`, on the staff side or not; those
    /// in `moved` (person and team ids) were on its staff side already.
    fn join(
        &mut self,
        event: &RecordedEvent,
        thread: Uuid,
        (people, teams): (&[Participant], &[String]),
        staff_side: bool,
        moved: &[&[String]],
        at: SystemTime,
    ) -> Result<(), Error> {
        let was_on = |id: &String| moved.iter().any(|ids| ids.contains(id));
        for p in people {
            let person = uuid(event, "participant.person_id", &p.person_id)?;
            let via = optional_uuid(event, "participant.via_team_id", &p.via_team_id)?;
            let deputy_for = optional_uuid(event, "participant.deputy_for", &p.deputy_for)?;
            // The command service adds only people not on the thread now,
            // or moves them from its staff side.
            if let Some(row) = self.threads.get_mut(&thread)
                && !was_on(&p.person_id)
            {
                row.participants += 1;
            }
            self.participants.insert(
                (thread, person),
                ParticipantRow {
                    joined: Some((
                        kind_name(p.kind()).to_string(),
                        reason_name(p.reason()),
                        via,
                        at,
                        staff_side,
                        deputy_for,
                    )),
                    active: true,
                    left_at: None,
                },
            );
        }
        for team in teams {
            let team = uuid(event, "team_id", team)?;
            let side = self
                .thread_teams
                .entry((team, thread))
                .or_insert(staff_side);
            *side &= staff_side;
            self.team_added_at.entry((team, thread)).or_insert(at);
        }
        Ok(())
    }

    fn apply(&mut self, event: &RecordedEvent) -> Result<(), Error> {
        let id = uuid(event, "aggregate_id", &event.envelope.aggregate_id)?;
        let at = occurred_at(event);
        let by = actor(event)?;
        let Some(payload) = &event.envelope.payload else {
            return Ok(());
        };
        match payload {
            Payload::ThreadStarted(e) => {
                if self.threads.contains_key(&id) {
                    return Err(Error::Apply {
                        projection: "inbox".into(),
                        position: event.position,
                        message: format!("thread {id} was started twice"),
                    });
                }
                let staff = from_staff(event);
                self.threads.insert(
                    id,
                    ThreadRow {
                        patient_id: uuid(event, "patient_id", &e.patient_id)?,
                        subject: e.subject.clone(),
                        status: "open",
                        assignee: None,
                        started_by: by,
                        started_at: at,
                        last_activity_at: at,
                        last_position: event.position as i64,
                        message_count: 1,
                        last_staff_seq: if staff { 1 } else { 0 },
                        last_staff_at: staff.then_some(at),
                        participants: 0,
                        waiting_since: (!staff).then_some(at),
                    },
                );
                let message = uuid(event, "message_id", &e.message_id)?;
                self.message(event, (id, 1), message, by, &e.body, at, e.notice.as_ref());
                self.files(id, 1, &e.attachments);
                self.join(event, id, (&e.participants, &e.team_ids), false, &[], at)?;
                self.read(id, by, 1, at);
            }
            Payload::MessagePosted(e) => {
                let staff = from_staff(event);
                let row = self.row(event, id)?;
                row.message_count += 1;
                row.last_activity_at = at;
                if e.reopened {
                    row.status = "open";
                }
                let seq = row.message_count;
                if staff {
                    row.last_staff_seq = seq;
                    row.last_staff_at = Some(at);
                    row.waiting_since = None;
                } else {
                    row.waiting_since.get_or_insert(at);
                }
                let message = uuid(event, "message_id", &e.message_id)?;
                let notice = e.notice.as_ref();
                self.message(event, (id, seq), message, by, &e.body, at, notice);
                self.files(id, seq, &e.attachments);
                self.read(id, by, seq, at);
            }
            Payload::StaffNotePosted(e) => {
                // Staff's own: the thread's activity and counts, which the
                // patient sees, do not move.
                self.row(event, id)?;
                self.notes.push((
                    id,
                    uuid(event, "note_id", &e.note_id)?,
                    by,
                    role_name(role_of(event)).to_string(),
                    e.body.clone(),
                    at,
                    event.position as i64,
                ));
            }
            Payload::ParticipantsAdded(e) => {
                self.row(event, id)?.last_activity_at = at;
                let moved = [e.moved_person_ids.as_slice(), e.moved_team_ids.as_slice()];
                self.join(event, id, (&e.participants, &e.team_ids), false, &moved, at)?;
            }
            Payload::StaffSideJoined(e) => {
                // Not activity the patient sees: the thread keeps its place.
                self.row(event, id)?;
                self.join(event, id, (&e.participants, &e.team_ids), true, &[], at)?;
            }
            Payload::ParticipantLeft(e) => {
                let person = uuid(event, "person_id", &e.person_id)?;
                let row = self.row(event, id)?;
                row.last_activity_at = at;
                row.participants = (row.participants - 1).max(0);
                if e.unassigned {
                    row.assignee = None;
                    self.assignments
                        .push((id, event.position as i64, None, by, at));
                }
                let entry = self
                    .participants
                    .entry((id, person))
                    .or_insert(ParticipantRow {
                        joined: None,
                        active: false,
                        left_at: None,
                    });
                entry.active = false;
                entry.left_at = Some(at);
            }
            Payload::ThreadAssigned(e) => {
                let assignee = uuid(event, "assignee_id", &e.assignee_id)?;
                let row = self.row(event, id)?;
                row.assignee = Some(assignee);
                row.last_activity_at = at;
                self.assignments
                    .push((id, event.position as i64, Some(assignee), by, at));
            }
            Payload::ThreadUnassigned(_) => {
                let row = self.row(event, id)?;
                row.assignee = None;
                row.last_activity_at = at;
                self.assignments
                    .push((id, event.position as i64, None, by, at));
            }
            Payload::ThreadCompleted(_) => {
                let row = self.row(event, id)?;
                row.status = "complete";
                row.last_activity_at = at;
            }
            Payload::ThreadArchived(_) => {
                let row = self.row(event, id)?;
                row.status = "archived";
                row.last_activity_at = at;
            }
            Payload::ThreadReopened(_) => {
                let row = self.row(event, id)?;
                row.status = "open";
                row.last_activity_at = at;
            }
            Payload::ThreadReadUpTo(e) => {
                self.row(event, id)?;
                let reader = uuid(event, "reader_id", &e.reader_id)?;
                let message = uuid(event, "message_id", &e.message_id)?;
                // Reading is not activity: the thread keeps its place.
                if let Some(&(thread, seq)) = self.message_seqs.get(&message)
                    && thread == id
                {
                    self.read(id, reader, seq, at);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Copies the state of `threads` (as now written) to their teams' rows and
/// to a row per professional on them, where it changed: the team inbox's
/// and a professional's message list's index ranges.
pub(crate) async fn copy_state(
    tx: &Transaction<'_>,
    threads: &BTreeSet<Uuid>,
) -> Result<(), Error> {
    if threads.is_empty() {
        return Ok(());
    }
    let threads: Vec<Uuid> = threads.iter().copied().collect();
    tx.execute(COPY_TO_TEAMS, &[&threads]).await?;
    tx.execute(COPY_TO_PROFESSIONALS, &[&threads]).await?;
    Ok(())
}

/// Applies thread events, in log order, to the inbox tables.
pub(crate) async fn apply(tx: &Transaction<'_>, events: &[&RecordedEvent]) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    let mut fold = Fold::default();

    // Rows of threads started in earlier batches, and seqs of messages
    // read here but posted earlier.
    let mut ids = BTreeSet::new();
    let mut read_messages = BTreeSet::new();
    for event in events {
        match &event.envelope.payload {
            Some(Payload::ThreadStarted(_)) => {}
            Some(Payload::ThreadReadUpTo(e)) => {
                ids.insert(uuid(event, "aggregate_id", &event.envelope.aggregate_id)?);
                read_messages.insert(uuid(event, "message_id", &e.message_id)?);
            }
            _ => {
                ids.insert(uuid(event, "aggregate_id", &event.envelope.aggregate_id)?);
            }
        }
    }
    let ids: Vec<Uuid> = ids.into_iter().collect();
    for row in tx.query(LOAD_THREADS, &[&ids]).await? {
        fold.threads.insert(
            row.get(0),
            ThreadRow {
                patient_id: row.get(1),
                subject: row.get(2),
                status: status_name(row.get::<_, &str>(3)),
                assignee: row.get(4),
                started_by: row.get(5),
                started_at: row.get(6),
                last_activity_at: row.get(7),
                last_position: row.get(8),
                message_count: row.get(9),
                last_staff_seq: row.get(10),
                last_staff_at: row.get(11),
                participants: row.get(12),
                waiting_since: row.get(13),
            },
        );
    }
    if !read_messages.is_empty() {
        let read_messages: Vec<Uuid> = read_messages.into_iter().collect();
        for row in tx.query(LOAD_MESSAGE_SEQS, &[&read_messages]).await? {
            fold.message_seqs
                .insert(row.get(0), (row.get(1), row.get(2)));
        }
    }

    for event in events {
        fold.apply(event)?;
    }
    write(tx, fold).await
}

/// Runs `sql`, one `unnest($1, $2, ...)` statement, with one array parameter
/// per column in the order listed, each filled from `rows` by its
/// expression; nothing when `rows` is empty.
macro_rules! unnest {
    ($tx:expr, $sql:expr, for $row:pat in $rows:expr => { $($column:ident: $value:expr),+ $(,)? }) => {{
        $(let mut $column = Vec::new();)+
        let mut any = false;
        for $row in $rows {
            any = true;
            $($column.push($value);)+
        }
        if any {
            $tx.execute($sql, &[$(&$column),+]).await?;
        }
    }};
}

async fn write(tx: &Transaction<'_>, fold: Fold) -> Result<(), Error> {
    let touched: Vec<Uuid> = fold.threads.keys().copied().collect();
    unnest!(tx, UPSERT_THREADS, for (thread, row) in fold.threads => {
        ids: thread,
        patients: row.patient_id,
        subjects: row.subject,
        statuses: row.status,
        assignees: row.assignee,
        started_by: row.started_by,
        started_at: row.started_at,
        activity: row.last_activity_at,
        positions: row.last_position,
        counts: row.message_count,
        staff_seqs: row.last_staff_seq,
        staff_ats: row.last_staff_at,
        on_thread: row.participants,
        waiting: row.waiting_since,
    });
    unnest!(tx, INSERT_MESSAGES,
    for (thread, seq, message, author, role, body, at, position, label) in fold.messages => {
        threads: thread, seqs: seq, messages: message, authors: author,
        roles: role, bodies: body, ats: at, positions: position, labels: label,
    });
    unnest!(tx, INSERT_FILES,
    for (thread, seq, ord, digest, name, media_type, size) in fold.files => {
        threads: thread, seqs: seq, ords: ord, digests: digest,
        names: name, media_types: media_type, sizes: size,
    });
    unnest!(tx, INSERT_NOTES,
    for (thread, note, author, role, body, at, position) in fold.notes => {
        threads: thread, notes: note, authors: author,
        roles: role, bodies: body, ats: at, positions: position,
    });

    let (mut joining, mut leaving) = (Vec::new(), Vec::new());
    let mut touched: BTreeSet<Uuid> = touched.into_iter().collect();
    for ((thread, person), row) in fold.participants {
        touched.insert(thread);
        match row.joined {
            Some(joined) => joining.push((thread, person, joined, row.active, row.left_at)),
            None => leaving.push((thread, person, row.left_at)),
        }
    }
    unnest!(tx, UPSERT_PARTICIPANTS,
    for (thread, person, (kind, reason, via, joined_at, staff_side, deputy_for), active, left_at) in joining => {
        threads: thread, people: person, kinds: kind, reasons: reason,
        vias: via, actives: active, joined_ats: joined_at, left_ats: left_at,
        staff_sides: staff_side, deputies_for: deputy_for,
    });
    unnest!(tx, LEAVE_PARTICIPANTS, for (thread, person, at) in leaving => {
        threads: thread, people: person, ats: at,
    });
    let team_added_at = &fold.team_added_at;
    unnest!(tx, INSERT_THREAD_TEAMS, for ((team, thread), staff_side) in fold.thread_teams => {
        teams: team,
        threads: thread,
        ats: team_added_at.get(&(team, thread)).copied().unwrap_or(SystemTime::UNIX_EPOCH),
        staff_sides: staff_side,
    });
    copy_state(tx, &touched).await?;
    unnest!(tx, UPSERT_READ_MARKS, for ((thread, person), (seq, at)) in fold.read_marks => {
        threads: thread, people: person, seqs: seq, ats: at,
    });
    unnest!(tx, INSERT_ASSIGNMENTS,
    for (thread, position, assignee, by, at) in fold.assignments => {
        threads: thread, positions: position, assignees: assignee, bys: by, ats: at,
    });
    Ok(())
}
