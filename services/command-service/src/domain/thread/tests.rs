//! Given/when/then tests of every thread rule.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proto::events::{
    CarerConsentGranted, CarerConsentRevoked, CarerRegistered, JoinMethod, PatientJoinedTeam,
    PatientRegistered, PersonDeactivated, PersonReactivated, ProfessionalRegistered,
    RecordAccessGranted, TeamAutoCcSwitched, TeamCreated, TeamDefaultContactSet, TeamMemberAdded,
    TeamMemberRemoved,
};

use super::*;
use crate::domain::testing::*;
use crate::domain::{Person, Team};

/// The seeds' world: a renal team with automatic CC (two contactable nurses,
/// a consultant who is not contactable, a lead), a nutrition team reached
/// through its default contact (a dietitian), a PALS team holding a
/// record-access grant, a specialist in no team, a patient in the renal and
/// nutrition teams, and her carer with consent.
struct World {
    admin: Actor,
    patient: Actor,
    carer: Actor,
    nurse: Actor,
    nurse2: Actor,
    consultant: Actor,
    lead: Actor,
    dietitian: Actor,
    specialist: Actor,
    pals_officer: Actor,
    stranger: Actor,
    renal: String,
    nutrition: String,
    pals: String,
    empty_team: String,
    record: PatientRecord,
    teams: HashMap<String, Team>,
    people: HashMap<String, Person>,
}

fn team(
    admin: &Actor,
    id: &str,
    name: &str,
    auto_cc: bool,
    members: &[(&Actor, bool, bool)],
    default: Option<&Actor>,
) -> Team {
    let mut events = vec![Payload::TeamCreated(TeamCreated {
        team_id: id.into(),
        name: name.into(),
        description: String::new(),
    })];
    for (member, contactable, lead) in members {
        events.push(Payload::TeamMemberAdded(TeamMemberAdded {
            professional_id: member.person_id.clone(),
            contactable: *contactable,
            lead: *lead,
        }));
    }
    if auto_cc {
        events.push(Payload::TeamAutoCcSwitched(TeamAutoCcSwitched {
            enabled: true,
        }));
    }
    if let Some(d) = default {
        events.push(Payload::TeamDefaultContactSet(TeamDefaultContactSet {
            professional_id: d.person_id.clone(),
        }));
    }
    given(admin, events)
}

fn world() -> World {
    let admin = person(Role::Admin, "Ada Admin");
    let patient = person(Role::Patient, "Pat Patel");
    let carer = person(Role::Carer, "Paul Patel");
    let nurse = person(Role::Professional, "Nina Nurse");
    let nurse2 = person(Role::Professional, "Ned Nurse");
    let consultant = person(Role::Professional, "Dr Cole");
    let lead = person(Role::Professional, "Lena Lead");
    let dietitian = person(Role::Professional, "Susan Turner");
    let specialist = person(Role::Professional, "Dr Spec");
    let pals_officer = person(Role::Professional, "Pam Pals");
    let stranger = person(Role::Professional, "Dr Stranger");
    let (renal, nutrition, pals, empty_team) = (new_id(), new_id(), new_id(), new_id());

    let mut teams = HashMap::new();
    teams.insert(
        renal.clone(),
        team(
            &admin,
            &renal,
            "Renal",
            true,
            &[
                (&nurse, true, false),
                (&nurse2, true, false),
                (&consultant, false, false),
                (&lead, true, true),
            ],
            None,
        ),
    );
    teams.insert(
        nutrition.clone(),
        team(
            &admin,
            &nutrition,
            "Nutrition",
            false,
            &[(&dietitian, true, false)],
            Some(&dietitian),
        ),
    );
    teams.insert(
        pals.clone(),
        team(
            &admin,
            &pals,
            "PALS",
            false,
            &[(&pals_officer, true, false)],
            Some(&pals_officer),
        ),
    );
    teams.insert(
        empty_team.clone(),
        team(
            &admin,
            &empty_team,
            "Physio",
            false,
            &[(&stranger, false, false)],
            None,
        ),
    );

    let mut people = HashMap::new();
    for p in [
        &nurse,
        &nurse2,
        &consultant,
        &lead,
        &dietitian,
        &specialist,
        &pals_officer,
        &stranger,
    ] {
        people.insert(
            p.person_id.clone(),
            given::<Person>(
                &admin,
                [Payload::ProfessionalRegistered(ProfessionalRegistered {
                    professional_id: p.person_id.clone(),
                    name: p.name.clone(),
                    role_label: "Nurse".into(),
                    work_email: "x@nhs.net".into(),
                    work_email_unverified: false,
                })],
            ),
        );
    }
    people.insert(
        carer.person_id.clone(),
        given::<Person>(
            &admin,
            [Payload::CarerRegistered(CarerRegistered {
                carer_id: carer.person_id.clone(),
                name: carer.name.clone(),
                email: "paul@example.org".into(),
                email_verified: true,
            })],
        ),
    );

    let record: PatientRecord = given(
        &admin,
        [
            Payload::PatientRegistered(PatientRegistered {
                patient_id: patient.person_id.clone(),
                name: patient.name.clone(),
                email: "pat@example.org".into(),
                email_verified: true,
                joined_team_id: String::new(),
                identity: None,
            }),
            Payload::PatientJoinedTeam(PatientJoinedTeam {
                team_id: renal.clone(),
                method: JoinMethod::AddedByStaff as i32,
            }),
            Payload::PatientJoinedTeam(PatientJoinedTeam {
                team_id: nutrition.clone(),
                method: JoinMethod::SelfRegistration as i32,
            }),
            Payload::CarerConsentGranted(CarerConsentGranted {
                carer_id: carer.person_id.clone(),
                relationship: proto::events::CarerRelationship::FamilyMember as i32,
                expires_at: None,
            }),
            Payload::RecordAccessGranted(RecordAccessGranted {
                grant_id: new_id(),
                team_id: pals.clone(),
                expires_at: Some((SystemTime::now() + Duration::from_secs(86400)).into()),
                reason: "complaint".into(),
            }),
        ],
    );
    World {
        admin,
        patient,
        carer,
        nurse,
        nurse2,
        consultant,
        lead,
        dietitian,
        specialist,
        pals_officer,
        stranger,
        renal,
        nutrition,
        pals,
        empty_team,
        record,
        teams,
        people,
    }
}

impl World {
    /// The context the service would load for `needs`.
    fn ctx(&self, actor: &Actor, needs: &Needs) -> Context {
        let mut ctx = Context::new(actor.clone(), SystemTime::now());
        if needs.record.is_some() {
            ctx.record = Some(Arc::new(self.record.clone()));
        }
        let mut team_ids = needs.teams.clone();
        if needs.record_teams {
            team_ids.extend(self.record.all_team_ids());
        }
        // As the store's membership hints would: every team the person is in.
        for person in &needs.teams_of {
            team_ids.extend(
                self.teams
                    .iter()
                    .filter(|(_, t)| t.members.contains_key(person))
                    .map(|(id, _)| id.clone()),
            );
        }
        for id in team_ids {
            if let Some(t) = self.teams.get(&id) {
                ctx.teams.insert(id, Arc::new(t.clone()));
            }
        }
        let mut people = needs.people.clone();
        if needs.members {
            for id in &needs.teams {
                if let Some(t) = self.teams.get(id) {
                    people.extend(t.contactable_members().cloned());
                    people.extend(t.default_contact.iter().cloned());
                }
            }
        }
        for id in &people {
            if let Some(p) = self.people.get(id) {
                ctx.people.insert(id.clone(), Arc::new(p.clone()));
            }
        }
        ctx.actor_closed_at = self
            .people
            .get(&actor.person_id)
            .and_then(|p| p.deactivated_at);
        ctx
    }

