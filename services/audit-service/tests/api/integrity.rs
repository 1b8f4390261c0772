//! Tampering with the audit table is caught by verify; a rebuild yields the
//! same chains.

use std::sync::Arc;

use careline_client::Steps;
use careline_client::demo::first_thread;
use projections::RunnerConfig;
use proto::audit as pb;

use service_kit::Caller;

use crate::support::{System, system};

use audit_service::{anchor, chain, queries};
use event_store::testing::publish_junk;
use event_store::{AggregateRef, EventStore};
use proto::events::AggregateType;

async fn verify(
    s: &System,
    officer: &Caller,
    patient: &str,
    against_stream: bool,
) -> pb::VerifyReply {
    s.audit(officer)
        .verify(pb::VerifyRequest {
            min_position: 0,
            patient_id: patient.into(),
            against_stream,
        })
        .await
        .unwrap()
        .into_inner()
}

/// Runs SQL on the audit tables as someone with direct database access
/// would, past the triggers that refuse changes.
async fn tamper(s: &System, sql: &str) {
    let client = projections::connect(&s.db.url).await.unwrap();
    client
        .batch_execute(&format!(
            "SET search_path TO audit; SET session_replication_role = replica; {sql}"
        ))
        .await
        .unwrap();
}

/// The scenario's privacy officer and patient.
async fn scenario(s: &System) -> (Caller, String) {
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let mut nurse = s.signer.client(&org.nurse).unwrap();
    for body in ["First reply", "Second reply", "Third reply"] {
        nurse.post(&thread, body).await.unwrap();
    }
    s.settled().await;
    (org.auditor.clone(), org.patient.person_id.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_refuses_changes_and_verify_catches_edits_deletions_and_swaps() {
    let s = system("audittamper").await;
    let (officer, patient) = scenario(&s).await;
    let chain = format!("patient/{patient}");

    let clean = verify(&s, &officer, &patient, true).await;
    assert!(clean.intact, "{:?}", clean.findings);
    assert_eq!(clean.chains, 1);
    assert!(clean.entries >= 6);
    assert!(verify(&s, &officer, "", true).await.intact);

    // Without bypassing the triggers, the table refuses changes.
    let client = projections::connect(&s.db.url).await.unwrap();
    for sql in [
        format!("UPDATE audit.entries SET action = 'x' WHERE chain = '{chain}'"),
        format!("DELETE FROM audit.entries WHERE chain = '{chain}'"),
    ] {
        let refused = client.batch_execute(&sql).await.unwrap_err();
        assert!(
            format!("{refused:?}").contains("never changed or removed"),
            "{refused:?}"
        );
    }

    // An edited row.
    tamper(
        &s,
        &format!(
            "UPDATE entries SET action = 'Nobody did anything' WHERE chain = '{chain}' AND seq = 3"
        ),
    )
    .await;
    let found = verify(&s, &officer, &patient, false).await;
    assert!(!found.intact);
    assert!(
        found
            .findings
            .iter()
            .any(|f| f.seq == 3 && f.problem.contains("content was changed")),
        "{:?}",
        found.findings
    );
    tamper(
        &s,
        &format!("UPDATE entries SET action = (SELECT action FROM entries WHERE chain = '{chain}' AND seq = 4) WHERE chain = '{chain}' AND seq = 3"),
    )
    .await;
    assert!(!verify(&s, &officer, &patient, false).await.intact);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_or_swapped_row_is_caught() {
    let s = system("auditdelete").await;
    let (officer, patient) = scenario(&s).await;
    let chain = format!("patient/{patient}");

    // Two rows swapped: their places in the log exchanged.
    tamper(
        &s,
        &format!(
            "UPDATE entries SET position = -position WHERE chain = '{chain}' AND seq IN (2, 3);
             UPDATE entries SET position = CASE seq
                 WHEN 2 THEN -(SELECT position FROM entries WHERE chain = '{chain}' AND seq = 3)
                 ELSE -(SELECT position FROM entries WHERE chain = '{chain}' AND seq = 2) END
               WHERE chain = '{chain}' AND seq IN (2, 3);"
        ),
    )
    .await;
    let swapped = verify(&s, &officer, &patient, false).await;
    assert!(!swapped.intact, "a swap went unnoticed");

    // A row removed from the middle.
    let s = system("auditdelete2").await;
    let (officer, patient) = scenario(&s).await;
    let chain = format!("patient/{patient}");
    tamper(
        &s,
        &format!("DELETE FROM entries WHERE chain = '{chain}' AND seq = 2"),
    )
    .await;
    let removed = verify(&s, &officer, &patient, false).await;
    assert!(!removed.intact);
    assert!(
        removed
            .findings
            .iter()
            .any(|f| f.problem.contains("removed")),
        "{:?}",
        removed.findings
    );

    // The last row removed before any anchor: the chain alone cannot tell,
    // the log can (the anchors' test below: once anchored, Verify alone).
    let s = system("auditdelete3").await;
    let (officer, patient) = scenario(&s).await;
    let chain = format!("patient/{patient}");
    tamper(
        &s,
        &format!("DELETE FROM entries WHERE chain = '{chain}' AND seq = (SELECT max(seq) FROM entries WHERE chain = '{chain}')"),
    )
    .await;
    assert!(verify(&s, &officer, &patient, false).await.intact);
    let against_log = verify(&s, &officer, &patient, true).await;
    assert!(!against_log.intact);
    assert!(
        against_log.findings[0]
            .problem
            .contains("missing from the trail"),
        "{:?}",
        against_log.findings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_yields_the_same_chain_hashes() {
    let s = system("auditrebuild").await;
    scenario(&s).await;
    let hashes = |url: String| async move {
        let client = projections::connect(&url).await.unwrap();
        client
            .query(
                "SELECT chain, seq, encode(hash, 'hex') FROM audit.entries ORDER BY chain, seq",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    r.get::<_, i64>(1),
                    r.get::<_, String>(2),
                )
            })
            .collect::<Vec<_>>()
    };
    let before = hashes(s.db.url.clone()).await;
    assert!(before.len() > 20);
    let report = projections::rebuild(
        Arc::new(audit_service::AuditProjection),
        s.stream.store().clone(),
        RunnerConfig::new(s.db.url.clone(), 7),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.generation, 2);
    let after = hashes(s.db.url.clone()).await;
    assert_eq!(before, after);
}

/// Deletes entry `seq` of `chain` and recomputes every entry after it, as
/// a database owner covering their tracks would: the chain alone is then
/// intact.
async fn delete_and_rechain(s: &System, name: &str, seq: u64) {
    let client = projections::connect(&s.db.url).await.unwrap();
    client
        .batch_execute("SET search_path TO audit; SET session_replication_role = replica")
        .await
        .unwrap();
    let stored = queries::chains(&client, Some(name)).await.unwrap();
    client
        .execute(
            "DELETE FROM entries WHERE chain = $1 AND seq = $2",
            &[&name, &(seq as i64)],
        )
        .await
        .unwrap();
    let mut last: Option<(u64, Vec<u8>)> = None;
    let mut rewritten = Vec::new();
    for e in stored[0].1.iter().filter(|e| e.seq != seq) {
        let relinked = chain::link(e.draft.clone(), last.as_ref());
        client
            .execute(
                "UPDATE entries SET seq = $3, previous_hash = $4, hash = $5 WHERE chain = $1 AND position = $2",
                &[
                    &name,
                    &(e.draft.position as i64),
                    &(relinked.seq as i64),
                    &relinked.previous_hash,
                    &relinked.hash,
                ],
            )
            .await
            .unwrap();
        last = Some((relinked.seq, relinked.hash.clone()));
        rewritten.push(relinked);
    }
    let mut alone = Vec::new();
    chain::check(name, &rewritten, &mut alone);
    assert!(
        alone.is_empty(),
        "the rewrite is not self-consistent: {alone:?}"
    );
}

/// Verify until the trail has reached `position` and every entry in it is
/// anchored.
async fn anchored_through(s: &System, officer: &Caller, position: u64) -> pb::VerifyReply {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let reply = verify(s, officer, "", false).await;
        if reply.position >= position && reply.anchors > 0 && reply.unanchored_entries == 0 {
            return reply;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trail was not anchored through {position}: {reply:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_by_the_database_owner_is_caught_by_verify_alone_once_anchored() {
    let s = System::start(
        "auditanchor",
        testkit::Services {
            inbox: true,
            audit: true,
            anchor_every: Some(std::time::Duration::from_millis(200)),
            ..Default::default()
        },
    )
    .await;
    let (officer, patient) = scenario(&s).await;
    let name = format!("patient/{patient}");
    let head = s.stream.store().last_position().await.unwrap();
    let clean = anchored_through(&s, &officer, head).await;
    assert!(clean.intact, "{:?}", clean.findings);
    assert!(clean.anchors >= 1);
    assert!(clean.anchored_at.is_some());

    // Nothing changes, nothing is anchored again: the anchors' own events
    // are no entries.
    let anchors = anchor::load(s.stream.store()).await.unwrap().anchors.len();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(
        anchor::load(s.stream.store()).await.unwrap().anchors.len(),
        anchors
    );

    // The database owner removes the second entry of the patient's trail
    // and recomputes the chain: Verify, without the log, catches it.
    delete_and_rechain(&s, &name, 2).await;
    let caught = verify(&s, &officer, &patient, false).await;
    assert!(!caught.intact, "a rechained deletion went unnoticed");
    assert!(
        caught
            .findings
            .iter()
            .any(|f| f.chain == name && f.problem.contains("anchored in the log")),
        "{:?}",
        caught.findings
    );
    assert!(!verify(&s, &officer, "", false).await.intact);

    // Junk and a forged anchor on the anchors' subject stop nothing: they
    // are findings.
    let anchors_ref = AggregateRef::new(AggregateType::Access, proto::contract::ANCHOR_ID).unwrap();
    let junk = publish_junk(s.stream.store(), &anchors_ref).await;
    let forged = {
        use prost::Message;
        let anchored = proto::events::AuditAnchored {
            position: head,
            part: 1,
            parts: 1,
            ..Default::default()
        };
        // Well formed, on its subject, in the anchor's name: only the
        // signature is missing.
        let mut envelope = event_store::testing::envelope(
            &anchors_ref,
            proto::events::envelope::Payload::AuditAnchored(anchored),
        );
        envelope.actor.as_mut().unwrap().person_id = proto::contract::ANCHOR_ID.into();
        s.stream
            .store()
            .jetstream()
            .publish(
                anchors_ref.subject(&s.stream.config().prefix),
                envelope.encode_to_vec().into(),
            )
            .await
            .unwrap()
            .await
            .unwrap()
            .sequence
    };
    let reply = verify(&s, &officer, &patient, false).await;
    for at in [junk, forged] {
        assert!(
            reply
                .findings
                .iter()
                .any(|f| f.chain == "anchors" && f.problem.contains(&format!("position {at} "))),
            "{at}: {:?}",
            reply.findings
        );
    }
}
