//! The notification projection: who is on each thread and how to reach
//! them, and one notification per message per recipient (never the author).

use event_store::RecordedEvent;
use projections::Error;
use projections::tokio_postgres::Transaction;
use proto::events::envelope::Payload;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The tables readers query (as views in schema `notify`).
pub const TABLES: &[&str] = &[
    "people",
    "consents",
    "threads",
    "participants",
    "team_members",
    "thread_teams",
    "messages",
    "read_marks",
    "notifications",
    "grants",
    "team_alerts",
    "verifications",
    "deactivated_people",
];

/// Why a recipient cannot be told.
pub const NO_VERIFIED_EMAIL: &str = "no verified email address";

const UPSERT_PERSON: &str = "INSERT INTO people (id, kind, name, role_label, email, email_verified) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
     name = excluded.name, role_label = excluded.role_label, email = excluded.email, \
     email_verified = excluded.email_verified WHERE people.kind = excluded.kind";
const VERIFY_EMAIL: &str = "UPDATE people SET email = CASE WHEN $2 = '' THEN email ELSE $2 END, \
     email_verified = true WHERE id = $1";
const CHANGE_EMAIL: &str = "UPDATE people SET email = $2, email_verified = false WHERE id = $1";
/// A verification request: the person's earlier ones stay pending only if
/// they were for the same address.
const REQUEST_VERIFICATION: &str = "WITH superseded AS ( \
       UPDATE verifications SET pending = false \
       WHERE person_id = $2 AND pending AND lower(email) <> lower($4) RETURNING 1) \
     INSERT INTO verifications (request_id, person_id, name, email, position, requested_at, \
     addressee) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (request_id) DO NOTHING";
const VERIFIED: &str = "UPDATE verifications SET pending = false WHERE person_id = $1 AND pending";
const PERSON_NAME: &str = "SELECT name FROM people WHERE id = $1";
const UPSERT_CONSENT: &str = "INSERT INTO consents (patient_id, carer_id, expires_at, active) \
     VALUES ($1, $2, $3, true) ON CONFLICT (patient_id, carer_id) \
     DO UPDATE SET expires_at = excluded.expires_at, active = true";
const REVOKE_CONSENT: &str =
    "UPDATE consents SET active = false WHERE patient_id = $1 AND carer_id = $2";
/// A carer leaves every thread of record $1: their consent ended.
const END_CARER: &str = "UPDATE participants p SET active = false FROM threads t \
     WHERE t.thread_id = p.thread_id AND t.patient_id = $1 AND p.person_id = $2 AND p.active";
/// Whether consent ($1, $2) had lapsed (revoked, or expired by $3, µs).
const LAPSED_CONSENT: &str = "SELECT 1 FROM consents WHERE patient_id = $1 AND carer_id = $2 \
     AND (NOT active OR expires_at <= $3)";
const INSERT_THREAD: &str =
    "INSERT INTO threads (thread_id, patient_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const JOIN: &str = "INSERT INTO participants (thread_id, person_id, active, via_team, staff_side) \
     VALUES ($1, $2, true, $3, $4) \
     ON CONFLICT (thread_id, person_id) DO UPDATE SET active = true, via_team = excluded.via_team, \
     staff_side = excluded.staff_side";
const LEAVE: &str =
    "UPDATE participants SET active = false WHERE thread_id = $1 AND person_id = $2";
/// One notification for everyone to tell of a message on thread $3 by $8
/// at $7 (µs): the active participants but the author, of whom `$who`;
/// carers only while consent is in force. Without a verified address:
/// undeliverable ($6).
macro_rules! notify_participants {
    ($who:literal) => {
        concat!(
            "INSERT INTO notifications (id, event_id, position, thread_id, \
             recipient_id, recipient_name, recipient_kind, email, sender_name, sender_role, deliverable, \
             reason, created_at) \
             SELECT $1 || '/' || p.person_id, $1, $2, $3, p.person_id, coalesce(x.name, ''), \
                    coalesce(x.kind, ''), coalesce(x.email, ''), $4, $5, \
                    coalesce(x.email_verified, false) AND coalesce(x.email, '') <> '', \
                    CASE WHEN coalesce(x.email_verified, false) AND coalesce(x.email, '') <> '' \
                         THEN '' ELSE $6 END, $7 \
             FROM participants p JOIN threads t ON t.thread_id = p.thread_id \
             LEFT JOIN people x ON x.id = p.person_id \
             WHERE p.thread_id = $3 AND p.active AND p.person_id <> $8 \
               AND (x.kind IS DISTINCT FROM 'carer' OR EXISTS (SELECT 1 FROM consents c \
                    WHERE c.patient_id = t.patient_id AND c.carer_id = p.person_id AND c.active \
                      AND (c.expires_at IS NULL OR c.expires_at > $7))) ",
            $who,
            " ON CONFLICT DO NOTHING"
        )
    };
}
/// A message: those on the staff side only if mentioned (`$9`).
const NOTIFY: &str =
    notify_participants!("AND (NOT p.staff_side OR p.person_id = ANY($9::text[]))");
