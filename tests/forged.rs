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
