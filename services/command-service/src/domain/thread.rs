//! Threads: one conversation in one patient record, and who is on it.
//!
//! Who may do what:
//! * the patient may always post and read in their record's threads, and
//!   never leaves them;
//! * a carer acts only while the patient's consent is in force;
//! * a professional acts on a thread they are on; a member of a team the
//!   thread is addressed to, or of a team holding a record-access grant in
//!   force, may also add people (including themself) to it;
//! * people with no relation to a thread are told it does not exist.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::SystemTime;

use proto::events::{
    AggregateType, Envelope, JoinReason, MessagePosted, Notice, Participant, ParticipantKind,
    ParticipantLeft, ParticipantsAdded, StaffNotePosted, StaffSideJoined, ThreadArchived,
    ThreadAssigned, ThreadCompleted, ThreadReadUpTo, ThreadReopened, ThreadStarted,
    ThreadUnassigned, envelope::Payload,
};
use service_kit::Role;

use super::values::THREAD_PARTICIPANTS_MAX;
use super::{Actor, Aggregate, Command, Context, Created, DomainError, Needs, PatientRecord};

/// Where a thread stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    #[default]
    Open,
    Completed,
    Archived,
}

/// A person on a thread, now or before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnThread {
    pub kind: ParticipantKind,
    pub active: bool,
    pub via_team: Option<String>,
    /// When they (last) joined.
    pub joined_at: SystemTime,
    /// On the staff side: the patient and carers do not see them, and
    /// they write staff notes, not messages.
    pub staff_side: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Thread {
    pub started: bool,
    pub patient_id: String,
    pub subject: String,
    pub participants: BTreeMap<String, OnThread>,
    pub teams: BTreeSet<String>,
    /// Those of `teams` addressed on the staff side only.
    pub staff_teams: BTreeSet<String>,
    pub assignee: Option<String>,
    pub status: Status,
    /// Message ids in order.
    pub messages: Vec<String>,
    pub message_index: HashMap<String, usize>,
    /// Index of the last message each person has read.
    pub read_up_to: HashMap<String, usize>,
    /// Ids of the notes only staff see.
    pub notes: BTreeSet<String>,
}

impl Thread {
    pub fn is_active(&self, person: &str) -> bool {
        self.participants.get(person).is_some_and(|p| p.active)
    }

    /// Whether `person` takes part in the thread now: on it and, for a
    /// carer, under the patient's consent in force. A carer's
    /// participation ends with the consent they joined under (revoked or
    /// expired); a later consent does not restore it: they are added again.
    pub fn takes_part(
        &self,
        person: &str,
        record: Option<&PatientRecord>,
        now: SystemTime,
    ) -> bool {
        match self.participants.get(person) {
            Some(p) if p.active && p.kind == ParticipantKind::Carer => record
                .and_then(|r| r.consent_since(person, now))
                .is_some_and(|since| p.joined_at >= since),
            Some(p) => p.active,
            None => false,
        }
    }

    pub fn has_left(&self, person: &str) -> bool {
        self.participants.get(person).is_some_and(|p| !p.active)
    }

    /// Whether `person` is on the thread's staff side now.
    pub fn on_staff_side(&self, person: &str) -> bool {
        self.participants
            .get(person)
            .is_some_and(|p| p.active && p.staff_side)
    }

    fn push_message(&mut self, id: &str, author: Option<&str>) {
        let index = self.messages.len();
        self.messages.push(id.to_string());
        self.message_index.insert(id.to_string(), index);
        if let Some(author) = author {
            self.read_up_to.insert(author.to_string(), index);
        }
    }

    /// Whether `person` is on the thread now: on it, with neither their
    /// account closed since they joined nor, if a team brought them, their
    /// removal from that team since (unless another team of theirs that
    /// the thread is addressed to, or that holds a grant in force on its
    /// record, keeps them on it). What it reads of people and teams comes
    /// from `ctx` (a team not loaded has not removed them).
    pub fn on_now(&self, person: &str, ctx: &Context) -> bool {
        let Some(p) = self.participants.get(person) else {
            return false;
        };
        if !p.active || !ctx.holds_from(person, p.joined_at) {
            return false;
        }
        let Some(via) = &p.via_team else {
            return true;
        };
        let removed = ctx
            .teams
            .get(via)
            .is_some_and(|t| t.removed_since(person, p.joined_at));
        !removed || self.kept_by_another_team(person, via, ctx)
    }

    fn kept_by_another_team(&self, person: &str, via: &str, ctx: &Context) -> bool {
        let grants: Vec<&String> = ctx
            .record
            .as_deref()
            .map(|r| r.grant_teams(ctx.now).collect())
            .unwrap_or_default();
        self.teams
            .iter()
            .chain(grants)
            .filter(|t| t.as_str() != via)
            .any(|t| {
                ctx.teams
                    .get(t)
                    .is_some_and(|team| ctx.is_member(team, person))
            })
    }

    fn add(&mut self, participants: &[Participant], at: SystemTime, staff_side: bool) {
        for p in participants {
            self.participants.insert(
                p.person_id.clone(),
                OnThread {
                    kind: p.kind(),
                    active: true,
                    via_team: (!p.via_team_id.is_empty()).then(|| p.via_team_id.clone()),
                    joined_at: at,
                    staff_side,
                },
            );
        }
    }
}

impl Aggregate for Thread {
    const KIND: AggregateType = AggregateType::Thread;