/// A staff note: only the professionals on the thread are told.
const NOTIFY_STAFF: &str = notify_participants!("AND x.kind = 'professional'");
/// With team alerts: one notification for every member of a team with
/// alerts on that thread $3 is addressed to, of a patient's or carer's
/// message; not the author, nor a member who left the thread, and not
/// twice (participants are told already, by [`NOTIFY`]); a team on the
/// staff side, and its members there, are not alerted.
const ALERT_TEAMS: &str = "INSERT INTO notifications (id, event_id, position, thread_id, \
     recipient_id, recipient_name, recipient_kind, email, sender_name, sender_role, deliverable, \
     reason, created_at) \
     SELECT DISTINCT ON (m.person_id) $1 || '/' || m.person_id, $1, $2, $3, m.person_id, \
            coalesce(x.name, ''), coalesce(x.kind, ''), coalesce(x.email, ''), $4, $5, \
            coalesce(x.email_verified, false) AND coalesce(x.email, '') <> '', \
            CASE WHEN coalesce(x.email_verified, false) AND coalesce(x.email, '') <> '' \
                 THEN '' ELSE $6 END, $7 \
     FROM thread_teams tt JOIN team_alerts a ON a.team_id = tt.team_id \
     JOIN team_members m ON m.team_id = tt.team_id \
     LEFT JOIN people x ON x.id = m.person_id \
     WHERE tt.thread_id = $3 AND NOT tt.staff_side AND m.person_id <> $8 \
       AND NOT EXISTS (SELECT 1 FROM participants p \
            WHERE p.thread_id = $3 AND p.person_id = m.person_id AND (NOT p.active OR p.staff_side)) \
     ORDER BY m.person_id \
     ON CONFLICT DO NOTHING";
const ALERTS_ON: &str = "INSERT INTO team_alerts (team_id) VALUES ($1) ON CONFLICT DO NOTHING";
const ALERTS_OFF: &str = "DELETE FROM team_alerts WHERE team_id = $1";
const GRANT: &str = "INSERT INTO grants (grant_id, patient_id, team_id, expires_at, revoked) \
     VALUES ($1, $2, $3, $4, false) ON CONFLICT (grant_id) DO NOTHING";
const REVOKE_GRANT: &str = "UPDATE grants SET revoked = true WHERE grant_id = $1";
const ADD_MEMBER: &str =
    "INSERT INTO team_members (team_id, person_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const REMOVE_MEMBER: &str = "DELETE FROM team_members WHERE team_id = $1 AND person_id = $2";
/// A closed account ($1): in no team, on no thread, sent nothing more (what
/// was sent stays sent), and its pending verification withdrawn.
const DEACTIVATE: &str = "WITH a AS (INSERT INTO deactivated_people (person_id) VALUES ($1) \
       ON CONFLICT DO NOTHING), \
     b AS (DELETE FROM team_members WHERE person_id = $1), \
     c AS (UPDATE participants SET active = false WHERE person_id = $1 AND active), \
     d AS (UPDATE verifications SET pending = false WHERE person_id = $1 AND pending) \
     UPDATE notifications SET deliverable = false, reason = 'account deactivated' \
     WHERE recipient_id = $1 AND deliverable";
