//! Requests into checked domain commands, once, at the boundary. Every
//! refusal here is INVALID_ARGUMENT naming the field.

use proto::command as pb;
use proto::events::CarerRelationship;

use crate::domain::patient::{
    AddPatientToTeam, ChangePatientDetails, ChangePatientEmail, ConfirmPatientEmail,
    GrantCarerConsent, GrantRecordAccess, JoinTeamWithCode, RegisterPatient,
    RequestEmailVerification, RevokeCarerConsent, RevokeRecordAccess,
};
use crate::domain::person::{
    ChangePersonEmail, ConfirmPersonEmail, DeactivatePerson, EndAbsence, GrantStaffRole,
    ReactivatePerson, RecordAbsence, RegisterCarer, RegisterProfessional, RegisterSystem,
    RequestPersonEmailVerification, RevokeStaffRole,
};
use crate::domain::team::{
    AddTeamMember, CreateTeam, IssueJoinCode, RemoveTeamMember, SetAlerts, SetAutoCc,
    SetDefaultContact, SetMemberContactable, SetMemberLead, SetOpenToPatients, new_join_code,
};
use crate::domain::thread::{
    AddParticipants, AssignThread, ChangeStatus, LeaveThread, MarkRead, PostMessage, PostNotice,
    PostStaffNote, Recipient, StartThread, StatusChange, UnassignThread,
};
use crate::domain::values::{self as v};
use crate::domain::{Actor, DomainError};
use service_kit::ids::{GrantId, MessageId, PatientId, PersonId, TeamId, ThreadId};

/// Every request names its command id.
pub trait HasCommandId {
    fn command_id(&self) -> &str;
}

macro_rules! has_command_id {
    ($($request:ty),* $(,)?) => {
        $(impl HasCommandId for $request {
            fn command_id(&self) -> &str {
                &self.command_id
            }
        })*
    };
}

has_command_id!(
    pb::LinkIdentityRequest,
    pb::RegisterProfessionalRequest,
    pb::RegisterCarerRequest,
    pb::RegisterSystemRequest,
    pb::RecordAbsenceRequest,
    pb::EndAbsenceRequest,
    pb::GrantStaffRoleRequest,
    pb::RevokeStaffRoleRequest,
    pb::DeactivatePersonRequest,
    pb::ReactivatePersonRequest,
    pb::CreateTeamRequest,
    pb::AddTeamMemberRequest,
    pb::RemoveTeamMemberRequest,
    pb::SetMemberContactableRequest,
    pb::SetMemberLeadRequest,
    pb::SetAutoCcRequest,
    pb::SetTeamOpenToPatientsRequest,
    pb::SetTeamAlertsRequest,
    pb::SetDefaultContactRequest,
    pb::IssueJoinCodeRequest,
    pb::RegisterPatientRequest,
    pb::VerifyPatientEmailRequest,
    pb::ChangePatientEmailRequest,
    pb::ChangePatientDetailsRequest,
    pb::RequestEmailVerificationRequest,
    pb::ConfirmEmailRequest,
    pb::ChangePersonEmailRequest,
    pb::AddPatientToTeamRequest,
    pb::JoinTeamWithCodeRequest,
    pb::GrantCarerConsentRequest,
    pb::RevokeCarerConsentRequest,
    pb::GrantRecordAccessRequest,
    pb::RevokeRecordAccessRequest,
    pb::StartThreadRequest,
    pb::PostMessageRequest,
    pb::PostStaffNoteRequest,
    pb::AddParticipantsRequest,
    pb::LeaveThreadRequest,
    pb::AssignThreadRequest,
    pb::UnassignThreadRequest,
    pb::CompleteThreadRequest,
    pb::ArchiveThreadRequest,
    pb::ReopenThreadRequest,
    pb::MarkReadRequest,
);

/// A command built from its request. `command_id` is already checked; it
/// is the default id of whatever the command creates.
pub trait FromRequest<R>: Sized {
    fn from_request(request: R, command_id: &str, actor: &Actor) -> Result<Self, DomainError>;
}

