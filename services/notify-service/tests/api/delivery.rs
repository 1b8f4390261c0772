//! Who is emailed, what the email says (and does not), and delivery through
//! an SMTP server that is down for a while.

use careline_client::Steps;
use std::collections::BTreeMap;
use std::time::Duration;

use careline_client::bearer::command_id;
use careline_client::demo::first_thread;
use proto::command as cmd;
use proto::notify as pb;
use tonic::Code;

use crate::support::{Sink, System, header, smtp, system, system_with_clock};

/// How many emails each person received, by the name in `To:`.
fn per_recipient(mails: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for mail in mails {
        let to = header(mail, "To").unwrap();
        let name = to.split(" <").next().unwrap().trim_matches('"').to_string();
        *counts.entry(name).or_default() += 1;
    }
    counts
}

async fn states(s: &System, who: &service_kit::Caller, thread: &str) -> Vec<pb::Notification> {
    s.notify(who)
        .thread_notifications(pb::ThreadNotificationsRequest {
            min_position: s.head().await,
            thread_id: thread.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .notifications
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_but_the_author_gets_one_email_with_no_clinical_content() {
    let mut sink = Sink::reserve("notifyright");
    sink.start().await;
    let s = system("notifyright", smtp(sink.port)).await;
    let org = s.org().await;
    // Pat writes to the Renal Unit (automatic CC: Nina, Ned, Lena) with her
    // father Chris CC'd; then Nina replies.
    let thread = first_thread(&s.signer, &org).await.unwrap();
    // (Waiting for the first emails, so that the reply is not coalesced with
    // the first message into one email per person.)
    sink.wait_for(4).await;
    s.post(&org.nurse, &thread, "Please weigh yourself each morning.")
        .await;

    let mails = sink.wait_for(8).await;
    assert_eq!(mails.len(), 8, "{:?}", per_recipient(&mails));
    let counts = per_recipient(&mails);
    // Pat and Nina each wrote once (no email for their own message).
    assert_eq!(counts.get("Pat Jones"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("Nina Patel"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("Chris Jones"), Some(&2), "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 8);

    let mut ids = std::collections::HashSet::new();
    for mail in &mails {
        // Nothing of the thread: neither its subject nor any message.
        for secret in [
            "Fluid allowance",
            "dialysis",
            "ankles",
            "drink",
            "weigh yourself",
        ] {
            assert!(
                !mail.contains(secret),
                "an email contains {secret:?}:\n{mail}"
            );
        }
        assert!(mail.contains(&format!("https://careline.test/threads/{thread}")));
        let subject = header(mail, "Subject").unwrap();
        assert!(subject.starts_with("New message from "), "{subject}");
        assert!(ids.insert(header(mail, "Message-ID").unwrap().to_string()));
    }
    let to_pat = mails
        .iter()
        .find(|m| header(m, "To").unwrap().contains("Pat Jones"))
        .unwrap();
    assert!(to_pat.contains("new message from Nina Patel ("), "{to_pat}");

    // Staff on the thread see that everyone was told.
    let told = states(&s, &org.nurse, &thread).await;
    assert_eq!(told.len(), 8);
    assert!(
        told.iter()
            .all(|n| n.state == pb::DeliveryState::Sent as i32 && n.sent_at.is_some()),
        "{told:?}"
    );
    // Replaying the log into a new generation recreates the same queue and
    // sends nothing again.
    projections::rebuild(
        std::sync::Arc::new(notify_service::NotifyProjection),
        s.stream.store().clone(),
        projections::RunnerConfig::new(s.db.url.clone(), 5),
        |_| {},
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(sink.received().len(), 8);
    assert_eq!(states(&s, &org.nurse, &thread).await, told);

    // The consultant of the addressed team, not on the thread, may ask too.
    assert_eq!(states(&s, &org.consultant, &thread).await.len(), 8);
    // Nobody else may ask.
    for who in [&org.patient, &org.cardiologist] {
        let refused = s
            .notify(who)
            .thread_notifications(pb::ThreadNotificationsRequest {
                min_position: 0,
                thread_id: thread.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::NotFound);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_without_a_verified_email_shows_as_undeliverable() {
    let mut sink = Sink::reserve("notifyunverified");
    sink.start().await;
    let s = system("notifyunverified", smtp(sink.port)).await;
    let org = s.org().await;
    // Sam Green registered himself without verifying his email.
    let thread = s
        .signer
        .client(&org.other_patient)
        .unwrap()
        .start_to_team(
            &org.other_patient,
            &org.renal,
            "Palpitations",
            "Since Monday",
        )
        .await
        .unwrap();
    sink.wait_for(3).await;
    s.post(&org.nurse, &thread, "Please call the ward.").await;
    let told = states(&s, &org.nurse, &thread).await;
    let to_sam: Vec<_> = told
        .iter()
        .filter(|n| n.recipient_id == org.other_patient.person_id.to_string())
        .collect();
    assert_eq!(to_sam.len(), 1, "{told:?}");
    assert_eq!(to_sam[0].state, pb::DeliveryState::Undeliverable as i32);
    assert_eq!(to_sam[0].reason, "no verified email address");
    assert_eq!(to_sam[0].recipient_kind, "patient");
    // Staff still get theirs; Sam's never reaches the mail server.
    let mails = sink.wait_for(3 + 2).await;
    assert!(
        mails
            .iter()
            .all(|m| !header(m, "To").unwrap().contains("Sam Green"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_mail_server_down_then_up_everything_is_delivered_once() {
    let mut sink = Sink::reserve("notifydown");
    let s = system("notifydown", smtp(sink.port)).await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();

    // The server is down: the notifications wait and say so.
    let mut retrying = Vec::new();
    for _ in 0..100 {
        retrying = states(&s, &org.nurse, &thread).await;
        if retrying.len() == 4
            && retrying
                .iter()
                .all(|n| n.state == pb::DeliveryState::Retrying as i32 && n.attempts >= 2)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        retrying
            .iter()
            .all(|n| n.state == pb::DeliveryState::Retrying as i32 && !n.reason.is_empty()),
        "{retrying:?}"
    );

    // It comes back: each is delivered exactly once.
    sink.start().await;
    let mails = sink.wait_for(4).await;
    assert_eq!(mails.len(), 4);
    let told = states(&s, &org.nurse, &thread).await;
    assert!(
        told.iter()
            .all(|n| n.state == pb::DeliveryState::Sent as i32),
        "{told:?}"
    );
    // The retries were below the settled watermark by then; it now stands
    // at the newest notification, so the worker's scans stay short.
    let db = projections::connect(&s.db.url).await.unwrap();
    let newest: i64 = db
        .query_one("SELECT max(position) FROM notify.notifications", &[])
        .await
        .unwrap()
        .get(0);
    let mut settled = 0;
    for _ in 0..100 {
        settled = db
            .query_one("SELECT settled FROM careline_notify.progress", &[])
            .await
            .unwrap()
            .get(0);
        if settled == newest {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(settled, newest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_within_the_window_go_out_as_one_email() {
    let mut sink = Sink::reserve("notifycoalesce");
    sink.start().await;
    let now = std::sync::Arc::new(std::sync::Mutex::new(std::time::SystemTime::now()));
    let mut config = smtp(sink.port);
    config.coalesce = Duration::from_secs(120);
    let clock = notify_service::Clock::manual(now.clone());
    let s = system_with_clock("notifycoalesce", config, clock).await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let mut nurse = s.signer.client(&org.nurse).unwrap();
    for body in [
        "One litre on Sunday.",
        "Half in the morning.",
        "Weigh yourself.",
    ] {
        nurse.post(&thread, body).await.unwrap();
    }
    // Inside the window nothing goes out, whatever the queue holds.
    assert_eq!(states(&s, &org.nurse, &thread).await.len(), 4 + 3 * 4);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(sink.received().is_empty());

    // The window passes (counted from now: seeding the organisation may
    // take seconds on a loaded machine): one email per person for
    // everything they missed.
    *now.lock().unwrap() = std::time::SystemTime::now() + Duration::from_secs(121);
    let mails = sink.wait_for(5).await;
    let counts = per_recipient(&mails);
    assert_eq!(counts.len(), 5, "{counts:?}");
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    let to = |name: &str| {
        mails
            .iter()
            .find(|m| header(m, "To").unwrap().contains(name))
            .unwrap()
            .clone()
    };
    assert!(to("Pat Jones").contains("3 new messages from Nina Patel (Renal Nurse)"));
    let ned = to("Ned Brown");
    assert!(
        ned.contains("4 new messages from Pat Jones (patient) and Nina Patel (Renal Nurse)"),
        "{ned}"
    );
    let told = states(&s, &org.nurse, &thread).await;
    assert!(
        told.iter()
            .all(|n| n.state == pb::DeliveryState::Sent as i32)
    );
}

/// Waits until every notification of `thread` has gone out.
async fn all_sent(s: &System, who: &service_kit::Caller, thread: &str) {
    for _ in 0..200 {
        let told = states(s, who, thread).await;
        if !told.is_empty()
            && told
                .iter()
                .all(|n| n.state == pb::DeliveryState::Sent as i32)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("notifications of {thread} were not all sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_who_has_not_read_a_reply_after_a_week_is_reminded_once() {
    let mut sink = Sink::reserve("notifyremind");
    sink.start().await;
    // The clock starts a minute ahead, so that what is posted now is due.
    let now = std::sync::Arc::new(std::sync::Mutex::new(
        std::time::SystemTime::now() + Duration::from_secs(60),
    ));
    let clock = notify_service::Clock::manual(now.clone());
    let s = system_with_clock("notifyremind", smtp(sink.port), clock).await;
    let org = s.org().await;
    let unread = first_thread(&s.signer, &org).await.unwrap();
    let read = s
        .signer
        .client(&org.patient)
        .unwrap()
        .start_to_team(
            &org.patient,
            &org.renal,
            "Transport to clinic",
            "Can I get a lift on Monday?",
        )
        .await
        .unwrap();
    let mut nurse = s.signer.client(&org.nurse).unwrap();
    let mut replies = Vec::new();
    for thread in [&unread, &read] {
        let id = command_id();
        nurse
            .post_message(cmd::PostMessageRequest {
                attachments: vec![],
                command_id: id.clone(),
                mention_ids: vec![],
                thread_id: thread.clone(),
                body: "Yes.".into(),
            })
            .await
            .unwrap();
        replies.push(id);
    }
    // Pat reads the reply in the second thread only.
    s.signer
        .client(&org.patient)
        .unwrap()
        .mark_read(cmd::MarkReadRequest {
            command_id: command_id(),
            thread_id: read.clone(),
            message_id: replies[1].clone(),
        })
        .await
        .unwrap();
    all_sent(&s, &org.nurse, &unread).await;
    all_sent(&s, &org.nurse, &read).await;
    let before = sink.received().len();

    // Six days on: nothing. Seven days and a minute: one reminder, once.
    *now.lock().unwrap() += Duration::from_secs(6 * 86_400);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), before);
    *now.lock().unwrap() += Duration::from_secs(86_400 + 60);
    let mails = sink.wait_for(before + 1).await;
    assert_eq!(mails.len(), before + 1);
    let reminders: Vec<&String> = mails
        .iter()
        .filter(|m| header(m, "Subject").unwrap().starts_with("Reminder"))
        .collect();
    assert_eq!(reminders.len(), 1);
    let reminder = reminders[0];
    assert!(header(reminder, "To").unwrap().contains("Pat Jones"));
    assert!(reminder.contains("Reminder: an unread message from Nina Patel (Renal Nurse)"));
    assert!(reminder.contains(&format!("/threads/{unread}")));
    assert!(!reminder.contains("Yes."));
    // The nurse sees that Pat was reminded, and of which message.
    let mut shown = Vec::new();
    for _ in 0..100 {
        shown = states(&s, &org.nurse, &unread).await;
        if shown
            .iter()
            .any(|n| n.reminder && n.state == pb::DeliveryState::Sent as i32)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reminded: Vec<_> = shown.iter().filter(|n| n.reminder).collect();
    assert_eq!(reminded.len(), 1, "{shown:?}");
    assert_eq!(reminded[0].recipient_name, "Pat Jones");
    assert_eq!(reminded[0].sender_name, "Nina Patel");
    assert_eq!(reminded[0].state, pb::DeliveryState::Sent as i32);
    let reply = shown
        .iter()
        .find(|n| !n.reminder && n.recipient_name == "Pat Jones" && n.sender_name == "Nina Patel")
        .unwrap();
    assert_eq!(reminded[0].event_id, reply.event_id);
    assert!(
        states(&s, &org.nurse, &read)
            .await
            .iter()
            .all(|n| !n.reminder)
    );
    *now.lock().unwrap() += Duration::from_secs(30 * 86_400);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carer_whose_consent_ended_is_not_told_until_added_again() {
    let mut sink = Sink::reserve("notifyconsent");
    sink.start().await;
    let s = system("notifyconsent", smtp(sink.port)).await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let mut pat = s.signer.client(&org.patient).unwrap();
    let mut nurse = s.signer.client(&org.nurse).unwrap();
    let carer = org.carer.person_id.to_string();
    // Whether the carer is told of the message at `position`.
    let told = |position: u64, states: &[pb::Notification]| {
        states
            .iter()
            .any(|n| n.position == position && n.recipient_id == carer && !n.reminder)
    };
    let post = |body: &'static str| cmd::PostMessageRequest {
        attachments: vec![],
        command_id: command_id(),
        mention_ids: vec![],
        thread_id: thread.clone(),
        body: body.into(),
    };

    pat.revoke_carer_consent(cmd::RevokeCarerConsentRequest {
        command_id: command_id(),
        patient_id: org.patient.person_id.to_string(),
        carer_id: carer.clone(),
    })
    .await
    .unwrap();
    let after_revoke = nurse.post_message(post("One")).await.unwrap().into_inner();
    pat.grant_carer_consent(cmd::GrantCarerConsentRequest {
        command_id: command_id(),
        patient_id: org.patient.person_id.to_string(),
        carer_id: carer.clone(),
        relationship: proto::events::CarerRelationship::FamilyMember as i32,
        expires_at: None,
    })
    .await
    .unwrap();
    let after_grant = nurse.post_message(post("Two")).await.unwrap().into_inner();
    pat.add_participants(cmd::AddParticipantsRequest {
        command_id: command_id(),
        staff_side: false,
        thread_id: thread.clone(),
        recipients: vec![],
        carer_ids: vec![carer.clone()],
    })
    .await
    .unwrap();
    let after_add = nurse
        .post_message(post("Three"))
        .await
        .unwrap()
        .into_inner();

    let states = states(&s, &org.nurse, &thread).await;
    assert!(
        !told(after_revoke.position, &states),
        "told after revocation"
    );
    assert!(
        !told(after_grant.position, &states),
        "told after a new consent alone"
    );
    assert!(
        told(after_add.position, &states),
        "not told once added again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_in_the_log_is_set_aside_and_notifications_go_on() {
    let mut sink = Sink::reserve("notifyjunk");
    sink.start().await;
    let s = system("notifyjunk", smtp(sink.port)).await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let junk =
        event_store::testing::publish_junk(s.stream.store(), &event_store::testing::new_thread())
            .await;
    let reply = s
        .signer
        .client(&org.nurse)
        .unwrap()
        .post(&thread, "Noted.")
        .await
        .unwrap();
    let states = states(&s, &org.nurse, &thread).await;
    assert!(states.iter().any(|n| n.position == reply));
    let client = projections::connect(&s.db.url).await.unwrap();
    let letters = projections::dead_letters(&client, "notify").await.unwrap();
    assert_eq!(
        letters.iter().map(|l| l.position).collect::<Vec<_>>(),
        vec![junk]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_name_the_registered_sender_not_the_tokens_name() {
    let mut sink = Sink::reserve("notifyname");
    sink.start().await;
    let s = system("notifyname", smtp(sink.port)).await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    sink.wait_for(4).await;
    // A token naming the nurse with someone else's name, and one whose
    // name is several lines with a link.
    let impostor = service_kit::Caller {
        name: "Dr Impostor".into(),
        ..org.nurse.clone()
    };
    s.post(&impostor, &thread, "Noted.").await;
    let mails = sink.wait_for(8).await;
    assert!(mails.iter().all(|m| !m.contains("Impostor")), "{mails:?}");
    assert!(mails.iter().any(|m| m.contains("Nina Patel")));

    let multiline = service_kit::Caller {
        name: "Nina Patel\nRead it at https://evil.example".into(),
        ..org.nurse.clone()
    };
    let refused = s
        .signer
        .client(&multiline)
        .unwrap()
        .post(&thread, "Noted.")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
}

/// The renal unit wants every member to hear of patients' messages: with
/// team alerts on, Dr Cole (in the team, not contactable by patients, not
/// on the thread) is emailed of Pat's message too, content-free; of a
/// nurse's reply he is not (alerts are for patients' and carers' messages).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_team_alerts_every_member_hears_of_a_patients_message() {
    let mut sink = Sink::reserve("notifyalerts");
    sink.start().await;
    let s = system("notifyalerts", smtp(sink.port)).await;
    let org = s.org().await;
    s.signer
        .client(&org.admin)
        .unwrap()
        .set_team_alerts(cmd::SetTeamAlertsRequest {
            command_id: command_id(),
            team_id: org.renal.clone(),
            enabled: true,
        })
        .await
        .unwrap();
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let mails = sink.wait_for(5).await;
    let counts = per_recipient(&mails);
    assert_eq!(counts.get("Dr Rowan Cole"), Some(&1), "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 5, "{counts:?}");
    let to_cole = mails
        .iter()
        .find(|m| header(m, "To").unwrap().contains("Rowan Cole"))
        .unwrap();
    for secret in ["Fluid allowance", "dialysis", "ankles"] {
        assert!(!to_cole.contains(secret), "{to_cole}");
    }
    assert!(to_cole.contains(&format!("https://careline.test/threads/{thread}")));

    s.post(&org.nurse, &thread, "Please weigh yourself each morning.")
        .await;
    // Pat, Ned, Lena and Chris hear of the reply; Dr Cole does not.
    let mails = sink.wait_for(9).await;
    let counts = per_recipient(&mails);
    assert_eq!(counts.values().sum::<usize>(), 9, "{counts:?}");
    assert_eq!(counts.get("Dr Rowan Cole"), Some(&1), "{counts:?}");
}

/// Who was told of a thread's messages is a read of the record: Nina
/// looking it up is recorded in the log before she sees the answer, and
/// the audit trail says so in plain words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looking_up_who_was_told_is_an_audited_read() {
    let s = System::start(
        "notifyaudited",
        testkit::Services {
            notify: Some(smtp(9)),
            audit: true,
            ..Default::default()
        },
    )
    .await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let before = s.head().await;
    let told = states(&s, &org.nurse, &thread).await;
    assert!(!told.is_empty());
    let at = s.settled().await;
    assert!(at > before, "the read was recorded in the log");

    let patient = org.patient.person_id.to_string();
    let page = s
        .audit(&org.auditor)
        .record_trail(proto::audit::RecordTrailRequest {
            min_position: at,
            patient_id: patient,
            range: Some(proto::audit::Range {
                page_size: 500,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let views: Vec<(&str, &str)> = page
        .entries
        .iter()
        .filter(|e| e.position > before)
        .map(|e| (e.call.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        views,
        vec![(
            "careline.notify.v1.NotificationService/ThreadNotifications",
            "Nina Patel looked up who was told of the thread's messages"
        )]
    );
}