    /// An admin removes `who` from `team`.
    fn remove_member(&mut self, team: &str, who: &Actor) {
        let event = envelope(
            &self.admin,
            Payload::TeamMemberRemoved(TeamMemberRemoved {
                professional_id: who.person_id.clone(),
                default_contact_cleared: false,
                leaves_threads: true,
            }),
        );
        self.teams.get_mut(team).unwrap().evolve(&event);
    }

    /// An admin adds `who` to `team`, contactable.
    fn add_member(&mut self, team: &str, who: &Actor) {
        let event = envelope(
            &self.admin,
            Payload::TeamMemberAdded(TeamMemberAdded {
                professional_id: who.person_id.clone(),
                contactable: true,
                lead: false,
            }),
        );
        self.teams.get_mut(team).unwrap().evolve(&event);
    }

    /// An admin closes (or opens again) `who`'s account.
    fn set_account(&mut self, who: &Actor, open: bool) {
        let id = who.person_id.clone();
        let payload = if open {
            Payload::PersonReactivated(PersonReactivated { person_id: id })
        } else {
            Payload::PersonDeactivated(PersonDeactivated { person_id: id })
        };
        let event = envelope(&self.admin, payload);
        self.people.get_mut(&who.person_id).unwrap().evolve(&event);
    }

    fn add_by_name(&self, thread: &mut Thread, by: &Actor, who: &Actor) {
        self.apply(
            thread,
            by,
            &AddParticipants {
                thread_id: new_id(),
                recipients: vec![Recipient::Professional(who.person_id.clone())],
                carer_ids: vec![],
                staff_side: false,
            },
        );
    }

    fn run<C: Command<Target = Thread>>(
        &self,
        thread: &Thread,
        actor: &Actor,
        cmd: &C,
    ) -> Result<Payload, DomainError> {
        let mut needs = cmd.needs(thread, actor);
        let more = cmd.more_needs(thread, &self.ctx(actor, &needs));
        // As the service does: what the second look names, loaded too.
        needs.record = needs.record.or(more.record);
        needs.record_teams |= more.record_teams;
        needs.teams.extend(more.teams);
        needs.people.extend(more.people);
        needs.teams_of.extend(more.teams_of);
        needs.members |= more.members;
        cmd.decide(thread, &self.ctx(actor, &needs))
    }

    /// Runs a command that must succeed and applies its event.
    #[track_caller]
    fn apply<C: Command<Target = Thread>>(
        &self,
        thread: &mut Thread,
        actor: &Actor,
        cmd: &C,
    ) -> Payload {
        let payload = self
            .run(thread, actor, cmd)
            .unwrap_or_else(|e| panic!("refused: {e}"));
        thread.evolve(&envelope(actor, payload.clone()));
        payload
    }

    fn start(&self, recipients: Vec<Recipient>, carers: Vec<String>) -> StartThread {
        StartThread {
            attachments: vec![],
            thread_id: new_id(),
            patient_id: self.patient.person_id.clone(),
            subject: "Fluid limits before dialysis".into(),
            body: "How much can I drink on Sunday?".into(),
            message_id: new_id(),
            recipients,
            carer_ids: carers,
        }
    }

    /// The seeds' thread: the patient writes to the renal team (auto-CC),
    /// copying in her carer.
    fn thread(&self) -> Thread {
        let mut thread = Thread::default();
        self.apply(
            &mut thread,
            &self.patient,
            &self.start(
                vec![Recipient::Team(self.renal.clone())],
                vec![self.carer.person_id.clone()],
            ),
        );
        thread
    }

    fn post(&self) -> PostMessage {
        PostMessage {
            attachments: vec![],
            thread_id: new_id(),
            message_id: new_id(),
            body: "Thank you".into(),
            mention_ids: vec![],
        }
    }
}

fn ids(payload: &Payload) -> Vec<(String, JoinReason)> {
    let people = match payload {
        Payload::ThreadStarted(e) => &e.participants,
        Payload::ParticipantsAdded(e) => &e.participants,
        other => panic!("no participants in {other:?}"),
    };
    people
        .iter()
        .map(|p| (p.person_id.clone(), p.reason()))
        .collect()
}

#[test]
fn a_patient_writing_to_an_auto_cc_team_adds_every_contactable_member_in_one_event() {
    let w = world();
    let mut thread = Thread::default();
    let event = w.apply(
        &mut thread,
        &w.patient,
        &w.start(
            vec![Recipient::Team(w.renal.clone())],
            vec![w.carer.person_id.clone()],
        ),
    );
    let people = ids(&event);
    assert!(people.contains(&(w.patient.person_id.clone(), JoinReason::Author)));
    for member in [&w.nurse, &w.nurse2, &w.lead] {
        assert!(
            people.contains(&(member.person_id.clone(), JoinReason::TeamAutoCc)),
            "{} missing",
            member.name
        );
    }
    assert!(people.contains(&(w.carer.person_id.clone(), JoinReason::Cc)));
    assert!(
        !people.iter().any(|(p, _)| *p == w.consultant.person_id),
        "a non-contactable member was added"
    );
    assert_eq!(people.len(), 5, "{people:?}");
    let Payload::ThreadStarted(started) = &event else {
        unreachable!()
    };
    assert_eq!(started.team_ids, vec![w.renal.clone()]);
    assert!(thread.is_active(&w.nurse.person_id));
}

#[test]
fn members_of_an_auto_cc_team_cannot_be_addressed_one_by_one() {
    let w = world();
    for actor in [&w.patient, &w.dietitian] {
        let start = w.start(
            vec![Recipient::Professional(w.nurse.person_id.clone())],
            vec![],
        );
        assert_refused(
            w.run(&Thread::default(), actor, &start),
            "precondition",
            "is reached through team Renal, which has automatic CC: address team Renal",
        );
    }
}

#[test]
fn a_team_without_auto_cc_is_reached_through_its_default_contact() {
    let w = world();
    let mut thread = Thread::default();
    let event = w.apply(
        &mut thread,
        &w.patient,
        &w.start(vec![Recipient::Team(w.nutrition.clone())], vec![]),
    );
    assert!(ids(&event).contains(&(
        w.dietitian.person_id.clone(),
        JoinReason::TeamDefaultContact
    )));

    // A team with neither automatic CC nor a default contact cannot be addressed.
    let start = w.start(vec![Recipient::Team(w.empty_team.clone())], vec![]);
    assert_refused(
        w.run(&Thread::default(), &w.nurse, &start),
        "precondition",
        "neither automatic CC nor a default messaging contact",
    );
}

