//! Authentication: every call carries `authorization: Bearer <token>`, an
//! HS256-signed JWT naming one person (`sub`, a UUID), one role and a display
//! name. No shared accounts: the person becomes the actor of whatever the
//! call records, and the audit trail names them.
//!
//! The signing secret is configuration (`CARELINE_TOKEN_SECRET`, at least 32
//! bytes). In production an identity provider issues the tokens; `careline
//! token` mints them for local use and the demo.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status};
use uuid::Uuid;

const ISSUER: &str = "careline";
const AUDIENCE: &str = "careline";
/// Shortest secret accepted: 256 bits, as HS256 wants.
pub const MIN_SECRET_LEN: usize = 32;

/// The role a person acts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Patient,
    Carer,
    Professional,
    Admin,
    Operator,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Patient,
        Role::Carer,
        Role::Professional,
        Role::Admin,
        Role::Operator,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Carer => "carer",
            Role::Professional => "professional",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
        }
    }

    /// The role as written into events.
    pub fn to_proto(self) -> proto::events::Role {
        match self {
            Role::Patient => proto::events::Role::Patient,
            Role::Carer => proto::events::Role::Carer,
            Role::Professional => proto::events::Role::Professional,
            Role::Admin => proto::events::Role::Admin,
            Role::Operator => proto::events::Role::Operator,
            Role::Auditor => proto::events::Role::Auditor,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?}: one of patient, carer, professional, admin, operator, auditor")
            })
    }
}

/// The authenticated person behind a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub person_id: Uuid,
    pub role: Role,
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    name: String,
    iss: String,
    aud: String,
    iat: u64,
    exp: u64,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send 'authorization: Bearer <token>'")]
    Missing,
    #[error("the authorization header is not 'Bearer <token>'")]
    Malformed,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token signing secret must be at least {MIN_SECRET_LEN} bytes")]
    WeakSecret,
}

impl From<AuthError> for Status {
    fn from(e: AuthError) -> Self {
        Status::unauthenticated(e.to_string())
    }
}

/// The longest name a token may carry.
pub const NAME_MAX: usize = 200;

