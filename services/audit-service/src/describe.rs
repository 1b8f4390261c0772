//! From events to audit entries: which chain (record) each belongs to, who
//! acted, and what they did in plain words. Pure: names and thread→record
//! links come from a [`Directory`] the caller fills.

use std::collections::{HashMap, HashSet};

use event_store::RecordedEvent;
use proto::events::envelope::Payload;
use proto::events::{CarerRelationship, JoinMethod};

/// An audit entry before it takes its place in a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub chain: String,
    pub position: u64,
    pub event_id: String,
    pub event_type: String,
    pub kind: Kind,
    /// Microseconds since the Unix epoch.
    pub occurred_at: i64,
    pub actor_id: String,
    pub actor_name: String,
    pub role: String,
    pub on_behalf_of: String,
    pub action: String,
    pub patient_id: String,
    pub thread_id: String,
    pub call: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Action = 1,
    View = 2,
}

impl Kind {
    pub fn from_i16(v: i16) -> Self {
        if v == 2 { Kind::View } else { Kind::Action }
    }
}

/// Names of people and teams, and which record each thread is in. Lookups
/// of unknown ids are remembered as misses, so a caller can load them and
/// describe again.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    pub names: HashMap<String, String>,
    pub thread_records: HashMap<String, String>,
    /// Ids asked for and not known.
    pub missing_names: HashSet<String>,
    pub missing_threads: HashSet<String>,
    /// What the events described so far taught (to be stored).
    pub learned_names: Vec<(String, String)>,
    pub learned_threads: Vec<(String, String)>,
}

impl Directory {
    fn name(&mut self, id: &str) -> String {
        match self.names.get(id) {
            Some(name) => name.clone(),
            None => {
                self.missing_names.insert(id.to_string());
                id.to_string()
            }
        }
    }

    fn names(&mut self, ids: impl IntoIterator<Item = impl AsRef<str>>) -> String {
        let names: Vec<String> = ids.into_iter().map(|id| self.name(id.as_ref())).collect();
        match names.as_slice() {
            [] => "nobody".into(),
            [one] => one.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    }

    fn learn_name(&mut self, id: &str, name: &str) {
        if self.names.get(id).map(String::as_str) != Some(name) {
            self.names.insert(id.to_string(), name.to_string());
            self.learned_names.push((id.to_string(), name.to_string()));
        }
    }

    fn record_of(&mut self, thread: &str) -> Option<String> {
        let record = self.thread_records.get(thread).cloned();
        if record.is_none() {
            self.missing_threads.insert(thread.to_string());
        }
        record
    }
}

pub(crate) use proto::contract::role_name;

fn relationship(r: i32) -> &'static str {
    match CarerRelationship::try_from(r).unwrap_or(CarerRelationship::Unspecified) {
        CarerRelationship::Parent => "parent",
        CarerRelationship::Guardian => "guardian",
        CarerRelationship::FamilyMember => "family member",
        CarerRelationship::Friend => "friend",
        CarerRelationship::Other | CarerRelationship::Unspecified => "carer",
    }
}

fn date(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    let ts = ts?;
    let at = time::OffsetDateTime::from_unix_timestamp(ts.seconds).ok()?;
    Some(format!(
        "{}-{:02}-{:02}",
        at.year(),
        u8::from(at.month()),
        at.day()
    ))
}