#[test]
fn patients_address_only_their_teams_and_their_contactable_professionals() {
    let w = world();
    let to = |r: Recipient| w.start(vec![r], vec![]);
    // PALS holds a grant to the record in force: the patient may write to it.
    assert!(
        w.run(
            &Thread::default(),
            &w.patient,
            &to(Recipient::Team(w.pals.clone()))
        )
        .is_ok()
    );
    // Without the grant, PALS is neither the patient's team nor open to them...
    let mut without = world();
    without.record.grants.clear();
    let to_pals = without.start(vec![Recipient::Team(without.pals.clone())], vec![]);
    for who in [&without.patient, &without.carer] {
        assert_refused(
            without.run(&Thread::default(), who, &to_pals),
            "denied",
            "PALS is none of them",
        );
    }
    // ...until an admin opens PALS to every patient.
    without
        .teams
        .get_mut(&without.pals)
        .unwrap()
        .open_to_patients = true;
    for who in [&without.patient, &without.carer] {
        assert!(without.run(&Thread::default(), who, &to_pals).is_ok());
    }
    assert_refused(
        w.run(
            &Thread::default(),
            &w.patient,
            &to(Recipient::Professional(w.specialist.person_id.clone())),
        ),
        "denied",
        "contactable by messages",
    );
    // The dietitian is a contactable member of one of the patient's teams.
    assert!(
        w.run(
            &Thread::default(),
            &w.patient,
            &to(Recipient::Professional(w.dietitian.person_id.clone()))
        )
        .is_ok()
    );
    assert_refused(
        w.run(&Thread::default(), &w.patient, &w.start(vec![], vec![])),
        "invalid",
        "recipients",
    );
    // Staff may address anyone registered, including non-contactable clinicians.
    assert!(
        w.run(
            &Thread::default(),
            &w.nurse,
            &to(Recipient::Professional(w.specialist.person_id.clone()))
        )
        .is_ok()
    );
    assert!(
        w.run(&Thread::default(), &w.nurse, &w.start(vec![], vec![]))
            .is_ok(),
        "staff may write to the patient alone"
    );
}

#[test]
fn who_may_start_a_thread_in_a_record() {
    let w = world();
    let start = w.start(vec![Recipient::Team(w.renal.clone())], vec![]);
    for ok in [&w.patient, &w.carer, &w.nurse, &w.pals_officer] {
        assert!(
            w.run(&Thread::default(), ok, &start).is_ok(),
            "{} was refused",
            ok.name
        );
    }
    let other_patient = person(Role::Patient, "Other Patient");
    assert_refused(
        w.run(&Thread::default(), &other_patient, &start),
        "denied",
        "own record",
    );
    assert_refused(
        w.run(&Thread::default(), &w.specialist, &start),
        "denied",
        "care teams",
    );
    assert_refused(
        w.run(&Thread::default(), &w.admin, &start),
        "denied",
        "admin role",
    );

    // Without consent, a carer neither starts a thread nor is copied in.
    let mut w2 = world();
    w2.record.evolve(&envelope(
        &w2.patient,
        Payload::CarerConsentRevoked(CarerConsentRevoked {
            carer_id: w2.carer.person_id.clone(),
        }),
    ));
    assert_refused(
        w2.run(&Thread::default(), &w2.carer, &start),
        "denied",
        "consent is in force",
    );
    let cc = w2.start(
        vec![Recipient::Team(w2.renal.clone())],
        vec![w2.carer.person_id.clone()],
    );
    assert_refused(
        w2.run(&Thread::default(), &w2.patient, &cc),
        "denied",
        "does not hold the patient's consent",
    );
}

#[test]
fn a_member_of_any_automatic_cc_team_is_addressed_through_it_not_by_name() {
    let mut w = world();
    let ward = new_id();
    let ward_of = |w: &World, members: &[(&Actor, bool, bool)]| {
        team(&w.admin, &ward, "Cardiology Ward", true, members, None)
    };
    let contactable = ward_of(&w, &[(&w.specialist, true, false)]);
    w.teams.insert(ward.clone(), contactable);
    let by_name = w.start(
        vec![
            Recipient::Team(w.renal.clone()),
            Recipient::Professional(w.specialist.person_id.clone()),
        ],
        vec![],
    );
    // The ward has nothing to do with Pat's record or the thread: the rule
    // holds all the same, naming the team to address instead.
    assert_refused(
        w.run(&Thread::default(), &w.nurse, &by_name),
        "precondition",
        "reached through team Cardiology Ward",
    );
    // Addressed through the ward, everyone contactable in it comes.
    let through_ward = w.start(
        vec![
            Recipient::Team(w.renal.clone()),
            Recipient::Team(ward.clone()),
        ],
        vec![],
    );
    assert!(w.run(&Thread::default(), &w.nurse, &through_ward).is_ok());
    // Not contactable in the ward, the clinician is added by name
    // (escalation).
    let not_contactable = ward_of(
        &w,
        &[(&w.specialist, false, false), (&w.stranger, true, false)],
    );
    w.teams.insert(ward.clone(), not_contactable);
    assert!(w.run(&Thread::default(), &w.nurse, &by_name).is_ok());
}

#[test]
fn a_thread_is_started_once() {
    let w = world();
    let thread = w.thread();
    let again = w.start(vec![Recipient::Team(w.renal.clone())], vec![]);
    assert_refused(
        w.run(&thread, &w.patient, &again),
        "precondition",
        "already exists",
    );
    // Someone not on it is not told that it exists.
    assert_refused(
        w.run(&thread, &w.specialist, &again),
        "invalid",
        "choose a new id",
    );
}

#[test]
fn any_message_reopens_an_archived_thread_and_a_patient_side_one_a_completed_thread() {
    let w = world();
    let mut thread = w.thread();
    let post = w.post();
    assert!(
        matches!(w.apply(&mut thread, &w.nurse, &post), Payload::MessagePosted(m) if !m.reopened)
    );
    w.apply(
        &mut thread,
        &w.nurse,
        &ChangeStatus {
            thread_id: new_id(),
            change: StatusChange::Archive,
        },
    );
    assert_eq!(thread.status, Status::Archived);

    // Staff writing on an archived thread reopen it: the patient is told
    // of a message they can find in the active inbox.
    assert!(
        matches!(w.apply(&mut thread, &w.nurse, &w.post()), Payload::MessagePosted(m) if m.reopened)
    );
    assert_eq!(thread.status, Status::Open);
    let archive = ChangeStatus {
        thread_id: new_id(),
        change: StatusChange::Archive,
    };
    w.apply(&mut thread, &w.nurse, &archive);
    // So does the patient's (or a carer's) reply.
    assert!(
        matches!(w.apply(&mut thread, &w.patient, &w.post()), Payload::MessagePosted(m) if m.reopened)
    );
    assert_eq!(thread.status, Status::Open);
    let complete = ChangeStatus {
        thread_id: new_id(),
        change: StatusChange::Complete,
    };
    w.apply(&mut thread, &w.nurse, &complete);
    // A completed thread: staff may write a closing word without reopening it...
    assert!(
        matches!(w.apply(&mut thread, &w.nurse, &w.post()), Payload::MessagePosted(m) if !m.reopened)
    );
    assert_eq!(thread.status, Status::Completed);
    // ...and the patient's side reopens it.
    assert!(
        matches!(w.apply(&mut thread, &w.carer, &w.post()), Payload::MessagePosted(m) if m.reopened)
    );
    assert_eq!(thread.status, Status::Open);
}

