//! Test support: a database of its own per test, dropped when the test ends
//! (also when it panics), on a PostgreSQL server that outlives every run.

/// The server's maintenance database URL: `DATABASE_URL`, or the local default.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty database.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

fn with_database(url: &str, database: &str) -> String {
    // Replace the path of postgres://user@host:port/db?params.
    let (base, params) = match url.split_once('?') {
        Some((base, params)) => (base, Some(params)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(params) = params {
        out.push('?');
        out.push_str(params);
    }
    out
}

impl TestDatabase {
    pub async fn new(label: &str) -> Self {
        Self::on(&admin_url(), label).await
    }

    /// A fresh database on the server of `admin_url` (a maintenance
    /// database's URL): a server of a test's own.
    pub async fn on(admin_url: &str, label: &str) -> Self {
        let admin_url = admin_url.to_string();
        let label: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(24)
            .collect::<String>()
            .to_lowercase();
        let name = format!(
            "t_{label}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let admin = crate::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("tests need PostgreSQL at {admin_url}: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        Self {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = crate::connect(&admin_url).await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// One kind of query a caller repeats, answering a comparable rendering
/// of the answer (its `Debug`, say) or the error it got.
pub type Query = std::sync::Arc<
    dyn Fn() -> futures::future::BoxFuture<'static, Result<String, String>> + Send + Sync,
>;

/// A [`Query`] of one gRPC call, made afresh each time: `client.method(request)`
/// (both cloned), its answer's message or its status.
#[macro_export]
macro_rules! grpc_query {
    ($client:expr, $method:ident, $request:expr) => {{
        let (client, request) = ($client.clone(), $request);
        $crate::testing::query(move || {
            let (mut client, request) = (client.clone(), request.clone());
            async move {
                client
                    .$method(request)
                    .await
                    .map(::tonic::Response::into_inner)
            }
        })
    }};
}

/// A [`Query`] from a call answering `T` or an error (a gRPC status, say),
/// rendered with `Debug`.
pub fn query<F, Fut, T, E>(call: F) -> Query
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, E>> + Send + 'static,
    T: std::fmt::Debug,
    E: std::fmt::Debug,
{
    use futures::FutureExt;
    std::sync::Arc::new(move || {
        call()
            .map(|answer| {
                answer
                    .map(|a| format!("{a:?}"))
                    .map_err(|e| format!("{e:?}"))
            })
            .boxed()
    })
}

/// The start of a long answer, for a failure message.
fn short(answer: &str) -> &str {
    let end = (0..=answer.len().min(600))
        .rev()
        .find(|i| answer.is_char_boundary(*i))
        .unwrap_or(0);
    &answer[..end]
}

/// What [`under_load`] saw.
#[derive(Debug, Default)]
pub struct Load {
    /// Queries answered while the work ran.
    pub answered: usize,
    /// Every error, and every answer that differed from the one the same
    /// query gave before the work started.
    pub failures: Vec<String>,
    /// Per query, its slowest answer under the same load before the work
    /// began, and while it ran.
    pub calm: Vec<std::time::Duration>,
    pub busy: Vec<std::time::Duration>,
}

/// Runs `work` while `callers` tasks loop over every query in `queries`
/// (each caller starting at a different one). First every query is asked
/// once, alone, for the answer it must keep giving; then the callers run
/// for `calm` without the work, for each query's usual latency under that
/// load; afterwards every query is asked once more, so answers after the
/// work are checked too.
pub async fn under_load<T>(
    queries: Vec<Query>,
    callers: usize,
    calm: std::time::Duration,
    work: impl std::future::Future<Output = T>,
) -> (T, Load) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let mut expected = Vec::new();
    for query in &queries {
        match query().await {
            Ok(answer) => expected.push(answer),
            Err(e) => panic!("a query failed before the work started: {e}"),
        }
    }
    let expected = Arc::new(expected);
    let queries = Arc::new(queries);
    let stop = Arc::new(AtomicBool::new(false));
    let busy = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Mutex::new(Load {
        calm: vec![Duration::ZERO; queries.len()],
        busy: vec![Duration::ZERO; queries.len()],
        ..Load::default()
    }));
    let check = {
        let (expected, busy) = (expected.clone(), busy.clone());
        move |load: &Mutex<Load>, i: usize, answer: Result<String, String>, took: Duration| {
            let mut load = load.lock().unwrap_or_else(|p| p.into_inner());
            if busy.load(Ordering::Relaxed) {
                load.answered += 1;
                load.busy[i] = load.busy[i].max(took);
            } else {
                load.calm[i] = load.calm[i].max(took);
            }
            match answer {
                Err(e) => load.failures.push(format!("query {i}: {e}")),
                Ok(a) if a != expected[i] => load.failures.push(format!(
                    "query {i} answered differently:\n{}\nnot\n{}",
                    short(&a),
                    short(&expected[i])
                )),
                Ok(_) => {}
            }
        }
    };
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let (queries, stop, load, check) =
                (queries.clone(), stop.clone(), load.clone(), check.clone());
            tokio::spawn(async move {
                let mut i = caller % queries.len();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let answer = queries[i]().await;
                    check(&load, i, answer, started.elapsed());
                    i = (i + 1) % queries.len();
                }
            })
        })
        .collect();
    tokio::time::sleep(calm).await;
    busy.store(true, Ordering::Relaxed);
    let out = work.await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a caller panicked");
    }
    for (i, query) in queries.iter().enumerate() {
        let started = Instant::now();
        let answer = query().await;
        check(&load, i, answer, started.elapsed());
    }
    let load = std::mem::take(&mut *load.lock().unwrap_or_else(|p| p.into_inner()));
    (out, load)
}