    fn evolve(&mut self, event: &Envelope) {
        let author = event.actor.as_ref().map(|a| a.person_id.as_str());
        let at = super::occurred_at(event);
        match &event.payload {
            Some(Payload::ThreadStarted(e)) => {
                self.started = true;
                self.patient_id = e.patient_id.clone();
                self.subject = e.subject.clone();
                self.add(&e.participants, at, false);
                self.teams.extend(e.team_ids.iter().cloned());
                self.push_message(&e.message_id, author);
            }
            Some(Payload::MessagePosted(e)) => {
                self.push_message(&e.message_id, author);
                if e.reopened {
                    self.status = Status::Open;
                }
            }
            Some(Payload::ParticipantsAdded(e)) => {
                self.add(&e.participants, at, false);
                for team in &e.team_ids {
                    self.staff_teams.remove(team);
                    self.teams.insert(team.clone());
                }
            }
            Some(Payload::StaffSideJoined(e)) => {
                self.add(&e.participants, at, true);
                for team in &e.team_ids {
                    if self.teams.insert(team.clone()) {
                        self.staff_teams.insert(team.clone());
                    }
                }
            }
            Some(Payload::ParticipantLeft(e)) => {
                if let Some(p) = self.participants.get_mut(&e.person_id) {
                    p.active = false;
                }
                if e.unassigned {
                    self.assignee = None;
                }
            }
            Some(Payload::ThreadAssigned(e)) => self.assignee = Some(e.assignee_id.clone()),
            Some(Payload::ThreadUnassigned(_)) => self.assignee = None,
            Some(Payload::ThreadCompleted(_)) => self.status = Status::Completed,
            Some(Payload::ThreadArchived(_)) => self.status = Status::Archived,
            Some(Payload::ThreadReopened(_)) => self.status = Status::Open,
            Some(Payload::StaffNotePosted(e)) => {
                self.notes.insert(e.note_id.clone());
            }
            Some(Payload::ThreadReadUpTo(e)) => {
                if let Some(&index) = self.message_index.get(&e.message_id) {
                    self.read_up_to.insert(e.reader_id.clone(), index);
                }
            }
            _ => {}
        }
    }
}

/// Someone a thread is addressed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    Team(String),
    Professional(String),
}

fn team_ids(recipients: &[Recipient]) -> impl Iterator<Item = String> + '_ {
    recipients.iter().filter_map(|r| match r {
        Recipient::Team(t) => Some(t.clone()),
        Recipient::Professional(_) => None,
    })
}

fn professional_ids(recipients: &[Recipient]) -> impl Iterator<Item = String> + '_ {
    recipients.iter().filter_map(|r| match r {
        Recipient::Professional(p) => Some(p.clone()),
        Recipient::Team(_) => None,
    })
}

fn participant(
    person_id: &str,
    kind: ParticipantKind,
    reason: JoinReason,
    via: Option<&str>,
) -> Participant {
    Participant {
        deputy_for: String::new(),
        person_id: person_id.to_string(),
        kind: kind as i32,
        reason: reason as i32,
        via_team_id: via.unwrap_or_default().to_string(),
    }
}

/// Collects participants without duplicates; the first reason wins.
#[derive(Default)]
struct Roster {
    people: Vec<Participant>,
    teams: Vec<String>,
}

impl Roster {
    fn contains(&self, person: &str) -> bool {
        self.people.iter().any(|p| p.person_id == person)
    }
    fn push(&mut self, p: Participant) {
        if !self.contains(&p.person_id) {
            self.people.push(p);
        }
    }
}

/// Turns recipients into participants, by the rules of automatic CC and
/// default messaging contacts (docs/rules.md):
/// * a team with automatic CC brings every contactable member, and those
///   members cannot be addressed one by one (a member who is not
///   contactable is not part of the team entry: staff may still add them
///   individually, which is how clinicians get escalations without being
///   contactable by patients);
/// * a team without automatic CC is reached through its default messaging
///   contact;
/// * patients and carers address only the patient's care teams, and only
///   contactable professionals of those teams;
/// * on an existing thread, people already on it are skipped, and a member
///   who left is not brought back by their team: someone on the thread
///   adds them back by name (the automatic-CC rule does not stand in the
///   way of bringing someone back to a thread they were on);
/// * to the staff side (`to_staff_side`), staff name any professional, the
///   members of an automatic-CC team too (escalation: a clinician
///   consulted without being addressed by the patient); on the
///   patient side, someone on the staff side is not yet on it, and is moved.
fn expand(
    recipients: &[Recipient],
    ctx: &Context,
    record: &PatientRecord,
    patient_side: bool,
    thread: Option<&Thread>,
    to_staff_side: bool,
    roster: &mut Roster,
) -> Result<(), DomainError> {
    // On the thread, on the side the recipients go to (the staff side sees
    // everything, so anyone on the thread is on it).
    let on_side = |t: &Thread, p: &str| to_staff_side || !t.on_staff_side(p);
    let on_thread = |p: &str| thread.is_some_and(|t| t.is_active(p) && on_side(t, p));
    let left = |p: &str| thread.is_some_and(|t| t.has_left(p));
    for recipient in recipients {
        match recipient {
            Recipient::Team(team_id) => {
                let team = ctx.team(team_id)?;
                if patient_side
                    && !record.teams.contains_key(team_id)
                    && !team.open_to_patients
                    && !record.grant_in_force_for(team_id, ctx.now)
                {
                    return Err(DomainError::denied(format!(
                        "patients and carers message the patient's own teams, teams open to every patient (such as PALS) and teams the patient has given access to their record; {} is none of them",
                        team.name
                    )));
                }
                if team.auto_cc {
                    let mut any = false;
                    let members = team
                        .contactable_members()
                        .filter(|m| ctx.is_member(team, m));
                    for member in members {
                        any = true;
                        if !on_thread(member) && !left(member) {
                            roster.push(participant(
                                member,
                                ParticipantKind::Professional,
                                JoinReason::TeamAutoCc,
                                Some(team_id),
                            ));
                        }
                    }
                    if !any {
                        return Err(DomainError::precondition(format!(
                            "team {} has automatic CC but no member contactable by messages",
                            team.name
                        )));
                    }
                } else if let Some(contact) = ctx.default_contact(team) {
                    if !on_thread(contact) && !left(contact) {
                        roster.push(participant(
                            contact,
                            ParticipantKind::Professional,
                            JoinReason::TeamDefaultContact,
                            Some(team_id),
                        ));
                    }
                    // The team's main contact away: their deputy too.
                    if patient_side
                        && let Some(stand_in) = stand_in(ctx, record, contact)
                        && !on_thread(&stand_in)
                    {
                        roster.push(Participant {
                            deputy_for: contact.to_string(),
                            ..participant(
                                &stand_in,
                                ParticipantKind::Professional,
                                JoinReason::Deputy,
                                Some(team_id),
                            )
                        });
                    }
                } else {
                    return Err(DomainError::precondition(format!(
                        "team {} cannot receive messages: it has neither automatic CC nor a default messaging contact",
                        team.name
                    )));
                }
                let addressed = |t: &Thread| {
                    t.teams.contains(team_id) && (to_staff_side || !t.staff_teams.contains(team_id))
                };
                if !roster.teams.contains(team_id) && !thread.is_some_and(addressed) {
                    roster.teams.push(team_id.clone());
                }
            }
            Recipient::Professional(person) => {
                let name = &ctx.professional(person)?.name;
                // Someone who was on this thread (left, removed from the team
                // that brought them, or whose account was closed since) is
                // brought back to it by name, whatever team reaches them.
                let returning = thread
                    .is_some_and(|t| t.participants.contains_key(person) && !t.on_now(person, ctx));
                // Every team in scope: the record's, the thread's, those named,
                // and every team the professional is in (`Needs::teams_of`).
                let mut scope: Vec<_> = ctx.teams.iter().filter(|(_, t)| t.exists).collect();
                scope.sort_by(|a, b| a.1.name.cmp(&b.1.name));
                if let Some((team_id, team)) = scope
                    .iter()
                    .filter(|_| !returning && !to_staff_side)
                    .find(|(_, t)| t.auto_cc && contactable_in(ctx, t, person))
                {
                    // A rule of the team, not a malformed request.
                    return Err(DomainError::precondition(format!(
                        "{name} ({person}) is reached through team {team_name}, which has automatic CC: address team {team_name} ({team_id}) instead, and everyone contactable in it is copied in",
                        team_name = team.name,
                    )));
                }
                if patient_side
                    && !record.teams.keys().any(|t| {
                        ctx.teams
                            .get(t)
                            .is_some_and(|team| contactable_in(ctx, team, person))
                    })
                {
                    return Err(DomainError::denied(format!(
                        "patients and carers message only professionals contactable by messages in the patient's teams; {person} is not one"
                    )));
                }
                if !thread.is_some_and(|t| t.on_now(person, ctx) && on_side(t, person)) {
                    roster.push(participant(
                        person,
                        ParticipantKind::Professional,
                        JoinReason::Recipient,
                        None,
                    ));
                }
                if patient_side
                    && let Some(stand_in) = stand_in(ctx, record, person)
                    && !thread.is_some_and(|t| t.on_now(&stand_in, ctx) && on_side(t, &stand_in))
                {
                    roster.push(Participant {
                        deputy_for: person.clone(),
                        ..participant(
                            &stand_in,
                            ParticipantKind::Professional,
                            JoinReason::Deputy,
                            None,
                        )
                    });
                }
            }
        }
    }
    Ok(())
}

