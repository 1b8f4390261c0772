//! An identity provider in this process, over real HTTP: its discovery
//! document and its keys (JWKS), and ID tokens signed with its Ed25519 key,
//! saying whatever a test needs them to say (a forged one included). The
//! command service reads its keys as it reads any provider's.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// A PKCS#8 v1 document holding an Ed25519 seed is this prefix and the seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The Careline client id the tests register at the provider.
pub const CLIENT_ID: &str = "careline";

/// A provider serving its discovery document and keys until dropped.
#[allow(missing_debug_implementations)]
pub struct TestProvider {
    pub issuer: String,
    key: EncodingKey,
    kid: String,
    _server: tokio::task::JoinHandle<()>,
}

/// An Ed25519 key from `seed`: its signing half, and its public half as a JWK.
fn key(seed: [u8; 32], kid: &str) -> (EncodingKey, serde_json::Value) {
    let mut der = PKCS8_ED25519_PREFIX.to_vec();
    der.extend_from_slice(&seed);
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let jwk = serde_json::json!({
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
        "kid": kid, "x": URL_SAFE_NO_PAD.encode(public),
    });
    (EncodingKey::from_ed_der(&der), jwk)
}

/// What an ID token says; [`TestProvider::claims`] gives a good one.
pub type Claims = serde_json::Map<String, serde_json::Value>;

impl TestProvider {
    /// A provider on a free port, publishing the key of `seed`.
    pub async fn start(seed: [u8; 32]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}");
        let kid = format!("idp-{}", seed[0]);
        let (key, jwk) = key(seed, &kid);
        let discovery = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
        })
        .to_string();
        let jwks = serde_json::json!({ "keys": [jwk] }).to_string();
        let json = |body: String| {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
        };
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { json(discovery) }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || async move { json(jwks) }),
            );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            issuer,
            key,
            kid,
            _server: server,
        }
    }

    /// Good claims for account `subject`, answering `nonce`, for Careline.
    pub fn claims(&self, subject: &str, nonce: &str) -> Claims {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({
            "iss": self.issuer, "sub": subject, "aud": CLIENT_ID,
            "iat": now, "exp": now + 300, "nonce": nonce,
            "name": "Nia New", "email": format!("{subject}@idp.example"),
            "email_verified": true,
        });
        match claims {
            serde_json::Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    /// `claims` signed with this provider's key.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// `claims` signed with another key under this provider's key id: a
    /// forgery.
    pub fn forge(&self, claims: &Claims) -> String {
        let (other, _) = key([0xEE; 32], &self.kid);
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &other).unwrap()
    }

    /// How long ago a token issued `ago` expires, as an `exp` claim.
    pub fn expired(ago: Duration) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - ago.as_secs()
    }
}