fn micros(event: &RecordedEvent) -> i64 {
    event
        .envelope
        .occurred_at
        .as_ref()
        .and_then(proto::time::to_micros)
        .unwrap_or(0)
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

fn the_call(call: &str) -> &str {
    call.rsplit('/').next().unwrap_or(call)
}

/// What a hospital system did with a notice, naming the system, the team
/// it spoke for and its own reference (an appointment id, say: an
/// identifier, no clinical content).
fn notice_action(n: &proto::events::Notice, did: &str) -> String {
    format!(
        "{} (a hospital system) {did} for {}, its reference {:?}",
        n.system_name, n.team_name, n.reference
    )
}

/// The audit entries of one event (one per record it concerns; one for an
/// event that concerns no record).
pub fn describe(event: &RecordedEvent, dir: &mut Directory) -> Vec<Draft> {
    let envelope = &event.envelope;
    let actor = envelope.actor.clone().unwrap_or_default();
    let aggregate = envelope.aggregate_id.as_str();
    // The registered name where the person is registered (a token's name
    // is the caller's word); the token's for those who are not (admins,
    // auditors, operators).
    let registered = dir.name(&actor.person_id);
    let actor_name = if registered != actor.person_id || actor.display_name.is_empty() {
        registered
    } else {
        actor.display_name.clone()
    };
    let base = Draft {
        chain: String::new(),
        position: event.position,
        event_id: envelope.event_id.clone(),
        event_type: envelope.event_type.clone(),
        kind: Kind::Action,
        occurred_at: micros(event),
        actor_id: actor.person_id.clone(),
        actor_name: actor_name.clone(),
        role: role_name(actor.role).into(),
        on_behalf_of: actor.on_behalf_of.clone(),
        action: String::new(),
        patient_id: String::new(),
        thread_id: String::new(),
        call: String::new(),
    };
    let record = |patient: &str, action: String| Draft {
        chain: format!("patient/{patient}"),
        patient_id: patient.to_string(),
        action,
        ..base.clone()
    };
    let team = |action: String| Draft {
        chain: format!("team/{aggregate}"),
        action,
        ..base.clone()
    };
    let person = |action: String| Draft {
        chain: format!("person/{aggregate}"),
        action,
        ..base.clone()
    };
    let who = &actor_name;
    let Some(payload) = &envelope.payload else {
        // A newer event type than this service knows: still on the trail.
        return vec![Draft {
            chain: format!("{}/{aggregate}", aggregate_token(envelope.aggregate_type)),
            action: format!(
                "{who}: {} (not described by this version)",
                envelope.event_type
            ),
            ..base.clone()
        }];
    };

    // Thread events go to the thread's record.
    let thread_action = |dir: &mut Directory, action: String| -> Vec<Draft> {
        let patient = dir.record_of(aggregate);
        let mut draft = match patient {
            Some(p) => record(&p, action),
            None => Draft {
                chain: format!("thread/{aggregate}"),
                action,
                ..base.clone()
            },
        };
        draft.thread_id = aggregate.to_string();
        vec![draft]
    };

    match payload {
        Payload::ThreadStarted(e) => {
            dir.thread_records
                .insert(e.thread_id.clone(), e.patient_id.clone());
            dir.learned_threads
                .push((e.thread_id.clone(), e.patient_id.clone()));
            let teams = dir.names(&e.team_ids);
            let people = dir.names(
                e.participants
                    .iter()
                    .filter(|p| p.person_id != actor.person_id)
                    .map(|p| p.person_id.as_str()),
            );
            let addressed = match (e.team_ids.is_empty(), people.as_str()) {
                (true, _) => format!("with {people}"),
                (false, "nobody") => format!("to {teams}"),
                (false, _) => format!("to {teams}, with {people}"),
            };
            match &e.notice {
                Some(n) => thread_action(dir, notice_action(n, "started a thread with a notice")),
                None => thread_action(dir, format!("{who} started a thread {addressed}")),
            }
        }
        Payload::MessagePosted(e) => {
            let reopened = if e.reopened {
                ", which reopened the thread"
            } else {
                ""
            };
            let files = match e.attachments.len() {
                0 => String::new(),
                1 => " with a file".to_string(),
                n => format!(" with {n} files"),
            };
            match &e.notice {
                Some(n) => {
                    thread_action(dir, notice_action(n, &format!("posted a notice{reopened}")))
                }
                None => thread_action(dir, format!("{who} posted a message{files}{reopened}")),
            }
        }
        Payload::StaffNotePosted(_) => thread_action(dir, format!("{who} wrote a staff note")),
        Payload::ParticipantsAdded(e) => {
            let (people, via) = joining(dir, &e.participants, &e.team_ids);
            let moved = if e.moved_person_ids.is_empty() && e.moved_team_ids.is_empty() {
                ""
            } else {
                ", moving those on the staff side to the patient side"
            };
            thread_action(
                dir,
                format!("{who} added {people} to the thread{via}{moved}"),
            )
        }
        Payload::StaffSideJoined(e) => {
            let (people, via) = joining(dir, &e.participants, &e.team_ids);
            thread_action(
                dir,
                format!("{who} added {people} to the staff side of the thread{via}"),
            )
        }
        Payload::ParticipantLeft(e) => {
            let action = if e.person_id == actor.person_id {
                format!("{who} left the thread")
            } else {
                format!("{who} removed {} from the thread", dir.name(&e.person_id))
            };
            thread_action(dir, action)
        }
        Payload::ThreadAssigned(e) => {
            let to = if e.assignee_id == actor.person_id {
                "themself".to_string()
            } else {
                dir.name(&e.assignee_id)
            };
            thread_action(dir, format!("{who} assigned the thread to {to}"))
        }
        Payload::ThreadUnassigned(e) => {
            let from = dir.name(&e.previous_assignee_id);
            thread_action(dir, format!("{who} unassigned the thread from {from}"))
        }
        Payload::ThreadCompleted(_) => {
            thread_action(dir, format!("{who} marked the thread complete"))
        }
        Payload::ThreadArchived(_) => thread_action(dir, format!("{who} archived the thread")),
        Payload::ThreadReopened(_) => thread_action(dir, format!("{who} reopened the thread")),
        Payload::ThreadReadUpTo(_) => {
            thread_action(dir, format!("{who} read the thread's messages"))
        }

        Payload::TeamCreated(e) => {
            dir.learn_name(&e.team_id, &e.name);
            vec![team(format!("{who} created the team {}", e.name))]
        }
        Payload::TeamMemberAdded(e) => {
            let (member, team_name) = (dir.name(&e.professional_id), dir.name(aggregate));
            let lead = if e.lead { " as a lead" } else { "" };
            let contactable = if e.contactable {
                "contactable"
            } else {
                "not contactable"
            };
            vec![team(format!(
                "{who} added {member} to {team_name}{lead} ({contactable} by messages)"
            ))]
        }
        Payload::TeamMemberRemoved(e) => {
            let (member, team_name) = (dir.name(&e.professional_id), dir.name(aggregate));
            let threads = if e.leaves_threads {
                ", who left the threads they were on only through it"
            } else {
                ""
            };
            vec![team(format!(
                "{who} removed {member} from {team_name}{threads}"
            ))]
        }
        Payload::TeamMemberContactabilityChanged(e) => {
            let (member, team_name) = (dir.name(&e.professional_id), dir.name(aggregate));
            let how = if e.contactable {
                "contactable"
            } else {
                "not contactable"
            };
            vec![team(format!(
                "{who} made {member} {how} by messages in {team_name}"
            ))]
        }
        Payload::TeamAutoCcSwitched(e) => {
            let team_name = dir.name(aggregate);
            vec![team(format!(
                "{who} switched automatic CC {} for {team_name}",
                on_off(e.enabled)
            ))]
        }
        Payload::TeamAlertsSet(e) => {
            let team_name = dir.name(aggregate);
            vec![team(format!(
                "{who} switched team alerts {} for {team_name}",
                on_off(e.enabled)
            ))]
        }
        Payload::TeamOpenToPatientsSet(e) => {
            let team_name = dir.name(aggregate);
            vec![team(if e.open {
                format!("{who} opened {team_name} to every patient")
            } else {
                format!("{who} closed {team_name} to patients outside it")
            })]
        }
        Payload::TeamDefaultContactSet(e) => {
            let (member, team_name) = (dir.name(&e.professional_id), dir.name(aggregate));
            vec![team(format!(
                "{who} made {member} the default messaging contact of {team_name}"
            ))]
        }
        Payload::TeamJoinCodeIssued(_) => {
            let team_name = dir.name(aggregate);
            vec![team(format!(
                "{who} issued a new join code for {team_name}"
            ))]
        }
        Payload::TeamMemberLeadChanged(e) => {
            let (member, team_name) = (dir.name(&e.professional_id), dir.name(aggregate));
            let how = if e.lead { "a lead" } else { "no longer a lead" };
            vec![team(format!("{who} made {member} {how} of {team_name}"))]
        }

        Payload::PatientRegistered(e) => {
            dir.learn_name(&e.patient_id, &e.name);
            let action = if e.joined_team_id.is_empty() {
                format!("{who} registered the patient {}", e.name)
            } else {
                format!(
                    "{} signed up with {}'s join code",
                    e.name,
                    dir.name(&e.joined_team_id)
                )
            };
            vec![record(aggregate, action)]
        }
        Payload::PatientEmailVerified(e) => {
            let action = if e.request_id.is_empty() {
                // Older logs: staff could claim an address verified.
                format!("{who} marked the patient's email verified")
            } else {
                format!("{who} verified the patient's email address by the link sent to it")
            };
            vec![record(aggregate, action)]
        }
        Payload::PatientEmailChanged(_) => vec![record(
            aggregate,
            format!(
                "{who} changed the patient's email address (unverified until its link is followed)"
            ),
        )],
        Payload::PatientEmailVerificationRequested(_) => vec![record(
            aggregate,
            format!("{who} asked for another verification email"),
        )],
        Payload::PatientDetailsChanged(e) => {
            let identity = e.identity.clone().unwrap_or_default();
            let recorded: Vec<&str> = [
                (!identity.date_of_birth.is_empty()).then_some("date of birth"),
                (!identity.hospital_number.is_empty()).then_some("hospital number"),
                (!identity.nhs_number.is_empty()).then_some("NHS number"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let action = match recorded.as_slice() {
                [] => format!("{who} cleared the patient's date of birth and numbers"),
                [one] => format!("{who} recorded the patient's {one} (any other cleared)"),
                [a, b] => format!("{who} recorded the patient's {a} and {b} (the other cleared)"),
                _ => format!(
                    "{who} recorded the patient's date of birth, hospital number and NHS number"
                ),
            };
            vec![record(aggregate, action)]
        }
        Payload::PatientJoinedTeam(e) => {
            let team_name = dir.name(&e.team_id);
            let action = match JoinMethod::try_from(e.method) {
                Ok(JoinMethod::SelfRegistration) => {
                    format!("{who} joined {team_name} with its join code")
                }
                _ => format!("{who} added the patient to {team_name}"),
            };
            vec![record(aggregate, action)]
        }
        Payload::CarerConsentGranted(e) => {
            let carer = dir.name(&e.carer_id);
            let until = date(e.expires_at.as_ref())
                .map(|d| format!(" until {d}"))
                .unwrap_or_default();
            vec![record(
                aggregate,
                format!(
                    "{who} gave {carer} ({}) consent to the record{until}",
                    relationship(e.relationship)
                ),
            )]
        }
        Payload::CarerConsentRevoked(e) => {
            let carer = dir.name(&e.carer_id);
            vec![record(
                aggregate,
                format!(
                    "{who} revoked {carer}'s consent to the record; {carer}'s access ended: consent revoked"
                ),
            )]
        }
        Payload::RecordAccessGranted(e) => {
            let team_name = dir.name(&e.team_id);
            let until = date(e.expires_at.as_ref())
                .map(|d| format!(" until {d}"))
                .unwrap_or_default();
            vec![record(
                aggregate,
                format!("{who} granted {team_name} access to the record{until}"),
            )]
        }
        Payload::RecordAccessRevoked(e) => {
            let team_name = dir.name(&e.team_id);
            vec![record(
                aggregate,
                format!("{who} ended {team_name}'s access to the record"),
            )]
        }

        Payload::ProfessionalRegistered(e) => {
            dir.learn_name(&e.professional_id, &e.name);
            vec![person(format!(
                "{who} registered {} ({})",
                e.name, e.role_label
            ))]
        }
        Payload::AbsenceRecorded(e) => {
            let until = date(e.until.as_ref()).unwrap_or_default();
            let from = date(e.from.as_ref()).unwrap_or_default();
            let away = dir.name(aggregate);
            let deputy = if e.deputy_id.is_empty() {
                String::new()
            } else {
                format!(", {} standing in", dir.name(&e.deputy_id))
            };
            vec![person(format!(
                "{who} recorded that {away} is away from {from} until {until}{deputy}"
            ))]
        }
        Payload::AbsenceEnded(_) => {
            let away = dir.name(aggregate);
            vec![person(format!("{who} ended {away}'s absence: back early"))]
        }
        Payload::SystemRegistered(e) => {
            dir.learn_name(&e.system_id, &e.name);
            let teams = dir.names(&e.team_ids);
            vec![person(format!(
                "{who} registered the hospital system {}, which may post notices for {teams}",
                e.name
            ))]
        }
        Payload::CarerRegistered(e) => {
            dir.learn_name(&e.carer_id, &e.name);
            vec![person(format!("{who} registered the carer {}", e.name))]
        }
        Payload::StaffRoleGranted(e) => {
            // A professional keeps their registered name.
            if dir.name(&e.person_id) == e.person_id {
                dir.learn_name(&e.person_id, &e.name);
            }
            let role = role_name(e.role);
            if e.bootstrap {
                vec![person(format!(
                    "{who} became the first admin of this deployment"
                ))]
            } else {
                let name = dir.name(&e.person_id);
                vec![person(format!("{who} granted {name} the {role} role"))]
            }
        }
        Payload::StaffRoleRevoked(e) => {
            let name = dir.name(&e.person_id);
            let role = role_name(e.role);
            vec![person(format!("{who} took away {name}'s {role} role"))]
        }
        Payload::PersonEmailChanged(_) => vec![person(format!(
            "{who} changed the email address (unverified until its link is followed)"
        ))],
        Payload::PersonEmailVerificationRequested(_) => {
            vec![person(format!(
                "{who} asked for another verification email"
            ))]
        }
        Payload::PersonEmailVerified(_) => vec![person(format!(
            "{who} verified the email address by the link sent to it"
        ))],
        Payload::PersonDeactivated(e) => {
            let name = dir.name(&e.person_id);
            vec![person(format!(
                "{who} deactivated {name}'s account: {name} left every team and thread, holds no staff role, and can do nothing more"
            ))]
        }
        Payload::PersonReactivated(e) => {
            let name = dir.name(&e.person_id);
            vec![person(format!(
                "{who} reactivated {name}'s account (no team or thread rejoined)"
            ))]
        }

        Payload::IdentityLinked(e) => {
            // On the trail of the person it signs in as (no subject: the
            // provider's id of them is no one else's business).
            let name = dir.name(&e.person_id);
            let how = match proto::events::IdentityProof::try_from(e.proof) {
                Ok(proto::events::IdentityProof::SignUp) => "as they signed up with a team's code",
                _ => "by the link of an email sent to their address",
            };
            let action = format!(
                "{who} linked {name}'s sign-in at {} to their account, {how}",
                e.issuer
            );
            if e.role == proto::events::Role::Patient as i32 {
                vec![record(&e.person_id, action)]
            } else {
                vec![Draft {
                    chain: format!("person/{}", e.person_id),
                    action,
                    ..base.clone()
                }]
            }
        }

        // The trail's own anchors are no entry of it.
        Payload::AuditAnchored(_) => Vec::new(),
        Payload::RecordsViewed(e) => {
            let call = the_call(&e.call).to_string();
            let team_name = if e.team_id.is_empty() {
                String::new()
            } else {
                dir.name(&e.team_id)
            };
            let drafts: Vec<Draft> = e
                .records
                .iter()
                .map(|view| {
                    let threads = view.thread_ids.len();
                    let action = match (call.as_str(), threads) {
                        ("GetThread", _) => format!("{who} opened the thread"),
                        ("GetFilePreview", _) => format!(
                            "{who} saw a preview of an image sent on the thread (SHA-256 {}…)",
                            view.file_digests
                                .iter()
                                .map(|d| d.chars().take(12).collect::<String>())
                                .collect::<Vec<_>>()
                                .join("…, ")
                        ),
                        ("GetFile", _) => {
                            let files: Vec<String> = view
                                .file_digests
                                .iter()
                                .map(|d| d.chars().take(12).collect())
                                .collect();
                            format!(
                                "{who} downloaded a file sent on the thread (SHA-256 {}…)",
                                files.join("…, ")
                            )
                        }
                        ("RecordTrail", _) => format!("{who} read the record's audit trail"),
                        ("ThreadTrail", _) => format!("{who} read the thread's audit trail"),
                        ("PersonTrail", _) => {
                            format!("{who} read a person's audit trail, which shows the record")
                        }
                        ("Export", _) => format!("{who} exported the record's audit trail"),
                        ("ThreadNotifications", _) => {
                            format!("{who} looked up who was told of the thread's messages")
                        }
                        ("WhoCanIMessage", _) => {
                            format!("{who} looked up whom they may message in the record")
                        }
                        ("TeamInbox", n) => format!(
                            "{who} listed {n} thread{} of the record in the {team_name} inbox",
                            plural(n)
                        ),
                        ("NotReadByPatient", n) => format!(
                            "{who} listed {n} thread{} of the record the patient has not read ({team_name})",
                            plural(n)
                        ),
                        ("TeamPatients", _) => format!(
                            "{who} found the patient by name among the {team_name} team's patients"
                        ),
                        ("MyAccount", _) => format!(
                            "{who} looked at the account's details (address, carers, access)"
                        ),
                        ("FindPeople", _) => {
                            format!("{who} found the person by name among everyone registered")
                        }
                        ("FindCarer", _) => {
                            format!("{who} found the carer by their email address, to give consent")
                        }
                        ("MyInbox", n) => format!(
                            "{who} listed {n} thread{} of the record in their inbox",
                            plural(n)
                        ),
                        (other, n) => format!(
                            "{who} viewed {n} thread{} of the record ({other})",
                            plural(n)
                        ),
                    };
                    Draft {
                        kind: Kind::View,
                        call: e.call.clone(),
                        thread_id: match view.thread_ids.as_slice() {
                            [one] => one.clone(),
                            _ => String::new(),
                        },
                        ..record(&view.patient_id, action)
                    }
                })
                .collect();
            if drafts.is_empty() {
                vec![Draft {
                    kind: Kind::View,
                    call: e.call.clone(),
                    chain: format!("person/{}", actor.person_id),
                    action: format!("{who} ran {call}, which showed no record"),
                    ..base.clone()
                }]
            } else {
                drafts
            }
        }
    }
}

/// Who joins a thread, and through which teams (" (through ...)", or "").
fn joining(
    dir: &mut Directory,
    people: &[proto::events::Participant],
    teams: &[String],
) -> (String, String) {
    let names = dir.names(people.iter().map(|p| p.person_id.as_str()));
    let via = if teams.is_empty() {
        String::new()
    } else {
        format!(" (through {})", dir.names(teams))
    };
    (names, via)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn aggregate_token(kind: i32) -> &'static str {
    proto::events::AggregateType::try_from(kind)
        .ok()
        .and_then(|k| k.subject_token())
        .unwrap_or("unknown")
}

/// Describes `events` in order; when names or thread links are missing,
/// `load` fills them and the events are described again. Answers the drafts
/// and what the events taught.
pub async fn describe_all<F, Fut, E>(
    events: &[RecordedEvent],
    mut load: F,
) -> Result<(Vec<Draft>, Directory), E>
where
    F: FnMut(Vec<String>, Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Directory, E>>,
{
    let mut dir = Directory::default();
    let mut drafts: Vec<Draft> = events.iter().flat_map(|e| describe(e, &mut dir)).collect();
    if !dir.missing_names.is_empty() || !dir.missing_threads.is_empty() {
        let names = dir.missing_names.iter().cloned().collect();
        let threads = dir.missing_threads.iter().cloned().collect();
        dir = load(names, threads).await?;
        drafts = events.iter().flat_map(|e| describe(e, &mut dir)).collect();
    }
    Ok((drafts, dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::events::{Actor, Envelope};

    fn event(position: u64, aggregate: &str, payload: Payload) -> RecordedEvent {
        RecordedEvent {
            position,
            envelope: Envelope {
                event_id: format!("e{position}"),
                event_type: payload.event_type().into(),
                aggregate_id: aggregate.into(),
                actor: Some(Actor {
                    person_id: "nina".into(),
                    role: proto::events::Role::Professional as i32,
                    on_behalf_of: String::new(),
                    display_name: "Nina Patel".into(),
                }),
                payload: Some(payload),
                ..Default::default()
            },
        }
    }

    #[test]
    fn thread_events_land_in_the_record_and_name_people() {
        let mut dir = Directory::default();
        dir.names.insert("nina".into(), "Nina Patel".into());
        dir.names.insert("rowan".into(), "Dr Rowan Cole".into());
        dir.names.insert("renal".into(), "Renal Unit".into());
        let started = event(
            1,
            "t1",
            Payload::ThreadStarted(proto::events::ThreadStarted {
                thread_id: "t1".into(),
                patient_id: "pat".into(),
                team_ids: vec!["renal".into()],
                ..Default::default()
            }),
        );
        let assigned = event(
            2,
            "t1",
            Payload::ThreadAssigned(proto::events::ThreadAssigned {
                assignee_id: "rowan".into(),
                previous_assignee_id: String::new(),
            }),
        );
        let d = describe(&started, &mut dir);
        assert_eq!(d[0].chain, "patient/pat");
        assert_eq!(d[0].thread_id, "t1");
        assert_eq!(d[0].action, "Nina Patel started a thread to Renal Unit");
        let d = describe(&assigned, &mut dir);
        assert_eq!(d[0].chain, "patient/pat");
        assert_eq!(
            d[0].action,
            "Nina Patel assigned the thread to Dr Rowan Cole"
        );
        assert!(dir.missing_names.is_empty());
        assert_eq!(dir.learned_threads, vec![("t1".into(), "pat".into())]);
    }

    #[test]
    fn the_registered_name_is_used_not_the_tokens() {
        let mut dir = Directory::default();
        dir.names.insert("nina".into(), "Nina Patel".into());
        dir.thread_records.insert("t1".into(), "pat".into());
        let mut e = event(
            2,
            "t1",
            Payload::ThreadArchived(proto::events::ThreadArchived {}),
        );
        if let Some(actor) = e.envelope.actor.as_mut() {
            actor.display_name = "Dr Rowan Cole".into();
        }
        assert_eq!(
            describe(&e, &mut dir)[0].action,
            "Nina Patel archived the thread"
        );
        // Someone no registration names (an auditor, say): the token's name.
        if let Some(actor) = e.envelope.actor.as_mut() {
            actor.person_id = "officer".into();
            actor.display_name = "Priya Officer".into();
        }
        assert_eq!(
            describe(&e, &mut dir)[0].action,
            "Priya Officer archived the thread"
        );
    }

    #[test]
    fn unknown_ids_are_misses_to_load() {
        let mut dir = Directory::default();
        let e = event(
            3,
            "t9",
            Payload::ThreadArchived(proto::events::ThreadArchived {}),
        );
        let d = describe(&e, &mut dir);
        assert_eq!(d[0].chain, "thread/t9");
        assert!(dir.missing_threads.contains("t9"));
    }

    /// A payload of the named event type, for walking the contract. A new
    /// event type in the proto without an example here fails the test
    /// below: add the example, and make sure `describe` says what it means.
    fn example(event_type: &str) -> Option<Payload> {
        Some(match event_type {
            "ThreadStarted" => Payload::ThreadStarted(Default::default()),
            "MessagePosted" => Payload::MessagePosted(Default::default()),
            "StaffNotePosted" => Payload::StaffNotePosted(Default::default()),
            "ParticipantsAdded" => Payload::ParticipantsAdded(Default::default()),
            "StaffSideJoined" => Payload::StaffSideJoined(Default::default()),
            "ParticipantLeft" => Payload::ParticipantLeft(Default::default()),
            "ThreadAssigned" => Payload::ThreadAssigned(Default::default()),
            "ThreadUnassigned" => Payload::ThreadUnassigned(Default::default()),
            "ThreadCompleted" => Payload::ThreadCompleted(Default::default()),
            "ThreadArchived" => Payload::ThreadArchived(Default::default()),
            "ThreadReopened" => Payload::ThreadReopened(Default::default()),
            "ThreadReadUpTo" => Payload::ThreadReadUpTo(Default::default()),
            "TeamCreated" => Payload::TeamCreated(Default::default()),
            "TeamMemberAdded" => Payload::TeamMemberAdded(Default::default()),
            "TeamMemberRemoved" => Payload::TeamMemberRemoved(Default::default()),
            "TeamMemberContactabilityChanged" => {
                Payload::TeamMemberContactabilityChanged(Default::default())
            }
            "TeamAutoCcSwitched" => Payload::TeamAutoCcSwitched(Default::default()),
            "TeamDefaultContactSet" => Payload::TeamDefaultContactSet(Default::default()),
            "TeamJoinCodeIssued" => Payload::TeamJoinCodeIssued(Default::default()),
            "TeamMemberLeadChanged" => Payload::TeamMemberLeadChanged(Default::default()),
            "TeamOpenToPatientsSet" => Payload::TeamOpenToPatientsSet(Default::default()),
            "TeamAlertsSet" => Payload::TeamAlertsSet(Default::default()),
            "PatientRegistered" => Payload::PatientRegistered(Default::default()),
            "PatientEmailVerified" => Payload::PatientEmailVerified(Default::default()),
            "PatientEmailChanged" => Payload::PatientEmailChanged(Default::default()),
            "PatientDetailsChanged" => Payload::PatientDetailsChanged(Default::default()),
            "PatientEmailVerificationRequested" => {
                Payload::PatientEmailVerificationRequested(Default::default())
            }
            "PatientJoinedTeam" => Payload::PatientJoinedTeam(Default::default()),
            "CarerConsentGranted" => Payload::CarerConsentGranted(Default::default()),
            "CarerConsentRevoked" => Payload::CarerConsentRevoked(Default::default()),
            "RecordAccessGranted" => Payload::RecordAccessGranted(Default::default()),
            "RecordAccessRevoked" => Payload::RecordAccessRevoked(Default::default()),
            "ProfessionalRegistered" => Payload::ProfessionalRegistered(Default::default()),
            "CarerRegistered" => Payload::CarerRegistered(Default::default()),
            "StaffRoleGranted" => Payload::StaffRoleGranted(Default::default()),
            "StaffRoleRevoked" => Payload::StaffRoleRevoked(Default::default()),
            "PersonEmailChanged" => Payload::PersonEmailChanged(Default::default()),
            "PersonEmailVerificationRequested" => {
                Payload::PersonEmailVerificationRequested(Default::default())
            }
            "PersonEmailVerified" => Payload::PersonEmailVerified(Default::default()),
            "PersonDeactivated" => Payload::PersonDeactivated(Default::default()),
            "PersonReactivated" => Payload::PersonReactivated(Default::default()),
            "SystemRegistered" => Payload::SystemRegistered(Default::default()),
            "AbsenceRecorded" => Payload::AbsenceRecorded(Default::default()),
            "AbsenceEnded" => Payload::AbsenceEnded(Default::default()),
            "RecordsViewed" => Payload::RecordsViewed(Default::default()),
            "IdentityLinked" => Payload::IdentityLinked(Default::default()),
            _ => return None,
        })
    }

    #[test]
    fn every_event_type_of_the_contract_has_an_audit_entry() {
        use prost::Message;
        let fds = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
        let envelope = fds
            .file
            .iter()
            .filter(|f| f.package() == "careline.events.v1")
            .flat_map(|f| f.message_type.iter())
            .find(|m| m.name() == "Envelope")
            .unwrap();
        let payload = envelope
            .oneof_decl
            .iter()
            .position(|o| o.name() == "payload")
            .unwrap() as i32;
        let types: Vec<String> = envelope
            .field
            .iter()
            .filter(|f| f.oneof_index == Some(payload))
            .map(|f| f.type_name().rsplit('.').next().unwrap().to_string())
            .collect();
        assert!(types.len() >= 28);
        let mut unmapped = Vec::new();
        for t in &types {
            // The trail's own anchors in the log are not entries of it.
            if t == "AuditAnchored" {
                continue;
            }
            let Some(payload) = example(t) else {
                unmapped.push(t.clone());
                continue;
            };
            let mut payload = payload;
            if let Payload::RecordsViewed(v) = &mut payload {
                v.records.push(proto::events::RecordView {
                    patient_id: "pat".into(),
                    thread_ids: vec!["t1".into()],
                    file_digests: vec![],
                });
            }
            let drafts = describe(&event(1, "agg", payload), &mut Directory::default());
            assert!(!drafts.is_empty(), "{t} has no audit entry");
            for d in drafts {
                assert_eq!(d.event_type, *t);
                assert!(d.action.starts_with("Nina Patel "), "{t}: {}", d.action);
                assert!(!d.action.contains("not described"), "{t}: {}", d.action);
                assert!(!d.chain.is_empty());
            }
        }
        assert!(
            unmapped.is_empty(),
            "event types without an audit mapping: {unmapped:?}"
        );
    }
}
