//! A token's role against the log, through the real API: admin, operator
//! and auditor are granted by an admin (the first admin grants itself,
//! once), and a token claiming a role the log does not confirm is refused
//! and writes nothing.

use careline_client::bearer::command_id;
use proto::command as pb;
use service_kit::{Caller, Role};
use tonic::Code;

use crate::support::spawn_app;

fn person(role: Role, name: &str) -> Caller {
    Caller {
        person_id: uuid::Uuid::now_v7(),
        role,
        name: name.into(),
    }
}

fn create_team() -> pb::CreateTeamRequest {
    pb::CreateTeamRequest {
        command_id: command_id(),
        name: "Shadow Team".into(),
        ..Default::default()
    }
}

/// A PERMISSION_DENIED that says `says`.
fn denied(refused: &tonic::Status, says: &str) {
    assert_eq!(
        refused.code(),
        Code::PermissionDenied,
        "{}",
        refused.message()
    );
    assert!(refused.message().contains(says), "{}", refused.message());
}

fn grant(who: &Caller, role: &str) -> pb::GrantStaffRoleRequest {
    pb::GrantStaffRoleRequest {
        command_id: command_id(),
        person_id: who.person_id.to_string(),
        role: role.into(),
        name: who.name.clone(),
    }
}

#[tokio::test]
async fn an_admin_token_counts_only_for_a_granted_admin() {
    let app = spawn_app("staffroles").await;
    let org = app.org().await;
    let head = app.head().await;

    // A token minted with role admin for someone the log never made one.
    let mallory = person(Role::Admin, "Mallory");
    let mut as_mallory = app.signer.client(&mallory).unwrap();
    let refused = as_mallory.create_team(create_team()).await.unwrap_err();
    denied(&refused, "not granted");
    // The first-admin step is taken already.
    let refused = as_mallory
        .grant_staff_role(grant(&mallory, "admin"))
        .await
        .unwrap_err();
    denied(&refused, "first admin");
    // A carer's id with a professional token; a professional's id with a
    // carer token; a patient token for an id with no record.
    for (posing, role) in [
        (&org.carer, Role::Professional),
        (&org.nurse, Role::Carer),
        (&org.nurse, Role::Patient),
    ] {
        let caller = Caller {
            role,
            ..posing.clone()
        };
        let refused = app
            .signer
            .client(&caller)
            .unwrap()
            .register_carer(pb::RegisterCarerRequest {
                command_id: command_id(),
                name: "Eve".into(),
                email: "eve@example.org".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        denied(&refused, "your token says");
    }
    assert_eq!(app.head().await, head, "a refused command wrote something");

    // Granted by the admin, Mallory's token works; revoked, it stops.
    let mut admin = app.signer.client(&org.admin).unwrap();
    admin
        .grant_staff_role(grant(&mallory, "admin"))
        .await
        .unwrap();
    as_mallory.create_team(create_team()).await.unwrap();
    admin
        .revoke_staff_role(pb::RevokeStaffRoleRequest {
            command_id: command_id(),
            person_id: mallory.person_id.to_string(),
            role: "admin".into(),
        })
        .await
        .unwrap();
    let refused = as_mallory.create_team(create_team()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // Bad input names the field and writes nothing.
    let head = app.head().await;
    let refused = admin
        .grant_staff_role(pb::GrantStaffRoleRequest {
            role: "superuser".into(),
            ..grant(&mallory, "admin")
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("role"), "{}", refused.message());
    assert_eq!(app.head().await, head);
}

#[tokio::test]
async fn the_first_admin_grants_itself_once_and_the_log_records_it() {
    let app = spawn_app("firstadmin").await;
    let first = person(Role::Admin, "Ada Lovelace");
    let second = person(Role::Admin, "Grace Hopper");
    // Before the first admin, an admin token does nothing else.
    let refused = app
        .signer
        .client(&first)
        .unwrap()
        .create_team(create_team())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let reply = app
        .signer
        .client(&first)
        .unwrap()
        .grant_staff_role(grant(&first, "admin"))
        .await
        .unwrap()
        .into_inner();
    let events = app.events_after(reply.position - 1).await;
    match &events[0].envelope.payload {
        Some(proto::events::envelope::Payload::StaffRoleGranted(e)) => {
            assert!(e.bootstrap);
            assert_eq!(e.person_id, first.person_id.to_string());
        }
        other => panic!("expected StaffRoleGranted, got {other:?}"),
    }
    app.signer
        .client(&first)
        .unwrap()
        .create_team(create_team())
        .await
        .unwrap();
    // A second self-made admin is refused, for good.
    let refused = app
        .signer
        .client(&second)
        .unwrap()
        .grant_staff_role(grant(&second, "admin"))
        .await
        .unwrap_err();
    denied(&refused, "first admin");
}
