//! The gRPC face of the write side: `careline.command.v1.CommandService`.
//!
//! Every method is the same four steps (see [`CommandGrpc::handle`]): the
//! caller authenticated from its bearer token, the checked command id, the request turned into a
//! domain command (`convert.rs`), and [`App::execute`]. Only `IssueJoinCode`
//! answers with more than a [`pb::CommandReply`].

mod convert;
pub mod files;
pub mod sign_in;

use std::sync::Arc;

use event_store::EventStore;
use proto::command as pb;
use proto::command::command_service_server::CommandService;
use service_kit::TokenKeys;
use service_kit::system_credential::SystemKeys;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::app::{App, CommandMeta, Reply};
use crate::domain::identity::{LinkIdentity, Proof};
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
    SetDefaultContact, SetMemberContactable, SetMemberLead, SetOpenToPatients,
};
use crate::domain::thread::{
    AddParticipants, AssignThread, ChangeStatus, LeaveThread, MarkRead, PostMessage, PostStaffNote,
    StartThread, UnassignThread,
};
use crate::domain::{Actor, Aggregate, Command, Identity, PatientRecord, Person, Team, values};
use crate::error::Error;
use convert::{CheckedLink, FromRequest, HasCommandId};

/// The command service over an event store.
pub struct CommandGrpc<S> {
    app: Arc<App<S>>,
    keys: TokenKeys,
    sign_in: Arc<sign_in::SignIn>,
    /// The keys of the hospital systems' credentials; without them no
    /// system posts.
    systems: Option<SystemKeys>,
}

impl<S> std::fmt::Debug for CommandGrpc<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandGrpc")
    }
}

impl<S: EventStore> CommandGrpc<S> {
    pub fn new(app: Arc<App<S>>, keys: TokenKeys, sign_in: Arc<sign_in::SignIn>) -> Self {
        Self {
            app,
            keys,
            sign_in,
            systems: None,
        }
    }

    /// Checks hospital systems' credentials with `keys`: only then may a
    /// system post notices.
    pub fn with_systems(mut self, keys: Option<SystemKeys>) -> Self {
        self.systems = keys;
        self
    }

    /// Authenticates the caller (a person) and checks the command id.
    fn begin<R: HasCommandId>(&self, request: &Request<R>) -> Result<(Actor, CommandMeta), Status> {
        let caller = self.keys.authenticate(request).map_err(|refused| {
            // A system's credential, well signed, is refused for what it
            // is: a system posts notices and does nothing else.
            match self.systems.as_ref().map(|keys| keys.authenticate(request)) {
                Some(Ok(_)) => service_kit::reason::plain(
                    tonic::Code::PermissionDenied,
                    "a hospital system's credential posts notices (PostNotice) and does nothing else",
                ),
                _ => refused.into(),
            }
        })?;
        Ok((Actor::from(&caller), meta(request)?))
    }

    /// Whom an account at an identity provider signs in as, from the log
    /// (none: linked to no one yet).
    async fn identity(&self, issuer: &str, subject: &str) -> Result<Option<sign_in::Found>, Error> {
        let id = service_kit::ids::identity::account(issuer, subject).to_string();
        let identity = self.app.repository().fresh::<Identity>(&id).await?;
        let Some(linked) = identity.state.linked.clone() else {
            return Ok(None);
        };
        self.person(&linked.person_id, Some(linked.role)).await
    }

    /// The person `person_id` as they sign in: a patient (their record), or
    /// a carer, professional or staff member (their person); `role` their
    /// linked role when known. None: no one of that id.
    async fn person(
        &self,
        person_id: &str,
        role: Option<service_kit::Role>,
    ) -> Result<Option<sign_in::Found>, Error> {
        use service_kit::Role;
        let repo = self.app.repository();
        if role.is_none_or(|r| r != Role::Patient) {
            let person = repo.fresh::<Person>(person_id).await?;
            let staff: Vec<Role> = [Role::Admin, Role::Auditor, Role::Operator]
                .into_iter()
                .filter(|r| person.state.holds(*r))
                .collect();
            let own = if person.state.is_professional() {
                Some(Role::Professional)
            } else if person.state.is_carer() {
                Some(Role::Carer)
            } else {
                staff.first().copied()
            };
            if let Some(own) = role.or(own) {
                return Ok(Some(sign_in::Found {
                    person_id: person_id.to_string(),
                    role: own,
                    name: person.state.name.clone(),
                    deactivated: person.state.deactivated,
                    staff,
                }));
            }
        }
        let record = repo.fresh::<PatientRecord>(person_id).await?;
        if !record.state.exists {
            return Ok(None);
        }
        Ok(Some(sign_in::Found {
            person_id: person_id.to_string(),
            role: Role::Patient,
            name: record.state.name.clone(),
            deactivated: record.state.deactivated(),
            staff: vec![],
        }))
    }

