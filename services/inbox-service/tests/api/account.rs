//! A person's own account: a patient sees the carers holding her consent
//! and the teams holding access to her record, in force now; a carer sees
//! whose consent he holds; a patient finds a carer by address to give
//! consent to, and no one else may look carers up.

use careline_client::bearer::command_id;
use proto::command as cmd;
use proto::inbox as pb;
use tonic::Code;

use crate::support::{System, system};

async fn account(s: &System, who: &service_kit::Caller, at: u64) -> pb::MyAccountReply {
    s.inbox(who)
        .my_account(pb::MyAccountRequest { min_position: at })
        .await
        .unwrap()
        .into_inner()
}

fn names(consents: &[pb::Consent]) -> Vec<String> {
    consents
        .iter()
        .map(|c| c.person.as_ref().unwrap().name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_sees_her_carers_and_grants_and_a_carer_whose_consent_he_holds() {
    let s = system("account").await;
    let org = s.org().await;
    let at = s.head().await;

    let pat = account(&s, &org.patient, at).await;
    assert_eq!(pat.person.as_ref().unwrap().name, "Pat Jones");
    assert!(pat.email_verified && !pat.email.is_empty());
    assert_eq!(names(&pat.carers), ["Chris Jones"]);
    assert_eq!(pat.carers[0].relationship, "parent");
    assert_eq!(pat.grants.len(), 1);
    assert_eq!(pat.grants[0].grant_id, org.pals_grant);
    assert_eq!(
        pat.grants[0].team_name,
        "Patient Advice and Liaison Service"
    );
    assert!(pat.acting_for.is_empty());

    let sam = account(&s, &org.other_patient, at).await;
    assert!(!sam.email_verified, "Sam's address is not verified");
    assert!(sam.carers.is_empty() && sam.grants.is_empty());

    assert_eq!(
        names(&account(&s, &org.carer, at).await.acting_for),
        ["Pat Jones"]
    );
    assert!(
        account(&s, &org.carer_without_consent, at)
            .await
            .acting_for
            .is_empty()
    );
    let nurse = account(&s, &org.nurse, at).await;
    assert!(nurse.carers.is_empty() && nurse.grants.is_empty() && nurse.acting_for.is_empty());

    // Consent withdrawn and access ended: gone from both sides at once.
    let mut patient = s.signer.client(&org.patient).unwrap();
    patient
        .revoke_carer_consent(cmd::RevokeCarerConsentRequest {
            command_id: command_id(),
            patient_id: org.patient.person_id.to_string(),
            carer_id: org.carer.person_id.to_string(),
        })
        .await
        .unwrap();
    let ended = patient
        .revoke_record_access(cmd::RevokeRecordAccessRequest {
            command_id: command_id(),
            patient_id: org.patient.person_id.to_string(),
            grant_id: org.pals_grant.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .position;
    let pat = account(&s, &org.patient, ended).await;
    assert!(pat.carers.is_empty() && pat.grants.is_empty());
    assert!(account(&s, &org.carer, ended).await.acting_for.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_patient_finds_a_carer_and_only_by_an_exact_address() {
    let s = system("findcarer").await;
    let org = s.org().await;
    let at = s.head().await;
    let find = |who: &service_kit::Caller, email: &str| {
        let mut inbox = s.inbox(who);
        let email = email.to_string();
        async move {
            inbox
                .find_carer(pb::FindCarerRequest {
                    min_position: at,
                    email,
                })
                .await
        }
    };
    let found = find(&org.patient, " Chris.Jones@EXAMPLE.org ")
        .await
        .unwrap();
    assert_eq!(
        found.into_inner().person_id,
        org.carer.person_id.to_string()
    );
    let code = |r: Result<tonic::Response<pb::Person>, tonic::Status>| r.unwrap_err().code();
    assert_eq!(
        code(find(&org.patient, "chris.jones@example").await),
        Code::NotFound
    );
    assert_eq!(
        code(find(&org.patient, "chris%@example.org").await),
        Code::NotFound
    );
    // A professional's address is not a carer's.
    assert_eq!(
        code(find(&org.patient, "ninapatel@hospital.example").await),
        Code::NotFound
    );
    assert_eq!(code(find(&org.patient, "  ").await), Code::InvalidArgument);
    assert_eq!(
        code(find(&org.nurse, "chris.jones@example.org").await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(find(&org.carer, "alex.green@example.org").await),
        Code::PermissionDenied
    );
}

/// Addresses and join codes cannot be tried one after another: a person's
/// eleventh carer look-up in a minute is refused, found or not, and so is
/// their eleventh join-code look-up; each kind counts on its own, and
/// another person is not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_ups_by_address_or_join_code_are_throttled_per_person() {
    let s = system("lookupthrottle").await;
    let org = s.org().await;
    let at = s.head().await;
    let mut patient = s.inbox(&org.patient);
    let most = inbox_service::grpc::LOOK_UPS_PER_MINUTE;
    for i in 0..most {
        let email = match i % 2 {
            0 => "chris.jones@example.org".to_string(),
            _ => format!("guess{i}@example.org"),
        };
        let asked = patient
            .find_carer(pb::FindCarerRequest {
                min_position: at,
                email,
            })
            .await;
        match i % 2 {
            0 => assert!(asked.is_ok(), "{asked:?}"),
            _ => assert_eq!(asked.unwrap_err().code(), Code::NotFound),
        }
    }
    let refused = patient
        .find_carer(pb::FindCarerRequest {
            min_position: at,
            email: "chris.jones@example.org".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused
            .message()
            .starts_with("too many carer look-ups: at most 10 a minute; try again in"),
        "{refused:?}"
    );
    // Join codes count on their own.
    let by_code = |code: &str| pb::TeamByJoinCodeRequest {
        min_position: at,
        join_code: code.into(),
    };
    for i in 0..most {
        let asked = patient
            .team_by_join_code(by_code(&format!("GUESS{i:05}")))
            .await
            .unwrap_err();
        assert_eq!(asked.code(), Code::NotFound, "{asked:?}");
    }
    let refused = patient
        .team_by_join_code(by_code(&org.renal_join_code))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    // Someone else is not held up.
    s.inbox(&org.other_patient)
        .team_by_join_code(by_code(&org.renal_join_code))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_code_names_its_team_until_a_new_one_is_issued() {
    use careline_client::Steps;
    let s = system("joincode").await;
    let org = s.org().await;
    let at = s.head().await;
    let by_code = |code: String, at: u64| {
        let mut inbox = s.inbox(&org.other_patient);
        async move {
            inbox
                .team_by_join_code(pb::TeamByJoinCodeRequest {
                    min_position: at,
                    join_code: code,
                })
                .await
        }
    };
    let team = by_code(org.renal_join_code.to_uppercase(), at)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (team.team_id.as_str(), team.name.as_str()),
        (org.renal.as_str(), "Renal Unit")
    );

    let new = s
        .signer
        .client(&org.admin)
        .unwrap()
        .issue_code(&org.renal)
        .await
        .unwrap();
    let at = s.head().await;
    let old = by_code(org.renal_join_code.clone(), at).await.unwrap_err();
    assert_eq!(old.code(), Code::NotFound);
    assert_eq!(
        by_code(new, at).await.unwrap().into_inner().team_id,
        org.renal
    );
    assert_eq!(
        by_code(" ".into(), at).await.unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_professional_sees_her_teams_and_only_admins_list_teams_and_people() {
    let s = system("account_admin").await;
    let org = s.org().await;
    let at = s.head().await;

    let nina = account(&s, &org.nurse, at).await;
    let teams: Vec<&str> = nina.teams.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(teams, ["Renal Unit"]);
    assert!(account(&s, &org.patient, at).await.teams.is_empty());

    let all = s
        .inbox(&org.admin)
        .teams(pb::TeamsRequest {
            min_position: at,
            team_id: org.renal.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let renal = &all.teams[0];
    assert!(renal.auto_cc);
    assert!(!renal.join_code.is_empty());
    assert!(
        renal
            .members
            .iter()
            .any(|m| m.person.as_ref().unwrap().name == "Nina Patel" && m.contactable)
    );
    let found = s
        .inbox(&org.admin)
        .find_people(pb::FindPeopleRequest {
            min_position: at,
            name_prefix: "PAT".into(),
            kind: pb::PersonKind::Patient as i32,
            limit: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.people.len(), 1);
    assert_eq!(found.people[0].email, "pat.jones@example.org");
    assert!(found.people[0].email_verified && !found.people[0].deactivated);

    for who in [&org.nurse, &org.patient, &org.auditor] {
        let refused = s
            .inbox(who)
            .teams(pb::TeamsRequest {
                min_position: at,
                team_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        if who.person_id == org.auditor.person_id {
            continue;
        }
        let refused = s
            .inbox(who)
            .find_people(pb::FindPeopleRequest {
                min_position: at,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }
    // A privacy officer finds people by name, to read their trails: their
    // names, never their addresses.
    let seen = s
        .inbox(&org.auditor)
        .find_people(pb::FindPeopleRequest {
            min_position: at,
            name_prefix: "jones".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        seen.people
            .iter()
            .any(|r| r.person.as_ref().unwrap().name == "Pat Jones"),
        "{seen:?}"
    );
    assert!(
        seen.people
            .iter()
            .all(|r| r.email.is_empty() && !r.email_verified),
        "{seen:?}"
    );
    let bad = s
        .inbox(&org.admin)
        .find_people(pb::FindPeopleRequest {
            min_position: at,
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}
