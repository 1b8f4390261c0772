//! Running one command: lock the target, load what the decision reads,
//! decide, append exactly one event with the expected version and the
//! command id as event id, and retry a bounded number of times when another
//! process changed the aggregate in between.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use event_store::{Error as StoreError, EventStore, Position};
use futures::future::try_join_all;
use proto::events::{Actor as EventActor, Envelope};
use service_kit::Role;

use crate::domain::{
    Actor, Admission, Aggregate, Command, Context, Created, Needs, PatientRecord, Person, Ration,
    Team,
};
use crate::error::Error;
use crate::repository::{Loaded, Repository};

/// How many times a command is decided again after a conflict with another
/// process before the caller is told ABORTED.
pub const MAX_ATTEMPTS: u32 = 8;

/// How long a duplicate append waits, each time, for the log to show the
/// first one's event (after a leader change a replica may lag).
const DUPLICATE_READ_BACK: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];

/// Where the clock comes from: the wall clock, or a fixed time in tests.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Identifies one command and its journey.
#[derive(Clone, Debug)]
pub struct CommandMeta {
    /// Client-chosen, canonical UUID: also the event id.
    pub command_id: String,
    pub correlation_id: String,
}

/// What a command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub aggregate_id: String,
    /// The event's position, which is also the aggregate's new version.
    pub position: Position,
    /// The command had been handled before; nothing new was recorded.
    pub replayed: bool,
    pub created: Created,
}

/// The write side: a repository over an event store.
pub struct App<S> {
    repo: Repository<S>,
    clock: Clock,
    post_limit: Option<service_kit::limit::Limit>,
    upload_limit: Option<service_kit::limit::Limit>,
    /// Refused join codes per person (see [`WRONG_CODES_PER_HOUR`]).
    wrong_codes: service_kit::limit::Limit,
    email_links: Option<service_kit::LinkKeys>,
    /// The bucket of files, and the largest file it takes; without it
    /// uploads are refused (UNAVAILABLE) and so are messages naming files.
    files: Option<(event_store::FileStore, u64)>,
}

/// Wrong join codes one person may present in an hour, on this instance: a
/// code is long and random, and this keeps guessing one hopeless.
pub const WRONG_CODES_PER_HOUR: usize = 10;

impl<S> std::fmt::Debug for App<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("repo", &self.repo).finish()
    }
}

impl<S: EventStore> App<S> {
    pub fn new(store: S, cache_capacity: u64) -> Self {
        Self {
            repo: Repository::new(store, cache_capacity),
            clock: Arc::new(SystemTime::now),
            post_limit: None,
            upload_limit: None,
            wrong_codes: service_kit::limit::Limit::new(
                WRONG_CODES_PER_HOUR,
                std::time::Duration::from_secs(3600),
            ),
            email_links: None,
            files: None,
        }
    }

    /// Keeps the files sent in conversations in `files`, each at most
    /// `max_bytes`.
    pub fn with_files(mut self, files: event_store::FileStore, max_bytes: u64) -> Self {
        self.files = Some((files, max_bytes));
        self
    }

    /// The bucket of files and the largest file it takes.
    pub fn files(&self) -> Option<&(event_store::FileStore, u64)> {
        self.files.as_ref()
    }

    /// The event log this writes to.
    pub fn store(&self) -> &S {
        self.repo.store()
    }

    /// Checks verification links with `keys` (the notification service's
    /// public link keys): without them `ConfirmEmail` is refused.
    pub fn with_email_links(mut self, keys: service_kit::LinkKeys) -> Self {
        self.email_links = Some(keys);
        self
    }

    pub fn email_links(&self) -> Option<&service_kit::LinkKeys> {
        self.email_links.as_ref()
    }

    /// Limits each person to `per_minute` messages a minute (threads
    /// started and messages posted), on this instance.
    pub fn with_post_limit(mut self, per_minute: usize) -> Self {
        self.post_limit = Some(service_kit::limit::Limit::per_minute(per_minute));
        self.upload_limit = Some(service_kit::limit::Limit::per_minute(per_minute));
        self
    }

    /// The limit of uploads one person may make a minute (the post limit's
    /// number: a file is kept for good, so none is free).
    pub fn upload_limit(&self) -> Option<&service_kit::limit::Limit> {
        self.upload_limit.as_ref()
    }

