//! What an operator on call reads off a running process: Prometheus metrics
//! (text format 0.0.4) beside a liveness and a readiness check, on an
//! address of the process's own (`CARELINE_<NAME>_METRICS_ADDR`), never on
//! the public port.
//!
//! Counters and latency histograms are recorded where things happen, in
//! this process's one [`Registry`] ([`global`]): every gRPC call of a
//! service [`crate::server::serve`]s (by method and status code), every web
//! request. Gauges (a projection's lag, a queue's depth) are read when
//! scraped, by the functions an [`Endpoint`] is given. No metric carries a
//! person, a thread or any content: labels are method, route, code and
//! the like.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// Latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A boxed future, as gauges and checks return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One sample of a gauge: its labels and value.
pub type Sample = (Vec<(&'static str, String)>, f64);

enum Series {
    Counter(u64),
    Histogram {
        buckets: [u64; BUCKETS.len()],
        count: u64,
        sum: f64,
    },
}

struct Family {
    help: &'static str,
    histogram: bool,
    /// By rendered labels (`a="x",b="y"`).
    series: BTreeMap<String, Series>,
}

/// A process's counters and histograms.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry(..)")
    }
}

/// This process's registry.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    labels
        .into_iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

fn braced(labels: &str) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    }
}

impl Registry {
    fn with<F: FnOnce(&mut Series)>(
        &self,
        name: &'static str,
        help: &'static str,
        histogram: bool,
        labels: &[(&str, &str)],
        update: F,
    ) {
        let key = render_labels(labels.iter().copied());
        let mut families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            histogram,
            series: BTreeMap::new(),
        });
        let series = family.series.entry(key).or_insert_with(|| {
            if histogram {
                Series::Histogram {
                    buckets: [0; BUCKETS.len()],
                    count: 0,
                    sum: 0.0,
                }
            } else {
                Series::Counter(0)
            }
        });
        update(series);
    }

    /// Adds one to the counter `name` (ending in `_total`) with `labels`.
    pub fn count(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)]) {
        self.with(name, help, false, labels, |s| {
            if let Series::Counter(n) = s {
                *n += 1;
            }
        });
    }

    /// Records one observation of the latency histogram `name` (ending in
    /// `_seconds`) with `labels`.
    pub fn observe(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        took: Duration,
    ) {
        let seconds = took.as_secs_f64();
        self.with(name, help, true, labels, |s| {
            if let Series::Histogram {
                buckets,
                count,
                sum,
            } = s
            {
                for (bucket, bound) in buckets.iter_mut().zip(BUCKETS) {
                    if seconds <= bound {
                        *bucket += 1;
                    }
                }
                *count += 1;
                *sum += seconds;
            }
        });
    }

    /// The counters and histograms, in the text format.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, family) in families.iter() {
            let kind = if family.histogram {
                "histogram"
            } else {
                "counter"
            };
            out.push_str(&format!(
                "# HELP {name} {}\n# TYPE {name} {kind}\n",
                family.help
            ));
            for (labels, series) in &family.series {
                match series {
                    Series::Counter(n) => {
                        out.push_str(&format!("{name}{} {n}\n", braced(labels)));
                    }
                    Series::Histogram {
                        buckets,
                        count,
                        sum,
                    } => {
                        let sep = if labels.is_empty() { "" } else { "," };
                        for (n, bound) in buckets.iter().zip(BUCKETS) {
                            out.push_str(&format!(
                                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}\n"
                            ));
                        }
                        out.push_str(&format!(
                            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}\n"
                        ));
                        out.push_str(&format!("{name}_sum{} {sum}\n", braced(labels)));
                        out.push_str(&format!("{name}_count{} {count}\n", braced(labels)));
                    }
                }
            }
        }
        out
    }
}

/// A gauge read when scraped: its name, help and samples.
pub struct Gauge {
    name: &'static str,
    help: &'static str,
    read: Arc<dyn Fn() -> BoxFuture<Vec<Sample>> + Send + Sync>,
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gauge({})", self.name)
    }
}

impl Gauge {
    pub fn new<F, Fut>(name: &'static str, help: &'static str, read: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Sample>> + Send + 'static,
    {
        Self {
            name,
            help,
            read: Arc::new(move || Box::pin(read())),
        }
    }
}

/// One thing a process needs before it can answer (NATS, PostgreSQL, its
/// projection): its name and a check that says what is wrong.
pub struct Check {
    name: &'static str,
    check: Arc<dyn Fn() -> BoxFuture<Result<(), String>> + Send + Sync>,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Check({})", self.name)
    }
}

