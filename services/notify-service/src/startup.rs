//! The notification service in the read services' scaffold
//! (`careline_read_kit::ReadApplication`): its projection and gRPC methods, its
//! delivery tables, and the delivery worker beside the server, all stopped
//! by one shutdown.

use careline_read_kit::{AccessLog, ReadApplication, ReadParts, Started};
use event_store::{EventStore, JetStreamStore};
use proto::notify::notification_service_server::NotificationServiceServer;
use service_kit::metrics::Gauge;

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

    /// The queue: notifications waiting for their first attempt, and those
    /// waiting to be tried again.
    fn gauges(&self, pool: &deadpool_postgres::Pool) -> Vec<Gauge> {
        let pool = pool.clone();
        vec![Gauge::new(
            "careline_notify_queue",
            "Notifications not yet sent: due (never tried) and retrying.",
            move || {
                let pool = pool.clone();
                async move {
                    let Ok(client) = pool.get().await else {
                        return vec![];
                    };
                    match client.query_one(crate::delivery::QUEUE, &[]).await {
                        Ok(row) => vec![
                            (
                                vec![("state", "due".to_string())],
                                row.get::<_, i64>(0) as f64,
                            ),
                            (
                                vec![("state", "retrying".to_string())],
                                row.get::<_, i64>(1) as f64,
                            ),
                        ],
                        Err(_) => vec![],
                    }
                }
            },
        )]
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