/// Who stands in for `person` if they are away now: their deputy (a
/// professional whose account is open and who is not away), or else the
/// default contact of a team of the record that reaches them (by name).
fn stand_in(ctx: &Context, record: &PatientRecord, person: &str) -> Option<String> {
    let away = ctx.people.get(person)?.away_at(ctx.now)?;
    let here = |p: &str| {
        p != person
            && ctx
                .people
                .get(p)
                .is_none_or(|p| !p.deactivated && p.away_at(ctx.now).is_none())
    };
    let deputy = away.deputy.as_deref().filter(|d| {
        ctx.people
            .get(*d)
            .is_some_and(|p| p.is_professional() && here(d))
    });
    if let Some(deputy) = deputy {
        return Some(deputy.to_string());
    }
    let mut teams: Vec<&super::Team> = record
        .teams
        .keys()
        .filter_map(|t| ctx.teams.get(t).map(|t| t.as_ref()))
        .filter(|team| contactable_in(ctx, team, person))
        .collect();
    teams.sort_by(|a, b| a.name.cmp(&b.name));
    teams
        .into_iter()
        .find_map(|team| ctx.default_contact(team).filter(|c| here(c)))
        .map(str::to_string)
}

/// Whether `person` is a member of `team` now, contactable by messages.
fn contactable_in(ctx: &Context, team: &super::Team, person: &str) -> bool {
    ctx.member(team, person).is_some_and(|m| m.contactable)
}

fn add_carers(
    carers: &[String],
    ctx: &Context,
    record: &PatientRecord,
    thread: Option<&Thread>,
    roster: &mut Roster,
) -> Result<(), DomainError> {
    for carer in carers {
        ctx.carer(carer)?;
        if !record.consent_in_force(carer, ctx.now) {
            return Err(DomainError::denied(format!(
                "carer {carer} does not hold the patient's consent, so cannot be copied in"
            )));
        }
        if !thread.is_some_and(|t| t.takes_part(carer, Some(record), ctx.now)) {
            roster.push(participant(
                carer,
                ParticipantKind::Carer,
                JoinReason::Cc,
                None,
            ));
        }
    }
    Ok(())
}

fn check_size(thread: Option<&Thread>, adding: usize) -> Result<(), DomainError> {
    let current = thread.map_or(0, |t| t.participants.values().filter(|p| p.active).count());
    if current + adding > THREAD_PARTICIPANTS_MAX {
        return Err(DomainError::precondition(format!(
            "a thread may have at most {THREAD_PARTICIPANTS_MAX} participants; this would make {}",
            current + adding
        )));
    }
    Ok(())
}

/// Patient or carer acting in their own capacity on this record.
/// Whether a message by `actor` brings a thread back to the active inbox:
/// any message on an archived thread (its author expects an answer, and
/// the patient is emailed about it), and the patient's or a carer's on a
/// completed one. Staff may still write a closing word on a completed
/// thread without reopening it.
fn reopens(status: Status, actor: &Actor) -> bool {
    match status {
        Status::Open => false,
        Status::Archived => true,
        Status::Completed => patient_side(actor),
    }
}

fn patient_side(actor: &Actor) -> bool {
    matches!(actor.role, Role::Patient | Role::Carer)
}

/// Staff who may work on the thread without being on it: members of a team
/// it is addressed to, or of a team holding a record-access grant in force.
fn staff_with_access(thread: &Thread, ctx: &Context) -> bool {
    if ctx.actor.role != Role::Professional {
        return false;
    }
    if thread.on_now(&ctx.actor.person_id, ctx) || ctx.actor_in_any(thread.teams.iter()) {
        return true;
    }
    ctx.record
        .as_deref()
        .is_some_and(|r| ctx.actor_in_any(r.grant_teams(ctx.now)))
}