fn recipients(
    field: &'static str,
    list: Vec<pb::Recipient>,
) -> Result<Vec<Recipient>, DomainError> {
    if list.len() > v::RECIPIENTS_MAX {
        return Err(DomainError::invalid(
            field,
            format!(
                "names {} recipients; at most {} are allowed",
                list.len(),
                v::RECIPIENTS_MAX
            ),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for recipient in list {
        let parsed = match recipient.recipient {
            Some(pb::recipient::Recipient::TeamId(id)) => {
                Recipient::Team(TeamId::parse(field, &id)?.into())
            }
            Some(pb::recipient::Recipient::ProfessionalId(id)) => {
                Recipient::Professional(PersonId::parse(field, &id)?.into())
            }
            None => {
                return Err(DomainError::invalid(
                    field,
                    "each recipient names a team_id or a professional_id",
                ));
            }
        };
        if out.contains(&parsed) {
            return Err(DomainError::invalid(
                field,
                "names the same recipient twice",
            ));
        }
        out.push(parsed);
    }
    Ok(out)
}

fn relationship(value: i32) -> Result<CarerRelationship, DomainError> {
    match pb::CarerRelationship::try_from(value) {
        Ok(pb::CarerRelationship::Parent) => Ok(CarerRelationship::Parent),
        Ok(pb::CarerRelationship::Guardian) => Ok(CarerRelationship::Guardian),
        Ok(pb::CarerRelationship::FamilyMember) => Ok(CarerRelationship::FamilyMember),
        Ok(pb::CarerRelationship::Friend) => Ok(CarerRelationship::Friend),
        Ok(pb::CarerRelationship::Other) => Ok(CarerRelationship::Other),
        _ => Err(DomainError::invalid(
            "relationship",
            "is required: parent, guardian, family member, friend or other",
        )),
    }
}

impl FromRequest<pb::RegisterProfessionalRequest> for RegisterProfessional {
    fn from_request(
        r: pb::RegisterProfessionalRequest,
        command_id: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            professional_id: v::id_or("professional_id", &r.professional_id, command_id)?,
            name: v::name("name", &r.name)?,
            role_label: v::text("role_label", &r.role_label, 1, v::ROLE_LABEL_MAX)?,
            work_email: v::email("work_email", &r.work_email, true)?,
        })
    }
}

impl FromRequest<pb::RecordAbsenceRequest> for RecordAbsence {
    fn from_request(
        r: pb::RecordAbsenceRequest,
        command_id: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        let until = r
            .until
            .as_ref()
            .ok_or_else(|| DomainError::invalid("until", "is required: say when they are back"))?;
        Ok(Self {
            person_id: PersonId::parse("person_id", &r.person_id)?.into(),
            absence_id: command_id.to_string(),
            from: r
                .from
                .as_ref()
                .map(|t| v::timestamp("from", t))
                .transpose()?,
            until: v::timestamp("until", until)?,
            deputy_id: if r.deputy_id.trim().is_empty() {
                None
            } else {
                Some(PersonId::parse("deputy_id", &r.deputy_id)?.into())
            },
        })
    }
}

impl FromRequest<pb::EndAbsenceRequest> for EndAbsence {
    fn from_request(r: pb::EndAbsenceRequest, _: &str, _: &Actor) -> Result<Self, DomainError> {
        Ok(Self {
            person_id: PersonId::parse("person_id", &r.person_id)?.into(),
            absence_id: v::id("absence_id", &r.absence_id)?,
        })
    }
}

impl FromRequest<pb::RegisterSystemRequest> for RegisterSystem {
    fn from_request(
        r: pb::RegisterSystemRequest,
        command_id: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            system_id: v::id_or("system_id", &r.system_id, command_id)?,
            name: v::name("name", &r.name)?,
            team_ids: v::ids("team_ids", &r.team_ids, v::RECIPIENTS_MAX)?,
        })
    }
}

