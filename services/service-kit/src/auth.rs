//! Authentication: every call carries `authorization: Bearer <token>`, an
//! Ed25519-signed JWT (EdDSA) naming one person (`sub`, a UUID), one role and
//! a display name. No shared accounts: the person becomes the actor of
//! whatever the call records, and the audit trail names them.
//!
//! Only the issuer holds a private key ([`TokenIssuer`]:
//! `CARELINE_TOKEN_SIGNING_KEY`, kept by the command service, which signs people in, and the operator
//! CLI). Services hold public keys only ([`TokenKeys`]:
//! `CARELINE_TOKEN_PUBLIC_KEYS`), so a compromised service cannot mint a
//! token. Every token names its key (`kid`): to rotate, publish the new
//! public key beside the old one, sign with the new key, and drop the old
//! one when its last tokens have expired. A token lives at most
//! [`MAX_LIFETIME`]; `iat`, `nbf` and `exp` are all required and checked.
//! `careline keys` generates a key pair.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status};
use uuid::Uuid;

pub(crate) const ISSUER: &str = "careline";
const AUDIENCE: &str = "careline";
/// The longest a token may be valid, from its `iat` to its `exp`.
pub const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// The environment variable holding the issuer's private key.
pub const SIGNING_KEY_VAR: &str = "CARELINE_TOKEN_SIGNING_KEY";
/// The environment variable holding the public keys services accept.
pub const PUBLIC_KEYS_VAR: &str = "CARELINE_TOKEN_PUBLIC_KEYS";

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
    /// The command service's own sign-in, never a person: the actor of the
    /// identity links it records. Every call refuses a token of this role
    /// ([`TokenKeys::authenticate`]). Not among [`Role::ALL`], the roles a
    /// person acts in.
    System,
    /// One of the hospital's systems (a service account), which posts
    /// notices and does nothing else: its credential
    /// ([`crate::system_credential`]) is signed with keys of its own, and
    /// a person's keys refuse it. Not among [`Role::ALL`].
    Service,
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
        proto::contract::role_name(self.to_proto() as i32)
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
            Role::System => proto::events::Role::System,
            Role::Service => proto::events::Role::Service,
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
    nbf: u64,
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
    #[error("{0}")]
    BadKey(String),
    /// A valid token of the wrong kind of principal for this call.
    #[error("{0}")]
    WrongPrincipal(&'static str),
}

impl From<AuthError> for Status {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::WrongPrincipal(why) => {
                crate::reason::plain(tonic::Code::PermissionDenied, why)
            }
            e => crate::reason::plain(tonic::Code::Unauthenticated, e.to_string()),
        }
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

/// A key id: 1 to 64 of `A-Z a-z 0-9 . _ -`.
fn check_kid(kid: &str) -> Result<(), AuthError> {
    let fine = !kid.is_empty()
        && kid.len() <= 64
        && kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if fine {
        Ok(())
    } else {
        Err(AuthError::BadKey(format!(
            "key id {kid:?} must be 1 to 64 of A-Z a-z 0-9 . _ -"
        )))
    }
}

/// `kid:base64url` into its key id and 32 bytes.
fn parse_key(text: &str, what: &str) -> Result<(String, [u8; 32]), AuthError> {
    let (kid, key) = text.trim().split_once(':').ok_or_else(|| {
        AuthError::BadKey(format!(
            "a {what} is written 'key-id:base64url-key' (careline keys generates one)"
        ))
    })?;
    check_kid(kid)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(key.trim().trim_end_matches('='))
        .map_err(|_| AuthError::BadKey(format!("the {what} {kid:?} is not base64url")))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| AuthError::BadKey(format!("the {what} {kid:?} is not 32 bytes")))?;
    Ok((kid.to_string(), bytes))
}

pub(crate) fn now_secs() -> u64 {
    seconds(SystemTime::now())
}

