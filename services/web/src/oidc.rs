//! OpenID Connect sign-in: the authorization code flow with PKCE (S256), a
//! state and a nonce, at the provider `CARELINE_WEB_OIDC_ISSUER` names
//! (found through its `/.well-known/openid-configuration`). The ID token is
//! checked here: signed by a key of the provider's JWKS, by it (issuer), for
//! us (audience), not expired, and answering our nonce.
//!
//! What the browser carries away and back is kept with the sessions
//! ([`Sessions::keep`]: in this process or shared by every instance), under
//! its pre-sign-in cookie: nothing of it is in the browser but the state.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use sha2::Digest;

use crate::session::{Sessions, StoreError, random_token};

/// How long a sign-in may take at the provider.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// How long the provider may take to answer one request.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// The provider and this service's registration with it.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: service_kit::secret::Secret,
    /// `<base>/sign-in/callback`, as registered at the provider.
    pub redirect_uri: String,
    /// What the sign-in button says ("Sign in with NHS login").
    pub label: String,
}

/// Why a sign-in at the provider did not work.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider answered {0}")]
    Refused(String),
    #[error("the identity provider's ID token is not valid: {0}")]
    BadToken(String),
    #[error("this sign-in was not started here, or took too long: start again")]
    Unknown,
    #[error("this sign-in cannot be checked just now: try again in a minute")]
    Store(#[from] StoreError),
}

/// What is kept of a sign-in in flight, and of an account not linked yet.
const PENDING: &str = "pending";
const HELD: &str = "held";

/// A person as the provider vouches for them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
}

/// A sign-in begun: what the way back must match.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
}

/// The provider, as discovered.
#[derive(Debug)]
pub struct Oidc {
    settings: OidcSettings,
    authorization_endpoint: String,
    token_endpoint: String,
    keys: JwkSet,
}

#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(serde::Deserialize)]
struct TokenReply {
    id_token: String,
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

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The S256 challenge of a PKCE verifier.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

impl Oidc {
    /// The provider `settings.issuer` names, from its discovery document
    /// and its keys.
    pub async fn discover(settings: OidcSettings) -> Result<Arc<Self>, OidcError> {
        let base = settings.issuer.trim_end_matches('/');
        let url = format!("{base}/.well-known/openid-configuration");
        let found: Discovery = json(&fetch(&url, None, None).await?)?;
        if found.issuer.trim_end_matches('/') != base {
            return Err(OidcError::Refused(format!(
                "issuer {} in its discovery document, not {base}",
                found.issuer
            )));
        }
        let keys: JwkSet = json(&fetch(&found.jwks_uri, None, None).await?)?;
        Ok(Arc::new(Self {
            settings,
            authorization_endpoint: found.authorization_endpoint,
            token_endpoint: found.token_endpoint,
            keys,
        }))
    }

    pub fn label(&self) -> &str {
        &self.settings.label
    }

    /// Keeps `identity`, signed in at the provider but linked to no one,
    /// for the browser `browser` while it signs up or follows an
    /// invitation (at most [`PENDING_FOR`]): what that then links.
    pub async fn hold(
        &self,
        sessions: &Sessions,
        browser: &str,
        identity: &Identity,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_string(identity).unwrap_or_default();
        sessions.keep(browser, HELD, &value, PENDING_FOR).await
    }

    /// The account `browser` signed in with and has not linked yet.
    pub async fn held(&self, sessions: &Sessions, browser: &str) -> Option<Identity> {
        match sessions.look(browser, HELD).await {
            Ok(value) => serde_json::from_str(&value?).ok(),
            Err(e) => {
                tracing::warn!(error = %e, "an account not linked yet could not be read");
                None
            }
        }
    }

    /// Forgets what `browser` held (linked now, or signed in otherwise).
    pub async fn release(&self, sessions: &Sessions, browser: &str) {
        if let Err(e) = sessions.forget(browser, HELD).await {
            tracing::warn!(error = %e, "an account not linked yet was not forgotten");
        }
    }

