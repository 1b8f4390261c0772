//! A small demo organisation, created through the command API exactly as an
//! admin, staff and patients would: the world of the seed documents. The
//! operator CLI seeds it for newcomers (`careline demo`), and the tests run
//! the product's scenarios in it.
//!
//! * Renal Unit, automatic CC: two contactable nurses, a lead nurse, and a
//!   consultant nephrologist who is not contactable by messages.
//! * Nutrition & Dietetics, no automatic CC: reached through its default
//!   messaging contact, Susan Turner (Dietitian).
//! * PALS, open to every patient: Pat has also granted it 30 days' access
//!   to her record.
//! * Cardiology: no relation to the patient (staff "off the team").
//! * Every address is verified when the seeder holds the link key (each
//!   person follows their verification link), except Sam's.
//! * Pat Jones belongs to Renal and Nutrition; her father
//!   Chris Jones holds her consent; Alex Green is a carer without it; Sam
//!   Green is another patient, whose email is not verified.

use std::time::{Duration, SystemTime};

use proto::command as pb;
use service_kit::{Addressee, Caller, EmailLink, LinkIssuer, Role, TokenIssuer};
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::bearer::{Client, client, command_id};
use crate::steps::Steps;

/// Everyone and everything in the demo organisation.
#[derive(Clone, Debug)]
pub struct DemoOrg {
    pub admin: Caller,
    pub patient: Caller,
    pub other_patient: Caller,
    pub carer: Caller,
    pub carer_without_consent: Caller,
    pub nurse: Caller,
    pub nurse2: Caller,
    pub lead: Caller,
    pub consultant: Caller,
    pub dietitian: Caller,
    pub pals_officer: Caller,
    pub cardiologist: Caller,
    /// A privacy officer: the admin granted them the auditor role.
    pub auditor: Caller,
    /// An operator on call: the admin granted them the operator role.
    pub operator: Caller,
    pub renal: String,
    pub nutrition: String,
    pub pals: String,
    pub cardiology: String,
    pub pals_grant: String,
    pub renal_join_code: String,
}

/// A team to create: members are (who, contactable, lead).
struct TeamPlan<'a> {
    id: &'a String,
    name: &'a str,
    auto_cc: bool,
    default_contact: Option<&'a Caller>,
    members: Vec<(&'a Caller, bool, bool)>,
}

fn person(role: Role, name: &str) -> Caller {
    Caller {
        person_id: uuid::Uuid::now_v7(),
        role,
        name: name.into(),
    }
}

impl DemoOrg {
    /// Every person, for printing tokens.
    pub fn people(&self) -> Vec<(&'static str, &Caller)> {
        vec![
            ("admin", &self.admin),
            ("patient", &self.patient),
            ("other patient (unverified email)", &self.other_patient),
            ("carer with consent", &self.carer),
            ("carer without consent", &self.carer_without_consent),
            ("renal nurse", &self.nurse),
            ("renal nurse", &self.nurse2),
            ("renal lead nurse", &self.lead),
            ("consultant (not contactable)", &self.consultant),
            ("dietitian (default contact)", &self.dietitian),
            ("PALS officer", &self.pals_officer),
            ("cardiologist (no relation)", &self.cardiologist),
            ("privacy officer (auditor)", &self.auditor),
            ("operator on call", &self.operator),
        ]
    }
}

/// Signs calls in as one person.
#[derive(Debug)]
pub struct Signer {
    channel: Channel,
    keys: TokenIssuer,
    admin: Caller,
    /// The notification service's link key, when the seeder holds it: the
    /// demo's verified patient then follows her verification link as she
    /// would from her email.
    links: Option<LinkIssuer>,
}

impl Signer {
    /// A signer whose admin is new (and becomes the first admin of a new log).
    pub fn new(channel: Channel, keys: TokenIssuer) -> Self {
        Self::with_admin(channel, keys, person(Role::Admin, "Ada Lovelace"))
    }

    /// A signer whose seeds are made by `admin`: the first admin of the log,
    /// or one already granted the role.
    pub fn with_admin(channel: Channel, keys: TokenIssuer, admin: Caller) -> Self {
        Self {
            channel,
            keys,
            admin,
            links: None,
        }
    }