/// Refuses anyone with no relation to the thread as if it did not exist.
fn visible(thread: &Thread, id: &str, ctx: &Context) -> Result<(), DomainError> {
    let actor = &ctx.actor;
    let knows = thread.started
        && (thread.participants.contains_key(&actor.person_id)
            || (actor.role == Role::Patient && actor.person_id == thread.patient_id)
            || staff_with_access(thread, ctx));
    if knows {
        Ok(())
    } else {
        Err(DomainError::not_found(format!(
            "thread {id} does not exist"
        )))
    }
}

/// The actor must be on the thread now; a carer also needs consent in force.
fn require_participant(thread: &Thread, id: &str, ctx: &Context) -> Result<(), DomainError> {
    visible(thread, id, ctx)?;
    let me = &ctx.actor.person_id;
    let is_owner = ctx.actor.role == Role::Patient && *me == thread.patient_id;
    if !is_owner && !thread.on_now(me, ctx) {
        return Err(DomainError::denied(if thread.has_left(me) {
            "you left this thread; a participant can add you back".to_string()
        } else if thread.participants.contains_key(me) {
            "you are no longer on this thread: you left the team that brought you to it, or your account was closed since; a participant can add you back".to_string()
        } else {
            "only people on the thread can do this; add yourself to it first".to_string()
        }));
    }
    // Who they are on the thread, not what the token says: a carer on it
    // acts as a carer whatever role a token claims.
    let recorded_carer = thread
        .participants
        .get(me)
        .is_some_and(|p| p.kind == ParticipantKind::Carer);
    if recorded_carer && ctx.actor.role != Role::Carer {
        return Err(DomainError::denied(format!(
            "you are on this thread as a carer, not as a {}",
            ctx.actor.role
        )));
    }
    if ctx.actor.role == Role::Carer {
        let record = ctx.record(&thread.patient_id)?;
        if !record.consent_in_force(me, ctx.now) {
            return Err(DomainError::denied(
                "the patient's consent for you is no longer in force",
            ));
        }
        if !thread.takes_part(me, Some(record), ctx.now) {
            return Err(DomainError::denied(
                "your part in this thread ended with the consent you joined under; someone on the thread can add you again",
            ));
        }
    }
    Ok(())
}

fn require_professional_participant(
    thread: &Thread,
    id: &str,
    ctx: &Context,
) -> Result<(), DomainError> {
    require_participant(thread, id, ctx)?;
    if ctx.actor.role != Role::Professional {
        return Err(DomainError::denied(
            "only professionals on the thread can do this",
        ));
    }
    Ok(())
}

/// A carer needs the record (consent); a professional not on the thread
/// needs the thread's teams and the record's grants (access), and so does
/// one a team brought (whether that team, or another, still keeps them
/// on it).
fn participant_needs(thread: &Thread, actor: &Actor) -> Needs {
    match actor.role {
        Role::Carer => Needs {
            record: Some(thread.patient_id.clone()),
            ..Needs::default()
        },
        Role::Professional if thread.started => {
            let via = thread
                .participants
                .get(&actor.person_id)
                .filter(|p| p.active)
                .map(|p| p.via_team.clone());
            match via {
                Some(None) => Needs::default(),
                // First only the team: whether it still brings them.
                Some(Some(team)) => Needs {
                    teams: vec![team],
                    ..Needs::default()
                },
                None => access_needs(thread, None),
            }
        }
        _ => Needs::default(),
    }
}

/// A professional a team brought, and removed from it since: whether
/// another team keeps them on the thread reads the thread's teams and the
/// record's grants.
fn participant_more_needs(thread: &Thread, ctx: &Context) -> Needs {
    let me = &ctx.actor.person_id;
    let Some(p) = thread.participants.get(me).filter(|p| p.active) else {
        return Needs::default();
    };
    let Some(via) = &p.via_team else {
        return Needs::default();
    };
    let removed = ctx
        .teams
        .get(via)
        .is_some_and(|t| t.removed_since(me, p.joined_at));
    if removed && ctx.actor.role == Role::Professional {
        access_needs(thread, None)
    } else {
        Needs::default()
    }
}

/// The record (its grants), its teams, the thread's teams, and `via`.
fn access_needs(thread: &Thread, via: Option<String>) -> Needs {
    Needs {
        record: Some(thread.patient_id.clone()),
        record_teams: true,
        teams: thread.teams.iter().cloned().chain(via).collect(),
        ..Needs::default()
    }
}

fn carer_behalf(thread_patient: &str, actor: &Actor) -> Option<String> {
    (actor.role == Role::Carer).then(|| thread_patient.to_string())
}

/// Start a thread in a patient record with its first message.
#[derive(Clone, Debug)]
pub struct StartThread {
    pub thread_id: String,
    pub patient_id: String,
    pub subject: String,
    pub body: String,
    pub message_id: String,
    pub recipients: Vec<Recipient>,
    pub carer_ids: Vec<String>,
    /// Files sent with the first message (stored and checked already).
    pub attachments: Vec<proto::events::Attachment>,
}

