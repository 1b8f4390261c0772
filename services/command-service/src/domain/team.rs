//! Teams: members, who is contactable by messages, automatic CC, the default
//! messaging contact, and the public self-registration code.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use proto::events::{
    AggregateType, Envelope, TeamAlertsSet, TeamAutoCcSwitched, TeamCreated, TeamDefaultContactSet,
    TeamJoinCodeIssued, TeamMemberAdded, TeamMemberContactabilityChanged, TeamMemberLeadChanged,
    TeamMemberRemoved, TeamOpenToPatientsSet, envelope::Payload,
};
use service_kit::Role;

use super::values::TEAM_MEMBERS_MAX;
use super::{Aggregate, Command, Context, DomainError, Needs, require_role};

/// A team member's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub contactable: bool,
    pub lead: bool,
    /// When they were (last) added: a membership from before their account
    /// was closed is not theirs (`Context::member`).
    pub added_at: SystemTime,
}

#[derive(Clone, Debug, Default)]
pub struct Team {
    pub exists: bool,
    pub name: String,
    pub description: String,
    pub members: BTreeMap<String, Member>,
    pub auto_cc: bool,
    /// Open to every patient of the organisation (PALS, central teams).
    pub open_to_patients: bool,
    /// Every member is emailed of patients' and carers' messages to the team.
    pub alerts: bool,
    pub default_contact: Option<String>,
    pub join_code: Option<String>,
    /// Codes by the command that issued them, so a retried command answers
    /// with its own code.
    pub codes_by_command: HashMap<String, String>,
    /// When each former member was last removed, for removals that also
    /// took them off the threads they were on through the team.
    pub removed_at: HashMap<String, SystemTime>,
}

impl Team {
    /// Members contactable by messages, in a stable order, as the log of
    /// the team has them (`Context::member` says whose membership is
    /// still theirs).
    pub fn contactable_members(&self) -> impl Iterator<Item = &String> {
        self.members
            .iter()
            .filter(|(_, m)| m.contactable)
            .map(|(id, _)| id)
    }

    /// Whether `person` was removed from the team, taken off the threads it
    /// brought them to, after `since`.
    pub fn removed_since(&self, person: &str, since: SystemTime) -> bool {
        self.removed_at.get(person).is_some_and(|at| *at >= since)
    }

    /// Who is in the team, for its people (whose accounts must be open).
    pub fn people(&self) -> impl Iterator<Item = &String> {
        self.members.keys()
    }
}

/// `person`'s membership of `team` now, or why not.
fn member<'a>(team: &'a Team, ctx: &Context, person: &str) -> Result<&'a Member, DomainError> {
    ctx.member(team, person).ok_or_else(|| {
        DomainError::precondition(format!(
            "professional {person} is not a member of team {}",
            team.name
        ))
    })
}

/// A command on one member: their account is read, so that a membership
/// that ended with it is not one.
fn member_needs(person: &str) -> Needs {
    Needs {
        people: vec![person.to_string()],
        ..Needs::default()
    }
}

impl Aggregate for Team {
    const KIND: AggregateType = AggregateType::Team;

