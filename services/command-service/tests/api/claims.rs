//! A log recorded before id claims existed: `claims::backfill` claims its
//! person ids and command ids, after which the rules hold for old entries.

use careline_client::bearer::command_id;
use command_service::claims::backfill;
use event_store::testing::envelope;
use event_store::{AggregateRef, EventStore};
use proto::command as pb;
use proto::events::envelope::Payload;
use proto::events::{AggregateType, ProfessionalRegistered, TeamMemberAdded};
use tonic::Code;

use crate::support::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_backfill_old_ids_keep_their_kind_and_their_command() {
    let app = spawn_app("backfill").await;
    let org = app.org().await;
    // A professional registered straight into the log, as an older version
    // of the service did: no claim was made for the id or the command.
    let old = uuid::Uuid::now_v7().to_string();
    let person = AggregateRef::new(AggregateType::Person, old.clone()).unwrap();
    let registered = envelope(
        &person,
        Payload::ProfessionalRegistered(ProfessionalRegistered {
            professional_id: old.clone(),
            name: "Dr Old Timer".into(),
            role_label: "Consultant".into(),
            work_email: "old.timer@hospital.example".into(),
            work_email_unverified: false,
        }),
    );
    let old_command = registered.command_id.clone();
    app.stream.store().append(&registered, 0).await.unwrap();
    // And added to the renal team straight into the log: no membership hint.
    let renal = AggregateRef::new(AggregateType::Team, org.renal.clone()).unwrap();
    let version = app.stream.store().version(&renal).await.unwrap();
    let added = envelope(
        &renal,
        Payload::TeamMemberAdded(TeamMemberAdded {
            professional_id: old.clone(),
            contactable: true,
            lead: false,
        }),
    );
    app.stream.store().append(&added, version).await.unwrap();
    let hint = command_service::claims::teams_of_key(&old);
    assert!(app.stream.store().hints(&hint).await.unwrap().is_empty());

    let report = backfill(app.stream.store(), |_, _| {}).await.unwrap();
    assert!(report.claimed >= 2, "{report:?}");
    assert!(report.conflicts.is_empty(), "{report:?}");
    // Again: the same, and nothing is a conflict with itself.
    let again = backfill(app.stream.store(), |_, _| {}).await.unwrap();
    assert_eq!(again, report);
    // The old membership is hinted: addressing him by name now names the
    // team (automatic CC) to address instead.
    assert_eq!(
        app.stream.store().hints(&hint).await.unwrap(),
        vec![org.renal.clone()]
    );

    let mut admin = app.signer.client(&org.admin).unwrap();
    // The old professional's id cannot become a patient's.
    let refused = admin
        .register_patient(pb::RegisterPatientRequest {
            command_id: command_id(),
            patient_id: old.clone(),
            name: "Pat Impostor".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::FailedPrecondition,
        "{}",
        refused.message()
    );
    assert!(
        refused.message().contains("professional"),
        "{}",
        refused.message()
    );
    // The old command id cannot start something else.
    let refused = admin
        .create_team(pb::CreateTeamRequest {
            command_id: old_command,
            name: "Reused".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::InvalidArgument,
        "{}",
        refused.message()
    );
}
