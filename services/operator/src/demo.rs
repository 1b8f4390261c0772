//! `careline demo`.

use clap::Args;
use command_service::demo::{Signer, first_thread, seed};
use service_kit::TokenKeys;

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
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let keys = TokenKeys::from_env().map_err(anyhow::Error::msg)?;
    let channel = tonic::transport::Channel::from_shared(args.command_url.clone())?
        .connect()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the command service at {}: {e}",
                args.command_url
            )
        })?;
    let signer = Signer::new(channel, keys);
    let org = seed(&signer).await?;
    let thread = first_thread(&signer, &org).await?;

    println!("Demo organisation created (people and teams are new each time).");
    println!();
    println!("  Renal Unit (automatic CC)   {}", org.renal);
    println!("  Nutrition & Dietetics       {}", org.nutrition);
    println!("  PALS (holds a grant)        {}", org.pals);
    println!("  Cardiology                  {}", org.cardiology);
    println!("  Renal join code             {}", org.renal_join_code);
    println!("  First thread (Pat -> Renal) {thread}");
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
    // A privacy officer: the auditor role comes with the token alone.
    let auditor = service_kit::Caller {
        person_id: uuid::Uuid::now_v7(),
        role: service_kit::Role::Auditor,
        name: "Priya Shah".into(),
    };
    println!(
        "  {:<34} {:<16} {}",
        "Privacy officer (auditor)", auditor.name, auditor.person_id
    );
    env.push_str(&format!(
        "export AUDITOR_TOKEN={}\n",
        signer.token(&auditor)
    ));
    env.push_str(&format!(
        "export RENAL_TEAM={}\nexport THREAD={thread}\n",
        org.renal
    ));
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