/// A token's times: issued no later than now (with leeway), living at most
/// `most` (its expiry is checked when it is decoded).
pub(crate) fn check_claims(
    (iat, exp): (u64, u64),
    most: Duration,
    now: u64,
) -> Result<(), AuthError> {
    if iat > now + LEEWAY_SECS {
        return Err(AuthError::Invalid(
            "the token was issued in the future (iat)".into(),
        ));
    }
    if exp.saturating_sub(iat) > most.as_secs() {
        return Err(AuthError::Invalid(format!(
            "the token lives longer than the {} hours allowed",
            most.as_secs() / 3600
        )));
    }
    Ok(())
}

/// A token's subject (a UUID) and name, checked.
pub(crate) fn subject(sub: &str, name: &str) -> Result<Uuid, AuthError> {
    let id =
        Uuid::parse_str(sub).map_err(|_| AuthError::Invalid("sub is not an id (UUID)".into()))?;
    check_name(name)?;
    Ok(id)
}

/// Seconds since the Unix epoch.
pub fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Tokens already verified, by their exact text, with their expiry: a
/// caller sends the same token on every call, and checking its signature
/// again each time is measurable work. Bounded: cleared when full.
type Verified = Arc<Mutex<HashMap<String, (Caller, u64)>>>;
const VERIFIED_MAX: usize = 10_000;
const LEEWAY_SECS: u64 = 30;

/// The public keys that check tokens: what every service holds.
#[derive(Clone)]
pub struct TokenKeys {
    keys: Arc<HashMap<String, DecodingKey>>,
    validation: Validation,
    verified: Verified,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        write!(f, "TokenKeys({kids:?})")
    }
}

impl TokenKeys {
    /// Public keys written `kid:base64url`, separated by commas or white
    /// space (several during a rotation).
    pub fn from_public_keys(text: &str) -> Result<Self, AuthError> {
        Self::for_audience(text, AUDIENCE)
    }

    /// Public keys for tokens of another audience (email links): a key set
    /// of one audience never accepts a token of another.
    pub(crate) fn for_audience(text: &str, audience: &str) -> Result<Self, AuthError> {
        let mut keys = HashMap::new();
        for item in text
            .split([',', ' ', '\n', '\t'])
            .filter(|s| !s.trim().is_empty())
        {
            let (kid, key) = parse_key(item, "public key")?;
            ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| {
                AuthError::BadKey(format!("the public key {kid:?} is not an Ed25519 key"))
            })?;
            let decoding = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(key))
                .map_err(|e| AuthError::BadKey(format!("the public key {kid:?}: {e}")))?;
            keys.insert(kid, decoding);
        }
        if keys.is_empty() {
            return Err(AuthError::BadKey("no public key given".into()));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "sub", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Ok(Self {
            keys: Arc::new(keys),
            validation,
            verified: Verified::default(),
        })
    }

    /// Reads `CARELINE_TOKEN_PUBLIC_KEYS`.
    pub fn from_env() -> Result<Self, String> {
        Self::from_setting(std::env::var(PUBLIC_KEYS_VAR).ok())
    }

    /// The value of `CARELINE_TOKEN_PUBLIC_KEYS`, however a service reads
    /// its settings; every service needs it.
    pub fn from_setting(value: Option<String>) -> Result<Self, String> {
        let text = value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            format!("{PUBLIC_KEYS_VAR} is not set: give every service the issuer's public key(s), 'key-id:base64url' (careline keys generates a pair)")
        })?;
        Self::from_public_keys(&text).map_err(|e| format!("{PUBLIC_KEYS_VAR}: {e}"))
    }

    /// Checks a token's signature, key, lifetime, issuer and audience.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let now = now_secs();
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((caller, exp)) = verified.get(token) {
            if now <= exp + LEEWAY_SECS {
                return Ok(caller.clone());
            }
            verified.remove(token);
        }
        drop(verified);
        let (caller, exp) = self.verify_signature(token, now)?;
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(token.to_string(), (caller.clone(), exp));
        Ok(caller)
    }

    /// Checks a token's signature (EdDSA, a key of this set), lifetime,
    /// issuer and audience, and reads its claims.
    pub(crate) fn decode<C: serde::de::DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<C, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Invalid(format!("unreadable header: {e}")))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid(format!(
                "signed with {:?}: only EdDSA (Ed25519) tokens are accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("the token names no key (kid)".into()))?;
        let key = self.keys.get(&kid).ok_or_else(|| {
            AuthError::Invalid(format!(
                "signed with key {:?}, which this service does not accept",
                crate::echo(&kid)
            ))
        })?;
        jsonwebtoken::decode::<C>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                    AuthError::Invalid("the token is not valid yet (nbf)".into())
                }
                _ => AuthError::Invalid(e.to_string()),
            })
    }

    fn verify_signature(&self, token: &str, now: u64) -> Result<(Caller, u64), AuthError> {
        let claims: Claims = self.decode(token)?;
        let person_id = check_claims((claims.iat, claims.exp), MAX_LIFETIME, now)
            .and_then(|()| subject(&claims.sub, &claims.name))?;
        Ok((
            Caller {
                person_id,
                role: claims.role,
                name: claims.name,
            },
            claims.exp,
        ))
    }

    /// Authenticates a request from its `authorization` metadata.
    pub fn authenticate<T>(&self, request: &Request<T>) -> Result<Caller, AuthError> {
        let caller = self.bearer(request)?;
        match caller.role {
            Role::System => Err(AuthError::WrongPrincipal(
                "a sign-in token acts for no one: sign in as a person",
            )),
            Role::Service => Err(AuthError::WrongPrincipal(
                "a hospital system's credential is signed with the system keys, never a person's",
            )),
            _ => Ok(caller),
        }
    }

    fn bearer<T>(&self, request: &Request<T>) -> Result<Caller, AuthError> {
        self.verify(bearer_token(request)?)
    }
}

