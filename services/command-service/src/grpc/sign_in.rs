//! Signing in: this service, which reads who everyone is from the log, is
//! the one that issues Careline's tokens. The web relays the proof a person
//! brings (the identity provider's ID token with its nonce, or the account
//! token of an earlier step) and gets back that person's tokens, one per
//! role; it holds no key that could sign anyone else in. On a demo only
//! (`CARELINE_DEMO_SIGN_IN=on`), a demo person's id is proof enough.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proto::command as pb;
use service_kit::account::AccountKeys;
use service_kit::provider::{IdTokens, Identity, ProviderError};
use service_kit::{Caller, Role, TokenIssuer, reason};
use tonic::{Code, Status};
use uuid::Uuid;

/// What this service needs to sign people in.
#[derive(Clone, Debug, Default)]
pub struct SignInSettings {
    /// `CARELINE_TOKEN_SIGNING_KEY`: the key that signs Careline's tokens.
    pub issuer: Option<TokenIssuer>,
    /// `CARELINE_OIDC_ISSUER` and `CARELINE_OIDC_CLIENT_ID`: the identity
    /// provider whose ID tokens are proof, and Careline's client id there
    /// (the audience those tokens must name).
    pub provider: Option<(String, String)>,
    /// `CARELINE_DEMO_SIGN_IN`: a demo person's id is proof (demo only).
    pub demo: bool,
    /// `CARELINE_SIGN_IN_HOURS`: how long the tokens of a sign-in live.
    pub lifetime: Duration,
}

/// The sign-in side of the command service.
#[derive(Debug)]
pub struct SignIn {
    issuer: Option<TokenIssuer>,
    accounts: Option<AccountKeys>,
    id_tokens: Option<Arc<IdTokens>>,
    demo: bool,
    lifetime: Duration,
}

/// A person found for a sign-in, before their tokens are minted.
#[derive(Debug)]
pub struct Found {
    pub person_id: String,
    pub role: Role,
    pub name: String,
    pub deactivated: bool,
    pub staff: Vec<Role>,
}

fn unauthenticated(message: impl Into<String>) -> Status {
    reason::plain(Code::Unauthenticated, message)
}

impl SignIn {
    /// The sign-in of `settings`, checking account tokens with the token
    /// public keys `public_keys` (those of every call).
    pub fn new(settings: SignInSettings, public_keys: Option<&str>) -> Result<Self, String> {
        let accounts = match (&settings.issuer, public_keys) {
            (Some(issuer), keys) => {
                // The issuer's own key always checks what it signed.
                let mut text = issuer.public_key();
                if let Some(keys) = keys {
                    text = format!("{text},{keys}");
                }
                Some(AccountKeys::from_public_keys(&text).map_err(|e| e.to_string())?)
            }
            (None, _) => None,
        };
        Ok(Self {
            issuer: settings.issuer,
            accounts,
            id_tokens: settings
                .provider
                .map(|(issuer, client)| IdTokens::new(&issuer, &client)),
            demo: settings.demo,
            lifetime: settings.lifetime.min(service_kit::auth::MAX_LIFETIME),
        })
    }

    fn issuer(&self) -> Result<&TokenIssuer, Status> {
        self.issuer.as_ref().ok_or_else(|| {
            reason::plain(
                Code::FailedPrecondition,
                "this command service signs no one in (CARELINE_TOKEN_SIGNING_KEY is not set)",
            )
        })
    }

    /// ID tokens refused so far (for `/metrics`).
    pub fn id_tokens_refused(&self) -> u64 {
        self.id_tokens.as_ref().map_or(0, |t| t.refused())
    }

    /// The account an ID token vouches for.
    pub async fn by_id_token(&self, proof: &pb::IdTokenProof) -> Result<Identity, Status> {
        self.issuer()?;
        let checker = self.id_tokens.as_ref().ok_or_else(|| {
            reason::plain(
                Code::FailedPrecondition,
                "this command service trusts no identity provider (CARELINE_OIDC_ISSUER is not set)",
            )
        })?;
        checker
            .check(&proof.id_token, &proof.nonce)
            .await
            .map_err(|e| match e {
                ProviderError::BadToken(why) => {
                    tracing::warn!(why = %why, "an ID token was refused");
                    unauthenticated(format!("id_token: not accepted ({why})"))
                }
                e => {
                    tracing::warn!(error = %e, "the identity provider could not be asked");
                    reason::plain(
                        Code::Unavailable,
                        "the identity provider's keys could not be read just now: try again in a minute",
                    )
                }
            })
    }

