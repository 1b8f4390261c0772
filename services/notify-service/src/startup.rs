//! The notification service in the read services' scaffold
//! (`projections::ReadApplication`): its projection and gRPC methods, its
//! delivery tables, and the delivery worker beside the server, all stopped
//! by one shutdown.

use event_store::{EventStore, JetStreamStore};
use projections::{AccessLog, ReadApplication, ReadParts, Started};
use proto::notify::notification_service_server::NotificationServiceServer;

use crate::config::Config;
use crate::grpc::{Notifications, NotifyGrpc};
use crate::projection::NotifyProjection;

/// A bound, ready-to-run notification service.
pub type Application<S = JetStreamStore> = ReadApplication<NotifyParts, S>;

/// What the notification service is besides the scaffold: the delivery
/// worker's settings.
#[derive(Debug)]
pub struct NotifyParts {
    config: Config,
    access: AccessLog,
}

impl<S: EventStore> ReadParts<S> for NotifyParts {
    type Config = Config;
    type Name = Notifications;
    type Projection = NotifyProjection;
    type Grpc = NotificationServiceServer<NotifyGrpc>;

    fn new(config: Config, store: &S) -> Self {
        let access = if config.record_reads {
            AccessLog::recording(store.clone())
        } else {
            AccessLog::off()
        };
        Self { config, access }
    }

    fn projection(&self) -> NotifyProjection {
        NotifyProjection
    }

    async fn prepare(&self, client: &mut tokio_postgres::Client) -> anyhow::Result<()> {
        Ok(crate::delivery::prepare(client).await?)
    }

    fn start(
        self,
        started: Started<Notifications>,
    ) -> (Self::Grpc, Vec<tokio::task::JoinHandle<()>>) {
        let worker = tokio::spawn(crate::delivery::run(
            self.config.read.database_url.clone(),
            self.config.smtp,
            self.config.clock,
            started.checkpoint,
            started.stopping,
        ));
        let grpc = NotifyGrpc::new(started.reader, self.access);
        (NotificationServiceServer::new(grpc), vec![worker])
    }
}
