//! The rules of the product, as pure functions.
//!
//! Each aggregate (`person`, `team`, `patient`, `thread`) has a state built
//! by [`Aggregate::evolve`] from its events, and commands that implement
//! [`Command`]: `needs` says which other aggregates the decision reads
//! (a thread's patient record, the teams in scope, the people named), and
//! `decide` checks the command against the state and that context and returns
//! the one event to record, or a [`DomainError`]. No I/O happens here: the
//! service loads what `needs` names, calls `decide`, and appends.
//!
//! The events are the contract's types (`proto::events`): the event schema is
//! the domain's vocabulary, written once.

pub mod email;
pub mod identity;
pub mod patient;
pub mod person;
pub mod team;
pub mod thread;
pub mod values;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use proto::events::{AggregateType, Envelope, envelope::Payload};
use service_kit::Role;

pub use identity::Identity;
pub use patient::PatientRecord;
pub use person::Person;
pub use team::Team;
pub use thread::Thread;

/// Why a command was refused. Each maps to one gRPC status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field of the request is malformed (INVALID_ARGUMENT).
    #[error("{field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    /// A rule forbids this person doing this (PERMISSION_DENIED).
    #[error("{0}")]
    PermissionDenied(String),
    /// Something named does not exist, or is not visible (NOT_FOUND).
    #[error("{0}")]
    NotFound(String),
    /// The current state does not allow it (FAILED_PRECONDITION).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The state changed since the caller looked (ABORTED): it is to look
    /// again and decide (an assignment from a page that showed another).
    #[error("{0}")]
    Stale(String),
    /// A rule forbids it (PERMISSION_DENIED, `denied`) or the state does
    /// not allow it (FAILED_PRECONDITION), for a reason callers tell apart
    /// (`service_kit::reason`: e.g. `STAFF_SIDE`, `ROLE_ALREADY_HELD`).
    #[error("{message}")]
    Because {
        reason: &'static str,
        denied: bool,
        message: String,
    },
}

impl From<service_kit::ids::BadId> for DomainError {
    fn from(e: service_kit::ids::BadId) -> Self {
        DomainError::InvalidArgument {
            field: e.field,
            message: e.message,
        }
    }
}

impl DomainError {
    pub fn denied(rule: impl Into<String>) -> Self {
        DomainError::PermissionDenied(rule.into())
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        DomainError::NotFound(what.into())
    }
    pub fn precondition(why: impl Into<String>) -> Self {
        DomainError::FailedPrecondition(why.into())
    }
    /// FAILED_PRECONDITION with a reason callers tell apart.
    pub fn precondition_because(reason: &'static str, why: impl Into<String>) -> Self {
        DomainError::Because {
            reason,
            denied: false,
            message: why.into(),
        }
    }
    /// PERMISSION_DENIED with a reason callers tell apart.
    pub fn denied_because(reason: &'static str, rule: impl Into<String>) -> Self {
        DomainError::Because {
            reason,
            denied: true,
            message: rule.into(),
        }
    }
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::InvalidArgument {
            field,
            message: message.into(),
        }
    }
}

/// The authenticated person issuing a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub person_id: String,
    pub role: Role,
    pub name: String,
}

impl Actor {
    pub fn is(&self, role: Role) -> bool {
        self.role == role
    }
}

impl From<&service_kit::Caller> for Actor {
    fn from(caller: &service_kit::Caller) -> Self {
        Actor {
            person_id: caller.person_id.to_string(),
            role: caller.role,
            name: caller.name.clone(),
        }
    }
}

/// An aggregate's state, folded from its events.
pub trait Aggregate: Clone + Default + std::fmt::Debug + Send + Sync + 'static {
    const KIND: AggregateType;
    /// Applies one recorded event. Events of other aggregates never arrive
    /// here; unknown payloads (a newer contract) are ignored.
    fn evolve(&mut self, event: &Envelope);

    /// Whether the log, folded into this aggregate (the person's own, by
    /// their id), confirms that its person may act in `role`; `None` when
    /// this kind of aggregate does not say.
    fn confirms(&self, _role: Role) -> Option<bool> {
        None
    }

    /// Whether this aggregate (a person's own) says their account is
    /// closed: then nothing they ask is done, whatever their token says.
    fn deactivated(&self) -> bool {
        false
    }
}