    /// Seeds holding the link key `links` (see the field `links`).
    pub fn with_links(mut self, links: LinkIssuer) -> Self {
        self.links = Some(links);
        self
    }

    /// `who` follows the link of the verification email that request
    /// `request` (the id of the event that asked) sent to `email`, as they
    /// would from their mailbox: when the seeder holds the link key.
    pub async fn follow_link(
        &self,
        who: &Caller,
        addressee: Addressee,
        email: &str,
        request: String,
    ) -> Result<(), Status> {
        let Some(links) = &self.links else {
            return Ok(());
        };
        let token = links.mint(&EmailLink {
            person_id: who.person_id,
            addressee,
            email: email.into(),
            request_id: request,
            expires_at: SystemTime::now() + Duration::from_secs(3600),
        });
        self.client(who)?
            .confirm_email(pb::ConfirmEmailRequest {
                command_id: command_id(),
                token,
            })
            .await?;
        Ok(())
    }

    /// The channel to the command service (for calls without a token).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The admin who seeds.
    pub fn admin(&self) -> &Caller {
        &self.admin
    }

    /// Makes sure the signer's admin holds the admin role: grants it to
    /// themselves as the log's first admin, or finds it already granted.
    pub async fn ensure_admin(&self) -> Result<(), Status> {
        let granted = self
            .client(&self.admin)?
            .grant_staff_role(pb::GrantStaffRoleRequest {
                command_id: command_id(),
                person_id: self.admin.person_id.to_string(),
                role: "admin".into(),
                name: self.admin.name.clone(),
            })
            .await;
        match granted {
            Ok(_) => Ok(()),
            Err(status)
                if service_kit::reason::is(&status, service_kit::reason::ROLE_ALREADY_HELD) =>
            {
                Ok(())
            }
            Err(status) => Err(status),
        }
    }

    /// Grants `who` a staff role ("operator", "auditor", "admin"), as the
    /// signer's admin.
    pub async fn grant(&self, who: &Caller, role: &str) -> Result<(), Status> {
        self.client(&self.admin)?
            .grant_staff_role(pb::GrantStaffRoleRequest {
                command_id: command_id(),
                person_id: who.person_id.to_string(),
                role: role.into(),
                name: who.name.clone(),
            })
            .await?;
        Ok(())
    }

    /// A token for `who`, valid for a day.
    pub fn token(&self, who: &Caller) -> String {
        self.keys.mint(who, Duration::from_secs(24 * 3600))
    }

    /// The command API as `who`.
    pub fn client(&self, who: &Caller) -> Result<Client, Status> {
        client(self.channel.clone(), &self.token(who))
    }
}

fn team(id: &str) -> pb::Recipient {
    pb::Recipient {
        recipient: Some(pb::recipient::Recipient::TeamId(id.into())),
    }
}