    /// Replaces the clock (tests of expiry).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn repository(&self) -> &Repository<S> {
        &self.repo
    }

    /// Runs one command to its one event, or to a refusal that wrote nothing:
    /// its [`Ration`] first (the post limit, the wrong-code limit), then its
    /// stages ([`Self::execute_unlimited`]).
    pub async fn execute<C: Command>(
        &self,
        actor: &Actor,
        meta: &CommandMeta,
        command: &C,
    ) -> Result<Reply, Error> {
        let limited = self
            .post_limit
            .as_ref()
            .filter(|_| command.ration() == Ration::Posts);
        // The slot is taken before the command runs (the check and the
        // count are one step) and given back if it writes nothing.
        let slot = match limited {
            Some(limit) => match limit.take(&actor.person_id, std::time::Instant::now()) {
                Ok(taken) => Some((limit, taken)),
                Err(wait) => {
                    return Err(Error::TooManyPosts {
                        per_minute: limit.most(),
                        wait,
                    });
                }
            },
            None => None,
        };
        // A code is counted as wrong before it is checked (so concurrent
        // guesses cannot all pass) and given back when it was right.
        let guess = match command.ration() == Ration::Guess {
            true => match self
                .wrong_codes
                .take(&actor.person_id, std::time::Instant::now())
            {
                Ok(taken) => Some(taken),
                Err(wait) => {
                    if let Some((limit, taken)) = slot {
                        limit.give_back(&actor.person_id, taken);
                    }
                    return Err(Error::TooManyWrongCodes {
                        per_hour: self.wrong_codes.most(),
                        wait,
                    });
                }
            },
            false => None,
        };
        let reply = self.execute_unlimited(actor, meta, command).await;
        if let Some((limit, taken)) = slot
            && reply.as_ref().map_or(true, |r| r.replayed)
        {
            limit.give_back(&actor.person_id, taken);
        }
        if let Some(taken) = guess
            && !matches!(reply, Err(Error::Domain(_)))
        {
            self.wrong_codes.give_back(&actor.person_id, taken);
        }
        reply
    }

    /// The command's stages, under its target's lock, decided again on a
    /// conflict: **authorise** (the command's [`Admission`]: the sign-in
    /// runs only its own commands; an actor the log does not confirm runs
    /// only its own registration, or the first admin's grant);
    /// **load** (the target; a command id already recorded is a replay; the
    /// context it `needs`, in lock order, with the command id's claim and
    /// the actor's standing beside it, the first time); **decide** (pure; a
    /// refusal counts only on the latest state); **claim** what the event
    /// needs beside the log ([`Self::claim_beside`]); **append** the one
    /// event ([`envelope`]) at the version read; **record** it in the cache.
    async fn execute_unlimited<C: Command>(
        &self,
        actor: &Actor,
        meta: &CommandMeta,
        command: &C,
    ) -> Result<Reply, Error> {
        let admission = command.admission(actor);
        let by_sign_in = admission == Admission::SignIn;
        if actor.is(Role::System) != by_sign_in {
            return Err(crate::domain::DomainError::denied(if by_sign_in {
                "only the sign-in does this"
            } else {
                "the sign-in acts for no one: sign in as a person"
            })
            .into());
        }
        let mut locked = self.repo.lock::<C::Target>(command.target_id()).await?;
        let aggregate_id = command.target_id().to_string();
        let replay = |position| Reply {
            aggregate_id: aggregate_id.clone(),
            position,
            replayed: true,
            created: command.created(),
        };
        let mut claimed = false;
        let mut bootstrap = false;
        let mut closed_at = None;
        for attempt in 1..=MAX_ATTEMPTS {
            let current = locked.current();
            if let Some(&position) = current.commands.get(&meta.command_id) {
                return Ok(replay(position));
            }
            let now = (self.clock)();
            let needs = command.needs(&current.state, actor);
            if needs.names(C::Target::KIND, &aggregate_id) {
                return Err(Error::Bug(format!(
                    "{} reads its own aggregate as context",
                    std::any::type_name::<C>()
                )));
            }
            in_lock_order::<C>(&needs)?;
            // A command id is claimed for this aggregate for good, beside
            // loading the context (JetStream's duplicate window forgets
            // ids after minutes; a reused one must not start a second
            // thread with the first one's message id).
            let mut ctx = if claimed {
                self.context(actor, needs, now).await?
            } else {
                // The actor's own aggregate, when the command targets it, is
                // already held here (loading it again would wait on itself).
                let own = (C::Target::KIND == own_kind(actor) && aggregate_id == actor.person_id)
                    .then(|| Standing::of(&current.state, actor));
                let owner = locked.aggregate().to_string();
                let claim = async {
                    self.repo
                        .store()
                        .claim(&meta.command_id, &owner)
                        .await
                        .map_err(Error::from)
                };
                let (ctx, holder, standing) = futures::try_join!(
                    self.context(actor, needs, now),
                    claim,
                    self.standing(actor, own)
                )?;
                if standing.deactivated {
                    return Err(crate::domain::DomainError::denied_because(
                        service_kit::reason::ACCOUNT_CLOSED,
                        "account deactivated: an admin closed this account, so nothing can be done with it",
                    )
                    .into());
                }
                if holder.is_some() {
                    return Err(Error::CommandIdReused(meta.command_id.clone()));
                }
                closed_at = standing.closed_at;
                if !standing.confirmed && admission != Admission::Registers {
                    if admission != Admission::FirstAdmin {
                        return Err(unconfirmed(actor).into());
                    }
                    let first = self
                        .repo
                        .store()
                        .claim(BOOTSTRAP_CLAIM, &actor.person_id)
                        .await?;
                    if first.is_some() {
                        return Err(crate::domain::DomainError::denied(
                            "this deployment already has its first admin: an admin grants the admin role",
                        )
                        .into());
                    }
                    tracing::warn!(person = %actor.person_id, "the deployment's first admin grants itself the admin role");
                    bootstrap = true;
                }
                claimed = true;
                ctx
            };
            ctx.bootstrap = bootstrap;
            ctx.actor_closed_at = closed_at;
            // What the decision turns out to need once it has read the rest.
            let more = command.more_needs(&current.state, &ctx);
            if more != Needs::default() {
                in_lock_order::<C>(&more)?;
                self.load(&mut ctx, more).await?;
            }
            let payload = match command.decide(&current.state, &ctx) {
                Ok(payload) => payload,
                Err(refusal) => {
                    // A refusal counts only on the target's latest state:
                    // another instance may have changed it since this one
                    // cached it (an append would have found out; a refusal
                    // appends nothing). The log is asked only now.
                    if self.repo.store().version(locked.aggregate()).await? > current.version {
                        drop(current);
                        locked.catch_up().await?;
                        continue;
                    }
                    return Err(refusal.into());
                }
            };
            self.claim_beside(&payload, &locked.aggregate().to_string(), &aggregate_id)
                .await?;
            if payload.aggregate_type() != C::Target::KIND {
                return Err(Error::Bug(format!(
                    "{} decided a {} event for a {:?}",
                    std::any::type_name::<C>(),
                    payload.event_type(),
                    C::Target::KIND
                )));
            }
            let on_behalf_of = command
                .on_behalf_of(&current.state, actor)
                .unwrap_or_default();
            let envelope = envelope(actor, on_behalf_of, meta, payload, &aggregate_id, now);
            let expected = current.version;
            // Release this reference so that recording the event updates the
            // cached state in place instead of copying it.
            drop(current);
            match self.repo.store().append(&envelope, expected).await {
                Ok(appended) if !appended.duplicate => {
                    locked.record(appended.position, &envelope);
                    tracing::debug!(
                        aggregate = %locked.aggregate(),
                        event_type = %envelope.event_type,
                        position = appended.position,
                        "recorded"
                    );
                    return Ok(Reply {
                        aggregate_id,
                        position: appended.position,
                        replayed: false,
                        created: command.created(),
                    });
                }
                Ok(appended) => {
                    // JetStream already holds an event with this id. If it is
                    // this aggregate's, the command ran before (another
                    // process, or a lost answer); otherwise the id was reused.
                    // After a leader change the replica read may not hold it
                    // yet: read again until it reaches the event's position,
                    // and say "unavailable" rather than guess.
                    for wait in DUPLICATE_READ_BACK {
                        tokio::time::sleep(wait).await;
                        locked.catch_up().await?;
                        let current = locked.current();
                        match current.commands.get(&meta.command_id) {
                            Some(&position) if position == appended.position => {
                                return Ok(replay(position));
                            }
                            _ if current.version >= appended.position => {
                                return Err(Error::CommandIdReused(meta.command_id.clone()));
                            }
                            _ => {}
                        }
                    }
                    return Err(StoreError::Unavailable(format!(
                        "command id {} is in the log at {} but cannot be read back yet",
                        meta.command_id, appended.position
                    ))
                    .into());
                }
                Err(StoreError::Conflict { .. }) => {
                    tracing::debug!(aggregate = %locked.aggregate(), attempt, "conflict, deciding again");
                    locked.catch_up().await?;
                    // Another process is writing this aggregate: give it room.
                    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 8);
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt) + jitter)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Aborted {
            aggregate: locked.aggregate().to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// What a decided event must claim beside the log before it is
    /// appended: a person's id for one kind of person, an identity
    /// provider's link for one person, and a team member's hint.
    async fn claim_beside(
        &self,
        payload: &proto::events::envelope::Payload,
        owner: &str,
        aggregate_id: &str,
    ) -> Result<(), Error> {
        if let Some(claim) = crate::claims::person_claim(payload) {
            let holder = self.repo.store().claim(&claim.key(), claim.kind).await?;
            if let Some(other) = holder.filter(|h| !claim.accepts(h)) {
                return Err(crate::domain::DomainError::precondition(format!(
                    "{} is already registered as a {other}: one id is one person, of one kind",
                    claim.person
                ))
                .into());
            }
        }
        if let Some(key) = crate::claims::identity_claim(payload)
            && self.repo.store().claim(&key, owner).await?.is_some()
        {
            return Err(crate::domain::DomainError::precondition(
                "this person already has a sign-in linked at this identity provider: a person is linked once per provider",
            )
            .into());
        }
        // Before the append: a hint the log never confirms costs a
        // team loaded for nothing; one missing would hide a membership.
        if let proto::events::envelope::Payload::TeamMemberAdded(e) = payload {
            self.repo
                .store()
                .add_hint(
                    &crate::claims::teams_of_key(&e.professional_id),
                    aggregate_id,
                )
                .await?;
        }
        Ok(())
    }

    /// What the log says of the actor: whether it confirms the role their
    /// token names, and whether their account is closed (`own`: already
    /// read from the command's own target).
    async fn standing(&self, actor: &Actor, own: Option<Standing>) -> Result<Standing, Error> {
        if let Some(own) = own {
            return Ok(own);
        }
        if actor.is(Role::System) {
            // No person: `execute` let it run only the sign-in's commands.
            return Ok(Standing {
                confirmed: true,
                deactivated: false,
                closed_at: None,
            });
        }
        Ok(if actor.is(Role::Patient) {
            let record = self.repo.fresh::<PatientRecord>(&actor.person_id).await?;
            Standing::of(&record.state, actor)
        } else {
            let person = self.repo.fresh::<Person>(&actor.person_id).await?;
            Standing {
                closed_at: person.state.deactivated_at,
                ..Standing::of(&person.state, actor)
            }
        })
    }

    /// Loads, fresh from the log, every aggregate a decision reads.
    async fn context(
        &self,
        actor: &Actor,
        needs: Needs,
        now: SystemTime,
    ) -> Result<Context, Error> {
        let mut ctx = Context::new(actor.clone(), now);
        self.load(&mut ctx, needs).await?;
        Ok(ctx)
    }

    /// Loads, fresh from the log, what `needs` names into `ctx` (beside
    /// what it holds already).
    async fn load(&self, ctx: &mut Context, needs: Needs) -> Result<(), Error> {
        let actor = ctx.actor.clone();
        let named: BTreeSet<String> = needs.teams.into_iter().collect();
        let mut team_ids = named.clone();
        let keys: Vec<String> = needs
            .teams_of
            .iter()
            .map(|person| crate::claims::teams_of_key(person))
            .collect();
        let hinted = try_join_all(keys.iter().map(|key| self.repo.store().hints(key))).await?;
        team_ids.extend(hinted.into_iter().flatten());
        if let Some(record_id) = &needs.record {
            let record = self.repo.fresh::<PatientRecord>(record_id).await?;
            if needs.record_teams {
                team_ids.extend(record.state.all_team_ids());
            }
            ctx.record = Some(Arc::new(record.state.clone()));
        }
        team_ids.retain(|id| !ctx.teams.contains_key(id));
        let people_ids: BTreeSet<String> = needs.people.into_iter().collect();
        let (teams, people) = futures::try_join!(
            try_join_all(team_ids.iter().map(|id| self.repo.fresh::<Team>(id))),
            try_join_all(people_ids.iter().map(|id| self.repo.fresh::<Person>(id))),
        )?;
        ctx.teams
            .extend(team_ids.into_iter().zip(teams.into_iter().map(state)));
        ctx.people.extend(
            people_ids
                .iter()
                .cloned()
                .zip(people.into_iter().map(state)),
        );
        if needs.members {
            // Whom a message to the named teams reaches: their accounts.
            let reached: BTreeSet<String> = named
                .iter()
                .filter_map(|id| ctx.teams.get(id))
                .flat_map(|team| {
                    team.contactable_members()
                        .chain(team.default_contact.iter())
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .filter(|id| !people_ids.contains(id) && *id != actor.person_id)
                .collect();
            let loaded =
                try_join_all(reached.iter().map(|id| self.repo.fresh::<Person>(id))).await?;
            ctx.people
                .extend(reached.into_iter().zip(loaded.into_iter().map(state)));
        }
        Ok(())
    }
}

/// What the log says of the actor.
#[derive(Clone, Copy, Debug)]
struct Standing {
    /// It confirms the role their token names.
    confirmed: bool,
    /// Their account is closed.
    deactivated: bool,
    /// When it was last closed.
    closed_at: Option<SystemTime>,
}

impl Standing {
    fn of<A: crate::domain::Aggregate>(own: &A, actor: &Actor) -> Self {
        Self {
            confirmed: own.confirms(actor.role).unwrap_or(false),
            deactivated: own.deactivated(),
            closed_at: None,
        }
    }
}

/// The claim the deployment's first admin takes, once.
const BOOTSTRAP_CLAIM: &str = "bootstrap.admin";

/// The aggregate that says who a person is: a patient's record, or the
/// person aggregate of everyone else.
fn own_kind(actor: &Actor) -> proto::events::AggregateType {
    if actor.is(Role::Patient) {
        proto::events::AggregateType::PatientRecord
    } else {
        proto::events::AggregateType::Person
    }
}

/// The refusal for a token whose role the log does not confirm.
fn unconfirmed(actor: &Actor) -> crate::domain::DomainError {
    let why = match actor.role {
        Role::Patient => "there is no patient record under your id",
        Role::Carer => "you are not registered as a carer",
        Role::Professional => "you are not registered as a professional",
        Role::Admin | Role::Operator | Role::Auditor => {
            "that staff role is not granted to you (an admin grants staff roles)"
        }
        Role::System => "the sign-in is no person",
        Role::Service => "no hospital system is registered under that id",
    };
    crate::domain::DomainError::denied(format!(
        "your token says you are {} {}, but {why}",
        article(actor.role),
        actor.role
    ))
}

fn article(role: Role) -> &'static str {
    match role {
        Role::Admin | Role::Operator | Role::Auditor => "an",
        _ => "a",
    }
}

fn state<A: Aggregate>(loaded: Arc<Loaded<A>>) -> Arc<A> {
    Arc::new(loaded.state.clone())
}

/// Refuses, as a defect, a command whose `needs` would lock against the
/// lock order (thread → record → team → person) from its target.
fn in_lock_order<C: Command>(needs: &Needs) -> Result<(), Error> {
    match needs.breaks_lock_order(C::Target::KIND) {
        Some(kind) => Err(Error::Bug(format!(
            "{} locks a {:?} and reads a {kind:?}: against the lock order thread → record → team → person",
            std::any::type_name::<C>(),
            C::Target::KIND
        ))),
        None => Ok(()),
    }
}

/// The event a command records: its id is the command's (so a retry
/// records nothing new), by `actor`, at `now`.
fn envelope(
    actor: &Actor,
    on_behalf_of: String,
    meta: &CommandMeta,
    payload: proto::events::envelope::Payload,
    aggregate_id: &str,
    now: SystemTime,
) -> Envelope {
    let event_actor = EventActor {
        person_id: actor.person_id.clone(),
        role: actor.role.to_proto() as i32,
        on_behalf_of,
        display_name: actor.name.clone(),
    };
    Envelope {
        event_id: meta.command_id.clone(),
        command_id: meta.command_id.clone(),
        correlation_id: meta.correlation_id.clone(),
        causation_id: meta.command_id.clone(),
        ..proto::contract::envelope(payload, aggregate_id.to_string(), event_actor, now)
    }
}

#[cfg(test)]
mod tests {
    //! The whole write side on the in-memory store, with a clock the tests
    //! move: rules that depend on time, replay, and the guard against a
    //! command reading its own aggregate.

    use std::sync::Mutex;

    use event_store::MemoryStore;
    use proto::events::CarerRelationship;
    use proto::events::envelope::Payload;
    use service_kit::Role;

    use super::*;
    use crate::domain::DomainError;
    use crate::domain::patient::{
        AddPatientToTeam, GrantCarerConsent, GrantRecordAccess, RegisterPatient,
    };
    use crate::domain::person::{
        GrantStaffRole, RegisterCarer, RegisterProfessional, RevokeStaffRole,
    };
    use crate::domain::team::{AddTeamMember, CreateTeam, SetAutoCc};
    use crate::domain::thread::{
        AddParticipants, LeaveThread, PostMessage, Recipient, StartThread,
    };

    struct World {
        app: App<MemoryStore>,
        store: MemoryStore,
        now: Arc<Mutex<SystemTime>>,
        admin: Actor,
        patient: Actor,
        carer: Actor,
        nurse: Actor,
        pals: Actor,
        specialist: Actor,
        thread: String,
    }

    fn actor(role: Role, name: &str) -> Actor {
        Actor {
            person_id: uuid::Uuid::now_v7().to_string(),
            role,
            name: name.into(),
        }
    }

    fn meta() -> CommandMeta {
        let id = uuid::Uuid::now_v7().to_string();
        CommandMeta {
            command_id: id.clone(),
            correlation_id: id,
        }
    }

    fn grant(who: &Actor, role: Role) -> GrantStaffRole {
        GrantStaffRole {
            person_id: who.person_id.clone(),
            role,
            name: who.name.clone(),
        }
    }

    fn new_team() -> CreateTeam {
        CreateTeam {
            team_id: uuid::Uuid::now_v7().to_string(),
            name: "Team".into(),
            description: String::new(),
        }
    }

    fn denied(result: Result<Reply, Error>) -> String {
        match result {
            Err(Error::Domain(
                DomainError::PermissionDenied(m)
                | DomainError::Because {
                    denied: true,
                    message: m,
                    ..
                },
            )) => m,
            other => panic!("expected PERMISSION_DENIED, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_token_role_counts_only_where_the_log_confirms_it() {
        let w = world().await;
        let before = w.store.last_position().await.unwrap();
        // Nobody registered this professional: the token alone says so.
        let stranger = actor(Role::Professional, "Mallory");
        let refused = denied(
            w.run(
                &stranger,
                RegisterCarer {
                    carer_id: uuid::Uuid::now_v7().to_string(),
                    name: "Eve".into(),
                    email: "eve@example.org".into(),
                    email_verified: false,
                },
            )
            .await,
        );
        assert!(
            refused.contains("not registered as a professional"),
            "{refused}"
        );
        // A registered carer with a token that says professional.
        let posing = Actor {
            role: Role::Professional,
            ..w.carer.clone()
        };
        let post = PostMessage {
            attachments: vec![],
            thread_id: w.thread.clone(),
            message_id: uuid::Uuid::now_v7().to_string(),
            body: "I am a doctor now".into(),
            mention_ids: vec![],
        };
        denied(w.run(&posing, post.clone()).await);
        // A patient token for an id with no record.
        let no_record = actor(Role::Patient, "Nobody");
        denied(w.run(&no_record, post).await);
        // An admin token for someone never granted the role, once the
        // deployment has its first admin.
        let self_made = actor(Role::Admin, "Self-made");
        denied(w.run(&self_made, new_team()).await);
        let refused = denied(w.run(&self_made, grant(&self_made, Role::Admin)).await);
        assert!(refused.contains("first admin"), "{refused}");
        // Nothing was recorded by any of them.
        assert_eq!(w.store.last_position().await.unwrap(), before);
    }

    #[tokio::test]
    async fn an_admin_grants_and_revokes_staff_roles_and_a_revoked_role_stops_at_once() {
        let w = world().await;
        let bob = actor(Role::Admin, "Bob");
        w.run(&w.admin, grant(&bob, Role::Admin)).await.unwrap();
        w.run(&bob, new_team()).await.unwrap();
        // Staff roles are for staff: not for a carer or a patient.
        let carer_admin = w.run(&w.admin, grant(&w.carer, Role::Auditor)).await;
        assert!(matches!(
            carer_admin,
            Err(Error::Domain(DomainError::FailedPrecondition(_)))
        ));
        let patient_admin = w.run(&w.admin, grant(&w.patient, Role::Admin)).await;
        assert!(matches!(
            patient_admin,
            Err(Error::Domain(DomainError::FailedPrecondition(_)))
        ));
        // Nobody takes their own role away (so an admin cannot lock the
        // deployment out by accident); another admin can.
        denied(
            w.run(
                &bob,
                RevokeStaffRole {
                    person_id: bob.person_id.clone(),
                    role: Role::Admin,
                },
            )
            .await,
        );
        w.run(
            &w.admin,
            RevokeStaffRole {
                person_id: bob.person_id.clone(),
                role: Role::Admin,
            },
        )
        .await
        .unwrap();
        denied(w.run(&bob, new_team()).await);
        // A non-admin grants nothing.
        denied(w.run(&w.nurse, grant(&w.nurse, Role::Auditor)).await);
    }

    impl World {
        async fn run<C: Command>(&self, who: &Actor, command: C) -> Result<Reply, Error> {
            self.app.execute(who, &meta(), &command).await
        }

        fn advance(&self, by: Duration) {
            *self.now.lock().unwrap() += by;
        }
    }

    /// A renal team with automatic CC, a PALS team with a one-day grant, a
    /// patient whose carer holds consent for one hour, and her thread.
    async fn world() -> World {
        let store = MemoryStore::new();
        let now = Arc::new(Mutex::new(SystemTime::now()));
        let clock_now = now.clone();
        let app =
            App::new(store.clone(), 1_000).with_clock(Arc::new(move || *clock_now.lock().unwrap()));
        let w = World {
            app,
            store,
            now,
            admin: actor(Role::Admin, "Ada"),
            patient: actor(Role::Patient, "Pat"),
            carer: actor(Role::Carer, "Chris"),
            nurse: actor(Role::Professional, "Nina"),
            pals: actor(Role::Professional, "Pam"),
            specialist: actor(Role::Professional, "Dr Spec"),
            thread: uuid::Uuid::now_v7().to_string(),
        };
        let (renal, pals_team) = (
            uuid::Uuid::now_v7().to_string(),
            uuid::Uuid::now_v7().to_string(),
        );
        w.run(&w.admin, grant(&w.admin, Role::Admin)).await.unwrap();
        for who in [&w.nurse, &w.pals, &w.specialist] {
            w.run(
                &w.admin,
                RegisterProfessional {
                    professional_id: who.person_id.clone(),
                    name: who.name.clone(),
                    role_label: "Nurse".into(),
                    work_email: "x@nhs.net".into(),
                },
            )
            .await
            .unwrap();
        }
        w.run(
            &w.admin,
            RegisterCarer {
                carer_id: w.carer.person_id.clone(),
                name: "Chris".into(),
                email: "c@example.org".into(),
                email_verified: false,
            },
        )
        .await
        .unwrap();
        for (team, member) in [(&renal, &w.nurse), (&pals_team, &w.pals)] {
            w.run(
                &w.admin,
                CreateTeam {
                    team_id: team.clone(),
                    name: "Team".into(),
                    description: String::new(),
                },
            )
            .await
            .unwrap();
            w.run(
                &w.admin,
                AddTeamMember {
                    team_id: team.clone(),
                    professional_id: member.person_id.clone(),
                    contactable: true,
                    lead: false,
                },
            )
            .await
            .unwrap();
            w.run(
                &w.admin,
                SetAutoCc {
                    team_id: team.clone(),
                    enabled: true,
                },
            )
            .await
            .unwrap();
        }
        w.run(
            &w.nurse,
            RegisterPatient {
                patient_id: w.patient.person_id.clone(),
                name: "Pat".into(),
                email: "p@example.org".into(),
                email_verified: false,
                identity: Default::default(),
            },
        )
        .await
        .unwrap();
        w.run(
            &w.nurse,
            AddPatientToTeam {
                patient_id: w.patient.person_id.clone(),
                team_id: renal.clone(),
            },
        )
        .await
        .unwrap();
        let now = *w.now.lock().unwrap();
        w.run(
            &w.patient,
            GrantCarerConsent {
                patient_id: w.patient.person_id.clone(),
                carer_id: w.carer.person_id.clone(),
                relationship: CarerRelationship::Parent,
                expires_at: Some(now + Duration::from_secs(3600)),
            },
        )
        .await
        .unwrap();
        w.run(
            &w.patient,
            GrantRecordAccess {
                patient_id: w.patient.person_id.clone(),
                grant_id: uuid::Uuid::now_v7().to_string(),
                team_id: pals_team,
                expires_at: now + Duration::from_secs(86_400),
                reason: "complaint".into(),
            },
        )
        .await
        .unwrap();
        w.run(
            &w.patient,
            StartThread {
                attachments: vec![],
                thread_id: w.thread.clone(),
                patient_id: w.patient.person_id.clone(),
                subject: "Swollen ankles".into(),
                body: "Should I worry?".into(),
                message_id: uuid::Uuid::now_v7().to_string(),
                recipients: vec![Recipient::Team(renal)],
                carer_ids: vec![w.carer.person_id.clone()],
            },
        )
        .await
        .unwrap();
        w
    }

    fn post(w: &World) -> PostMessage {
        PostMessage {
            attachments: vec![],
            thread_id: w.thread.clone(),
            message_id: uuid::Uuid::now_v7().to_string(),
            body: "An update".into(),
            mention_ids: vec![],
        }
    }

    #[tokio::test]
    async fn given_consent_until_a_time_when_the_clock_passes_it_then_the_carer_is_refused() {
        let w = world().await;
        let first = w.run(&w.carer, post(&w)).await.unwrap();
        w.advance(Duration::from_secs(3601));
        assert!(denied(w.run(&w.carer, post(&w)).await).contains("consent"));
        // The history stays in the log.
        assert!(w.store.last_position().await.unwrap() >= first.position);
    }

    #[tokio::test]
    async fn given_a_record_access_grant_when_it_expires_then_the_team_loses_access() {
        let w = world().await;
        let add = || AddParticipants {
            thread_id: w.thread.clone(),
            recipients: vec![Recipient::Professional(w.specialist.person_id.clone())],
            carer_ids: vec![],
            staff_side: false,
        };
        let leave = || LeaveThread {
            thread_id: w.thread.clone(),
        };
        // While the grant is in force PALS sees the thread (it is not on it).
        match w.run(&w.pals, leave()).await {
            Err(Error::Domain(DomainError::FailedPrecondition(m))) => {
                assert!(m.contains("not on this thread"), "{m}")
            }
            other => panic!("expected FAILED_PRECONDITION, got {other:?}"),
        }
        let before = w.store.last_position().await.unwrap();
        w.advance(Duration::from_secs(86_401));
        for result in [w.run(&w.pals, add()).await, w.run(&w.pals, leave()).await] {
            match result {
                Err(Error::Domain(DomainError::NotFound(_))) => {}
                other => panic!("expected NOT_FOUND once access ended, got {other:?}"),
            }
        }
        assert_eq!(
            w.store.last_position().await.unwrap(),
            before,
            "a refusal wrote"
        );
    }

    #[tokio::test]
    async fn given_a_handled_command_when_it_is_sent_again_then_the_first_answer_returns() {
        let w = world().await;
        let m = meta();
        let command = post(&w);
        let first = w.app.execute(&w.nurse, &m, &command).await.unwrap();
        let head = w.store.last_position().await.unwrap();
        let again = w.app.execute(&w.nurse, &m, &command).await.unwrap();
        assert!(again.replayed && !first.replayed);
        assert_eq!(again.position, first.position);
        assert_eq!(w.store.last_position().await.unwrap(), head);
        // A cold instance on the same log answers the same.
        let cold = App::new(w.store.clone(), 10);
        assert_eq!(
            cold.execute(&w.nurse, &m, &command).await.unwrap().position,
            first.position
        );
    }

    /// A (defective) command that reads its own thread as a team.
    struct ReadsItself(String);

    impl Command for ReadsItself {
        type Target = crate::domain::Team;
        fn target_id(&self) -> &str {
            &self.0
        }
        fn needs(&self, _: &crate::domain::Team, _: &Actor) -> Needs {
            Needs {
                teams: vec![self.0.clone()],
                ..Needs::default()
            }
        }
        fn decide(&self, _: &crate::domain::Team, _: &Context) -> Result<Payload, DomainError> {
            unreachable!("never decided")
        }
    }

    #[tokio::test]
    async fn a_command_that_reads_its_own_aggregate_is_a_defect_not_a_hang() {
        let w = world().await;
        let id = uuid::Uuid::now_v7().to_string();
        let result = tokio::time::timeout(Duration::from_secs(5), w.run(&w.admin, ReadsItself(id)))
            .await
            .expect("it must not wait on itself");
        assert!(matches!(result, Err(Error::Bug(_))), "{result:?}");
    }

    /// A (defective) command on a person that reads a patient record: with
    /// one on the record that reads the person, each would wait on the other.
    struct AgainstLockOrder(String);

    impl Command for AgainstLockOrder {
        type Target = Person;
        fn target_id(&self) -> &str {
            &self.0
        }
        fn needs(&self, _: &Person, _: &Actor) -> Needs {
            Needs {
                record: Some(uuid::Uuid::now_v7().to_string()),
                ..Needs::default()
            }
        }
        fn decide(&self, _: &Person, _: &Context) -> Result<Payload, DomainError> {
            unreachable!("never decided")
        }
    }

    #[tokio::test]
    async fn a_command_that_reads_against_the_lock_order_is_a_defect() {
        let w = world().await;
        let head = w.store.last_position().await.unwrap();
        let result = w
            .run(&w.admin, AgainstLockOrder(w.admin.person_id.clone()))
            .await;
        match result {
            Err(Error::Bug(m)) => assert!(m.contains("lock order"), "{m}"),
            other => panic!("expected a defect, got {other:?}"),
        }
        assert_eq!(w.store.last_position().await.unwrap(), head);
    }

    #[test]
    fn every_command_reads_only_after_its_target_in_the_lock_order() {
        use proto::events::AggregateType;
        let thread = Needs {
            record: Some("r".into()),
            record_teams: true,
            teams: vec!["t".into()],
            people: vec!["p".into()],
            teams_of: vec!["p".into()],
            members: true,
        };
        assert_eq!(thread.breaks_lock_order(AggregateType::Thread), None);
        assert_eq!(
            thread.breaks_lock_order(AggregateType::PatientRecord),
            Some(AggregateType::PatientRecord)
        );
        let team_reads_team = Needs {
            teams: vec!["other".into()],
            ..Needs::default()
        };
        assert_eq!(
            team_reads_team.breaks_lock_order(AggregateType::Team),
            Some(AggregateType::Team)
        );
    }
}