    fn evolve(&mut self, event: &Envelope) {
        match &event.payload {
            Some(Payload::TeamCreated(e)) => {
                self.exists = true;
                self.name = e.name.clone();
                self.description = e.description.clone();
            }
            Some(Payload::TeamMemberAdded(e)) => {
                self.members.insert(
                    e.professional_id.clone(),
                    Member {
                        contactable: e.contactable,
                        lead: e.lead,
                        added_at: super::occurred_at(event),
                    },
                );
            }
            Some(Payload::TeamMemberRemoved(e)) => {
                self.members.remove(&e.professional_id);
                if e.leaves_threads {
                    self.removed_at
                        .insert(e.professional_id.clone(), super::occurred_at(event));
                }
                if e.default_contact_cleared {
                    self.default_contact = None;
                }
            }
            Some(Payload::TeamMemberContactabilityChanged(e)) => {
                if let Some(m) = self.members.get_mut(&e.professional_id) {
                    m.contactable = e.contactable;
                }
                if e.default_contact_cleared {
                    self.default_contact = None;
                }
            }
            Some(Payload::TeamMemberLeadChanged(e)) => {
                if let Some(m) = self.members.get_mut(&e.professional_id) {
                    m.lead = e.lead;
                }
            }
            Some(Payload::TeamAutoCcSwitched(e)) => self.auto_cc = e.enabled,
            Some(Payload::TeamOpenToPatientsSet(e)) => self.open_to_patients = e.open,
            Some(Payload::TeamAlertsSet(e)) => self.alerts = e.enabled,
            Some(Payload::TeamDefaultContactSet(e)) => {
                self.default_contact =
                    (!e.professional_id.is_empty()).then(|| e.professional_id.clone());
            }
            Some(Payload::TeamJoinCodeIssued(e)) => {
                self.join_code = Some(e.join_code.clone());
                self.codes_by_command
                    .insert(event.command_id.clone(), e.join_code.clone());
            }
            _ => {}
        }
    }
}

const ADMIN_RULE: &str = "only an admin manages teams";

fn existing<'a>(team: &'a Team, id: &str) -> Result<&'a Team, DomainError> {
    if team.exists {
        Ok(team)
    } else {
        Err(DomainError::not_found(format!("team {id} does not exist")))
    }
}

/// Create a team (admin).
#[derive(Clone, Debug)]
pub struct CreateTeam {
    pub team_id: String,
    pub name: String,
    pub description: String,
}

impl Command for CreateTeam {
    type Target = Team;
    fn target_id(&self) -> &str {
        &self.team_id
    }
    fn decide(&self, team: &Team, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(&ctx.actor, &[Role::Admin], ADMIN_RULE)?;
        if team.exists {
            return Err(DomainError::precondition(format!(
                "team {} already exists",
                self.team_id
            )));
        }
        Ok(Payload::TeamCreated(TeamCreated {
            team_id: self.team_id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
        }))
    }
}

/// Add a registered professional to a team (admin).
#[derive(Clone, Debug)]
pub struct AddTeamMember {
    pub team_id: String,
    pub professional_id: String,
    pub contactable: bool,
    pub lead: bool,
}

impl Command for AddTeamMember {
    type Target = Team;
    fn target_id(&self) -> &str {
        &self.team_id
    }
    fn needs(&self, _: &Team, _: &super::Actor) -> Needs {
        Needs {
            people: vec![self.professional_id.clone()],
            ..Needs::default()
        }
    }
    fn decide(&self, team: &Team, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(&ctx.actor, &[Role::Admin], ADMIN_RULE)?;
        let team = existing(team, &self.team_id)?;
        ctx.professional(&self.professional_id)?;
        if ctx.is_member(team, &self.professional_id) {
            return Err(DomainError::precondition(format!(
                "professional {} is already a member of team {}",
                self.professional_id, team.name
            )));
        }
        if team.members.len() >= TEAM_MEMBERS_MAX {
            return Err(DomainError::precondition(format!(
                "team {} has {TEAM_MEMBERS_MAX} members, the most a team may have",
                team.name
            )));
        }
        Ok(Payload::TeamMemberAdded(TeamMemberAdded {
            professional_id: self.professional_id.clone(),
            contactable: self.contactable,
            lead: self.lead,
        }))
    }
}

/// Remove a member (admin). In the same event they leave the threads they
/// were on only through this team (see `TeamMemberRemoved.leaves_threads`);
/// those they were added to by name they keep.
#[derive(Clone, Debug)]
pub struct RemoveTeamMember {
    pub team_id: String,
    pub professional_id: String,
}

impl Command for RemoveTeamMember {
    type Target = Team;
    fn target_id(&self) -> &str {
        &self.team_id
    }
    fn needs(&self, _: &Team, _: &super::Actor) -> Needs {
        member_needs(&self.professional_id)
    }
    fn decide(&self, team: &Team, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(&ctx.actor, &[Role::Admin], ADMIN_RULE)?;
        let team = existing(team, &self.team_id)?;
        member(team, ctx, &self.professional_id)?;
        Ok(Payload::TeamMemberRemoved(TeamMemberRemoved {
            professional_id: self.professional_id.clone(),
            default_contact_cleared: team.default_contact.as_deref()
                == Some(self.professional_id.as_str()),
            leaves_threads: true,
        }))
    }
}