/// A notice, with the command id its reference (one line, at most
/// `NAME_MAX` characters) stands for.
pub fn notice(
    r: pb::PostNoticeRequest,
    actor: &Actor,
) -> Result<(String, PostNotice), DomainError> {
    let reference = v::name("reference", &r.reference)?;
    let command_id = service_kit::ids::notice::command(&actor.person_id, &reference).to_string();
    let (thread_id, new_subject) = if r.thread_id.trim().is_empty() {
        let thread = service_kit::ids::notice::thread(&actor.person_id, &reference);
        let subject = v::text("subject", &r.subject, 1, v::SUBJECT_MAX)?;
        (thread.to_string(), Some(subject))
    } else {
        if !r.subject.trim().is_empty() {
            return Err(DomainError::invalid(
                "subject",
                "is for a new thread: leave it empty when naming thread_id",
            ));
        }
        (ThreadId::parse("thread_id", &r.thread_id)?.into(), None)
    };
    let notice = PostNotice {
        thread_id,
        new_subject,
        patient_id: PatientId::parse("patient_id", &r.patient_id)?.into(),
        team_id: TeamId::parse("team_id", &r.team_id)?.into(),
        message_id: command_id.clone(),
        body: v::text("body", &r.body, 1, v::BODY_MAX)?,
        reference,
    };
    Ok((command_id, notice))
}

impl FromRequest<pb::RegisterCarerRequest> for RegisterCarer {
    fn from_request(
        r: pb::RegisterCarerRequest,
        command_id: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            carer_id: v::id_or("carer_id", &r.carer_id, command_id)?,
            name: v::name("name", &r.name)?,
            email: v::email("email", &r.email, true)?,
            email_verified: r.email_verified,
        })
    }
}

/// A staff role by its name (the one role-name table: `proto::contract`).
fn staff_role(role: &str) -> Result<service_kit::Role, DomainError> {
    use service_kit::Role;
    match role.trim().parse::<Role>() {
        Ok(staff @ (Role::Admin | Role::Operator | Role::Auditor)) => Ok(staff),
        _ => Err(DomainError::invalid(
            "role",
            "must be admin, operator or auditor",
        )),
    }
}

impl FromRequest<pb::GrantStaffRoleRequest> for GrantStaffRole {
    fn from_request(r: pb::GrantStaffRoleRequest, _: &str, _: &Actor) -> Result<Self, DomainError> {
        Ok(Self {
            person_id: PersonId::parse("person_id", &r.person_id)?.into(),
            role: staff_role(&r.role)?,
            name: v::name("name", &r.name)?,
        })
    }
}

impl FromRequest<pb::RevokeStaffRoleRequest> for RevokeStaffRole {
    fn from_request(
        r: pb::RevokeStaffRoleRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            person_id: PersonId::parse("person_id", &r.person_id)?.into(),
            role: staff_role(&r.role)?,
        })
    }
}

impl FromRequest<pb::DeactivatePersonRequest> for DeactivatePerson {
    fn from_request(
        r: pb::DeactivatePersonRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            person_id: PersonId::parse("person_id", &r.person_id)?.into(),
        })
    }
}

impl FromRequest<pb::ReactivatePersonRequest> for ReactivatePerson {
    fn from_request(
        r: pb::ReactivatePersonRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            person_id: PersonId::parse("person_id", &r.person_id)?.into(),
        })
    }
}

impl FromRequest<pb::CreateTeamRequest> for CreateTeam {
    fn from_request(
        r: pb::CreateTeamRequest,
        command_id: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            team_id: v::id_or("team_id", &r.team_id, command_id)?,
            name: v::name("name", &r.name)?,
            description: v::text("description", &r.description, 0, v::DESCRIPTION_MAX)?,
        })
    }
}

