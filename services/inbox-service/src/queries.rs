//! The inbox's named queries, and the answers they build.
//!
//! Who may see a thread is one SQL fragment per role (`visible_*!`), used
//! by every query, so a list and a single thread can never disagree:
//! * a patient: every thread in their own record;
//! * a carer: the threads they are on, while the patient's consent is in force;
//! * a professional: threads they are on, threads addressed to a team they
//!   belong to, threads in records their team holds a grant in force for.
//!
//! Everyone else sees nothing (ARCHITECTURE.md, "Who sees a thread": the one
//! rule every service follows, checked by `tests/visibility.rs`). Parameters
//! `$1` (the caller) and `$2` (now) are the same in every fragment.
//!
//! The read model's answers are the API's shape, so rows are turned into
//! `careline.inbox.v1` messages here, with no other logic between.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use deadpool_postgres::ClientWrapper as Client;
use proto::inbox as pb;
use service_kit::Role;
use service_kit::ids::{PatientId, TeamId, ThreadId};
use tokio_postgres::Row;
use uuid::Uuid;

use careline_read_kit::Shown;

/// What one answer of the inbox shows, recorded once.
type Recorder<'a> = careline_read_kit::Recorder<'a, crate::error::Inbox>;
use crate::error::Error;

type Param = dyn tokio_postgres::types::ToSql + Sync;

// Every query is prepared once per pooled connection: planning the page
// query costs as much as running it.

async fn rows(client: &Client, sql: &str, params: &[&Param]) -> Result<Vec<Row>, Error> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query(&statement, params).await?)
}

async fn one(client: &Client, sql: &str, params: &[&Param]) -> Result<Row, Error> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_one(&statement, params).await?)
}

async fn optional(client: &Client, sql: &str, params: &[&Param]) -> Result<Option<Row>, Error> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_opt(&statement, params).await?)
}

macro_rules! visible_patient {
    () => {
        "SELECT thread_id FROM threads WHERE patient_id = $1 AND $2::timestamptz IS NOT NULL"
    };
}
macro_rules! visible_carer {
    () => {
        "SELECT tp.thread_id FROM thread_participants tp \
         JOIN threads t ON t.thread_id = tp.thread_id \
         JOIN consents c ON c.patient_id = t.patient_id AND c.carer_id = tp.person_id \
         WHERE tp.person_id = $1 AND tp.active AND (c.expires_at IS NULL OR c.expires_at > $2)"
    };
}
macro_rules! visible_professional {
    () => {
        "SELECT thread_id FROM thread_participants WHERE person_id = $1 AND active \
           AND kind = 'professional' \
         UNION SELECT tt.thread_id FROM team_members m JOIN thread_teams tt ON tt.team_id = m.team_id \
           WHERE m.person_id = $1 \
         UNION SELECT t.thread_id FROM team_members m \
           JOIN grants g ON g.team_id = m.team_id AND g.revoked_at IS NULL AND g.expires_at > $2 \
           JOIN threads t ON t.patient_id = g.patient_id WHERE m.person_id = $1"
    };
}
/// A professional's threads in person: added by name or started, not
/// reached as a member of a team the thread addresses.
macro_rules! visible_by_name {
    () => {
        "SELECT thread_id FROM thread_participants WHERE person_id = $1 AND active \
           AND kind = 'professional' AND via_team IS NULL AND $2::timestamptz IS NOT NULL"
    };
}

/// Whether the viewer `$1` is staff, who are shown a thread's staff side
/// (its people, teams and their reads); the patient and carers never are.
/// Uncorrelated: computed once per statement.
macro_rules! staff_viewer {
    () => {
        "EXISTS (SELECT 1 FROM people sv WHERE sv.person_id = $1 AND sv.kind = 'professional')"
    };
}

/// Everything a list shows of each thread in `$from` (which names the
/// threads `t`), in one statement: the assignee, the teams, the first
/// people on it (an index-only scan), and the unread count of the viewer
/// `$1`. People are named afterwards, in one lookup for the whole page
/// (see [`named_summaries`]): the same few staff are on most threads of an
/// inbox. Columns are read by [`summary`].
macro_rules! summary_select {
    ($from:expr) => {
        concat!(
            "SELECT t.thread_id, t.patient_id, t.subject, t.status, t.assignee, t.last_activity_at, \
             t.message_count, coalesce(rm.seq, 0), \
             t.participant_count - (SELECT count(*)::int4 FROM thread_participants tp \
               JOIN consents c ON c.patient_id = t.patient_id AND c.carer_id = tp.person_id \
               WHERE tp.thread_id = t.thread_id AND tp.active AND tp.kind = 'carer' \
                 AND c.expires_at <= now()) \
               - CASE WHEN ", staff_viewer!(), " THEN 0 ELSE (SELECT count(*)::int4 \
                 FROM thread_participants tp WHERE tp.thread_id = t.thread_id AND tp.active AND tp.staff_side) END, \
             coalesce((SELECT array_agg(tt.team_id ORDER BY tt.added_at, tt.team_id) FROM thread_teams tt \
               WHERE tt.thread_id = t.thread_id AND (NOT tt.staff_side OR ", staff_viewer!(), ")), '{}'), \
             ARRAY(SELECT tp.person_id FROM thread_participants tp \
               WHERE tp.thread_id = t.thread_id AND tp.active \
                 AND (NOT tp.staff_side OR ", staff_viewer!(), ") \
                 AND NOT (tp.kind = 'carer' AND EXISTS (SELECT 1 FROM consents c \
                   WHERE c.patient_id = t.patient_id AND c.carer_id = tp.person_id \
                     AND c.expires_at <= now())) \
               ORDER BY tp.joined_at, tp.person_id LIMIT 10), \
             coalesce((SELECT array_agg(tt.team_id ORDER BY tt.added_at, tt.team_id) FROM thread_teams tt \
               WHERE tt.thread_id = t.thread_id AND tt.staff_side AND ", staff_viewer!(), "), '{}'), \
             CASE WHEN ", staff_viewer!(), " THEN t.waiting_since END, \
             (SELECT left(m.body, 160) FROM messages m WHERE m.thread_id = t.thread_id \
               ORDER BY m.seq DESC LIMIT 1) FROM ",
            $from,
            " LEFT JOIN read_marks rm ON rm.thread_id = t.thread_id AND rm.person_id = $1"
        )
    };
}

/// The filters of [`page!`] on a row `$a` carrying a thread's status,
/// assignee, patient, last activity and id: `threads`, or a copy of them
/// (`thread_teams`, `professional_threads`).
macro_rules! filters {
    ($a:literal) => {
        concat!(
            "($3 = 'all' OR ($3 = 'archived') = (",
            $a,
            ".status = 'archived')) \
             AND ($4 = 'any' OR ($4 = 'me' AND ",
            $a,
            ".assignee = $1) \
                  OR ($4 = 'unassigned' AND ",
            $a,
            ".assignee IS NULL) \
                  OR ($4 = 'others' AND ",
            $a,
            ".assignee <> $1)) \
             AND ($6::text IS NULL OR EXISTS (SELECT 1 FROM people pn WHERE pn.person_id = ",
            $a,
            ".patient_id \
                  AND (lower(pn.name) LIKE $6 OR pn.identifiers LIKE $6))) \
             AND ($10::uuid IS NULL OR ",
            $a,
            ".patient_id = $10)"
        )
    };
}
/// [`page_filters!`] and the newest-first cursor (`$7`/`$8`: the last
/// row's activity, in microseconds, and id).
macro_rules! page_filters {
    ($a:literal) => {
        concat!(
            filters!($a),
            " AND ($7::int8 IS NULL OR (",
            $a,
            ".last_activity_at, ",
            $a,
            ".thread_id) < (timestamptz 'epoch' + $7 * interval '1 microsecond', $8::uuid))"
        )
    };
}
/// Only threads addressed to team `$5`, when it is set.
macro_rules! on_team {
    ($a:literal) => {
        concat!(
            " AND ($5::uuid IS NULL OR EXISTS (SELECT 1 FROM thread_teams x5 \
               WHERE x5.team_id = $5 AND x5.thread_id = ",
            $a,
            ".thread_id))"
        )
    };
}
/// The newest first, at most a page: the order of every page.
macro_rules! newest {
    ($a:literal) => {
        concat!(
            " ORDER BY ",
            $a,
            ".last_activity_at DESC, ",
            $a,
            ".thread_id DESC LIMIT $9"
        )
    };
}
/// One page of threads, newest activity first, with their summaries, in
/// one round trip. The visible ids are collected first and the threads
/// looked up by key (a covering index): a caller sees a few hundred
/// threads of a table of hundreds of thousands. `$3` status (active,
/// archived, all), `$4` assignment (any, me, unassigned, others), `$5` team,
/// `$6` patient name pattern, `$7`/`$8` the cursor, `$9` the page size,
/// `$10` the patient.
macro_rules! page {
    ($visible:expr) => {
        concat!(
            "WITH visible AS (",
            $visible,
            "), page AS (SELECT t.thread_id FROM threads t \
             WHERE t.thread_id = ANY(ARRAY(SELECT thread_id FROM visible)) AND ",
            page_filters!("t"),
            on_team!("t"),
            newest!("t"),
            ") ",
            summary_select!("page JOIN threads t ON t.thread_id = page.thread_id"),
            " ORDER BY t.last_activity_at DESC, t.thread_id DESC"
        )
    };
}