/// Creates the demo organisation. Every id is new, so it can be seeded any
/// number of times into the same log.
pub async fn seed(signer: &Signer) -> Result<DemoOrg, Status> {
    signer.ensure_admin().await?;
    let org = DemoOrg {
        admin: signer.admin().clone(),
        patient: person(Role::Patient, "Pat Jones"),
        other_patient: person(Role::Patient, "Sam Green"),
        carer: person(Role::Carer, "Chris Jones"),
        carer_without_consent: person(Role::Carer, "Alex Green"),
        nurse: person(Role::Professional, "Nina Patel"),
        nurse2: person(Role::Professional, "Ned Brown"),
        lead: person(Role::Professional, "Lena Okafor"),
        consultant: person(Role::Professional, "Dr Rowan Cole"),
        dietitian: person(Role::Professional, "Susan Turner"),
        pals_officer: person(Role::Professional, "Pam Reid"),
        cardiologist: person(Role::Professional, "Dr Omar Shah"),
        auditor: person(Role::Auditor, "Priya Shah"),
        operator: person(Role::Operator, "Olu Adeyemi"),
        renal: command_id(),
        nutrition: command_id(),
        pals: command_id(),
        cardiology: command_id(),
        pals_grant: String::new(),
        renal_join_code: String::new(),
    };
    let mut admin = signer.client(&org.admin)?;
    signer.grant(&org.auditor, "auditor").await?;
    signer.grant(&org.operator, "operator").await?;

    let staff = [
        (&org.nurse, "Renal Nurse"),
        (&org.nurse2, "Renal Nurse"),
        (&org.lead, "Lead Nurse"),
        (&org.consultant, "Consultant Nephrologist"),
        (&org.dietitian, "Dietitian"),
        (&org.pals_officer, "PALS Officer"),
        (&org.cardiologist, "Cardiologist"),
    ];
    // Each follows the link of their verification email.
    for (who, label) in staff {
        let request = command_id();
        let work_email = format!(
            "{}@hospital.example",
            who.name.to_lowercase().replace([' ', '.'], "")
        );
        admin
            .register_professional(pb::RegisterProfessionalRequest {
                command_id: request.clone(),
                professional_id: who.person_id.to_string(),
                name: who.name.clone(),
                role_label: label.into(),
                work_email: work_email.clone(),
            })
            .await?;
        signer
            .follow_link(who, Addressee::Person, &work_email, request)
            .await?;
    }
    for (who, email) in [
        (&org.carer, "chris.jones@example.org"),
        (&org.carer_without_consent, "alex.green@example.org"),
    ] {
        let request = command_id();
        admin
            .register_carer(pb::RegisterCarerRequest {
                command_id: request.clone(),
                carer_id: who.person_id.to_string(),
                name: who.name.clone(),
                email: email.into(),
                email_verified: false,
            })
            .await?;
        signer
            .follow_link(who, Addressee::Person, email, request)
            .await?;
    }

    let teams = [
        TeamPlan {
            id: &org.renal,
            name: "Renal Unit",
            auto_cc: true,
            default_contact: None,
            members: vec![
                (&org.nurse, true, false),
                (&org.nurse2, true, false),
                (&org.lead, true, true),
                (&org.consultant, false, false),
            ],
        },
        TeamPlan {
            id: &org.nutrition,
            name: "Nutrition & Dietetics",
            auto_cc: false,
            default_contact: Some(&org.dietitian),
            members: vec![(&org.dietitian, true, false)],
        },
        TeamPlan {
            id: &org.pals,
            name: "Patient Advice and Liaison Service",
            auto_cc: false,
            default_contact: Some(&org.pals_officer),
            members: vec![(&org.pals_officer, true, true)],
        },
        TeamPlan {
            id: &org.cardiology,
            name: "Cardiology",
            auto_cc: false,
            default_contact: Some(&org.cardiologist),
            members: vec![(&org.cardiologist, true, true)],
        },
    ];
    for TeamPlan {
        id: team_id,
        name,
        auto_cc,
        default_contact,
        members,
    } in teams
    {
        admin
            .create_team(pb::CreateTeamRequest {
                command_id: command_id(),
                team_id: team_id.clone(),
                name: name.into(),
                description: format!("{name} at the demo hospital"),
            })
            .await?;
        for (who, contactable, lead) in members {
            admin
                .add_team_member(pb::AddTeamMemberRequest {
                    command_id: command_id(),
                    team_id: team_id.clone(),
                    professional_id: who.person_id.to_string(),
                    contactable,
                    lead,
                })
                .await?;
        }
        if auto_cc {
            admin
                .set_auto_cc(pb::SetAutoCcRequest {
                    command_id: command_id(),
                    team_id: team_id.clone(),
                    enabled: true,
                })
                .await?;
        }
        if let Some(contact) = default_contact {
            admin
                .set_default_contact(pb::SetDefaultContactRequest {
                    command_id: command_id(),
                    team_id: team_id.clone(),
                    professional_id: contact.person_id.to_string(),
                })
                .await?;
        }
    }
    // PALS takes questions and complaints from every patient.
    admin
        .set_team_open_to_patients(pb::SetTeamOpenToPatientsRequest {
            command_id: command_id(),
            team_id: org.pals.clone(),
            open: true,
        })
        .await?;
    let renal_join_code = admin
        .issue_join_code(pb::IssueJoinCodeRequest {
            command_id: command_id(),
            team_id: org.renal.clone(),
        })
        .await?
        .into_inner()
        .join_code;

    // Patients: registered by the renal nurse, who adds Pat to her team; the
    // dietitian adds Pat to Nutrition.
    let mut nurse = signer.client(&org.nurse)?;
    // Each with a date of birth, hospital number and NHS number (numbers
    // of the kind the NHS sets aside for tests), as staff see them.
    for (who, email, verified, [date_of_birth, hospital_number, nhs_number]) in [
        (
            &org.patient,
            "pat.jones@example.org",
            true,
            ["1961-04-23", "RX4409217", "9434765919"],
        ),
        (
            &org.other_patient,
            "sam.green@example.org",
            false,
            ["1988-11-02", "RX5520384", "4857773457"],
        ),
    ] {
        let request = command_id();
        nurse
            .register_patient(pb::RegisterPatientRequest {
                command_id: request.clone(),
                patient_id: who.person_id.to_string(),
                name: who.name.clone(),
                email: email.into(),
                email_verified: false,
                date_of_birth: date_of_birth.into(),
                hospital_number: hospital_number.into(),
                nhs_number: nhs_number.into(),
            })
            .await?;
        // Pat follows the link of her verification email (registering
        // asked for it: the request is the registration's event, whose id
        // is its command's).
        if verified {
            signer
                .follow_link(who, Addressee::Patient, email, request)
                .await?;
        }
    }
    nurse
        .add_patient_to_team(pb::AddPatientToTeamRequest {
            command_id: command_id(),
            patient_id: org.patient.person_id.to_string(),
            team_id: org.renal.clone(),
        })
        .await?;
    signer
        .client(&org.dietitian)?
        .add_patient_to_team(pb::AddPatientToTeamRequest {
            command_id: command_id(),
            patient_id: org.patient.person_id.to_string(),
            team_id: org.nutrition.clone(),
        })
        .await?;
    // Sam joins the renal team with its public code (self-registration).
    signer
        .client(&org.other_patient)?
        .join_team_with_code(pb::JoinTeamWithCodeRequest {
            command_id: command_id(),
            team_id: org.renal.clone(),
            join_code: renal_join_code.clone(),
            ..Default::default()
        })
        .await?;

    // Pat gives her father consent, and PALS 30 days' access.
    let mut pat = signer.client(&org.patient)?;
    pat.grant_carer_consent(pb::GrantCarerConsentRequest {
        command_id: command_id(),
        patient_id: org.patient.person_id.to_string(),
        carer_id: org.carer.person_id.to_string(),
        relationship: pb::CarerRelationship::Parent as i32,
        expires_at: None,
    })
    .await?;
    let pals_grant = pat
        .grant_record_access(Request::new(pb::GrantRecordAccessRequest {
            command_id: command_id(),
            patient_id: org.patient.person_id.to_string(),
            team_id: org.pals.clone(),
            expires_at: Some((SystemTime::now() + Duration::from_secs(30 * 86400)).into()),
            reason: "A complaint about a cancelled appointment".into(),
        }))
        .await?
        .into_inner()
        .grant_id;

    Ok(DemoOrg {
        pals_grant,
        renal_join_code,
        ..org
    })
}

