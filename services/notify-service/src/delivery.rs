//! Delivering the queue over SMTP: one worker per deployment (an advisory
//! lock), oldest first, retries with exponential backoff, a permanent
//! failure after a bounded number of attempts, the reason kept.
//!
//! Each notification's Message-ID is derived from its id, so a crash between
//! the mail server accepting a message and the delivery being recorded sends
//! it at most once more, with the same Message-ID (mail clients collapse it).

use std::time::Duration;

use futures::StreamExt;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::config::{Clock, Smtp};
use crate::mailer::Mailer;

mod embedded {
    refinery::embed_migrations!("migrations_delivery");
}

/// The schema of delivery state (`migrations_delivery/`).
pub const SCHEMA: &str = "careline_notify";

/// Emails in flight at once (also the most a crash can send twice).
pub const CONCURRENT_SENDS: usize = 8;

/// How often (by the worker's clock) staff messages are considered for a
/// reminder: reminders are a matter of days.
pub const REMINDER_PASS_EVERY: Duration = Duration::from_secs(30);

/// The one delivery worker of a deployment leads under this name.
const LEADER: &str = "notify delivery";

/// (recipient, thread) pairs with a notification due, oldest first: new
/// ones (above the settled watermark, without a delivery, older than the
/// coalescing window, $2 µs) and retries whose time ($1) has come.
const DUE: &str = "SELECT recipient_id, thread_id FROM ( \
       SELECT n.recipient_id, n.thread_id, n.position FROM notify.notifications n \
       WHERE n.deliverable AND n.created_at <= $2 \
         AND n.position > (SELECT settled FROM careline_notify.progress) \
         AND NOT EXISTS (SELECT 1 FROM careline_notify.deliveries d WHERE d.id = n.id) \
       UNION ALL \
       SELECT n.recipient_id, n.thread_id, n.position FROM careline_notify.deliveries d \
       JOIN notify.notifications n ON n.id = d.id \
       WHERE d.state = 'retrying' AND d.next_attempt_at <= $1 \
     ) due GROUP BY recipient_id, thread_id ORDER BY min(position) LIMIT 1000";

/// Moves the settled watermark up to just below the oldest deliverable
/// notification without a delivery (or to the newest notification). One
/// statement, one snapshot: the projection commits in log order, so
/// nothing can appear below it later.
const SETTLE: &str = "UPDATE careline_notify.progress p SET settled = greatest(p.settled, \
     coalesce((SELECT min(n.position) - 1 FROM notify.notifications n \
               WHERE n.deliverable AND n.position > p.settled AND NOT EXISTS \
               (SELECT 1 FROM careline_notify.deliveries d WHERE d.id = n.id)), \
              (SELECT max(position) FROM notify.notifications WHERE deliverable), 0))";

/// The queue's depth: deliverable notifications above the settled
/// watermark with no delivery yet, and deliveries to try again.
pub(crate) const QUEUE: &str = "SELECT \
     (SELECT count(*) FROM notify.notifications n WHERE n.deliverable \
        AND n.position > (SELECT settled FROM careline_notify.progress) \
        AND NOT EXISTS (SELECT 1 FROM careline_notify.deliveries d WHERE d.id = n.id)), \
     (SELECT count(*) FROM careline_notify.deliveries WHERE state = 'retrying')";

/// Everything unsent for one person on one thread: one email.
const GROUP: &str = "SELECT n.id, n.email, n.recipient_name, n.sender_name, n.sender_role, \
     coalesce(d.attempts, 0) \
     FROM notify.notifications n LEFT JOIN careline_notify.deliveries d ON d.id = n.id \
     WHERE n.recipient_id = $1 AND n.thread_id = $2 AND n.deliverable \
       AND (d.id IS NULL OR d.state = 'retrying') \
     ORDER BY n.position, n.id";