/// When a recorded event happened (the epoch if it does not say).
pub fn occurred_at(event: &Envelope) -> SystemTime {
    event
        .occurred_at
        .as_ref()
        .and_then(|t| values::timestamp("occurred_at", t).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Which other aggregates a decision reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// The patient record, by id.
    pub record: Option<String>,
    /// Also every team of that record: its care teams and the teams it has
    /// granted access to.
    pub record_teams: bool,
    pub teams: Vec<String>,
    pub people: Vec<String>,
    /// Also every team each of these professionals was ever added to (the
    /// store's membership hints, a superset: the teams loaded say who is a
    /// member now).
    pub teams_of: Vec<String>,
    /// Also the people a message to the named teams reaches (their
    /// contactable members and default contacts), to know whose account is
    /// still open.
    pub members: bool,
}

/// Where an aggregate kind comes in the lock order: a command holds its
/// target locked while it loads its context, so it may read only kinds
/// after its own (thread → record → team → person), and two commands never
/// wait on each other in a circle.
fn lock_rank(kind: AggregateType) -> u8 {
    match kind {
        // An account at an identity provider reads the person it links.
        AggregateType::Thread | AggregateType::Identity => 0,
        AggregateType::PatientRecord => 1,
        AggregateType::Team => 2,
        AggregateType::Person => 3,
        _ => 4,
    }
}

impl Needs {
    /// The first kind these needs read that is not after `target` in the
    /// lock order, if any: a command that reads it could deadlock with one
    /// that targets it.
    pub fn breaks_lock_order(&self, target: AggregateType) -> Option<AggregateType> {
        [
            (self.record.is_some(), AggregateType::PatientRecord),
            (
                !self.teams.is_empty() || self.record_teams || !self.teams_of.is_empty(),
                AggregateType::Team,
            ),
            (!self.people.is_empty(), AggregateType::Person),
        ]
        .into_iter()
        .filter(|(read, _)| *read)
        .map(|(_, kind)| kind)
        .find(|kind| lock_rank(*kind) <= lock_rank(target))
    }

    /// Whether these needs name the aggregate `id` of type `kind`: a
    /// command must never read its own target as context (it already holds
    /// it, and loading it again would wait on itself).
    pub fn names(&self, kind: AggregateType, id: &str) -> bool {
        let id = id.to_string();
        match kind {
            AggregateType::PatientRecord => self.record.as_ref() == Some(&id),
            AggregateType::Team => self.teams.contains(&id),
            AggregateType::Person => self.people.contains(&id),
            _ => false,
        }
    }
}

/// What a decision reads besides its own aggregate: loaded fresh from the
/// log for every attempt.
#[derive(Clone, Debug)]
pub struct Context {
    pub actor: Actor,
    pub now: SystemTime,
    pub record: Option<Arc<PatientRecord>>,
    pub teams: HashMap<String, Arc<Team>>,
    pub people: HashMap<String, Arc<Person>>,
    /// This decision makes the deployment's first admin.
    pub bootstrap: bool,
    /// When the actor's account was last closed (and since opened again):
    /// their memberships and participations from before do not count.
    pub actor_closed_at: Option<SystemTime>,
}

impl Context {
    pub fn new(actor: Actor, now: SystemTime) -> Self {
        Self {
            actor,
            now,
            record: None,
            teams: HashMap::new(),
            people: HashMap::new(),
            bootstrap: false,
            actor_closed_at: None,
        }
    }

    /// Whether a membership or participation of `person` that began at
    /// `since` is still theirs: not ended by their account being closed.
    /// The actor's own is known; anyone else's only if they were loaded
    /// (`Needs::people`, `Needs::members`): someone not loaded counts.
    pub fn holds_from(&self, person: &str, since: SystemTime) -> bool {
        if person == self.actor.person_id {
            return self.actor_closed_at.is_none_or(|closed| since > closed);
        }
        self.people
            .get(person)
            .is_none_or(|p| p.still_holds_from(since))
    }

    /// `person`'s membership of `team`, if it is theirs now.
    pub fn member<'a>(&self, team: &'a Team, person: &str) -> Option<&'a team::Member> {
        team.members
            .get(person)
            .filter(|m| self.holds_from(person, m.added_at))
    }

    /// The team's default messaging contact, if they are still its member.
    pub fn default_contact<'a>(&self, team: &'a Team) -> Option<&'a str> {
        team.default_contact
            .as_deref()
            .filter(|p| self.is_member(team, p))
    }

    /// Whether `person` is a member of `team` now.
    pub fn is_member(&self, team: &Team, person: &str) -> bool {
        self.member(team, person).is_some()
    }

    /// The patient record, which must exist.
    pub fn record(&self, id: &str) -> Result<&PatientRecord, DomainError> {
        self.record
            .as_deref()
            .filter(|r| r.exists)
            .ok_or_else(|| DomainError::not_found(format!("patient record {id} does not exist")))
    }

    /// A team, which must exist.
    pub fn team(&self, id: &str) -> Result<&Team, DomainError> {
        self.teams
            .get(id)
            .map(|t| t.as_ref())
            .filter(|t| t.exists)
            .ok_or_else(|| DomainError::not_found(format!("team {id} does not exist")))
    }

    /// A registered professional, whose account is open.
    pub fn professional(&self, id: &str) -> Result<&Person, DomainError> {
        self.people
            .get(id)
            .map(|p| p.as_ref())
            .filter(|p| p.is_professional())
            .ok_or_else(|| DomainError::not_found(format!("professional {id} is not registered")))
            .and_then(|p| open_account(p, "professional", id))
    }

    /// A registered carer, whose account is open.
    pub fn carer(&self, id: &str) -> Result<&Person, DomainError> {
        self.people
            .get(id)
            .map(|p| p.as_ref())
            .filter(|p| p.is_carer())
            .ok_or_else(|| DomainError::not_found(format!("carer {id} is not registered")))
            .and_then(|p| open_account(p, "carer", id))
    }

    /// Whether the actor is a member of any of these (loaded) teams.
    pub fn actor_in_any<'a>(&self, teams: impl IntoIterator<Item = &'a String>) -> bool {
        teams.into_iter().any(|t| {
            self.teams
                .get(t)
                .is_some_and(|team| self.is_member(team, &self.actor.person_id))
        })
    }
}