impl Command for StartThread {
    type Target = Thread;
    fn target_id(&self) -> &str {
        &self.thread_id
    }
    fn ration(&self) -> super::Ration {
        super::Ration::Posts
    }
    fn needs(&self, _: &Thread, _: &Actor) -> Needs {
        Needs {
            record: Some(self.patient_id.clone()),
            record_teams: true,
            teams: team_ids(&self.recipients).collect(),
            people: professional_ids(&self.recipients)
                .chain(self.carer_ids.iter().cloned())
                .collect(),
            // A member of any automatic-CC team is addressed through it.
            teams_of: professional_ids(&self.recipients).collect(),
            members: true,
        }
    }
    /// The deputies of those named who are away, and of the main contacts
    /// of the teams named.
    fn more_needs(&self, _: &Thread, ctx: &Context) -> Needs {
        let contacts =
            team_ids(&self.recipients).filter_map(|t| ctx.teams.get(&t)?.default_contact.clone());
        Needs {
            people: professional_ids(&self.recipients)
                .chain(contacts)
                .filter_map(|p| ctx.people.get(&p)?.away_at(ctx.now)?.deputy.clone())
                .filter(|d| !ctx.people.contains_key(d))
                .collect(),
            ..Needs::default()
        }
    }
    fn decide(&self, thread: &Thread, ctx: &Context) -> Result<Payload, DomainError> {
        if thread.started {
            // Only someone on it learns that the thread exists.
            if thread.participants.contains_key(&ctx.actor.person_id) {
                return Err(DomainError::precondition(format!(
                    "thread {} already exists",
                    self.thread_id
                )));
            }
            return Err(DomainError::invalid(
                "thread_id",
                "cannot be used: choose a new id (a UUIDv7)",
            ));
        }
        let record = ctx.record(&self.patient_id)?;
        let actor = &ctx.actor;
        let author_kind = match actor.role {
            Role::Patient if actor.person_id == self.patient_id => ParticipantKind::Patient,
            Role::Patient => {
                return Err(DomainError::denied(
                    "a patient starts threads only in their own record",
                ));
            }
            Role::Carer if record.consent_in_force(&actor.person_id, ctx.now) => {
                ParticipantKind::Carer
            }
            Role::Carer => {
                return Err(DomainError::denied(
                    "a carer starts threads only while the patient's consent is in force",
                ));
            }
            Role::Professional
                if ctx.actor_in_any(record.teams.keys())
                    || ctx.actor_in_any(record.grant_teams(ctx.now)) =>
            {
                ParticipantKind::Professional
            }
            Role::Professional => {
                return Err(DomainError::denied(
                    "only professionals of the patient's care teams, or of a team the patient granted access to, start threads in this record",
                ));
            }
            other => {
                return Err(DomainError::denied(format!(
                    "threads are started by patients, their carers and their professionals, not by the {other} role"
                )));
            }
        };
        if patient_side(actor) && self.recipients.is_empty() {
            return Err(DomainError::invalid(
                "recipients",
                "name at least one team or professional",
            ));
        }

        let mut roster = Roster::default();
        roster.push(participant(
            &actor.person_id,
            author_kind,
            JoinReason::Author,
            None,
        ));
        roster.push(participant(
            &self.patient_id,
            ParticipantKind::Patient,
            JoinReason::RecordOwner,
            None,
        ));
        expand(
            &self.recipients,
            ctx,
            record,
            patient_side(actor),
            None,
            false,
            &mut roster,
        )?;
        add_carers(&self.carer_ids, ctx, record, None, &mut roster)?;
        check_size(None, roster.people.len())?;
        Ok(Payload::ThreadStarted(ThreadStarted {
            notice: None,
            thread_id: self.thread_id.clone(),
            patient_id: self.patient_id.clone(),
            subject: self.subject.clone(),
            message_id: self.message_id.clone(),
            body: self.body.clone(),
            participants: roster.people,
            team_ids: roster.teams,
            attachments: self.attachments.clone(),
        }))
    }
    fn on_behalf_of(&self, _: &Thread, actor: &Actor) -> Option<String> {
        carer_behalf(&self.patient_id, actor)
    }
    fn created(&self) -> Created {
        Created::message(&self.message_id)
    }
}

/// Post a message. A message from the patient or a carer brings a completed
/// or archived thread back to the active inbox, in the same event.
#[derive(Clone, Debug)]
pub struct PostMessage {
    pub thread_id: String,
    pub message_id: String,
    pub body: String,
    /// Professionals on the thread drawn to the message (by a professional).
    pub mention_ids: Vec<String>,
    /// Files sent with it (stored and checked already).
    pub attachments: Vec<proto::events::Attachment>,
}

impl Command for PostMessage {
    type Target = Thread;
    fn target_id(&self) -> &str {
        &self.thread_id
    }
    fn ration(&self) -> super::Ration {
        super::Ration::Posts
    }
    fn needs(&self, thread: &Thread, actor: &Actor) -> Needs {
        participant_needs(thread, actor)
    }
    fn more_needs(&self, thread: &Thread, ctx: &Context) -> Needs {
        participant_more_needs(thread, ctx)
    }
    fn decide(&self, thread: &Thread, ctx: &Context) -> Result<Payload, DomainError> {
        require_participant(thread, &self.thread_id, ctx)?;
        if thread.on_staff_side(&ctx.actor.person_id) {
            return Err(DomainError::precondition_because(
                service_kit::reason::STAFF_SIDE,
                "you are on the staff side of this thread, which the patient and carers do not see: write a staff note, or add yourself to the patient side to message them",
            ));
        }
        if thread.message_index.contains_key(&self.message_id) {
            return Err(DomainError::precondition(format!(
                "message {} is already on the thread",
                self.message_id
            )));
        }
        check_mentions(thread, &self.mention_ids, ctx)?;
        Ok(Payload::MessagePosted(MessagePosted {
            notice: None,
            message_id: self.message_id.clone(),
            body: self.body.clone(),
            reopened: reopens(thread.status, &ctx.actor),
            mention_ids: self.mention_ids.clone(),
            attachments: self.attachments.clone(),
        }))
    }
    fn on_behalf_of(&self, thread: &Thread, actor: &Actor) -> Option<String> {
        carer_behalf(&thread.patient_id, actor)
    }
    fn created(&self) -> Created {
        Created::message(&self.message_id)
    }
}

/// A notice from one of the hospital's systems to a patient, on behalf of
/// one of the system's teams: a new thread addressed to the team (its id
/// derived from the system's reference), or a message on a thread of the
/// patient's addressed to it. The system is no participant: the patient,
/// and the team as a message to it would reach, are.
#[derive(Clone, Debug)]
pub struct PostNotice {
    pub thread_id: String,
    /// Starts the thread, with this subject; `None`: posts on it.
    pub new_subject: Option<String>,
    pub patient_id: String,
    pub team_id: String,
    pub message_id: String,
    pub body: String,
    pub reference: String,
}

