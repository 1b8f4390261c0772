//! The steps of the seeds' scenarios, as one person takes them through the
//! command API: each with a fresh command id, each answering the event's
//! position (to pass as `min_position` when reading it back).

use std::future::Future;

use proto::command as pb;
use service_kit::Caller;
use tonic::Status;

use crate::bearer::{Client, command_id};

fn position(reply: tonic::Response<pb::CommandReply>) -> u64 {
    reply.into_inner().position
}

/// Scenario steps on a signed-in person's client.
pub trait Steps {
    /// Posts `body` on `thread`.
    fn post(
        &mut self,
        thread: &str,
        body: &str,
    ) -> impl Future<Output = Result<u64, Status>> + Send;
    /// Posts `body` on `thread`; answers the whole reply (the message's id
    /// and the event's position).
    fn post_reply(
        &mut self,
        thread: &str,
        body: &str,
    ) -> impl Future<Output = Result<pb::CommandReply, Status>> + Send;
    /// Assigns `thread` to `assignee`.
    fn assign(
        &mut self,
        thread: &str,
        assignee: &Caller,
    ) -> impl Future<Output = Result<u64, Status>> + Send;
    /// Adds the professional `who` to `thread`.
    fn add_professional(
        &mut self,
        thread: &str,
        who: &Caller,
    ) -> impl Future<Output = Result<u64, Status>> + Send;
    /// Adds `who` (a professional, or a team) to the staff side of `thread`
    /// (`staff_side`), or to its patient side.
    fn add_recipient(
        &mut self,
        thread: &str,
        who: pb::recipient::Recipient,
        staff_side: bool,
    ) -> impl Future<Output = Result<u64, Status>> + Send;
    /// Posts `body` on `thread`, mentioning `mentioned`.
    fn post_mentioning(
        &mut self,
        thread: &str,
        body: &str,
        mentioned: &[&Caller],
    ) -> impl Future<Output = Result<u64, Status>> + Send;
    /// Leaves `thread`.
    fn leave(&mut self, thread: &str) -> impl Future<Output = Result<u64, Status>> + Send;
    /// Archives `thread`.
    fn archive(&mut self, thread: &str) -> impl Future<Output = Result<u64, Status>> + Send;
    /// Issues `team` a new join code; answers it.
    fn issue_code(&mut self, team: &str) -> impl Future<Output = Result<String, Status>> + Send;
    /// Starts a thread in `patient`'s record to `team`; answers its id.
    fn start_to_team(
        &mut self,
        patient: &Caller,
        team: &str,
        subject: &str,
        body: &str,
    ) -> impl Future<Output = Result<String, Status>> + Send;
}

impl Steps for Client {
    async fn post(&mut self, thread: &str, body: &str) -> Result<u64, Status> {
        self.post_reply(thread, body).await.map(|r| r.position)
    }

    async fn post_reply(&mut self, thread: &str, body: &str) -> Result<pb::CommandReply, Status> {
        self.post_message(pb::PostMessageRequest {
            attachments: vec![],
            command_id: command_id(),
            thread_id: thread.into(),
            body: body.into(),
            mention_ids: vec![],
        })
        .await
        .map(tonic::Response::into_inner)
    }

    async fn post_mentioning(
        &mut self,
        thread: &str,
        body: &str,
        mentioned: &[&Caller],
    ) -> Result<u64, Status> {
        self.post_message(pb::PostMessageRequest {
            attachments: vec![],
            command_id: command_id(),
            thread_id: thread.into(),
            body: body.into(),
            mention_ids: mentioned.iter().map(|c| c.person_id.to_string()).collect(),
        })
        .await
        .map(position)
    }

    async fn assign(&mut self, thread: &str, assignee: &Caller) -> Result<u64, Status> {
        self.assign_thread(pb::AssignThreadRequest {
            command_id: command_id(),
            thread_id: thread.into(),
            assignee_id: assignee.person_id.to_string(),
            if_assignee_id: None,
        })
        .await
        .map(position)
    }

    async fn add_professional(&mut self, thread: &str, who: &Caller) -> Result<u64, Status> {
        let who = pb::recipient::Recipient::ProfessionalId(who.person_id.to_string());
        self.add_recipient(thread, who, false).await
    }

    async fn add_recipient(
        &mut self,
        thread: &str,
        who: pb::recipient::Recipient,
        staff_side: bool,
    ) -> Result<u64, Status> {
        self.add_participants(pb::AddParticipantsRequest {
            command_id: command_id(),
            thread_id: thread.into(),
            recipients: vec![pb::Recipient {
                recipient: Some(who),
            }],
            carer_ids: vec![],
            staff_side,
        })
        .await
        .map(position)
    }

    async fn leave(&mut self, thread: &str) -> Result<u64, Status> {
        self.leave_thread(pb::LeaveThreadRequest {
            command_id: command_id(),
            thread_id: thread.into(),
        })
        .await
        .map(position)
    }

    async fn archive(&mut self, thread: &str) -> Result<u64, Status> {
        self.archive_thread(pb::ArchiveThreadRequest {
            command_id: command_id(),
            thread_id: thread.into(),
        })
        .await
        .map(position)
    }

    async fn start_to_team(
        &mut self,
        patient: &Caller,
        team: &str,
        subject: &str,
        body: &str,
    ) -> Result<String, Status> {
        let reply = self
            .start_thread(pb::StartThreadRequest {
                attachments: vec![],
                command_id: command_id(),
                thread_id: String::new(),
                patient_id: patient.person_id.to_string(),
                subject: subject.into(),
                body: body.into(),
                recipients: vec![pb::Recipient {
                    recipient: Some(pb::recipient::Recipient::TeamId(team.into())),
                }],
                carer_ids: vec![],
            })
            .await?;
        Ok(reply.into_inner().aggregate_id)
    }

    async fn issue_code(&mut self, team: &str) -> Result<String, Status> {
        let reply = self
            .issue_join_code(pb::IssueJoinCodeRequest {
                command_id: command_id(),
                team_id: team.into(),
            })
            .await?;
        Ok(reply.into_inner().join_code)
    }
}
