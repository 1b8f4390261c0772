//! The audit service in the read services' scaffold
//! (`careline_read_kit::ReadApplication`): its projection and its gRPC methods.

use std::time::Duration;

use careline_read_kit::{AccessLog, ReadApplication, ReadParts, Started};
use event_store::{EventStore, JetStreamStore};
use proto::audit::audit_service_server::AuditServiceServer;

use crate::config::Config;
use crate::error::Audit;
use crate::grpc::AuditGrpc;
use crate::projection::AuditProjection;

/// A bound, ready-to-run audit service.
pub type Application<S = JetStreamStore> = ReadApplication<AuditParts<S>, S>;

/// What the audit service is besides the scaffold: the log (a caller's
/// staff role is checked once the trail has caught up with its head; the
/// chains are verified against it) and the export's stall limit.
#[derive(Debug)]
pub struct AuditParts<S> {
    store: S,
    export_stall: Duration,
    anchor_every: Option<Duration>,
    access: AccessLog,
}

impl<S: EventStore> ReadParts<S> for AuditParts<S> {
    type Config = Config;
    type Name = Audit;
    type Projection = AuditProjection;
    type Grpc = AuditServiceServer<AuditGrpc<S>>;

    fn new(config: Config, store: &S) -> Self {
        Self {
            store: store.clone(),
            export_stall: config.export_stall,
            anchor_every: config.anchor_every,
            access: if config.record_reads {
                AccessLog::recording(store.clone())
            } else {
                AccessLog::off()
            },
        }
    }

    fn projection(&self) -> AuditProjection {
        AuditProjection
    }

    fn start(self, started: Started<Audit>) -> (Self::Grpc, Vec<tokio::task::JoinHandle<()>>) {
        let anchoring = self.anchor_every.map(|every| {
            tokio::spawn(crate::anchor::run(
                self.store.clone(),
                started.reader.pool.clone(),
                every,
                started.stopping.clone(),
            ))
        });
        let grpc = AuditGrpc::new(started.reader, self.store, self.access, self.export_stall);
        (
            AuditServiceServer::new(grpc),
            anchoring.into_iter().collect(),
        )
    }
}