impl FromRequest<pb::AddTeamMemberRequest> for AddTeamMember {
    fn from_request(r: pb::AddTeamMemberRequest, _: &str, _: &Actor) -> Result<Self, DomainError> {
        Ok(Self {
            team_id: TeamId::parse("team_id", &r.team_id)?.into(),
            professional_id: PersonId::parse("professional_id", &r.professional_id)?.into(),
            contactable: r.contactable,
            lead: r.lead,
        })
    }
}

impl FromRequest<pb::RemoveTeamMemberRequest> for RemoveTeamMember {
    fn from_request(
        r: pb::RemoveTeamMemberRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            team_id: TeamId::parse("team_id", &r.team_id)?.into(),
            professional_id: PersonId::parse("professional_id", &r.professional_id)?.into(),
        })
    }
}

impl FromRequest<pb::SetMemberContactableRequest> for SetMemberContactable {
    fn from_request(
        r: pb::SetMemberContactableRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            team_id: TeamId::parse("team_id", &r.team_id)?.into(),
            professional_id: PersonId::parse("professional_id", &r.professional_id)?.into(),
            contactable: r.contactable,
        })
    }
}

impl FromRequest<pb::SetMemberLeadRequest> for SetMemberLead {
    fn from_request(r: pb::SetMemberLeadRequest, _: &str, _: &Actor) -> Result<Self, DomainError> {
        Ok(Self {
            team_id: TeamId::parse("team_id", &r.team_id)?.into(),
            professional_id: PersonId::parse("professional_id", &r.professional_id)?.into(),
            lead: r.lead,
        })
    }
}

impl FromRequest<pb::SetAutoCcRequest> for SetAutoCc {
    fn from_request(r: pb::SetAutoCcRequest, _: &str, _: &Actor) -> Result<Self, DomainError> {
        Ok(Self {
            team_id: TeamId::parse("team_id", &r.team_id)?.into(),
            enabled: r.enabled,
        })
    }
}

impl FromRequest<pb::SetTeamAlertsRequest> for SetAlerts {
    fn from_request(r: pb::SetTeamAlertsRequest, _: &str, _: &Actor) -> Result<Self, DomainError> {
        Ok(Self {
            team_id: TeamId::parse("team_id", &r.team_id)?.into(),
            enabled: r.enabled,
        })
    }
}

impl FromRequest<pb::SetTeamOpenToPatientsRequest> for SetOpenToPatients {
    fn from_request(
        r: pb::SetTeamOpenToPatientsRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            team_id: TeamId::parse("team_id", &r.team_id)?.into(),
            open: r.open,
        })
    }
}

impl FromRequest<pb::SetDefaultContactRequest> for SetDefaultContact {
    fn from_request(
        r: pb::SetDefaultContactRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            team_id: TeamId::parse("team_id", &r.team_id)?.into(),
            professional_id: if r.professional_id.trim().is_empty() {
                None
            } else {
                Some(PersonId::parse("professional_id", &r.professional_id)?.into())
            },
        })
    }
}

impl FromRequest<pb::IssueJoinCodeRequest> for IssueJoinCode {
    fn from_request(r: pb::IssueJoinCodeRequest, _: &str, _: &Actor) -> Result<Self, DomainError> {
        Ok(Self {
            team_id: TeamId::parse("team_id", &r.team_id)?.into(),
            join_code: new_join_code(),
        })
    }
}

impl FromRequest<pb::RegisterPatientRequest> for RegisterPatient {
    fn from_request(
        r: pb::RegisterPatientRequest,
        command_id: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            patient_id: v::id_or("patient_id", &r.patient_id, command_id)?,
            name: v::name("name", &r.name)?,
            email: v::email("email", &r.email, false)?,
            email_verified: r.email_verified,
            identity: v::patient_identity(
                ["date_of_birth", "hospital_number", "nhs_number"],
                [&r.date_of_birth, &r.hospital_number, &r.nhs_number],
            )?,
        })
    }
}