const RECORD: &str = "INSERT INTO careline_notify.deliveries \
     (id, state, attempts, next_attempt_at, reason, message_id, sent_at) \
     SELECT unnest($1::text[]), $2, $3, $4, $5, $6, $7 \
     ON CONFLICT (id) DO UPDATE SET state = excluded.state, attempts = excluded.attempts, \
     next_attempt_at = excluded.next_attempt_at, reason = excluded.reason, \
     message_id = excluded.message_id, sent_at = excluded.sent_at";

/// How far a reminder pass may decide: just below the oldest staff message
/// above the `reminded` watermark that is younger than the delay ($1, µs
/// cutoff), or the newest staff message. Everything at or below it is
/// committed (the projection commits in log order), so nothing is missed.
const REMINDER_BOUND: &str = "SELECT coalesce( \
       min(m.position) FILTER (WHERE m.posted_at > $1) - 1, max(m.position), p.reminded), \
       p.reminded \
     FROM careline_notify.progress p LEFT JOIN notify.messages m \
       ON m.author_kind = 'professional' AND m.position > p.reminded \
     GROUP BY p.reminded";

/// Staff messages a patient has not read after the reminder delay, with no
/// reminder sent: candidates are the staff messages between the watermark
/// ($3) and the bound ($4), and reminders due for a retry at $2. Of those,
/// the latest staff message of each thread, the patient still on it with a
/// verified address, not read, and not answered by the patient since.
const UNREAD: &str = "WITH candidates AS ( \
       SELECT event_id FROM notify.messages WHERE author_kind = 'professional' \
         AND position > $3 AND position <= $4 AND posted_at <= $1 \
       UNION \
       SELECT substr(id, 10) FROM careline_notify.deliveries \
       WHERE state = 'retrying' AND next_attempt_at <= $2 AND id LIKE 'reminder/%' \
     ) \
     SELECT m.event_id, m.thread_id, p.name, p.email, m.author_name, \
     m.author_role, coalesce(d.attempts, 0) \
     FROM candidates c JOIN notify.messages m ON m.event_id = c.event_id \
     JOIN notify.threads t ON t.thread_id = m.thread_id \
     JOIN notify.people p ON p.id = t.patient_id \
     JOIN notify.participants pp ON pp.thread_id = m.thread_id AND pp.person_id = t.patient_id \
     LEFT JOIN careline_notify.deliveries d ON d.id = 'reminder/' || m.event_id \
     WHERE pp.active AND p.email_verified AND p.email <> '' \
       AND (d.id IS NULL OR (d.state = 'retrying' AND d.next_attempt_at <= $2)) \
       AND m.position = (SELECT max(position) FROM notify.messages s \
                         WHERE s.thread_id = m.thread_id AND s.author_kind = 'professional') \
       AND NOT EXISTS (SELECT 1 FROM notify.read_marks r WHERE r.thread_id = m.thread_id \
                       AND r.person_id = t.patient_id AND r.position >= m.position) \
       AND NOT EXISTS (SELECT 1 FROM notify.messages a WHERE a.thread_id = m.thread_id \
                       AND a.author_id = t.patient_id AND a.position > m.position) \
     ORDER BY m.position LIMIT 100";

/// The most reminders one pass sends (the LIMIT above).
const REMINDER_LIMIT: usize = 100;

/// Verification emails to send: pending requests younger than the link
/// lifetime ($1, µs cutoff) with no delivery, and retries due at $2.
const VERIFICATIONS_DUE: &str = "SELECT v.request_id, v.person_id, v.name, v.email, \
     v.requested_at, coalesce(d.attempts, 0), v.addressee \
     FROM notify.verifications v \
     LEFT JOIN careline_notify.deliveries d ON d.id = 'verification/' || v.request_id \
     WHERE v.pending AND v.requested_at > $1 \
       AND (d.id IS NULL OR (d.state = 'retrying' AND d.next_attempt_at <= $2)) \
     ORDER BY v.position LIMIT 100";