/// Starts the seeds' first thread: Pat writes to the Renal Unit and copies
/// in her father. Returns the thread id.
pub async fn first_thread(signer: &Signer, org: &DemoOrg) -> Result<String, Status> {
    let reply = signer
        .client(&org.patient)?
        .start_thread(pb::StartThreadRequest {
            attachments: vec![],
            command_id: command_id(),
            thread_id: String::new(),
            patient_id: org.patient.person_id.to_string(),
            subject: "Fluid allowance before Monday's dialysis".into(),
            body: "My ankles are swollen again. How much can I drink on Sunday?".into(),
            recipients: vec![team(&org.renal)],
            carer_ids: vec![org.carer.person_id.to_string()],
        })
        .await?
        .into_inner();
    Ok(reply.aggregate_id)
}

/// The seeds' escalation on `thread`: the nurse takes the thread and asks
/// the consultant in, who advises and leaves. Returns the position of the
/// advice.
pub async fn consult(signer: &Signer, org: &DemoOrg, thread: &str) -> Result<u64, Status> {
    let mut nurse = signer.client(&org.nurse)?;
    nurse.assign(thread, &org.nurse).await?;
    nurse.add_professional(thread, &org.consultant).await?;
    let mut consultant = signer.client(&org.consultant)?;
    let advice = consultant.post(thread, "One litre on Sunday.").await?;
    consultant.leave(thread).await?;
    Ok(advice)
}