const REACTIVATE: &str = "DELETE FROM deactivated_people WHERE person_id = $1";
/// A professional ($2) removed from team $1 at $3 (µs) leaves the threads
/// they were on through it, unless another of their teams that the thread
/// is addressed to, or that holds a grant in force, keeps them on it.
const LEAVE_TEAM_THREADS: &str = "WITH via AS (\
       SELECT p.thread_id, (SELECT k.team_id FROM (\
           SELECT tt.team_id FROM thread_teams tt WHERE tt.thread_id = p.thread_id \
           UNION ALL SELECT g.team_id FROM grants g WHERE g.patient_id = t.patient_id \
             AND NOT g.revoked AND g.expires_at > $3) k \
         JOIN team_members m ON m.team_id = k.team_id AND m.person_id = $2 \
         WHERE k.team_id <> $1 ORDER BY k.team_id LIMIT 1) AS keeper \
       FROM participants p JOIN threads t ON t.thread_id = p.thread_id \
       WHERE p.person_id = $2 AND p.via_team = $1 AND p.active), \
     kept AS (UPDATE participants p SET via_team = via.keeper FROM via \
       WHERE p.thread_id = via.thread_id AND p.person_id = $2 AND via.keeper IS NOT NULL) \
     UPDATE participants p SET active = false FROM via \
     WHERE p.thread_id = via.thread_id AND p.person_id = $2 AND via.keeper IS NULL";
/// A team addressed again moves only from the staff side to the patient side.
const ADDRESS_TEAM: &str = "INSERT INTO thread_teams (thread_id, team_id, staff_side) \
     VALUES ($1, $2, $3) ON CONFLICT (thread_id, team_id) DO UPDATE SET staff_side = false \
     WHERE thread_teams.staff_side AND NOT excluded.staff_side";
const SENDER: &str = "SELECT kind, role_label, name FROM people WHERE id = $1";
const INSERT_MESSAGE: &str = "INSERT INTO messages (event_id, message_id, thread_id, position, \
     author_id, author_kind, author_name, author_role, posted_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING";
const READ_UP_TO: &str = "INSERT INTO read_marks (thread_id, person_id, position) \
     SELECT thread_id, $3, position FROM messages WHERE thread_id = $1 AND message_id = $2 \
     ON CONFLICT (thread_id, person_id) DO UPDATE \
     SET position = greatest(read_marks.position, excluded.position)";
/// The notification read model.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotifyProjection;

fn micros(ts: Option<&prost_types::Timestamp>) -> Option<i64> {
    ts.and_then(proto::time::to_micros)
}

impl projections::Projection for NotifyProjection {
    fn name(&self) -> &'static str {
        "notify"
    }

    fn migrations(&self) -> refinery::Runner {
        embedded::migrations::runner()
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    /// The state query's and the worker's indexes: applying uses primary keys.
    fn deferred_indexes(&self) -> &'static [&'static str] {
        &[
            "notifications_thread",
            "notifications_queue",
            "messages_staff_position",
        ]
    }

    /// Reads recorded tell no one.
    fn concerns(&self, event: &RecordedEvent) -> bool {
        !matches!(
            event.envelope.payload,
            Some(Payload::RecordsViewed(_) | Payload::AuditAnchored(_))
        )
    }

    async fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        events: &'a [RecordedEvent],
    ) -> Result<(), Error> {
        for event in events {
            apply(tx, event).await?;
        }
        Ok(())
    }
}

/// Queues the verification email `event` asks for (its id is the
/// request's), to the patient or person the event's aggregate is.
async fn request_verification(
    tx: &Transaction<'_>,
    event: &RecordedEvent,
    email: &str,
) -> Result<(), Error> {
    let addressee = if event.envelope.aggregate_type == proto::events::AggregateType::Person as i32
    {
        "person"
    } else {
        "patient"
    };
    let envelope = &event.envelope;
    let person = envelope.aggregate_id.as_str();
    let name: String = tx
        .query_opt(PERSON_NAME, &[&person])
        .await?
        .map(|r| r.get(0))
        .unwrap_or_default();
    let at = micros(envelope.occurred_at.as_ref()).unwrap_or(0);
    tx.execute(
        REQUEST_VERIFICATION,
        &[
            &envelope.event_id,
            &person,
            &name,
            &email,
            &(event.position as i64),
            &at,
            &addressee,
        ],
    )
    .await?;
    Ok(())
}

/// A person as their registration names them.
struct Registered<'a> {
    id: &'a str,
    kind: &'a str,
    name: &'a str,
    label: &'a str,
    email: &'a str,
    verified: bool,
}

/// Records a registered person; a registered address not yet verified is
/// a request for its verification.
async fn register(
    tx: &Transaction<'_>,
    event: &RecordedEvent,
    p: Registered<'_>,
) -> Result<(), Error> {
    tx.execute(
        UPSERT_PERSON,
        &[&p.id, &p.kind, &p.name, &p.label, &p.email, &p.verified],
    )
    .await?;
    if !p.email.is_empty() && !p.verified {
        request_verification(tx, event, p.email).await?;
    }
    Ok(())
}

