//! Every query, as every role. Pat writes to the Renal Unit, copying in her
//! father Chris. Who sees it:
//! `P` Pat · `OP` Sam, another patient · `C` Chris, carer with consent ·
//! `CN` Alex, carer without · `N` Nina, renal nurse · `S` the cardiologist,
//! off the team · `G` the PALS officer, whose team holds a grant · `D` the
//! dietitian, in one of Pat's teams but not one the thread is addressed to ·
//! `A` an admin.

use careline_client::bearer::command_id;
use careline_client::demo::{DemoOrg, first_thread};
use proto::command as cmd;
use proto::inbox as pb;
use service_kit::Caller;
use tonic::Code;

use crate::support::{System, system};

const WHO: [&str; 9] = ["P", "OP", "C", "CN", "N", "S", "G", "D", "A"];

fn caller<'a>(org: &'a DemoOrg, who: &str) -> &'a Caller {
    match who {
        "P" => &org.patient,
        "OP" => &org.other_patient,
        "C" => &org.carer,
        "CN" => &org.carer_without_consent,
        "N" => &org.nurse,
        "S" => &org.cardiologist,
        "G" => &org.pals_officer,
        "D" => &org.dietitian,
        _ => &org.admin,
    }
}

fn outcome<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Code {
    result.map(|_| Code::Ok).unwrap_or_else(|s| s.code())
}

/// Asserts each role's outcome; `expected` lists the roles in `WHO` order.
async fn check<F, Fut>(s: &System, org: &DemoOrg, what: &str, expected: [&str; 9], attempt: F)
where
    F: Fn(crate::support::Inbox) -> Fut,
    Fut: std::future::Future<Output = Code>,
{
    let mut wrong = Vec::new();
    for (who, want) in WHO.iter().zip(expected) {
        let want = match want {
            "ok" => Code::Ok,
            "nf" => Code::NotFound,
            "pd" => Code::PermissionDenied,
            "no" => Code::Ok, // answered, but without the thread (checked by caller)
            other => panic!("{other}"),
        };
        let got = attempt(s.inbox(caller(org, who))).await;
        if got != want {
            wrong.push(format!("{what} as {who}: expected {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

async fn sees_in_inbox(mut inbox: crate::support::Inbox, thread: &str, at: u64) -> bool {
    testkit::inbox_page(&mut inbox, at)
        .await
        .threads
        .iter()
        .any(|t| t.thread_id == thread)
}

/// One query of the inbox API about one thing, team or record.
#[derive(Clone, Debug)]
enum Query {
    Thread(String),
    Team(String),
    NotRead(String),
    Contacts(String),
}

impl Query {
    async fn run(self, mut inbox: crate::support::Inbox, at: u64) -> Code {
        match self {
            Query::Thread(thread_id) => outcome(
                inbox
                    .get_thread(pb::GetThreadRequest {
                        min_position: at,
                        thread_id,
                        ..Default::default()
                    })
                    .await,
            ),
            Query::Team(team_id) => outcome(
                inbox
                    .team_inbox(pb::TeamInboxRequest {
                        min_position: at,
                        team_id,
                        ..Default::default()
                    })
                    .await,
            ),
            Query::NotRead(team_id) => outcome(
                inbox
                    .not_read_by_patient(pb::NotReadByPatientRequest {
                        min_position: at,
                        team_id,
                        days: Some(0),
                    })
                    .await,
            ),
            Query::Contacts(patient_id) => outcome(
                inbox
                    .who_can_i_message(pb::WhoCanIMessageRequest {
                        min_position: at,
                        patient_id,
                    })
                    .await,
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_role_by_role() {
    let s = system("queryauthz").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let at = s.head().await;

    // My inbox: who finds the thread in their list.
    let mut listed = Vec::new();
    for who in WHO {
        if sees_in_inbox(s.inbox(caller(&org, who)), &thread, at).await {
            listed.push(who);
        }
    }
    assert_eq!(listed, vec!["P", "C", "N", "G"]);

    let team = || org.renal.clone();
    let expectations = [
        (
            Query::Thread(thread.clone()),
            ["ok", "nf", "ok", "nf", "ok", "nf", "ok", "nf", "nf"],
        ),
        (
            Query::Team(team()),
            ["pd", "pd", "pd", "pd", "ok", "pd", "pd", "pd", "pd"],
        ),
        (
            Query::NotRead(team()),
            ["pd", "pd", "pd", "pd", "ok", "pd", "pd", "pd", "pd"],
        ),
        (
            Query::Contacts(org.patient.person_id.to_string()),
            ["ok", "nf", "ok", "nf", "ok", "nf", "ok", "ok", "nf"],
        ),
    ];
    for (query, expected) in expectations {
        check(&s, &org, &format!("{query:?}"), expected, |inbox| {
            query.clone().run(inbox, at)
        })
        .await;
    }

    // A thread that does not exist is NOT_FOUND for everyone, as one they may not see.
    let missing = s
        .inbox(&org.nurse)
        .get_thread(pb::GetThreadRequest {
            min_position: 0,
            thread_id: command_id(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_consent_or_access_hides_the_thread_from_then_on() {
    let s = system("revoke").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let mut pat = s.signer.client(&org.patient).unwrap();
    pat.revoke_carer_consent(cmd::RevokeCarerConsentRequest {
        command_id: command_id(),
        patient_id: org.patient.person_id.to_string(),
        carer_id: org.carer.person_id.to_string(),
    })
    .await
    .unwrap();
    let revoked = pat
        .revoke_record_access(cmd::RevokeRecordAccessRequest {
            command_id: command_id(),
            patient_id: org.patient.person_id.to_string(),
            grant_id: org.pals_grant.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    for who in [&org.carer, &org.pals_officer] {
        assert!(
            !sees_in_inbox(s.inbox(who), &thread, revoked.position).await,
            "{}",
            who.name
        );
        let status = s
            .inbox(who)
            .get_thread(pb::GetThreadRequest {
                min_position: revoked.position,
                thread_id: thread.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        // The carer, who was on it, is told his access ended; PALS, whose
        // grant ended, is not told the thread exists.
        let expected = if who == &org.carer {
            Code::PermissionDenied
        } else {
            Code::NotFound
        };
        assert_eq!(status.code(), expected, "{}: {status:?}", who.name);
    }
    // The carer is still named in the thread's history.
    let detail = s
        .inbox(&org.patient)
        .get_thread(pb::GetThreadRequest {
            min_position: revoked.position,
            thread_id: thread,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        detail
            .participants
            .iter()
            .any(|p| p.person.as_ref().unwrap().name == "Chris Jones")
    );
}

#[tokio::test]
async fn queries_without_a_valid_token_are_unauthenticated() {
    let s = system("queryauthn").await;
    let org = s.org().await;
    let forger = service_kit::TokenIssuer::from_seed("test", [42; 32]).unwrap();
    let forged = forger.mint(&org.nurse, std::time::Duration::from_secs(60));
    for token in [forged.as_str(), "not-a-token"] {
        let status = s
            .inbox_with_token(token)
            .my_inbox(pb::MyInboxRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
}
