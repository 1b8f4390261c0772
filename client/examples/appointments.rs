//! The hospital's appointments system: books an appointment and tells the
//! patient, with a notice from the team, through Careline's command API.
//! What it needs: the command service's address, the credential an
//! operator issued the system, the patient and the team.
//!
//! ```sh
//! # Once, as an operator (the system was registered by an admin):
//! export CARELINE_SYSTEM_CREDENTIAL=$(careline system-token --system <system-id> --name Appointments)
//! CARELINE_COMMAND_URL=http://127.0.0.1:50051 \
//!   cargo run -p careline-client --example appointments -- <patient-id> <team-id> \
//!   "Tuesday 12 January, 10:30" "Renal clinic, Outpatients B"
//! ```
//!
//! Run it twice with the same `APPOINTMENT_ID` and the patient still has
//! one message: the appointment's id is the notice's reference.

use careline_client::appointments::{Appointment, notify};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [patient, team, rest @ ..] = args.as_slice() else {
        return Err("usage: appointments <patient-id> <team-id> [when] [where]".into());
    };
    let when = rest
        .first()
        .map_or("Tuesday 12 January, 10:30", String::as_str);
    let place = rest
        .get(1)
        .map_or("Renal clinic, Outpatients B", String::as_str);
    let credential = std::env::var("CARELINE_SYSTEM_CREDENTIAL")
        .map_err(|_| "CARELINE_SYSTEM_CREDENTIAL is not set (careline system-token issues it)")?;
    let mut appointment = Appointment::book(patient, team, when, place);
    if let Ok(id) = std::env::var("APPOINTMENT_ID") {
        appointment.id = id;
    }
    let channel = tonic::transport::Channel::from_shared(var(
        "CARELINE_COMMAND_URL",
        "http://127.0.0.1:50051",
    ))?
    .connect()
    .await?;
    let reply = notify(channel, &credential, &appointment).await?;
    println!(
        "booked {} and told the patient: thread {}{}",
        appointment.id,
        reply.aggregate_id,
        if reply.replayed {
            " (told before: nothing new)"
        } else {
            ""
        }
    );
    Ok(())
}
