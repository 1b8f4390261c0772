//! What each view shows after the seeds' scenario, through the real APIs,
//! reading our own writes.

use careline_client::Steps;
use std::time::Duration;

use careline_client::bearer::command_id;
use careline_client::demo::{DemoOrg, consult, first_thread};
use proto::command as cmd;
use proto::inbox as pb;
use tonic::Code;

use crate::support::{System, system, system_with_wait};

fn names(people: &[pb::Person]) -> Vec<String> {
    let mut names: Vec<String> = people.iter().map(|p| p.name.clone()).collect();
    names.sort();
    names
}

/// `org`'s renal team inbox as `inbox`'s caller sees it, read at `at`.
async fn renal_inbox(inbox: &mut testkit::Inbox, org: &DemoOrg, at: u64) -> pb::TeamInboxReply {
    inbox
        .team_inbox(pb::TeamInboxRequest {
            min_position: at,
            team_id: org.renal.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

fn filters(f: impl FnOnce(&mut pb::Filters)) -> Option<pb::Filters> {
    let mut filters = pb::Filters::default();
    f(&mut filters);
    Some(filters)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_as_each_view_shows_it() {
    let s = system("views").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    consult(&s.signer, &org, &thread).await.unwrap();
    let mut nurse = s.signer.client(&org.nurse).unwrap();
    let archived = nurse
        .archive_thread(cmd::ArchiveThreadRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
        })
        .await
        .unwrap()
        .into_inner();

    // The nurse's inbox, read at the archive's position: the thread is
    // archived, so it shows under "archived", not "active".
    let mut inbox = s.inbox(&org.nurse);
    let active = testkit::inbox_page(&mut inbox, archived.position).await;
    assert!(active.position >= archived.position);
    assert!(active.threads.iter().all(|t| t.thread_id != thread));
    let page = inbox
        .my_inbox(pb::MyInboxRequest {
            min_position: archived.position,
            filters: filters(|f| f.status = pb::StatusFilter::Archived as i32),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let summary = listed(&page, &thread, "archived thread listed");
    assert_eq!(summary.subject, "Fluid allowance before Monday's dialysis");
    assert_eq!(summary.patient_name, "Pat Jones");
    assert_eq!(summary.status, pb::ThreadStatus::Archived as i32);
    assert_eq!(
        summary.assignee.as_ref().unwrap().display,
        "Nina Patel (Renal Nurse)"
    );
    assert_eq!(
        names(&summary.participants),
        vec![
            "Chris Jones",
            "Lena Okafor",
            "Ned Brown",
            "Nina Patel",
            "Pat Jones"
        ],
        "the consultant left"
    );
    assert_eq!(summary.participant_count, 5);
    assert_eq!(summary.team_ids, vec![org.renal.clone()]);
    assert_eq!(summary.message_count, 2);
    assert_eq!(
        summary.unread_count, 2,
        "the nurse has read neither Pat's message nor the advice"
    );

    // Pat replies: the thread reopens, and is unread for the nurse.
    let reply = s
        .signer
        .client(&org.patient)
        .unwrap()
        .post_reply(&thread, "Thank you!")
        .await
        .unwrap();
    let page = testkit::inbox_page(&mut inbox, reply.position).await;
    let summary = &page.threads[0];
    assert_eq!(summary.thread_id, thread, "newest activity first");
    assert_eq!(summary.status, pb::ThreadStatus::Open as i32);
    assert_eq!(summary.unread_count, 3);

    // The whole thread, as Pat sees it.
    let detail = s
        .inbox(&org.patient)
        .get_thread(pb::GetThreadRequest {
            min_position: reply.position,
            thread_id: thread.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let bodies: Vec<(u32, &str, &str)> = detail
        .messages
        .iter()
        .map(|m| {
            (
                m.seq,
                m.author.as_ref().unwrap().name.as_str(),
                m.body.as_str(),
            )
        })
        .collect();
    assert_eq!(
        bodies,
        vec![
            (
                1,
                "Pat Jones",
                "My ankles are swollen again. How much can I drink on Sunday?"
            ),
            (2, "Dr Rowan Cole", "One litre on Sunday."),
            (3, "Pat Jones", "Thank you!"),
        ]
    );
    let cole = detail
        .participants
        .iter()
        .find(|p| p.person.as_ref().unwrap().name == "Dr Rowan Cole")
        .unwrap();
    assert_eq!(cole.reason, "added");
    assert!(!cole.active && cole.left_at.is_some() && cole.joined_at.is_some());
    let chris = detail
        .participants
        .iter()
        .find(|p| p.person.as_ref().unwrap().name == "Chris Jones")
        .unwrap();
    assert_eq!(chris.reason, "cc");
    let nina = detail
        .participants
        .iter()
        .find(|p| p.person.as_ref().unwrap().name == "Nina Patel")
        .unwrap();
    assert_eq!(
        (nina.reason.as_str(), nina.via_team_id.as_str()),
        ("team_auto_cc", org.renal.as_str())
    );
    assert_eq!(detail.assignments.len(), 1);
    assert_eq!(
        detail.assignments[0].assignee.as_ref().unwrap().name,
        "Nina Patel"
    );
    assert_eq!(
        detail.assignments[0].by.as_ref().unwrap().name,
        "Nina Patel"
    );
    // Read receipts: each author has read up to their own message.
    let receipts: Vec<(String, u32)> = detail
        .read_receipts
        .iter()
        .map(|r| (r.reader.as_ref().unwrap().name.clone(), r.seq))
        .collect();
    assert!(receipts.contains(&("Pat Jones".into(), 3)), "{receipts:?}");
    assert!(
        receipts.contains(&("Dr Rowan Cole".into(), 2)),
        "{receipts:?}"
    );

    // Nina reads; the receipt shows, and her unread count drops to 0.
    let read = nurse
        .mark_read(cmd::MarkReadRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
            message_id: reply.message_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let detail = inbox
        .get_thread(pb::GetThreadRequest {
            min_position: read.position,
            thread_id: thread.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detail.summary.as_ref().unwrap().unread_count, 0);
    assert!(detail.read_receipts.iter().any(
        |r| r.reader.as_ref().unwrap().name == "Nina Patel" && r.message_id == reply.message_id
    ));

    // The team inbox: counts and who is helping whom.
    let team = renal_inbox(&mut s.inbox(&org.lead), &org, read.position).await;
    assert_eq!(team.page.unwrap().threads[0].thread_id, thread);
    let counts = team.counts.unwrap();
    assert_eq!(
        (counts.unassigned, counts.assigned, counts.archived),
        (0, 1, 0)
    );
    assert_eq!(team.helping.len(), 1);
    assert_eq!(
        team.helping[0].assignee.as_ref().unwrap().name,
        "Nina Patel"
    );
    assert_eq!(team.helping[0].threads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_search_and_pages() {
    let s = system("filters").await;
    let org = s.org().await;
    let mut threads = Vec::new();
    for _ in 0..3 {
        threads.push(first_thread(&s.signer, &org).await.unwrap());
    }
    // Sam's thread to cardiology (he joins it with its code first).
    let code = s
        .signer
        .client(&org.admin)
        .unwrap()
        .issue_code(&org.cardiology)
        .await
        .unwrap();
    let mut sam = s.signer.client(&org.other_patient).unwrap();
    sam.join_team_with_code(cmd::JoinTeamWithCodeRequest {
        command_id: command_id(),
        team_id: org.cardiology.clone(),
        join_code: code,
        ..Default::default()
    })
    .await
    .unwrap();
    let sams = sam
        .start_thread(cmd::StartThreadRequest {
            attachments: vec![],
            command_id: command_id(),
            thread_id: String::new(),
            patient_id: org.other_patient.person_id.to_string(),
            subject: "Palpitations".into(),
            body: "Since Monday".into(),
            recipients: vec![cmd::Recipient {
                recipient: Some(cmd::recipient::Recipient::TeamId(org.cardiology.clone())),
            }],
            carer_ids: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let mut nurse = s.signer.client(&org.nurse).unwrap();
    nurse
        .assign_thread(cmd::AssignThreadRequest {
            command_id: command_id(),
            thread_id: threads[0].clone(),
            assignee_id: org.nurse.person_id.to_string(),
            if_assignee_id: None,
        })
        .await
        .unwrap();
    let last = s
        .signer
        .client(&org.lead)
        .unwrap()
        .assign_thread(cmd::AssignThreadRequest {
            command_id: command_id(),
            thread_id: threads[1].clone(),
            assignee_id: org.lead.person_id.to_string(),
            if_assignee_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    let at = last.position.max(sams.position);

    let mut inbox = s.inbox(&org.nurse);
    let ids = |page: pb::ThreadPage| {
        page.threads
            .into_iter()
            .map(|t| t.thread_id)
            .collect::<Vec<_>>()
    };
    let query = |f: Option<pb::Filters>| pb::MyInboxRequest {
        min_position: at,
        filters: f,
        ..Default::default()
    };
    for (assignment, expected) in [
        (pb::AssignmentFilter::AssignedToMe, &threads[0]),
        (pb::AssignmentFilter::AssignedToOthers, &threads[1]),
        (pb::AssignmentFilter::Unassigned, &threads[2]),
    ] {
        let found = ids(inbox
            .my_inbox(query(filters(|f| f.assignment = assignment as i32)))
            .await
            .unwrap()
            .into_inner());
        assert_eq!(found, vec![expected.clone()], "{assignment:?}");
    }
    let by_team = ids(inbox
        .my_inbox(query(filters(|f| f.team_id = org.renal.clone())))
        .await
        .unwrap()
        .into_inner());
    assert_eq!(by_team.len(), 3);
    // Newest activity first: the lead's assignment was the latest change.
    assert_eq!(by_team[0], threads[1]);

    // Name search, any part of the name in any case, for the cardiologist
    // (Sam Green's thread); wildcards are text.
    let mut cardio = s.inbox(&org.cardiologist);
    let sam = vec![sams.aggregate_id.clone()];
    for (prefix, expected) in [
        ("sam", &sam),
        ("SAM G", &sam),
        ("Sa", &sam),
        ("green", &sam),
        ("M GRE", &sam),
        ("pat", &vec![]),
        ("%", &vec![]),
        ("_am", &vec![]),
    ] {
        let found = ids(cardio
            .my_inbox(query(filters(|f| f.patient_name_prefix = prefix.into())))
            .await
            .unwrap()
            .into_inner());
        assert_eq!(&found, expected, "{prefix}");
    }

    // Pages of one, following the cursor, visit every thread once in order.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = inbox
            .my_inbox(pb::MyInboxRequest {
                min_position: at,
                page_size: 1,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.threads.iter().map(|t| t.thread_id.clone()));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    let all = ids(inbox.my_inbox(query(None)).await.unwrap().into_inner());
    assert_eq!(seen, all);
    assert_eq!(all.len(), 3);

    let bad = inbox
        .my_inbox(pb::MyInboxRequest {
            cursor: "nonsense".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("cursor"), "{}", bad.message());
}

/// `thread`'s summary in `page`, which must list it (`what` says why).
fn listed<'a>(page: &'a pb::ThreadPage, thread: &str, what: &str) -> &'a pb::ThreadSummary {
    page.threads
        .iter()
        .find(|t| t.thread_id == thread)
        .expect(what)
}

/// Whom Pat may message, as of `at`.
async fn pat_may_message(s: &System, org: &DemoOrg, at: u64) -> pb::WhoCanIMessageReply {
    s.inbox(&org.patient)
        .who_can_i_message(pb::WhoCanIMessageRequest {
            min_position: at,
            patient_id: org.patient.person_id.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_can_i_message_lists_teams_contacts_and_carers() {
    let s = system("whocan").await;
    let org = s.org().await;
    let head = s.head().await;
    let reply = pat_may_message(&s, &org, head).await;
    let teams: Vec<(&str, bool, Option<&str>)> = reply
        .teams
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.auto_cc,
                t.default_contact.as_ref().map(|p| p.display.as_str()),
            )
        })
        .collect();
    assert_eq!(
        teams,
        vec![
            (
                "Nutrition & Dietetics",
                false,
                Some("Susan Turner (Dietitian)")
            ),
            ("Renal Unit", true, None)
        ]
    );
    // Only non-auto-CC teams' contactable members are listed one by one.
    let staff: Vec<(&str, bool)> = reply
        .professionals
        .iter()
        .map(|p| {
            (
                p.person.as_ref().unwrap().display.as_str(),
                p.default_contact,
            )
        })
        .collect();
    assert_eq!(staff, vec![("Susan Turner (Dietitian)", true)]);
    let carers: Vec<(&str, &str)> = reply
        .carers
        .iter()
        .map(|c| {
            (
                c.person.as_ref().unwrap().name.as_str(),
                c.relationship.as_str(),
            )
        })
        .collect();
    assert_eq!(carers, vec![("Chris Jones", "parent")]);
    // PALS is open to every patient (and Pat has granted it access too).
    let others: Vec<(&str, Option<&str>)> = reply
        .other_teams
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.default_contact.as_ref().map(|p| p.name.as_str()),
            )
        })
        .collect();
    assert_eq!(
        others,
        vec![("Patient Advice and Liaison Service", Some("Pam Reid"))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_see_which_patients_have_not_read_their_replies() {
    let s = system("unread").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let posted = s
        .signer
        .client(&org.nurse)
        .unwrap()
        .post_reply(&thread, "Please call us.")
        .await
        .unwrap();
    let mut lead = s.inbox(&org.lead);
    let ask = |days: u32, at: u64| pb::NotReadByPatientRequest {
        min_position: at,
        team_id: org.renal.clone(),
        days: Some(days),
    };
    // Not yet a day old: not chased at 7 days, chased at 0.
    let week = lead
        .not_read_by_patient(ask(7, posted.position))
        .await
        .unwrap()
        .into_inner();
    assert!(week.threads.is_empty());
    let now = lead
        .not_read_by_patient(ask(0, posted.position))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.threads.len(), 1);
    assert_eq!(now.threads[0].thread.as_ref().unwrap().thread_id, thread);
    assert!(now.threads[0].patient_can_be_emailed);
    assert!(now.threads[0].last_staff_message_at.is_some());

    // Pat reads it: no longer chased.
    let read = s
        .signer
        .client(&org.patient)
        .unwrap()
        .mark_read(cmd::MarkReadRequest {
            command_id: command_id(),
            thread_id: thread,
            message_id: posted.message_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        lead.not_read_by_patient(ask(0, read.position))
            .await
            .unwrap()
            .into_inner()
            .threads
            .is_empty()
    );
    // Only team members may ask.
    let denied = s
        .inbox(&org.dietitian)
        .not_read_by_patient(ask(0, 0))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_waits_for_its_position_and_says_how_far_behind_it_is() {
    let s = system_with_wait("ryw", Duration::from_millis(400)).await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    // Every write is visible to a query given its position, at once.
    let mut nurse = s.signer.client(&org.nurse).unwrap();
    let mut inbox = s.inbox(&org.nurse);
    for i in 0..10 {
        let posted = nurse.post(&thread, &format!("update {i}")).await.unwrap();
        let detail = inbox
            .get_thread(pb::GetThreadRequest {
                min_position: posted,
                thread_id: thread.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(detail.messages.last().unwrap().body, format!("update {i}"));
    }
    // A position the log has not reached: UNAVAILABLE after the wait.
    let ahead = s.head().await + 1000;
    let started = std::time::Instant::now();
    let status = inbox
        .my_inbox(pb::MyInboxRequest {
            min_position: ahead,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("1000 behind"),
        "{}",
        status.message()
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_keeps_the_kind_they_were_first_registered_as() {
    use event_store::EventStore;
    let s = crate::support::system("onekindinbox").await;
    let org = s.org().await;
    // A registration of the patient's id as a carer, straight onto the log
    // (the command service refuses it): the inbox ignores it.
    let forged = event_store::AggregateRef::new(
        proto::events::AggregateType::Person,
        org.patient.person_id.to_string(),
    )
    .unwrap();
    let position = s
        .stream
        .store()
        .append(
            &event_store::testing::envelope(
                &forged,
                proto::events::envelope::Payload::CarerRegistered(proto::events::CarerRegistered {
                    carer_id: org.patient.person_id.to_string(),
                    name: "Not Pat".into(),
                    email: "attacker@example.org".into(),
                    email_verified: false,
                }),
            ),
            0,
        )
        .await
        .unwrap()
        .position;
    let reply = pat_may_message(&s, &org, position).await;
    assert!(!reply.teams.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_thread_comes_a_page_at_a_time_newest_first() {
    let s = crate::support::system("threadpages").await;
    let org = s.org().await;
    let thread = careline_client::demo::first_thread(&s.signer, &org)
        .await
        .unwrap();
    let mut nurse = s.signer.client(&org.nurse).unwrap();
    let mut position = 0;
    for i in 0..6 {
        position = nurse
            .post_message(proto::command::PostMessageRequest {
                attachments: vec![],
                command_id: careline_client::bearer::command_id(),
                mention_ids: vec![],
                thread_id: thread.clone(),
                body: format!("reply {i}"),
            })
            .await
            .unwrap()
            .into_inner()
            .position;
    }
    let page = |page_size: u32, before_seq: u32| {
        let mut inbox = s.inbox(&org.patient);
        let thread = thread.clone();
        async move {
            inbox
                .get_thread(pb::GetThreadRequest {
                    min_position: position,
                    thread_id: thread,
                    page_size,
                    before_seq,
                })
                .await
        }
    };
    let seqs = |d: &pb::ThreadDetail| d.messages.iter().map(|m| m.seq).collect::<Vec<_>>();
    let all = page(0, 0).await.unwrap().into_inner();
    assert_eq!(seqs(&all), vec![1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(all.earlier_messages, 0);
    let newest = page(3, 0).await.unwrap().into_inner();
    assert_eq!(seqs(&newest), vec![5, 6, 7]);
    assert_eq!(newest.earlier_messages, 4);
    let older = page(3, 5).await.unwrap().into_inner();
    assert_eq!(seqs(&older), vec![2, 3, 4]);
    assert_eq!(older.earlier_messages, 1);
    let too_many = page(201, 0).await.unwrap_err();
    assert_eq!(too_many.code(), tonic::Code::InvalidArgument);
    assert!(too_many.message().contains("page_size"));
}

/// Nina archived Pat's thread too soon; she writes on it again, and it is
/// back in the team's active inbox (Pat is emailed about a message she can
/// find: archiving never took it out of her list).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_message_on_an_archived_thread_brings_it_back() {
    let s = system("staffreopen").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let mut nurse = s.signer.client(&org.nurse).unwrap();
    nurse.archive(&thread).await.unwrap();
    let active = |at| pb::MyInboxRequest {
        min_position: at,
        ..Default::default()
    };
    let at = s.head().await;
    let before = s.inbox(&org.nurse).my_inbox(active(at)).await.unwrap();
    assert!(
        before
            .get_ref()
            .threads
            .iter()
            .all(|t| t.thread_id != thread),
        "archived: out of the nurse's active inbox"
    );
    let patients = s.inbox(&org.patient).my_inbox(active(at)).await.unwrap();
    listed(patients.get_ref(), &thread, "still in the patient's list");

    let at = nurse
        .post(&thread, "One more thing: bring your fluid chart.")
        .await
        .unwrap();
    for who in [&org.patient, &org.nurse] {
        let page = s
            .inbox(who)
            .my_inbox(active(at))
            .await
            .unwrap()
            .into_inner();
        let summary = listed(&page, &thread, "back in the active inbox");
        assert_eq!(summary.status, pb::ThreadStatus::Open as i32);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_see_how_long_the_patient_has_waited_and_what_they_were_added_to_by_name() {
    let s = system("waiting").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let again = s.post(&org.patient, &thread, "And my weight is up.").await;
    let mut nurse = s.inbox(&org.nurse);
    let waiting = async |inbox: &mut testkit::Inbox, at: u64| {
        let reply = renal_inbox(inbox, &org, at).await;
        let page = reply.page.unwrap();
        let row = page.threads.iter().find(|t| t.thread_id == thread).unwrap();
        row.waiting_since
    };
    let posted = |at: u64| {
        let thread = thread.clone();
        let mut inbox = s.inbox(&org.nurse);
        async move {
            let detail = inbox
                .get_thread(pb::GetThreadRequest {
                    min_position: at,
                    thread_id: thread,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            detail
                .messages
                .iter()
                .map(|m| m.posted_at)
                .collect::<Vec<_>>()
        }
    };
    // Waiting since her first message, not her second.
    let first = posted(again).await[0];
    assert!(first.is_some());
    assert_eq!(waiting(&mut nurse, again).await, first);
    // The patient is never told.
    let hers = testkit::inbox_page(&mut s.inbox(&org.patient), again).await;
    assert!(hers.threads.iter().all(|t| t.waiting_since.is_none()));

    // Staff answer: nobody waits. Her reply: waiting since it.
    let answered = s.post(&org.nurse, &thread, "Up to a litre.").await;
    assert_eq!(waiting(&mut nurse, answered).await, None);
    let replied = s.post(&org.patient, &thread, "Thank you.").await;
    let times = posted(replied).await;
    assert_eq!(waiting(&mut nurse, replied).await, *times.last().unwrap());
    // A staff note is not an answer.
    let noted = s
        .signer
        .client(&org.nurse)
        .unwrap()
        .post_staff_note(cmd::PostStaffNoteRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
            body: "Check her weights.".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        waiting(&mut nurse, noted.position).await,
        *times.last().unwrap()
    );

    // The dietitian, added by name, finds it among the threads she is on
    // in person; the lead reaches it only through the team.
    let added = s
        .signer
        .client(&org.nurse)
        .unwrap()
        .add_professional(&thread, &org.dietitian)
        .await
        .unwrap();
    let by_name = |at: u64| pb::MyInboxRequest {
        min_position: at,
        filters: filters(|f| f.on_by_name = true),
        ..Default::default()
    };
    let ids = |page: pb::ThreadPage| {
        page.threads
            .into_iter()
            .map(|t| t.thread_id)
            .collect::<Vec<_>>()
    };
    let dietitian = ids(s
        .inbox(&org.dietitian)
        .my_inbox(by_name(added))
        .await
        .unwrap()
        .into_inner());
    assert_eq!(dietitian, vec![thread.clone()]);
    let mut lead = s.inbox(&org.lead);
    let leads = ids(lead.my_inbox(by_name(added)).await.unwrap().into_inner());
    assert!(leads.is_empty(), "{leads:?}");
    let all = ids(testkit::inbox_page(&mut lead, added).await);
    assert!(all.contains(&thread));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_inbox_comes_longest_waiting_first_a_page_at_a_time() {
    let s = system("longest_waiting").await;
    let org = s.org().await;
    let mut pat = s.signer.client(&org.patient).unwrap();
    let mut started = Vec::new();
    for subject in ["First", "Second", "Third"] {
        started.push(
            pat.start_to_team(&org.patient, &org.renal, subject, "Please call me.")
                .await
                .unwrap(),
        );
    }
    // The first is answered: the other two wait, the second the longest.
    let at = s.post(&org.nurse, &started[0], "Calling you now.").await;
    let [first, second, third] = [&started[0], &started[1], &started[2]];
    let all_pages = async |order: pb::ThreadOrder| {
        let mut inbox = s.inbox(&org.nurse);
        let mut ids = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = inbox
                .team_inbox(pb::TeamInboxRequest {
                    min_position: at,
                    team_id: org.renal.clone(),
                    filters: filters(|f| f.order = order as i32),
                    page_size: 1,
                    cursor: cursor.clone(),
                })
                .await
                .unwrap()
                .into_inner()
                .page
                .unwrap();
            ids.extend(page.threads.into_iter().map(|t| t.thread_id));
            if page.next_cursor.is_empty() {
                return ids;
            }
            cursor = page.next_cursor;
        }
    };
    assert_eq!(
        all_pages(pb::ThreadOrder::LongestWaiting).await,
        vec![second.clone(), third.clone(), first.clone()]
    );
    assert_eq!(
        all_pages(pb::ThreadOrder::Unspecified).await,
        vec![first.clone(), third.clone(), second.clone()]
    );
    // A patient's own list has no such order: refused, saying why.
    let refused = s
        .inbox(&org.patient)
        .my_inbox(pb::MyInboxRequest {
            min_position: at,
            filters: filters(|f| f.order = pb::ThreadOrder::LongestWaiting as i32),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("filters.order"), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_member_finds_the_teams_patients_by_name() {
    let s = system("team-patients").await;
    let org = s.org().await;
    let at = first_thread(&s.signer, &org).await.unwrap();
    let at = s.post(&org.patient, &at, "Hello").await;
    let ask = |prefix: &str| pb::TeamPatientsRequest {
        min_position: at,
        team_id: org.renal.clone(),
        name_prefix: prefix.into(),
    };
    let mut nurse = s.inbox(&org.nurse);
    for (prefix, expected) in [
        ("pa", vec!["Pat Jones"]),
        ("SAM", vec!["Sam Green"]),
        ("zz", vec![]),
        ("%", vec![]),
    ] {
        let found = nurse.team_patients(ask(prefix)).await.unwrap().into_inner();
        assert_eq!(names(&found.patients), expected, "{prefix}");
    }
    let empty = nurse.team_patients(ask(" ")).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    // Only the team's members; the patients themselves least of all.
    for who in [&org.dietitian, &org.patient, &org.admin] {
        let denied = s.inbox(who).team_patients(ask("pa")).await.unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{}", who.name);
    }
}

/// A team inbox's counts and "who is helping whom" after each move (the
/// projection keeps them as tallies): started, assigned, archived, left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_counts_follow_every_move() {
    let s = system("tallies").await;
    let org = s.org().await;
    let mut threads = Vec::new();
    for _ in 0..3 {
        threads.push(first_thread(&s.signer, &org).await.unwrap());
    }
    let mut nurse = s.signer.client(&org.nurse).unwrap();
    let mut lead = s.inbox(&org.lead);
    let mut counts = async |at: u64| {
        let reply = renal_inbox(&mut lead, &org, at).await;
        let c = reply.counts.unwrap();
        let helping: Vec<(String, u32)> = reply
            .helping
            .iter()
            .map(|h| (h.assignee.as_ref().unwrap().name.clone(), h.threads))
            .collect();
        ((c.unassigned, c.assigned, c.archived), helping)
    };
    let nina = |n: u32| vec![("Nina Patel".to_string(), n)];

    let at = nurse.assign(&threads[0], &org.nurse).await.unwrap();
    assert_eq!(counts(at).await, ((2, 1, 0), nina(1)));
    let at = nurse.assign(&threads[1], &org.nurse).await.unwrap();
    assert_eq!(counts(at).await, ((1, 2, 0), nina(2)));
    let at = nurse.archive(&threads[0]).await.unwrap();
    assert_eq!(counts(at).await, ((1, 1, 1), nina(1)));
    // Leaving a thread one holds unassigns it.
    let at = nurse.leave(&threads[1]).await.unwrap();
    assert_eq!(counts(at).await, ((2, 0, 1), vec![]));
}

/// A list narrowed to one patient's record shows that record's threads,
/// only them, and refuses an id that is not one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_narrowed_to_a_patient() {
    let s = system("bypatient").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let at = s
        .signer
        .client(&org.nurse)
        .unwrap()
        .assign(&thread, &org.nurse)
        .await
        .unwrap();
    for viewer in [&org.nurse, &org.carer] {
        let mut inbox = s.inbox(viewer);
        let mut ask = async |patient: String| {
            inbox
                .my_inbox(pb::MyInboxRequest {
                    min_position: at,
                    filters: filters(|f| f.patient_id = patient),
                    ..Default::default()
                })
                .await
                .map(|r| {
                    r.into_inner()
                        .threads
                        .into_iter()
                        .map(|t| t.thread_id)
                        .collect::<Vec<_>>()
                })
        };
        assert_eq!(
            ask(org.patient.person_id.to_string()).await.unwrap(),
            vec![thread.clone()]
        );
        let other = uuid::Uuid::now_v7().to_string();
        assert!(ask(other).await.unwrap().is_empty());
        let refused = ask("not-an-id".into()).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(refused.message().contains("filters.patient_id"));
    }
}

/// A nurse replies and archives at once: the archive is the team's
/// housekeeping. Pat's list and her carer's still show the thread, with the
/// unread reply counted; neither has anything "archived".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_archiving_never_hides_a_reply_from_the_patient_or_carer() {
    let s = system("archiveside").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let mut nurse = s.signer.client(&org.nurse).unwrap();
    nurse
        .post(&thread, "Up to one litre on Sunday is fine.")
        .await
        .unwrap();
    let at = nurse.archive(&thread).await.unwrap();
    for (who, name) in [(&org.patient, "patient"), (&org.carer, "carer")] {
        let mut inbox = s.inbox(who);
        let active = inbox
            .my_inbox(pb::MyInboxRequest {
                min_position: at,
                filters: filters(|f| {
                    f.status = pb::StatusFilter::Active as i32;
                    if who == &org.carer {
                        f.patient_id = org.patient.person_id.to_string();
                    }
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let summary = listed(&active, &thread, name);
        assert_eq!(summary.status, pb::ThreadStatus::Archived as i32);
        assert!(
            summary.unread_count >= 1,
            "{name}: the nurse's reply is unread and counted"
        );
        let archived = inbox
            .my_inbox(pb::MyInboxRequest {
                min_position: at,
                filters: filters(|f| f.status = pb::StatusFilter::Archived as i32),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            archived.threads.is_empty(),
            "{name}: nothing is archived on the patient's side"
        );
    }
    // The team's own inbox: out of the active list, under archived.
    let mut inbox = s.inbox(&org.nurse);
    let page = testkit::inbox_page(&mut inbox, at).await;
    assert!(page.threads.iter().all(|t| t.thread_id != thread));
}

/// What Pat is offered, she can do. Ned, contactable in the renal unit
/// (automatic CC), joins Nutrition & Dietetics as a contact too: he is not
/// offered alone under it (the command service would refuse him alone:
/// he is reached through the renal unit). Then every team and every
/// professional offered, each alone, starts a thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipient_offered_to_a_patient_is_accepted() {
    let s = system("offeredaccepted").await;
    let org = s.org().await;
    let mut admin = s.signer.client(&org.admin).unwrap();
    admin
        .add_team_member(cmd::AddTeamMemberRequest {
            command_id: command_id(),
            team_id: org.nutrition.clone(),
            professional_id: org.nurse2.person_id.to_string(),
            contactable: true,
            lead: false,
        })
        .await
        .unwrap();
    let head = s.head().await;
    let offered = pat_may_message(&s, &org, head).await;
    let ned = org.nurse2.person_id.to_string();
    assert!(
        offered
            .professionals
            .iter()
            .all(|p| p.person.as_ref().unwrap().person_id != ned),
        "{:?}",
        offered.professionals
    );
    let mut choices: Vec<(String, cmd::recipient::Recipient)> = Vec::new();
    for t in offered.teams.iter().chain(&offered.other_teams) {
        choices.push((
            t.name.clone(),
            cmd::recipient::Recipient::TeamId(t.team_id.clone()),
        ));
    }
    for p in &offered.professionals {
        let person = p.person.as_ref().unwrap();
        choices.push((
            person.display.clone(),
            cmd::recipient::Recipient::ProfessionalId(person.person_id.clone()),
        ));
    }
    assert!(choices.len() >= 4, "{choices:?}");
    let mut pat = s.signer.client(&org.patient).unwrap();
    for (name, to) in choices {
        pat.start_thread(cmd::StartThreadRequest {
            attachments: vec![],
            command_id: command_id(),
            thread_id: String::new(),
            patient_id: org.patient.person_id.to_string(),
            subject: format!("To {name}"),
            body: "A question.".into(),
            recipients: vec![cmd::Recipient {
                recipient: Some(to),
            }],
            carer_ids: vec![],
        })
        .await
        .unwrap_or_else(|e| panic!("{name} was offered and refused: {e:?}"));
    }
}