    /// The account an account token names.
    pub fn by_account_token(&self, token: &str) -> Result<Identity, Status> {
        self.issuer()?;
        let keys = self.accounts.as_ref().ok_or_else(|| {
            unauthenticated("account_token: this service checks no account tokens")
        })?;
        keys.verify(token).map_err(|e| match e {
            service_kit::auth::AuthError::Expired => {
                unauthenticated("account_token: expired; sign in at the identity provider again")
            }
            e => unauthenticated(format!("account_token: not accepted ({e})")),
        })
    }

    /// A demo person's id, when this is a demo.
    pub fn demo_person(&self, id: &str) -> Result<Uuid, Status> {
        self.issuer()?;
        if !self.demo {
            tracing::warn!("a demo sign-in was asked of a service that is no demo");
            return Err(reason::plain(
                Code::PermissionDenied,
                "demo sign-in is off on this service",
            ));
        }
        Uuid::parse_str(id.trim())
            .map_err(|_| reason::invalid("demo_person_id", "must be a person's id (a UUID)"))
    }

    /// The reply for `found`: their tokens, one per role, unless their
    /// account is closed.
    pub fn reply(&self, found: Found) -> Result<pb::SignInReply, Status> {
        let issuer = self.issuer()?;
        let expires = SystemTime::now() + self.lifetime;
        let mut roles = vec![found.role];
        roles.extend(found.staff.iter().filter(|r| **r != found.role));
        let tokens = if found.deactivated {
            vec![]
        } else {
            let person_id = Uuid::parse_str(&found.person_id)
                .map_err(|_| service_kit::internal("signing in", &"a person id in the log"))?;
            roles
                .iter()
                .map(|role| pb::RoleToken {
                    role: role.as_str().into(),
                    token: issuer.mint_until(
                        &Caller {
                            person_id,
                            role: *role,
                            name: found.name.clone(),
                        },
                        expires,
                    ),
                })
                .collect()
        };
        Ok(pb::SignInReply {
            linked: true,
            person_id: found.person_id,
            role: found.role.as_str().into(),
            name: found.name,
            deactivated: found.deactivated,
            staff_roles: found.staff.iter().map(|r| r.as_str().into()).collect(),
            tokens,
            expires_at: i64::try_from(service_kit::auth::seconds(expires)).unwrap_or(i64::MAX),
            ..Default::default()
        })
    }

    /// The reply for an account linked to no one: its account token, and a
    /// patient's token for the record its sign-up would make.
    pub fn unlinked(&self, identity: &Identity) -> Result<pb::SignInReply, Status> {
        let issuer = self.issuer()?;
        let name = name_of(identity);
        let patient = Caller {
            person_id: service_kit::ids::identity::sign_up_patient(
                &identity.issuer,
                &identity.subject,
            ),
            role: Role::Patient,
            name,
        };
        let expires = SystemTime::now() + service_kit::account::ACCOUNT_LIFETIME;
        Ok(pb::SignInReply {
            linked: false,
            account_token: issuer.mint_account(identity),
            sign_up_token: issuer.mint_until(&patient, expires),
            expires_at: i64::try_from(service_kit::auth::seconds(expires)).unwrap_or(i64::MAX),
            provider_name: patient.name,
            provider_email: identity.email.clone(),
            ..Default::default()
        })
    }
}

/// The name the provider gave, or failing that the address's local part.
pub fn name_of(identity: &Identity) -> String {
    let name: String = identity
        .name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(service_kit::auth::NAME_MAX)
        .collect();
    if !name.is_empty() {
        return name;
    }
    identity
        .email
        .split('@')
        .next()
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(service_kit::auth::NAME_MAX).collect())
        .unwrap_or_else(|| "Careline patient".to_string())
}

/// This service's own sign-in, the actor of every link it records: no
/// person, and no token names it (tokens of role system are refused).
pub fn principal() -> crate::domain::Actor {
    crate::domain::Actor {
        person_id: "5e1f0c4a-27d9-4b61-8f03-c1e69a2db470".into(),
        role: Role::System,
        name: "Careline sign-in".into(),
    }
}