async fn apply(tx: &Transaction<'_>, event: &RecordedEvent) -> Result<(), Error> {
    let envelope = &event.envelope;
    let aggregate = envelope.aggregate_id.as_str();
    let Some(payload) = &envelope.payload else {
        return Ok(());
    };
    match payload {
        Payload::ProfessionalRegistered(e) => {
            // Older logs' work addresses count as verified.
            let person = Registered {
                id: &e.professional_id,
                kind: "professional",
                name: &e.name,
                label: &e.role_label,
                email: &e.work_email,
                verified: !e.work_email_unverified,
            };
            register(tx, event, person).await?;
        }
        Payload::CarerRegistered(e) => {
            let person = Registered {
                id: &e.carer_id,
                kind: "carer",
                name: &e.name,
                label: "",
                email: &e.email,
                verified: e.email_verified,
            };
            register(tx, event, person).await?;
        }
        Payload::PatientRegistered(e) => {
            let person = Registered {
                id: &e.patient_id,
                kind: "patient",
                name: &e.name,
                label: "",
                email: &e.email,
                verified: e.email_verified,
            };
            register(tx, event, person).await?;
        }
        Payload::PersonEmailVerified(e) => {
            tx.execute(VERIFY_EMAIL, &[&aggregate, &e.email]).await?;
            tx.execute(VERIFIED, &[&aggregate]).await?;
        }
        Payload::PersonEmailChanged(e) => {
            tx.execute(CHANGE_EMAIL, &[&aggregate, &e.email]).await?;
            request_verification(tx, event, &e.email).await?;
        }
        Payload::PersonEmailVerificationRequested(e) => {
            request_verification(tx, event, &e.email).await?;
        }
        Payload::PatientEmailVerified(e) => {
            tx.execute(VERIFY_EMAIL, &[&aggregate, &e.email]).await?;
            tx.execute(VERIFIED, &[&aggregate]).await?;
        }
        Payload::PatientEmailChanged(e) => {
            tx.execute(CHANGE_EMAIL, &[&aggregate, &e.email]).await?;
            request_verification(tx, event, &e.email).await?;
        }
        Payload::PatientEmailVerificationRequested(e) => {
            request_verification(tx, event, &e.email).await?;
        }
        Payload::CarerConsentGranted(e) => {
            // After a lapse, a new consent: the carer took part under the
            // old one, and that ended with it (they are added again).
            let at = micros(envelope.occurred_at.as_ref()).unwrap_or(0);
            if tx
                .query_opt(LAPSED_CONSENT, &[&aggregate, &e.carer_id, &at])
                .await?
                .is_some()
            {
                tx.execute(END_CARER, &[&aggregate, &e.carer_id]).await?;
            }
            tx.execute(
                UPSERT_CONSENT,
                &[&aggregate, &e.carer_id, &micros(e.expires_at.as_ref())],
            )
            .await?;
        }
        Payload::CarerConsentRevoked(e) => {
            tx.execute(REVOKE_CONSENT, &[&aggregate, &e.carer_id])
                .await?;
            tx.execute(END_CARER, &[&aggregate, &e.carer_id]).await?;
        }
        Payload::ThreadStarted(e) => {
            tx.execute(INSERT_THREAD, &[&e.thread_id, &e.patient_id])
                .await?;
            join(tx, &e.thread_id, (&e.participants, &e.team_ids), false).await?;
            tell(tx, event, Some((&e.message_id, &[]))).await?;
        }
        Payload::ParticipantsAdded(e) => {
            join(tx, aggregate, (&e.participants, &e.team_ids), false).await?;
        }
        Payload::StaffSideJoined(e) => {
            join(tx, aggregate, (&e.participants, &e.team_ids), true).await?;
        }
        Payload::RecordAccessGranted(e) => {
            let expires = micros(e.expires_at.as_ref()).unwrap_or(0);
            tx.execute(GRANT, &[&e.grant_id, &aggregate, &e.team_id, &expires])
                .await?;
        }
        Payload::RecordAccessRevoked(e) => {
            tx.execute(REVOKE_GRANT, &[&e.grant_id]).await?;
        }
        Payload::TeamMemberAdded(e) => {
            tx.execute(ADD_MEMBER, &[&aggregate, &e.professional_id])
                .await?;
        }
        Payload::TeamAlertsSet(e) => {
            let sql = if e.enabled { ALERTS_ON } else { ALERTS_OFF };
            tx.execute(sql, &[&aggregate]).await?;
        }
        Payload::TeamMemberRemoved(e) => {
            tx.execute(REMOVE_MEMBER, &[&aggregate, &e.professional_id])
                .await?;
            if e.leaves_threads {
                let at = micros(envelope.occurred_at.as_ref()).unwrap_or(0);
                tx.execute(LEAVE_TEAM_THREADS, &[&aggregate, &e.professional_id, &at])
                    .await?;
            }
        }
        Payload::PersonDeactivated(_) => {
            tx.execute(DEACTIVATE, &[&aggregate]).await?;
        }
        Payload::PersonReactivated(_) => {
            tx.execute(REACTIVATE, &[&aggregate]).await?;
        }
        Payload::ParticipantLeft(e) => {
            tx.execute(LEAVE, &[&aggregate, &e.person_id]).await?;
        }
        Payload::MessagePosted(e) => tell(tx, event, Some((&e.message_id, &e.mention_ids))).await?,
        Payload::StaffNotePosted(_) => tell(tx, event, None).await?,
        Payload::ThreadReadUpTo(e) => {
            tx.execute(READ_UP_TO, &[&aggregate, &e.message_id, &e.reader_id])
                .await?;
        }
        _ => {}
    }
    Ok(())
}