#[test]
fn only_current_participants_post() {
    let w = world();
    let mut thread = w.thread();
    // No relation at all: the thread does not exist for them.
    assert_refused(
        w.run(&thread, &w.specialist, &w.post()),
        "not found",
        "does not exist",
    );
    assert_refused(
        w.run(&thread, &person(Role::Patient, "Other"), &w.post()),
        "not found",
        "does not exist",
    );
    // A member of the addressed team who is not on it (the consultant) must join first.
    assert_refused(
        w.run(&thread, &w.consultant, &w.post()),
        "denied",
        "add yourself",
    );
    // Someone who left cannot post.
    w.apply(
        &mut thread,
        &w.nurse2,
        &LeaveThread {
            thread_id: new_id(),
        },
    );
    assert_refused(w.run(&thread, &w.nurse2, &w.post()), "denied", "you left");
}

#[test]
fn revoking_consent_ends_a_carers_participation_from_then_on() {
    let mut w = world();
    let thread = w.thread();
    assert!(w.run(&thread, &w.carer, &w.post()).is_ok());
    w.record.evolve(&envelope(
        &w.patient,
        Payload::CarerConsentRevoked(CarerConsentRevoked {
            carer_id: w.carer.person_id.clone(),
        }),
    ));
    assert_refused(
        w.run(&thread, &w.carer, &w.post()),
        "denied",
        "consent for you is no longer in force",
    );
    let message = thread.messages[0].clone();
    assert_refused(
        w.run(
            &thread,
            &w.carer,
            &MarkRead {
                thread_id: new_id(),
                message_id: message,
            },
        ),
        "denied",
        "no longer in force",
    );
    // The history stays: the carer is still recorded on the thread.
    assert!(thread.participants.contains_key(&w.carer.person_id));
}

#[test]
fn a_new_consent_does_not_put_a_carer_back_on_threads_they_were_on() {
    let mut w = world();
    let mut thread = w.thread();
    let revoke = envelope(
        &w.patient,
        Payload::CarerConsentRevoked(CarerConsentRevoked {
            carer_id: w.carer.person_id.clone(),
        }),
    );
    w.record.evolve(&revoke);
    std::thread::sleep(Duration::from_millis(2));
    w.record.evolve(&envelope(
        &w.patient,
        Payload::CarerConsentGranted(CarerConsentGranted {
            carer_id: w.carer.person_id.clone(),
            relationship: proto::events::CarerRelationship::FamilyMember as i32,
            expires_at: None,
        }),
    ));
    // Consent is in force again, but the participation ended with the old one.
    assert_refused(
        w.run(&thread, &w.carer, &w.post()),
        "denied",
        "ended with the consent you joined under",
    );
    assert!(!thread.takes_part(&w.carer.person_id, Some(&w.record), SystemTime::now()));
    // Re-adding is an explicit step; then they take part again.
    let again = AddParticipants {
        thread_id: new_id(),
        recipients: vec![],
        carer_ids: vec![w.carer.person_id.clone()],
        staff_side: false,
    };
    let event = w.apply(&mut thread, &w.patient, &again);
    assert_eq!(
        ids(&event),
        vec![(w.carer.person_id.clone(), JoinReason::Cc)]
    );
    assert!(w.run(&thread, &w.carer, &w.post()).is_ok());
}

#[test]
fn an_expired_consent_ends_participation_and_a_renewal_after_it_does_not_restore_it() {
    let mut w = world();
    let thread = w.thread();
    let soon = SystemTime::now() + Duration::from_millis(5);
    // Renewed while in force, with an end: the same consent goes on.
    w.record.evolve(&envelope(
        &w.patient,
        Payload::CarerConsentGranted(CarerConsentGranted {
            carer_id: w.carer.person_id.clone(),
            relationship: proto::events::CarerRelationship::FamilyMember as i32,
            expires_at: Some(soon.into()),
        }),
    ));
    assert!(w.run(&thread, &w.carer, &w.post()).is_ok());
    std::thread::sleep(Duration::from_millis(10));
    assert_refused(
        w.run(&thread, &w.carer, &w.post()),
        "denied",
        "no longer in force",
    );
    // Granted again after the gap: a new consent; the old part stays ended.
    w.record.evolve(&envelope(
        &w.patient,
        Payload::CarerConsentGranted(CarerConsentGranted {
            carer_id: w.carer.person_id.clone(),
            relationship: proto::events::CarerRelationship::FamilyMember as i32,
            expires_at: None,
        }),
    ));
    assert_refused(
        w.run(&thread, &w.carer, &w.post()),
        "denied",
        "ended with the consent you joined under",
    );
}

#[test]
fn professionals_add_specialists_and_second_line_teams() {
    let w = world();
    let mut thread = w.thread();
    let add = AddParticipants {
        thread_id: new_id(),
        recipients: vec![
            Recipient::Professional(w.specialist.person_id.clone()),
            Recipient::Team(w.nutrition.clone()),
        ],
        carer_ids: vec![],
        staff_side: false,
    };
    let event = w.apply(&mut thread, &w.nurse, &add);
    let people = ids(&event);
    assert!(people.contains(&(w.specialist.person_id.clone(), JoinReason::Added)));
    assert!(people.contains(&(
        w.dietitian.person_id.clone(),
        JoinReason::TeamDefaultContact
    )));
    assert!(thread.teams.contains(&w.nutrition));

    // Everyone named is already there.
    assert_refused(
        w.run(&thread, &w.nurse, &add),
        "precondition",
        "already on the thread",
    );
    // Contactable auto-CC members are not added one by one here either.
    let one_by_one = AddParticipants {
        thread_id: new_id(),
        recipients: vec![Recipient::Professional(w.nurse2.person_id.clone())],
        carer_ids: vec![],
        staff_side: false,
    };
    assert_refused(
        w.run(&thread, &w.nurse, &one_by_one),
        "precondition",
        "automatic CC",
    );
}

#[test]
fn staff_escalate_to_a_clinician_who_is_not_contactable_by_patients() {
    let w = world();
    let mut thread = w.thread();
    let escalate = AddParticipants {
        thread_id: new_id(),
        recipients: vec![Recipient::Professional(w.consultant.person_id.clone())],
        carer_ids: vec![],
        staff_side: false,
    };
    let event = w.apply(&mut thread, &w.nurse, &escalate);
    assert_eq!(
        ids(&event),
        vec![(w.consultant.person_id.clone(), JoinReason::Added)]
    );
    // A patient cannot address that clinician directly.
    let start = w.start(
        vec![Recipient::Professional(w.consultant.person_id.clone())],
        vec![],
    );
    assert_refused(
        w.run(&Thread::default(), &w.patient, &start),
        "denied",
        "contactable by messages",
    );
}

#[test]
fn who_may_add_participants() {
    let w = world();
    let thread = w.thread();
    let add = AddParticipants {
        thread_id: new_id(),
        recipients: vec![Recipient::Professional(w.specialist.person_id.clone())],
        carer_ids: vec![],
        staff_side: false,
    };
    // A member of an addressed team who is not on the thread may (e.g. to join).
    let join = AddParticipants {
        thread_id: new_id(),
        recipients: vec![Recipient::Team(w.renal.clone())],
        carer_ids: vec![],
        staff_side: false,
    };
    assert_refused(
        w.run(&thread, &w.consultant, &join),
        "precondition",
        "already on the thread",
    );
    assert!(w.run(&thread, &w.consultant, &add).is_ok());
    // A member of a team holding a record-access grant may invite clinicians.
    assert!(w.run(&thread, &w.pals_officer, &add).is_ok());
    // Not the dietitian's team, no grant, not on it: the thread does not exist.
    assert_refused(
        w.run(&thread, &w.dietitian, &add),
        "not found",
        "does not exist",
    );
    // The patient adds carers, not staff.
    assert_refused(
        w.run(&thread, &w.patient, &add),
        "denied",
        "a patient adds carers",
    );
    // Carers cannot add anyone.
    assert_refused(
        w.run(&thread, &w.carer, &add),
        "denied",
        "participants are added by professionals",
    );
}

