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
    let client = projections::connect(&s.db.url).await.unwrap();
    for projection in ["inbox", "audit", "notify"] {
        let letters = projections::dead_letters(&client, projection)
            .await
            .unwrap();
        assert_eq!(letters.len(), attacks.len(), "{projection}: {letters:?}");
        assert!(
            letters.iter().all(|l| l.reason.starts_with("forged: ")),
            "{projection}: {letters:?}"
        );
    }
    let status = projections::status(&client).await.unwrap();
    assert!(
        status
            .iter()
            .all(|p| p.dead_letters == attacks.len() as u64)
    );
}
