//! The hospital's appointments system, as Careline sees it: a registered
//! system (`RegisterSystem`) holding the credential an operator issued it
//! (`careline system-token`), which books an appointment in its own books
//! and tells the patient with a notice from the team (`PostNotice`). The
//! appointment's id is the notice's reference, so a booking told twice (a
//! retry, a restart of the system) is one message.
//!
//! `examples/appointments.rs` runs it from the command line.

use proto::command as pb;
use tonic::Status;
use tonic::transport::Channel;

/// An appointment the system booked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appointment {
    /// The system's own id of it, e.g. `APT-0193A7F2`.
    pub id: String,
    pub patient_id: String,
    /// The team whose clinic it is (one the system may speak for).
    pub team_id: String,
    /// When, as the patient reads it: "Tuesday 12 January, 10:30".
    pub when: String,
    /// Where: "Renal clinic, Outpatients B, ground floor".
    pub place: String,
}

impl Appointment {
    /// A new booking with an id of the system's own.
    pub fn book(patient_id: &str, team_id: &str, when: &str, place: &str) -> Self {
        let id = uuid::Uuid::now_v7().simple().to_string();
        Self {
            id: format!("APT-{}", id[id.len() - 8..].to_uppercase()),
            patient_id: patient_id.into(),
            team_id: team_id.into(),
            when: when.into(),
            place: place.into(),
        }
    }

    /// The notice that tells the patient, in a new thread.
    pub fn notice(&self) -> pb::PostNoticeRequest {
        pb::PostNoticeRequest {
            reference: self.id.clone(),
            team_id: self.team_id.clone(),
            patient_id: self.patient_id.clone(),
            thread_id: String::new(),
            subject: "Your appointment".into(),
            body: format!(
                "An appointment has been booked for you.\n\nWhen: {}\nWhere: {}\n\nIf you cannot come, reply here and the team will offer another time. Your reference is {}.",
                self.when, self.place, self.id
            ),
        }
    }
}

/// Tells the patient of `appointment` as the system whose credential is
/// `credential`: the command's answer (`replayed` when it was told before).
pub async fn notify(
    channel: Channel,
    credential: &str,
    appointment: &Appointment,
) -> Result<pb::CommandReply, Status> {
    let mut client = crate::client(channel, credential)?;
    Ok(client.post_notice(appointment.notice()).await?.into_inner())
}