impl FromRequest<pb::ChangePatientDetailsRequest> for ChangePatientDetails {
    fn from_request(
        r: pb::ChangePatientDetailsRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            patient_id: PatientId::parse("patient_id", &r.patient_id)?.into(),
            identity: v::patient_identity(
                ["date_of_birth", "hospital_number", "nhs_number"],
                [&r.date_of_birth, &r.hospital_number, &r.nhs_number],
            )?,
        })
    }
}

impl FromRequest<pb::ChangePatientEmailRequest> for ChangePatientEmail {
    fn from_request(
        r: pb::ChangePatientEmailRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            patient_id: PatientId::parse("patient_id", &r.patient_id)?.into(),
            email: v::email("email", &r.email, true)?,
        })
    }
}

impl FromRequest<pb::RequestEmailVerificationRequest> for RequestEmailVerification {
    fn from_request(
        r: pb::RequestEmailVerificationRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            patient_id: PatientId::parse("patient_id", &r.patient_id)?.into(),
        })
    }
}

impl FromRequest<pb::RequestEmailVerificationRequest> for RequestPersonEmailVerification {
    fn from_request(
        r: pb::RequestEmailVerificationRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            person_id: PersonId::parse("person_id", &r.person_id)?.into(),
        })
    }
}

impl FromRequest<pb::ChangePersonEmailRequest> for ChangePersonEmail {
    fn from_request(
        r: pb::ChangePersonEmailRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            person_id: PersonId::parse("person_id", &r.person_id)?.into(),
            email: v::email("email", &r.email, true)?,
        })
    }
}

impl FromRequest<CheckedLink> for ConfirmPersonEmail {
    fn from_request(r: CheckedLink, _: &str, _: &Actor) -> Result<Self, DomainError> {
        let (person_id, email, request_id) = r.parts();
        Ok(Self {
            person_id,
            email,
            request_id,
        })
    }
}

/// A `ConfirmEmail` request whose link has been checked (signature, key,
/// lifetime) by the service holding the link keys.
pub struct CheckedLink {
    pub command_id: String,
    pub link: service_kit::EmailLink,
}

impl HasCommandId for CheckedLink {
    fn command_id(&self) -> &str {
        &self.command_id
    }
}

impl CheckedLink {
    /// Whose address, which address, and the request the link answers.
    fn parts(self) -> (String, String, String) {
        let link = self.link;
        (link.person_id.to_string(), link.email, link.request_id)
    }
}

impl FromRequest<CheckedLink> for ConfirmPatientEmail {
    fn from_request(r: CheckedLink, _: &str, _: &Actor) -> Result<Self, DomainError> {
        let (patient_id, email, request_id) = r.parts();
        Ok(Self {
            patient_id,
            email,
            request_id,
        })
    }
}

impl FromRequest<pb::AddPatientToTeamRequest> for AddPatientToTeam {
    fn from_request(
        r: pb::AddPatientToTeamRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            patient_id: PatientId::parse("patient_id", &r.patient_id)?.into(),
            team_id: TeamId::parse("team_id", &r.team_id)?.into(),
        })
    }
}

impl FromRequest<pb::JoinTeamWithCodeRequest> for JoinTeamWithCode {
    fn from_request(
        r: pb::JoinTeamWithCodeRequest,
        _: &str,
        actor: &Actor,
    ) -> Result<Self, DomainError> {
        let name = if r.name.trim().is_empty() {
            actor.name.as_str()
        } else {
            r.name.as_str()
        };
        Ok(Self {
            // The record is the signed-in patient's own.
            patient_id: actor.person_id.clone(),
            team_id: TeamId::parse("team_id", &r.team_id)?.into(),
            join_code: v::text("join_code", &r.join_code, 1, v::JOIN_CODE_MAX)?,
            name: v::name("name", name)?,
            email: v::email("email", &r.email, false)?,
        })
    }
}

