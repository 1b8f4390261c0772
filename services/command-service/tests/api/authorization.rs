//! Every command, tried as every role, through the real API. Each attempt
//! gets a fresh target (thread, record or team), so an allowed command never
//! changes what the next attempt sees.
//!
//! Roles, in the order of the expectation strings:
//! `P` the patient (owner of the record) · `OP` another patient · `C` a
//! carer holding consent · `CN` a carer without consent · `N` a nurse on the
//! patient's care team (on the thread) · `S` a cardiologist: staff off the
//! team, whose team holds no grant · `G` a PALS officer: a team holding a
//! record-access grant · `A` an admin.
//! Outcomes: `ok`, `pd` permission denied, `nf` not found, `fp` failed
//! precondition.

use careline_client::Steps;
use careline_client::bearer::{Client, command_id};
use careline_client::demo::DemoOrg;
use futures::future::join_all;
use proto::command as pb;
use service_kit::{Caller, Role};
use tonic::Code;

use crate::support::{TestApp, spawn_app};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    P,
    Op,
    C,
    Cn,
    N,
    S,
    G,
    A,
}

const EVERYONE: [Who; 8] = [
    Who::P,
    Who::Op,
    Who::C,
    Who::Cn,
    Who::N,
    Who::S,
    Who::G,
    Who::A,
];

#[derive(Clone, Copy, Debug)]
enum Case {
    StartThread,
    PostMessage,
    PostStaffNote,
    AddParticipants,
    LeaveThread,
    AssignThread,
    UnassignThread,
    CompleteThread,
    ArchiveThread,
    ReopenThread,
    MarkRead,
    RegisterPatient,
    VerifyPatientEmail,
    ChangePatientEmail,
    RequestEmailVerification,
    AddPatientToTeam,
    JoinTeamWithCode,
    GrantCarerConsent,
    RevokeCarerConsent,
    GrantRecordAccess,
    RevokeRecordAccess,
    RegisterProfessional,
    RegisterCarer,
    CreateTeam,
    AddTeamMember,
    RemoveTeamMember,
    SetMemberContactable,
    SetMemberLead,
    SetAutoCc,
    SetTeamOpenToPatients,
    SetTeamAlerts,
    SetDefaultContact,
    IssueJoinCode,
    DeactivatePerson,
    ReactivatePerson,
}

struct Fixture<'a> {
    app: &'a TestApp,
    org: &'a DemoOrg,
}

fn code<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

fn team_recipient(id: &str) -> pb::Recipient {
    pb::Recipient {
        recipient: Some(pb::recipient::Recipient::TeamId(id.into())),
    }
}

fn professional_recipient(who: &Caller) -> pb::Recipient {
    pb::Recipient {
        recipient: Some(pb::recipient::Recipient::ProfessionalId(
            who.person_id.to_string(),
        )),
    }
}