const REMINDED: &str = "UPDATE careline_notify.progress SET reminded = greatest(reminded, $1)";

/// Runs the delivery tables' migrations (in schema `careline_notify`).
pub async fn prepare(client: &mut tokio_postgres::Client) -> Result<(), projections::Error> {
    projections::migrate(
        client,
        SCHEMA,
        &embedded::migrations::runner(),
        "notify delivery",
    )
    .await?;
    Ok(())
}

/// The Message-ID of a notification: the same on every attempt.
pub fn message_id(notification: &str, domain: &str) -> String {
    let digest = Sha256::digest(notification.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}.notification@{domain}>")
}

fn mailbox(name: &str, email: &str) -> Result<Mailbox, String> {
    format!("{name} <{email}>")
        .parse()
        .or_else(|_| email.parse())
        .map_err(|e| format!("the address {email:?} is not valid: {e}"))
}

/// Where the recipient reads the thread: `<base>/threads/<id>`.
fn link(smtp: &Smtp, thread: &str) -> String {
    format!("{}/threads/{thread}", smtp.base_url.trim_end_matches('/'))
}

/// A plain-text notification email with a Message-ID of our choosing.
fn email(
    smtp: &Smtp,
    to: Mailbox,
    subject: String,
    message_id: String,
    body: String,
) -> Result<Message, String> {
    Message::builder()
        .from(smtp.from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(message_id))
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| format!("cannot build the email: {e}"))
}

/// The email: who wrote, how many messages, and where to read them.
/// Nothing of the thread's subject or messages.
pub fn compose(
    smtp: &Smtp,
    message_id: String,
    thread: &str,
    to: (&str, &str),
    senders: &[(String, String)],
) -> Result<Message, String> {
    let (to_name, to_email) = to;
    let to = mailbox(to_name, to_email)?;
    let link = link(smtp, thread);
    let mut who: Vec<String> = Vec::new();
    for (name, role) in senders {
        let one = format!("{name} ({role})");
        if !who.contains(&one) {
            who.push(one);
        }
    }
    let who = match who.as_slice() {
        [] => "your care team".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    let what = match senders.len() {
        0 | 1 => "a new message".to_string(),
        n => format!("{n} new messages"),
    };
    let body = format!(
        "Hello {to_name},\n\n\
         You have {what} from {who} in Careline.\n\n\
         Sign in to read and reply:\n{link}\n\n\
         For your privacy, messages are never sent by email.\n"
    );
    let subject = match senders.len() {
        0 | 1 => format!("New message from {who}"),
        n => format!("{n} new messages from {who}"),
    };
    email(smtp, to, subject, message_id, body)
}

/// The one reminder of a staff message the patient has not read.
pub fn compose_reminder(
    smtp: &Smtp,
    message_id: String,
    thread: &str,
    to: (&str, &str),
    sender: (&str, &str),
) -> Result<Message, String> {
    let (to_name, to_email) = to;
    let to = mailbox(to_name, to_email)?;
    let link = link(smtp, thread);
    let (name, role) = sender;
    let body = format!(
        "Hello {to_name},\n\n\
         A reminder: {name} ({role}) sent you a message in Careline that you have not read yet.\n\n\
         Sign in to read it:\n{link}\n\n\
         For your privacy, messages are never sent by email.\n"
    );
    let subject = format!("Reminder: an unread message from {name} ({role})");
    email(smtp, to, subject, message_id, body)
}

/// The verification email: the link, how long it works, and nothing else.
pub fn compose_verification(
    smtp: &Smtp,
    message_id: String,
    to: (&str, &str),
    token: &str,
    expires_at: std::time::SystemTime,
) -> Result<Message, String> {
    let (to_name, to_email) = to;
    let to = mailbox(to_name, to_email)?;
    let link = format!(
        "{}/email/confirm?token={token}",
        smtp.base_url.trim_end_matches('/')
    );
    let hours = expires_at
        .duration_since(std::time::SystemTime::now())
        .map(|d| d.as_secs().div_ceil(3600))
        .unwrap_or(0);
    let greeting = if to_name.is_empty() {
        "Hello".to_string()
    } else {
        format!("Hello {to_name}")
    };
    let body = format!(
        "{greeting},\n\n\
         Please confirm that this is your email address for Careline, so that we can tell you when your care team writes to you.\n\n\
         Sign in and confirm it here (the link works once, for the next {hours} hours; it also links your sign-in to your Careline account):\n{link}\n\n\
         If you did not expect this email, you can ignore it: nothing changes unless the link is followed.\n"
    );
    email(
        smtp,
        to,
        "Confirm your email address for Careline".into(),
        message_id,
        body,
    )
}

/// What became of one attempt.
enum Outcome {
    Sent,
    Retry(String),
    Failed(String),
}

/// The leading worker's means: its session, its mail transport and its
/// settings.
struct Worker<'a> {
    client: &'a tokio_postgres::Client,
    mailer: &'a Mailer,
    smtp: &'a Smtp,
}