/// People and teams joining `thread`, on its staff side or not.
async fn join(
    tx: &Transaction<'_>,
    thread: &str,
    (people, teams): (&[proto::events::Participant], &[String]),
    staff_side: bool,
) -> Result<(), Error> {
    for p in people {
        tx.execute(JOIN, &[&thread, &p.person_id, &p.via_team_id, &staff_side])
            .await?;
    }
    for team in teams {
        tx.execute(ADDRESS_TEAM, &[&thread, team, &staff_side])
            .await?;
    }
    Ok(())
}

/// One notification per recipient of `event`: of a message (`Some`, with
/// whom it mentions; also kept for reminders), or of a staff note (`None`:
/// only the professionals on the thread are told, and it is no message a
/// patient is reminded of).
async fn tell(
    tx: &Transaction<'_>,
    event: &RecordedEvent,
    message: Option<(&str, &[String])>,
) -> Result<(), Error> {
    let envelope = &event.envelope;
    let actor = envelope.actor.clone().unwrap_or_default();
    let at = micros(envelope.occurred_at.as_ref()).unwrap_or(0);
    let notice = match &envelope.payload {
        Some(Payload::ThreadStarted(e)) => e.notice.as_ref(),
        Some(Payload::MessagePosted(e)) => e.notice.as_ref(),
        _ => None,
    };
    // The registered name, not the token's: emails name the sender. A
    // notice is the team's, "Renal Unit (via Appointments)", on the
    // hospital's side: reminded of like a professional's message.
    let (sender_kind, sender_role, sender_name) = match notice {
        Some(n) => (
            "professional".to_string(),
            format!("via {}", n.system_name),
            n.team_name.clone(),
        ),
        None => match tx.query_opt(SENDER, &[&actor.person_id]).await? {
            Some(row) => {
                let (kind, label, name): (String, String, String) =
                    (row.get(0), row.get(1), row.get(2));
                let role = if label.is_empty() {
                    kind.clone()
                } else {
                    label
                };
                (kind, role, name)
            }
            None => (
                "staff".to_string(),
                "staff".to_string(),
                actor.display_name.clone(),
            ),
        },
    };
    let position = event.position as i64;
    let told: [&(dyn projections::tokio_postgres::types::ToSql + Sync); 8] = [
        &envelope.event_id,
        &position,
        &envelope.aggregate_id,
        &sender_name,
        &sender_role,
        &NO_VERIFIED_EMAIL,
        &at,
        &actor.person_id,
    ];
    let Some((message_id, mentions)) = message else {
        tx.execute(NOTIFY_STAFF, &told).await?;
        return Ok(());
    };
    tx.execute(
        INSERT_MESSAGE,
        &[
            &envelope.event_id,
            &message_id,
            &envelope.aggregate_id,
            &position,
            &actor.person_id,
            &sender_kind,
            &sender_name,
            &sender_role,
            &at,
        ],
    )
    .await?;
    let mentions: Vec<&str> = mentions.iter().map(String::as_str).collect();
    let [a, b, c, d, e, f, g, h] = told;
    tx.execute(NOTIFY, &[a, b, c, d, e, f, g, h, &mentions])
        .await?;
    if matches!(sender_kind.as_str(), "patient" | "carer") {
        tx.execute(ALERT_TEAMS, &told).await?;
    }
    Ok(())
}