#[test]
fn leaving_removes_only_the_caller_and_the_team_does_not_bring_them_back() {
    let w = world();
    let mut thread = w.thread();
    let event = w.apply(
        &mut thread,
        &w.nurse2,
        &LeaveThread {
            thread_id: new_id(),
        },
    );
    assert!(
        matches!(event, Payload::ParticipantLeft(ref e) if e.person_id == w.nurse2.person_id && !e.unassigned)
    );
    assert!(!thread.is_active(&w.nurse2.person_id));
    assert!(thread.is_active(&w.nurse.person_id) && thread.is_active(&w.lead.person_id));

    // Re-addressing the team later adds nobody who left.
    let readd = AddParticipants {
        thread_id: new_id(),
        recipients: vec![Recipient::Team(w.renal.clone())],
        carer_ids: vec![],
        staff_side: false,
    };
    assert_refused(
        w.run(&thread, &w.nurse, &readd),
        "precondition",
        "already on the thread",
    );
    // Someone on it adds them back by name, though the team has automatic
    // CC: bringing back is not picking one member out of the team.
    let mut back = thread.clone();
    w.add_by_name(&mut back, &w.nurse, &w.nurse2);
    w.run(&back, &w.nurse2, &w.post()).unwrap();
    // A member who was never on it is still reached only through the team.
    let mut fresh = w.thread();
    w.apply(
        &mut fresh,
        &w.nurse2,
        &LeaveThread {
            thread_id: new_id(),
        },
    );
    let mut w2 = w;
    let newcomer = person(Role::Professional, "Nell New");
    w2.people.insert(
        newcomer.person_id.clone(),
        w2.people[&w2.nurse.person_id].clone(),
    );
    let renal = w2.renal.clone();
    w2.add_member(&renal, &newcomer);
    let name_newcomer = AddParticipants {
        thread_id: new_id(),
        recipients: vec![Recipient::Professional(newcomer.person_id.clone())],
        carer_ids: vec![],
        staff_side: false,
    };
    assert_refused(
        w2.run(&fresh, &w2.nurse, &name_newcomer),
        "precondition",
        "automatic CC",
    );
    let w = w2;
    // The patient never leaves their own record's thread.
    assert_refused(
        w.run(
            &thread,
            &w.patient,
            &LeaveThread {
                thread_id: new_id(),
            },
        ),
        "precondition",
        "cannot leave",
    );
    assert_refused(
        w.run(
            &thread,
            &w.nurse2,
            &LeaveThread {
                thread_id: new_id(),
            },
        ),
        "precondition",
        "not on this thread",
    );
}

#[test]
fn the_assignee_leaving_unassigns_the_thread_in_the_same_event() {
    let w = world();
    let mut thread = w.thread();
    w.apply(
        &mut thread,
        &w.nurse,
        &AssignThread {
            thread_id: new_id(),
            assignee_id: w.nurse.person_id.clone(),
            if_assignee: None,
        },
    );
    let event = w.apply(
        &mut thread,
        &w.nurse,
        &LeaveThread {
            thread_id: new_id(),
        },
    );
    assert!(matches!(event, Payload::ParticipantLeft(ref e) if e.unassigned));
    assert_eq!(thread.assignee, None);
}

#[test]
fn an_assignment_from_a_page_that_showed_another_assignee_is_refused_as_stale() {
    let w = world();
    let mut thread = w.thread();
    // Ned's page showed the thread unassigned; Nina took it meanwhile.
    w.apply(
        &mut thread,
        &w.nurse,
        &AssignThread {
            thread_id: new_id(),
            assignee_id: w.nurse.person_id.clone(),
            if_assignee: Some(String::new()),
        },
    );
    let ned_takes = |shown: &str| AssignThread {
        thread_id: new_id(),
        assignee_id: w.nurse2.person_id.clone(),
        if_assignee: Some(shown.to_string()),
    };
    assert_refused(
        w.run(&thread, &w.nurse2, &ned_takes("")),
        "stale",
        &format!("assigned to {} since you looked", w.nurse.person_id),
    );
    // Told, he takes it over knowingly: his page now shows Nina.
    let event = w.apply(&mut thread, &w.nurse2, &ned_takes(&w.nurse.person_id));
    assert!(
        matches!(event, Payload::ThreadAssigned(ref e) if e.previous_assignee_id == w.nurse.person_id)
    );
}

#[test]
fn assignment_to_yourself_or_by_a_lead_to_a_colleague_on_the_thread() {
    let w = world();
    let mut thread = w.thread();
    let assign = |to: &Actor| AssignThread {
        thread_id: new_id(),
        assignee_id: to.person_id.clone(),
        if_assignee: None,
    };
    w.apply(&mut thread, &w.nurse, &assign(&w.nurse));
    assert_refused(
        w.run(&thread, &w.nurse, &assign(&w.nurse)),
        "precondition",
        "already assigned",
    );
    // A nurse who is not a lead cannot hand it to a colleague.
    assert_refused(
        w.run(&thread, &w.nurse, &assign(&w.nurse2)),
        "denied",
        "only a lead",
    );
    // The lead can, to someone on the thread.
    let event = w.apply(&mut thread, &w.lead, &assign(&w.nurse2));
    assert!(
        matches!(event, Payload::ThreadAssigned(ref e) if e.previous_assignee_id == w.nurse.person_id)
    );
    assert_refused(
        w.run(&thread, &w.lead, &assign(&w.consultant)),
        "precondition",
        "add them first",
    );
    // Patients and carers do not assign.
    assert_refused(
        w.run(&thread, &w.patient, &assign(&w.nurse)),
        "denied",
        "only professionals assign",
    );
    // Unassigning: the assignee or a lead.
    assert_refused(
        w.run(
            &thread,
            &w.nurse,
            &UnassignThread {
                thread_id: new_id(),
            },
        ),
        "denied",
        "only the assignee",
    );
    w.apply(
        &mut thread,
        &w.nurse2,
        &UnassignThread {
            thread_id: new_id(),
        },
    );
    assert_refused(
        w.run(
            &thread,
            &w.lead,
            &UnassignThread {
                thread_id: new_id(),
            },
        ),
        "precondition",
        "not assigned",
    );
    // Not on an archived thread.
    w.apply(
        &mut thread,
        &w.nurse,
        &ChangeStatus {
            thread_id: new_id(),
            change: StatusChange::Archive,
        },
    );
    assert_refused(
        w.run(&thread, &w.nurse, &assign(&w.nurse)),
        "precondition",
        "archived",
    );
}

