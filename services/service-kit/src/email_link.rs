//! Email verification links. An address is verified only by its owner
//! following the link its verification email carried: the notification
//! service signs the link's token with a key of its own ([`LinkIssuer`],
//! `CARELINE_EMAIL_LINK_SIGNING_KEY`), and the command service checks it
//! with the public key ([`LinkKeys`], `CARELINE_EMAIL_LINK_PUBLIC_KEYS`).
//!
//! A link token is an Ed25519-signed JWT of its own audience: it is never a
//! sign-in token, nor a sign-in token a link (each key set accepts one
//! audience only), and the notification service, which holds the link key,
//! cannot mint sign-in tokens. It names the person, the address and the
//! request it answers (the id of the event that asked for the
//! verification); the command service accepts it once, for the address the
//! record still holds. It carries nothing clinical.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{AuthError, ISSUER, TokenIssuer, TokenKeys, seconds};

const AUDIENCE: &str = "careline-email-link";
/// The environment variable holding the notification service's link key.
pub const LINK_SIGNING_KEY_VAR: &str = "CARELINE_EMAIL_LINK_SIGNING_KEY";
/// The environment variable holding the keys the command service accepts.
pub const LINK_PUBLIC_KEYS_VAR: &str = "CARELINE_EMAIL_LINK_PUBLIC_KEYS";
/// The longest a link may be valid.
pub const MAX_LINK_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Whose address a link verifies: a patient's (on their record) or a
/// professional's or carer's (on their person).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Addressee {
    #[default]
    Patient,
    Person,
}

#[derive(Serialize, Deserialize)]
struct LinkClaims {
    sub: String,
    #[serde(default)]
    kind: Addressee,
    email: String,
    req: String,
    iss: String,
    aud: String,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// What a verification link says: `person_id` owns `email`, answering
/// request `request_id`, if followed before `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailLink {
    pub person_id: Uuid,
    pub addressee: Addressee,
    pub email: String,
    pub request_id: String,
    pub expires_at: SystemTime,
}

/// The key that signs verification links (the notification service's).
#[derive(Clone, Debug)]
pub struct LinkIssuer(TokenIssuer);

impl LinkIssuer {
    /// A private key written `kid:base64url-seed` (`careline keys` writes one).
    pub fn from_private_key(text: &str) -> Result<Self, AuthError> {
        TokenIssuer::from_private_key(text).map(Self)
    }

    /// A link issuer of a fixed seed (tests and the demo only).
    pub fn from_seed(kid: &str, seed: [u8; 32]) -> Result<Self, AuthError> {
        TokenIssuer::from_seed(kid, seed).map(Self)
    }

    /// The value of `CARELINE_EMAIL_LINK_SIGNING_KEY`: none when unset.
    pub fn from_setting(value: Option<String>) -> Result<Option<Self>, String> {
        value
            .filter(|v| !v.trim().is_empty())
            .map(|text| {
                Self::from_private_key(&text).map_err(|e| format!("{LINK_SIGNING_KEY_VAR}: {e}"))
            })
            .transpose()
    }

    /// The private key as `CARELINE_EMAIL_LINK_SIGNING_KEY` takes it.
    pub fn private_key(&self) -> String {
        self.0.private_key()
    }

    /// The public key as `CARELINE_EMAIL_LINK_PUBLIC_KEYS` takes it.
    pub fn public_key(&self) -> String {
        self.0.public_key()
    }

    /// The keys that check this issuer's links.
    pub fn verifier(&self) -> LinkKeys {
        LinkKeys::from_public_keys(&self.public_key())
            .unwrap_or_else(|e| unreachable!("an issuer's own public key is refused: {e}"))
    }