/// Mark a member contactable by messages, or not (admin).
#[derive(Clone, Debug)]
pub struct SetMemberContactable {
    pub team_id: String,
    pub professional_id: String,
    pub contactable: bool,
}

impl Command for SetMemberContactable {
    type Target = Team;
    fn target_id(&self) -> &str {
        &self.team_id
    }
    fn needs(&self, _: &Team, _: &super::Actor) -> Needs {
        member_needs(&self.professional_id)
    }
    fn decide(&self, team: &Team, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(&ctx.actor, &[Role::Admin], ADMIN_RULE)?;
        let team = existing(team, &self.team_id)?;
        let member = member(team, ctx, &self.professional_id)?;
        if member.contactable == self.contactable {
            return Err(DomainError::precondition(format!(
                "professional {} is already {}contactable in team {}",
                self.professional_id,
                if self.contactable { "" } else { "not " },
                team.name
            )));
        }
        Ok(Payload::TeamMemberContactabilityChanged(
            TeamMemberContactabilityChanged {
                professional_id: self.professional_id.clone(),
                contactable: self.contactable,
                default_contact_cleared: !self.contactable
                    && team.default_contact.as_deref() == Some(self.professional_id.as_str()),
            },
        ))
    }
}

/// Make a member a lead of the team, or not (admin).
#[derive(Clone, Debug)]
pub struct SetMemberLead {
    pub team_id: String,
    pub professional_id: String,
    pub lead: bool,
}

impl Command for SetMemberLead {
    type Target = Team;
    fn target_id(&self) -> &str {
        &self.team_id
    }
    fn needs(&self, _: &Team, _: &super::Actor) -> Needs {
        member_needs(&self.professional_id)
    }
    fn decide(&self, team: &Team, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(&ctx.actor, &[Role::Admin], ADMIN_RULE)?;
        let team = existing(team, &self.team_id)?;
        if member(team, ctx, &self.professional_id)?.lead == self.lead {
            return Err(DomainError::precondition(format!(
                "professional {} is already {}a lead of team {}",
                self.professional_id,
                if self.lead { "" } else { "not " },
                team.name
            )));
        }
        Ok(Payload::TeamMemberLeadChanged(TeamMemberLeadChanged {
            professional_id: self.professional_id.clone(),
            lead: self.lead,
        }))
    }
}

/// An admin's switch of one of a team's settings: the team must exist, and
/// a switch to what it already is (`unchanged`) is refused, saying so.
fn switch(
    team: &Team,
    ctx: &Context,
    team_id: &str,
    unchanged: impl FnOnce(&Team) -> bool,
    already: impl FnOnce(&str) -> String,
) -> Result<(), DomainError> {
    require_role(&ctx.actor, &[Role::Admin], ADMIN_RULE)?;
    let team = existing(team, team_id)?;
    if unchanged(team) {
        return Err(DomainError::precondition(already(&team.name)));
    }
    Ok(())
}

/// [`switch`] of a setting that is on or off: `setting` names it ("team
/// alerts are") and reads it.
fn switch_on_off(
    team: &Team,
    ctx: &Context,
    team_id: &str,
    (setting, is_on): (&str, fn(&Team) -> bool),
    on: bool,
) -> Result<(), DomainError> {
    let state = if on { "on" } else { "off" };
    let already = |name: &str| format!("{setting} already {state} for team {name}");
    switch(team, ctx, team_id, |t| is_on(t) == on, already)
}

/// Switch automatic CC on or off (admin). Existing threads keep their
/// participants: members are not added to threads that already exist.
#[derive(Clone, Debug)]
pub struct SetAutoCc {
    pub team_id: String,
    pub enabled: bool,
}

