//! Only the command service writes history. The read services' NATS users
//! may publish on `<prefix>.events.access.>` to record reads; this is what
//! one of them could put there instead, published straight onto the log as
//! a plain JetStream client would: a message "from the consultant" on
//! Pat's thread, and one event of every kind of the contract, each dressed
//! as its own aggregate but on an access subject, and someone else's reads.
//! Every read model (inbox, audit trail, notification queue) sets each one
//! aside as forged, with its reason; none reaches the patient's thread, the
//! audit trail or an email.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use careline_client::demo::first_thread;
use prost::Message;
use proto::events::{Actor, AggregateType, Envelope, MessagePosted, Role, envelope::Payload};
use testkit::{Services, System};

/// A payload of the kind with field number `number`, empty.
fn empty_payload(number: i32) -> Payload {
    let mut bytes = Vec::new();
    prost::encoding::encode_key(
        number as u32,
        prost::encoding::WireType::LengthDelimited,
        &mut bytes,
    );
    prost::encoding::encode_varint(0, &mut bytes);
    Envelope::decode(bytes.as_slice())
        .unwrap()
        .payload
        .expect("a payload of every number the contract lists")
}

fn forged(payload: Payload, aggregate: AggregateType, id: &str, actor: &Actor) -> Envelope {
    let event_id = uuid::Uuid::now_v7().to_string();
    Envelope {
        event_id: event_id.clone(),
        event_type: payload.event_type().into(),
        schema_version: proto::contract::SCHEMA_VERSION,
        aggregate_type: aggregate as i32,
        aggregate_id: id.into(),
        occurred_at: Some(std::time::SystemTime::now().into()),
        actor: Some(actor.clone()),
        command_id: event_id.clone(),
        correlation_id: event_id,
        causation_id: String::new(),
        payload: Some(payload),
    }
}