impl FromRequest<pb::GrantCarerConsentRequest> for GrantCarerConsent {
    fn from_request(
        r: pb::GrantCarerConsentRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            patient_id: PatientId::parse("patient_id", &r.patient_id)?.into(),
            carer_id: PersonId::parse("carer_id", &r.carer_id)?.into(),
            relationship: relationship(r.relationship)?,
            expires_at: r
                .expires_at
                .as_ref()
                .map(|t| v::timestamp("expires_at", t))
                .transpose()?,
        })
    }
}

impl FromRequest<pb::RevokeCarerConsentRequest> for RevokeCarerConsent {
    fn from_request(
        r: pb::RevokeCarerConsentRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            patient_id: PatientId::parse("patient_id", &r.patient_id)?.into(),
            carer_id: PersonId::parse("carer_id", &r.carer_id)?.into(),
        })
    }
}

impl FromRequest<pb::GrantRecordAccessRequest> for GrantRecordAccess {
    fn from_request(
        r: pb::GrantRecordAccessRequest,
        command_id: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        let expires_at = r
            .expires_at
            .as_ref()
            .ok_or_else(|| DomainError::invalid("expires_at", "is required: access always ends"))?;
        Ok(Self {
            patient_id: PatientId::parse("patient_id", &r.patient_id)?.into(),
            grant_id: command_id.to_string(),
            team_id: TeamId::parse("team_id", &r.team_id)?.into(),
            expires_at: v::timestamp("expires_at", expires_at)?,
            reason: v::text("reason", &r.reason, 0, v::REASON_MAX)?,
        })
    }
}

impl FromRequest<pb::RevokeRecordAccessRequest> for RevokeRecordAccess {
    fn from_request(
        r: pb::RevokeRecordAccessRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            patient_id: PatientId::parse("patient_id", &r.patient_id)?.into(),
            grant_id: GrantId::parse("grant_id", &r.grant_id)?.into(),
        })
    }
}

/// A message's text may be empty when it carries files.
fn body_min(attachments: &[pb::Attachment]) -> usize {
    usize::from(attachments.is_empty())
}

impl FromRequest<pb::StartThreadRequest> for StartThread {
    fn from_request(
        r: pb::StartThreadRequest,
        command_id: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            thread_id: v::id_or("thread_id", &r.thread_id, command_id)?,
            patient_id: PatientId::parse("patient_id", &r.patient_id)?.into(),
            subject: v::text("subject", &r.subject, 1, v::SUBJECT_MAX)?,
            body: v::text("body", &r.body, body_min(&r.attachments), v::BODY_MAX)?,
            message_id: command_id.to_string(),
            recipients: recipients("recipients", r.recipients)?,
            carer_ids: v::ids("carer_ids", &r.carer_ids, v::CARERS_MAX)?,
            attachments: super::files::to_event(r.attachments),
        })
    }
}

impl FromRequest<pb::PostMessageRequest> for PostMessage {
    fn from_request(
        r: pb::PostMessageRequest,
        command_id: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            thread_id: ThreadId::parse("thread_id", &r.thread_id)?.into(),
            message_id: command_id.to_string(),
            body: v::text("body", &r.body, body_min(&r.attachments), v::BODY_MAX)?,
            mention_ids: v::ids("mention_ids", &r.mention_ids, v::RECIPIENTS_MAX)?,
            attachments: super::files::to_event(r.attachments),
        })
    }
}

impl FromRequest<pb::PostStaffNoteRequest> for PostStaffNote {
    fn from_request(
        r: pb::PostStaffNoteRequest,
        command_id: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            thread_id: ThreadId::parse("thread_id", &r.thread_id)?.into(),
            note_id: command_id.to_string(),
            body: v::text("body", &r.body, 1, v::BODY_MAX)?,
        })
    }
}