impl Command for SetAutoCc {
    type Target = Team;
    fn target_id(&self) -> &str {
        &self.team_id
    }
    fn decide(&self, team: &Team, ctx: &Context) -> Result<Payload, DomainError> {
        let is_on: fn(&Team) -> bool = |t| t.auto_cc;
        switch_on_off(
            team,
            ctx,
            &self.team_id,
            ("automatic CC is", is_on),
            self.enabled,
        )?;
        Ok(Payload::TeamAutoCcSwitched(TeamAutoCcSwitched {
            enabled: self.enabled,
        }))
    }
}

/// Open a team to every patient of the organisation, or close it (admin):
/// PALS, central appointments, medical records. Patients and carers with
/// consent may then start a thread to it without being in it; threads
/// already started are not changed by closing it.
#[derive(Clone, Debug)]
pub struct SetOpenToPatients {
    pub team_id: String,
    pub open: bool,
}

impl Command for SetOpenToPatients {
    type Target = Team;
    fn target_id(&self) -> &str {
        &self.team_id
    }
    fn decide(&self, team: &Team, ctx: &Context) -> Result<Payload, DomainError> {
        let already = |name: &str| {
            let how = if self.open { "open" } else { "closed" };
            format!("team {name} is already {how} to every patient")
        };
        let same = |t: &Team| t.open_to_patients == self.open;
        switch(team, ctx, &self.team_id, same, already)?;
        Ok(Payload::TeamOpenToPatientsSet(TeamOpenToPatientsSet {
            open: self.open,
        }))
    }
}

/// Switch team alerts on or off (admin): on, every member hears of each new
/// message from a patient or carer in a thread addressed to the team.
#[derive(Clone, Debug)]
pub struct SetAlerts {
    pub team_id: String,
    pub enabled: bool,
}

impl Command for SetAlerts {
    type Target = Team;
    fn target_id(&self) -> &str {
        &self.team_id
    }
    fn decide(&self, team: &Team, ctx: &Context) -> Result<Payload, DomainError> {
        let is_on: fn(&Team) -> bool = |t| t.alerts;
        switch_on_off(
            team,
            ctx,
            &self.team_id,
            ("team alerts are", is_on),
            self.enabled,
        )?;
        Ok(Payload::TeamAlertsSet(TeamAlertsSet {
            enabled: self.enabled,
        }))
    }
}

/// Set (or clear, with `None`) the default messaging contact (admin).
#[derive(Clone, Debug)]
pub struct SetDefaultContact {
    pub team_id: String,
    pub professional_id: Option<String>,
}

impl Command for SetDefaultContact {
    type Target = Team;
    fn target_id(&self) -> &str {
        &self.team_id
    }
    fn needs(&self, team: &Team, _: &super::Actor) -> Needs {
        Needs {
            people: self
                .professional_id
                .iter()
                .chain(team.default_contact.iter())
                .cloned()
                .collect(),
            ..Needs::default()
        }
    }
    fn decide(&self, team: &Team, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(&ctx.actor, &[Role::Admin], ADMIN_RULE)?;
        let team = existing(team, &self.team_id)?;
        if ctx.default_contact(team) == self.professional_id.as_deref() {
            return Err(DomainError::precondition(match &self.professional_id {
                Some(p) => format!("{p} is already the default contact of team {}", team.name),
                None => format!("team {} has no default contact to clear", team.name),
            }));
        }
        if let Some(p) = &self.professional_id
            && !member(team, ctx, p)?.contactable
        {
            return Err(DomainError::precondition(format!(
                "the default messaging contact must be contactable by messages; {p} is not, in team {}",
                team.name
            )));
        }
        Ok(Payload::TeamDefaultContactSet(TeamDefaultContactSet {
            professional_id: self.professional_id.clone().unwrap_or_default(),
        }))
    }
}

/// Issue a new public join code (admin); earlier codes stop working. The
/// code is chosen by the service before deciding, so decide stays pure.
#[derive(Clone, Debug)]
pub struct IssueJoinCode {
    pub team_id: String,
    pub join_code: String,
}