impl Check {
    /// Ready while `ask` answers `Ok` (its value unused); its error says why not.
    pub fn answering<F, Fut, T, E>(name: &'static str, ask: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        Self::new(name, move || {
            let asked = ask();
            async move { asked.await.map(|_| ()).map_err(|e| e.to_string()) }
        })
    }

    pub fn new<F, Fut>(name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name,
            check: Arc::new(move || Box::pin(check())),
        }
    }
}

/// How long a gauge or a readiness check may take when scraped.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/metrics` and `/readyz` read beside the registry.
#[derive(Default, Clone)]
pub struct Endpoint {
    gauges: Arc<Vec<Gauge>>,
    checks: Arc<Vec<Check>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field(
                "gauges",
                &self.gauges.iter().map(|g| g.name).collect::<Vec<_>>(),
            )
            .field(
                "checks",
                &self.checks.iter().map(|c| c.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Endpoint {
    pub fn new(gauges: Vec<Gauge>, checks: Vec<Check>) -> Self {
        Self {
            gauges: Arc::new(gauges),
            checks: Arc::new(checks),
        }
    }

    /// The registry's metrics and the gauges', in the text format.
    pub async fn render(&self) -> String {
        let mut out = global().render();
        for gauge in self.gauges.iter() {
            let samples = tokio::time::timeout(READ_TIMEOUT, (gauge.read)())
                .await
                .unwrap_or_default();
            let name = gauge.name;
            out.push_str(&format!(
                "# HELP {name} {}\n# TYPE {name} gauge\n",
                gauge.help
            ));
            for (labels, value) in samples {
                let labels = render_labels(labels.iter().map(|(k, v)| (*k, v.as_str())));
                out.push_str(&format!("{name}{} {value}\n", braced(&labels)));
            }
        }
        out
    }

    /// Every check's failure (`name: why`); empty when ready.
    pub async fn not_ready(&self) -> Vec<String> {
        let mut failed = Vec::new();
        for check in self.checks.iter() {
            match tokio::time::timeout(READ_TIMEOUT, (check.check)()).await {
                Ok(Ok(())) => {}
                Ok(Err(why)) => failed.push(format!("{}: {why}", check.name)),
                Err(_) => failed.push(format!("{}: no answer within {READ_TIMEOUT:?}", check.name)),
            }
        }
        failed
    }

    /// `/metrics`, `/livez` (the process answers) and `/readyz` (every
    /// check passes: 200 `ready`, else 503 naming what is not).
    pub fn router(self) -> Router {
        Router::new()
            .route("/metrics", get(metrics))
            .route("/livez", get(|| async { "live\n" }))
            .route("/readyz", get(readyz))
            .with_state(self)
    }

    /// Serves [`Self::router`] on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Binds `addr` (when set) and serves there beside the process until
    /// `shutdown` resolves, logging where; `None` serves nothing.
    pub async fn spawn(
        self,
        addr: Option<std::net::SocketAddr>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        let Some(addr) = addr else {
            return Ok(None);
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))?;
        tracing::info!(%addr, "metrics, /livez and /readyz");
        Ok(Some(tokio::spawn(async move {
            if let Err(e) = self.serve(listener, shutdown).await {
                tracing::error!("the metrics endpoint failed: {e}");
            }
        })))
    }
}

async fn metrics(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        endpoint.render().await,
    )
}

async fn readyz(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    let failed = endpoint.not_ready().await;
    if failed.is_empty() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", failed.join("; ")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        let r = Registry::default();
        r.count("x_total", "Xs.", &[("code", "Ok")]);
        r.count("x_total", "Xs.", &[("code", "Ok")]);
        r.count("x_total", "Xs.", &[("code", "say \"hi\"")]);
        r.observe("t_seconds", "Ts.", &[("m", "A")], Duration::from_millis(3));
        let text = r.render();
        assert!(text.contains("# TYPE x_total counter\n"), "{text}");
        assert!(text.contains("x_total{code=\"Ok\"} 2\n"), "{text}");
        assert!(
            text.contains("x_total{code=\"say \\\"hi\\\"\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{m=\"A\",le=\"0.0025\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{m=\"A\",le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{m=\"A\",le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("t_seconds_count{m=\"A\"} 1\n"), "{text}");
    }

    #[tokio::test]
    async fn readiness_names_what_is_not_ready() {
        let endpoint = Endpoint::new(
            vec![Gauge::new("lag", "Lag.", || async {
                vec![(vec![("projection", "inbox".to_string())], 3.0)]
            })],
            vec![
                Check::new("nats", || async { Ok(()) }),
                Check::new("postgres", || async { Err("connection refused".into()) }),
            ],
        );
        assert_eq!(
            endpoint.not_ready().await,
            vec!["postgres: connection refused"]
        );
        let text = endpoint.render().await;
        assert!(
            text.contains("# TYPE lag gauge\nlag{projection=\"inbox\"} 3\n"),
            "{text}"
        );
    }
}