impl Command for PostNotice {
    type Target = Thread;
    fn target_id(&self) -> &str {
        &self.thread_id
    }
    fn ration(&self) -> super::Ration {
        super::Ration::Posts
    }
    fn needs(&self, _: &Thread, actor: &Actor) -> Needs {
        Needs {
            record: Some(self.patient_id.clone()),
            teams: vec![self.team_id.clone()],
            people: vec![actor.person_id.clone()],
            members: true,
            ..Needs::default()
        }
    }
    fn decide(&self, thread: &Thread, ctx: &Context) -> Result<Payload, DomainError> {
        let actor = &ctx.actor;
        let system = ctx
            .people
            .get(&actor.person_id)
            .filter(|p| actor.role == Role::Service && p.is_system() && !p.deactivated)
            .ok_or_else(|| {
                DomainError::denied("only the hospital's registered systems post notices")
            })?;
        if !system.system_teams.contains(&self.team_id) {
            return Err(DomainError::denied(format!(
                "{} posts notices only for the teams an admin registered it for; team {} is not one of them",
                system.name, self.team_id
            )));
        }
        let team = ctx.team(&self.team_id)?;
        let record = ctx.record(&self.patient_id)?;
        if !record.teams.contains_key(&self.team_id) {
            return Err(DomainError::precondition(format!(
                "the patient is not under the care of {}: a team's notices go to its own patients",
                team.name
            )));
        }
        let notice = Some(Notice {
            system_id: actor.person_id.clone(),
            system_name: system.name.clone(),
            team_id: self.team_id.clone(),
            team_name: team.name.clone(),
            reference: self.reference.clone(),
        });
        let Some(subject) = &self.new_subject else {
            if !thread.started || thread.patient_id != self.patient_id {
                return Err(DomainError::not_found(format!(
                    "thread {} is not in this patient's record",
                    self.thread_id
                )));
            }
            if !thread.teams.contains(&self.team_id) || thread.staff_teams.contains(&self.team_id) {
                return Err(DomainError::precondition(format!(
                    "thread {} is not addressed to {}: post the notice in a new thread",
                    self.thread_id, team.name
                )));
            }
            return Ok(Payload::MessagePosted(MessagePosted {
                message_id: self.message_id.clone(),
                body: self.body.clone(),
                reopened: reopens(thread.status, actor),
                notice,
                ..MessagePosted::default()
            }));
        };
        if thread.started {
            return Err(DomainError::precondition(format!(
                "thread {} already exists",
                self.thread_id
            )));
        }
        let mut roster = Roster::default();
        roster.push(participant(
            &self.patient_id,
            ParticipantKind::Patient,
            JoinReason::RecordOwner,
            None,
        ));
        let to_team = [Recipient::Team(self.team_id.clone())];
        expand(&to_team, ctx, record, false, None, false, &mut roster)?;
        check_size(None, roster.people.len())?;
        Ok(Payload::ThreadStarted(ThreadStarted {
            thread_id: self.thread_id.clone(),
            patient_id: self.patient_id.clone(),
            subject: subject.clone(),
            message_id: self.message_id.clone(),
            body: self.body.clone(),
            participants: roster.people,
            team_ids: roster.teams,
            attachments: vec![],
            notice,
        }))
    }
    fn created(&self) -> Created {
        Created::message(&self.message_id)
    }
}

/// Mentions are a professional's, of professionals on the thread other than
/// themself, each once.
fn check_mentions(thread: &Thread, mentions: &[String], ctx: &Context) -> Result<(), DomainError> {
    if mentions.is_empty() {
        return Ok(());
    }
    if ctx.actor.role != Role::Professional {
        return Err(DomainError::invalid(
            "mention_ids",
            "only professionals mention colleagues",
        ));
    }
    let mut seen = BTreeSet::new();
    for person in mentions {
        let professional_on_it = thread
            .participants
            .get(person)
            .is_some_and(|p| p.active && p.kind == ParticipantKind::Professional);
        if !professional_on_it || *person == ctx.actor.person_id || !seen.insert(person) {
            return Err(DomainError::invalid(
                "mention_ids",
                format!(
                    "{person} is not a colleague on this thread (or is named twice): mention professionals on it, other than yourself, once each"
                ),
            ));
        }
    }
    Ok(())
}

/// Write a note only staff see (clinicians support the front-line staff,
/// not the patient directly): a professional on the thread, or of a
/// team it is addressed to or holding a grant in force. It reopens nothing.
#[derive(Clone, Debug)]
pub struct PostStaffNote {
    pub thread_id: String,
    pub note_id: String,
    pub body: String,
}

impl Command for PostStaffNote {
    type Target = Thread;
    fn target_id(&self) -> &str {
        &self.thread_id
    }
    fn ration(&self) -> super::Ration {
        super::Ration::Posts
    }
    fn needs(&self, thread: &Thread, actor: &Actor) -> Needs {
        participant_needs(thread, actor)
    }
    fn more_needs(&self, thread: &Thread, ctx: &Context) -> Needs {
        participant_more_needs(thread, ctx)
    }
    fn decide(&self, thread: &Thread, ctx: &Context) -> Result<Payload, DomainError> {
        visible(thread, &self.thread_id, ctx)?;
        if ctx.actor.role != Role::Professional {
            return Err(DomainError::denied(
                "staff notes are written by professionals; patients and carers never see them",
            ));
        }
        if !staff_with_access(thread, ctx) {
            return Err(DomainError::denied(
                "staff notes are written by professionals on the thread, of a team it is addressed to, or of a team holding a record-access grant",
            ));
        }
        if thread.message_index.contains_key(&self.note_id) || thread.notes.contains(&self.note_id)
        {
            return Err(DomainError::precondition(format!(
                "message {} is already on the thread",
                self.note_id
            )));
        }
        Ok(Payload::StaffNotePosted(StaffNotePosted {
            note_id: self.note_id.clone(),
            body: self.body.clone(),
        }))
    }
    fn created(&self) -> Created {
        Created::message(&self.note_id)
    }
}

/// Add specialists, second-line teams (expanded like any team) or carers.
#[derive(Clone, Debug)]
pub struct AddParticipants {
    pub thread_id: String,
    pub recipients: Vec<Recipient>,
    pub carer_ids: Vec<String>,
    /// To the staff side (`StaffSideJoined`): professionals and teams only.
    pub staff_side: bool,
}

