//! `careline rebuild <projection>`.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use event_store::{JetStreamStore, StoreConfig};
use projections::{Progress, RunnerConfig};

#[derive(Debug, Args)]
pub(crate) struct RebuildArgs {
    /// The projection to rebuild: inbox, audit or notify (a rebuilt
    /// notification queue sends nothing again).
    projection: String,
    /// Events applied per transaction.
    #[arg(long, default_value_t = 2000)]
    batch: usize,
}

fn eta(d: Option<Duration>) -> String {
    match d {
        Some(d) => {
            let s = d.as_secs();
            format!("{}:{:02}", s / 60, s % 60)
        }
        None => "--:--".into(),
    }
}

/// `[#####-----]  51.2%  512,345 / 1,000,000 events  45,678 ev/s  ETA 0:11`
fn bar(p: &Progress) -> String {
    let fraction = if p.total == 0 {
        1.0
    } else {
        p.done as f64 / p.total as f64
    };
    let filled = (fraction * 30.0).round() as usize;
    format!(
        "  generation {} [{}{}] {:5.1}%  {} / {} events  {:.0} ev/s  ETA {}   ",
        p.generation,
        "#".repeat(filled.min(30)),
        "-".repeat(30 - filled.min(30)),
        fraction * 100.0,
        p.done,
        p.total,
        p.rate,
        eta(p.eta)
    )
}

pub(crate) async fn run(config: StoreConfig, args: RebuildArgs) -> anyhow::Result<()> {
    if !(1..=50_000).contains(&args.batch) {
        anyhow::bail!("--batch must be 1 to 50000");
    }
    let store = JetStreamStore::connect(config).await?;
    let runner = RunnerConfig::new(crate::database_url(), args.batch);
    let show = |p: &Progress| crate::console::show(&bar(p));
    let name = args.projection.as_str();
    if matches!(name, "inbox" | "audit" | "notify") {
        eprintln!("careline: rebuilding {name} beside the live generation, which keeps serving");
    }
    let result = async {
        Ok::<_, anyhow::Error>(match name {
            "inbox" => {
                projections::rebuild(
                    Arc::new(inbox_service::InboxProjection),
                    store,
                    runner,
                    show,
                )
                .await?
            }
            "audit" => {
                projections::rebuild(
                    Arc::new(audit_service::AuditProjection),
                    store,
                    runner,
                    show,
                )
                .await?
            }
            "notify" => {
                projections::rebuild(
                    Arc::new(notify_service::NotifyProjection),
                    store,
                    runner,
                    show,
                )
                .await?
            }
            other => anyhow::bail!(
                "unknown projection {other:?}: known projections are: inbox, audit, notify"
            ),
        })
    }
    .await;
    crate::console::finish();
    let report = result?;
    println!(
        "{} rebuilt: generation {} is live (replaced {}), {} events applied{} in {:.1} s ({:.0} events/s)",
        args.projection,
        report.generation,
        report.replaced,
        report.events,
        if report.resumed {
            " after resuming"
        } else {
            ""
        },
        report.elapsed.as_secs_f64(),
        report.events as f64 / report.elapsed.as_secs_f64().max(0.001)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_bar_shows_done_rate_and_eta() {
        let line = bar(&Progress {
            generation: 2,
            done: 500,
            total: 1000,
            rate: 250.0,
            eta: Some(Duration::from_secs(2)),
        });
        assert!(line.contains("[###############---------------]"), "{line}");
        assert!(
            line.contains(" 50.0%  500 / 1000 events  250 ev/s  ETA 0:02"),
            "{line}"
        );
    }
}
