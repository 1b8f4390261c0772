//! The inbox service in the read services' scaffold
//! (`careline_read_kit::ReadApplication`): its projection, its record of reads
//! and its gRPC methods.

use careline_read_kit::{AccessLog, ReadApplication, ReadParts, Started};
use event_store::{EventStore, JetStreamStore};
use proto::inbox::inbox_service_server::InboxServiceServer;

use crate::config::Config;
use crate::error::Inbox;
use crate::grpc::InboxGrpc;
use crate::projection::InboxProjection;

/// A bound, ready-to-run inbox service.
pub type Application<S = JetStreamStore> = ReadApplication<InboxParts, S>;

/// What the inbox is besides the scaffold.
pub struct InboxParts {
    access: AccessLog,
    files: crate::grpc::OpenFiles,
}

impl std::fmt::Debug for InboxParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxParts")
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

impl<S: EventStore> ReadParts<S> for InboxParts {
    type Config = Config;
    type Name = Inbox;
    type Projection = InboxProjection;
    type Grpc = InboxServiceServer<InboxGrpc>;

    fn new(config: Config, store: &S) -> Self {
        let access = if config.record_reads {
            AccessLog::recording(store.clone())
        } else {
            AccessLog::off()
        };
        let store = store.clone();
        let files: crate::grpc::OpenFiles = std::sync::Arc::new(move || {
            let store = store.clone();
            Box::pin(async move { store.files().await })
        });
        Self { access, files }
    }

    fn projection(&self) -> InboxProjection {
        InboxProjection
    }

    fn start(self, started: Started<Inbox>) -> (Self::Grpc, Vec<tokio::task::JoinHandle<()>>) {
        let grpc = InboxGrpc::new(
            started.reader,
            self.access,
            started.checkpoint,
            started.stopping,
            self.files,
        );
        (InboxServiceServer::new(grpc), Vec::new())
    }
}