#[test]
fn complete_archive_and_reopen_by_professionals_on_the_thread() {
    let w = world();
    let mut thread = w.thread();
    let change = |c| ChangeStatus {
        thread_id: new_id(),
        change: c,
    };
    assert_refused(
        w.run(&thread, &w.patient, &change(StatusChange::Archive)),
        "denied",
        "only professionals",
    );
    assert_refused(
        w.run(&thread, &w.carer, &change(StatusChange::Complete)),
        "denied",
        "only professionals",
    );
    assert_refused(
        w.run(&thread, &w.consultant, &change(StatusChange::Archive)),
        "denied",
        "add yourself",
    );
    assert_refused(
        w.run(&thread, &w.nurse, &change(StatusChange::Reopen)),
        "precondition",
        "already open",
    );
    w.apply(&mut thread, &w.nurse, &change(StatusChange::Complete));
    assert_refused(
        w.run(&thread, &w.nurse, &change(StatusChange::Complete)),
        "precondition",
        "already complete",
    );
    w.apply(&mut thread, &w.nurse, &change(StatusChange::Archive));
    assert_refused(
        w.run(&thread, &w.nurse, &change(StatusChange::Archive)),
        "precondition",
        "already archived",
    );
    assert_refused(
        w.run(&thread, &w.nurse, &change(StatusChange::Complete)),
        "precondition",
        "reopen it first",
    );
    w.apply(&mut thread, &w.lead, &change(StatusChange::Reopen));
    assert_eq!(thread.status, Status::Open);
}

#[test]
fn read_marks_move_forward_over_messages_of_the_thread() {
    let w = world();
    let mut thread = w.thread();
    let first = thread.messages[0].clone();
    let second = match w.apply(&mut thread, &w.nurse, &w.post()) {
        Payload::MessagePosted(m) => m.message_id,
        _ => unreachable!(),
    };
    let read = |m: &str| MarkRead {
        thread_id: new_id(),
        message_id: m.into(),
    };
    // The author has read their own message.
    assert_refused(
        w.run(&thread, &w.nurse, &read(&second)),
        "precondition",
        "already read",
    );
    w.apply(&mut thread, &w.patient, &read(&second));
    assert_refused(
        w.run(&thread, &w.patient, &read(&first)),
        "precondition",
        "already read",
    );
    assert!(w.run(&thread, &w.carer, &read(&first)).is_ok());
    assert_refused(
        w.run(&thread, &w.carer, &read(&new_id())),
        "not found",
        "not in thread",
    );
    assert_refused(
        w.run(&thread, &w.specialist, &read(&first)),
        "not found",
        "does not exist",
    );
}

#[test]
fn a_clinician_on_a_thread_stays_when_the_team_switches_auto_cc_on() {
    // Threads are not rewritten by team changes. The thread's
    // participants come only from thread events.
    let w = world();
    let thread = w.nutrition_thread();
    assert!(thread.is_active(&w.dietitian.person_id));
    let mut teams = w.teams.clone();
    let nutrition = teams.get_mut(&w.nutrition).unwrap();
    nutrition.evolve(&envelope(
        &w.admin,
        Payload::TeamAutoCcSwitched(TeamAutoCcSwitched { enabled: true }),
    ));
    assert!(thread.is_active(&w.dietitian.person_id));
    let _ = (&w.stranger, &w.pals);
}

#[test]
fn removed_from_the_team_that_brought_them_a_professional_leaves_its_threads() {
    let mut w = world();
    let mut thread = w.thread();
    // The dietitian is added by name; the lead is also in PALS, which holds
    // a grant on the record.
    w.add_by_name(&mut thread, &w.nurse, &w.dietitian);
    let (renal, nutrition, pals) = (w.renal.clone(), w.nutrition.clone(), w.pals.clone());
    let lead = w.lead.clone();
    w.add_member(&pals, &lead);

    let nurse2 = w.nurse2.clone();
    w.remove_member(&renal, &nurse2);
    assert_refused(
        w.run(&thread, &w.nurse2, &w.post()),
        "denied",
        "no longer on this thread",
    );
    // Another team of theirs that holds a grant keeps the lead on it.
    w.remove_member(&renal, &lead);
    w.run(&thread, &w.lead, &w.post()).unwrap();
    // Added by name, the dietitian keeps the thread whatever their teams.
    let dietitian = w.dietitian.clone();
    w.remove_member(&nutrition, &dietitian);
    w.run(&thread, &w.dietitian, &w.post()).unwrap();
    // The others brought by the team are still on it.
    w.run(&thread, &w.nurse, &w.post()).unwrap();
    // Added back to the team, nurse2 is not put back on the thread by it;
    // a participant adds them back by name.
    w.add_member(&renal, &nurse2);
    assert_refused(
        w.run(&thread, &w.nurse2, &w.post()),
        "denied",
        "no longer on this thread",
    );
    w.add_by_name(&mut thread, &w.nurse, &nurse2);
    w.run(&thread, &w.nurse2, &w.post()).unwrap();
}

#[test]
fn a_closed_account_leaves_every_team_and_thread_and_opening_it_again_rejoins_nothing() {
    let mut w = world();
    let mut thread = w.thread();
    let nurse = w.nurse.clone();
    w.set_account(&nurse, false);
    // A new thread to the team does not bring her, nor can she be named.
    let started = w
        .run(
            &Thread::default(),
            &w.patient,
            &w.start(vec![Recipient::Team(w.renal.clone())], vec![]),
        )
        .unwrap();
    assert!(!ids(&started).iter().any(|(p, _)| *p == nurse.person_id));
    let name_her = AddParticipants {
        thread_id: new_id(),
        recipients: vec![Recipient::Professional(nurse.person_id.clone())],
        carer_ids: vec![],
        staff_side: false,
    };
    assert_refused(
        w.run(&thread, &w.lead, &name_her),
        "precondition",
        "account is deactivated",
    );

    // Opened again: she is in no team and on no thread until added.
    w.set_account(&nurse, true);
    assert_refused(
        w.run(&thread, &w.nurse, &w.post()),
        "denied",
        "no longer on this thread",
    );
    let started = w
        .run(
            &Thread::default(),
            &w.patient,
            &w.start(vec![Recipient::Team(w.renal.clone())], vec![]),
        )
        .unwrap();
    assert!(!ids(&started).iter().any(|(p, _)| *p == nurse.person_id));
    // Her old renal membership no longer makes her reached only through
    // the team: she is added by name, and posts again.
    w.add_by_name(&mut thread, &w.lead, &nurse);
    w.run(&thread, &w.nurse, &w.post()).unwrap();
}

#[test]
fn staff_write_notes_the_patient_never_sees_and_a_note_reopens_nothing() {
    let w = world();
    let mut thread = w.thread();
    let note = |id: &str| PostStaffNote {
        thread_id: new_id(),
        note_id: id.into(),
        body: "Potassium was high last week; consultant to advise.".into(),
    };
    // On the thread, of the addressed team, of a team with a grant: yes.
    w.run(&thread, &w.nurse, &note(&new_id())).unwrap();
    w.run(&thread, &w.consultant, &note(&new_id())).unwrap();
    w.run(&thread, &w.pals_officer, &note(&new_id())).unwrap();
    // The patient and carers never; no relation: the thread does not exist.
    assert_refused(
        w.run(&thread, &w.patient, &note(&new_id())),
        "denied",
        "patients and carers never see them",
    );
    assert_refused(
        w.run(&thread, &w.carer, &note(&new_id())),
        "denied",
        "written by professionals",
    );
    assert_refused(
        w.run(&thread, &w.specialist, &note(&new_id())),
        "not found",
        "does not exist",
    );
    // A note on an archived thread leaves it archived; its id is taken.
    w.apply(
        &mut thread,
        &w.nurse,
        &ChangeStatus {
            thread_id: new_id(),
            change: StatusChange::Archive,
        },
    );
    let id = new_id();
    w.apply(&mut thread, &w.nurse, &note(&id));
    assert_eq!(thread.status, Status::Archived);
    assert_refused(
        w.run(&thread, &w.nurse, &note(&id)),
        "precondition",
        "already on the thread",
    );
}

