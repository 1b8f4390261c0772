//! `careline status`.

use std::time::SystemTime;

use event_store::{EventStore, JetStreamStore, StoreConfig};

fn ago(t: SystemTime) -> String {
    match SystemTime::now().duration_since(t) {
        Ok(d) if d.as_secs() < 120 => format!("{} s ago", d.as_secs()),
        Ok(d) if d.as_secs() < 7200 => format!("{} min ago", d.as_secs() / 60),
        Ok(d) => format!("{} h ago", d.as_secs() / 3600),
        Err(_) => "just now".into(),
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Print it again every SECONDS (default 5) until Ctrl-C, each time
    /// under the time it was read.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "5")]
    watch: Option<u64>,
    /// Only the event stream and the bucket of files (each made when it
    /// is missing: the deployment's admin runs it first), not the
    /// projections.
    #[arg(long)]
    log: bool,
}

/// Prints the status; fails (a non-zero exit) when something is wrong: the
/// database unreachable, a projection that nothing runs, events set aside.
pub(crate) async fn run(config: StoreConfig, args: StatusArgs) -> anyhow::Result<()> {
    let store = JetStreamStore::connect(config.clone()).await?;
    if args.log {
        store.files().await?;
    }
    let Some(every) = args.watch else {
        let problems = once(&store, &config, args.log).await?;
        if problems.is_empty() {
            return Ok(());
        }
        anyhow::bail!("{}", problems.join("; "));
    };
    let every = std::time::Duration::from_secs(every.max(1));
    loop {
        let now = time::OffsetDateTime::now_utc();
        println!("--- {now}");
        match once(&store, &config, args.log).await {
            Ok(problems) if problems.is_empty() => println!("all well"),
            Ok(problems) => println!("WRONG: {}", problems.join("; ")),
            // A node or the database down is what one watches for: say so
            // and keep watching.
            Err(e) => println!("status unavailable: {e}"),
        }
        println!();
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Prints the status once: what is wrong, for the exit status.
async fn once(
    store: &JetStreamStore,
    config: &StoreConfig,
    log_only: bool,
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let head = store.last_position().await?;
    let mut stream = store.jetstream().get_stream(&config.stream).await?;
    let info = stream.info().await?;
    println!("event stream   {} on {}", config.stream, config.nats_url);
    println!("subjects       {}", info.config.subjects.join(", "));
    println!(
        "settings       {:?} storage, {} replica(s), duplicate window {:?}, deny delete {}, deny purge {}",
        info.config.storage,
        info.config.num_replicas,
        info.config.duplicate_window,
        info.config.deny_delete,
        info.config.deny_purge,
    );
    println!(
        "events         {} (head position {head}), {} bytes, {} aggregates",
        info.state.messages, info.state.bytes, info.state.subjects_count
    );
    match &config.keys {
        Some(keys) => println!(
            "signatures     checked from position {} against {}",
            config.signed_from,
            keys.describe()
        ),
        None => println!("signatures     NOT CHECKED here (CARELINE_EVENT_PUBLIC_KEYS is not set)"),
    }
    if let Some(cluster) = &info.cluster {
        let replicas: Vec<String> = cluster
            .replicas
            .iter()
            .map(|r| {
                let state = if r.offline {
                    "offline".to_string()
                } else if !r.current {
                    format!("behind by {} operations", r.lag.unwrap_or_default())
                } else {
                    "current".to_string()
                };
                format!("{} ({state}, seen {:?} ago)", r.name, r.active)
            })
            .collect();
        println!(
            "cluster        {}: leader {}; replicas {}",
            cluster.name.as_deref().unwrap_or("-"),
            cluster.leader.as_deref().unwrap_or("NONE (electing)"),
            if replicas.is_empty() {
                "none".to_string()
            } else {
                replicas.join(", ")
            }
        );
    }

    let bucket = event_store::files_bucket(&config.stream);
    match store.jetstream().get_stream(format!("OBJ_{bucket}")).await {
        Ok(mut files) => {
            let info = files.info().await?;
            println!(
                "files          bucket {bucket}: {} bytes in {} messages, deny delete {}, deny purge {}",
                info.state.bytes,
                info.state.messages,
                info.config.deny_delete,
                info.config.deny_purge
            );
        }
        Err(_) => {
            println!("files          no bucket {bucket} yet (made when the command service starts)")
        }
    }

    if log_only {
        return Ok(problems);
    }
    let url = crate::database_url();
    let client = match projections::connect(&url).await {
        Ok(client) => client,
        Err(e) => {
            println!("projections    database unreachable: {e}");
            problems.push(format!("the read models' database is unreachable: {e}"));
            return Ok(problems);
        }
    };
    let statuses = projections::status(&client).await?;
    if statuses.is_empty() {
        println!("projections    none yet (they appear when their service first starts)");
    }
    for p in statuses {
        if !p.running {
            problems.push(format!("nothing runs projection {}", p.name));
        }
        for g in &p.generations {
            if g.live {
                let running = if p.running {
                    "running"
                } else {
                    "NOT RUNNING (no service holds its lead)"
                };
                println!(
                    "projection     {:<10} {running}, generation {} live: checkpoint {}, lag {} events, updated {}",
                    p.name,
                    g.generation,
                    g.checkpoint,
                    head.saturating_sub(g.checkpoint),
                    ago(g.updated_at)
                );
            } else {
                println!(
                    "               {:<10} generation {} being rebuilt: {} of {} events ({:.1}%), updated {}",
                    p.name,
                    g.generation,
                    g.checkpoint,
                    head,
                    100.0 * g.checkpoint as f64 / head.max(1) as f64,
                    ago(g.updated_at)
                );
            }
        }
        if p.dead_letters > 0 {
            problems.push(format!(
                "projection {} set aside {} event(s)",
                p.name, p.dead_letters
            ));
            println!(
                "               {:<10} {} event(s) SET ASIDE, could not be applied (the rest of the log was):",
                p.name, p.dead_letters
            );
            for l in projections::dead_letters(&client, &p.name)
                .await?
                .iter()
                .take(10)
            {
                let what = if l.event_type.is_empty() {
                    "undecodable bytes".to_string()
                } else {
                    format!("{} on {}", l.event_type, l.subject)
                };
                println!(
                    "               {:<10}   position {}: {what}: {}",
                    "", l.position, l.reason
                );
            }
        }
    }
    Ok(problems)
}