/// Rebuilds `projection` `rebuilds` times in a row (as `careline rebuild`
/// does) while `callers` tasks loop over `queries`, and fails unless every
/// query answered, the same as before, and none waited on a rebuild: each
/// query's slowest answer during the rebuilds is within the longest switch
/// plus half a second (at most half the shortest rebuild) of its slowest
/// answer under the same load without them: the half second is the noise
/// of a machine busy with other tests; a query held through a rebuild
/// still fails it.
pub async fn assert_rebuilds_leave_readers_alone<P, S>(
    projection: std::sync::Arc<P>,
    store: S,
    database_url: &str,
    rebuilds: usize,
    queries: Vec<Query>,
    callers: usize,
) where
    P: crate::Projection,
    S: event_store::EventStore,
{
    use std::time::Duration;
    let work = async {
        let mut switches = Vec::new();
        let mut shortest = Duration::MAX;
        for _ in 0..rebuilds {
            let started = std::time::Instant::now();
            let report = crate::rebuild(
                projection.clone(),
                store.clone(),
                crate::RunnerConfig::new(database_url.to_string(), 1000),
                |_| {},
            )
            .await
            .unwrap_or_else(|e| panic!("a rebuild failed: {e}"));
            switches.push(report.switch);
            shortest = shortest.min(started.elapsed());
        }
        (switches, shortest)
    };
    let ((switches, shortest), load) = tokio::time::timeout(
        Duration::from_secs(300),
        under_load(queries, callers, Duration::from_secs(3), work),
    )
    .await
    .unwrap_or_else(|_| panic!("{rebuilds} rebuilds under load did not finish in 5 minutes"));
    let longest = switches.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{} queries during {rebuilds} rebuilds of {} (the shortest {shortest:?}); \
         longest switch {longest:?}; slowest answer per query, without rebuilds {:?}, with {:?}",
        load.answered,
        projection.name(),
        load.calm,
        load.busy
    );
    assert!(load.answered > 100, "only {} queries ran", load.answered);
    assert!(
        load.failures.is_empty(),
        "{} of {} queries failed during {rebuilds} rebuilds, first: {}",
        load.failures.len(),
        load.answered,
        load.failures[0]
    );
    // Never as long as a rebuild: a query held through one fails.
    let noise = Duration::from_millis(500).min(shortest / 2);
    for (i, (calm, busy)) in load.calm.iter().zip(&load.busy).enumerate() {
        assert!(
            *busy <= *calm + longest + noise,
            "query {i} took up to {busy:?} during the rebuilds, {calm:?} without; \
             the longest switch took {longest:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_is_replaced_in_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t_x"),
            "postgres://postgres@127.0.0.1:5432/t_x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t_x"),
            "postgres://u:p@h/t_x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t_x"), "postgres://h/t_x");
    }
}