    /// Begins a sign-in for the browser of pre-sign-in cookie `browser`,
    /// to come back to `next`: the provider's URL to send it to.
    pub async fn begin(
        &self,
        sessions: &Sessions,
        browser: &str,
        next: &str,
    ) -> Result<String, StoreError> {
        let pending = Pending {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
            next: next.to_string(),
        };
        let url = format!(
            "{}?response_type=code&client_id={}&redirect_uri={}&scope=openid%20profile%20email&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
            self.authorization_endpoint,
            encode(&self.settings.client_id),
            encode(&self.settings.redirect_uri),
            pending.state,
            pending.nonce,
            challenge(&pending.verifier),
        );
        let value = serde_json::to_string(&pending).unwrap_or_default();
        sessions.keep(browser, PENDING, &value, PENDING_FOR).await?;
        Ok(url)
    }

    /// Finishes the sign-in of `browser` coming back with `code` and
    /// `state`: who the provider says they are, and where they were going.
    pub async fn finish(
        &self,
        sessions: &Sessions,
        browser: &str,
        code: &str,
        state: &str,
    ) -> Result<(Identity, String), OidcError> {
        // Taken once: a replayed way back finds nothing.
        let pending = sessions
            .take(browser, PENDING)
            .await?
            .and_then(|value| serde_json::from_str::<Pending>(&value).ok())
            .filter(|p| p.state == state)
            .ok_or(OidcError::Unknown)?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &self.settings.redirect_uri)
            .append_pair("code_verifier", &pending.verifier)
            .finish();
        let basic = STANDARD.encode(format!(
            "{}:{}",
            encode(&self.settings.client_id),
            encode(self.settings.client_secret.expose())
        ));
        let reply: TokenReply = json(
            &fetch(
                &self.token_endpoint,
                Some(&format!("Basic {basic}")),
                Some(form),
            )
            .await?,
        )?;
        let identity = self.check(&reply.id_token, &pending.nonce)?;
        Ok((identity, pending.next))
    }

    /// The ID token's claims, once its signature, issuer, audience, expiry
    /// and nonce are right.
    fn check(&self, token: &str, nonce: &str) -> Result<Identity, OidcError> {
        let bad = |e: String| OidcError::BadToken(e);
        let header = decode_header(token).map_err(|e| bad(e.to_string()))?;
        let key = self
            .keys
            .keys
            .iter()
            .find(|k| header.kid.is_none() || k.common.key_id == header.kid)
            .ok_or_else(|| bad("signed by a key the provider does not publish".into()))?;
        let key = DecodingKey::from_jwk(key).map_err(|e| bad(e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.settings.issuer.trim_end_matches('/')]);
        validation.set_audience(&[&self.settings.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = decode::<IdClaims>(token, &key, &validation)
            .map_err(|e| bad(e.to_string()))?
            .claims;
        if claims.nonce.as_deref() != Some(nonce) {
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

fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, OidcError> {
    serde_json::from_slice(body)
        .map_err(|e| OidcError::Refused(format!("what it cannot read: {e}")))
}

/// One request to the provider (GET, or POST of a form): its body, when it
/// answers 200.
async fn fetch(
    url: &str,
    authorization: Option<&str>,
    form: Option<String>,
) -> Result<Vec<u8>, OidcError> {
    tokio::time::timeout(PROVIDER_TIMEOUT, fetch_now(url, authorization, form))
        .await
        .map_err(|_| {
            OidcError::Unreachable(format!("{url}: no answer within {PROVIDER_TIMEOUT:?}"))
        })?
}

async fn fetch_now(
    url: &str,
    authorization: Option<&str>,
    form: Option<String>,
) -> Result<Vec<u8>, OidcError> {
    let unreachable = |e: String| OidcError::Unreachable(format!("{url}: {e}"));
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
        return Err(OidcError::Refused(format!(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