/// The token of a request's `authorization: Bearer <token>`.
pub fn bearer_token<T>(request: &Request<T>) -> Result<&str, AuthError> {
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
    Ok(token.trim())
}

/// The private key that mints tokens: the identity side and the operator
/// CLI hold it, no service does.
#[derive(Clone)]
pub struct TokenIssuer {
    kid: String,
    signing: ed25519_dalek::SigningKey,
    encoding: EncodingKey,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenIssuer({:?})", self.kid)
    }
}

/// A PKCS#8 v1 document holding an Ed25519 seed is this prefix and the seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

impl TokenIssuer {
    /// The issuer for a 32-byte Ed25519 seed, under key id `kid`.
    pub fn from_seed(kid: &str, seed: [u8; 32]) -> Result<Self, AuthError> {
        check_kid(kid)?;
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        Ok(Self {
            kid: kid.to_string(),
            signing: ed25519_dalek::SigningKey::from_bytes(&seed),
            encoding: EncodingKey::from_ed_der(&der),
        })
    }

    /// A new key pair from the operating system's randomness.
    pub fn generate(kid: &str) -> Result<Self, AuthError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)
            .map_err(|e| AuthError::BadKey(format!("no randomness for a key: {e}")))?;
        Self::from_seed(kid, seed)
    }

    /// A private key written `kid:base64url-seed`.
    pub fn from_private_key(text: &str) -> Result<Self, AuthError> {
        let (kid, seed) = parse_key(text, "private key")?;
        Self::from_seed(&kid, seed)
    }

    /// Reads `CARELINE_TOKEN_SIGNING_KEY`.
    pub fn from_env() -> Result<Self, String> {
        let text = std::env::var(SIGNING_KEY_VAR).map_err(|_| {
            format!("{SIGNING_KEY_VAR} is not set: minting tokens needs the issuer's private key, 'key-id:base64url' (careline keys generates a pair)")
        })?;
        Self::from_private_key(&text).map_err(|e| format!("{SIGNING_KEY_VAR}: {e}"))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as `CARELINE_TOKEN_SIGNING_KEY` takes it.
    pub fn private_key(&self) -> String {
        format!(
            "{}:{}",
            self.kid,
            URL_SAFE_NO_PAD.encode(self.signing.to_bytes())
        )
    }

    /// The public key as `CARELINE_TOKEN_PUBLIC_KEYS` takes it.
    pub fn public_key(&self) -> String {
        format!(
            "{}:{}",
            self.kid,
            URL_SAFE_NO_PAD.encode(self.signing.verifying_key().to_bytes())
        )
    }

    /// The keys that check this issuer's tokens.
    pub fn verifier(&self) -> TokenKeys {
        // A public key this issuer just wrote always reads back.
        TokenKeys::from_public_keys(&self.public_key())
            .unwrap_or_else(|e| unreachable!("an issuer's own public key is refused: {e}"))
    }

    /// A token for `caller`, valid for `ttl` (at most [`MAX_LIFETIME`]).
    pub fn mint(&self, caller: &Caller, ttl: Duration) -> String {
        self.mint_until(caller, SystemTime::now() + ttl.min(MAX_LIFETIME))
    }

    /// A token for `caller` that expires at `expires_at` (which may be in
    /// the past, to test refusals).
    pub fn mint_until(&self, caller: &Caller, expires_at: SystemTime) -> String {
        let issued = SystemTime::now().min(expires_at);
        self.mint_claims(
            caller,
            seconds(issued),
            seconds(issued),
            seconds(expires_at),
        )
    }

    fn mint_claims(&self, caller: &Caller, iat: u64, nbf: u64, exp: u64) -> String {
        let claims = Claims {
            sub: caller.person_id.to_string(),
            role: caller.role,
            name: caller.name.clone(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat,
            nbf,
            exp,
        };
        self.sign(&claims)
    }

    /// Signs `claims` under this issuer's key.
    pub(crate) fn sign<C: Serialize>(&self, claims: &C) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        // Signing a small JSON document with a valid Ed25519 key cannot fail.
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap_or_default()
    }
}