/// What each read model (inbox, audit, notify) set aside: the reasons.
async fn set_aside(s: &System) -> Vec<(&'static str, Vec<String>)> {
    let client = projections::connect(&s.db.url).await.unwrap();
    let mut out = Vec::new();
    for projection in ["inbox", "audit", "notify"] {
        let letters = projections::dead_letters(&client, projection)
            .await
            .unwrap();
        out.push((projection, letters.into_iter().map(|l| l.reason).collect()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_forged_on_the_access_subjects_reach_no_read_model() {
    let s = System::start("forged", Services::all()).await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let before = s.settled().await;
    let store = s.stream.store();
    let prefix = &store.config().prefix;
    let nurse = org.nurse.person_id.to_string();
    let access = format!("{prefix}.events.access.{nurse}");
    let consultant = Actor {
        person_id: org.consultant.person_id.to_string(),
        role: Role::Professional as i32,
        on_behalf_of: String::new(),
        display_name: "Dr Sam Reed".into(),
    };

    let mut attacks = vec![forged(
        Payload::MessagePosted(MessagePosted {
            notice: None,
            attachments: vec![],
            message_id: uuid::Uuid::now_v7().to_string(),
            mention_ids: vec![],
            body: "Stop your dialysis this week.".into(),
            reopened: false,
        }),
        AggregateType::Thread,
        &thread,
        &consultant,
    )];
    // Every kind of the contract, as its own aggregate's, on the nurse's
    // access subject; the read records as someone else's.
    for (number, _) in proto::contract::event_types() {
        let payload = empty_payload(number);
        let kind = payload.aggregate_type();
        if kind == AggregateType::Access {
            attacks.push(forged(payload, kind, &nurse, &consultant));
        } else {
            attacks.push(forged(payload, kind, &thread, &consultant));
        }
    }
    for envelope in &attacks {
        store
            .jetstream()
            .publish(access.clone(), envelope.encode_to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let head = s.settled().await;
    assert_eq!(head, before + attacks.len() as u64);

    // Pat's thread: her message only.
    let detail = s
        .inbox(&org.patient)
        .get_thread(proto::inbox::GetThreadRequest {
            min_position: head,
            thread_id: thread.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detail.messages.len(), 1, "{:?}", detail.messages);
    assert!(
        detail
            .messages
            .iter()
            .all(|m| !m.body.contains("dialysis this week"))
    );

    // Her record's trail: nothing the consultant did.
    let trail = s
        .audit(&org.auditor)
        .record_trail(proto::audit::RecordTrailRequest {
            min_position: head,
            patient_id: org.patient.person_id.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let forged_ids: Vec<&str> = attacks.iter().map(|e| e.event_id.as_str()).collect();
    assert!(
        trail
            .entries
            .iter()
            .all(|e| e.actor_id != consultant.person_id
                && !forged_ids.contains(&e.event_id.as_str())),
        "{:?}",
        trail.entries
    );

    // No email about it: only the notices of Pat's own message.
    let notified = s
        .notify(&org.nurse)
        .thread_notifications(proto::notify::ThreadNotificationsRequest {
            min_position: head,
            thread_id: thread.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!notified.notifications.is_empty());
    assert!(
        notified.notifications.iter().all(|n| n.position <= before),
        "{:?}",
        notified.notifications
    );

    // Each read model set every one aside, as forged, with its reason.
    for (projection, reasons) in set_aside(&s).await {
        assert_eq!(reasons.len(), attacks.len(), "{projection}: {reasons:?}");
        assert!(
            reasons.iter().all(|r| r.starts_with("forged: ")),
            "{projection}: {reasons:?}"
        );
    }
    let client = projections::connect(&s.db.url).await.unwrap();
    let status = projections::status(&client).await.unwrap();
    assert!(
        status
            .iter()
            .all(|p| p.dead_letters == attacks.len() as u64)
    );
}

/// Whoever can publish on the domain subjects without the command
/// service's key (a NATS password or permission that leaked, a
/// misconfigured server) still cannot write history: an event there that
/// is unsigned, signed by a read service's key, by a key no writer has, or
/// whose bytes were changed after signing, is set aside by every read model
/// and left out by the command service when it loads the thread, which
/// goes on taking messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_on_the_domain_subjects_without_the_command_services_signature_are_set_aside() {
    use event_store::signing::SIGNATURE_HEADER;
    let s = System::start("forgedsig", Services::all()).await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let before = s.settled().await;
    let store = s.stream.store();
    let subject = format!("{}.events.thread.{thread}", store.config().prefix);
    let consultant = Actor {
        person_id: org.consultant.person_id.to_string(),
        role: Role::Professional as i32,
        on_behalf_of: String::new(),
        display_name: "Dr Sam Reed".into(),
    };
    let message = |body: &str| {
        forged(
            Payload::MessagePosted(MessagePosted {
                notice: None,
                attachments: vec![],
                message_id: uuid::Uuid::now_v7().to_string(),
                mention_ids: vec![],
                body: body.into(),
                reopened: false,
            }),
            AggregateType::Thread,
            &thread,
            &consultant,
        )
        .encode_to_vec()
    };
    let stranger = event_store::EventSigner::generate("stranger").unwrap();
    let reads = event_store::testing::test_reads_signer();
    let command = event_store::testing::test_signer();
    let signed_then_changed = command.sign(&subject, &message("Your results are fine."));
    let attacks: Vec<(Vec<u8>, Option<String>)> = vec![
        (message("Stop your dialysis this week."), None),
        (
            message("Stop your dialysis this week (reads)."),
            Some(reads.sign(&subject, &message("x"))),
        ),
        {
            let bytes = message("Stop your dialysis this week (stranger).");
            let signature = stranger.sign(&subject, &bytes);
            (bytes, Some(signature))
        },
        (
            message("Stop your dialysis this week (changed)."),
            Some(signed_then_changed),
        ),
    ];
    for (bytes, signature) in &attacks {
        let mut headers = async_nats::HeaderMap::new();
        if let Some(signature) = signature {
            headers.insert(SIGNATURE_HEADER, signature.as_str());
        }
        store
            .jetstream()
            .publish_with_headers(subject.clone(), headers, bytes.clone().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let head = s.settled().await;
    assert_eq!(head, before + attacks.len() as u64);

    // Pat's thread: her message only; and it still takes her next one.
    let shown = |at: u64| {
        let mut inbox = s.inbox(&org.patient);
        let thread = thread.clone();
        async move {
            inbox
                .get_thread(proto::inbox::GetThreadRequest {
                    min_position: at,
                    thread_id: thread,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let detail = shown(head).await;
    assert_eq!(detail.messages.len(), 1, "{:?}", detail.messages);
    let posted = s.post(&org.patient, &thread, "Thank you.").await;
    let detail = shown(posted).await;
    assert_eq!(detail.messages.len(), 2, "{:?}", detail.messages);
    assert!(detail.messages.iter().all(|m| !m.body.contains("dialysis")));

    // No email about them: only the notices of Pat's own messages.
    let notified = s
        .notify(&org.nurse)
        .thread_notifications(proto::notify::ThreadNotificationsRequest {
            min_position: posted,
            thread_id: thread.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        notified
            .notifications
            .iter()
            .all(|n| n.position <= before || n.position == posted),
        "{:?}",
        notified.notifications
    );

    // Each read model set every one aside, as forged, saying why.
    for (projection, reasons) in set_aside(&s).await {
        assert_eq!(reasons.len(), attacks.len(), "{projection}: {reasons:?}");
        for expected in [
            "unsigned",
            "a read service's, which writes reads only",
            "\"stranger\", which is not a writer's",
            "does not check",
        ] {
            assert!(
                reasons.iter().any(|r| r.contains(expected)),
                "{projection}: no {expected:?} in {reasons:?}"
            );
        }
    }
}

/// Publishes an event of kind `number`, dressed as the aggregate's of
/// `to`'s id, by `actor`, signed with `signer`: whether NATS took it.
async fn publish(
    store: &event_store::JetStreamStore,
    to: &str,
    number: i32,
    actor: &Actor,
    signer: &event_store::EventSigner,
) -> bool {
    let payload = empty_payload(number);
    let kind = payload.aggregate_type();
    let id = to.rsplit('.').next().unwrap_or_default().to_string();
    let bytes = forged(payload, kind, &id, actor).encode_to_vec();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        event_store::signing::SIGNATURE_HEADER,
        signer.sign(to, &bytes).as_str(),
    );
    let sent = async {
        store
            .jetstream()
            .publish_with_headers(to.to_string(), headers, bytes.into())
            .await?
            .await
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
    };
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(5), sent).await,
        Ok(Ok(_))
    )
}

/// As each production NATS user (`deploy/nats/users.conf`, over TLS), a
/// thief of that user's password, and for a read service of its event key
/// too, publishes every kind of event of the contract, dressed as its own
/// aggregate's, on every subject that user may write: the command user
/// (without the command service's key) on each domain subject, unsigned
/// and signed with a read service's key; each read service on the access
/// subjects (and the anchors' where allowed), signed with its own key; the
/// reader, nowhere. NATS refuses what a user may not publish; every read
/// model sets aside the rest; nothing reaches Pat's thread, her record's
/// trail or an email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_each_production_nats_user_no_event_of_any_kind_reaches_a_read_model() {
    use event_store::testing::{NatsServer, dev_certs, test_reads_signer};
    let certs = dev_certs();
    let server = NatsServer::start_with_users(Some(&certs)).await;
    let users = testkit::NatsUsers {
        url: server.url(),
        ca: certs.join("ca.pem"),
    };
    let s = System::start(
        "forged_users",
        Services {
            nats_users: Some(users.clone()),
            ..Services::all()
        },
    )
    .await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let before = s.settled().await;
    let consultant = Actor {
        person_id: org.consultant.person_id.to_string(),
        role: Role::Professional as i32,
        on_behalf_of: String::new(),
        display_name: "Dr Sam Reed".into(),
    };
    let nurse = org.nurse.person_id.to_string();
    let subject = |kind: &str, id: &str| format!("careline.events.{kind}.{id}");
    // Each user, the subjects it might write, and how its events are signed.
    let domain: Vec<String> = vec![
        subject("thread", &thread),
        subject("team", &org.renal),
        subject("patient", &org.patient.person_id.to_string()),
        subject("person", &nurse),
        subject("identity", &uuid::Uuid::now_v7().to_string()),
    ];
    let access: Vec<String> = vec![
        subject("access", &nurse),
        subject("access", proto::contract::ANCHOR_ID),
    ];
    // The command user's thief lacks the command service's key: a read
    // service's key is the best it has; a read service's thief has its own.
    let reads = test_reads_signer();
    let every_subject: Vec<String> = domain.iter().chain(&access).cloned().collect();
    let mut published = 0u64;
    let mut refused_by_nats = Vec::new();
    for user in ["command", "inbox", "audit", "notify", "reader"] {
        let store = event_store::JetStreamStore::connect(users.config(user))
            .await
            .unwrap();
        let kinds = proto::contract::event_types();
        // The first kind on every subject at once: NATS drops what this
        // user may not publish (no acknowledgement comes).
        let first = futures::future::join_all(
            every_subject
                .iter()
                .map(|to| publish(&store, to, kinds[0].0, &consultant, &reads)),
        )
        .await;
        let mut accepted = 0;
        let mut refused = 0;
        for (to, taken) in every_subject.iter().zip(first) {
            if !taken {
                refused += 1;
                continue;
            }
            accepted += 1;
            for (number, _) in &kinds[1..] {
                assert!(
                    publish(&store, to, *number, &consultant, &reads).await,
                    "{user} on {to}: refused after the first was taken"
                );
                accepted += 1;
            }
        }
        published += accepted;
        refused_by_nats.push((user, accepted, refused));
    }
    println!("published (events accepted, subjects refused by NATS) per user: {refused_by_nats:?}");
    // Only what users.conf allows got through: the command user on the
    // domain subjects, the audit user on both access subjects, inbox and
    // notify on the nurse's but not the anchors', the reader nowhere.
    let kinds = proto::contract::event_types().len() as u64;
    let expected = [
        ("command", 5 * kinds),
        ("inbox", kinds),
        ("audit", 2 * kinds),
        ("notify", kinds),
        ("reader", 0),
    ];
    for ((user, accepted, refused), (name, want)) in refused_by_nats.iter().zip(expected) {
        assert_eq!((*user, *accepted), (name, want));
        assert_eq!(
            *refused as u64,
            every_subject.len() as u64 - want / kinds,
            "{user}: every other subject refused"
        );
    }
    // (The audit service may anchor its chains meanwhile.)
    let head = s.settled().await;
    assert!(head >= before + published, "{head} {before} {published}");

    // Pat's thread: her message only.
    let detail = s
        .inbox(&org.patient)
        .get_thread(proto::inbox::GetThreadRequest {
            min_position: head,
            thread_id: thread.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detail.messages.len(), 1, "{:?}", detail.messages);
    // Her record's trail: nothing the consultant did.
    let trail = s
        .audit(&org.auditor)
        .record_trail(proto::audit::RecordTrailRequest {
            min_position: head,
            patient_id: org.patient.person_id.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        trail
            .entries
            .iter()
            .all(|e| e.actor_id != consultant.person_id),
        "{:?}",
        trail.entries
    );
    // No email about any of it.
    let notified = s
        .notify(&org.nurse)
        .thread_notifications(proto::notify::ThreadNotificationsRequest {
            min_position: head,
            thread_id: thread.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        notified.notifications.iter().all(|n| n.position <= before),
        "{:?}",
        notified.notifications
    );
    // Each read model set every one aside, as forged.
    for (projection, reasons) in set_aside(&s).await {
        assert_eq!(reasons.len() as u64, published, "{projection}: {reasons:?}");
        assert!(
            reasons.iter().all(|r| r.starts_with("forged: ")),
            "{projection}: {reasons:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&certs);
}
