//! `POST /api/v1/users/{id|me}/ssh_keys` generates an SSH key pair for the caller: the
//! public key goes on the user (`public_ssh_key`, where deployments take it), the
//! private key into the secrets store (Vault or a sealed column), and the private key
//! is returned once, in this answer only. `DELETE` forgets both. As in
//! orchestrator-python, the key is RSA 2048 (what every cloud image accepts), and a
//! user who already has a public key gets 409.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use ssh_key::private::RsaKeypair;
use ssh_key::{HashAlg, LineEnding, PrivateKey};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::Principal;
use super::error::ApiError;
use super::AppState;
use crate::domain::Timestamp;
use crate::store::{user_secrets, users};

/// The name of the generated private key among a user's secrets.
pub(crate) const SECRET_NAME: &str = "ssh_private_key";

/// What a user_secrets row holds while its secret is being written.
const PENDING: &str = "pending";

/// The size of generated RSA keys.
const RSA_BITS: usize = 2048;

fn already_has_a_key() -> ApiError {
    ApiError::conflict(
        "the user already has a public SSH key; DELETE /users/me/ssh_keys (or PATCH public_ssh_key to null) first",
    )
}

/// A generated key pair: the only time the private key leaves the store.
#[derive(Debug, Serialize, ToSchema)]
pub struct SshKeyPair {
    /// OpenSSH public key, now the user's `public_ssh_key`.
    pub public_key: String,
    /// OpenSSH private key. Shown once; keep it.
    pub private_key: String,
    /// SHA-256 fingerprint of the key.
    pub fingerprint: String,
}

fn own_id(principal: &Principal, id: &str) -> Result<Uuid, ApiError> {
    let user = if id == "me" {
        principal.user_id
    } else {
        Uuid::parse_str(id).map_err(|_| {
            ApiError::invalid_field("/path/id", format!("must be a UUID or 'me', got '{id}'"))
        })?
    };
    if user == principal.user_id {
        Ok(user)
    } else if principal.is_admin() {
        Err(ApiError::forbidden(
            "only a user may generate or delete their own SSH key pair",
        ))
    } else {
        Err(ApiError::not_found("user", user))
    }
}

/// Generates an SSH key pair for the caller.
#[utoipa::path(post, path = "/users/{id}/ssh_keys", tag = "users",
    security(("BearerAuth" = [])),
    params(("id" = String, Path, description = "The caller's id, or `me`")),
    responses(
        (status = 201, description = "The key pair; the private key is never shown again", body = SshKeyPair),
        (status = 403, description = "Another user's keys", body = crate::http::error::ErrorBody),
        (status = 409, description = "The user already has a public key", body = crate::http::error::ErrorBody),
        (status = 503, description = "The secrets store is unavailable; nothing was changed", body = crate::http::error::ErrorBody),
    ))]
pub async fn create_ssh_keys(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<SshKeyPair>), ApiError> {
    let user_id = own_id(&principal, &id)?;
    let mut conn = app.store.conn().await?;
    let user = users::get(&mut conn, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user", user_id))?;
    drop(conn);
    if user.public_ssh_key.is_some() {
        return Err(already_has_a_key());
    }
    // Generated before the transaction: RSA key generation takes a while.
    let key = tokio::task::spawn_blocking(|| {
        RsaKeypair::random(&mut rand::rngs::OsRng, RSA_BITS).map(PrivateKey::from)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(ApiError::internal)?
        .to_string();
    let mut public = key.public_key().clone();
    public.set_comment(user.username.clone());
    let public_text = public.to_openssh().map_err(ApiError::internal)?;
    let fingerprint = public.fingerprint(HashAlg::Sha256).to_string();

    // The user_secrets row is the claim: a pending one is inserted before the
    // secrets store is written, so a concurrent request waits on it and gets 409
    // instead of overwriting the private key this one is about to keep. A row left
    // from a pair whose public key was removed since is stale and replaced.
    let mut tx = app.store.begin().await?;
    let mut user = users::get(&mut tx, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user", user_id))?;
    if user.public_ssh_key.is_some() {
        return Err(already_has_a_key());
    }
    let stale = user_secrets::delete(&mut tx, user_id, SECRET_NAME).await?;
    if !user_secrets::insert(&mut tx, user_id, SECRET_NAME, PENDING).await? {
        return Err(already_has_a_key());
    }
    let owner = format!("{}@{}", user.sub, user.issuer);
    let stored = app
        .secrets
        .put(&owner, SECRET_NAME, &private)
        .await
        .map_err(|e| {
            ApiError::unavailable("the secrets store is unavailable; no key was created", e)
        })?;
    user_secrets::delete(&mut tx, user_id, SECRET_NAME).await?;
    user_secrets::insert(&mut tx, user_id, SECRET_NAME, &stored).await?;
    user.public_ssh_key = Some(public_text.clone());
    user.updated_at = Timestamp::now();
    users::update_profile(&mut tx, &user).await?;
    tx.commit().await?;
    // A stale secret at another place (a sealed value, an older Vault path) is
    // forgotten; one at the same Vault path was just overwritten.
    if let Some(stale) = stale.filter(|old| *old != stored && old != PENDING) {
        if let Err(err) = app.secrets.delete(&stale).await {
            tracing::warn!(user.id = %user_id, error = %err, "could not forget a replaced SSH private key");
        }
    }
    tracing::info!(user.id = %user_id, key.fingerprint = %fingerprint, "generated an SSH key pair");
    Ok((
        StatusCode::CREATED,
        Json(SshKeyPair {
            public_key: public_text,
            private_key: private,
            fingerprint,
        }),
    ))
}

/// Forgets the caller's SSH key pair (public key and stored private key).
#[utoipa::path(delete, path = "/users/{id}/ssh_keys", tag = "users",
    security(("BearerAuth" = [])),
    params(("id" = String, Path, description = "The caller's id, or `me`")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 404, description = "No key", body = crate::http::error::ErrorBody),
    ))]
pub async fn delete_ssh_keys(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user_id = own_id(&principal, &id)?;
    let mut tx = app.store.begin().await?;
    let mut user = users::get(&mut tx, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user", user_id))?;
    let stored = user_secrets::delete(&mut tx, user_id, SECRET_NAME).await?;
    if stored.is_none() && user.public_ssh_key.is_none() {
        return Err(ApiError::not_found("SSH key of user", user_id));
    }
    user.public_ssh_key = None;
    user.updated_at = Timestamp::now();
    users::update_profile(&mut tx, &user).await?;
    tx.commit().await?;
    if let Some(stored) = stored {
        if let Err(err) = app.secrets.delete(&stored).await {
            tracing::warn!(user.id = %user_id, error = %err, "could not forget a deleted SSH private key");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_ssh_keys, delete_ssh_keys))
}
