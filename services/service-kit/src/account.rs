//! Account tokens: what the command service, having checked an identity
//! provider's ID token, gives a sign-in whose account is linked to no one
//! yet. It names the account (the provider's issuer and subject) and what
//! the provider said of the person, and lives [`ACCOUNT_LIFETIME`]: the
//! time to sign up with a join code or follow an invitation. Only with it
//! may an account be linked (`LinkIdentity`) or its sign-in finished
//! (`SignIn` with `account_token`).
//!
//! Signed with the token issuer's key, of an audience of its own: an
//! account token is never a call's token, nor a call's token an account
//! token. It carries nothing clinical.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::auth::{AuthError, ISSUER, TokenIssuer, TokenKeys, seconds};
use crate::provider::Identity;

const AUDIENCE: &str = "careline-account";
/// How long an account token is valid.
pub const ACCOUNT_LIFETIME: Duration = Duration::from_secs(600);

#[derive(Serialize, Deserialize)]
struct AccountClaims {
    sub: String,
    acct_iss: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    email_verified: bool,
    iss: String,
    aud: String,
    iat: u64,
    nbf: u64,
    exp: u64,
}

impl TokenIssuer {
    /// The account token of `identity`, valid [`ACCOUNT_LIFETIME`].
    pub fn mint_account(&self, identity: &Identity) -> String {
        let now = SystemTime::now();
        self.sign(&AccountClaims {
            sub: identity.subject.clone(),
            acct_iss: identity.issuer.clone(),
            name: identity.name.clone(),
            email: identity.email.clone(),
            email_verified: identity.email_verified,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: seconds(now),
            nbf: seconds(now),
            exp: seconds(now + ACCOUNT_LIFETIME),
        })
    }
}

/// The public keys that check account tokens (the token issuer's).
#[derive(Clone, Debug)]
pub struct AccountKeys(TokenKeys);

impl AccountKeys {
    /// Public keys written `kid:base64url`, separated by commas or spaces
    /// (the value of `CARELINE_TOKEN_PUBLIC_KEYS`).
    pub fn from_public_keys(text: &str) -> Result<Self, AuthError> {
        TokenKeys::for_audience(text, AUDIENCE).map(Self)
    }

    /// The account an account token names, once its signature, audience
    /// and lifetime are right.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let claims: AccountClaims = self.0.decode(token.trim())?;
        if claims.exp.saturating_sub(claims.iat) > ACCOUNT_LIFETIME.as_secs() {
            return Err(AuthError::Invalid(
                "an account token lives longer than allowed".into(),
            ));
        }
        Ok(Identity {
            issuer: claims.acct_iss,
            subject: claims.sub,
            name: claims.name,
            email: claims.email,
            email_verified: claims.email_verified,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::auth::Caller;
    use crate::{Role, test_issuer};

    fn account() -> Identity {
        Identity {
            issuer: "https://idp.example".into(),
            subject: "abc".into(),
            name: "Nia New".into(),
            email: "nia@example.org".into(),
            email_verified: true,
        }
    }

    #[test]
    fn an_account_token_names_its_account_and_is_no_calls_token() {
        let issuer = test_issuer();
        let keys = AccountKeys::from_public_keys(&issuer.public_key()).unwrap();
        let token = issuer.mint_account(&account());
        assert_eq!(keys.verify(&token).unwrap(), account());
        // Not a call's token, and a call's token is not an account token.
        let calls = TokenKeys::from_public_keys(&issuer.public_key()).unwrap();
        assert!(calls.verify(&token).is_err());
        let call = issuer.mint(
            &Caller {
                person_id: uuid::Uuid::now_v7(),
                role: Role::Patient,
                name: "Nia".into(),
            },
            Duration::from_secs(60),
        );
        assert!(keys.verify(&call).is_err());
        // Another key's account token is refused.
        let other = TokenIssuer::from_seed("test", [9; 32]).unwrap();
        assert!(keys.verify(&other.mint_account(&account())).is_err());
    }
}