macro_rules! can_see {
    ($visible:expr) => {
        concat!(
            "SELECT EXISTS (SELECT 1 FROM (",
            $visible,
            ") v WHERE v.thread_id = $3)"
        )
    };
}

const PAGE_PATIENT: &str = page!(visible_patient!());
const PAGE_CARER: &str = page!(visible_carer!());
/// A professional's page as the newest of a page from each way they see
/// threads (`visible_professional!`), each an index range that stops at a
/// page: each of their teams' `thread_teams` rows, the threads they are on
/// (`professional_threads`, the same copy), and the threads of each record a team of
/// theirs holds a grant in force for. A thread reached several ways is one
/// row (its copies agree: they are written in the thread's transaction).
/// Parameters as [`page!`]'s.
const PAGE_PROFESSIONAL: &str = concat!(
    "WITH ways AS (\
       SELECT x.thread_id, x.last_activity_at FROM team_members m CROSS JOIN LATERAL (\
         SELECT tt.thread_id, tt.last_activity_at FROM thread_teams tt WHERE tt.team_id = m.team_id AND ",
    page_filters!("tt"),
    on_team!("tt"),
    newest!("tt"),
    ") x WHERE m.person_id = $1 \
       UNION ALL (SELECT tp.thread_id, tp.last_activity_at FROM professional_threads tp \
         WHERE tp.person_id = $1 AND ",
    page_filters!("tp"),
    on_team!("tp"),
    newest!("tp"),
    ") UNION ALL SELECT x.thread_id, x.last_activity_at FROM team_members m \
         JOIN grants g ON g.team_id = m.team_id AND g.revoked_at IS NULL AND g.expires_at > $2 \
         CROSS JOIN LATERAL (SELECT t.thread_id, t.last_activity_at FROM threads t \
           WHERE t.patient_id = g.patient_id AND ",
    page_filters!("t"),
    on_team!("t"),
    newest!("t"),
    ") x WHERE m.person_id = $1), \
     page AS (SELECT DISTINCT w.thread_id, w.last_activity_at FROM ways w",
    newest!("w"),
    ") ",
    summary_select!("page JOIN threads t ON t.thread_id = page.thread_id"),
    " ORDER BY t.last_activity_at DESC, t.thread_id DESC"
);
/// A team inbox's page from `thread_teams` alone (its copy of each
/// thread's status, assignee, activity and patient): one index range of
/// the team, newest first, stopping at the page's end. Parameters as
/// [`page!`]'s.
const PAGE_TEAM: &str = concat!(
    "WITH page AS (SELECT tt.thread_id FROM thread_teams tt \
     WHERE tt.team_id = $5 AND $2::timestamptz IS NOT NULL AND ",
    page_filters!("tt"),
    newest!("tt"),
    ") ",
    summary_select!("page JOIN threads t ON t.thread_id = page.thread_id"),
    " ORDER BY t.last_activity_at DESC, t.thread_id DESC"
);
/// A team inbox's page longest-waiting first (V15): one index range of the
/// team by `queue_key`, from the cursor (`$7`/`$8`: the last row's key and
/// id). Parameters otherwise as [`page!`]'s.
const PAGE_TEAM_WAITING: &str = concat!(
    "WITH page AS (SELECT tt.thread_id, tt.queue_key FROM thread_teams tt \
     WHERE tt.team_id = $5 AND $2::timestamptz IS NOT NULL AND ",
    filters!("tt"),
    " AND ($7::int8 IS NULL OR (tt.queue_key, tt.thread_id) > ($7, $8::uuid)) \
     ORDER BY tt.queue_key, tt.thread_id LIMIT $9) ",
    summary_select!("page JOIN threads t ON t.thread_id = page.thread_id"),
    " ORDER BY page.queue_key, t.thread_id"
);
const PAGE_BY_NAME: &str = page!(visible_by_name!());
const CAN_SEE_PATIENT: &str = can_see!(visible_patient!());
const CAN_SEE_CARER: &str = can_see!(visible_carer!());
const CAN_SEE_PROFESSIONAL: &str = can_see!(visible_professional!());

const SUMMARIES: &str = concat!(summary_select!("threads t"), " WHERE t.thread_id = ANY($2)");
const TEAM_NAMES: &str = "SELECT team_id, name FROM teams WHERE team_id = ANY($1)";
const PEOPLE: &str = "SELECT person_id, name, role_label, kind, date_of_birth, hospital_number, \
     nhs_number FROM people WHERE person_id = ANY($1)";

const TEAM: &str = "SELECT name FROM teams WHERE team_id = $1";
const IS_MEMBER: &str =
    "SELECT EXISTS (SELECT 1 FROM team_members WHERE team_id = $1 AND person_id = $2)";
/// A team's counts: unassigned, assigned, archived (from the tallies the
/// projection keeps, V12: the nil UUID is "unassigned").
const TEAM_COUNTS: &str = "SELECT \
     coalesce(sum(threads) FILTER (WHERE NOT archived AND assignee = '00000000-0000-0000-0000-000000000000'), 0)::int8, \
     coalesce(sum(threads) FILTER (WHERE NOT archived AND assignee <> '00000000-0000-0000-0000-000000000000'), 0)::int8, \
     coalesce(sum(threads) FILTER (WHERE archived), 0)::int8 \
     FROM team_tallies WHERE team_id = $1";
/// The team's members away at `$2`, and their deputies.
const TEAM_AWAY: &str = "SELECT m.person_id, a.ends_at, a.deputy_id FROM team_members m \
     JOIN LATERAL (SELECT ends_at, deputy_id FROM absences \
       WHERE person_id = m.person_id AND NOT ended AND starts_at <= $2 AND ends_at > $2 \
       ORDER BY ends_at DESC LIMIT 1) a ON true \
     WHERE m.team_id = $1 ORDER BY a.ends_at, m.person_id";
/// Who is helping whom: each assignee's threads in the team, not archived.
const TEAM_HELPING: &str = "SELECT assignee, threads FROM team_tallies \
     WHERE team_id = $1 AND NOT archived AND assignee <> '00000000-0000-0000-0000-000000000000' \
     ORDER BY threads DESC, assignee";

/// A page of a thread's messages: the newest `$3` before seq `$2`, oldest
/// first.
const MESSAGES: &str = "SELECT message_id, seq, author_id, body, posted_at, sender_label FROM ( \
     SELECT * FROM messages WHERE thread_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3) m \
     ORDER BY seq";

/// The files of the same page of messages, in the order sent.
const MESSAGE_FILES: &str = "SELECT seq, digest, file_name, media_type, size FROM message_files \
     WHERE thread_id = $1 AND seq IN ( \
       SELECT seq FROM messages WHERE thread_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3) \
     ORDER BY seq, ord";

/// A file on a thread's messages, and the record it is in.
const THREAD_FILE: &str = "SELECT f.file_name, f.media_type, f.size, t.patient_id FROM message_files f \
     JOIN threads t ON t.thread_id = f.thread_id \
     WHERE f.thread_id = $1 AND f.digest = $2 ORDER BY f.seq, f.ord LIMIT 1";

/// The newest 200 staff notes of a thread, oldest first, numbered from 1.
const STAFF_NOTES: &str = "SELECT note_id, n, author_id, body, posted_at FROM ( \
     SELECT note_id, author_id, body, posted_at, position, \
       row_number() OVER (ORDER BY position)::int4 AS n \
     FROM staff_notes WHERE thread_id = $1) s ORDER BY position DESC LIMIT 200";

/// Messages per `GetThread` answer, unless asked otherwise; and the most.
pub const THREAD_PAGE: u32 = 50;
pub const THREAD_PAGE_MAX: u32 = 200;

/// Which messages of a thread an answer shows.
#[derive(Clone, Copy, Debug)]
pub struct MessagePage {
    pub size: u32,
    /// Only those before this seq; `None`: the newest.
    pub before: Option<u32>,
}
/// A carer still on the thread whose consent has expired (no event says
/// so) is shown as having left when it expired. The staff side only to
/// staff (`$2`).
const PARTICIPANT_HISTORY: &str = "SELECT tp.person_id, tp.reason, tp.via_team, \
     tp.active AND c.carer_id IS NULL, tp.joined_at, coalesce(tp.left_at, c.expires_at), tp.staff_side, tp.deputy_for \
     FROM thread_participants tp JOIN threads t ON t.thread_id = tp.thread_id \
     LEFT JOIN consents c ON tp.kind = 'carer' AND tp.active AND c.patient_id = t.patient_id \
       AND c.carer_id = tp.person_id AND c.expires_at <= now() \
     WHERE tp.thread_id = $1 AND (NOT tp.staff_side OR $2) ORDER BY tp.joined_at, tp.person_id";
const ASSIGNMENT_HISTORY: &str =
    "SELECT assignee, by_id, at FROM assignments WHERE thread_id = $1 ORDER BY position";
/// Reads by people on the staff side only to staff (`$2`).
const READ_RECEIPTS: &str = "SELECT r.person_id, m.message_id, r.seq, r.read_at FROM read_marks r \
     JOIN messages m ON m.thread_id = r.thread_id AND m.seq = r.seq \
     WHERE r.thread_id = $1 AND ($2 OR NOT EXISTS (SELECT 1 FROM thread_participants sp \
       WHERE sp.thread_id = r.thread_id AND sp.person_id = r.person_id AND sp.staff_side)) \
     ORDER BY r.seq DESC, r.person_id";

