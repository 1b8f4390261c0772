//! `careline`: the operator CLI. See `operator::Cli` for the commands.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    operator::init_tracing();
    let cli = operator::Cli::parse();
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("careline: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
