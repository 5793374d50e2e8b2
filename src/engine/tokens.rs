//! Fresh access tokens for long operations (DESIGN.md §5): a deployment can run for
//! hours while the user's access token lives minutes, so the engine exchanges the
//! user's stored refresh token at the issuer's token endpoint (client id and secret
//! from `TRUSTED_IDP_LIST`), keeps the access token until shortly before it expires,
//! and stores a rotated refresh token. A refused refresh tells the user to log in
//! again instead of failing with a generic error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::auth::oidc::{HttpIdentityProvider, IdentityProvider, IdpError};
use crate::domain::Timestamp;
use crate::state::AppState;
use crate::store::users;

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The user never gave a refresh token, or the issuer is not set up for refreshes:
    /// the deployment cannot proceed until the user acts.
    #[error("{0}")]
    Unusable(String),
    /// The issuer refused the refresh token (revoked, expired).
    #[error("{0}")]
    Refused(String),
    /// The issuer or the secrets store is unavailable: try again later.
    #[error("{0}")]
    Unavailable(String),
}

impl TokenError {
    /// Whether waiting may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Hands out access tokens of users, refreshing them as needed.
pub struct TokenSource {
    app: AppState,
    idp: Arc<dyn IdentityProvider>,
    cache: moka::sync::Cache<Uuid, (String, Instant)>,
}

/// Refresh this long before the token expires.
const MARGIN: Duration = Duration::from_secs(60);

impl TokenSource {
    /// Tokens through the issuers of the configuration.
    pub fn new(app: AppState) -> Self {
        let idp = Arc::new(HttpIdentityProvider::new(app.config.idp_timeout));
        Self {
            app,
            idp,
            cache: moka::sync::Cache::builder().max_capacity(10_000).build(),
        }
    }

    /// A valid access token of `user`.
    pub async fn access_token(&self, user: Uuid) -> Result<String, TokenError> {
        if let Some((token, valid_until)) = self.cache.get(&user) {
            if Instant::now() + MARGIN < valid_until {
                return Ok(token);
            }
        }
        let unavailable = |what: &str, e: &dyn std::fmt::Display| {
            TokenError::Unavailable(format!("{what} is unavailable: {e}"))
        };
        let mut conn = self
            .app
            .store
            .conn()
            .await
            .map_err(|e| unavailable("the database", &e))?;
        let mut u = users::get(&mut conn, user)
            .await
            .map_err(|e| unavailable("the database", &e))?
            .ok_or_else(|| TokenError::Unusable(format!("user {user} no longer exists")))?;
        drop(conn);
        let Some(stored) = u.refresh_token.clone() else {
            return Err(TokenError::Unusable(format!(
                "an access token of user {} ({}) is needed but no refresh token is stored: log in again and set refresh_token with PATCH /api/v1/users/me",
                u.id, u.username
            )));
        };
        let idp = self
            .app
            .config
            .trusted_idps
            .iter()
            .find(|i| i.issuer.trim_end_matches('/') == u.issuer.trim_end_matches('/'))
            .ok_or_else(|| {
                TokenError::Unusable(format!(
                    "the issuer {} of user {} is no longer trusted",
                    u.issuer, u.id
                ))
            })?;
        let (Some(client_id), Some(secret)) = (&idp.client_id, &idp.client_secret) else {
            return Err(TokenError::Unusable(format!(
                "the issuer {} has no client_id/client_secret in TRUSTED_IDP_LIST, so tokens cannot be refreshed",
                idp.issuer
            )));
        };
        let refresh = self
            .app
            .secrets
            .get(&stored)
            .await
            .map_err(|e| unavailable("the secrets store", &e))?;
        let discovery = self.app.auth.discovery(&u.issuer).await.map_err(|e| {
            TokenError::Unavailable(format!("the issuer {} is unavailable: {e}", u.issuer))
        })?;
        let endpoint = discovery.token_endpoint.ok_or_else(|| {
            TokenError::Unusable(format!("the issuer {} has no token endpoint", u.issuer))
        })?;
        let answer = self
            .idp
            .token(
                &endpoint,
                client_id,
                secret.expose(),
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            )
            .await
            .map_err(|e| match e {
                IdpError::Refused(why) => TokenError::Refused(format!(
                    "the issuer {} refused the stored refresh token of user {} ({why}): log in again and set a new refresh_token with PATCH /api/v1/users/me",
                    u.issuer, u.username
                )),
                IdpError::Unavailable(why) => TokenError::Unavailable(format!(
                    "the issuer {} is unavailable: {why}",
                    u.issuer
                )),
            })?;
        if let Some(rotated) = answer.refresh_token.filter(|r| *r != refresh) {
            let owner = format!("{}@{}", u.sub, u.issuer);
            let kept = self
                .app
                .secrets
                .put(&owner, "refresh_token", &rotated)
                .await
                .map_err(|e| unavailable("the secrets store", &e))?;
            u.refresh_token = Some(kept.clone());
            u.updated_at = Timestamp::now();
            let mut conn = self
                .app
                .store
                .conn()
                .await
                .map_err(|e| unavailable("the database", &e))?;
            users::update_profile(&mut conn, &u)
                .await
                .map_err(|e| unavailable("the database", &e))?;
            // A Vault reference names the same path, just overwritten: only a
            // reference to another place (a sealed value) is forgotten.
            if stored != kept {
                if let Err(err) = self.app.secrets.delete(&stored).await {
                    tracing::warn!(user.id = %u.id, error = %err, "could not forget a rotated refresh token");
                }
            }
        }
        let lifetime = Duration::from_secs(
            answer
                .expires_in
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(300),
        );
        self.cache.insert(
            user,
            (answer.access_token.clone(), Instant::now() + lifetime),
        );
        tracing::info!(user.id = %u.id, "refreshed an access token for a long operation");
        Ok(answer.access_token)
    }
}