    /// The sign-in reply for an account the provider (or an account token)
    /// vouched for.
    async fn signed_in(
        &self,
        account: &service_kit::provider::Identity,
    ) -> Result<pb::SignInReply, Status> {
        let (issuer, subject) =
            convert::identity(&account.issuer, &account.subject).map_err(Error::from)?;
        match self.identity(&issuer, &subject).await? {
            Some(found) => self.sign_in.reply(found),
            None => self.sign_in.unlinked(account),
        }
    }
}

impl<S: EventStore> CommandGrpc<S> {
    /// An email link's token, checked with the notification service's
    /// public link keys.
    fn check_link(&self, token: &str) -> Result<service_kit::EmailLink, Status> {
        let links = self.app.email_links().ok_or_else(|| {
            Status::failed_precondition(
                "this service checks no email links (CARELINE_EMAIL_LINK_PUBLIC_KEYS is not set)",
            )
        })?;
        links.verify(token.trim()).map_err(|e| match e {
            service_kit::auth::AuthError::Expired => Status::failed_precondition(
                "this link has expired: ask for a new verification email",
            ),
            e => Status::invalid_argument(format!("token: not a valid email link ({e})")),
        })
    }
}

/// The checked command id and the correlation id of a request.
fn meta<R: HasCommandId>(request: &Request<R>) -> Result<CommandMeta, Status> {
    {
        let command_id =
            values::id("command_id", request.get_ref().command_id()).map_err(Error::from)?;
        // A caller may thread one journey through several commands.
        let correlation_id = request
            .metadata()
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map_or_else(|| command_id.clone(), str::to_string);
        Ok(CommandMeta {
            command_id,
            correlation_id,
        })
    }
}

impl<S: EventStore> CommandGrpc<S> {
    /// Runs the command a request describes.
    async fn run<R, C>(&self, request: Request<R>) -> Result<(CommandMeta, C, Reply), Status>
    where
        R: HasCommandId,
        C: Command + FromRequest<R>,
    {
        let (actor, meta) = self.begin(&request)?;
        let command =
            C::from_request(request.into_inner(), &meta.command_id, &actor).map_err(Error::from)?;
        let span = tracing::info_span!(
            "command",
            command = std::any::type_name::<C>().rsplit("::").next().unwrap_or("?"),
            command_id = %meta.command_id,
            actor = %actor.person_id,
            role = %actor.role,
        );
        let result = self
            .app
            .execute(&actor, &meta, &command)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        match result {
            Ok(reply) => {
                // One line per command is too much at thousands a second:
                // `RUST_LOG=command_service=debug` shows them.
                tracing::debug!(
                    position = reply.position,
                    replayed = reply.replayed,
                    "command recorded"
                );
                Ok((meta, command, reply))
            }
            Err(e) => {
                tracing::info!(error = %e, "command refused");
                Err(e.into())
            }
        }
    }

    async fn handle<R, C>(&self, request: Request<R>) -> Result<Response<pb::CommandReply>, Status>
    where
        R: HasCommandId,
        C: Command + FromRequest<R>,
    {
        let (_, _, reply) = self.run::<R, C>(request).await?;
        Ok(Response::new(to_pb(reply)))
    }
}

fn to_pb(reply: Reply) -> pb::CommandReply {
    pb::CommandReply {
        aggregate_id: reply.aggregate_id,
        version: reply.position,
        position: reply.position,
        replayed: reply.replayed,
        message_id: reply.created.message_id.unwrap_or_default(),
        grant_id: reply.created.grant_id.unwrap_or_default(),
    }
}

