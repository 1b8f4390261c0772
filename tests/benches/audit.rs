//! Audit trail benchmark: the rate at which the audit projection is rebuilt
//! from the log (every event hashed into its record's chain), and how long
//! verifying every chain takes, from the table and against the log.
//!
//! `BENCH_SCALE` (default 0.25) scales the generated organisation: at 1.0 it
//! is the inbox benchmark's 1M events (100k threads, 10k staff).

// A benchmark: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use audit_service::AuditProjection;
use event_store::testing::{TestStream, bench_setting};
use event_store::world::{Spec, append, generate};
use projections::RunnerConfig;
use projections::testing::TestDatabase;
use proto::audit as pb;
use service_kit::{Caller, Role};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let scale: f64 = bench_setting("BENCH_SCALE", 0.25);
    let batch: usize = bench_setting("BENCH_BATCH", 2000);
    let spec = Spec::benchmark(scale);
    let stream = TestStream::new("auditbench").await;
    let log = generate(spec, Duration::from_secs(30 * 86_400));
    let events = log.len();
    println!(
        "audit benchmark: {events} events ({} threads, {} staff, {} patients), batches of {batch}",
        spec.threads,
        spec.teams * spec.staff_per_team,
        spec.patients
    );
    let auditor_id = log.world.auditor;
    append(stream.store(), log, 64).await;

    let db = TestDatabase::new("auditbench").await;
    let config = RunnerConfig::new(db.url.clone(), batch);
    let report = projections::rebuild(
        Arc::new(AuditProjection),
        stream.store().clone(),
        config,
        |_| {},
    )
    .await
    .unwrap();
    let client = projections::connect(&db.url).await.unwrap();
    let entries: i64 = client
        .query_one("SELECT count(*) FROM audit.entries", &[])
        .await
        .unwrap()
        .get(0);
    let secs = report.elapsed.as_secs_f64();
    println!(
        "audit rebuild: {:.0} events/s ({} events, {entries} entries, in {secs:.1} s; {:.0} entries/s)",
        report.events as f64 / secs,
        report.events,
        entries as f64 / secs
    );

    // Verify through the service: every chain, then against the log.
    let keys = service_kit::test_issuer();
    let mut config = testkit::audit_config(&db, &stream, Duration::from_secs(30));
    config.read.batch_size = batch;
    let service = testkit::run_read::<audit_service::startup::AuditParts<_>, _>(
        config,
        stream.store().clone(),
    )
    .await;
    let addr = service.addr;
    let auditor = Caller {
        person_id: auditor_id,
        role: Role::Auditor,
        name: "Generated Auditor".into(),
    };
    let token = keys.mint(&auditor, Duration::from_secs(3600));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut audit = pb::audit_service_client::AuditServiceClient::with_interceptor(
        channel,
        careline_client::bearer::Bearer::new(&token).unwrap(),
    )
    .max_decoding_message_size(64 << 20);
    for against_stream in [false, true] {
        let started = Instant::now();
        let reply = audit
            .verify(pb::VerifyRequest {
                min_position: report.events,
                patient_id: String::new(),
                against_stream,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(reply.intact, "{:?}", reply.findings.first());
        println!(
            "verify every chain{}: {} chains, {} entries in {:.1} s",
            if against_stream {
                " against the log"
            } else {
                ""
            },
            reply.chains,
            reply.entries,
            started.elapsed().as_secs_f64()
        );
    }
}
