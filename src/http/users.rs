//! `/api/v1/users`: registration from the token, reading, listing, the fields users
//! change about themselves, and deletion. Non-admins see only themselves; the
//! refresh token is write-only for everyone but its owner and is never logged.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::{forget_user, register, Caller, Principal};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, QueryPairs, RequestUrl};
use super::list::{parse_query, Page};
use super::AppState;
use crate::domain::list::{Condition, Value};
use crate::domain::{Timestamp, User};
use crate::store::{user_secrets, users};

/// A user as shown by the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRead {
    /// User id.
    pub id: Uuid,
    /// Registration time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// OIDC subject.
    pub sub: String,
    /// OIDC issuer.
    pub issuer: String,
    /// Display name.
    pub name: String,
    /// Preferred username.
    pub username: String,
    /// E-mail.
    pub email: String,
    /// Avatar URL.
    pub picture: Option<String>,
    /// OpenSSH public key installed on deployed VMs.
    pub public_ssh_key: Option<String>,
    /// The stored refresh token: shown to its owner only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// The id of a created entity.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The new id.
    pub id: Uuid,
}

/// Deserializes a field that may be absent (`None`), null (`Some(None)`) or a value.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Fields a user may change; `null` clears a field, an absent one is kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// Avatar URL (http or https).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub picture: Option<Option<String>>,
    /// OpenSSH public key.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub public_ssh_key: Option<Option<String>>,
    /// Refresh token used for long operations (write-only).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub refresh_token: Option<Option<String>>,
}

async fn to_read(app: &AppState, user: User, viewer: Uuid) -> ApiResult<UserRead> {
    let refresh_token =
        match (&user.refresh_token, user.id == viewer) {
            (Some(stored), true) => Some(app.secrets.get(stored).await.map_err(|e| {
                ApiError::unavailable("the stored refresh token cannot be read", e)
            })?),
            _ => None,
        };
    Ok(UserRead {
        id: user.id,
        created_at: user.created_at,
        updated_at: user.updated_at,
        sub: user.sub,
        issuer: user.issuer,
        name: user.name,
        username: user.username,
        email: user.email,
        picture: user.picture,
        public_ssh_key: user.public_ssh_key,
        refresh_token,
    })
}

/// Resolves `{id}` (`me` or a UUID) to a user the principal may see; others are 404.
async fn visible_user(app: &AppState, principal: &Principal, id: &str) -> ApiResult<User> {
    let user_id = if id == "me" {
        principal.user_id
    } else {
        Uuid::parse_str(id).map_err(|_| {
            ApiError::invalid_field("/path/id", format!("must be a UUID or 'me', got '{id}'"))
        })?
    };
    if user_id != principal.user_id && !principal.is_admin() {
        return Err(ApiError::not_found("user", user_id));
    }
    let mut conn = app.store.conn().await?;
    users::get(&mut conn, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user", user_id))
}

/// Registers the caller from the token.
#[utoipa::path(post, path = "/users", tag = "users", security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered", body = Created, headers(("Location" = String, description = "The new user"))),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "Already registered", body = ErrorBody),
    ))]
pub async fn create_user(
    State(app): State<AppState>,
    caller: Caller,
    url: RequestUrl,
) -> ApiResult<impl IntoResponse> {
    let user = register(&app, &caller.identity).await?;
    let location = url.absolute(&format!("{}/users/{}", super::API_V1, user.id));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(Created { id: user.id }),
    ))
}

