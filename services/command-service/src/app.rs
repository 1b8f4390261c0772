//! Running one command: lock the target, load what the decision reads,
//! decide, append exactly one event with the expected version and the
//! command id as event id, and retry a bounded number of times when another
//! process changed the aggregate in between.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use event_store::{Error as StoreError, EventStore, Position};
use futures::future::try_join_all;
use proto::contract::SCHEMA_VERSION;
use proto::events::{Actor as EventActor, Envelope};

use crate::domain::{
    Actor, Aggregate, Command, Context, Created, Needs, PatientRecord, Person, Team,
};
use crate::error::Error;
use crate::repository::{Loaded, Repository};

/// How many times a command is decided again after a conflict with another
/// process before the caller is told ABORTED.
pub const MAX_ATTEMPTS: u32 = 8;

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
}

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
        }
    }

    /// Replaces the clock (tests of expiry).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn repository(&self) -> &Repository<S> {
        &self.repo
    }

    /// Runs one command to its one event, or to a refusal that wrote nothing.
    pub async fn execute<C: Command>(
        &self,
        actor: &Actor,
        meta: &CommandMeta,
        command: &C,
    ) -> Result<Reply, Error> {
        let mut locked = self.repo.lock::<C::Target>(command.target_id()).await?;
        let aggregate_id = command.target_id().to_string();
        let replay = |position| Reply {
            aggregate_id: aggregate_id.clone(),
            position,
            replayed: true,
            created: command.created(),
        };
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
            let ctx = self.context(actor, needs, now).await?;
            let payload = command.decide(&current.state, &ctx)?;
            let envelope = Envelope {
                event_id: meta.command_id.clone(),
                event_type: payload.event_type().to_string(),
                schema_version: SCHEMA_VERSION,
                aggregate_type: C::Target::KIND as i32,
                aggregate_id: aggregate_id.clone(),
                occurred_at: Some(now.into()),
                actor: Some(EventActor {
                    person_id: actor.person_id.clone(),
                    role: actor.role.to_proto() as i32,
                    on_behalf_of: command
                        .on_behalf_of(&current.state, actor)
                        .unwrap_or_default(),
                    display_name: actor.name.clone(),
                }),
                command_id: meta.command_id.clone(),
                correlation_id: meta.correlation_id.clone(),
                causation_id: meta.command_id.clone(),
                payload: Some(payload),
            };
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
                    locked.catch_up().await?;
                    return match locked.current().commands.get(&meta.command_id) {
                        Some(&position) if position == appended.position => Ok(replay(position)),
                        _ => Err(Error::CommandIdReused(meta.command_id.clone())),
                    };
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

    /// Loads, fresh from the log, every aggregate a decision reads.
    async fn context(
        &self,
        actor: &Actor,
        needs: Needs,
        now: SystemTime,
    ) -> Result<Context, Error> {
        let mut ctx = Context::new(actor.clone(), now);
        let mut team_ids: BTreeSet<String> = needs.teams.into_iter().collect();
        if let Some(record_id) = &needs.record {
            let record = self.repo.fresh::<PatientRecord>(record_id).await?;
            if needs.record_teams {
                team_ids.extend(record.state.all_team_ids());
            }
            ctx.record = Some(Arc::new(record.state.clone()));
        }
        let people_ids: BTreeSet<String> = needs.people.into_iter().collect();
        let (teams, people) = futures::try_join!(
            try_join_all(team_ids.iter().map(|id| self.repo.fresh::<Team>(id))),
            try_join_all(people_ids.iter().map(|id| self.repo.fresh::<Person>(id))),
        )?;
        ctx.teams = team_ids
            .into_iter()
            .zip(teams.into_iter().map(state))
            .collect();
        ctx.people = people_ids
            .into_iter()
            .zip(people.into_iter().map(state))
            .collect();
        Ok(ctx)
    }
}

fn state<A: Aggregate>(loaded: Arc<Loaded<A>>) -> Arc<A> {
    Arc::new(loaded.state.clone())
}