impl Fixture<'_> {
    fn as_(&self, who: &Caller) -> Client {
        self.app.signer.client(who).unwrap()
    }

    /// Who plays each role; `owner` is the patient whose record is used.
    fn caller(&self, who: Who, owner: &Caller) -> Caller {
        let o = self.org;
        match who {
            Who::P => owner.clone(),
            Who::Op => o.other_patient.clone(),
            Who::C => o.carer.clone(),
            Who::Cn => o.carer_without_consent.clone(),
            Who::N => o.nurse.clone(),
            Who::S => o.cardiologist.clone(),
            Who::G => o.pals_officer.clone(),
            Who::A => o.admin.clone(),
        }
    }

    /// Pat writes to the Renal Unit, copying in her father.
    async fn thread(&self) -> String {
        careline_client::demo::first_thread(&self.app.signer, self.org)
            .await
            .unwrap()
    }

    /// A new patient like Pat: in the renal team, her father holds consent,
    /// PALS holds a grant, and the email is not verified yet.
    async fn patient(&self) -> (Caller, String) {
        let o = self.org;
        let patient = Caller {
            person_id: uuid::Uuid::now_v7(),
            role: Role::Patient,
            name: "Fresh Patient".into(),
        };
        let id = patient.person_id.to_string();
        let mut nurse = self.as_(&o.nurse);
        nurse
            .register_patient(pb::RegisterPatientRequest {
                command_id: command_id(),
                patient_id: id.clone(),
                name: patient.name.clone(),
                email: "fresh@example.org".into(),
                email_verified: false,
                ..Default::default()
            })
            .await
            .unwrap();
        nurse
            .add_patient_to_team(pb::AddPatientToTeamRequest {
                command_id: command_id(),
                patient_id: id.clone(),
                team_id: o.renal.clone(),
            })
            .await
            .unwrap();
        let mut owner = self.as_(&patient);
        owner
            .grant_carer_consent(pb::GrantCarerConsentRequest {
                command_id: command_id(),
                patient_id: id.clone(),
                carer_id: o.carer.person_id.to_string(),
                relationship: pb::CarerRelationship::Parent as i32,
                expires_at: None,
            })
            .await
            .unwrap();
        let grant = owner
            .grant_record_access(pb::GrantRecordAccessRequest {
                command_id: command_id(),
                patient_id: id,
                team_id: o.pals.clone(),
                expires_at: Some(
                    (std::time::SystemTime::now() + std::time::Duration::from_secs(86400)).into(),
                ),
                reason: "complaint".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .grant_id;
        (patient, grant)
    }

    /// A professional the admin registers for this attempt.
    async fn registered_professional(&self) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        self.as_(&self.org.admin)
            .register_professional(pb::RegisterProfessionalRequest {
                command_id: command_id(),
                professional_id: id.clone(),
                name: "Dr Leaving".into(),
                role_label: "Registrar".into(),
                work_email: format!("{id}@hospital.example"),
            })
            .await
            .unwrap();
        id
    }

    /// A new team with the cardiologist as a contactable member.
    async fn team(&self) -> String {
        let o = self.org;
        let mut admin = self.as_(&o.admin);
        let team = admin
            .create_team(pb::CreateTeamRequest {
                command_id: command_id(),
                team_id: String::new(),
                name: "Fresh Team".into(),
                description: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .aggregate_id;
        admin
            .add_team_member(pb::AddTeamMemberRequest {
                command_id: command_id(),
                team_id: team.clone(),
                professional_id: o.cardiologist.person_id.to_string(),
                contactable: true,
                lead: false,
            })
            .await
            .unwrap();
        team
    }

    async fn attempt(&self, case: Case, who: Who) -> Code {
        let o = self.org;
        let cid = command_id;
        match case {
            Case::StartThread => {
                let actor = self.caller(who, &o.patient);
                code(
                    self.as_(&actor)
                        .start_thread(pb::StartThreadRequest {
                            attachments: vec![],
                            command_id: cid(),
                            thread_id: String::new(),
                            patient_id: o.patient.person_id.to_string(),
                            subject: "A question".into(),
                            body: "Hello".into(),
                            recipients: vec![team_recipient(&o.renal)],
                            carer_ids: vec![],
                        })
                        .await,
                )
            }
            Case::PostMessage
            | Case::PostStaffNote
            | Case::AddParticipants
            | Case::LeaveThread
            | Case::AssignThread
            | Case::UnassignThread
            | Case::CompleteThread
            | Case::ArchiveThread
            | Case::ReopenThread
            | Case::MarkRead => self.thread_attempt(case, who).await,
            Case::RegisterPatient => {
                let actor = self.caller(who, &o.patient);
                code(
                    self.as_(&actor)
                        .register_patient(pb::RegisterPatientRequest {
                            command_id: cid(),
                            patient_id: String::new(),
                            name: "New Patient".into(),
                            email: String::new(),
                            email_verified: false,
                            ..Default::default()
                        })
                        .await,
                )
            }
            Case::RegisterProfessional => {
                let actor = self.caller(who, &o.patient);
                code(
                    self.as_(&actor)
                        .register_professional(pb::RegisterProfessionalRequest {
                            command_id: cid(),
                            professional_id: String::new(),
                            name: "New Doctor".into(),
                            role_label: "Registrar".into(),
                            work_email: "new@hospital.example".into(),
                        })
                        .await,
                )
            }
            Case::RegisterCarer => {
                let actor = self.caller(who, &o.patient);
                code(
                    self.as_(&actor)
                        .register_carer(pb::RegisterCarerRequest {
                            command_id: cid(),
                            carer_id: String::new(),
                            name: "New Carer".into(),
                            email: "carer@example.org".into(),
                            email_verified: false,
                        })
                        .await,
                )
            }
            Case::VerifyPatientEmail
            | Case::ChangePatientEmail
            | Case::RequestEmailVerification
            | Case::AddPatientToTeam
            | Case::JoinTeamWithCode
            | Case::GrantCarerConsent
            | Case::RevokeCarerConsent
            | Case::GrantRecordAccess
            | Case::RevokeRecordAccess => self.record_attempt(case, who).await,
            Case::DeactivatePerson | Case::ReactivatePerson => {
                let person = self.registered_professional().await;
                let mut admin = self.as_(&o.admin);
                if matches!(case, Case::ReactivatePerson) {
                    admin
                        .deactivate_person(pb::DeactivatePersonRequest {
                            command_id: cid(),
                            person_id: person.clone(),
                        })
                        .await
                        .unwrap();
                }
                let mut actor = self.as_(&self.caller(who, &o.patient));
                code(if matches!(case, Case::DeactivatePerson) {
                    actor
                        .deactivate_person(pb::DeactivatePersonRequest {
                            command_id: cid(),
                            person_id: person,
                        })
                        .await
                } else {
                    actor
                        .reactivate_person(pb::ReactivatePersonRequest {
                            command_id: cid(),
                            person_id: person,
                        })
                        .await
                })
            }
            _ => self.team_attempt(case, who).await,
        }
    }

    async fn thread_attempt(&self, case: Case, who: Who) -> Code {
        let o = self.org;
        let thread = self.thread().await;
        let mut nurse = self.as_(&o.nurse);
        let mut lead_message = String::new();
        match case {
            Case::UnassignThread => {
                nurse.assign(&thread, &o.nurse).await.unwrap();
            }
            Case::ReopenThread => {
                nurse.archive(&thread).await.unwrap();
            }
            Case::MarkRead => {
                lead_message = self
                    .as_(&o.lead)
                    .post_message(pb::PostMessageRequest {
                        attachments: vec![],
                        command_id: command_id(),
                        mention_ids: vec![],
                        thread_id: thread.clone(),
                        body: "Please weigh yourself daily.".into(),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .message_id;
            }
            _ => {}
        }
        let actor = self.caller(who, &o.patient);
        let mut client = self.as_(&actor);
        let thread_id = thread;
        match case {
            Case::PostMessage => code(
                client
                    .post_message(pb::PostMessageRequest {
                        attachments: vec![],
                        command_id: command_id(),
                        mention_ids: vec![],
                        thread_id,
                        body: "Hello".into(),
                    })
                    .await,
            ),
            Case::PostStaffNote => code(
                client
                    .post_staff_note(pb::PostStaffNoteRequest {
                        command_id: command_id(),
                        thread_id,
                        body: "For the consultant: potassium was high.".into(),
                    })
                    .await,
            ),
            Case::AddParticipants => code(
                client
                    .add_participants(pb::AddParticipantsRequest {
                        command_id: command_id(),
                        staff_side: false,
                        thread_id,
                        recipients: vec![professional_recipient(&o.consultant)],
                        carer_ids: vec![],
                    })
                    .await,
            ),
            Case::LeaveThread => code(
                client
                    .leave_thread(pb::LeaveThreadRequest {
                        command_id: command_id(),
                        thread_id,
                    })
                    .await,
            ),
            Case::AssignThread => code(
                client
                    .assign_thread(pb::AssignThreadRequest {
                        command_id: command_id(),
                        thread_id,
                        assignee_id: actor.person_id.to_string(),
                        if_assignee_id: None,
                    })
                    .await,
            ),
            Case::UnassignThread => code(
                client
                    .unassign_thread(pb::UnassignThreadRequest {
                        command_id: command_id(),
                        thread_id,
                    })
                    .await,
            ),
            Case::CompleteThread => code(
                client
                    .complete_thread(pb::CompleteThreadRequest {
                        command_id: command_id(),
                        thread_id,
                    })
                    .await,
            ),
            Case::ArchiveThread => code(
                client
                    .archive_thread(pb::ArchiveThreadRequest {
                        command_id: command_id(),
                        thread_id,
                    })
                    .await,
            ),
            Case::ReopenThread => code(
                client
                    .reopen_thread(pb::ReopenThreadRequest {
                        command_id: command_id(),
                        thread_id,
                    })
                    .await,
            ),
            Case::MarkRead => code(
                client
                    .mark_read(pb::MarkReadRequest {
                        command_id: command_id(),
                        thread_id,
                        message_id: lead_message,
                    })
                    .await,
            ),
            other => unreachable!("{other:?} is not a thread command"),
        }
    }

    async fn record_attempt(&self, case: Case, who: Who) -> Code {
        let o = self.org;
        let (owner, grant) = self.patient().await;
        let id = owner.person_id.to_string();
        let actor = self.caller(who, &owner);
        let mut client = self.as_(&actor);
        match case {
            Case::VerifyPatientEmail => code(
                client
                    .verify_patient_email(pb::VerifyPatientEmailRequest {
                        command_id: command_id(),
                        patient_id: id,
                        email: "fresh@example.org".into(),
                    })
                    .await,
            ),
            Case::ChangePatientEmail => code(
                client
                    .change_patient_email(pb::ChangePatientEmailRequest {
                        command_id: command_id(),
                        patient_id: id,
                        email: "fresh.new@example.org".into(),
                    })
                    .await,
            ),
            Case::RequestEmailVerification => code(
                client
                    .request_email_verification(pb::RequestEmailVerificationRequest {
                        person_id: String::new(),
                        command_id: command_id(),
                        patient_id: id,
                    })
                    .await,
            ),
            Case::AddPatientToTeam => code(
                client
                    .add_patient_to_team(pb::AddPatientToTeamRequest {
                        command_id: command_id(),
                        patient_id: id,
                        team_id: o.cardiology.clone(),
                    })
                    .await,
            ),
            Case::JoinTeamWithCode => {
                // A team of its own: attempts run at once, and a new code
                // replaces the old one.
                let team_id = self.team().await;
                let join_code = self.as_(&o.admin).issue_code(&team_id).await.unwrap();
                code(
                    client
                        .join_team_with_code(pb::JoinTeamWithCodeRequest {
                            command_id: command_id(),
                            team_id,
                            join_code,
                            ..Default::default()
                        })
                        .await,
                )
            }
            Case::GrantCarerConsent => code(
                client
                    .grant_carer_consent(pb::GrantCarerConsentRequest {
                        command_id: command_id(),
                        patient_id: id,
                        carer_id: o.carer_without_consent.person_id.to_string(),
                        relationship: pb::CarerRelationship::Parent as i32,
                        expires_at: None,
                    })
                    .await,
            ),
            Case::RevokeCarerConsent => code(
                client
                    .revoke_carer_consent(pb::RevokeCarerConsentRequest {
                        command_id: command_id(),
                        patient_id: id,
                        carer_id: o.carer.person_id.to_string(),
                    })
                    .await,
            ),
            Case::GrantRecordAccess => code(
                client
                    .grant_record_access(pb::GrantRecordAccessRequest {
                        command_id: command_id(),
                        patient_id: id,
                        team_id: o.cardiology.clone(),
                        expires_at: Some(
                            (std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
                                .into(),
                        ),
                        reason: String::new(),
                    })
                    .await,
            ),
            Case::RevokeRecordAccess => code(
                client
                    .revoke_record_access(pb::RevokeRecordAccessRequest {
                        command_id: command_id(),
                        patient_id: id,
                        grant_id: grant,
                    })
                    .await,
            ),
            other => unreachable!("{other:?} is not a record command"),
        }
    }

    async fn team_attempt(&self, case: Case, who: Who) -> Code {
        let o = self.org;
        let team_id = self.team().await;
        let member = o.cardiologist.person_id.to_string();
        let actor = self.caller(who, &o.patient);
        let mut client = self.as_(&actor);
        match case {
            Case::CreateTeam => code(
                client
                    .create_team(pb::CreateTeamRequest {
                        command_id: command_id(),
                        team_id: String::new(),
                        name: "Another Team".into(),
                        description: String::new(),
                    })
                    .await,
            ),
            Case::AddTeamMember => code(
                client
                    .add_team_member(pb::AddTeamMemberRequest {
                        command_id: command_id(),
                        team_id,
                        professional_id: o.consultant.person_id.to_string(),
                        contactable: true,
                        lead: false,
                    })
                    .await,
            ),
            Case::RemoveTeamMember => code(
                client
                    .remove_team_member(pb::RemoveTeamMemberRequest {
                        command_id: command_id(),
                        team_id,
                        professional_id: member,
                    })
                    .await,
            ),
            Case::SetMemberContactable => code(
                client
                    .set_member_contactable(pb::SetMemberContactableRequest {
                        command_id: command_id(),
                        team_id,
                        professional_id: member,
                        contactable: false,
                    })
                    .await,
            ),
            Case::SetMemberLead => code(
                client
                    .set_member_lead(pb::SetMemberLeadRequest {
                        command_id: command_id(),
                        team_id,
                        professional_id: member,
                        lead: true,
                    })
                    .await,
            ),
            Case::SetAutoCc => code(
                client
                    .set_auto_cc(pb::SetAutoCcRequest {
                        command_id: command_id(),
                        team_id,
                        enabled: true,
                    })
                    .await,
            ),
            Case::SetTeamAlerts => code(
                client
                    .set_team_alerts(pb::SetTeamAlertsRequest {
                        command_id: command_id(),
                        team_id,
                        enabled: true,
                    })
                    .await,
            ),
            Case::SetTeamOpenToPatients => code(
                client
                    .set_team_open_to_patients(pb::SetTeamOpenToPatientsRequest {
                        command_id: command_id(),
                        team_id,
                        open: true,
                    })
                    .await,
            ),
            Case::SetDefaultContact => code(
                client
                    .set_default_contact(pb::SetDefaultContactRequest {
                        command_id: command_id(),
                        team_id,
                        professional_id: member,
                    })
                    .await,
            ),
            Case::IssueJoinCode => code(
                client
                    .issue_join_code(pb::IssueJoinCodeRequest {
                        command_id: command_id(),
                        team_id,
                    })
                    .await,
            ),
            other => unreachable!("{other:?} is not a team command"),
        }
    }
}

fn parse(expected: &str) -> Vec<Code> {
    let codes: Vec<Code> = expected
        .split_whitespace()
        .map(|c| match c {
            "ok" => Code::Ok,
            "pd" => Code::PermissionDenied,
            "nf" => Code::NotFound,
            "fp" => Code::FailedPrecondition,
            other => panic!("unknown outcome {other}"),
        })
        .collect();
    assert_eq!(codes.len(), EVERYONE.len(), "{expected}");
    codes
}

/// Runs every (case, role) attempt and reports every mismatch at once.
async fn check(label: &str, table: &[(Case, &str)]) {
    let app = spawn_app(label).await;
    let org = app.org().await;
    let fixture = Fixture {
        app: &app,
        org: &org,
    };
    let mut mismatches = Vec::new();
    for (case, expected) in table {
        let expected = parse(expected);
        let got = join_all(EVERYONE.iter().map(|&who| fixture.attempt(*case, who))).await;
        for ((who, want), got) in EVERYONE.iter().zip(&expected).zip(&got) {
            if want != got {
                mismatches.push(format!(
                    "{case:?} as {who:?}: expected {want:?}, got {got:?}"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_commands_role_by_role() {
    check(
        "authz_threads",
        &[
            //                       P  OP C  CN N  S  G  A
            (Case::StartThread, "ok pd ok pd ok pd ok pd"),
            (Case::PostMessage, "ok nf ok nf ok nf pd nf"),
            (Case::PostStaffNote, "pd nf pd nf ok nf ok nf"),
            (Case::AddParticipants, "pd nf pd nf ok nf ok nf"),
            (Case::LeaveThread, "fp nf ok nf ok nf fp nf"),
            (Case::AssignThread, "pd nf pd nf ok nf pd nf"),
            (Case::UnassignThread, "pd nf pd nf ok nf pd nf"),
            (Case::CompleteThread, "pd nf pd nf ok nf pd nf"),
            (Case::ArchiveThread, "pd nf pd nf ok nf pd nf"),
            (Case::ReopenThread, "pd nf pd nf ok nf pd nf"),
            (Case::MarkRead, "ok nf ok nf ok nf pd nf"),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_record_commands_role_by_role() {
    check(
        "authz_records",
        &[
            //                          P  OP C  CN N  S  G  A
            (Case::RegisterPatient, "pd pd pd pd ok ok ok ok"),
            // A claim by anyone is refused: only the emailed link verifies.
            (Case::VerifyPatientEmail, "fp fp fp fp fp fp fp fp"),
            (Case::ChangePatientEmail, "ok pd pd pd pd pd pd ok"),
            (Case::RequestEmailVerification, "ok pd pd pd pd pd pd ok"),
            (Case::AddPatientToTeam, "pd pd pd pd pd ok pd ok"),
            (Case::JoinTeamWithCode, "ok ok pd pd pd pd pd pd"),
            (Case::GrantCarerConsent, "ok pd pd pd ok pd pd pd"),
            (Case::RevokeCarerConsent, "ok pd pd pd ok pd pd ok"),
            (Case::GrantRecordAccess, "ok pd pd pd pd pd pd pd"),
            (Case::RevokeRecordAccess, "ok pd pd pd pd pd ok pd"),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_and_team_commands_role_by_role() {
    check(
        "authz_teams",
        &[
            //                            P  OP C  CN N  S  G  A
            (Case::RegisterProfessional, "pd pd pd pd pd pd pd ok"),
            (Case::RegisterCarer, "pd pd pd pd ok ok ok ok"),
            (Case::CreateTeam, "pd pd pd pd pd pd pd ok"),
            (Case::AddTeamMember, "pd pd pd pd pd pd pd ok"),
            (Case::RemoveTeamMember, "pd pd pd pd pd pd pd ok"),
            (Case::SetMemberContactable, "pd pd pd pd pd pd pd ok"),
            (Case::SetMemberLead, "pd pd pd pd pd pd pd ok"),
            (Case::SetAutoCc, "pd pd pd pd pd pd pd ok"),
            (Case::SetTeamOpenToPatients, "pd pd pd pd pd pd pd ok"),
            (Case::SetTeamAlerts, "pd pd pd pd pd pd pd ok"),
            (Case::SetDefaultContact, "pd pd pd pd pd pd pd ok"),
            (Case::IssueJoinCode, "pd pd pd pd pd pd pd ok"),
            (Case::DeactivatePerson, "pd pd pd pd pd pd pd ok"),
            (Case::ReactivatePerson, "pd pd pd pd pd pd pd ok"),
        ],
    )
    .await;
}
