//! OpenID Connect sign-in: the authorization code flow with PKCE (S256), a
//! state and a nonce, at the provider `CARELINE_WEB_OIDC_ISSUER` names
//! (found through its `/.well-known/openid-configuration`). The ID token is
//! not this service's to trust: it is relayed, with the sign-in's nonce, to
//! the command service, which checks it (signed by a key of the provider's
//! JWKS, by it, for Careline, not expired, answering the nonce) and issues
//! the person's tokens. This service holds no key that signs anyone in.
//!
//! What the browser carries away and back is kept with the sessions
//! ([`Sessions::keep`]: in this process or shared by every instance), under
//! its pre-sign-in cookie: nothing of it is in the browser but the state.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use service_kit::provider::{Discovery, ProviderError, fetch, json};
use sha2::Digest;

use crate::session::{Sessions, StoreError, random_token};

/// How long a sign-in may take at the provider (and an account linked to
/// no one is held: its account token lives as long).
const PENDING_FOR: Duration = service_kit::account::ACCOUNT_LIFETIME;

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
    /// Unreachable, or it answered what it should not.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("this sign-in was not started here, or took too long: start again")]
    Unknown,
    #[error("this sign-in cannot be checked just now: try again in a minute")]
    Store(#[from] StoreError),
}

/// What is kept of a sign-in in flight, and of an account not linked yet.
const PENDING: &str = "pending";
const HELD: &str = "held";

/// An account signed in at the provider but linked to no one yet, as the
/// command service answered for it: what lets it sign up or follow an
/// invitation, for [`PENDING_FOR`].
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Held {
    /// Names the account to the command service (`LinkIdentity`, `SignIn`).
    pub account_token: String,
    /// Calls as the patient a sign-up with a join code makes.
    pub sign_up_token: String,
    /// What the provider said of the person.
    pub name: String,
    pub email: String,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held(..)")
    }
}

/// The provider's ID token, and the nonce its sign-in was started with:
/// for the command service to check.
#[derive(Clone)]
pub struct IdToken {
    pub id_token: String,
    pub nonce: String,
}

impl std::fmt::Debug for IdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdToken(..)")
    }
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
}

#[derive(serde::Deserialize)]
struct TokenReply {
    id_token: String,
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
        let found = Discovery::of(&settings.issuer).await?;
        Ok(Arc::new(Self {
            settings,
            authorization_endpoint: found.authorization_endpoint,
            token_endpoint: found.token_endpoint,
        }))
    }

    pub fn label(&self) -> &str {
        &self.settings.label
    }

    /// Keeps `held`, an account signed in at the provider but linked to no
    /// one, for the browser `browser` while it signs up or follows an
    /// invitation (at most [`PENDING_FOR`]): what that then links.
    pub async fn hold(
        &self,
        sessions: &Sessions,
        browser: &str,
        held: &Held,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_string(held).unwrap_or_default();
        sessions.keep(browser, HELD, &value, PENDING_FOR).await
    }

    /// The account `browser` signed in with and has not linked yet.
    pub async fn held(&self, sessions: &Sessions, browser: &str) -> Option<Held> {
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
    /// `state`: the provider's ID token (for the command service to check),
    /// and where they were going.
    pub async fn finish(
        &self,
        sessions: &Sessions,
        browser: &str,
        code: &str,
        state: &str,
    ) -> Result<(IdToken, String), OidcError> {
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
        let token = IdToken {
            id_token: reply.id_token,
            nonce: pending.nonce,
        };
        Ok((token, pending.next))
    }
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
