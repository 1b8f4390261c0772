//! A hospital system's credential: what an operator issues to one of the
//! hospital's own systems (the appointments system, say) that an admin
//! registered (`RegisterSystem`), so that it may post notices to patients
//! on behalf of its teams (`PostNotice`) and do nothing else.
//!
//! Signed with keys of its own (`CARELINE_SYSTEM_TOKEN_SIGNING_KEY`, held
//! by the operator's CLI only; `CARELINE_SYSTEM_TOKEN_PUBLIC_KEYS`, held by
//! the command service only), of an audience of its own: a system's
//! credential is never a person's token, nor a person's token a system's
//! credential, and a leak of one key mints nothing of the other. Rotated
//! like the token keys: publish the new public key beside the old, issue
//! new credentials, drop the old key. A credential lives at most
//! [`SYSTEM_MAX_LIFETIME`]; closing the system's account
//! (`DeactivatePerson`) stops it at once, whatever its expiry.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tonic::Request;
use uuid::Uuid;

use crate::auth::{AuthError, Caller, ISSUER, Role, TokenIssuer, TokenKeys, seconds};

const AUDIENCE: &str = "careline-system";
/// The longest a system's credential may be valid.
pub const SYSTEM_MAX_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// The environment variable holding the private key that issues systems'
/// credentials (the operator's CLI).
pub const SIGNING_KEY_VAR: &str = "CARELINE_SYSTEM_TOKEN_SIGNING_KEY";
/// The environment variable holding the public keys the command service
/// checks systems' credentials with.
pub const PUBLIC_KEYS_VAR: &str = "CARELINE_SYSTEM_TOKEN_PUBLIC_KEYS";

#[derive(Serialize, Deserialize)]
struct SystemClaims {
    sub: String,
    name: String,
    iss: String,
    aud: String,
    iat: u64,
    nbf: u64,
    exp: u64,
}

impl TokenIssuer {
    /// The credential of the system `system_id` named `name`, valid `ttl`
    /// (at most [`SYSTEM_MAX_LIFETIME`]). Sign with a system key, never the
    /// people's token key.
    pub fn mint_system(&self, system_id: Uuid, name: &str, ttl: Duration) -> String {
        let now = SystemTime::now();
        self.sign(&SystemClaims {
            sub: system_id.to_string(),
            name: name.to_string(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: seconds(now),
            nbf: seconds(now),
            exp: seconds(now + ttl.min(SYSTEM_MAX_LIFETIME)),
        })
    }
}

/// The public keys that check systems' credentials.
#[derive(Clone, Debug)]
pub struct SystemKeys(TokenKeys);

impl SystemKeys {
    /// Public keys written `kid:base64url`, separated by commas or spaces
    /// (the value of `CARELINE_SYSTEM_TOKEN_PUBLIC_KEYS`).
    pub fn from_public_keys(text: &str) -> Result<Self, AuthError> {
        TokenKeys::for_audience(text, AUDIENCE).map(Self)
    }

    /// The setting's value: none (or empty) is no keys, and then no system
    /// may post.
    pub fn from_setting(value: Option<String>) -> Result<Option<Self>, String> {
        match value.filter(|v| !v.trim().is_empty()) {
            None => Ok(None),
            Some(text) => Self::from_public_keys(&text)
                .map(Some)
                .map_err(|e| format!("{PUBLIC_KEYS_VAR}: {e}")),
        }
    }

    /// The system a credential names, as a caller of [`Role::Service`],
    /// once its signature, audience and lifetime are right.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let claims: SystemClaims = self.0.decode(token.trim())?;
        let now = crate::auth::now_secs();
        let person_id =
            crate::auth::check_claims((claims.iat, claims.exp), SYSTEM_MAX_LIFETIME, now)
                .and_then(|()| crate::auth::subject(&claims.sub, &claims.name))?;
        Ok(Caller {
            person_id,
            role: Role::Service,
            name: claims.name,
        })
    }

    /// Authenticates a request from its `authorization` metadata.
    pub fn authenticate<T>(&self, request: &Request<T>) -> Result<Caller, AuthError> {
        self.verify(crate::auth::bearer_token(request)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_credential_names_its_system_and_is_never_a_persons_token() {
        let systems = TokenIssuer::from_seed("systems-1", [3; 32]).unwrap();
        let people = crate::test_issuer();
        let keys = SystemKeys::from_public_keys(&systems.public_key()).unwrap();
        let id = Uuid::now_v7();
        let credential = systems.mint_system(id, "Appointments", Duration::from_secs(3600));
        let caller = keys.verify(&credential).unwrap();
        assert_eq!((caller.person_id, caller.role), (id, Role::Service));
        assert_eq!(caller.name, "Appointments");
        // Not a person's token, even under keys that hold the system key.
        assert!(systems.verifier().verify(&credential).is_err());
        assert!(people.verifier().verify(&credential).is_err());
        // A person's token is no credential, even signed by the system key.
        let person = Caller {
            person_id: Uuid::now_v7(),
            role: Role::Admin,
            name: "Ada Admin".into(),
        };
        let token = systems.mint(&person, Duration::from_secs(60));
        assert!(keys.verify(&token).is_err());
        // A credential the people's key signed is refused: wrong key.
        let wrong = people.mint_system(id, "Appointments", Duration::from_secs(60));
        assert!(keys.verify(&wrong).is_err());
    }

    #[test]
    fn no_setting_is_no_keys_and_a_bad_one_names_its_variable() {
        assert!(SystemKeys::from_setting(None).unwrap().is_none());
        assert!(
            SystemKeys::from_setting(Some(" ".into()))
                .unwrap()
                .is_none()
        );
        let err = SystemKeys::from_setting(Some("nonsense".into())).unwrap_err();
        assert!(err.contains(PUBLIC_KEYS_VAR), "{err}");
    }
}