const PATIENT_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM people WHERE person_id = $1 AND kind = 'patient')";
const CARER_CONSENT: &str = "SELECT EXISTS (SELECT 1 FROM consents WHERE patient_id = $1 AND carer_id = $2 \
     AND (expires_at IS NULL OR expires_at > $3))";
const STAFF_OF_RECORD: &str = "SELECT EXISTS ( \
     SELECT 1 FROM team_members m JOIN patient_teams pt ON pt.team_id = m.team_id \
       WHERE m.person_id = $2 AND pt.patient_id = $1 \
     UNION ALL SELECT 1 FROM team_members m JOIN grants g ON g.team_id = m.team_id \
       WHERE m.person_id = $2 AND g.patient_id = $1 AND g.revoked_at IS NULL AND g.expires_at > $3)";
const CARE_TEAMS: &str = "SELECT t.team_id, t.name, t.description, t.auto_cc, t.default_contact \
     FROM patient_teams pt JOIN teams t ON t.team_id = pt.team_id \
     WHERE pt.patient_id = $1 AND (t.auto_cc OR t.default_contact IS NOT NULL) ORDER BY t.name, t.team_id";
/// Teams outside the record's own that its patient and carers may address:
/// open to every patient, or holding a grant to the record in force.
const OTHER_TEAMS: &str = "SELECT t.team_id, t.name, t.description, t.auto_cc, t.default_contact FROM teams t \
     WHERE (t.auto_cc OR t.default_contact IS NOT NULL) \
       AND NOT EXISTS (SELECT 1 FROM patient_teams pt WHERE pt.patient_id = $1 AND pt.team_id = t.team_id) \
       AND (t.open_to_patients OR EXISTS (SELECT 1 FROM grants g WHERE g.patient_id = $1 AND g.team_id = t.team_id \
            AND g.revoked_at IS NULL AND g.expires_at > $2)) \
     ORDER BY t.name, t.team_id";
/// The contactable members of the record's teams without automatic CC,
/// each addressable alone: not someone contactable in any team with
/// automatic CC (the command service refuses them alone: they are reached
/// through that team), whatever that team has to do with the patient.
/// Absent now (at `$2`): until when, and who stands in (their deputy, else
/// the team's default contact).
const CONTACTABLE_STAFF: &str = "SELECT m.person_id, t.team_id, t.name, t.default_contact IS NOT DISTINCT FROM m.person_id, \
       a.ends_at, CASE WHEN a.deputy_id IS NOT NULL THEN a.deputy_id \
         WHEN t.default_contact <> m.person_id THEN t.default_contact END \
     FROM patient_teams pt JOIN teams t ON t.team_id = pt.team_id \
     JOIN team_members m ON m.team_id = t.team_id \
     LEFT JOIN LATERAL (SELECT ends_at, deputy_id FROM absences \
       WHERE person_id = m.person_id AND NOT ended AND starts_at <= $2 AND ends_at > $2 \
       ORDER BY ends_at DESC LIMIT 1) a ON true \
     WHERE pt.patient_id = $1 AND NOT t.auto_cc AND m.contactable \
       AND NOT EXISTS (SELECT 1 FROM team_members a JOIN teams at ON at.team_id = a.team_id \
         WHERE a.person_id = m.person_id AND a.contactable AND at.auto_cc) \
     ORDER BY t.name, m.person_id";
const CARERS_WITH_CONSENT: &str = "SELECT carer_id, relationship FROM consents \
     WHERE patient_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY carer_id";

const NOT_READ_BY_PATIENT: &str = "SELECT t.thread_id, t.last_staff_at, (p.email_verified AND p.email <> '') \
     FROM thread_teams tt JOIN threads t ON t.thread_id = tt.thread_id \
     LEFT JOIN people p ON p.person_id = t.patient_id \
     LEFT JOIN read_marks rm ON rm.thread_id = t.thread_id AND rm.person_id = t.patient_id \
     WHERE tt.team_id = $1 AND t.status <> 'archived' AND t.last_staff_seq > coalesce(rm.seq, 0) \
     AND t.last_staff_at <= $2 ORDER BY t.last_staff_at, t.thread_id LIMIT 500";

/// The authenticated caller of a query.
#[derive(Clone, Copy, Debug)]
pub struct Viewer {
    pub id: Uuid,
    pub role: Role,
}

/// What a list may be narrowed to.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub status: &'static str,
    pub assignment: &'static str,
    pub team: Option<Uuid>,
    /// A lowercase LIKE pattern, already escaped and ending in `%`.
    pub name_pattern: Option<String>,
    /// Only threads a professional is on in person.
    pub on_by_name: bool,
    /// Only threads in this patient's record.
    pub patient: Option<Uuid>,
    /// Where the previous page ended: its last row's key (the microseconds
    /// of its last activity, or longest-waiting first its queue key) and id.
    pub cursor: Option<(i64, Uuid)>,
    pub page_size: i64,
    /// A team inbox longest-waiting first (see V15), not newest first.
    pub longest_waiting: bool,
}

fn ts(t: SystemTime) -> prost_types::Timestamp {
    proto::time::from_system(t)
}

fn kind(kind: &str) -> pb::PersonKind {
    proto::contract::person_kind(kind)
}

fn status(status: &str) -> pb::ThreadStatus {
    match status {
        "open" => pb::ThreadStatus::Open,
        "complete" => pb::ThreadStatus::Complete,
        "archived" => pb::ThreadStatus::Archived,
        _ => pb::ThreadStatus::Unspecified,
    }
}