impl FromRequest<pb::AddParticipantsRequest> for AddParticipants {
    fn from_request(
        r: pb::AddParticipantsRequest,
        _: &str,
        _: &Actor,
    ) -> Result<Self, DomainError> {
        let added = Self {
            thread_id: ThreadId::parse("thread_id", &r.thread_id)?.into(),
            recipients: recipients("recipients", r.recipients)?,
            carer_ids: v::ids("carer_ids", &r.carer_ids, v::CARERS_MAX)?,
            staff_side: r.staff_side,
        };
        if added.recipients.is_empty() && added.carer_ids.is_empty() {
            return Err(DomainError::invalid(
                "recipients",
                "name at least one professional, team or carer to add",
            ));
        }
        Ok(added)
    }
}

impl FromRequest<pb::LeaveThreadRequest> for LeaveThread {
    fn from_request(r: pb::LeaveThreadRequest, _: &str, _: &Actor) -> Result<Self, DomainError> {
        Ok(Self {
            thread_id: ThreadId::parse("thread_id", &r.thread_id)?.into(),
        })
    }
}

impl FromRequest<pb::AssignThreadRequest> for AssignThread {
    fn from_request(r: pb::AssignThreadRequest, _: &str, _: &Actor) -> Result<Self, DomainError> {
        Ok(Self {
            thread_id: ThreadId::parse("thread_id", &r.thread_id)?.into(),
            assignee_id: PersonId::parse("assignee_id", &r.assignee_id)?.into(),
            if_assignee: match r.if_assignee_id.as_deref().map(str::trim) {
                None => None,
                Some("") => Some(String::new()),
                Some(id) => Some(PersonId::parse("if_assignee_id", id)?.into()),
            },
        })
    }
}

impl FromRequest<pb::UnassignThreadRequest> for UnassignThread {
    fn from_request(r: pb::UnassignThreadRequest, _: &str, _: &Actor) -> Result<Self, DomainError> {
        Ok(Self {
            thread_id: ThreadId::parse("thread_id", &r.thread_id)?.into(),
        })
    }
}

macro_rules! status_change {
    ($request:ty, $change:expr) => {
        impl FromRequest<$request> for ChangeStatus {
            fn from_request(r: $request, _: &str, _: &Actor) -> Result<Self, DomainError> {
                Ok(Self {
                    thread_id: ThreadId::parse("thread_id", &r.thread_id)?.into(),
                    change: $change,
                })
            }
        }
    };
}

status_change!(pb::CompleteThreadRequest, StatusChange::Complete);
status_change!(pb::ArchiveThreadRequest, StatusChange::Archive);
status_change!(pb::ReopenThreadRequest, StatusChange::Reopen);

impl FromRequest<pb::MarkReadRequest> for MarkRead {
    fn from_request(r: pb::MarkReadRequest, _: &str, _: &Actor) -> Result<Self, DomainError> {
        Ok(Self {
            thread_id: ThreadId::parse("thread_id", &r.thread_id)?.into(),
            message_id: MessageId::parse("message_id", &r.message_id)?.into(),
        })
    }
}

/// The longest issuer (a URL) and subject (OpenID Connect: 255 ASCII
/// characters) of an identity provider's account.
const ISSUER_MAX: usize = 512;
const SUBJECT_MAX: usize = 255;

/// An identity provider's issuer and subject, exactly as its ID token
/// names them (the subject is compared byte for byte: not trimmed).
pub fn identity(issuer: &str, subject: &str) -> Result<(String, String), DomainError> {
    let issuer = issuer.trim();
    if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
        return Err(DomainError::invalid(
            "issuer",
            "must be the identity provider's issuer URL (https://...)",
        ));
    }
    for (field, value, max) in [
        ("issuer", issuer, ISSUER_MAX),
        ("subject", subject, SUBJECT_MAX),
    ] {
        if value.is_empty() {
            return Err(DomainError::invalid(field, "is required"));
        }
        if value.len() > max {
            return Err(DomainError::invalid(
                field,
                format!("is {} bytes; at most {max} are allowed", value.len()),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                field,
                "must be one line of text, without control characters",
            ));
        }
    }
    Ok((issuer.to_string(), subject.to_string()))
}
