//! The audit service opens auditors' and operators' calls only to people
//! the log has granted the role, whatever a token says.

use careline_client::bearer::command_id;
use proto::audit as pb;
use proto::command as cmd;
use service_kit::{Caller, Role};
use tonic::Code;

use crate::support::system;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_token_reads_the_trail_only_while_the_role_is_granted() {
    let s = system("auditstaff").await;
    let org = s.org().await;
    let patient = org.patient.person_id.to_string();
    let trail = |who: &Caller| {
        let mut audit = s.audit(who);
        let patient = patient.clone();
        async move {
            audit
                .record_trail(pb::RecordTrailRequest {
                    min_position: 0,
                    patient_id: patient,
                    range: None,
                })
                .await
        }
    };

    // A token that says auditor, for someone never granted the role.
    let snoop = Caller {
        person_id: uuid::Uuid::now_v7(),
        role: Role::Auditor,
        name: "Priya Shah".into(),
    };
    let refused = trail(&snoop).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Code::PermissionDenied,
        "{}",
        refused.message()
    );
    assert!(
        refused.message().contains("not granted"),
        "{}",
        refused.message()
    );
    let operator = Caller {
        role: Role::Operator,
        ..snoop.clone()
    };
    let refused = s
        .audit(&operator)
        .verify(pb::VerifyRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    // The demo's operator holds the role.
    assert!(
        s.audit(&org.operator)
            .verify(pb::VerifyRequest::default())
            .await
            .unwrap()
            .into_inner()
            .intact
    );

    // The privacy officer the admin granted reads it, and the admin's
    // trail says who granted what.
    let entries = trail(&org.auditor).await.unwrap().into_inner().entries;
    assert!(!entries.is_empty());
    let at = s.settled().await;
    let granted = s
        .audit(&org.auditor)
        .person_trail(pb::PersonTrailRequest {
            min_position: at,
            person_id: org.admin.person_id.to_string(),
            range: None,
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(
        granted
            .iter()
            .any(|e| e.action == "Ada Lovelace granted Priya Shah the auditor role"),
        "{:?}",
        granted.iter().map(|e| &e.action).collect::<Vec<_>>()
    );

    // Revoked, the same token is refused at once: the service checks the
    // role once its copy has caught up with the log's head.
    s.signer
        .client(&org.admin)
        .unwrap()
        .revoke_staff_role(cmd::RevokeStaffRoleRequest {
            command_id: command_id(),
            person_id: org.auditor.person_id.to_string(),
            role: "auditor".into(),
        })
        .await
        .unwrap();
    let refused = trail(&org.auditor).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}