impl Command for IssueJoinCode {
    type Target = Team;
    fn target_id(&self) -> &str {
        &self.team_id
    }
    fn decide(&self, team: &Team, ctx: &Context) -> Result<Payload, DomainError> {
        require_role(&ctx.actor, &[Role::Admin], ADMIN_RULE)?;
        existing(team, &self.team_id)?;
        Ok(Payload::TeamJoinCodeIssued(TeamJoinCodeIssued {
            join_code: self.join_code.clone(),
        }))
    }
}

/// A fresh join code: ten characters from an alphabet without look-alikes
/// (no 0/O, 1/I/L), about 50 bits of randomness.
pub fn new_join_code() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let random = uuid::Uuid::new_v4().as_u128();
    (0..10)
        .map(|i| {
            let index = (random >> (i * 6)) as usize % ALPHABET.len();
            ALPHABET[index] as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Person;
    use crate::domain::testing::*;
    use std::sync::Arc;
    use std::time::SystemTime;

    struct World {
        admin: super::super::Actor,
        team_id: String,
        team: Team,
        nurse: String,
    }

    fn world() -> World {
        let admin = person(Role::Admin, "Ada Admin");
        let nurse = new_id();
        let team: Team = given(
            &admin,
            [
                Payload::TeamCreated(TeamCreated {
                    team_id: "t".into(),
                    name: "Renal".into(),
                    description: String::new(),
                }),
                Payload::TeamMemberAdded(TeamMemberAdded {
                    professional_id: nurse.clone(),
                    contactable: true,
                    lead: false,
                }),
            ],
        );
        World {
            admin,
            team_id: new_id(),
            team,
            nurse,
        }
    }

    fn ctx(actor: &super::super::Actor) -> Context {
        Context::new(actor.clone(), SystemTime::now())
    }

    #[test]
    fn members_must_be_registered_professionals() {
        let w = world();
        let consultant = new_id();
        let add = AddTeamMember {
            team_id: w.team_id.clone(),
            professional_id: consultant.clone(),
            contactable: false,
            lead: false,
        };
        assert_refused(
            add.decide(&w.team, &ctx(&w.admin)),
            "not found",
            "not registered",
        );
        let mut c = ctx(&w.admin);
        c.people.insert(
            consultant.clone(),
            Arc::new(given::<Person>(
                &w.admin,
                [Payload::ProfessionalRegistered(
                    proto::events::ProfessionalRegistered {
                        professional_id: consultant,
                        name: "Dr Cole".into(),
                        role_label: "Consultant".into(),
                        work_email: "cole@nhs.net".into(),
                        work_email_unverified: false,
                    },
                )],
            )),
        );
        assert!(matches!(
            add.decide(&w.team, &c),
            Ok(Payload::TeamMemberAdded(_))
        ));
        let again = AddTeamMember {
            professional_id: w.nurse.clone(),
            ..add
        };
        let mut c2 = c.clone();
        c2.people
            .insert(w.nurse.clone(), c.people.values().next().unwrap().clone());
        assert_refused(
            again.decide(&w.team, &c2),
            "precondition",
            "already a member",
        );
    }

    #[test]
    fn the_default_contact_must_be_a_contactable_member() {
        let w = world();
        let set = |p: &str| SetDefaultContact {
            team_id: w.team_id.clone(),
            professional_id: Some(p.into()),
        };
        assert_refused(
            set(&new_id()).decide(&w.team, &ctx(&w.admin)),
            "precondition",
            "not a member",
        );
        let event = set(&w.nurse).decide(&w.team, &ctx(&w.admin)).unwrap();
        let mut team = w.team.clone();
        team.evolve(&envelope(&w.admin, event));
        assert_eq!(team.default_contact.as_deref(), Some(w.nurse.as_str()));

        // Made non-contactable, the nurse stops being the default contact.
        let event = SetMemberContactable {
            team_id: w.team_id.clone(),
            professional_id: w.nurse.clone(),
            contactable: false,
        }
        .decide(&team, &ctx(&w.admin))
        .unwrap();
        assert!(
            matches!(&event, Payload::TeamMemberContactabilityChanged(e) if e.default_contact_cleared)
        );
        team.evolve(&envelope(&w.admin, event));
        assert_eq!(team.default_contact, None);
        assert_refused(
            set(&w.nurse).decide(&team, &ctx(&w.admin)),
            "precondition",
            "must be contactable",
        );
    }

    #[test]
    fn removing_the_default_contact_clears_it() {
        let w = world();
        let mut team = w.team.clone();
        team.default_contact = Some(w.nurse.clone());
        let event = RemoveTeamMember {
            team_id: w.team_id.clone(),
            professional_id: w.nurse.clone(),
        }
        .decide(&team, &ctx(&w.admin))
        .unwrap();
        team.evolve(&envelope(&w.admin, event));
        assert!(!team.members.contains_key(&w.nurse));
        assert_eq!(team.default_contact, None);
    }

    /// A switch of a team's settings: by an admin only, on then refused as
    /// already on, then off again.
    fn switches<C: Command<Target = Team>>(
        w: &World,
        (on, off): (C, C),
        is_on: fn(&Team) -> bool,
        already: &str,
    ) {
        let nurse = person(Role::Professional, "Nina");
        assert_refused(on.decide(&w.team, &ctx(&nurse)), "denied", ADMIN_RULE);
        let mut team = w.team.clone();
        let event = on.decide(&team, &ctx(&w.admin)).unwrap();
        team.evolve(&envelope(&w.admin, event));
        assert!(is_on(&team));
        assert_refused(on.decide(&team, &ctx(&w.admin)), "precondition", already);
        let event = off.decide(&team, &ctx(&w.admin)).unwrap();
        team.evolve(&envelope(&w.admin, event));
        assert!(!is_on(&team));
    }

    #[test]
    fn a_teams_switches_change_by_an_admin_and_only_when_they_change() {
        let w = world();
        let auto_cc = |enabled| SetAutoCc {
            team_id: w.team_id.clone(),
            enabled,
        };
        let (cc, no_cc) = (auto_cc(true), auto_cc(false));
        switches(&w, (cc, no_cc), |t| t.auto_cc, "automatic CC is already on");
        let open = |open| SetOpenToPatients {
            team_id: w.team_id.clone(),
            open,
        };
        let already_open = "is already open to every patient";
        switches(
            &w,
            (open(true), open(false)),
            |t| t.open_to_patients,
            already_open,
        );
        let alerts = |enabled| SetAlerts {
            team_id: w.team_id.clone(),
            enabled,
        };
        let already_on = "team alerts are already on";
        switches(&w, (alerts(true), alerts(false)), |t| t.alerts, already_on);
    }

    #[test]
    fn a_new_join_code_replaces_the_old_one() {
        let w = world();
        let mut team = w.team.clone();
        for _ in 0..2 {
            let code = new_join_code();
            assert_eq!(code.len(), 10);
            let event = IssueJoinCode {
                team_id: w.team_id.clone(),
                join_code: code.clone(),
            }
            .decide(&team, &ctx(&w.admin))
            .unwrap();
            team.evolve(&envelope(&w.admin, event));
            assert_eq!(team.join_code.as_deref(), Some(code.as_str()));
        }
        assert_ne!(new_join_code(), new_join_code());
    }

    #[test]
    fn only_admins_manage_teams_and_teams_must_exist() {
        let w = world();
        let nurse = person(Role::Professional, "Nina");
        let switch = SetAutoCc {
            team_id: w.team_id.clone(),
            enabled: true,
        };
        assert_refused(switch.decide(&w.team, &ctx(&nurse)), "denied", ADMIN_RULE);
        assert_refused(
            switch.decide(&Team::default(), &ctx(&w.admin)),
            "not found",
            "does not exist",
        );
        let create = CreateTeam {
            team_id: w.team_id.clone(),
            name: "Renal".into(),
            description: String::new(),
        };
        assert_refused(
            create.decide(&w.team, &ctx(&w.admin)),
            "precondition",
            "already exists",
        );
    }
}
