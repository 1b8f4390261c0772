//! Who sees a thread: one table, run against every service that answers
//! about a thread (ARCHITECTURE.md, "Who sees a thread"). Every service
//! runs here on one stream and one database; each row is one person in one
//! relation to the thread, each column one call, and each cell says whether
//! the call is answered (true) or refused as if the thread were not theirs
//! (false). A cell on which two services disagree is a defect.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use command_service::client::{Bearer, command_id};
use command_service::demo::{DemoOrg, Signer, first_thread, seed};
use event_store::EventStore;
use event_store::testing::TestStream;
use projections::testing::TestDatabase;
use proto::audit as audit_pb;
use proto::command as cmd;
use proto::inbox as inbox_pb;
use proto::notify as notify_pb;
use service_kit::{Caller, Role};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// The calls, in the order of a row's cells.
const CALLS: [&str; 6] = [
    "PostMessage",
    "MarkRead",
    "GetThread",
    "MyInbox lists it",
    "ThreadTrail",
    "ThreadNotifications",
];

/// The table: who, and whether each call is answered.
const TABLE: [(&str, [bool; 6]); 16] = [
    ("the patient", [true, true, true, true, true, false]),
    ("another patient", [false; 6]),
    (
        "a carer on it, with consent",
        [true, true, true, true, false, false],
    ),
    ("a carer with consent, not on it", [false; 6]),
    ("a carer on it whose consent was revoked", [false; 6]),
    (
        "a professional on it",
        [true, true, true, true, false, true],
    ),
    ("a professional who left it", [false; 6]),
    (
        "a member of a team it is addressed to",
        [false, false, true, true, false, true],
    ),
    (
        "a member of a team holding a grant in force",
        [false, false, true, true, false, true],
    ),
    ("a member of a team whose grant expired", [false; 6]),
    ("a professional in no relation", [false; 6]),
    ("a token that says professional for a carer", [false; 6]),
    ("an admin", [false; 6]),
    ("an auditor", [false, false, false, false, true, false]),
    ("an operator", [false; 6]),
    ("an admin token for someone never granted it", [false; 6]),
];