impl Command for AddParticipants {
    type Target = Thread;
    fn target_id(&self) -> &str {
        &self.thread_id
    }
    fn needs(&self, thread: &Thread, _: &Actor) -> Needs {
        Needs {
            record: Some(thread.patient_id.clone()),
            record_teams: true,
            teams: thread
                .teams
                .iter()
                .cloned()
                .chain(team_ids(&self.recipients))
                .collect(),
            people: professional_ids(&self.recipients)
                .chain(self.carer_ids.iter().cloned())
                .collect(),
            // A member of any automatic-CC team is addressed through it.
            teams_of: professional_ids(&self.recipients).collect(),
            members: true,
        }
    }
    fn decide(&self, thread: &Thread, ctx: &Context) -> Result<Payload, DomainError> {
        visible(thread, &self.thread_id, ctx)?;
        let record = ctx.record(&thread.patient_id)?;
        let actor = &ctx.actor;
        let is_owner = actor.role == Role::Patient && actor.person_id == thread.patient_id;
        if self.staff_side && !self.carer_ids.is_empty() {
            return Err(DomainError::invalid(
                "carer_ids",
                "carers are never on the staff side; copy them in on the patient side",
            ));
        }
        if is_owner {
            if !self.recipients.is_empty() {
                return Err(DomainError::denied(
                    "a patient adds carers to a thread; staff add professionals and teams",
                ));
            }
        } else if !staff_with_access(thread, ctx) {
            return Err(DomainError::denied(
                "participants are added by professionals on the thread, by members of a team it is addressed to, or of a team holding a record-access grant",
            ));
        }
        if thread.status == Status::Archived {
            return Err(DomainError::precondition(
                "the thread is archived; reopen it before adding people",
            ));
        }
        let mut roster = Roster::default();
        expand(
            &self.recipients,
            ctx,
            record,
            false,
            Some(thread),
            self.staff_side,
            &mut roster,
        )?;
        add_carers(&self.carer_ids, ctx, record, Some(thread), &mut roster)?;
        if roster.people.is_empty() && roster.teams.is_empty() {
            return Err(DomainError::precondition(
                "everyone named is already on the thread",
            ));
        }
        // Someone moving from the staff side is on the thread already.
        let new = roster
            .people
            .iter()
            .filter(|p| !thread.is_active(&p.person_id))
            .count();
        check_size(Some(thread), new)?;
        for p in &mut roster.people {
            if p.reason() == JoinReason::Recipient {
                p.reason = JoinReason::Added as i32;
            }
        }
        if self.staff_side {
            return Ok(Payload::StaffSideJoined(StaffSideJoined {
                participants: roster.people,
                team_ids: roster.teams,
            }));
        }
        let moved_person_ids = roster
            .people
            .iter()
            .filter(|p| thread.on_staff_side(&p.person_id))
            .map(|p| p.person_id.clone())
            .collect();
        let moved_team_ids = roster
            .teams
            .iter()
            .filter(|t| thread.staff_teams.contains(*t))
            .cloned()
            .collect();
        Ok(Payload::ParticipantsAdded(ParticipantsAdded {
            participants: roster.people,
            team_ids: roster.teams,
            moved_person_ids,
            moved_team_ids,
        }))
    }
}

/// Leave a thread: only the caller is removed.
#[derive(Clone, Debug)]
pub struct LeaveThread {
    pub thread_id: String,
}

impl Command for LeaveThread {
    type Target = Thread;
    fn target_id(&self) -> &str {
        &self.thread_id
    }
    fn needs(&self, thread: &Thread, actor: &Actor) -> Needs {
        participant_needs(thread, actor)
    }
    fn more_needs(&self, thread: &Thread, ctx: &Context) -> Needs {
        participant_more_needs(thread, ctx)
    }
    fn decide(&self, thread: &Thread, ctx: &Context) -> Result<Payload, DomainError> {
        visible(thread, &self.thread_id, ctx)?;
        let me = &ctx.actor.person_id;
        if ctx.actor.role == Role::Patient && *me == thread.patient_id {
            return Err(DomainError::precondition(
                "the patient cannot leave a thread in their own record",
            ));
        }
        let record = ctx.record.as_deref();
        let on = thread.on_now(me, ctx)
            && (ctx.actor.role != Role::Carer || thread.takes_part(me, record, ctx.now));
        if !on {
            return Err(DomainError::precondition("you are not on this thread"));
        }
        Ok(Payload::ParticipantLeft(ParticipantLeft {
            person_id: me.clone(),
            unassigned: thread.assignee.as_deref() == Some(me.as_str()),
        }))
    }
    fn on_behalf_of(&self, thread: &Thread, actor: &Actor) -> Option<String> {
        carer_behalf(&thread.patient_id, actor)
    }
}

fn require_not_archived(thread: &Thread) -> Result<(), DomainError> {
    if thread.status == Status::Archived {
        Err(DomainError::precondition(
            "the thread is archived; reopen it first",
        ))
    } else {
        Ok(())
    }
}

fn is_lead_of_thread_team(thread: &Thread, ctx: &Context) -> bool {
    thread.teams.iter().any(|t| {
        ctx.teams
            .get(t)
            .and_then(|team| ctx.member(team, &ctx.actor.person_id))
            .is_some_and(|m| m.lead)
    })
}

/// Assign the thread: to yourself, or (as a lead of a team the thread is
/// addressed to) to a colleague on the thread.
#[derive(Clone, Debug)]
pub struct AssignThread {
    pub thread_id: String,
    pub assignee_id: String,
    /// Only if the thread's assignee is still this one (`Some("")`:
    /// still unassigned), as the caller's page showed it: else refused as
    /// stale, so nobody takes a thread over without knowing.
    pub if_assignee: Option<String>,
}