/// A fixed issuer for tests and benchmarks (never for a deployment: its
/// private key is in the source).
pub fn test_issuer() -> TokenIssuer {
    TokenIssuer::from_seed("test", [7; 32]).unwrap_or_else(|e| unreachable!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> TokenIssuer {
        test_issuer()
    }

    fn keys() -> TokenKeys {
        issuer().verifier()
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
        let token = issuer().mint(&caller, Duration::from_secs(60));
        let request = with_header(&format!("Bearer {token}"));
        assert_eq!(keys().authenticate(&request).unwrap(), caller);
    }

    #[test]
    fn a_token_of_the_sign_in_role_answers_no_call() {
        let sign_in = Caller {
            person_id: Uuid::now_v7(),
            role: Role::System,
            name: "Careline sign-in".into(),
        };
        let system = with_header(&format!(
            "Bearer {}",
            issuer().mint(&sign_in, Duration::from_secs(60))
        ));
        let nurse = nurse();
        let person = with_header(&format!(
            "Bearer {}",
            issuer().mint(&nurse, Duration::from_secs(60))
        ));
        let refused = Status::from(keys().authenticate(&system).unwrap_err());
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert_eq!(keys().authenticate(&person).unwrap(), nurse);
        // A person cannot name the role on the command line either.
        assert!("system".parse::<Role>().is_err());
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
        // Another key under the same key id.
        let other = TokenIssuer::from_seed("test", [9; 32]).unwrap();
        let forged = other.mint(&nurse(), Duration::from_secs(60));
        assert!(matches!(
            keys().authenticate(&with_header(&format!("Bearer {forged}"))),
            Err(AuthError::Invalid(_))
        ));
        let mut tampered = issuer().mint(&nurse(), Duration::from_secs(60));
        tampered.insert(tampered.len() / 2, 'x');
        assert!(keys().verify(&tampered).is_err());

        // Expired well beyond the leeway.
        let expired = issuer().mint_until(&nurse(), SystemTime::now() - Duration::from_secs(3600));
        assert!(matches!(keys().verify(&expired), Err(AuthError::Expired)));
    }

    #[test]
    fn a_token_signed_with_a_shared_secret_is_refused() {
        // What a service could mint if tokens were HS256 with a secret that
        // every service holds: refused whatever the secret.
        let now = now_secs();
        let claims = Claims {
            sub: Uuid::now_v7().to_string(),
            role: Role::Admin,
            name: "Mallory".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            nbf: now,
            exp: now + 60,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("test".into());
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"x")).unwrap();
        let refused = keys().verify(&token).unwrap_err().to_string();
        assert!(refused.contains("EdDSA"), "{refused}");
    }

    #[test]
    fn a_token_names_a_key_the_service_holds() {
        let new = TokenIssuer::from_seed("2027-01", [3; 32]).unwrap();
        let token = new.mint(&nurse(), Duration::from_secs(60));
        let refused = keys().verify(&token).unwrap_err().to_string();
        assert!(refused.contains("2027-01"), "{refused}");

        // During a rotation a service holds both keys.
        let both = TokenKeys::from_public_keys(&format!(
            "{}, {}",
            issuer().public_key(),
            new.public_key()
        ))
        .unwrap();
        assert!(both.verify(&token).is_ok());
        assert!(
            both.verify(&issuer().mint(&nurse(), Duration::from_secs(60)))
                .is_ok()
        );
    }

    #[test]
    fn lifetime_not_before_and_issued_at_are_checked() {
        let now = now_secs();
        let long = issuer().mint_claims(&nurse(), now, now, now + MAX_LIFETIME.as_secs() + 3600);
        assert!(
            keys()
                .verify(&long)
                .unwrap_err()
                .to_string()
                .contains("longer"),
            "a token beyond the maximum lifetime"
        );
        let later = issuer().mint_claims(&nurse(), now, now + 3600, now + 7200);
        assert!(
            keys()
                .verify(&later)
                .unwrap_err()
                .to_string()
                .contains("nbf"),
            "a token not valid yet"
        );
        let future = issuer().mint_claims(&nurse(), now + 3600, now, now + 7200);
        assert!(
            keys()
                .verify(&future)
                .unwrap_err()
                .to_string()
                .contains("iat"),
            "a token issued in the future"
        );
        // mint itself never exceeds the maximum.
        let capped = issuer().mint(&nurse(), Duration::from_secs(365 * 86400));
        assert!(keys().verify(&capped).is_ok());
    }

    #[test]
    fn keys_round_trip_through_their_text_and_bad_keys_are_refused() {
        let generated = TokenIssuer::generate("k1").unwrap();
        let again = TokenIssuer::from_private_key(&generated.private_key()).unwrap();
        assert_eq!(again.public_key(), generated.public_key());
        let token = again.mint(&nurse(), Duration::from_secs(60));
        let keys = TokenKeys::from_public_keys(&generated.public_key()).unwrap();
        assert!(keys.verify(&token).is_ok());
        assert_ne!(
            TokenIssuer::generate("k1").unwrap().public_key(),
            generated.public_key()
        );
        for bad in [
            "",
            "nokid",
            "k1:not*base64",
            "k1:AAAA",
            "bad kid:AAAA",
            " , ",
        ] {
            assert!(
                matches!(TokenKeys::from_public_keys(bad), Err(AuthError::BadKey(_))),
                "{bad:?} was accepted"
            );
        }
        assert!(TokenIssuer::from_private_key("k1:short").is_err());
    }

    #[test]
    fn a_name_claim_must_be_one_short_line() {
        for bad in [
            "Dr Rowan Cole\nClick https://evil.example to read it".to_string(),
            "Tab\there".to_string(),
            "   ".to_string(),
            "x".repeat(NAME_MAX + 1),
        ] {
            let token = issuer().mint(
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
        let token = issuer().mint(&fine, Duration::from_secs(60));
        assert_eq!(keys().verify(&token).unwrap(), fine);
    }

    #[test]
    fn a_remembered_token_is_used_only_until_it_expires() {
        let keys = keys();
        let caller = nurse();
        let now = now_secs();
        let expired = issuer().mint_until(&caller, SystemTime::now() - Duration::from_secs(3600));
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
    fn refusals_are_unauthenticated_statuses() {
        let status = Status::from(keys().authenticate(&Request::new(())).unwrap_err());
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(status.message().contains("Bearer"));
    }
}