struct System {
    stream: TestStream,
    _db: TestDatabase,
    signer: Signer,
    inbox: Channel,
    audit: Channel,
    notify: Channel,
    _stops: Vec<oneshot::Sender<()>>,
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn stopper() -> (oneshot::Sender<()>, impl Future<Output = ()> + Send) {
    let (stop, stopped) = oneshot::channel::<()>();
    (stop, async {
        let _ = stopped.await;
    })
}

/// Every service on port 0, on one stream and one database.
async fn start(label: &str) -> System {
    let stream = TestStream::new(label).await;
    let db = TestDatabase::new(label).await;
    let store = stream.store().clone();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let keys = || service_kit::test_issuer().verifier();
    let wait = Duration::from_secs(10);

    let command = command_service::Application::with_app(
        any,
        command_service::App::new(store.clone(), 10_000),
        keys(),
    )
    .await
    .unwrap();
    let command_addr = command.local_addr();
    let (stop_command, stopped) = stopper();
    tokio::spawn(command.run(stopped));

    let inbox = inbox_service::Application::with_store(
        inbox_service::Config {
            listen: any,
            database_url: db.url.clone(),
            store: stream.config().clone(),
            wait_for_position: wait,
            batch_size: 500,
            pool_size: 4,
            record_reads: true,
        },
        store.clone(),
        keys(),
    )
    .await
    .unwrap();
    let inbox_addr = inbox.local_addr();
    let (stop_inbox, stopped) = stopper();
    tokio::spawn(inbox.run(stopped));

    let audit = audit_service::Application::with_store(
        audit_service::Config {
            listen: any,
            database_url: db.url.clone(),
            store: stream.config().clone(),
            wait_for_position: wait,
            batch_size: 500,
            pool_size: 4,
            export_stall: Duration::from_secs(60),
        },
        store.clone(),
        keys(),
    )
    .await
    .unwrap();
    let audit_addr = audit.local_addr();
    let (stop_audit, stopped) = stopper();
    tokio::spawn(audit.run(stopped));

    // No mail server: deliveries wait and retry, which changes nothing here.
    let smtp = notify_service::Smtp {
        host: "127.0.0.1".into(),
        port: 9,
        tls: notify_service::TlsMode::None,
        credentials: None,
        from: "Careline <no-reply@careline.test>".parse().unwrap(),
        domain: "careline.test".into(),
        base_url: "https://careline.test".into(),
        max_attempts: 3,
        backoff: Duration::from_secs(60),
        poll: Duration::from_millis(200),
        coalesce: Duration::ZERO,
        reminder_after: Duration::from_secs(7 * 86_400),
        clock: notify_service::Clock::system(),
    };
    let notify = notify_service::Application::with_store(
        notify_service::Config {
            listen: any,
            database_url: db.url.clone(),
            store: stream.config().clone(),
            smtp,
            wait_for_position: wait,
            batch_size: 100,
        },
        store,
        keys(),
    )
    .await
    .unwrap();
    let notify_addr = notify.local_addr();
    let (stop_notify, stopped) = stopper();
    tokio::spawn(notify.run(stopped));

    System {
        signer: Signer::new(channel(command_addr).await, service_kit::test_issuer()),
        inbox: channel(inbox_addr).await,
        audit: channel(audit_addr).await,
        notify: channel(notify_addr).await,
        stream,
        _db: db,
        _stops: vec![stop_command, stop_inbox, stop_audit, stop_notify],
    }
}

fn person(role: Role, name: &str) -> Caller {
    Caller {
        person_id: uuid::Uuid::now_v7(),
        role,
        name: name.into(),
    }
}

fn professional(id: &Caller) -> cmd::Recipient {
    cmd::Recipient {
        recipient: Some(cmd::recipient::Recipient::ProfessionalId(
            id.person_id.to_string(),
        )),
    }
}

/// Registers a professional in a new team of their own.
async fn in_new_team(s: &System, org: &DemoOrg, who: &Caller, team: &str) -> String {
    let mut admin = s.signer.client(&org.admin).unwrap();
    admin
        .register_professional(cmd::RegisterProfessionalRequest {
            command_id: command_id(),
            professional_id: who.person_id.to_string(),
            name: who.name.clone(),
            role_label: "Physiotherapist".into(),
            work_email: format!("{}@hospital.example", who.person_id.simple()),
        })
        .await
        .unwrap();
    let team_id = admin
        .create_team(cmd::CreateTeamRequest {
            command_id: command_id(),
            name: team.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .aggregate_id;
    admin
        .add_team_member(cmd::AddTeamMemberRequest {
            command_id: command_id(),
            team_id: team_id.clone(),
            professional_id: who.person_id.to_string(),
            contactable: true,
            lead: false,
        })
        .await
        .unwrap();
    team_id
}

/// The thread, its latest message (a staff reply nobody else has read),
/// and the people of each row.
async fn scenario(s: &System) -> (String, String, Vec<Caller>) {
    let org = seed(&s.signer).await.unwrap();
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let patient_id = org.patient.person_id.to_string();
    let mut nina = s.signer.client(&org.nurse).unwrap();
    let mut pat = s.signer.client(&org.patient).unwrap();

    // Specialists brought in; the dietitian then leaves.
    nina.add_participants(cmd::AddParticipantsRequest {
        command_id: command_id(),
        thread_id: thread.clone(),
        recipients: vec![
            professional(&org.cardiologist),
            professional(&org.dietitian),
        ],
        carer_ids: vec![],
    })
    .await
    .unwrap();
    s.signer
        .client(&org.dietitian)
        .unwrap()
        .leave_thread(cmd::LeaveThreadRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
        })
        .await
        .unwrap();

    // A second carer, copied in under consent, which the patient revokes.
    let revoked = person(Role::Carer, "Rita Evans");
    s.signer
        .client(&org.admin)
        .unwrap()
        .register_carer(cmd::RegisterCarerRequest {
            command_id: command_id(),
            carer_id: revoked.person_id.to_string(),
            name: revoked.name.clone(),
            email: "rita.evans@example.org".into(),
            email_verified: true,
        })
        .await
        .unwrap();
    pat.grant_carer_consent(cmd::GrantCarerConsentRequest {
        command_id: command_id(),
        patient_id: patient_id.clone(),
        carer_id: revoked.person_id.to_string(),
        relationship: cmd::CarerRelationship::FamilyMember as i32,
        expires_at: None,
    })
    .await
    .unwrap();
    nina.add_participants(cmd::AddParticipantsRequest {
        command_id: command_id(),
        thread_id: thread.clone(),
        recipients: vec![],
        carer_ids: vec![revoked.person_id.to_string()],
    })
    .await
    .unwrap();
    pat.revoke_carer_consent(cmd::RevokeCarerConsentRequest {
        command_id: command_id(),
        patient_id: patient_id.clone(),
        carer_id: revoked.person_id.to_string(),
    })
    .await
    .unwrap();

    // A carer with consent who is not on the thread: the patient's consent
    // to the demo's second carer.
    pat.grant_carer_consent(cmd::GrantCarerConsentRequest {
        command_id: command_id(),
        patient_id: patient_id.clone(),
        carer_id: org.carer_without_consent.person_id.to_string(),
        relationship: cmd::CarerRelationship::Friend as i32,
        expires_at: None,
    })
    .await
    .unwrap();

    // A team whose grant runs out in two seconds.
    let phil = person(Role::Professional, "Phil Moss");
    let physio = in_new_team(s, &org, &phil, "Physiotherapy").await;
    let expiry = SystemTime::now() + Duration::from_secs(2);
    pat.grant_record_access(cmd::GrantRecordAccessRequest {
        command_id: command_id(),
        patient_id: patient_id.clone(),
        team_id: physio,
        expires_at: Some(expiry.into()),
        reason: "Exercises after the fall".into(),
    })
    .await
    .unwrap();

    let unrelated = person(Role::Professional, "Una Burke");
    in_new_team(s, &org, &unrelated, "Dermatology").await;
    let posing = Caller {
        role: Role::Professional,
        ..org.carer.clone()
    };
    let self_made = person(Role::Admin, "Max Power");

    let reply = nina
        .post_message(cmd::PostMessageRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
            body: "Up to one litre on Sunday.".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .message_id;

    // Let the grant lapse.
    let left = expiry.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(500)).await;

    let people = vec![
        org.patient.clone(),
        org.other_patient.clone(),
        org.carer.clone(),
        org.carer_without_consent.clone(),
        revoked,
        org.cardiologist.clone(),
        org.dietitian.clone(),
        org.consultant.clone(),
        org.pals_officer.clone(),
        phil,
        unrelated,
        posing,
        org.admin.clone(),
        org.auditor.clone(),
        org.operator.clone(),
        self_made,
    ];
    (thread, reply, people)
}

/// Answered, or refused as not theirs; anything else fails the test.
fn answered<T>(call: &str, who: &str, result: Result<T, Status>) -> bool {
    match result {
        Ok(_) => true,
        Err(s) if matches!(s.code(), Code::NotFound | Code::PermissionDenied) => false,
        Err(s) => panic!("{call} for {who}: {:?} {}", s.code(), s.message()),
    }
}

async fn row(
    s: &System,
    (thread, reply): (&str, &str),
    who: &Caller,
    label: &str,
    at: u64,
) -> [bool; 6] {
    let token = s.signer.token(who);
    let bearer = || Bearer::new(&token).unwrap();
    let mut inbox = inbox_pb::inbox_service_client::InboxServiceClient::with_interceptor(
        s.inbox.clone(),
        bearer(),
    );
    let mut audit = audit_pb::audit_service_client::AuditServiceClient::with_interceptor(
        s.audit.clone(),
        bearer(),
    );
    let mut notify =
        notify_pb::notification_service_client::NotificationServiceClient::with_interceptor(
            s.notify.clone(),
            bearer(),
        );
    let get = inbox
        .get_thread(inbox_pb::GetThreadRequest {
            min_position: at,
            thread_id: thread.into(),
            ..Default::default()
        })
        .await;
    let listed = inbox
        .my_inbox(inbox_pb::MyInboxRequest {
            min_position: at,
            page_size: 200,
            ..Default::default()
        })
        .await
        .map(|page| {
            page.into_inner()
                .threads
                .iter()
                .any(|t| t.thread_id == thread)
        });
    let listed = match listed {
        Ok(listed) => listed,
        Err(e) => {
            !matches!(e.code(), Code::NotFound | Code::PermissionDenied)
                && panic!("MyInbox for {label}: {e:?}")
        }
    };
    let trail = audit
        .thread_trail(audit_pb::ThreadTrailRequest {
            min_position: at,
            thread_id: thread.into(),
            range: None,
        })
        .await;
    let notifications = notify
        .thread_notifications(notify_pb::ThreadNotificationsRequest {
            min_position: at,
            thread_id: thread.into(),
        })
        .await;
    // Commands last: they change the thread (nothing, when refused).
    let mut command = s.signer.client(who).unwrap();
    let marked = command
        .mark_read(cmd::MarkReadRequest {
            command_id: command_id(),
            thread_id: thread.into(),
            message_id: reply.into(),
        })
        .await;
    let posted = command
        .post_message(cmd::PostMessageRequest {
            command_id: command_id(),
            thread_id: thread.into(),
            body: "Checking in.".into(),
        })
        .await;
    [
        answered(CALLS[0], label, posted),
        answered(CALLS[1], label, marked),
        answered(CALLS[2], label, get),
        listed,
        answered(CALLS[4], label, trail),
        answered(CALLS[5], label, notifications),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_follows_one_rule_of_who_sees_a_thread() {
    let s = start("visibility").await;
    let (thread, reply, people) = scenario(&s).await;
    assert_eq!(people.len(), TABLE.len());
    let mut wrong = Vec::new();
    for ((label, expected), who) in TABLE.iter().zip(&people) {
        let at = s.stream.store().last_position().await.unwrap();
        let got = row(&s, (&thread, &reply), who, label, at).await;
        for (i, call) in CALLS.iter().enumerate() {
            if got[i] != expected[i] {
                wrong.push(format!(
                    "{label}: {call} {} (the table says {})",
                    if got[i] { "answered" } else { "refused" },
                    if expected[i] { "answered" } else { "refused" }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "cells that differ:\n{}", wrong.join("\n"));
}