fn open_account<'a>(person: &'a Person, kind: &str, id: &str) -> Result<&'a Person, DomainError> {
    if person.deactivated {
        Err(DomainError::precondition(format!(
            "{kind} {id}'s account is deactivated"
        )))
    } else {
        Ok(person)
    }
}

/// A command: what it targets, what it reads, and the rule that decides it.
pub trait Command: Send + Sync {
    type Target: Aggregate;

    /// The id of the aggregate the event is recorded on.
    fn target_id(&self) -> &str;

    /// The other aggregates `decide` reads, given the target's state.
    fn needs(&self, _target: &Self::Target, _actor: &Actor) -> Needs {
        Needs::default()
    }

    /// What else `decide` reads, once what `needs` named is loaded (a
    /// second look, only when the first shows it is needed).
    fn more_needs(&self, _target: &Self::Target, _ctx: &Context) -> Needs {
        Needs::default()
    }

    /// The one event this command records, or why not.
    fn decide(&self, target: &Self::Target, ctx: &Context) -> Result<Payload, DomainError>;

    /// Whose behalf the actor acts on (a carer in a patient's record).
    fn on_behalf_of(&self, _target: &Self::Target, _actor: &Actor) -> Option<String> {
        None
    }

    /// Ids this command creates, returned in the reply.
    fn created(&self) -> Created {
        Created::default()
    }

    /// Who may run it, where that is not simply a person whose role the
    /// log confirms (the authorise stage's special cases).
    fn admission(&self, _actor: &Actor) -> Admission {
        Admission::Confirmed
    }

