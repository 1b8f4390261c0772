//! Serving one tonic service with what operators and tools expect beside it:
//! the gRPC health service and server reflection in both versions (grpcurl
//! 1.8 lists services only over v1alpha).

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;

/// The longest a call may take to answer (its headers, for a stream); a
/// client's shorter `grpc-timeout` wins.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// HTTP/2 flow-control windows, both ways: a file's chunks (128 KB) flow
/// without waiting for a window update after every one (the default window
/// is 64 KB).
pub const STREAM_WINDOW: u32 = 1024 * 1024;
pub const CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;

/// The longest an upload may take to answer: its answer comes after its
/// last byte, and 100 MB from a phone on a slow connection takes minutes.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(3600);
/// How often an idle connection is pinged, and how long the answer may take
/// before the connection is closed: a peer that vanished (a laptop lid
/// shut, a network gone) holds nothing for long.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server's TLS identity: its certificate chain and private key (PEM).
/// Its `Debug` does not show the key.
#[derive(Clone)]
pub struct ServerTls {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls(..)")
    }
}

/// The variables naming a gRPC server's certificate and key.
pub const TLS_CERT_VAR: &str = "CARELINE_TLS_CERT";
pub const TLS_KEY_VAR: &str = "CARELINE_TLS_KEY";
/// The variable naming the CA a client trusts for the services' certificates.
pub const TLS_CA_VAR: &str = "CARELINE_TLS_CA";

fn read(var: &str, path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{var}={}: {e}", path.display()))
}

impl ServerTls {
    /// Reads a certificate chain and key from PEM files.
    pub fn from_files(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, String> {
        Ok(Self {
            cert: read(TLS_CERT_VAR, cert)?,
            key: read(TLS_KEY_VAR, key)?,
        })
    }

    /// `CARELINE_TLS_CERT` and `CARELINE_TLS_KEY` (both or neither):
    /// `None` serves plaintext.
    pub fn from_env() -> Result<Option<Self>, String> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match (var(TLS_CERT_VAR), var(TLS_KEY_VAR)) {
            (Some(cert), Some(key)) => Self::from_setting(Some((cert, key))),
            (None, None) => Ok(None),
            _ => Err(format!(
                "set {TLS_CERT_VAR} and {TLS_KEY_VAR} together, or neither"
            )),
        }
    }

    /// The files `CARELINE_TLS_CERT` and `CARELINE_TLS_KEY` name, however
    /// a service reads its settings: `None` serves plaintext.
    pub fn from_setting(files: Option<(String, String)>) -> Result<Option<Self>, String> {
        files
            .map(|(cert, key)| Self::from_files(cert.as_ref(), key.as_ref()))
            .transpose()
    }
}

/// A channel to a Careline service at `url`: over TLS for `https://`,
/// trusting the CA in `CARELINE_TLS_CA` (or the system's roots).
pub async fn connect(url: &str) -> Result<tonic::transport::Channel, String> {
    let ca = std::env::var(TLS_CA_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty());
    connect_with(url, ca.as_deref().map(std::path::Path::new)).await
}

/// A channel to `url`: over TLS for `https://`, trusting the CA
/// certificate (PEM) in the file `ca`. Several comma-separated URLs (the
/// instances of one service) make one channel that spreads calls over
/// them: a call to an instance that is down fails `UNAVAILABLE` at once,
/// and the caller's retry (with the same command id) may reach another.
/// One URL is connected to now; a list, as calls need it.
pub async fn connect_with(
    url: &str,
    ca: Option<&std::path::Path>,
) -> Result<tonic::transport::Channel, String> {
    let urls: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    let endpoints = urls
        .iter()
        .map(|u| endpoint(u, ca))
        .collect::<Result<Vec<_>, _>>()?;
    match endpoints.as_slice() {
        [] => Err(format!("{url:?} names no service URL")),
        [one] => one
            .connect()
            .await
            .map_err(|e| format!("cannot reach {url}: {e}")),
        _ => Ok(tonic::transport::Channel::balance_list(
            endpoints.into_iter(),
        )),
    }
}

