//! Database errors as a service's caller should see them, produced by the
//! real PostgreSQL: conflicts are worth a retry, outages are outages, and
//! only the rest is a defect.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use projections::testing::TestDatabase;
use projections::{Failure, classify, connect, describe_error};

#[tokio::test]
async fn a_deadlock_a_lock_timeout_and_an_outage_are_not_defects() {
    let db = TestDatabase::new("errors").await;
    let mut a = connect(&db.url).await.unwrap();
    let mut b = connect(&db.url).await.unwrap();
    a.batch_execute(
        "CREATE TABLE x (id int PRIMARY KEY, v int); INSERT INTO x VALUES (1, 0), (2, 0)",
    )
    .await
    .unwrap();

    // Each holds one row and wants the other's: one of them is the victim.
    let ta = a.transaction().await.unwrap();
    let tb = b.transaction().await.unwrap();
    ta.execute("UPDATE x SET v = 1 WHERE id = 1", &[])
        .await
        .unwrap();
    tb.execute("UPDATE x SET v = 1 WHERE id = 2", &[])
        .await
        .unwrap();
    let (ra, rb) = tokio::join!(
        ta.execute("UPDATE x SET v = 2 WHERE id = 2", &[]),
        tb.execute("UPDATE x SET v = 2 WHERE id = 1", &[]),
    );
    let victim = ra.err().or(rb.err()).expect("one of them is refused");
    assert_eq!(
        classify(&victim),
        Failure::Conflict,
        "{}",
        describe_error(&victim)
    );
    assert!(describe_error(&victim).starts_with("40P01"));
    drop((ta, tb));

    // A lock wait that times out.
    let ta = a.transaction().await.unwrap();
    ta.execute("UPDATE x SET v = 3 WHERE id = 1", &[])
        .await
        .unwrap();
    b.batch_execute("SET lock_timeout = '20ms'").await.unwrap();
    let timed_out = b
        .execute("UPDATE x SET v = 4 WHERE id = 1", &[])
        .await
        .unwrap_err();
    assert_eq!(classify(&timed_out), Failure::Conflict);
    drop(ta);

    // A bug in a statement is a defect.
    let bug = a
        .execute("SELECT no_such_column FROM x", &[])
        .await
        .unwrap_err();
    assert_eq!(classify(&bug), Failure::Defect);

    // The server ends the session: an outage.
    let pid: i32 = b
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    a.execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let gone = b.execute("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(
        classify(&gone),
        Failure::Unavailable,
        "{}",
        describe_error(&gone)
    );
}
