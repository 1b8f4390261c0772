//! Test and benchmark support: a realistic event log, generated and
//! appended straight to the event store (as the command service would have
//! recorded it), at any size.
//!
//! The world: teams with automatic CC, each with contactable staff (one a
//! lead); patients in one team each; threads started by patients to their
//! team, with replies alternating between patient and staff, the patient
//! reading staff replies, and the first staff reply assigning the thread.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::{AggregateRef, EventStore};
use proto::contract::SCHEMA_VERSION;
use proto::events::envelope::Payload;
use proto::events::{self as ev, AggregateType, Envelope, Role};
use uuid::Uuid;

/// How big a world to make.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub teams: usize,
    pub staff_per_team: usize,
    pub patients: usize,
    pub threads: usize,
    /// Messages after the first, per thread.
    pub replies: usize,
    /// Of `threads`, how many go to the last team (a busy one, for the
    /// team-inbox benchmark); the rest are spread evenly over every
    /// patient.
    pub busy_team_threads: usize,
}

/// The ids of a generated world, for queries.
#[derive(Clone, Debug, Default)]
pub struct World {
    pub teams: Vec<Uuid>,
    /// Staff by team; the first of each team is its lead.
    pub staff: Vec<Vec<Uuid>>,
    pub patients: Vec<Uuid>,
    /// (thread, patient, team)
    pub threads: Vec<(Uuid, Uuid, usize)>,
    /// A privacy officer and an operator, granted their roles by the admin.
    pub auditor: Uuid,
    pub operator: Uuid,
}

/// Events grouped by aggregate, each group in order.
#[derive(Debug, Default)]
pub struct Log {
    pub world: World,
    pub aggregates: Vec<(AggregateRef, Vec<Envelope>)>,
}