fn endpoint(url: &str, ca: Option<&std::path::Path>) -> Result<tonic::transport::Endpoint, String> {
    let mut endpoint = tonic::transport::Channel::from_shared(url.to_string())
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    if url.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new();
        match ca {
            Some(ca) => {
                let pem = read(TLS_CA_VAR, ca)?;
                tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            None => tls = tls.with_enabled_roots(),
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("TLS to {url}: {e}"))?;
    }
    Ok(endpoint)
}

/// Why a server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// How often the gRPC health status is brought in line with readiness.
const HEALTH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves `service` on `listener`, with health and reflection over every
/// Careline `.proto`, over TLS when `tls` is given, until `shutdown`
/// resolves; in-flight calls are allowed to finish.
///
/// Health reports `service` (and the server as a whole, "") as serving
/// while every check of `readiness` passes (checked every second), so a
/// caller (the web service's readiness) knows when this service cannot
/// answer although its process runs: its NATS or PostgreSQL gone.
pub async fn serve<S>(
    listener: tokio::net::TcpListener,
    service: S,
    tls: Option<&ServerTls>,
    readiness: crate::metrics::Endpoint,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<S>().await;
    let following = tokio::spawn(async move {
        use tonic_health::ServingStatus;
        let mut was = None;
        loop {
            let failed = readiness.not_ready().await;
            let now = if failed.is_empty() {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if was != Some(now) {
                if now == ServingStatus::NotServing {
                    tracing::warn!(why = %failed.join("; "), service = S::NAME, "not serving");
                } else if was.is_some() {
                    tracing::info!(service = S::NAME, "serving again");
                }
                health.set_service_status(S::NAME, now).await;
                health.set_service_status("", now).await;
                was = Some(now);
            }
            tokio::time::sleep(HEALTH_EVERY).await;
        }
    });
    let _following = AbortOnDrop(following);
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let routes = Routes::new(Recorded(service))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(
            tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(&tls.cert, &tls.key)),
        )?;
    }
    // Each call's time limit is `Recorded`'s (per method); a client's
    // shorter `grpc-timeout` still wins.
    builder
        .initial_stream_window_size(Some(STREAM_WINDOW))
        .initial_connection_window_size(Some(CONNECTION_WINDOW))
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .tcp_keepalive(Some(KEEPALIVE_INTERVAL))
        .add_routes(routes)
        // gRPC answers are several small HTTP/2 frames: without TCP_NODELAY,
        // Nagle's algorithm holds them back waiting for acknowledgements.
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
}

/// A service whose every call is counted by method and status code, and
/// timed (to its response headers, which for a unary call is its answer),
/// in [`crate::metrics::global`].
#[derive(Clone)]
struct Recorded<S>(S);

impl<S: NamedService> NamedService for Recorded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Recorded<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let started = std::time::Instant::now();
        let limit = if method == "UploadFile" {
            UPLOAD_TIMEOUT
        } else {
            REQUEST_TIMEOUT
        };
        let answer = self.0.call(request);
        Box::pin(async move {
            let Ok(response) = tokio::time::timeout(limit, answer).await else {
                return Ok(tonic::Status::deadline_exceeded(format!(
                    "no answer within {} s",
                    limit.as_secs()
                ))
                .into_http());
            };
            let response = response?;
            // An error is a trailers-only answer: its status is a header.
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .map_or(tonic::Code::Ok, tonic::Code::from);
            let code = format!("{code:?}");
            let metrics = crate::metrics::global();
            let labels = [("service", S::NAME), ("method", method.as_str())];
            metrics.observe(
                "careline_grpc_request_duration_seconds",
                "Time to answer a gRPC call, by method.",
                &labels,
                started.elapsed(),
            );
            metrics.count(
                "careline_grpc_requests_total",
                "gRPC calls answered, by method and status code.",
                &[labels[0], labels[1], ("code", code.as_str())],
            );
            Ok(response)
        })
    }
}

/// A task aborted when this is dropped (when the server stops).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