    /// What a person may do only so often (checked and counted before the
    /// stages, given back when nothing was written).
    fn ration(&self) -> Ration {
        Ration::None
    }
}

/// Who may run a command: the authorise stage's cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A person whose role the log confirms, and whose account is open:
    /// every command but those below.
    Confirmed,
    /// The actor's own registration (a patient signing up): accepted from
    /// an actor the log does not know yet; `decide` must then create
    /// exactly that aggregate.
    Registers,
    /// The deployment's first admin granting itself the role: accepted from
    /// an actor whose admin role is not (yet) in the log, once per
    /// deployment.
    FirstAdmin,
    /// The sign-in's own commands: the sign-in principal (`Role::System`,
    /// no person) runs them and no one else; it runs nothing else.
    SignIn,
}

/// What a person may do only so often.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ration {
    None,
    /// Writes a message: counted by the post limit.
    Posts,
    /// Presents a secret that could be guessed (a join code): its refusals
    /// are counted, and too many stop the person trying for a while.
    Guess,
}

/// Ids a command creates, for the reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Created {
    pub message_id: Option<String>,
    pub grant_id: Option<String>,
}

impl Created {
    /// A command that creates a message.
    pub fn message(id: &str) -> Self {
        Self {
            message_id: Some(id.to_string()),
            ..Self::default()
        }
    }
}

/// Requires one of the roles, naming the rule.
pub fn require_role(actor: &Actor, roles: &[Role], rule: &str) -> Result<(), DomainError> {
    if roles.contains(&actor.role) {
        Ok(())
    } else {
        Err(DomainError::denied(format!(
            "{rule} (you are signed in as {})",
            actor.role
        )))
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Given/when/then helpers for the aggregates' unit tests.

    use super::*;
    use proto::events::{Actor as EventActor, Envelope};

    /// Folds payloads into a state, as the log would.
    pub fn given<A: Aggregate>(actor: &Actor, payloads: impl IntoIterator<Item = Payload>) -> A {
        let mut state = A::default();
        for payload in payloads {
            state.evolve(&envelope(actor, payload));
        }
        state
    }

    pub fn envelope(actor: &Actor, payload: Payload) -> Envelope {
        Envelope {
            event_id: uuid::Uuid::now_v7().to_string(),
            event_type: payload.event_type().into(),
            schema_version: 1,
            aggregate_type: payload.aggregate_type() as i32,
            aggregate_id: String::new(),
            occurred_at: Some(SystemTime::now().into()),
            actor: Some(EventActor {
                person_id: actor.person_id.clone(),
                role: actor.role.to_proto() as i32,
                on_behalf_of: String::new(),
                display_name: actor.name.clone(),
            }),
            command_id: String::new(),
            correlation_id: String::new(),
            causation_id: String::new(),
            payload: Some(payload),
        }
    }

    pub fn person(role: Role, name: &str) -> Actor {
        Actor {
            person_id: uuid::Uuid::now_v7().to_string(),
            role,
            name: name.into(),
        }
    }

    pub fn new_id() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// Asserts a refusal of the given kind whose message contains `text`.
    #[track_caller]
    pub fn assert_refused(result: Result<Payload, DomainError>, kind: &str, text: &str) {
        let err = match result {
            Ok(payload) => panic!("expected a refusal ({kind}: {text}), got {payload:?}"),
            Err(e) => e,
        };
        let got_kind = match &err {
            DomainError::InvalidArgument { .. } => "invalid",
            DomainError::PermissionDenied(_) => "denied",
            DomainError::NotFound(_) => "not found",
            DomainError::FailedPrecondition(_) => "precondition",
            DomainError::Stale(_) => "stale",
            DomainError::Because { denied: true, .. } => "denied",
            DomainError::Because { denied: false, .. } => "precondition",
        };
        assert_eq!(got_kind, kind, "{err}");
        assert!(
            err.to_string().contains(text),
            "expected {text:?} in {:?}",
            err.to_string()
        );
    }
}
