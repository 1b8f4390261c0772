//! A first start on an empty database: everything the worker and the
//! queries read exists before either starts.

use std::time::Duration;

use event_store::testing::TestStream;
use projections::Projection;
use projections::testing::TestDatabase;

use crate::support::smtp;

#[tokio::test]
async fn the_tables_exist_before_the_worker_starts() {
    let stream = TestStream::new("notifyfirst").await;
    let db = TestDatabase::new("notifyfirst").await;
    let _app = notify_service::Application::with_store(
        testkit::notify_config(&db, &stream, Duration::from_secs(1), smtp(9)),
        stream.store().clone(),
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