type Answer = Result<Response<pb::CommandReply>, Status>;

#[tonic::async_trait]
impl<S: EventStore> CommandService for CommandGrpc<S> {
    async fn register_professional(&self, r: Request<pb::RegisterProfessionalRequest>) -> Answer {
        self.handle::<_, RegisterProfessional>(r).await
    }
    async fn register_carer(&self, r: Request<pb::RegisterCarerRequest>) -> Answer {
        self.handle::<_, RegisterCarer>(r).await
    }
    async fn register_system(&self, r: Request<pb::RegisterSystemRequest>) -> Answer {
        // A person's command may not read teams: each named team is checked
        // to exist first (a team is never removed).
        self.begin(&r)?;
        for team_id in &r.get_ref().team_ids {
            let Ok(id) = service_kit::ids::TeamId::parse("team_ids", team_id) else {
                continue; // The command's own check names the field.
            };
            let team = self
                .app
                .repository()
                .fresh::<Team>(&id.to_string())
                .await
                .map_err(Error::from)?;
            if !team.state.exists {
                return Err(Error::from(crate::domain::DomainError::not_found(format!(
                    "team {team_id} does not exist"
                )))
                .into());
            }
        }
        self.handle::<_, RegisterSystem>(r).await
    }
    async fn record_absence(&self, r: Request<pb::RecordAbsenceRequest>) -> Answer {
        // A person's command may not read another person: the deputy is
        // checked first (an account closed in between only means the
        // patient's message goes to the team's default contact instead).
        self.begin(&r)?;
        let deputy = r.get_ref().deputy_id.trim().to_string();
        if let Ok(id) = service_kit::ids::PersonId::parse("deputy_id", &deputy) {
            let found = self
                .app
                .repository()
                .fresh::<Person>(&id.to_string())
                .await
                .map_err(Error::from)?;
            if !found.state.is_professional() {
                return Err(Error::from(crate::domain::DomainError::not_found(format!(
                    "deputy {deputy} is not a registered professional"
                )))
                .into());
            }
            if found.state.deactivated {
                return Err(
                    Error::from(crate::domain::DomainError::precondition(format!(
                        "deputy {}'s account is closed: choose someone else",
                        found.state.name
                    )))
                    .into(),
                );
            }
        }
        self.handle::<_, RecordAbsence>(r).await
    }
    async fn end_absence(&self, r: Request<pb::EndAbsenceRequest>) -> Answer {
        self.handle::<_, EndAbsence>(r).await
    }
    async fn post_notice(&self, r: Request<pb::PostNoticeRequest>) -> Answer {
        let caller = match &self.systems {
            Some(keys) => keys.authenticate(&r).map_err(|refused| {
                if self.keys.authenticate(&r).is_ok() {
                    service_kit::reason::plain(
                        tonic::Code::PermissionDenied,
                        "only the hospital's systems post notices, with the credential an operator issued them",
                    )
                } else {
                    refused.into()
                }
            })?,
            None => {
                return Err(Status::failed_precondition(
                    "this service takes no notices (CARELINE_SYSTEM_TOKEN_PUBLIC_KEYS is not set)",
                ));
            }
        };
        let actor = Actor::from(&caller);
        let (command_id, command) = convert::notice(r.into_inner(), &actor).map_err(Error::from)?;
        let meta = CommandMeta {
            correlation_id: command_id.clone(),
            command_id,
        };
        let span = tracing::info_span!(
            "command",
            command = "PostNotice",
            command_id = %meta.command_id,
            actor = %actor.person_id,
            role = %actor.role,
        );
        let reply = self
            .app
            .execute(&actor, &meta, &command)
            .instrument(span)
            .await
            .inspect_err(|e| tracing::info!(error = %e, "notice refused"))?;
        Ok(Response::new(to_pb(reply)))
    }
    async fn grant_staff_role(&self, r: Request<pb::GrantStaffRoleRequest>) -> Answer {
        self.handle::<_, GrantStaffRole>(r).await
    }
    async fn revoke_staff_role(&self, r: Request<pb::RevokeStaffRoleRequest>) -> Answer {
        self.handle::<_, RevokeStaffRole>(r).await
    }
    async fn deactivate_person(&self, r: Request<pb::DeactivatePersonRequest>) -> Answer {
        self.handle::<_, DeactivatePerson>(r).await
    }
    async fn reactivate_person(&self, r: Request<pb::ReactivatePersonRequest>) -> Answer {
        self.handle::<_, ReactivatePerson>(r).await
    }
    async fn create_team(&self, r: Request<pb::CreateTeamRequest>) -> Answer {
        self.handle::<_, CreateTeam>(r).await
    }
    async fn add_team_member(&self, r: Request<pb::AddTeamMemberRequest>) -> Answer {
        self.handle::<_, AddTeamMember>(r).await
    }
    async fn remove_team_member(&self, r: Request<pb::RemoveTeamMemberRequest>) -> Answer {
        self.handle::<_, RemoveTeamMember>(r).await
    }
    async fn set_member_contactable(&self, r: Request<pb::SetMemberContactableRequest>) -> Answer {
        self.handle::<_, SetMemberContactable>(r).await
    }
    async fn set_member_lead(&self, r: Request<pb::SetMemberLeadRequest>) -> Answer {
        self.handle::<_, SetMemberLead>(r).await
    }
    async fn set_auto_cc(&self, r: Request<pb::SetAutoCcRequest>) -> Answer {
        self.handle::<_, SetAutoCc>(r).await
    }
    async fn set_team_alerts(&self, r: Request<pb::SetTeamAlertsRequest>) -> Answer {
        self.handle::<_, SetAlerts>(r).await
    }
    async fn set_team_open_to_patients(
        &self,
        r: Request<pb::SetTeamOpenToPatientsRequest>,
    ) -> Answer {
        self.handle::<_, SetOpenToPatients>(r).await
    }
    async fn set_default_contact(&self, r: Request<pb::SetDefaultContactRequest>) -> Answer {
        self.handle::<_, SetDefaultContact>(r).await
    }
    async fn issue_join_code(
        &self,
        r: Request<pb::IssueJoinCodeRequest>,
    ) -> Result<Response<pb::IssueJoinCodeReply>, Status> {
        let (meta, command, reply) = self.run::<_, IssueJoinCode>(r).await?;
        let join_code = if reply.replayed {
            // A retried command answers with the code its first run issued.
            let team = self
                .app
                .repository()
                .fresh::<Team>(&command.team_id)
                .await
                .map_err(Error::from)?;
            team.state
                .codes_by_command
                .get(&meta.command_id)
                .cloned()
                .unwrap_or_default()
        } else {
            command.join_code
        };
        Ok(Response::new(pb::IssueJoinCodeReply {
            reply: Some(to_pb(reply)),
            join_code,
        }))
    }
    async fn register_patient(&self, r: Request<pb::RegisterPatientRequest>) -> Answer {
        self.handle::<_, RegisterPatient>(r).await
    }
    async fn verify_patient_email(&self, r: Request<pb::VerifyPatientEmailRequest>) -> Answer {
        // Authenticated like every call, then refused whoever asks.
        self.begin(&r)?;
        Err(Status::failed_precondition(
            "an email address is verified only by its owner following the link in the verification email (ConfirmEmail); RequestEmailVerification sends another",
        ))
    }
    async fn change_patient_email(&self, r: Request<pb::ChangePatientEmailRequest>) -> Answer {
        self.handle::<_, ChangePatientEmail>(r).await
    }
    async fn change_patient_details(&self, r: Request<pb::ChangePatientDetailsRequest>) -> Answer {
        self.handle::<_, ChangePatientDetails>(r).await
    }
    async fn request_email_verification(
        &self,
        r: Request<pb::RequestEmailVerificationRequest>,
    ) -> Answer {
        // A patient's address is on the record; anyone else's on the person.
        match (
            r.get_ref().patient_id.trim().is_empty(),
            r.get_ref().person_id.trim().is_empty(),
        ) {
            (false, true) => self.handle::<_, RequestEmailVerification>(r).await,
            (true, false) => self.handle::<_, RequestPersonEmailVerification>(r).await,
            _ => {
                self.begin(&r)?;
                Err(Status::invalid_argument(
                    "patient_id or person_id: name exactly one, the patient or the professional or carer whose address it is",
                ))
            }
        }
    }
    async fn change_person_email(&self, r: Request<pb::ChangePersonEmailRequest>) -> Answer {
        self.handle::<_, ChangePersonEmail>(r).await
    }
    async fn confirm_email(&self, r: Request<pb::ConfirmEmailRequest>) -> Answer {
        // Who asks comes first: an unauthenticated caller learns nothing of
        // the link.
        self.begin(&r)?;
        let link = self.check_link(&r.get_ref().token)?;
        let addressee = link.addressee;
        let r = r.map(|inner| CheckedLink {
            command_id: inner.command_id,
            link,
        });
        match addressee {
            service_kit::Addressee::Patient => self.handle::<_, ConfirmPatientEmail>(r).await,
            service_kit::Addressee::Person => self.handle::<_, ConfirmPersonEmail>(r).await,
        }
    }
    async fn add_patient_to_team(&self, r: Request<pb::AddPatientToTeamRequest>) -> Answer {
        self.handle::<_, AddPatientToTeam>(r).await
    }
    async fn join_team_with_code(&self, r: Request<pb::JoinTeamWithCodeRequest>) -> Answer {
        self.handle::<_, JoinTeamWithCode>(r).await
    }
    async fn grant_carer_consent(&self, r: Request<pb::GrantCarerConsentRequest>) -> Answer {
        self.handle::<_, GrantCarerConsent>(r).await
    }
    async fn revoke_carer_consent(&self, r: Request<pb::RevokeCarerConsentRequest>) -> Answer {
        self.handle::<_, RevokeCarerConsent>(r).await
    }
    async fn grant_record_access(&self, r: Request<pb::GrantRecordAccessRequest>) -> Answer {
        self.handle::<_, GrantRecordAccess>(r).await
    }
    async fn revoke_record_access(&self, r: Request<pb::RevokeRecordAccessRequest>) -> Answer {
        self.handle::<_, RevokeRecordAccess>(r).await
    }
    async fn start_thread(&self, mut r: Request<pb::StartThreadRequest>) -> Answer {
        if !r.get_ref().attachments.is_empty() {
            self.begin(&r)?;
            files::resolve(&self.app, &mut r.get_mut().attachments).await?;
        }
        self.handle::<_, StartThread>(r).await
    }
    async fn post_message(&self, mut r: Request<pb::PostMessageRequest>) -> Answer {
        if !r.get_ref().attachments.is_empty() {
            self.begin(&r)?;
            files::resolve(&self.app, &mut r.get_mut().attachments).await?;
        }
        self.handle::<_, PostMessage>(r).await
    }
    async fn upload_file(
        &self,
        r: Request<tonic::Streaming<pb::UploadFileRequest>>,
    ) -> Result<Response<pb::UploadFileReply>, Status> {
        let actor = Actor::from(&self.keys.authenticate(&r)?);
        // A closed account sends nothing, whatever its token.
        let open = match actor.role {
            service_kit::Role::Patient
            | service_kit::Role::Carer
            | service_kit::Role::Professional => self
                .person(&actor.person_id, Some(actor.role))
                .await?
                .is_some_and(|found| !found.deactivated),
            _ => false,
        };
        if !open {
            return Err(Status::permission_denied(
                "files are sent by patients, carers and professionals with an open account",
            ));
        }
        files::upload(&self.app, &actor.person_id, r)
            .await
            .map(Response::new)
    }
    async fn post_staff_note(&self, r: Request<pb::PostStaffNoteRequest>) -> Answer {
        self.handle::<_, PostStaffNote>(r).await
    }
    async fn add_participants(&self, r: Request<pb::AddParticipantsRequest>) -> Answer {
        self.handle::<_, AddParticipants>(r).await
    }
    async fn leave_thread(&self, r: Request<pb::LeaveThreadRequest>) -> Answer {
        self.handle::<_, LeaveThread>(r).await
    }
    async fn assign_thread(&self, r: Request<pb::AssignThreadRequest>) -> Answer {
        self.handle::<_, AssignThread>(r).await
    }
    async fn unassign_thread(&self, r: Request<pb::UnassignThreadRequest>) -> Answer {
        self.handle::<_, UnassignThread>(r).await
    }
    async fn complete_thread(&self, r: Request<pb::CompleteThreadRequest>) -> Answer {
        self.handle::<_, ChangeStatus>(r).await
    }
    async fn archive_thread(&self, r: Request<pb::ArchiveThreadRequest>) -> Answer {
        self.handle::<_, ChangeStatus>(r).await
    }
    async fn reopen_thread(&self, r: Request<pb::ReopenThreadRequest>) -> Answer {
        self.handle::<_, ChangeStatus>(r).await
    }
    async fn mark_read(&self, r: Request<pb::MarkReadRequest>) -> Answer {
        self.handle::<_, MarkRead>(r).await
    }
    async fn sign_in(
        &self,
        r: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::SignInReply>, Status> {
        use pb::sign_in_request::Proof as P;
        let reply = match r.into_inner().proof {
            Some(P::IdToken(proof)) => {
                let account = self.sign_in.by_id_token(&proof).await?;
                self.signed_in(&account).await?
            }
            Some(P::AccountToken(token)) => {
                let account = self.sign_in.by_account_token(&token)?;
                self.signed_in(&account).await?
            }
            Some(P::DemoPersonId(id)) => {
                let person_id = self.sign_in.demo_person(&id)?;
                let found = self
                    .person(&person_id.to_string(), None)
                    .await?
                    .ok_or_else(|| {
                        service_kit::reason::plain(
                            tonic::Code::NotFound,
                            "no one of that id is in this organisation",
                        )
                    })?;
                self.sign_in.reply(found)?
            }
            None => {
                return Err(service_kit::reason::invalid(
                    "proof",
                    "give id_token, account_token or demo_person_id",
                ));
            }
        };
        tracing::info!(linked = reply.linked, "signed in");
        Ok(Response::new(reply))
    }
    async fn link_identity(&self, r: Request<pb::LinkIdentityRequest>) -> Answer {
        // The account is the one its token names, vouched for by the
        // identity provider at sign-in; the link is recorded by this
        // service's own sign-in, which acts for no one else.
        let account = self.sign_in.by_account_token(&r.get_ref().account_token)?;
        let actor = sign_in::principal();
        let meta = meta(&r)?;
        let r = r.into_inner();
        let (issuer, subject) =
            convert::identity(&account.issuer, &account.subject).map_err(Error::from)?;
        let identity_id = service_kit::ids::identity::account(&issuer, &subject).to_string();
        let proof = match r.proof {
            Some(pb::link_identity_request::Proof::InvitationToken(token)) => {
                let link = self.check_link(&token)?;
                // An invitation links one account, once: its request is
                // claimed for the first account that follows it, for good
                // (that account may try again; no other may use it).
                let used = self
                    .app
                    .store()
                    .claim(&format!("invitation.{}", link.request_id), &identity_id)
                    .await
                    .map_err(Error::from)?;
                if used.is_some() {
                    tracing::info!(command_id = %meta.command_id, "an invitation link used twice");
                    return Err(Status::failed_precondition(
                        "this link has been used already: it links one account, once. Ask your care team to send a new one",
                    ));
                }
                Proof::Invitation {
                    person_id: link.person_id.to_string(),
                    patient: link.addressee == service_kit::Addressee::Patient,
                    email: link.email,
                }
            }
            Some(pb::link_identity_request::Proof::SignUp(true)) => Proof::SignUp {
                patient_id: service_kit::ids::identity::sign_up_patient(&issuer, &subject)
                    .to_string(),
            },
            _ => {
                return Err(Status::invalid_argument(
                    "proof: give invitation_token (an email link's token) or sign_up",
                ));
            }
        };
        let command = LinkIdentity {
            identity_id,
            issuer,
            subject,
            proof,
        };
        match self.app.execute(&actor, &meta, &command).await {
            Ok(reply) => Ok(Response::new(to_pb(reply))),
            Err(e) => {
                tracing::info!(error = %e, command_id = %meta.command_id, "identity link refused");
                Err(e.into())
            }
        }
    }
}