/// One email: what it stands for and how often it was tried.
struct Attempt<'a> {
    ids: &'a [String],
    attempts: i32,
    message_id: &'a str,
}

impl Worker<'_> {
    /// Sends `message` (or records why it could not be built) and records the
    /// outcome for every id it stands for.
    async fn send_and_record(
        &self,
        now: std::time::SystemTime,
        attempt: Attempt<'_>,
        message: Result<Message, String>,
    ) -> Result<(), tokio_postgres::Error> {
        let Attempt {
            ids,
            attempts,
            message_id,
        } = attempt;
        let smtp = self.smtp;
        let outcome = match message {
            Err(reason) => Outcome::Failed(reason),
            Ok(message) => match self.mailer.send(&message).await {
                Ok(()) => Outcome::Sent,
                Err(e) if e.permanent => {
                    Outcome::Failed(format!("the mail server refused it: {e}"))
                }
                Err(e) => Outcome::Retry(e.message),
            },
        };
        let (state, next, reason) = match outcome {
            Outcome::Sent => ("sent", None, String::new()),
            Outcome::Retry(e) if attempts >= smtp.max_attempts as i32 => (
                "failed",
                None,
                format!("gave up after {attempts} attempts; last: {e}"),
            ),
            Outcome::Retry(e) => {
                let delay = smtp
                    .backoff
                    .mul_f64(2f64.powi(attempts - 1).min(smtp.backoff_cap_factor()));
                tracing::warn!(notification = %ids[0], attempts, error = %e, "send failed; will retry");
                ("retrying", Some(now + delay), e)
            }
            Outcome::Failed(e) => ("failed", None, e),
        };
        let sent_at = (state == "sent").then_some(now);
        service_kit::metrics::global().count(
            "careline_notify_emails_total",
            "Notification emails tried, by outcome (sent, retrying, failed).",
            &[("outcome", state)],
        );
        self.client
            .execute(
                RECORD,
                &[
                    &ids,
                    &state,
                    &attempts,
                    &next,
                    &reason,
                    &message_id,
                    &sent_at,
                ],
            )
            .await?;
        Ok(())
    }

    /// Sends the one email `id` stands for (a reminder, a verification).
    async fn send_one(
        &self,
        now: std::time::SystemTime,
        id: String,
        attempts: i32,
        message_id: &str,
        message: Result<Message, String>,
    ) -> Result<(), tokio_postgres::Error> {
        let ids = [id];
        let attempt = Attempt {
            ids: &ids,
            attempts,
            message_id,
        };
        self.send_and_record(now, attempt, message).await
    }

    /// Sends, as one email, everything unsent for `recipient` on `thread`.
    async fn send_group(
        &self,
        now: std::time::SystemTime,
        recipient: String,
        thread: String,
    ) -> Result<(), tokio_postgres::Error> {
        let smtp = self.smtp;
        let group = self.client.query(GROUP, &[&recipient, &thread]).await?;
        let Some(first) = group.first() else {
            return Ok(());
        };
        let ids: Vec<String> = group.iter().map(|r| r.get(0)).collect();
        let (email, name): (String, String) = (first.get(1), first.get(2));
        let senders: Vec<(String, String)> = group.iter().map(|r| (r.get(3), r.get(4))).collect();
        let attempts = group.iter().map(|r| r.get::<_, i32>(5)).max().unwrap_or(0) + 1;
        let message_id = message_id(&ids[0], &smtp.domain);
        let message = compose(smtp, message_id.clone(), &thread, (&name, &email), &senders);
        let attempt = Attempt {
            ids: &ids,
            attempts,
            message_id: &message_id,
        };
        self.send_and_record(now, attempt, message).await
    }
}