/// People by id, for naming everyone in an answer.
/// The names of the teams `ids`, in one lookup.
async fn team_names(
    client: &Client,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, String>, Error> {
    let mut ids: Vec<Uuid> = ids.into_iter().collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(rows(client, TEAM_NAMES, &[&ids])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

async fn people(
    client: &Client,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, pb::Person>, Error> {
    let mut ids: Vec<Uuid> = ids.into_iter().collect();
    ids.sort();
    ids.dedup();
    let mut out = HashMap::new();
    for row in rows(client, PEOPLE, &[&ids]).await? {
        let id: Uuid = row.get(0);
        let name: String = row.get(1);
        let label: String = row.get(2);
        let display = if label.is_empty() {
            name.clone()
        } else {
            format!("{name} ({label})")
        };
        let kind = kind(row.get::<_, &str>(3));
        // Whoever is shown a patient may tell them apart from another of
        // the same name: staff of the record, the patient, their carers.
        let identity = (kind == pb::PersonKind::Patient).then(|| pb::PatientIdentity {
            date_of_birth: row.get(4),
            hospital_number: row.get(5),
            nhs_number: row.get(6),
        });
        out.insert(
            id,
            pb::Person {
                person_id: id.to_string(),
                name,
                role_label: label,
                kind: kind as i32,
                display,
                identity,
            },
        );
    }
    Ok(out)
}

fn person(people: &HashMap<Uuid, pb::Person>, id: Uuid) -> pb::Person {
    people.get(&id).cloned().unwrap_or_else(|| pb::Person {
        person_id: id.to_string(),
        name: String::new(),
        role_label: String::new(),
        kind: pb::PersonKind::Unspecified as i32,
        display: id.to_string(),
        identity: None,
    })
}

/// A row of [`summary_select!`], by name: the one place that knows its
/// columns' order.
struct SummaryRow {
    thread_id: Uuid,
    patient_id: Uuid,
    subject: String,
    status: String,
    assignee: Option<Uuid>,
    last_activity_at: SystemTime,
    message_count: i32,
    /// The viewer's read mark: how many messages they have read.
    read: i32,
    participant_count: i32,
    team_ids: Vec<Uuid>,
    /// The first ten participants shown.
    participants: Vec<Uuid>,
    staff_side_team_ids: Vec<Uuid>,
    /// Staff only: since when the patient has waited for an answer.
    waiting_since: Option<SystemTime>,
    /// The start of the newest message.
    preview: Option<String>,
}

impl SummaryRow {
    fn from(row: &Row) -> Self {
        Self {
            thread_id: row.get(0),
            patient_id: row.get(1),
            subject: row.get(2),
            status: row.get(3),
            assignee: row.get(4),
            last_activity_at: row.get(5),
            message_count: row.get(6),
            read: row.get(7),
            participant_count: row.get(8),
            team_ids: row.get(9),
            participants: row.get(10),
            staff_side_team_ids: row.get(11),
            waiting_since: row.get(12),
            preview: row.get(13),
        }
    }

    /// The people it names: patient, assignee, participants.
    fn people(&self) -> impl Iterator<Item = Uuid> + '_ {
        std::iter::once(self.patient_id)
            .chain(self.assignee)
            .chain(self.participants.iter().copied())
    }

    /// A list's view of the thread, with the people it names.
    fn summary(
        &self,
        named: &HashMap<Uuid, pb::Person>,
        teams: &HashMap<Uuid, String>,
    ) -> pb::ThreadSummary {
        let ids = |ids: &[Uuid]| ids.iter().map(Uuid::to_string).collect();
        let patient = named.get(&self.patient_id);
        pb::ThreadSummary {
            thread_id: self.thread_id.to_string(),
            patient_id: self.patient_id.to_string(),
            patient_name: patient.map(|p| p.name.clone()).unwrap_or_default(),
            patient_identity: patient.and_then(|p| p.identity.clone()),
            subject: self.subject.clone(),
            status: status(&self.status) as i32,
            assignee: self.assignee.map(|a| person(named, a)),
            participants: self
                .participants
                .iter()
                .map(|p| person(named, *p))
                .collect(),
            team_ids: ids(&self.team_ids),
            team_names: self
                .team_ids
                .iter()
                .map(|t| teams.get(t).cloned().unwrap_or_default())
                .collect(),
            staff_side_team_ids: ids(&self.staff_side_team_ids),
            last_activity_at: Some(ts(self.last_activity_at)),
            message_count: self.message_count.max(0) as u32,
            unread_count: (self.message_count - self.read).max(0) as u32,
            participant_count: self.participant_count.max(0) as u32,
            waiting_since: self.waiting_since.map(ts),
            preview: self.preview.clone().unwrap_or_default(),
        }
    }
}

/// What rows of [`summary_select!`] show: each thread in its record.
fn shown(rows: &[SummaryRow]) -> Shown {
    let mut shown = Shown::default();
    for row in rows {
        shown.thread(&row.patient_id.to_string(), &row.thread_id.to_string());
    }
    shown
}

/// Summaries of rows of [`summary_select!`], in their order, with everyone
/// they name and `others` named in one lookup (also answered), while
/// `record` records what they show.
async fn named_summaries(
    client: &Client,
    rows: &[Row],
    others: Vec<Uuid>,
    record: Recorder<'_>,
) -> Result<(Vec<pb::ThreadSummary>, HashMap<Uuid, pb::Person>), Error> {
    let rows: Vec<SummaryRow> = rows.iter().map(SummaryRow::from).collect();
    let (named, teams, ()) = futures::try_join!(
        people(
            client,
            rows.iter().flat_map(SummaryRow::people).chain(others)
        ),
        team_names(client, rows.iter().flat_map(|r| r.team_ids.iter().copied())),
        record(shown(&rows)),
    )?;
    Ok((
        rows.iter().map(|row| row.summary(&named, &teams)).collect(),
        named,
    ))
}

/// Summaries of `ids`, in that order, with the viewer's unread counts.
async fn summaries(
    client: &Client,
    viewer: Uuid,
    ids: &[Uuid],
    record: Recorder<'_>,
) -> Result<Vec<pb::ThreadSummary>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = ids.to_vec();
    let found = rows(client, SUMMARIES, &[&viewer, &ids]).await?;
    let mut by_id: HashMap<String, pb::ThreadSummary> =
        named_summaries(client, &found, Vec::new(), record)
            .await?
            .0
            .into_iter()
            .map(|s| (s.thread_id.clone(), s))
            .collect();
    Ok(ids
        .iter()
        .filter_map(|id| by_id.remove(&id.to_string()))
        .collect())
}

/// A thread's place in a team inbox longest-waiting first: the `queue_key`
/// of V15 (`inbox_queue_key`), computed the same way.
fn queue_key(waiting_since: Option<SystemTime>, last_activity_at: SystemTime) -> i64 {
    match waiting_since {
        Some(waiting) => proto::time::system_micros(waiting),
        None => (1_i64 << 62) - proto::time::system_micros(last_activity_at),
    }
}

fn cursor_of(rows: &[(Uuid, i64)], page_size: i64) -> String {
    match rows.last() {
        Some((id, key)) if rows.len() as i64 == page_size => format!("{key}.{id}"),
        _ => String::new(),
    }
}

/// Reads a cursor made by [`cursor_of`].
pub fn parse_cursor(cursor: &str) -> Option<(i64, Uuid)> {
    let (key, id) = cursor.split_once('.')?;
    let key: i64 = key.parse().ok()?;
    let id = Uuid::parse_str(id).ok()?;
    Some((key, id))
}

/// One page of a list: rows of [`summary_select!`].
async fn page(
    client: &Client,
    sql: &str,
    viewer: Uuid,
    now: SystemTime,
    filter: &ListFilter,
) -> Result<Vec<Row>, Error> {
    let (cursor_at, cursor_id) = filter.cursor.unzip();
    rows(
        client,
        sql,
        &[
            &viewer,
            &now,
            &filter.status,
            &filter.assignment,
            &filter.team,
            &filter.name_pattern,
            &cursor_at,
            &cursor_id,
            &filter.page_size,
            &filter.patient,
        ],
    )
    .await
}

/// The cursor after a page of rows of [`summary_select!`].
fn next_cursor(rows: &[Row], filter: &ListFilter) -> String {
    let keys: Vec<(Uuid, i64)> = rows
        .iter()
        .map(SummaryRow::from)
        .map(|r| {
            let key = if filter.longest_waiting {
                queue_key(r.waiting_since, r.last_activity_at)
            } else {
                proto::time::system_micros(r.last_activity_at)
            };
            (r.thread_id, key)
        })
        .collect();
    cursor_of(&keys, filter.page_size)
}

/// The viewer's own inbox.
pub async fn my_inbox(
    client: &Client,
    viewer: Viewer,
    now: SystemTime,
    filter: &ListFilter,
    record: Recorder<'_>,
) -> Result<(Vec<pb::ThreadSummary>, String), Error> {
    // Archiving is the team's housekeeping: it never moves a thread in
    // the patient's or a carer's list, which holds every conversation of
    // theirs, newest first (an unread reply is never hidden from them).
    // They have nothing "archived".
    let patient_side = matches!(viewer.role, Role::Patient | Role::Carer);
    if patient_side && filter.status == "archived" {
        return Ok((Vec::new(), String::new()));
    }
    let patient_side_filter;
    let filter = if patient_side {
        patient_side_filter = ListFilter {
            status: "all",
            ..filter.clone()
        };
        &patient_side_filter
    } else {
        filter
    };
    let sql = match viewer.role {
        Role::Patient => PAGE_PATIENT,
        Role::Carer => PAGE_CARER,
        Role::Professional if filter.on_by_name => PAGE_BY_NAME,
        Role::Professional => PAGE_PROFESSIONAL,
        // Admins, operators and auditors are on no thread.
        _ => return Ok((Vec::new(), String::new())),
    };
    let found = page(client, sql, viewer.id, now, filter).await?;
    let (threads, _) = named_summaries(client, &found, Vec::new(), record).await?;
    Ok((threads, next_cursor(&found, filter)))
}

/// Refuses anyone but a member of the team, which must exist.
pub async fn require_member(
    client: &Client,
    viewer: Viewer,
    team: TeamId,
) -> Result<String, Error> {
    let team = team.uuid();
    let (by_id, by_member): ([&Param; 1], [&Param; 2]) = ([&team], [&team, &viewer.id]);
    let (name, member) = futures::try_join!(
        optional(client, TEAM, &by_id),
        one(client, IS_MEMBER, &by_member),
    )?;
    let name: String = name
        .map(|r| r.get(0))
        .ok_or_else(|| Error::NotFound(format!("team {team} does not exist")))?;
    let member: bool = member.get(0);
    if viewer.role != Role::Professional || !member {
        return Err(Error::PermissionDenied(format!(
            "only members of team {name} see its inbox"
        )));
    }
    Ok(name)
}

/// A team's inbox, counts, and who is helping whom.
pub async fn team_inbox(
    client: &Client,
    viewer: Viewer,
    now: SystemTime,
    team: TeamId,
    filter: &ListFilter,
    record: Recorder<'_>,
) -> Result<pb::TeamInboxReply, Error> {
    require_member(client, viewer, team).await?;
    let team = team.uuid();
    let filter = ListFilter {
        team: Some(team),
        ..filter.clone()
    };
    let this: [&Param; 1] = [&team];
    let this_now: [&Param; 2] = [&team, &now];
    let (found, counts, helping, away) = futures::try_join!(
        page(
            client,
            if filter.longest_waiting {
                PAGE_TEAM_WAITING
            } else {
                PAGE_TEAM
            },
            viewer.id,
            now,
            &filter
        ),
        one(client, TEAM_COUNTS, &this),
        rows(client, TEAM_HELPING, &this),
        rows(client, TEAM_AWAY, &this_now),
    )?;
    let (threads, named) = named_summaries(
        client,
        &found,
        helping
            .iter()
            .map(|r| r.get::<_, Uuid>(0))
            .chain(away.iter().map(|r| r.get::<_, Uuid>(0)))
            .chain(away.iter().filter_map(|r| r.get::<_, Option<Uuid>>(2)))
            .collect(),
        record,
    )
    .await?;
    let next_cursor = next_cursor(&found, &filter);
    Ok(pb::TeamInboxReply {
        page: Some(pb::ThreadPage {
            threads,
            next_cursor,
            position: 0,
        }),
        counts: Some(pb::TeamCounts {
            unassigned: counts.get::<_, i64>(0) as u32,
            assigned: counts.get::<_, i64>(1) as u32,
            archived: counts.get::<_, i64>(2) as u32,
        }),
        helping: helping
            .iter()
            .map(|r| pb::Helping {
                assignee: Some(person(&named, r.get(0))),
                threads: r.get::<_, i64>(1) as u32,
            })
            .collect(),
        away: away
            .iter()
            .map(|r| pb::Away {
                person: Some(person(&named, r.get(0))),
                until: Some(ts(r.get(1))),
                deputy: r.get::<_, Option<Uuid>>(2).map(|d| person(&named, d)),
            })
            .collect(),
    })
}

/// For a carer who may not see thread `$2` (any more): the patient's name
/// and when their access ended, when they were on it and hold no consent
/// in force for the record now (revoked: they left the thread then;
/// expired: at its end). Nothing for anyone else.
const CARER_ACCESS_ENDED: &str = "SELECT p.name, coalesce(c.expires_at, tp.left_at, now()) \
     FROM thread_participants tp JOIN threads t ON t.thread_id = tp.thread_id \
     JOIN people p ON p.person_id = t.patient_id \
     LEFT JOIN consents c ON c.patient_id = t.patient_id AND c.carer_id = tp.person_id \
     WHERE tp.thread_id = $2 AND tp.person_id = $1 AND tp.kind = 'carer' \
       AND (c.carer_id IS NULL OR c.expires_at <= $3)";

/// A carer's thread they may no longer see because their consent ended:
/// said as such (whose messages, since when), not as "not found".
async fn carer_access_ended(
    client: &Client,
    viewer: Viewer,
    now: SystemTime,
    thread: Uuid,
) -> Result<Option<Error>, Error> {
    if viewer.role != Role::Carer {
        return Ok(None);
    }
    let Some(row) = optional(client, CARER_ACCESS_ENDED, &[&viewer.id, &thread, &now]).await?
    else {
        return Ok(None);
    };
    let name: String = row.get(0);
    let ended: SystemTime = row.get(1);
    let day = time::OffsetDateTime::from(ended);
    Ok(Some(Error::Refused {
        code: tonic::Code::PermissionDenied,
        reason: service_kit::reason::ACCESS_ENDED,
        message: format!(
            "Your access to {name}'s messages ended on {} {} {}: {name} no longer shares them with you. Ask {name} if you think this is wrong.",
            day.day(),
            day.month(),
            day.year()
        ),
    }))
}

/// A file sent on a thread the viewer sees (its description, and the
/// record it is in), or NOT_FOUND: the thread unseen, or no message of it
/// carries the file.
pub async fn thread_file(
    client: &Client,
    viewer: Viewer,
    now: SystemTime,
    thread: ThreadId,
    digest: &str,
) -> Result<(pb::Attachment, Uuid), Error> {
    let not_found = || Error::NotFound(format!("no such file on thread {thread}"));
    if !can_see(client, viewer, now, thread).await? {
        if let Some(ended) = carer_access_ended(client, viewer, now, thread.uuid()).await? {
            return Err(ended);
        }
        return Err(not_found());
    }
    let thread_id = thread.uuid();
    let digest_text = digest.to_string();
    let found = rows(client, THREAD_FILE, &[&thread_id, &digest_text]).await?;
    let row = found.first().ok_or_else(not_found)?;
    Ok((
        pb::Attachment {
            digest: digest.to_string(),
            file_name: row.get(0),
            media_type: row.get(1),
            size: u64::try_from(row.get::<_, i64>(2)).unwrap_or_default(),
        },
        row.get(3),
    ))
}

/// Whether the viewer may see a thread.
pub async fn can_see(
    client: &Client,
    viewer: Viewer,
    now: SystemTime,
    thread: ThreadId,
) -> Result<bool, Error> {
    let thread = thread.uuid();
    let sql = match viewer.role {
        Role::Patient => CAN_SEE_PATIENT,
        Role::Carer => CAN_SEE_CARER,
        Role::Professional => CAN_SEE_PROFESSIONAL,
        _ => return Ok(false),
    };
    Ok(one(client, sql, &[&viewer.id, &now, &thread]).await?.get(0))
}

/// One thread in full, or NOT_FOUND when the viewer may not see it. The
/// check and the lookups go to the server together (one round trip); the
/// lookups' rows are dropped unread when the check fails.
pub async fn thread(
    client: &Client,
    viewer: Viewer,
    now: SystemTime,
    thread: ThreadId,
    page: MessagePage,
    record: Recorder<'_>,
) -> Result<pb::ThreadDetail, Error> {
    let thread = thread.uuid();
    let this: [&Param; 1] = [&thread];
    let before = page
        .before
        .map_or(i32::MAX, |b| b.min(i32::MAX as u32) as i32);
    let limit = i64::from(page.size);
    let page_params: [&Param; 3] = [&thread, &before, &limit];
    let ids = vec![thread];
    let summary: [&Param; 2] = [&viewer.id, &ids];
    // Only staff are shown staff notes and the staff side.
    let staff = viewer.role == Role::Professional;
    let this_side: [&Param; 2] = [&thread, &staff];
    let notes = async {
        if staff {
            rows(client, STAFF_NOTES, &this).await
        } else {
            Ok(Vec::new())
        }
    };
    let (visible, found, messages, files, participants, assignments, receipts, mut notes) = futures::try_join!(
        can_see(client, viewer, now, thread.into()),
        rows(client, SUMMARIES, &summary),
        rows(client, MESSAGES, &page_params),
        rows(client, MESSAGE_FILES, &page_params),
        rows(client, PARTICIPANT_HISTORY, &this_side),
        rows(client, ASSIGNMENT_HISTORY, &this),
        rows(client, READ_RECEIPTS, &this_side),
        notes,
    )?;
    notes.reverse();
    if !visible || found.is_empty() {
        if let Some(ended) = carer_access_ended(client, viewer, now, thread).await? {
            return Err(ended);
        }
        return Err(Error::NotFound(format!("thread {thread} does not exist")));
    }
    let messages: Vec<MessageRow> = messages.iter().map(MessageRow::from).collect();
    let notes: Vec<MessageRow> = notes.iter().map(MessageRow::from).collect();
    let participants: Vec<ParticipantRow> = participants.iter().map(ParticipantRow::from).collect();
    let assignments: Vec<AssignmentRow> = assignments.iter().map(AssignmentRow::from).collect();
    let receipts: Vec<ReceiptRow> = receipts.iter().map(ReceiptRow::from).collect();
    let (mut summary, named) = named_summaries(
        client,
        &found,
        messages
            .iter()
            .chain(&notes)
            .map(|m| m.author_id)
            .chain(participants.iter().map(|p| p.person_id))
            .chain(participants.iter().filter_map(|p| p.deputy_for))
            .chain(
                assignments
                    .iter()
                    .flat_map(|a| a.assignee.into_iter().chain([a.by_id])),
            )
            .chain(receipts.iter().map(|r| r.person_id))
            .collect(),
        record,
    )
    .await?;
    let summary = summary
        .pop()
        .ok_or_else(|| Error::NotFound(format!("thread {thread} does not exist")))?;
    let earlier_messages = messages.first().map_or(0, |m| (m.seq - 1).max(0) as u32);
    Ok(pb::ThreadDetail {
        earlier_messages,
        summary: Some(summary),
        messages: messages
            .iter()
            .map(|m| {
                let mut message = m.message(&named);
                message.attachments = files
                    .iter()
                    .filter(|f| f.get::<_, i32>(0) == m.seq)
                    .map(|f| pb::Attachment {
                        digest: f.get(1),
                        file_name: f.get(2),
                        media_type: f.get(3),
                        size: u64::try_from(f.get::<_, i64>(4)).unwrap_or_default(),
                    })
                    .collect();
                message
            })
            .collect(),
        staff_notes: notes.iter().map(|m| m.message(&named)).collect(),
        participants: participants.iter().map(|p| p.history(&named)).collect(),
        assignments: assignments
            .iter()
            .map(|a| pb::Assignment {
                assignee: a.assignee.map(|id| person(&named, id)),
                by: Some(person(&named, a.by_id)),
                at: Some(ts(a.at)),
            })
            .collect(),
        read_receipts: receipts
            .iter()
            .map(|r| pb::ReadReceipt {
                reader: Some(person(&named, r.person_id)),
                message_id: r.message_id.to_string(),
                seq: r.seq as u32,
                read_at: Some(ts(r.read_at)),
            })
            .collect(),
        position: 0,
    })
}

/// A row of [`MESSAGES`] or [`STAFF_NOTES`] (a note's number is its `seq`).
struct MessageRow {
    message_id: Uuid,
    seq: i32,
    author_id: Uuid,
    body: String,
    posted_at: SystemTime,
    /// A notice's sender, "Renal Unit (via Appointments)" (messages only).
    sender_label: Option<String>,
}

impl MessageRow {
    fn from(row: &Row) -> Self {
        Self {
            message_id: row.get(0),
            seq: row.get(1),
            author_id: row.get(2),
            body: row.get(3),
            posted_at: row.get(4),
            sender_label: row.try_get(5).ok().flatten(),
        }
    }

    fn message(&self, named: &HashMap<Uuid, pb::Person>) -> pb::Message {
        let author = match &self.sender_label {
            // A hospital system is no person: shown as the team it spoke for.
            Some(label) => pb::Person {
                person_id: self.author_id.to_string(),
                name: label.clone(),
                role_label: String::new(),
                kind: pb::PersonKind::System as i32,
                display: label.clone(),
                identity: None,
            },
            None => person(named, self.author_id),
        };
        pb::Message {
            attachments: vec![],
            message_id: self.message_id.to_string(),
            seq: self.seq as u32,
            author: Some(author),
            body: self.body.clone(),
            posted_at: Some(ts(self.posted_at)),
        }
    }
}

/// A row of [`PARTICIPANT_HISTORY`].
struct ParticipantRow {
    person_id: Uuid,
    reason: String,
    via_team: Option<Uuid>,
    /// On the thread now (a carer whose consent has run out is not).
    active: bool,
    joined_at: SystemTime,
    /// When they left, or their consent ran out.
    left_at: Option<SystemTime>,
    staff_side: bool,
    /// A deputy's: the professional away whom they stand in for.
    deputy_for: Option<Uuid>,
}

impl ParticipantRow {
    fn from(row: &Row) -> Self {
        Self {
            person_id: row.get(0),
            reason: row.get(1),
            via_team: row.get(2),
            active: row.get(3),
            joined_at: row.get(4),
            left_at: row.get(5),
            staff_side: row.get(6),
            deputy_for: row.get(7),
        }
    }

    fn history(&self, named: &HashMap<Uuid, pb::Person>) -> pb::ParticipantHistory {
        pb::ParticipantHistory {
            person: Some(person(named, self.person_id)),
            reason: self.reason.clone(),
            via_team_id: self.via_team.map(|t| t.to_string()).unwrap_or_default(),
            active: self.active,
            joined_at: Some(ts(self.joined_at)),
            left_at: self.left_at.map(ts),
            staff_side: self.staff_side,
            deputy_for: self.deputy_for.map(|d| person(named, d)),
        }
    }
}

/// A row of [`ASSIGNMENT_HISTORY`]: assigned (or unassigned: no assignee)
/// by whom, when.
struct AssignmentRow {
    assignee: Option<Uuid>,
    by_id: Uuid,
    at: SystemTime,
}

impl AssignmentRow {
    fn from(row: &Row) -> Self {
        Self {
            assignee: row.get(0),
            by_id: row.get(1),
            at: row.get(2),
        }
    }
}

/// A row of [`READ_RECEIPTS`]: who has read up to which message, when.
struct ReceiptRow {
    person_id: Uuid,
    message_id: Uuid,
    seq: i32,
    read_at: SystemTime,
}

impl ReceiptRow {
    fn from(row: &Row) -> Self {
        Self {
            person_id: row.get(0),
            message_id: row.get(1),
            seq: row.get(2),
            read_at: row.get(3),
        }
    }
}

/// Whom the viewer may address in a patient's record: the patient, a carer
/// holding consent, or staff of the record's teams (or of a team holding a
/// grant). Anyone else: NOT_FOUND, as if the record did not exist.
pub async fn who_can_i_message(
    client: &Client,
    viewer: Viewer,
    now: SystemTime,
    patient: PatientId,
) -> Result<pb::WhoCanIMessageReply, Error> {
    let patient = patient.uuid();
    let missing = || Error::NotFound(format!("patient record {patient} does not exist"));
    if !one(client, PATIENT_EXISTS, &[&patient])
        .await?
        .get::<_, bool>(0)
    {
        return Err(missing());
    }
    let allowed = match viewer.role {
        Role::Patient => viewer.id == patient,
        Role::Carer => one(client, CARER_CONSENT, &[&patient, &viewer.id, &now])
            .await?
            .get(0),
        Role::Professional => one(client, STAFF_OF_RECORD, &[&patient, &viewer.id, &now])
            .await?
            .get(0),
        _ => false,
    };
    if !allowed {
        return Err(missing());
    }
    let record: [&Param; 1] = [&patient];
    let record_now: [&Param; 2] = [&patient, &now];
    let (teams, others, staff, carers) = futures::try_join!(
        rows(client, CARE_TEAMS, &record),
        rows(client, OTHER_TEAMS, &record_now),
        rows(client, CONTACTABLE_STAFF, &record_now),
        rows(client, CARERS_WITH_CONSENT, &record_now),
    )?;
    let teams: Vec<ContactRow> = teams.iter().map(ContactRow::from).collect();
    let others: Vec<ContactRow> = others.iter().map(ContactRow::from).collect();
    let staff: Vec<StaffRow> = staff.iter().map(StaffRow::from).collect();
    let carers: Vec<CarerRow> = carers.iter().map(CarerRow::from).collect();
    let named = people(
        client,
        teams
            .iter()
            .chain(&others)
            .filter_map(|t| t.default_contact)
            .chain(staff.iter().map(|p| p.person_id))
            .chain(staff.iter().filter_map(|p| p.stand_in))
            .chain(carers.iter().map(|c| c.person_id))
            .chain([patient]),
    )
    .await?;
    Ok(pb::WhoCanIMessageReply {
        teams: teams.iter().map(|t| t.contact(&named)).collect(),
        other_teams: others.iter().map(|t| t.contact(&named)).collect(),
        professionals: staff
            .iter()
            .map(|p| pb::ProfessionalContact {
                person: Some(person(&named, p.person_id)),
                team_id: p.team_id.to_string(),
                team_name: p.team_name.clone(),
                default_contact: p.default_contact,
                away_until: p.away_until.map(ts),
                stand_in: p.away_until.and(p.stand_in).map(|s| person(&named, s)),
            })
            .collect(),
        carers: carers
            .iter()
            .filter(|c| c.person_id != viewer.id)
            .map(|c| pb::CarerContact {
                person: Some(person(&named, c.person_id)),
                relationship: c.relationship.clone(),
            })
            .collect(),
        position: 0,
        patient: Some(person(&named, patient)),
    })
}

/// A row of [`CARE_TEAMS`] or [`OTHER_TEAMS`]: a team one may write to.
struct ContactRow {
    team_id: Uuid,
    name: String,
    description: String,
    /// Every contactable member is copied in automatically.
    auto_cc: bool,
    default_contact: Option<Uuid>,
}

impl ContactRow {
    fn from(row: &Row) -> Self {
        Self {
            team_id: row.get(0),
            name: row.get(1),
            description: row.get(2),
            auto_cc: row.get(3),
            default_contact: row.get(4),
        }
    }

    /// The team as the patient is offered it (a default contact only
    /// where the team is not copied in whole).
    fn contact(&self, named: &HashMap<Uuid, pb::Person>) -> pb::TeamContact {
        pb::TeamContact {
            team_id: self.team_id.to_string(),
            name: self.name.clone(),
            description: self.description.clone(),
            auto_cc: self.auto_cc,
            default_contact: if self.auto_cc {
                None
            } else {
                self.default_contact.map(|d| person(named, d))
            },
        }
    }
}

/// A row of [`CONTACTABLE_STAFF`].
struct StaffRow {
    person_id: Uuid,
    team_id: Uuid,
    team_name: String,
    default_contact: bool,
    away_until: Option<SystemTime>,
    stand_in: Option<Uuid>,
}

impl StaffRow {
    fn from(row: &Row) -> Self {
        Self {
            person_id: row.get(0),
            team_id: row.get(1),
            team_name: row.get(2),
            default_contact: row.get(3),
            away_until: row.get(4),
            stand_in: row.get(5),
        }
    }
}

/// A row of [`CONSENTS_GIVEN`] or [`CONSENTS_HELD`]: the other person,
/// how they are related, until when.
struct ConsentRow {
    person_id: Uuid,
    relationship: String,
    expires_at: Option<SystemTime>,
}

impl ConsentRow {
    fn from(row: &Row) -> Self {
        Self {
            person_id: row.get(0),
            relationship: row.get(1),
            expires_at: row.get(2),
        }
    }
}

/// A row of [`CARERS_WITH_CONSENT`].
struct CarerRow {
    person_id: Uuid,
    relationship: String,
}

impl CarerRow {
    fn from(row: &Row) -> Self {
        Self {
            person_id: row.get(0),
            relationship: row.get(1),
        }
    }
}

/// A team's threads whose latest staff message the patient has not read
/// after `days`.
pub async fn not_read_by_patient(
    client: &Client,
    viewer: Viewer,
    now: SystemTime,
    team: TeamId,
    days: u32,
    record: Recorder<'_>,
) -> Result<pb::NotReadByPatientReply, Error> {
    require_member(client, viewer, team).await?;
    let team = team.uuid();
    let before = now - Duration::from_secs(u64::from(days) * 86_400);
    let rows = rows(client, NOT_READ_BY_PATIENT, &[&team, &before]).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    let mut summaries: HashMap<String, pb::ThreadSummary> =
        summaries(client, viewer.id, &ids, record)
            .await?
            .into_iter()
            .map(|s| (s.thread_id.clone(), s))
            .collect();
    Ok(pb::NotReadByPatientReply {
        threads: rows
            .iter()
            .filter_map(|r| {
                let id = r.get::<_, Uuid>(0).to_string();
                Some(pb::UnreadByPatient {
                    thread: Some(summaries.remove(&id)?),
                    last_staff_message_at: r.get::<_, Option<SystemTime>>(1).map(ts),
                    patient_can_be_emailed: r.get::<_, Option<bool>>(2).unwrap_or(false),
                })
            })
            .collect(),
        position: 0,
    })
}

const ACCOUNT: &str = "SELECT email, email_verified FROM people WHERE person_id = $1";
/// A professional's teams, with each inbox's counts (unassigned, assigned,
/// archived) from its tallies: numbers, no record read.
const MY_TEAMS: &str = "SELECT t.team_id, t.name, m.lead, m.contactable, \
       coalesce(c.unassigned, 0)::int8, coalesce(c.assigned, 0)::int8, coalesce(c.archived, 0)::int8 \
     FROM team_members m JOIN teams t ON t.team_id = m.team_id \
     LEFT JOIN LATERAL (SELECT \
       sum(threads) FILTER (WHERE NOT archived AND assignee = '00000000-0000-0000-0000-000000000000') AS unassigned, \
       sum(threads) FILTER (WHERE NOT archived AND assignee <> '00000000-0000-0000-0000-000000000000') AS assigned, \
       sum(threads) FILTER (WHERE archived) AS archived \
       FROM team_tallies x WHERE x.team_id = t.team_id) c ON true \
     WHERE m.person_id = $1 ORDER BY t.name, t.team_id";
const CONSENTS_GIVEN: &str = "SELECT carer_id, relationship, expires_at FROM consents \
     WHERE patient_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY carer_id";
const CONSENTS_HELD: &str = "SELECT patient_id, relationship, expires_at FROM consents \
     WHERE carer_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY patient_id";
const GRANTS_IN_FORCE: &str = "SELECT g.grant_id, g.team_id, t.name, g.expires_at, g.reason \
     FROM grants g JOIN teams t ON t.team_id = g.team_id \
     WHERE g.patient_id = $1 AND g.revoked_at IS NULL AND g.expires_at > $2 \
     ORDER BY g.expires_at, g.grant_id";
const CARER_BY_EMAIL: &str = "SELECT person_id FROM people \
     WHERE kind = 'carer' AND email <> '' AND lower(email) = lower($1) ORDER BY person_id LIMIT 1";

/// The viewer's own account; for a patient their consents and grants in
/// force, for a carer the patients whose consent they hold. `shown` gets
/// every patient record the answer shows.
pub async fn my_account(
    client: &Client,
    viewer: Viewer,
    now: SystemTime,
    shown: &mut Shown,
) -> Result<pb::MyAccountReply, Error> {
    let Some(row) = optional(client, ACCOUNT, &[&viewer.id]).await? else {
        return Err(Error::NotFound(format!(
            "person {} does not exist",
            viewer.id
        )));
    };
    let id_now: [&Param; 2] = [&viewer.id, &now];
    let id: [&Param; 1] = [&viewer.id];
    let (teams, absences, colleagues) = if viewer.role == Role::Professional {
        futures::try_join!(
            rows(client, MY_TEAMS, &id),
            rows(client, MY_ABSENCES, &id_now),
            rows(client, MY_COLLEAGUES, &id),
        )?
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    let (given, grants, held) = match viewer.role {
        Role::Patient => {
            shown.record(&viewer.id.to_string());
            let (given, grants) = futures::try_join!(
                rows(client, CONSENTS_GIVEN, &id_now),
                rows(client, GRANTS_IN_FORCE, &id_now),
            )?;
            (given, grants, Vec::new())
        }
        Role::Carer => (
            Vec::new(),
            Vec::new(),
            rows(client, CONSENTS_HELD, &id_now).await?,
        ),
        _ => (Vec::new(), Vec::new(), Vec::new()),
    };
    let given: Vec<ConsentRow> = given.iter().map(ConsentRow::from).collect();
    let held: Vec<ConsentRow> = held.iter().map(ConsentRow::from).collect();
    for consent in &held {
        shown.record(&consent.person_id.to_string());
    }
    let named = people(
        client,
        std::iter::once(viewer.id)
            .chain(given.iter().chain(&held).map(|c| c.person_id))
            .chain(absences.iter().filter_map(|r| r.get::<_, Option<Uuid>>(3)))
            .chain(colleagues.iter().map(|r| r.get::<_, Uuid>(0))),
    )
    .await?;
    let consent = |c: &ConsentRow| pb::Consent {
        person: Some(person(&named, c.person_id)),
        relationship: c.relationship.clone(),
        expires_at: c.expires_at.map(ts),
    };
    Ok(pb::MyAccountReply {
        person: Some(person(&named, viewer.id)),
        email: row.get(0),
        email_verified: row.get(1),
        carers: given.iter().map(consent).collect(),
        acting_for: held.iter().map(consent).collect(),
        grants: grants
            .iter()
            .map(|r| pb::RecordGrant {
                grant_id: r.get::<_, Uuid>(0).to_string(),
                team_id: r.get::<_, Uuid>(1).to_string(),
                team_name: r.get(2),
                expires_at: Some(ts(r.get(3))),
                reason: r.get(4),
            })
            .collect(),
        teams: teams
            .iter()
            .map(|r| pb::MyTeam {
                team_id: r.get::<_, Uuid>(0).to_string(),
                name: r.get(1),
                lead: r.get(2),
                contactable: r.get(3),
                counts: Some(pb::TeamCounts {
                    unassigned: r.get::<_, i64>(4) as u32,
                    assigned: r.get::<_, i64>(5) as u32,
                    archived: r.get::<_, i64>(6) as u32,
                }),
            })
            .collect(),
        absences: absences
            .iter()
            .map(|r| pb::MyAbsence {
                absence_id: r.get::<_, Uuid>(0).to_string(),
                from: Some(ts(r.get(1))),
                until: Some(ts(r.get(2))),
                deputy: r.get::<_, Option<Uuid>>(3).map(|d| person(&named, d)),
            })
            .collect(),
        colleagues: colleagues
            .iter()
            .map(|r| person(&named, r.get(0)))
            .collect(),
        position: 0,
    })
}

/// A professional's absences now and to come (`$2`: now).
const MY_ABSENCES: &str = "SELECT absence_id, starts_at, ends_at, deputy_id FROM absences \
     WHERE person_id = $1 AND NOT ended AND ends_at > $2 ORDER BY starts_at, absence_id";
/// The professionals who may stand in for one: those of their teams first,
/// then the rest, by name; not the closed.
const MY_COLLEAGUES: &str = "SELECT p.person_id FROM people p \
     WHERE p.kind = 'professional' AND p.person_id <> $1 \
       AND NOT EXISTS (SELECT 1 FROM deactivated_people d WHERE d.person_id = p.person_id::text) \
     ORDER BY NOT EXISTS (SELECT 1 FROM team_members m JOIN team_members o ON o.team_id = m.team_id \
       WHERE m.person_id = $1 AND o.person_id = p.person_id), lower(p.name), p.person_id LIMIT 500";

/// The carer with this address, for a patient to give consent to.
pub async fn find_carer(client: &Client, viewer: Viewer, email: &str) -> Result<pb::Person, Error> {
    if viewer.role != Role::Patient {
        return Err(Error::PermissionDenied(
            "only a patient looks up a carer to give consent to".into(),
        ));
    }
    let missing = || {
        Error::NotFound(
            "no carer is registered with that email address: ask your care team to register them"
                .into(),
        )
    };
    let email = email.trim().to_string();
    let row = optional(client, CARER_BY_EMAIL, &[&email])
        .await?
        .ok_or_else(missing)?;
    let id: Uuid = row.get(0);
    Ok(person(&people(client, [id]).await?, id))
}

/// The viewer's threads the log touched after `$3`, with what a patient
/// or carer is shown changing (messages, status, activity time).
macro_rules! touched {
    ($visible:expr) => {
        concat!(
            "SELECT t.thread_id, t.message_count, t.status, t.last_activity_at FROM threads t \
             WHERE t.last_position > $3 AND t.thread_id IN (",
            $visible,
            ") ORDER BY t.last_position"
        )
    };
}
const TOUCHED_PATIENT: &str = touched!(visible_patient!());
const TOUCHED_CARER: &str = touched!(visible_carer!());
const TOUCHED_PROFESSIONAL: &str = touched!(visible_professional!());

/// What a patient or carer is shown of a thread changing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape(i32, String, SystemTime);

/// A watcher's view of the threads it has seen: for a patient or carer
/// the shape of each, so a change they are not shown (a staff note, a
/// colleague on the staff side) is not a change to them.
#[derive(Debug, Default)]
pub struct Watched {
    shapes: HashMap<Uuid, Shape>,
}

/// The threads of `viewer` changed after `after` (all visible threads
/// when `after` is 0, to learn their shapes; none reported then).
pub async fn changed(
    client: &Client,
    viewer: Viewer,
    now: SystemTime,
    after: u64,
    watched: &mut Watched,
) -> Result<Vec<String>, Error> {
    let sql = match viewer.role {
        Role::Patient => TOUCHED_PATIENT,
        Role::Carer => TOUCHED_CARER,
        Role::Professional => TOUCHED_PROFESSIONAL,
        _ => return Ok(Vec::new()),
    };
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let touched = rows(client, sql, &[&viewer.id, &now, &after]).await?;
    let staff = viewer.role == Role::Professional;
    let mut out = Vec::new();
    for r in &touched {
        let id: Uuid = r.get(0);
        let shape = Shape(r.get(1), r.get(2), r.get(3));
        let differs = watched.shapes.get(&id) != Some(&shape);
        if !staff {
            watched.shapes.insert(id, shape);
        }
        if staff || differs {
            out.push(id.to_string());
        }
    }
    // A carer whose consent ended (or expired) sees those threads no more:
    // that is a change to each, told at once, so an open page of one says
    // so instead of going on as if nothing had happened.
    if viewer.role == Role::Carer && !watched.shapes.is_empty() {
        let visible: std::collections::HashSet<Uuid> =
            rows(client, VISIBLE_CARER, &[&viewer.id, &now])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
        let gone: Vec<Uuid> = watched
            .shapes
            .keys()
            .filter(|id| !visible.contains(id))
            .copied()
            .collect();
        for id in gone {
            watched.shapes.remove(&id);
            out.push(id.to_string());
        }
    }
    Ok(out)
}

const VISIBLE_CARER: &str = visible_carer!();

const TEAM_BY_JOIN_CODE: &str = "SELECT team_id, name, description FROM teams \
     WHERE join_code = $1 ORDER BY team_id LIMIT 1";

/// The team whose current join code `code` is.
pub async fn team_by_join_code(client: &Client, code: &str) -> Result<pb::TeamContact, Error> {
    let code = code.trim().to_lowercase();
    let row = optional(client, TEAM_BY_JOIN_CODE, &[&code])
        .await?
        .ok_or_else(|| {
            Error::NotFound(
                "no team has this join code now: a team's code changes when it issues a new one, so ask the team for its link today".into(),
            )
        })?;
    Ok(pb::TeamContact {
        team_id: row.get::<_, Uuid>(0).to_string(),
        name: row.get(1),
        description: row.get(2),
        auto_cc: false,
        default_contact: None,
    })
}

const TEAMS: &str = "SELECT team_id, name, description, auto_cc, default_contact, open_to_patients, \
     coalesce(join_code, ''), alerts FROM teams WHERE ($1::uuid IS NULL OR team_id = $1) \
     ORDER BY name, team_id LIMIT 500";
const TEAM_MEMBERS: &str = "SELECT team_id, person_id, contactable, lead FROM team_members \
     WHERE team_id = ANY($1)";
const FIND_PEOPLE: &str = "SELECT p.person_id, p.email, p.email_verified, d.person_id IS NOT NULL, \
       coalesce((SELECT array_agg(r.role ORDER BY r.role) FROM staff_roles r \
         WHERE r.person_id = p.person_id), '{}') \
     FROM people p LEFT JOIN deactivated_people d ON d.person_id = p.person_id::text \
     WHERE ($1::text IS NULL OR lower(p.name) LIKE $1 ESCAPE '\\' OR p.identifiers LIKE $1 ESCAPE '\\') AND ($2 = '' OR p.kind = $2) \
       AND ($4::uuid IS NULL OR p.person_id = $4) \
     ORDER BY lower(p.name), p.person_id LIMIT $3";

const SYSTEMS: &str = "SELECT s.system_id, s.name, s.team_ids, \
       coalesce((SELECT array_agg(coalesce(t.name, '') ORDER BY o.n) FROM unnest(s.team_ids) WITH ORDINALITY o(id, n) \
         LEFT JOIN teams t ON t.team_id = o.id), '{}'), \
       d.person_id IS NOT NULL, s.registered_at \
     FROM systems s LEFT JOIN deactivated_people d ON d.person_id = s.system_id::text \
     ORDER BY lower(s.name), s.system_id LIMIT 500";

/// The hospital's systems: admins only.
pub async fn systems(client: &Client, viewer: Viewer) -> Result<Vec<pb::HospitalSystem>, Error> {
    admins_only(viewer, "the list of the hospital's systems")?;
    Ok(rows(client, SYSTEMS, &[])
        .await?
        .iter()
        .map(|row| {
            let teams: Vec<Uuid> = row.get(2);
            pb::HospitalSystem {
                system_id: row.get::<_, Uuid>(0).to_string(),
                name: row.get(1),
                team_ids: teams.iter().map(Uuid::to_string).collect(),
                team_names: row.get(3),
                closed: row.get(4),
                registered_at: Some(ts(row.get(5))),
            }
        })
        .collect())
}

fn admins_only(viewer: Viewer, what: &str) -> Result<(), Error> {
    if viewer.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::PermissionDenied(format!("{what} is for admins")))
    }
}

/// Teams, their settings and members: admins only.
pub async fn teams(
    client: &Client,
    viewer: Viewer,
    team: Option<TeamId>,
) -> Result<Vec<pb::TeamSettings>, Error> {
    admins_only(viewer, "the list of teams")?;
    let team: Option<Uuid> = team.map(Uuid::from);
    let found: Vec<TeamRow> = rows(client, TEAMS, &[&team])
        .await?
        .iter()
        .map(TeamRow::from)
        .collect();
    let ids: Vec<Uuid> = found.iter().map(|t| t.team_id).collect();
    let members: Vec<MemberRow> = rows(client, TEAM_MEMBERS, &[&ids])
        .await?
        .iter()
        .map(MemberRow::from)
        .collect();
    let named = people(
        client,
        members
            .iter()
            .map(|m| m.person_id)
            .chain(found.iter().filter_map(|t| t.default_contact)),
    )
    .await?;
    Ok(found
        .into_iter()
        .map(|t| {
            let mut team_members: Vec<pb::TeamMember> = members
                .iter()
                .filter(|m| m.team_id == t.team_id)
                .map(|m| pb::TeamMember {
                    person: Some(person(&named, m.person_id)),
                    contactable: m.contactable,
                    lead: m.lead,
                })
                .collect();
            team_members.sort_by(|a, b| {
                let name = |m: &pb::TeamMember| m.person.as_ref().map(|p| p.name.to_lowercase());
                name(a).cmp(&name(b))
            });
            pb::TeamSettings {
                team_id: t.team_id.to_string(),
                name: t.name,
                description: t.description,
                auto_cc: t.auto_cc,
                default_contact: t.default_contact.map(|d| person(&named, d)),
                open_to_patients: t.open_to_patients,
                join_code: t.join_code,
                members: team_members,
                alerts: t.alerts,
            }
        })
        .collect())
}

/// A row of [`TEAMS`]: a team's settings.
struct TeamRow {
    team_id: Uuid,
    name: String,
    description: String,
    auto_cc: bool,
    default_contact: Option<Uuid>,
    open_to_patients: bool,
    join_code: String,
    alerts: bool,
}

impl TeamRow {
    fn from(row: &Row) -> Self {
        Self {
            team_id: row.get(0),
            name: row.get(1),
            description: row.get(2),
            auto_cc: row.get(3),
            default_contact: row.get(4),
            open_to_patients: row.get(5),
            join_code: row.get(6),
            alerts: row.get(7),
        }
    }
}

/// A row of [`TEAM_MEMBERS`].
struct MemberRow {
    team_id: Uuid,
    person_id: Uuid,
    contactable: bool,
    lead: bool,
}

impl MemberRow {
    fn from(row: &Row) -> Self {
        Self {
            team_id: row.get(0),
            person_id: row.get(1),
            contactable: row.get(2),
            lead: row.get(3),
        }
    }
}

/// People by any part of their name: admins, and privacy officers (who
/// are shown no address).
pub async fn find_people(
    client: &Client,
    viewer: Viewer,
    pattern: Option<String>,
    kind: &'static str,
    only: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::PersonRecord>, Error> {
    // A privacy officer finds whose trail to read by name: names and
    // whether an account is closed, never an address (they need none).
    let auditor = viewer.role == Role::Auditor;
    if !auditor {
        admins_only(viewer, "looking people up")?;
    }
    let found = rows(client, FIND_PEOPLE, &[&pattern, &kind, &limit, &only]).await?;
    let named = people(client, found.iter().map(|r| r.get::<_, Uuid>(0))).await?;
    Ok(found
        .iter()
        .map(|r| pb::PersonRecord {
            person: Some(person(&named, r.get(0))),
            email: if auditor { String::new() } else { r.get(1) },
            email_verified: !auditor && r.get::<_, bool>(2),
            deactivated: r.get(3),
            staff_roles: r.get(4),
        })
        .collect())
}

/// A team's patients whose name matches `$2`, by name, at most 20.
const TEAM_PATIENTS: &str = "SELECT p.person_id FROM patient_teams pt \
     JOIN people p ON p.person_id = pt.patient_id AND p.kind = 'patient' \
     WHERE pt.team_id = $1 AND (lower(p.name) LIKE $2 OR p.identifiers LIKE $2) \
       AND NOT EXISTS (SELECT 1 FROM deactivated_people d WHERE d.person_id = p.person_id::text) \
     ORDER BY lower(p.name), p.person_id LIMIT 20";

/// A team's patients whose name starts as `pattern` says, for a member
/// starting a conversation with one; what it shows is recorded by `record`.
pub async fn team_patients(
    client: &Client,
    viewer: Viewer,
    team: TeamId,
    pattern: String,
    record: Recorder<'_>,
) -> Result<Vec<pb::Person>, Error> {
    require_member(client, viewer, team).await?;
    let found = rows(client, TEAM_PATIENTS, &[&team.uuid(), &pattern]).await?;
    let ids: Vec<Uuid> = found.iter().map(|r| r.get(0)).collect();
    let mut shown = Shown::default();
    for id in &ids {
        shown.record(&id.to_string());
    }
    let (named, ()) = futures::try_join!(people(client, ids.iter().copied()), record(shown))?;
    Ok(ids.iter().map(|id| person(&named, *id)).collect())
}