impl Command for AssignThread {
    type Target = Thread;
    fn target_id(&self) -> &str {
        &self.thread_id
    }
    fn needs(&self, thread: &Thread, _: &Actor) -> Needs {
        // Whether the assignee (and the actor) is on the thread now.
        let via = thread
            .participants
            .get(&self.assignee_id)
            .and_then(|p| p.via_team.clone());
        Needs {
            people: vec![self.assignee_id.clone()],
            ..access_needs(thread, via)
        }
    }
    fn decide(&self, thread: &Thread, ctx: &Context) -> Result<Payload, DomainError> {
        visible(thread, &self.thread_id, ctx)?;
        if ctx.actor.role != Role::Professional {
            return Err(DomainError::denied("only professionals assign threads"));
        }
        let me = &ctx.actor.person_id;
        if self.assignee_id == *me {
            require_professional_participant(thread, &self.thread_id, ctx)?;
        } else if !is_lead_of_thread_team(thread, ctx) {
            return Err(DomainError::denied(
                "only a lead of a team the thread is addressed to assigns it to a colleague; others assign it to themselves",
            ));
        }
        require_not_archived(thread)?;
        match thread.participants.get(&self.assignee_id) {
            Some(p)
                if p.kind == ParticipantKind::Professional
                    && thread.on_now(&self.assignee_id, ctx) => {}
            _ => {
                return Err(DomainError::precondition(format!(
                    "{} is not a professional on the thread; add them first",
                    self.assignee_id
                )));
            }
        }
        if thread.on_staff_side(&self.assignee_id) {
            return Err(DomainError::precondition(format!(
                "{} is on the staff side, which the patient does not see; add them to the patient side before assigning the thread to them",
                self.assignee_id
            )));
        }
        if let Some(expected) = &self.if_assignee {
            let now = thread.assignee.as_deref().unwrap_or_default();
            if now != expected {
                return Err(DomainError::Stale(if now.is_empty() {
                    "the thread was unassigned since you looked; look again before assigning it"
                        .into()
                } else {
                    format!(
                        "the thread was assigned to {now} since you looked; look again, and assign it again to take it over"
                    )
                }));
            }
        }
        if thread.assignee.as_deref() == Some(self.assignee_id.as_str()) {
            return Err(DomainError::precondition(format!(
                "the thread is already assigned to {}",
                self.assignee_id
            )));
        }
        Ok(Payload::ThreadAssigned(ThreadAssigned {
            assignee_id: self.assignee_id.clone(),
            previous_assignee_id: thread.assignee.clone().unwrap_or_default(),
        }))
    }
}

/// Remove the assignment: the assignee, or a lead of an addressed team.
#[derive(Clone, Debug)]
pub struct UnassignThread {
    pub thread_id: String,
}

impl Command for UnassignThread {
    type Target = Thread;
    fn target_id(&self) -> &str {
        &self.thread_id
    }
    fn needs(&self, thread: &Thread, actor: &Actor) -> Needs {
        Needs {
            teams: thread.teams.iter().cloned().collect(),
            ..participant_needs(thread, actor)
        }
    }
    fn decide(&self, thread: &Thread, ctx: &Context) -> Result<Payload, DomainError> {
        visible(thread, &self.thread_id, ctx)?;
        let Some(assignee) = &thread.assignee else {
            return Err(DomainError::precondition("the thread is not assigned"));
        };
        if *assignee != ctx.actor.person_id && !is_lead_of_thread_team(thread, ctx) {
            return Err(DomainError::denied(
                "only the assignee or a lead of a team the thread is addressed to unassigns it",
            ));
        }
        Ok(Payload::ThreadUnassigned(ThreadUnassigned {
            previous_assignee_id: assignee.clone(),
        }))
    }
}

/// The three status changes staff make, with their preconditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChange {
    Complete,
    Archive,
    Reopen,
}

/// Mark complete, archive, or reopen (professionals on the thread).
#[derive(Clone, Debug)]
pub struct ChangeStatus {
    pub thread_id: String,
    pub change: StatusChange,
}

impl Command for ChangeStatus {
    type Target = Thread;
    fn target_id(&self) -> &str {
        &self.thread_id
    }
    fn needs(&self, thread: &Thread, actor: &Actor) -> Needs {
        participant_needs(thread, actor)
    }
    fn more_needs(&self, thread: &Thread, ctx: &Context) -> Needs {
        participant_more_needs(thread, ctx)
    }
    fn decide(&self, thread: &Thread, ctx: &Context) -> Result<Payload, DomainError> {
        require_professional_participant(thread, &self.thread_id, ctx)?;
        match (self.change, thread.status) {
            (StatusChange::Complete, Status::Open) => {
                Ok(Payload::ThreadCompleted(ThreadCompleted {}))
            }
            (StatusChange::Complete, Status::Completed) => {
                Err(DomainError::precondition("the thread is already complete"))
            }
            (StatusChange::Complete, Status::Archived) => Err(DomainError::precondition(
                "the thread is archived; reopen it first",
            )),
            (StatusChange::Archive, Status::Archived) => {
                Err(DomainError::precondition("the thread is already archived"))
            }
            (StatusChange::Archive, _) => Ok(Payload::ThreadArchived(ThreadArchived {})),
            (StatusChange::Reopen, Status::Open) => {
                Err(DomainError::precondition("the thread is already open"))
            }
            (StatusChange::Reopen, _) => Ok(Payload::ThreadReopened(ThreadReopened {})),
        }
    }
}

/// Record that the caller has read up to a message.
#[derive(Clone, Debug)]
pub struct MarkRead {
    pub thread_id: String,
    pub message_id: String,
}

impl Command for MarkRead {
    type Target = Thread;
    fn target_id(&self) -> &str {
        &self.thread_id
    }
    fn needs(&self, thread: &Thread, actor: &Actor) -> Needs {
        participant_needs(thread, actor)
    }
    fn more_needs(&self, thread: &Thread, ctx: &Context) -> Needs {
        participant_more_needs(thread, ctx)
    }
    fn decide(&self, thread: &Thread, ctx: &Context) -> Result<Payload, DomainError> {
        require_participant(thread, &self.thread_id, ctx)?;
        let Some(&index) = thread.message_index.get(&self.message_id) else {
            return Err(DomainError::not_found(format!(
                "message {} is not in thread {}",
                self.message_id, self.thread_id
            )));
        };
        if thread
            .read_up_to
            .get(&ctx.actor.person_id)
            .is_some_and(|&read| read >= index)
        {
            return Err(DomainError::precondition(
                "you have already read up to this message or a later one",
            ));
        }
        Ok(Payload::ThreadReadUpTo(ThreadReadUpTo {
            reader_id: ctx.actor.person_id.clone(),
            message_id: self.message_id.clone(),
        }))
    }
    fn on_behalf_of(&self, thread: &Thread, actor: &Actor) -> Option<String> {
        carer_behalf(&thread.patient_id, actor)
    }
}

#[cfg(test)]
mod tests;