/// An error of the statement doing `what`, with the server's code and
/// message (a database error's own `Display` says only "db error").
fn failed(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> anyhow::Error {
    move |e| anyhow::anyhow!("{what}: {}", projections::describe_error(&e))
}

/// Runs the worker until `stopping`: leads (or stands by until it may),
/// then sends what is due, waking when the projection moves or every
/// `poll`.
pub async fn run(
    database_url: String,
    smtp: Smtp,
    clock: Clock,
    mut checkpoint: watch::Receiver<u64>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut backoff = projections::Backoff::default();
    loop {
        match work(&database_url, &smtp, &clock, &mut checkpoint, &mut stopping).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), retry_in = ?backoff.next(), "notification delivery failed; restarting");
            }
        }
        if !backoff.wait(&stopping).await {
            return;
        }
    }
}

async fn work(
    database_url: &str,
    smtp: &Smtp,
    clock: &Clock,
    checkpoint: &mut watch::Receiver<u64>,
    stopping: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut client = projections::connect(database_url).await?;
    prepare(&mut client).await?;
    let mailer = Mailer::new(smtp, CONCURRENT_SENDS);
    let worker = Worker {
        client: &client,
        mailer: &mailer,
        smtp,
    };
    loop {
        if projections::try_lead(&client, LEADER).await? {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopping.wait_for(|s| *s) => return Ok(()),
        }
    }
    tracing::info!("delivering notifications");
    let mut last_reminder_pass: Option<std::time::SystemTime> = None;
    loop {
        if *stopping.borrow() {
            return Ok(());
        }
        let now = clock.now();
        let cutoff = proto::time::system_micros(now) - smtp.coalesce.as_micros() as i64;
        let due = client
            .query(DUE, &[&now, &cutoff])
            .await
            .map_err(failed("finding the notifications due"))?;
        // Sends are latency-bound: several at once, each group on its own.
        let heads: Vec<(String, String)> = due.iter().map(|h| (h.get(0), h.get(1))).collect();
        let mut pending = Vec::with_capacity(heads.len());
        for (recipient, thread) in heads {
            pending.push(worker.send_group(now, recipient, thread));
        }
        let sends = futures::stream::iter(pending).buffer_unordered(CONCURRENT_SENDS);
        let mut sends = std::pin::pin!(sends);
        while let Some(sent) = sends.next().await {
            sent.map_err(failed("sending and recording a notification"))?;
            if *stopping.borrow() {
                return Ok(());
            }
        }
        client
            .execute(SETTLE, &[])
            .await
            .map_err(failed("moving the settled watermark"))?;

        let pass_due = last_reminder_pass
            .and_then(|last| now.duration_since(last).ok())
            .is_none_or(|since| since >= REMINDER_PASS_EVERY);
        let mut reminded = 0;
        if pass_due {
            reminded = worker
                .remind(now)
                .await
                .map_err(failed("sending reminders"))?;
            // A full pass may have left more: the next one comes at once.
            if reminded < REMINDER_LIMIT {
                last_reminder_pass = Some(now);
            }
        }
        let verifications = worker
            .send_verifications(now)
            .await
            .map_err(failed("sending verification emails"))?;
        if due.is_empty() && reminded == 0 && verifications == 0 {
            let projection_gone = tokio::select! {
                moved = checkpoint.changed() => moved.is_err(),
                _ = tokio::time::sleep(smtp.poll) => false,
                _ = stopping.wait_for(|s| *s) => return Ok(()),
            };
            if projection_gone {
                tokio::time::sleep(smtp.poll).await;
            }
        }
    }
}

