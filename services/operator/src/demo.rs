//! `careline demo`.

use careline_client::Steps;
use careline_client::demo::{Signer, first_thread, seed};
use clap::Args;
use service_kit::TokenIssuer;

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The command service.
    #[arg(
        long,
        env = "CARELINE_COMMAND_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    command_url: String,
    /// Write `export NAME_TOKEN=...` lines for every person to this file.
    #[arg(long)]
    env_file: Option<std::path::PathBuf>,
    /// Write the demo people (id, role, name, what they are; one per line,
    /// tab-separated) to this file, for the web's demo sign-in
    /// (`CARELINE_WEB_DEMO_PEOPLE`).
    #[arg(long)]
    people_file: Option<std::path::PathBuf>,
    /// The admin who seeds: the log's first admin (granted on the first
    /// seed), the same id every time. A new one when omitted, which works
    /// only on a log without an admin yet.
    #[arg(long, env = "CARELINE_DEMO_ADMIN")]
    admin_id: Option<uuid::Uuid>,
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let keys = TokenIssuer::from_env().map_err(anyhow::Error::msg)?;
    let channel = service_kit::server::connect(&args.command_url)
        .await
        .map_err(|e| anyhow::anyhow!("the command service: {e}"))?;
    let signer = match args.admin_id {
        Some(id) => Signer::with_admin(
            channel,
            keys,
            service_kit::Caller {
                person_id: id,
                role: service_kit::Role::Admin,
                name: "Ada Lovelace".into(),
            },
        ),
        None => Signer::new(channel, keys),
    };
    // Holding the link key, the demo's Pat follows her verification link.
    let signer = match service_kit::LinkIssuer::from_setting(
        std::env::var(service_kit::email_link::LINK_SIGNING_KEY_VAR).ok(),
    )
    .map_err(anyhow::Error::msg)?
    {
        Some(links) => signer.with_links(links),
        None => signer,
    };
    let org = seed(&signer).await?;
    let thread = first_thread(&signer, &org).await?;
    // Nina asks her colleagues, not Pat: a note only staff see, and the
    // cardiologist on the staff side of the thread.
    let mut nurse = signer.client(&org.nurse)?;
    let cardiologist = proto::command::recipient::Recipient::ProfessionalId(
        org.cardiologist.person_id.to_string(),
    );
    nurse.add_recipient(&thread, cardiologist, true).await?;
    nurse
        .post_staff_note(proto::command::PostStaffNoteRequest {
            command_id: careline_client::bearer::command_id(),
            thread_id: thread.clone(),
            body: "Ankles swollen again: can someone check her last potassium before we answer?"
                .into(),
        })
        .await?;

    // The hospital's appointments system speaks for the Renal Unit; with
    // the system key here, its credential is issued too.
    let appointments = uuid::Uuid::now_v7();
    signer
        .client(signer.admin())?
        .register_system(proto::command::RegisterSystemRequest {
            command_id: appointments.to_string(),
            system_id: String::new(),
            name: "Appointments".into(),
            team_ids: vec![org.renal.clone()],
        })
        .await?;
    let credential = std::env::var(service_kit::system_credential::SIGNING_KEY_VAR)
        .ok()
        .filter(|key| !key.trim().is_empty())
        .map(|key| {
            TokenIssuer::from_private_key(&key)
                .map(|issuer| {
                    issuer.mint_system(
                        appointments,
                        "Appointments",
                        std::time::Duration::from_secs(86_400),
                    )
                })
                .map_err(|e| {
                    anyhow::anyhow!("{}: {e}", service_kit::system_credential::SIGNING_KEY_VAR)
                })
        })
        .transpose()?;

    println!("Demo organisation created (people and teams are new each time).");
    println!();
    println!("  Renal Unit (automatic CC)   {}", org.renal);
    println!("  Nutrition & Dietetics       {}", org.nutrition);
    println!("  PALS (holds a grant)        {}", org.pals);
    println!("  Cardiology                  {}", org.cardiology);
    println!("  Renal join code             {}", org.renal_join_code);
    println!("  First thread (Pat -> Renal) {thread}");
    println!("    with a staff note by Nina, and the cardiologist on its staff side");
    println!("    (staff see both; Pat and her father see neither)");
    println!("  Appointments (a hospital system, for the Renal Unit) {appointments}");
    if credential.is_some() {
        println!(
            "    its credential is CARELINE_SYSTEM_CREDENTIAL below; to book Pat an appointment:"
        );
        println!(
            "    cargo run -p careline-client --example appointments -- {} {}",
            org.patient.person_id, org.renal
        );
    }
    println!();
    let mut env = String::new();
    for (what, who) in org.people() {
        println!("  {:<34} {:<16} {}", what, who.name, who.person_id);
        let var = who
            .name
            .to_uppercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>();
        env.push_str(&format!("export {var}_ID={}\n", who.person_id));
        env.push_str(&format!("export {var}_TOKEN={}\n", signer.token(who)));
    }
    // The API guide (docs/api.md) reads the trail as AUDITOR_TOKEN.
    env.push_str(&format!(
        "export AUDITOR_TOKEN={}\n",
        signer.token(&org.auditor)
    ));
    env.push_str(&format!(
        "export RENAL_TEAM={}\nexport THREAD={thread}\nexport APPOINTMENTS_SYSTEM_ID={appointments}\n",
        org.renal
    ));
    if let Some(credential) = &credential {
        env.push_str(&format!("export CARELINE_SYSTEM_CREDENTIAL={credential}\n"));
    }
    if let Some(path) = &args.people_file {
        let people: String = org
            .people()
            .iter()
            .map(|(what, who)| {
                format!(
                    "{}\t{}\t{}\t{what}\n",
                    who.person_id,
                    who.role.as_str(),
                    who.name
                )
            })
            .collect();
        std::fs::write(path, people)?;
    }
    if let Some(path) = &args.env_file {
        std::fs::write(path, &env)?;
        println!();
        println!("Tokens (valid 24 h) and ids: source {}", path.display());
    } else {
        println!();
        print!("{env}");
    }
    Ok(())
}
