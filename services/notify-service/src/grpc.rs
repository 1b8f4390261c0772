//! `careline.notify.v1.NotificationService`: each recipient's notification
//! state for a thread, for the staff on it.

use std::time::SystemTime;

use careline_read_kit::{AccessLog, Reader, Shown};
use proto::notify as pb;
use proto::notify::notification_service_server::NotificationService;
use service_kit::Role;
use service_kit::ids::ThreadId;
use tonic::{Request, Response, Status};

/// Whether professional `$2` sees thread `$1` (the rule every service
/// follows, ARCHITECTURE.md "Who sees a thread"): a registered professional
/// on it now, a member of a team it is addressed to, or a member of a team
/// holding a record-access grant in force (`$3`: now, µs) on its record.
const ON_THREAD: &str = "SELECT EXISTS (SELECT 1 FROM notify.people WHERE id = $2 AND kind = 'professional') \
     AND (EXISTS (SELECT 1 FROM notify.participants WHERE thread_id = $1 AND person_id = $2 AND active) \
     OR EXISTS (SELECT 1 FROM notify.thread_teams t JOIN notify.team_members m \
        ON m.team_id = t.team_id WHERE t.thread_id = $1 AND m.person_id = $2) \
     OR EXISTS (SELECT 1 FROM notify.threads t JOIN notify.grants g ON g.patient_id = t.patient_id \
        AND NOT g.revoked AND g.expires_at > $3 \
        JOIN notify.team_members m ON m.team_id = g.team_id AND m.person_id = $2 \
        WHERE t.thread_id = $1))";

/// The record thread `$1` is in.
const RECORD: &str = "SELECT patient_id FROM notify.threads WHERE thread_id = $1";

/// Each notice of the thread's messages, and each reminder sent or tried.
const STATES: &str = "SELECT n.id, n.event_id, n.position, n.recipient_id, n.recipient_name, \
       n.recipient_kind, n.sender_name, n.sender_role, n.deliverable, n.reason, \
       d.state, d.reason, coalesce(d.attempts, 0), d.sent_at, d.next_attempt_at, false AS reminder \
     FROM notify.notifications n LEFT JOIN careline_notify.deliveries d ON d.id = n.id \
     WHERE n.thread_id = $1 \
     UNION ALL \
     SELECT d.id, m.event_id, m.position, t.patient_id, p.name, p.kind, m.author_name, \
       m.author_role, true, '', d.state, d.reason, d.attempts, d.sent_at, d.next_attempt_at, true \
     FROM notify.messages m JOIN careline_notify.deliveries d ON d.id = 'reminder/' || m.event_id \
     JOIN notify.threads t ON t.thread_id = m.thread_id \
     JOIN notify.people p ON p.id = t.patient_id \
     WHERE m.thread_id = $1 AND m.author_kind = 'professional' \
     ORDER BY 3, 16, 5, 4";

/// The notification service.
pub struct NotifyGrpc {
    reader: Reader<Notifications>,
    access: AccessLog,
}

impl std::fmt::Debug for NotifyGrpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyGrpc")
            .field("reader", &self.reader)
            .finish()
    }
}

impl NotifyGrpc {
    pub fn new(reader: Reader<Notifications>, access: AccessLog) -> Self {
        Self { reader, access }
    }
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The notification service, as its errors name it.
#[derive(Debug)]
pub struct Notifications;

impl careline_read_kit::ReadService for Notifications {
    const NAME: &'static str = "notification";
    const READ_MODEL: &'static str = "the notification state";
    const GRPC: &'static str = "careline.notify.v1.NotificationService";
}

/// The notification service's errors: the one kind every read service has.
pub type Error = careline_read_kit::QueryError<Notifications>;

/// A failed query as a status: a conflict is worth retrying (ABORTED), an
/// outage is UNAVAILABLE, anything else a defect (INTERNAL).
fn db(e: tokio_postgres::Error) -> Status {
    Error::from(e).into()
}

#[tonic::async_trait]
impl NotificationService for NotifyGrpc {
    async fn thread_notifications(
        &self,
        request: Request<pb::ThreadNotificationsRequest>,
    ) -> Result<Response<pb::ThreadNotificationsReply>, Status> {
        let caller = self.reader.authenticate(&request).await?;
        let r = request.into_inner();
        let thread = ThreadId::parse("thread_id", &r.thread_id)?.to_string();
        let position = self.reader.reached(r.min_position).await?;
        let client = self.reader.client().await?;
        let on_thread: bool = client
            .query_one(
                ON_THREAD,
                &[&thread, &caller.person_id.to_string(), &now_micros()],
            )
            .await
            .map_err(db)?
            .get(0);
        if caller.role != Role::Professional || !on_thread {
            return Err(Status::not_found(format!("no thread {thread}")));
        }
        let this: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&thread];
        let (record, rows) =
            futures::try_join!(client.query_opt(RECORD, &this), client.query(STATES, &this),)
                .map_err(db)?;
        // Who was told of the record's messages is a read of the record:
        // recorded before the answer leaves, or refused.
        if let Some(record) = record {
            let mut shown = Shown::default();
            shown.thread(&record.get::<_, String>(0), &thread);
            self.access
                .record::<Notifications>(&caller, "ThreadNotifications", None, shown)
                .await?;
        }
        let notifications = rows
            .iter()
            .map(|row| {
                let deliverable: bool = row.get(8);
                let delivery: Option<String> = row.get(10);
                let state = match (deliverable, delivery.as_deref()) {
                    // Sent before the recipient's account was closed.
                    (_, Some("sent")) => pb::DeliveryState::Sent,
                    (false, _) => pb::DeliveryState::Undeliverable,
                    (true, None) => pb::DeliveryState::Pending,
                    (true, Some("retrying")) => pb::DeliveryState::Retrying,
                    (true, Some(_)) => pb::DeliveryState::Failed,
                };
                let reason: String = if deliverable {
                    row.get::<_, Option<String>>(11).unwrap_or_default()
                } else {
                    row.get(9)
                };
                let time = |i: usize| row.get::<_, Option<SystemTime>>(i).map(Into::into);
                pb::Notification {
                    notification_id: row.get(0),
                    event_id: row.get(1),
                    position: row.get::<_, i64>(2) as u64,
                    recipient_id: row.get(3),
                    recipient_name: row.get(4),
                    recipient_kind: row.get(5),
                    sender_name: row.get(6),
                    sender_role: row.get(7),
                    state: state as i32,
                    reason,
                    attempts: row.get::<_, i32>(12) as u32,
                    sent_at: time(13),
                    next_attempt_at: if state == pb::DeliveryState::Retrying {
                        time(14)
                    } else {
                        None
                    },
                    reminder: row.get(15),
                }
            })
            .collect();
        Ok(Response::new(pb::ThreadNotificationsReply {
            notifications,
            position,
        }))
    }
}
