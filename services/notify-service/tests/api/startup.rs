//! A first start on an empty database: everything the worker and the
//! queries read exists before either starts.

use std::time::Duration;

use event_store::testing::TestStream;
use projections::Projection;
use projections::testing::TestDatabase;

use crate::support::{keys, smtp};

#[tokio::test]
async fn the_tables_exist_before_the_worker_starts() {
    let stream = TestStream::new("notifyfirst").await;
    let db = TestDatabase::new("notifyfirst").await;
    let _app = notify_service::Application::with_store(
        notify_service::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: db.url.clone(),
            store: stream.config().clone(),
            smtp: smtp(9),
            wait_for_position: Duration::from_secs(1),
            batch_size: 100,
            clock: notify_service::Clock::system(),
        },
        stream.store().clone(),
        keys(),
    )
    .await
    .unwrap();
    let client = projections::connect(&db.url).await.unwrap();
    let mut wanted: Vec<String> = notify_service::NotifyProjection
        .tables()
        .iter()
        .map(|t| format!("notify.{t}"))
        .collect();
    wanted.push("careline_notify.deliveries".into());
    wanted.push("careline_notify.progress".into());
    for table in wanted {
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await
            .unwrap()
            .get(0);
        assert!(exists, "{table} does not exist when the service is built");
    }
}
