//! An OpenID Connect provider, as the services that talk to it see it: its
//! discovery document, its requests (HTTP/1, TLS through rustls with the
//! operating system's certificates), and the check of its ID tokens.
//!
//! The web service sends browsers to the provider and exchanges their codes;
//! the command service, which issues Careline's tokens, checks the ID token
//! the web relays ([`IdTokens::check`]): signed by a key of the provider's
//! JWKS, by it (issuer), for Careline (audience), not expired, and answering
//! the sign-in's nonce. So the web holds nothing that signs anyone in.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};

/// How long the provider may take to answer one request.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The provider's keys are read again at most this often (a token naming a
/// key not seen yet: the provider has rotated).
const KEYS_AGAIN_AFTER: Duration = Duration::from_secs(60);

/// Why the provider, or a token it is said to have signed, was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider answered {0}")]
    Refused(String),
    #[error("the identity provider's ID token is not valid: {0}")]
    BadToken(String),
}

/// The provider's discovery document (what Careline uses of it).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

impl Discovery {
    /// The discovery document of the provider `issuer` names, checked to be
    /// its own.
    pub async fn of(issuer: &str) -> Result<Self, ProviderError> {
        let base = issuer.trim_end_matches('/');
        let url = format!("{base}/.well-known/openid-configuration");
        let found: Discovery = json(&fetch(&url, None, None).await?)?;
        if found.issuer.trim_end_matches('/') != base {
            return Err(ProviderError::Refused(format!(
                "issuer {} in its discovery document, not {base}",
                found.issuer
            )));
        }
        Ok(found)
    }
}

/// A person as the provider vouches for them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
}

#[derive(serde::Deserialize)]
struct IdClaims {
    iss: String,
    sub: String,
    nonce: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    email_verified: bool,
}

/// The checker of one provider's ID tokens for one client (audience): its
/// keys are read when first needed and again when a token names a new one.
#[derive(Debug)]
pub struct IdTokens {
    issuer: String,
    client_id: String,
    keys: tokio::sync::Mutex<Option<(JwkSet, Instant)>>,
    /// How many ID tokens were refused, for the metrics.
    refused: Mutex<u64>,
}

impl IdTokens {
    /// ID tokens of `issuer` (its URL) for `client_id`.
    pub fn new(issuer: &str, client_id: &str) -> Arc<Self> {
        Arc::new(Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            keys: tokio::sync::Mutex::new(None),
            refused: Mutex::new(0),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// ID tokens refused so far.
    pub fn refused(&self) -> u64 {
        *self.refused.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key the token's header names, reading the provider's keys when
    /// none is known yet or the named one is new.
    async fn key(&self, kid: Option<&String>) -> Result<DecodingKey, ProviderError> {
        let mut keys = self.keys.lock().await;
        let find = |set: &JwkSet| {
            set.keys
                .iter()
                .find(|k| kid.is_none() || k.common.key_id.as_ref() == kid)
                .cloned()
        };
        let known = keys.as_ref().and_then(|(set, _)| find(set));
        let stale = keys
            .as_ref()
            .is_none_or(|(_, read)| read.elapsed() >= KEYS_AGAIN_AFTER);
        let jwk = match known {
            Some(jwk) => jwk,
            None if stale => {
                let discovery = Discovery::of(&self.issuer).await?;
                let set: JwkSet = json(&fetch(&discovery.jwks_uri, None, None).await?)?;
                let jwk = find(&set);
                *keys = Some((set, Instant::now()));
                jwk.ok_or_else(|| {
                    ProviderError::BadToken("signed by a key the provider does not publish".into())
                })?
            }
            None => {
                return Err(ProviderError::BadToken(
                    "signed by a key the provider does not publish".into(),
                ));
            }
        };
        DecodingKey::from_jwk(&jwk).map_err(|e| ProviderError::BadToken(e.to_string()))
    }

    /// The person an ID token vouches for, once its signature, issuer,
    /// audience, expiry and nonce are right.
    pub async fn check(&self, token: &str, nonce: &str) -> Result<Identity, ProviderError> {
        let checked = self.check_now(token, nonce).await;
        if matches!(checked, Err(ProviderError::BadToken(_))) {
            *self.refused.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        }
        checked
    }

    async fn check_now(&self, token: &str, nonce: &str) -> Result<Identity, ProviderError> {
        let bad = |e: String| ProviderError::BadToken(e);
        let header = decode_header(token).map_err(|e| bad(e.to_string()))?;
        if matches!(
            header.alg,
            jsonwebtoken::Algorithm::HS256
                | jsonwebtoken::Algorithm::HS384
                | jsonwebtoken::Algorithm::HS512
        ) {
            return Err(bad(format!(
                "signed with {:?}: only the provider's published keys are accepted",
                header.alg
            )));
        }
        let key = self.key(header.kid.as_ref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_audience(&[&self.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = decode::<IdClaims>(token, &key, &validation)
            .map_err(|e| bad(e.to_string()))?
            .claims;
        if nonce.is_empty() || claims.nonce.as_deref() != Some(nonce) {
            return Err(bad("it does not answer this sign-in (nonce)".into()));
        }
        Ok(Identity {
            issuer: claims.iss,
            subject: claims.sub,
            name: claims.name,
            email: claims.email,
            email_verified: claims.email_verified,
        })
    }
}

/// `body` read as JSON.
pub fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(body)
        .map_err(|e| ProviderError::Refused(format!("what it cannot read: {e}")))
}

/// One request to the provider (GET, or POST of a form): its body, when it
/// answers 200.
pub async fn fetch(
    url: &str,
    authorization: Option<&str>,
    form: Option<String>,
) -> Result<Vec<u8>, ProviderError> {
    tokio::time::timeout(PROVIDER_TIMEOUT, fetch_now(url, authorization, form))
        .await
        .map_err(|_| {
            ProviderError::Unreachable(format!("{url}: no answer within {PROVIDER_TIMEOUT:?}"))
        })?
}

async fn fetch_now(
    url: &str,
    authorization: Option<&str>,
    form: Option<String>,
) -> Result<Vec<u8>, ProviderError> {
    let unreachable = |e: String| ProviderError::Unreachable(format!("{url}: {e}"));
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| unreachable(e.to_string()))?;
    let host = uri
        .host()
        .ok_or_else(|| unreachable("no host".into()))?
        .to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let mut request = hyper::Request::builder()
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(
            hyper::header::HOST,
            uri.authority().map_or(host.as_str(), |a| a.as_str()),
        )
        .header(hyper::header::ACCEPT, "application/json");
    if let Some(a) = authorization {
        request = request.header(hyper::header::AUTHORIZATION, a);
    }
    let request = match form {
        Some(form) => request
            .method(hyper::Method::POST)
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(Full::new(Bytes::from(form))),
        None => request
            .method(hyper::Method::GET)
            .body(Full::new(Bytes::new())),
    }
    .map_err(|e| unreachable(e.to_string()))?;
    let response = if https {
        let tls = tls_connector().map_err(unreachable)?;
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|e| unreachable(e.to_string()))?;
        let stream = tls
            .connect(name, tcp)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        send(hyper_util::rt::TokioIo::new(stream), request).await
    } else {
        send(hyper_util::rt::TokioIo::new(tcp), request).await
    }
    .map_err(unreachable)?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(ProviderError::Refused(format!(
            "{status} at {url}: {}",
            text.chars().take(300).collect::<String>()
        )));
    }
    Ok(body.to_vec())
}

async fn send<S>(
    io: hyper_util::rt::TokioIo<S>,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

/// TLS to the provider, trusting the operating system's certificates.
fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err("no trusted certificates on this machine".into());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
