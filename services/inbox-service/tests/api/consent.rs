//! A carer's part in a patient's threads lasts as long as the consent they
//! joined under: revoked or expired, they are off every thread of the
//! record (their messages stay); a later consent does not put them back.

use std::time::{Duration, SystemTime};

use careline_client::Steps;
use careline_client::bearer::command_id;
use careline_client::demo::{DemoOrg, first_thread};
use proto::command as cmd;
use proto::inbox as pb;
use tonic::Code;

use crate::support::{System, system};

async fn detail(s: &System, org: &DemoOrg, thread: &str, position: u64) -> pb::ThreadDetail {
    s.inbox(&org.patient)
        .get_thread(pb::GetThreadRequest {
            min_position: position,
            thread_id: thread.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// The carer as the thread shows him: (listed among the participants of
/// the summary, active in the history, left_at set).
fn carer_on(detail: &pb::ThreadDetail, org: &DemoOrg) -> (bool, bool, bool) {
    let id = org.carer.person_id.to_string();
    let summary = detail.summary.as_ref().unwrap();
    let listed = summary.participants.iter().any(|p| p.person_id == id);
    let history = detail
        .participants
        .iter()
        .find(|p| p.person.as_ref().unwrap().person_id == id)
        .expect("the carer stays in the history");
    (listed, history.active, history.left_at.is_some())
}

async fn carer_sees(s: &System, org: &DemoOrg, thread: &str, position: u64) -> bool {
    sees(s, &org.carer, thread, position)
        .await
        .iter()
        .any(|t| t == thread)
}

/// The threads `who`'s inbox lists at `position`, having checked that
/// `thread` is listed exactly when it opens (a thread not shown answers
/// NOT_FOUND).
async fn sees(s: &System, who: &service_kit::Caller, thread: &str, position: u64) -> Vec<String> {
    let inbox = s
        .inbox(who)
        .my_inbox(pb::MyInboxRequest {
            min_position: position,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let listed = inbox.threads.iter().any(|t| t.thread_id == thread);
    let opened = s
        .inbox(who)
        .get_thread(pb::GetThreadRequest {
            min_position: position,
            thread_id: thread.to_string(),
            ..Default::default()
        })
        .await;
    match opened {
        Ok(_) => assert!(listed, "opens a thread the inbox does not list"),
        // A carer whose consent ended is told so (see `ended_for`).
        Err(e) if e.code() == Code::PermissionDenied => {
            assert!(e.message().contains("messages ended on"), "{e:?}");
            assert!(!listed, "lists a thread that does not open");
        }
        Err(e) => {
            assert_eq!(e.code(), Code::NotFound);
            assert!(!listed, "lists a thread that does not open");
        }
    }
    inbox.threads.into_iter().map(|t| t.thread_id).collect()
}

/// The carer opening `thread` after his consent ended is told whose
/// messages he may no longer read, and since when: not "not found".
async fn ended_for(s: &System, org: &DemoOrg, thread: &str, position: u64) {
    let refused = s
        .inbox(&org.carer)
        .get_thread(pb::GetThreadRequest {
            min_position: position,
            thread_id: thread.to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let today = time::OffsetDateTime::now_utc();
    let date = format!("{} {} {}", today.day(), today.month(), today.year());
    assert!(
        refused.message().starts_with(&format!(
            "Your access to Pat Jones's messages ended on {date}"
        )),
        "{refused:?}"
    );
}

async fn grant(s: &System, org: &DemoOrg, until: Option<SystemTime>) -> u64 {
    s.signer
        .client(&org.patient)
        .unwrap()
        .grant_carer_consent(cmd::GrantCarerConsentRequest {
            command_id: command_id(),
            patient_id: org.patient.person_id.to_string(),
            carer_id: org.carer.person_id.to_string(),
            relationship: proto::events::CarerRelationship::FamilyMember as i32,
            expires_at: until.map(Into::into),
        })
        .await
        .unwrap()
        .into_inner()
        .position
}

async fn add_carer_again(s: &System, org: &DemoOrg, thread: &str) -> u64 {
    s.signer
        .client(&org.patient)
        .unwrap()
        .add_participants(cmd::AddParticipantsRequest {
            command_id: command_id(),
            staff_side: false,
            thread_id: thread.to_string(),
            recipients: vec![],
            carer_ids: vec![org.carer.person_id.to_string()],
        })
        .await
        .unwrap()
        .into_inner()
        .position
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_carer_is_off_the_thread_and_a_new_consent_does_not_put_him_back() {
    let s = system("consentend").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let mut carer = s.signer.client(&org.carer).unwrap();
    let posted = carer
        .post(&thread, "I will bring her in on Monday.")
        .await
        .unwrap();
    let before = detail(&s, &org, &thread, posted).await;
    let count_before = before.summary.as_ref().unwrap().participant_count;
    assert_eq!(carer_on(&before, &org), (true, true, false));

    let revoked = s
        .signer
        .client(&org.patient)
        .unwrap()
        .revoke_carer_consent(cmd::RevokeCarerConsentRequest {
            command_id: command_id(),
            patient_id: org.patient.person_id.to_string(),
            carer_id: org.carer.person_id.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .position;
    let after = detail(&s, &org, &thread, revoked).await;
    assert_eq!(carer_on(&after, &org), (false, false, true), "{after:?}");
    assert_eq!(
        after.summary.as_ref().unwrap().participant_count,
        count_before - 1
    );
    // What he wrote stays.
    assert!(
        after
            .messages
            .iter()
            .any(|m| m.author.as_ref().unwrap().person_id == org.carer.person_id.to_string())
    );
    assert!(!carer_sees(&s, &org, &thread, revoked).await);
    ended_for(&s, &org, &thread, revoked).await;

    // Consent again: he is not silently back.
    let granted = grant(&s, &org, None).await;
    let regranted = detail(&s, &org, &thread, granted).await;
    assert_eq!(carer_on(&regranted, &org), (false, false, true));
    assert!(!carer_sees(&s, &org, &thread, granted).await);
    let refused = carer.post(&thread, "Am I back?").await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // Re-adding him is the explicit step.
    let added = add_carer_again(&s, &org, &thread).await;
    let back = detail(&s, &org, &thread, added).await;
    assert_eq!(carer_on(&back, &org), (true, true, false));
    assert_eq!(
        back.summary.as_ref().unwrap().participant_count,
        count_before
    );
    assert!(carer_sees(&s, &org, &thread, added).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_consent_ends_the_carers_part_from_its_expiry() {
    let s = system("consentexpiry").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    // The consent in force is renewed with an end, two seconds away.
    let until = SystemTime::now() + Duration::from_secs(2);
    let renewed = grant(&s, &org, Some(until)).await;
    let before = detail(&s, &org, &thread, renewed).await;
    let count_before = before.summary.as_ref().unwrap().participant_count;
    assert_eq!(carer_on(&before, &org), (true, true, false));
    assert!(carer_sees(&s, &org, &thread, renewed).await);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let expired = detail(&s, &org, &thread, renewed).await;
    assert_eq!(
        carer_on(&expired, &org),
        (false, false, true),
        "{expired:?}"
    );
    assert_eq!(
        expired.summary.as_ref().unwrap().participant_count,
        count_before - 1
    );
    assert!(!carer_sees(&s, &org, &thread, renewed).await);
    ended_for(&s, &org, &thread, renewed).await;

    // Granted again after it expired: a new consent, and he is not back.
    let granted = grant(&s, &org, None).await;
    let regranted = detail(&s, &org, &thread, granted).await;
    assert_eq!(carer_on(&regranted, &org), (false, false, true));
    assert_eq!(
        regranted.summary.as_ref().unwrap().participant_count,
        count_before - 1
    );
    assert!(!carer_sees(&s, &org, &thread, granted).await);
    let added = add_carer_again(&s, &org, &thread).await;
    assert_eq!(
        carer_on(&detail(&s, &org, &thread, added).await, &org),
        (true, true, false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carer_with_a_professional_token_sees_nothing_as_a_professional() {
    let s = system("carerrole").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let position = grant(&s, &org, Some(SystemTime::now() + Duration::from_secs(1))).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let posing = service_kit::Caller {
        role: service_kit::Role::Professional,
        ..org.carer.clone()
    };
    let listed = sees(&s, &posing, &thread, position).await;
    assert!(listed.is_empty(), "{listed:?}");
}