impl World {
    /// The patient writes to the nutrition team (its default contact).
    fn nutrition_thread(&self) -> Thread {
        let mut thread = Thread::default();
        self.apply(
            &mut thread,
            &self.patient,
            &self.start(vec![Recipient::Team(self.nutrition.clone())], vec![]),
        );
        thread
    }

    fn to_staff_side(&self, recipients: Vec<Recipient>) -> AddParticipants {
        AddParticipants {
            thread_id: new_id(),
            recipients,
            carer_ids: vec![],
            staff_side: true,
        }
    }
}

#[test]
fn a_clinician_consulted_on_the_staff_side_writes_notes_and_is_moved_to_the_patient_side() {
    let w = world();
    let mut thread = w.thread();
    let specialist = w.specialist.person_id.clone();
    let consult = w.to_staff_side(vec![Recipient::Professional(specialist.clone())]);
    let Payload::StaffSideJoined(joined) = w.apply(&mut thread, &w.nurse, &consult) else {
        panic!("not a staff-side join");
    };
    assert_eq!(joined.participants.len(), 1);
    assert_eq!(joined.participants[0].reason(), JoinReason::Added);
    assert!(joined.team_ids.is_empty());
    assert!(thread.on_staff_side(&specialist));
    // Named again, on either side of where they are: already there.
    assert_refused(
        w.run(&thread, &w.nurse, &consult),
        "precondition",
        "already on the thread",
    );

    // On the staff side: notes and reading, not messages, no assignment.
    assert_refused(
        w.run(&thread, &w.specialist, &w.post()),
        "precondition",
        "staff side",
    );
    let note = PostStaffNote {
        thread_id: new_id(),
        note_id: new_id(),
        body: "Reduce to 800 ml.".into(),
    };
    w.apply(&mut thread, &w.specialist, &note);
    let assign = AssignThread {
        thread_id: new_id(),
        assignee_id: specialist.clone(),
        if_assignee: None,
    };
    assert_refused(
        w.run(&thread, &w.lead, &assign),
        "precondition",
        "staff side",
    );

    // A message that mentions them; only colleagues on the thread, by staff.
    let mention = |who: &Actor| PostMessage {
        mention_ids: vec![who.person_id.clone()],
        ..w.post()
    };
    let Payload::MessagePosted(posted) = w.apply(&mut thread, &w.nurse, &mention(&w.specialist))
    else {
        panic!("not a message");
    };
    assert_eq!(posted.mention_ids, vec![specialist.clone()]);
    for (by, who) in [
        (&w.nurse, &w.stranger),
        (&w.nurse, &w.nurse),
        (&w.nurse, &w.patient),
    ] {
        assert_refused(w.run(&thread, by, &mention(who)), "invalid", "mention_ids");
    }
    assert_refused(
        w.run(&thread, &w.patient, &mention(&w.nurse)),
        "invalid",
        "only professionals mention",
    );

    // Carers are never on the staff side; the patient does not add to it.
    let carers = AddParticipants {
        carer_ids: vec![w.carer.person_id.clone()],
        ..w.to_staff_side(vec![])
    };
    assert_refused(w.run(&thread, &w.nurse, &carers), "invalid", "carer_ids");
    assert_refused(
        w.run(&thread, &w.patient, &consult),
        "denied",
        "a patient adds carers",
    );

    // Named on the patient side, they move there, and may message.
    let Payload::ParticipantsAdded(moved) = w.apply(
        &mut thread,
        &w.nurse,
        &AddParticipants {
            staff_side: false,
            ..consult.clone()
        },
    ) else {
        panic!("not a patient-side join");
    };
    assert_eq!(moved.moved_person_ids, vec![specialist.clone()]);
    assert!(!thread.on_staff_side(&specialist) && thread.is_active(&specialist));
    w.apply(&mut thread, &w.specialist, &w.post());
}

#[test]
fn on_the_staff_side_an_auto_cc_member_is_named_and_a_second_line_team_joins() {
    let w = world();
    let mut thread = w.nutrition_thread();
    // A contactable member of an automatic-CC team: by name on the staff
    // side (on the patient side, through the team).
    let nurse2 = vec![Recipient::Professional(w.nurse2.person_id.clone())];
    assert_refused(
        w.run(
            &thread,
            &w.dietitian,
            &AddParticipants {
                staff_side: false,
                ..w.to_staff_side(nurse2.clone())
            },
        ),
        "precondition",
        "automatic CC",
    );
    w.apply(&mut thread, &w.dietitian, &w.to_staff_side(nurse2));

    // The renal team on the staff side: its other contactable members join
    // it, and its members work the thread (a note by its lead).
    let renal = vec![Recipient::Team(w.renal.clone())];
    let Payload::StaffSideJoined(joined) =
        w.apply(&mut thread, &w.dietitian, &w.to_staff_side(renal.clone()))
    else {
        panic!("not a staff-side join");
    };
    assert_eq!(joined.team_ids, vec![w.renal.clone()]);
    let mut brought: Vec<_> = ids(&Payload::ParticipantsAdded(ParticipantsAdded {
        participants: joined.participants,
        ..Default::default()
    }));
    brought.sort();
    let mut expected = vec![
        (w.nurse.person_id.clone(), JoinReason::TeamAutoCc),
        (w.lead.person_id.clone(), JoinReason::TeamAutoCc),
    ];
    expected.sort();
    assert_eq!(brought, expected);
    assert!(thread.staff_teams.contains(&w.renal));
    let note = PostStaffNote {
        thread_id: new_id(),
        note_id: new_id(),
        body: "Renal view: fine.".into(),
    };
    w.run(&thread, &w.consultant, &note).unwrap();

    // Addressed on the patient side, the team and its members move.
    let Payload::ParticipantsAdded(moved) = w.apply(
        &mut thread,
        &w.dietitian,
        &AddParticipants {
            staff_side: false,
            ..w.to_staff_side(renal)
        },
    ) else {
        panic!("not a patient-side join");
    };
    assert_eq!(moved.moved_team_ids, vec![w.renal.clone()]);
    assert_eq!(moved.moved_person_ids.len(), 3);
    assert!(thread.staff_teams.is_empty() && thread.teams.contains(&w.renal));
    assert!(!thread.on_staff_side(&w.nurse2.person_id));
}

/// The appointments system, registered for the renal team and PALS.
fn appointments(w: &mut World) -> Actor {
    let system = person(Role::Service, "Appointments");
    let registered = given::<Person>(
        &w.admin,
        [Payload::SystemRegistered(proto::events::SystemRegistered {
            system_id: system.person_id.clone(),
            name: system.name.clone(),
            team_ids: vec![w.renal.clone(), w.pals.clone()],
        })],
    );
    w.people.insert(system.person_id.clone(), registered);
    system
}

fn notice(w: &World, team: &str, thread: Option<&str>) -> PostNotice {
    PostNotice {
        thread_id: thread.map_or_else(new_id, str::to_string),
        new_subject: thread.is_none().then(|| "Your appointment".to_string()),
        patient_id: w.patient.person_id.clone(),
        team_id: team.into(),
        message_id: new_id(),
        body: "Tuesday 12 January, 10:30, Renal clinic".into(),
        reference: "APT-1".into(),
    }
}