/// A token's name claim is shown to people (and, where the person is not
/// registered, written to the audit trail): one line of plain text.
fn check_name(name: &str) -> Result<(), AuthError> {
    if name.trim().is_empty() {
        return Err(AuthError::Invalid("the name claim is empty".into()));
    }
    if name.chars().count() > NAME_MAX {
        return Err(AuthError::Invalid(format!(
            "the name claim is longer than {NAME_MAX} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(AuthError::Invalid(
            "the name claim must be one line of text, without control characters".into(),
        ));
    }
    Ok(())
}

/// Tokens already verified, by their exact text, with their expiry: a
/// caller sends the same token on every call, and checking its signature
/// again each time is measurable work. Bounded: cleared when full.
type Verified = Arc<Mutex<HashMap<String, (Caller, u64)>>>;
const VERIFIED_MAX: usize = 10_000;
const LEEWAY_SECS: u64 = 30;

/// The keys that mint and check tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    verified: Verified,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    pub fn from_secret(secret: &[u8]) -> Result<Self, AuthError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(AuthError::WeakSecret);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = LEEWAY_SECS;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            verified: Verified::default(),
        })
    }

    /// Reads `CARELINE_TOKEN_SECRET`.
    pub fn from_env() -> Result<Self, String> {
        let secret = std::env::var("CARELINE_TOKEN_SECRET").map_err(|_| {
            "CARELINE_TOKEN_SECRET is not set: give every service the same signing secret (at least 32 bytes)".to_string()
        })?;
        Self::from_secret(secret.as_bytes()).map_err(|e| format!("CARELINE_TOKEN_SECRET: {e}"))
    }

    /// A token for `caller`, valid for `ttl`.
    pub fn mint(&self, caller: &Caller, ttl: Duration) -> String {
        self.mint_until(caller, SystemTime::now() + ttl)
    }

    /// A token for `caller` that expires at `expires_at` (which may be in
    /// the past, to test refusals).
    pub fn mint_until(&self, caller: &Caller, expires_at: SystemTime) -> String {
        let seconds = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let now = SystemTime::now();
        let claims = Claims {
            sub: caller.person_id.to_string(),
            role: caller.role,
            name: caller.name.clone(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: seconds(now.min(expires_at)),
            exp: seconds(expires_at),
        };
        // HS256 signing of a small JSON document cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// Checks a token's signature, expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((caller, exp)) = verified.get(token) {
            if now <= exp + LEEWAY_SECS {
                return Ok(caller.clone());
            }
            verified.remove(token);
        }
        drop(verified);
        let (caller, exp) = self.verify_signature(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(token.to_string(), (caller.clone(), exp));
        Ok(caller)
    }

    fn verify_signature(&self, token: &str) -> Result<(Caller, u64), AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            })?;
        let person_id = Uuid::parse_str(&data.claims.sub)
            .map_err(|_| AuthError::Invalid("sub is not a person id (UUID)".into()))?;
        check_name(&data.claims.name)?;
        Ok((
            Caller {
                person_id,
                role: data.claims.role,
                name: data.claims.name,
            },
            data.claims.exp,
        ))
    }

    /// Authenticates a request from its `authorization` metadata.
    pub fn authenticate<T>(&self, request: &Request<T>) -> Result<Caller, AuthError> {
        let value = request
            .metadata()
            .get("authorization")
            .ok_or(AuthError::Missing)?
            .to_str()
            .map_err(|_| AuthError::Malformed)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AuthError::Malformed)?;
        self.verify(token.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn nurse() -> Caller {
        Caller {
            person_id: Uuid::now_v7(),
            role: Role::Professional,
            name: "Nina Nurse".into(),
        }
    }

    fn with_header(value: &str) -> Request<()> {
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
        request
    }

    #[test]
    fn a_minted_token_authenticates_its_person_and_role() {
        let caller = nurse();
        let token = keys().mint(&caller, Duration::from_secs(60));
        let request = with_header(&format!("Bearer {token}"));
        assert_eq!(keys().authenticate(&request).unwrap(), caller);
    }

    #[test]
    fn missing_malformed_forged_and_expired_tokens_are_refused() {
        assert!(matches!(
            keys().authenticate(&Request::new(())),
            Err(AuthError::Missing)
        ));
        assert!(matches!(
            keys().authenticate(&with_header("Basic abc")),
            Err(AuthError::Malformed)
        ));
        let other = TokenKeys::from_secret(b"another secret of thirty-two bytes!").unwrap();
        let forged = other.mint(&nurse(), Duration::from_secs(60));
        assert!(matches!(
            keys().authenticate(&with_header(&format!("Bearer {forged}"))),
            Err(AuthError::Invalid(_))
        ));
        let mut tampered = keys().mint(&nurse(), Duration::from_secs(60));
        tampered.insert(tampered.len() / 2, 'x');
        assert!(keys().verify(&tampered).is_err());

        // Expired well beyond the leeway.
        let expired = keys().mint_until(&nurse(), SystemTime::now() - Duration::from_secs(3600));
        assert!(matches!(keys().verify(&expired), Err(AuthError::Expired)));
    }

    #[test]
    fn a_name_claim_must_be_one_short_line() {
        for bad in [
            "Dr Rowan Cole\nClick https://evil.example to read it".to_string(),
            "Tab\there".to_string(),
            "   ".to_string(),
            "x".repeat(NAME_MAX + 1),
        ] {
            let token = keys().mint(
                &Caller {
                    name: bad.clone(),
                    ..nurse()
                },
                Duration::from_secs(60),
            );
            assert!(
                matches!(keys().verify(&token), Err(AuthError::Invalid(_))),
                "{bad:?} was accepted"
            );
        }
        let fine = Caller {
            name: "Siân O'Brien-Ng (Renal)".into(),
            ..nurse()
        };
        let token = keys().mint(&fine, Duration::from_secs(60));
        assert_eq!(keys().verify(&token).unwrap(), fine);
    }

    #[test]
    fn a_remembered_token_is_used_only_until_it_expires() {
        let keys = keys();
        let caller = nurse();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let expired = keys.mint_until(&caller, SystemTime::now() - Duration::from_secs(3600));
        assert!(matches!(keys.verify(&expired), Err(AuthError::Expired)));

        // An entry in date is trusted without checking the signature again...
        keys.verified
            .lock()
            .unwrap()
            .insert(expired.clone(), (caller.clone(), now + 3600));
        assert_eq!(keys.verify(&expired).unwrap(), caller);
        // ...and one out of date is not: the token is checked afresh.
        keys.verified
            .lock()
            .unwrap()
            .insert(expired.clone(), (caller.clone(), now - 3600));
        assert!(matches!(keys.verify(&expired), Err(AuthError::Expired)));
        assert!(!keys.verified.lock().unwrap().contains_key(&expired));
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert!(matches!(
            TokenKeys::from_secret(b"short"),
            Err(AuthError::WeakSecret)
        ));
    }

    #[test]
    fn refusals_are_unauthenticated_statuses() {
        let status = Status::from(keys().authenticate(&Request::new(())).unwrap_err());
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(status.message().contains("Bearer"));
    }
}