    /// The token of a link (its lifetime capped at [`MAX_LINK_LIFETIME`]
    /// from now).
    pub fn mint(&self, link: &EmailLink) -> String {
        let now = SystemTime::now();
        let expires = link.expires_at.min(now + MAX_LINK_LIFETIME);
        let issued = now.min(expires);
        self.0.sign(&LinkClaims {
            sub: link.person_id.to_string(),
            kind: link.addressee,
            email: link.email.clone(),
            req: link.request_id.clone(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: seconds(issued),
            nbf: seconds(issued),
            exp: seconds(expires),
        })
    }
}

/// The public keys that check verification links (the command service's).
#[derive(Clone, Debug)]
pub struct LinkKeys(TokenKeys);

impl LinkKeys {
    /// Public keys written `kid:base64url`, separated by commas or spaces.
    pub fn from_public_keys(text: &str) -> Result<Self, AuthError> {
        TokenKeys::for_audience(text, AUDIENCE).map(Self)
    }

    /// The value of `CARELINE_EMAIL_LINK_PUBLIC_KEYS`: none when unset.
    pub fn from_setting(value: Option<String>) -> Result<Option<Self>, String> {
        value
            .filter(|v| !v.trim().is_empty())
            .map(|text| {
                Self::from_public_keys(&text).map_err(|e| format!("{LINK_PUBLIC_KEYS_VAR}: {e}"))
            })
            .transpose()
    }

    /// Checks a link's signature, key, lifetime and audience.
    pub fn verify(&self, token: &str) -> Result<EmailLink, AuthError> {
        let claims: LinkClaims = self.0.decode(token)?;
        let person_id = Uuid::parse_str(&claims.sub)
            .map_err(|_| AuthError::Invalid("sub is not a person id (UUID)".into()))?;
        if claims.req.is_empty() || claims.email.is_empty() {
            return Err(AuthError::Invalid("the link names no request".into()));
        }
        Ok(EmailLink {
            person_id,
            addressee: claims.kind,
            email: claims.email,
            request_id: claims.req,
            expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(claims.exp),
        })
    }
}

/// A fixed link issuer for tests and the demo (never for a deployment: its
/// private key is in the source).
pub fn test_link_issuer() -> LinkIssuer {
    LinkIssuer::from_seed("test-links", [9; 32]).unwrap_or_else(|e| unreachable!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Caller, Role, test_issuer};

    fn link(expires_at: SystemTime) -> EmailLink {
        EmailLink {
            person_id: Uuid::now_v7(),
            addressee: Addressee::Person,
            email: "pat@example.org".into(),
            request_id: Uuid::now_v7().to_string(),
            expires_at,
        }
    }

    #[test]
    fn a_link_reads_back_as_it_was_signed() {
        let issuer = test_link_issuer();
        let sent = link(SystemTime::now() + Duration::from_secs(3600));
        let read = issuer.verifier().verify(&issuer.mint(&sent)).unwrap();
        assert_eq!(read.person_id, sent.person_id);
        assert_eq!(read.email, sent.email);
        assert_eq!(read.request_id, sent.request_id);
        assert_eq!(read.addressee, Addressee::Person);
    }

    #[test]
    fn an_expired_link_is_refused() {
        let issuer = test_link_issuer();
        let old = issuer.mint(&link(SystemTime::now() - Duration::from_secs(3600)));
        assert!(matches!(
            issuer.verifier().verify(&old),
            Err(AuthError::Expired)
        ));
    }

    #[test]
    fn links_and_sign_in_tokens_are_never_taken_for_each_other() {
        // Even under one key pair, the audiences keep them apart.
        let seed = [3; 32];
        let links = LinkIssuer::from_seed("k", seed).unwrap();
        let tokens = TokenIssuer::from_seed("k", seed).unwrap();
        let link_token = links.mint(&link(SystemTime::now() + Duration::from_secs(60)));
        assert!(tokens.verifier().verify(&link_token).is_err());
        let caller = Caller {
            person_id: Uuid::now_v7(),
            role: Role::Patient,
            name: "Pat Jones".into(),
        };
        let sign_in = tokens.mint(&caller, Duration::from_secs(60));
        assert!(links.verifier().verify(&sign_in).is_err());
        // And a link of another key is refused.
        let other = test_issuer();
        assert!(
            links
                .verifier()
                .verify(&other.mint(&caller, Duration::from_secs(60)))
                .is_err()
        );
    }
}