#[test]
fn a_system_starts_a_thread_with_a_notice_from_its_team_to_the_patient() {
    let mut w = world();
    let system = appointments(&mut w);
    let mut thread = Thread::default();
    let payload = w.apply(&mut thread, &system, &notice(&w, &w.renal, None));
    let Payload::ThreadStarted(started) = &payload else {
        panic!("{payload:?}")
    };
    let n = started.notice.as_ref().unwrap();
    assert_eq!(
        (n.system_name.as_str(), n.team_name.as_str()),
        ("Appointments", "Renal")
    );
    assert_eq!(
        proto::contract::notice_sender(n),
        "Renal (via Appointments)"
    );
    assert_eq!(started.team_ids, vec![w.renal.clone()]);
    // The patient, and the team as a message to it reaches; not the system.
    let on: Vec<(String, JoinReason)> = ids(&payload);
    assert!(on.contains(&(w.patient.person_id.clone(), JoinReason::RecordOwner)));
    assert!(on.contains(&(w.nurse.person_id.clone(), JoinReason::TeamAutoCc)));
    assert!(on.iter().all(|(p, _)| *p != system.person_id));
    // A follow-up on the thread; it answers for the team (nothing waits).
    let thread_id = started.thread_id.clone();
    let payload = w.apply(&mut thread, &system, &{
        let mut n = notice(&w, &w.renal, Some(&thread_id));
        n.thread_id = thread_id.clone();
        n
    });
    assert!(matches!(payload, Payload::MessagePosted(ref m) if m.notice.is_some()));
}

#[test]
fn a_system_speaks_only_for_its_teams_to_their_patients_and_only_while_open() {
    let mut w = world();
    let system = appointments(&mut w);
    let fresh = Thread::default();
    assert_refused(
        w.run(&fresh, &system, &notice(&w, &w.nutrition, None)),
        "denied",
        "only for the teams an admin registered it for",
    );
    // PALS holds a grant to the record: the patient is not its patient.
    assert_refused(
        w.run(&fresh, &system, &notice(&w, &w.pals, None)),
        "precondition",
        "not under the care of PALS",
    );
    // A person, even an admin, posts no notice; nor an unregistered system.
    assert_refused(
        w.run(&fresh, &w.admin, &notice(&w, &w.renal, None)),
        "denied",
        "registered systems",
    );
    let stranger = person(Role::Service, "Appointments");
    assert_refused(
        w.run(&fresh, &stranger, &notice(&w, &w.renal, None)),
        "denied",
        "registered systems",
    );
    // Not on a thread the team is not on, nor one of another record.
    let nutrition_thread = {
        let mut t = Thread::default();
        w.apply(
            &mut t,
            &w.patient,
            &w.start(vec![Recipient::Team(w.nutrition.clone())], vec![]),
        );
        t
    };
    assert_refused(
        w.run(&nutrition_thread, &system, &notice(&w, &w.renal, Some("x"))),
        "precondition",
        "not addressed to Renal",
    );
    assert_refused(
        w.run(&fresh, &system, &notice(&w, &w.renal, Some("x"))),
        "not found",
        "not in this patient's record",
    );
    // Closed by an admin, it posts nothing.
    let event = envelope(
        &w.admin,
        Payload::PersonDeactivated(PersonDeactivated {
            person_id: system.person_id.clone(),
        }),
    );
    w.people.get_mut(&system.person_id).unwrap().evolve(&event);
    assert_refused(
        w.run(&fresh, &system, &notice(&w, &w.renal, None)),
        "denied",
        "registered systems",
    );
}

/// The dietitian is away until next week, with `deputy` standing in.
fn dietitian_away(w: &mut World, deputy: Option<&Actor>) {
    let event = envelope(
        &w.admin,
        Payload::AbsenceRecorded(proto::events::AbsenceRecorded {
            absence_id: new_id(),
            from: Some((SystemTime::now() - Duration::from_secs(60)).into()),
            until: Some((SystemTime::now() + Duration::from_secs(7 * 86_400)).into()),
            deputy_id: deputy.map(|d| d.person_id.clone()).unwrap_or_default(),
        }),
    );
    let id = w.dietitian.person_id.clone();
    w.people.get_mut(&id).unwrap().evolve(&event);
}

/// The patient starts a thread to the dietitian by name: its event.
fn pat_writes_to_the_dietitian(w: &World) -> Payload {
    let to_her = vec![Recipient::Professional(w.dietitian.person_id.clone())];
    w.run(&Thread::default(), &w.patient, &w.start(to_her, vec![]))
        .unwrap()
}

#[test]
fn a_patients_message_to_someone_away_also_goes_to_whoever_stands_in() {
    let mut w = world();
    let nurse = w.nurse.clone();
    dietitian_away(&mut w, Some(&nurse));
    let to_susan = || {
        w.start(
            vec![Recipient::Professional(w.dietitian.person_id.clone())],
            vec![],
        )
    };
    let payload = pat_writes_to_the_dietitian(&w);
    let Payload::ThreadStarted(started) = &payload else {
        panic!("{payload:?}")
    };
    let deputy = started
        .participants
        .iter()
        .find(|p| p.person_id == w.nurse.person_id)
        .expect("the deputy is on it");
    assert_eq!(deputy.reason, JoinReason::Deputy as i32);
    assert_eq!(deputy.deputy_for, w.dietitian.person_id);
    assert!(ids(&payload).contains(&(w.dietitian.person_id.clone(), JoinReason::Recipient)));
    // Staff writing to her bring no one in: they see she is away.
    let by_staff = w
        .run(&Thread::default(), &w.nurse2, &to_susan())
        .map(|p| ids(&p));
    if let Ok(on) = by_staff {
        assert!(on.iter().all(|(p, _)| *p != w.nurse.person_id));
    }
}

#[test]
fn a_patients_message_to_a_team_whose_main_contact_is_away_goes_to_the_deputy_too() {
    let mut w = world();
    let nurse = w.nurse.clone();
    dietitian_away(&mut w, Some(&nurse));
    let payload = w
        .run(
            &Thread::default(),
            &w.patient,
            &w.start(vec![Recipient::Team(w.nutrition.clone())], vec![]),
        )
        .unwrap();
    let on = ids(&payload);
    assert!(on.contains(&(
        w.dietitian.person_id.clone(),
        JoinReason::TeamDefaultContact
    )));
    assert!(on.contains(&(w.nurse.person_id.clone(), JoinReason::Deputy)));
}

#[test]
fn with_no_deputy_the_teams_main_contact_stands_in_unless_it_is_the_one_away() {
    let mut w = world();
    dietitian_away(&mut w, None);
    // The dietitian is Nutrition's main contact herself: nobody else.
    let payload = pat_writes_to_the_dietitian(&w);
    assert!(
        ids(&payload)
            .iter()
            .all(|(_, why)| *why != JoinReason::Deputy)
    );
    // A deputy whose own account is closed stands in for no one.
    let mut w = world();
    let nurse = w.nurse.clone();
    dietitian_away(&mut w, Some(&nurse));
    w.set_account(&nurse, false);
    let payload = pat_writes_to_the_dietitian(&w);
    assert!(
        ids(&payload)
            .iter()
            .all(|(_, why)| *why != JoinReason::Deputy)
    );
}