impl Log {
    pub fn len(&self) -> usize {
        self.aggregates.iter().map(|(_, e)| e.len()).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Clock(SystemTime);

impl Clock {
    fn tick(&mut self) -> SystemTime {
        self.0 += Duration::from_millis(1);
        self.0
    }
}

/// Who takes a step in the generated world: id, role, display name.
type Actor<'a> = (Uuid, Role, &'a str);

fn envelope(
    kind: AggregateType,
    id: Uuid,
    actor: Actor<'_>,
    at: SystemTime,
    payload: Payload,
) -> Envelope {
    let event_id = Uuid::now_v7().to_string();
    Envelope {
        event_id: event_id.clone(),
        event_type: payload.event_type().into(),
        schema_version: SCHEMA_VERSION,
        aggregate_type: kind as i32,
        aggregate_id: id.to_string(),
        occurred_at: Some(at.into()),
        actor: Some(ev::Actor {
            person_id: actor.0.to_string(),
            role: actor.1 as i32,
            on_behalf_of: String::new(),
            display_name: actor.2.into(),
        }),
        command_id: event_id.clone(),
        correlation_id: event_id,
        causation_id: String::new(),
        payload: Some(payload),
    }
}

impl Spec {
    /// The benchmarks' organisation at `scale` (1.0: 500 teams of 20 staff,
    /// 20,000 patients, 100,000 threads of 7 messages: about a million
    /// events; 10,000 of the threads in the last team).
    pub fn benchmark(scale: f64) -> Self {
        let n = |x: f64| ((x * scale).round() as usize).max(1);
        Self {
            teams: n(500.0),
            staff_per_team: 20,
            patients: n(20_000.0),
            threads: n(100_000.0),
            replies: 6,
            busy_team_threads: n(10_000.0),
        }
    }
}

/// Generates a world and its log. Times start `age` ago, a millisecond apart.
pub fn generate(spec: Spec, age: Duration) -> Log {
    let admin = (Uuid::now_v7(), Role::Admin, "Generated Admin");
    let mut clock = Clock(SystemTime::now() - age);
    let mut log = Log::default();
    // An aggregate's events as (actor, payload); the envelopes are built
    // here, each naming the aggregate, a millisecond apart.
    let mut push = |kind: AggregateType, id: Uuid, events: Vec<(Actor<'_>, Payload)>| {
        let events = events
            .into_iter()
            .map(|(actor, payload)| envelope(kind, id, actor, clock.tick(), payload))
            .collect();
        log.aggregates
            .push((AggregateRef::new(kind, id.to_string()).unwrap(), events));
    };

    let mut world = World::default();
    // The admin is the log's first admin, and grants the staff roles.
    let (admin_id, _, admin_name) = admin;
    let mut grants = vec![(admin_id, Role::Admin, admin_name, true)];
    world.auditor = Uuid::now_v7();
    world.operator = Uuid::now_v7();
    grants.push((world.auditor, Role::Auditor, "Generated Auditor", false));
    grants.push((world.operator, Role::Operator, "Generated Operator", false));
    for (person, role, name, bootstrap) in grants {
        push(
            AggregateType::Person,
            person,
            vec![(
                admin,
                Payload::StaffRoleGranted(ev::StaffRoleGranted {
                    person_id: person.to_string(),
                    role: role as i32,
                    name: name.into(),
                    bootstrap,
                }),
            )],
        );
    }
    for t in 0..spec.teams {
        let team = Uuid::now_v7();
        let mut members = Vec::new();
        let mut team_events = vec![(
            admin,
            Payload::TeamCreated(ev::TeamCreated {
                team_id: team.to_string(),
                name: format!("Team {t}"),
                description: String::new(),
            }),
        )];
        for s in 0..spec.staff_per_team {
            let person = Uuid::now_v7();
            push(
                AggregateType::Person,
                person,
                vec![(
                    admin,
                    Payload::ProfessionalRegistered(ev::ProfessionalRegistered {
                        professional_id: person.to_string(),
                        name: format!("Staff {t}-{s}"),
                        role_label: "Nurse".into(),
                        work_email: format!("staff{t}x{s}@hospital.example"),
                        // Generated staff count as verified.
                        work_email_unverified: false,
                    }),
                )],
            );
            team_events.push((
                admin,
                Payload::TeamMemberAdded(ev::TeamMemberAdded {
                    professional_id: person.to_string(),
                    contactable: true,
                    lead: s == 0,
                }),
            ));
            members.push(person);
        }
        team_events.push((
            admin,
            Payload::TeamAutoCcSwitched(ev::TeamAutoCcSwitched { enabled: true }),
        ));
        push(AggregateType::Team, team, team_events);
        world.teams.push(team);
        world.staff.push(members);
    }

    let mut patient_team = HashMap::new();
    for p in 0..spec.patients {
        let patient = Uuid::now_v7();
        let team = p % spec.teams.max(1);
        let staff = world.staff[team][0];
        push(
            AggregateType::PatientRecord,
            patient,
            vec![
                (
                    (staff, Role::Professional, "Staff"),
                    Payload::PatientRegistered(ev::PatientRegistered {
                        patient_id: patient.to_string(),
                        name: format!("Patient {p:06}"),
                        email: format!("patient{p}@example.org"),
                        email_verified: p % 5 != 0,
                        joined_team_id: String::new(),
                        identity: Some(ev::PatientIdentity {
                            date_of_birth: format!(
                                "{}-{:02}-{:02}",
                                1930 + p % 90,
                                1 + p % 12,
                                1 + p % 28
                            ),
                            hospital_number: format!("RX{p:06}"),
                            nhs_number: String::new(),
                        }),
                    }),
                ),
                (
                    (staff, Role::Professional, "Staff"),
                    Payload::PatientJoinedTeam(ev::PatientJoinedTeam {
                        team_id: world.teams[team].to_string(),
                        method: ev::JoinMethod::AddedByStaff as i32,
                    }),
                ),
            ],
        );
        world.patients.push(patient);
        patient_team.insert(patient, team);
    }

    // Every `stride`-th thread goes to the busy team's patients (those
    // `p % teams == teams - 1`), until it has its share.
    let busy = spec.busy_team_threads.min(spec.threads);
    let stride = spec.threads.checked_div(busy).unwrap_or(0);
    let busy_patients: Vec<Uuid> = world
        .patients
        .iter()
        .enumerate()
        .filter(|(p, _)| p % spec.teams.max(1) == spec.teams.max(1) - 1)
        .map(|(_, id)| *id)
        .collect();
    let mut busy_given = 0;
    for n in 0..spec.threads {
        let thread = Uuid::now_v7();
        let patient =
            if stride > 0 && n % stride == 0 && busy_given < busy && !busy_patients.is_empty() {
                busy_given += 1;
                busy_patients[(n / stride) % busy_patients.len()]
            } else {
                world.patients[n % world.patients.len()]
            };
        let team = patient_team[&patient];
        let members = &world.staff[team];
        let pat = (patient, Role::Patient, "Patient");
        let mut participants = vec![ev::Participant {
            deputy_for: String::new(),
            person_id: patient.to_string(),
            kind: ev::ParticipantKind::Patient as i32,
            reason: ev::JoinReason::Author as i32,
            via_team_id: String::new(),
        }];
        participants.extend(members.iter().map(|m| ev::Participant {
            deputy_for: String::new(),
            person_id: m.to_string(),
            kind: ev::ParticipantKind::Professional as i32,
            reason: ev::JoinReason::TeamAutoCc as i32,
            via_team_id: world.teams[team].to_string(),
        }));
        let mut events = vec![(
            pat,
            Payload::ThreadStarted(ev::ThreadStarted {
                notice: None,
                attachments: vec![],
                thread_id: thread.to_string(),
                patient_id: patient.to_string(),
                subject: format!("Question {n}"),
                message_id: Uuid::now_v7().to_string(),
                body: "I have a question about my medication.".into(),
                participants,
                team_ids: vec![world.teams[team].to_string()],
            }),
        )];
        for r in 0..spec.replies {
            let staff_turn = r % 2 == 0;
            let author = if staff_turn {
                (
                    members[(n + r) % members.len()],
                    Role::Professional,
                    "Staff",
                )
            } else {
                pat
            };
            if staff_turn && r == 0 {
                events.push((
                    author,
                    Payload::ThreadAssigned(ev::ThreadAssigned {
                        assignee_id: author.0.to_string(),
                        previous_assignee_id: String::new(),
                    }),
                ));
            }
            let message = Uuid::now_v7().to_string();
            events.push((
                author,
                Payload::MessagePosted(ev::MessagePosted {
                    notice: None,
                    attachments: vec![],
                    message_id: message.clone(),
                    mention_ids: vec![],
                    body: format!("Reply {r}: please take it with food and keep a diary."),
                    reopened: false,
                }),
            ));
            if staff_turn && r % 4 == 0 {
                events.push((
                    pat,
                    Payload::ThreadReadUpTo(ev::ThreadReadUpTo {
                        reader_id: patient.to_string(),
                        message_id: message,
                    }),
                ));
            }
        }
        push(AggregateType::Thread, thread, events);
        world.threads.push((thread, patient, team));
    }
    log.world = world;
    log
}

/// Appends the log with `writers` concurrent writers, each aggregate's
/// events in order with their expected versions. Reference data (people,
/// teams, records) goes first, as it would have in real life.
/// A world of `spec`'s size, its activity spread over the last 30 days,
/// appended to `store` by 16 writers.
pub async fn generated<S: EventStore>(store: &S, spec: Spec) -> World {
    append(store, generate(spec, Duration::from_secs(30 * 86_400)), 16).await
}

pub async fn append<S: EventStore>(store: &S, log: Log, writers: usize) -> World {
    let world = log.world;
    let (reference, threads): (Vec<_>, Vec<_>) = log
        .aggregates
        .into_iter()
        .partition(|(a, _)| a.kind() != AggregateType::Thread);
    for part in [reference, threads] {
        let queue = Arc::new(std::sync::Mutex::new(part));
        let tasks: Vec<_> = (0..writers.max(1))
            .map(|_| {
                let queue = queue.clone();
                let store = store.clone();
                tokio::spawn(async move {
                    loop {
                        let next = queue.lock().unwrap().pop();
                        let Some((_, events)) = next else { return };
                        crate::testing::append_in_order(&store, &events).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }
    world
}