impl Worker<'_> {
    /// Sends the verification emails due; returns how many it sent or
    /// tried. Without a link key none is sent (the requests wait).
    async fn send_verifications(
        &self,
        now: std::time::SystemTime,
    ) -> Result<usize, tokio_postgres::Error> {
        let (client, smtp) = (self.client, self.smtp);
        let Some(links) = &smtp.links else {
            return Ok(0);
        };
        let cutoff = proto::time::system_micros(now) - smtp.link_lifetime.as_micros() as i64;
        let due = client.query(VERIFICATIONS_DUE, &[&cutoff, &now]).await?;
        for row in &due {
            let (request, person): (String, String) = (row.get(0), row.get(1));
            let (name, address): (String, String) = (row.get(2), row.get(3));
            let (requested, attempts): (i64, i32) = (row.get(4), row.get(5));
            let addressee = if row.get::<_, String>(6) == "person" {
                service_kit::Addressee::Person
            } else {
                service_kit::Addressee::Patient
            };
            let id = format!("verification/{request}");
            let message_id = message_id(&id, &smtp.domain);
            let expires_at = std::time::UNIX_EPOCH
                + Duration::from_micros(requested.max(0) as u64)
                + smtp.link_lifetime;
            let message = uuid::Uuid::parse_str(&person)
                .map_err(|_| format!("the person id {person:?} is not a UUID"))
                .and_then(|person_id| {
                    let token = links.mint(&service_kit::EmailLink {
                        person_id,
                        addressee,
                        email: address.clone(),
                        request_id: request.clone(),
                        expires_at,
                    });
                    compose_verification(
                        smtp,
                        message_id.clone(),
                        (&name, &address),
                        &token,
                        expires_at,
                    )
                });
            self.send_one(now, id, attempts + 1, &message_id, message)
                .await?;
        }
        Ok(due.len())
    }

    /// One reminder pass: sends the reminders due and moves the `reminded`
    /// watermark when the pass was complete. Returns how many it sent or tried.
    async fn remind(&self, now: std::time::SystemTime) -> Result<usize, tokio_postgres::Error> {
        let (client, smtp) = (self.client, self.smtp);
        let cutoff = proto::time::system_micros(now) - smtp.reminder_after.as_micros() as i64;
        let bound = client.query_one(REMINDER_BOUND, &[&cutoff]).await?;
        let (bound, from): (i64, i64) = (bound.get(0), bound.get(1));
        let unread = client
            .query(UNREAD, &[&cutoff, &now, &from, &bound])
            .await?;
        for row in &unread {
            let (event, thread, name, email, sender, role, attempts): (
                String,
                String,
                String,
                String,
                String,
                String,
                i32,
            ) = (
                row.get(0),
                row.get(1),
                row.get(2),
                row.get(3),
                row.get(4),
                row.get(5),
                row.get(6),
            );
            let id = format!("reminder/{event}");
            let message_id = message_id(&id, &smtp.domain);
            let message = compose_reminder(
                smtp,
                message_id.clone(),
                &thread,
                (&name, &email),
                (&sender, &role),
            );
            self.send_one(now, id, attempts + 1, &message_id, message)
                .await?;
        }
        if unread.len() < REMINDER_LIMIT {
            client.execute(REMINDED, &[&bound]).await?;
        }
        Ok(unread.len())
    }
}