/// Lists users (non-admins: only themselves).
#[utoipa::path(get, path = "/users", tag = "users", security(("bearer" = [])),
    params(
        ("page" = Option<u32>, Query, description = "1-based page"),
        ("size" = Option<u32>, Query, description = "Page size, at most 100"),
        ("sort" = Option<String>, Query, description = "Field, '-' prefix for descending"),
    ),
    responses((status = 200, body = Page<UserRead>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_users(
    State(app): State<AppState>,
    principal: Principal,
    pairs: QueryPairs,
    url: RequestUrl,
) -> ApiResult<axum::Json<Page<UserRead>>> {
    let me = principal.id_text();
    let mut query = parse_query(&pairs, &users::LIST, Some(&me))?;
    if !principal.is_admin() {
        if query
            .values_of("id")
            .iter()
            .any(|v| **v != Value::Text(me.clone()))
        {
            return Err(ApiError::forbidden(
                "only administrators may list other users",
            ));
        }
        query.push(Condition::In {
            column: "id",
            values: vec![Value::Text(me)],
        });
    }
    let mut conn = app.store.conn().await?;
    let (items, total) = users::list(&mut conn, &query).await?;
    drop(conn);
    let mut data = Vec::with_capacity(items.len());
    for user in items {
        data.push(to_read(&app, user, principal.user_id).await?);
    }
    Ok(axum::Json(Page::new(data, total, &query, &url)))
}

/// Reads a user (`me` for the caller).
#[utoipa::path(get, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id or 'me'")),
    responses((status = 200, body = UserRead), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<UserRead>> {
    let user = visible_user(&app, &principal, &id).await?;
    Ok(axum::Json(to_read(&app, user, principal.user_id).await?))
}

fn check_picture(url: &str) -> Result<(), ApiError> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && url.len() <= 2048 => Ok(()),
        _ => Err(ApiError::invalid_field(
            "/picture",
            "must be an http(s) URL of at most 2048 characters",
        )),
    }
}

fn check_ssh_key(key: &str) -> Result<(), ApiError> {
    ssh_key::PublicKey::from_openssh(key.trim())
        .map(|_| ())
        .map_err(|e| {
            ApiError::invalid_field(
                "/public_ssh_key",
                format!("is not an OpenSSH public key: {e}"),
            )
        })
}

/// Changes the picture, the public SSH key or the refresh token of a user.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id or 'me'")),
    request_body = UserPatch,
    responses((status = 204, description = "Changed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_user(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(patch): Json<UserPatch>,
) -> ApiResult<StatusCode> {
    let mut user = visible_user(&app, &principal, &id).await?;
    if let Some(Some(picture)) = &patch.picture {
        check_picture(picture)?;
    }
    if let Some(Some(key)) = &patch.public_ssh_key {
        check_ssh_key(key)?;
    }
    if patch.refresh_token.is_some() && user.id != principal.user_id {
        return Err(ApiError::forbidden(
            "only its owner may set a user's refresh token",
        ));
    }
    if let Some(picture) = patch.picture {
        user.picture = picture;
    }
    if let Some(key) = patch.public_ssh_key {
        user.public_ssh_key = key.map(|k| k.trim().to_string());
    }
    let old_token = user.refresh_token.clone();
    if let Some(token) = patch.refresh_token {
        let owner = format!("{}@{}", user.sub, user.issuer);
        user.refresh_token = match token.filter(|t| !t.is_empty()) {
            Some(token) => Some(
                app.secrets
                    .put(&owner, "refresh_token", &token)
                    .await
                    .map_err(|e| {
                        ApiError::unavailable(
                            "the refresh token cannot be stored now; try again later",
                            e,
                        )
                    })?,
            ),
            None => None,
        };
    }
    user.updated_at = Timestamp::now();
    let mut tx = app.store.begin().await?;
    users::update_profile(&mut tx, &user).await?;
    tx.commit().await?;
    if let Some(old) = old_token.filter(|old| Some(old) != user.refresh_token.as_ref()) {
        if let Err(err) = app.secrets.delete(&old).await {
            tracing::warn!(user.id = %user.id, error = %err, "could not forget a replaced refresh token");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a user who no longer owns or created anything.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id or 'me'")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_user(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let user = visible_user(&app, &principal, &id).await?;
    let mut tx = app.store.begin().await?;
    if users::is_referenced(&mut tx, user.id).await? {
        return Err(ApiError::conflict(format!(
            "user '{}' still owns or created deployments or templates and cannot be deleted",
            user.id
        )));
    }
    // The generated SSH private key's reference goes with the user (its row would
    // be removed by the cascade); the secret itself is forgotten after the commit.
    let ssh_key =
        user_secrets::delete(&mut tx, user.id, crate::http::ssh_keys::SECRET_NAME).await?;
    users::delete(&mut tx, user.id).await?;
    tx.commit().await?;
    forget_user(&app, &user);
    for stored in user.refresh_token.iter().chain(ssh_key.iter()) {
        if let Err(err) = app.secrets.delete(stored).await {
            tracing::warn!(user.id = %user.id, error = %err, "could not forget a deleted user's secret");
        }
    }
    tracing::info!(user.id = %user.id, by = %principal.user_id, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(get_user, update_user, delete_user))
}
