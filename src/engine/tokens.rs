//! Fresh access tokens for long operations (DESIGN.md §5): a deployment can run for
//! hours while the user's access token lives minutes. The access token of the user's
//! last state-changing request is kept in the secrets store ([`remember`]) and used
//! while it has more than a minute left; after that the engine exchanges the user's
//! stored refresh token at the issuer's token endpoint (client id and secret
//! from `TRUSTED_IDP_LIST`), keeps the access token until shortly before it expires,
//! and stores a rotated refresh token. A refused refresh tells the user to log in
//! again instead of failing with a generic error.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use crate::auth::oidc::{HttpIdentityProvider, IdentityProvider, IdpError};
use crate::domain::Timestamp;
use crate::service::Actor;
use crate::state::AppState;
use crate::store::{user_secrets, users};

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

    /// A valid access token of `user`: the one they last called the API with while
    /// it has more than a minute left, else one refreshed with their refresh token.
    pub async fn access_token(&self, user: Uuid) -> Result<String, TokenError> {
        if let Some((token, valid_until)) = self.cache.get(&user) {
            if Instant::now() + MARGIN < valid_until {
                return Ok(token);
            }
        }
        if let Some((token, valid_until)) = kept_access_token(&self.app, user).await {
            self.cache.insert(user, (token.clone(), valid_until));
            return Ok(token);
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

/// The name of the caller's last access token among a user's secrets.
const ACCESS_TOKEN: &str = "access_token";

/// When a JWT access token expires (its `exp`, read without checking the signature:
/// it was checked when the user called the API); `None` for an opaque token.
fn expiry(token: &str) -> Option<SystemTime> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let exp = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_u64()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(exp))
}

/// How long from now until `at`, as an `Instant`; `None` when `at` is past.
fn instant_of(at: SystemTime) -> Option<Instant> {
    let left = at.duration_since(SystemTime::now()).ok()?;
    Instant::now().checked_add(left)
}

/// The access token `user` last called the API with, while it has more than
/// [`MARGIN`] left. Anything unavailable means "none": the refresh path decides.
async fn kept_access_token(app: &AppState, user: Uuid) -> Option<(String, Instant)> {
    let mut conn = app.store.conn().await.ok()?;
    let stored = user_secrets::get(&mut conn, user, ACCESS_TOKEN)
        .await
        .ok()??;
    drop(conn);
    let token = app.secrets.get(&stored).await.ok()?;
    let valid_until = instant_of(expiry(&token)?)?;
    (Instant::now() + MARGIN < valid_until).then_some((token, valid_until))
}

/// Keeps the caller's access token (in the secrets store, like refresh tokens) for
/// the jobs their request started, which may need it to talk to a provider on their
/// behalf. Best effort: a failure is logged, the request has succeeded anyway.
pub async fn remember(app: &AppState, actor: &Actor) {
    if let Err(err) = try_remember(app, actor).await {
        tracing::warn!(user.id = %actor.user_id, error = %err, "could not keep the caller's access token for their jobs");
    }
}

async fn try_remember(app: &AppState, actor: &Actor) -> anyhow::Result<()> {
    let token = actor.token.expose();
    if expiry(token).is_none() {
        return Ok(());
    }
    let mut conn = app.store.conn().await?;
    let Some(u) = users::get(&mut conn, actor.user_id).await? else {
        return Ok(());
    };
    drop(conn);
    let stored = app
        .secrets
        .put(&format!("{}@{}", u.sub, u.issuer), ACCESS_TOKEN, token)
        .await?;
    let mut tx = app.store.begin().await?;
    let old = user_secrets::delete(&mut tx, u.id, ACCESS_TOKEN).await?;
    user_secrets::insert(&mut tx, u.id, ACCESS_TOKEN, &stored).await?;
    tx.commit().await?;
    // A Vault reference names the path just overwritten; a sealed one is its value.
    if let Some(old) = old.filter(|old| *old != stored) {
        app.secrets.delete(&old).await?;
    }
    Ok(())
}
