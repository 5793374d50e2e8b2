//! Authentication and authorization as extractors, so a handler's signature shows
//! who may call it: [`Caller`] is an authenticated caller the policy allows on this
//! request; [`Principal`] is a `Caller` who is also a registered user (registered on
//! the spot at first access, DESIGN.md §3).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use uuid::Uuid;

use super::error::ApiError;
use super::{AppState, OriginalPath};
use crate::auth::{AuthError, Identity};
use crate::config::Secret;
use crate::domain::{Timestamp, User};
use crate::policy::PolicyInput;
use crate::store::{users, StoreError};

/// An authenticated caller whom the policy allows on this request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who the token says the caller is.
    pub identity: Arc<Identity>,
    /// The policy's `is_admin`.
    pub is_admin: bool,
    /// The bearer token, for operations that act on the user's behalf.
    pub token: Secret,
}

/// A registered caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Our user id.
    pub user_id: Uuid,
    /// The authenticated caller.
    pub caller: Caller,
}

impl Principal {
    /// Administrators see and repair everything.
    pub fn is_admin(&self) -> bool {
        self.caller.is_admin
    }

    /// The caller's groups at their issuer.
    pub fn groups(&self) -> &[String] {
        &self.caller.identity.groups
    }

    /// The user id as text (for `me` in filters).
    pub fn id_text(&self) -> String {
        self.user_id.to_string()
    }
}

/// Authentication schemes of the IANA registry (and a few common ones), which a
/// detail may name.
const KNOWN_SCHEMES: &[&str] = &[
    "Basic",
    "Digest",
    "DPoP",
    "GNAP",
    "HOBA",
    "Mutual",
    "Negotiate",
    "NTLM",
    "OAuth",
    "PrivateToken",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "vapid",
    "Token",
    "AWS4-HMAC-SHA256",
];

fn bearer_token(parts: &Parts) -> Result<String, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "a bearer token is required (Authorization: Bearer <token>)",
            false,
        ));
    };
    let value = value.to_str().map_err(|_| {
        ApiError::unauthorized("the Authorization header is not readable text", true)
    })?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // RFC 6750 §3.1: another scheme is answered like missing credentials, with a
        // bare challenge. The scheme is named only when it is a known one: a token
        // sent without a scheme would otherwise be echoed back.
        let named = if KNOWN_SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
            format!(", not '{scheme}'")
        } else {
            String::new()
        };
        return Err(ApiError::unauthorized(
            format!("the Authorization header must use the Bearer scheme{named}"),
            false,
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::unauthorized("the bearer token is empty", true));
    }
    Ok(token.to_string())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let token = bearer_token(parts)?;
        let identity = state.auth.authenticate(&token).await.map_err(|e| match e {
            AuthError::InvalidToken(reason) => ApiError::unauthorized(reason, true),
            AuthError::IssuerUnavailable(reason) => ApiError::unavailable(
                "the identity provider cannot be reached to check the token; try again later",
                reason,
            ),
        })?;
        let path = parts
            .extensions
            .get::<OriginalPath>()
            .map(|p| p.0.clone())
            .unwrap_or_else(|| parts.uri.path().to_string());
        let has_body = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "0")
            || parts.headers.contains_key(header::TRANSFER_ENCODING);
        let input = PolicyInput {
            user_info: identity.claims.clone(),
            path,
            method: parts.method.to_string(),
            has_body,
        };
        let decision = state.policy.decide(&input).await.map_err(|e| {
            ApiError::unavailable(format!("authorization cannot be decided: {e}"), &e)
        })?;
        if !decision.allow {
            return Err(ApiError::forbidden(format!(
                "the authorization policy does not allow {} {} for this user",
                input.method, input.path
            )));
        }
        let caller = Caller {
            identity,
            is_admin: decision.is_admin,
            token: Secret::new(token),
        };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let user_id = registered_user(state, &caller.identity).await?;
        Ok(Principal { user_id, caller })
    }
}

fn identity_key(identity: &Identity) -> String {
    format!("{}\n{}", identity.issuer, identity.sub)
}

/// The caller's user id, registering the caller if this is their first access.
pub async fn registered_user(state: &AppState, identity: &Identity) -> Result<Uuid, ApiError> {
    let key = identity_key(identity);
    if let Some(id) = state.user_ids.get(&key) {
        return Ok(id);
    }
    let mut conn = state.store.conn().await?;
    if let Some(user) = users::find_by_identity(&mut conn, &identity.sub, &identity.issuer).await? {
        drop(conn);
        if user.name != identity.name
            || user.email != identity.email
            || user.username != identity.username
        {
            let mut tx = state.store.begin().await?;
            let updated = User {
                name: identity.name.clone(),
                email: identity.email.clone(),
                username: identity.username.clone(),
                updated_at: Timestamp::now(),
                ..user.clone()
            };
            users::update_claims(&mut tx, &updated).await?;
            tx.commit().await?;
        }
        state.user_ids.insert(key, user.id);
        return Ok(user.id);
    }
    drop(conn);
    match register(state, identity).await {
        Ok(user) => Ok(user.id),
        // Two first requests raced; the other one registered the user.
        Err(_) => {
            let mut conn = state.store.conn().await?;
            let user = users::find_by_identity(&mut conn, &identity.sub, &identity.issuer)
                .await?
                .ok_or_else(|| ApiError::internal("user registration failed"))?;
            state.user_ids.insert(key, user.id);
            Ok(user.id)
        }
    }
}

/// Registers the caller; `Err` with 409 when already registered.
pub async fn register(state: &AppState, identity: &Identity) -> Result<User, ApiError> {
    let now = Timestamp::now();
    let user = User {
        id: Uuid::new_v4(),
        sub: identity.sub.clone(),
        issuer: identity.issuer.clone(),
        name: identity.name.clone(),
        username: identity.username.clone(),
        email: identity.email.clone(),
        picture: None,
        public_ssh_key: None,
        refresh_token: None,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.store.begin().await?;
    match users::insert(&mut tx, &user).await {
        Ok(()) => {}
        Err(StoreError::Duplicate(_)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "the user with sub '{}' at issuer '{}' is already registered",
                    identity.sub, identity.issuer
                ),
            ))
        }
        Err(other) => return Err(other.into()),
    }
    tx.commit().await?;
    tracing::info!(user.id = %user.id, user.sub = %user.sub, user.issuer = %user.issuer, "user registered");
    state.user_ids.insert(identity_key(identity), user.id);
    Ok(user)
}

/// Forgets cached registrations of a user (after deleting it).
pub fn forget_user(state: &AppState, user: &User) {
    state
        .user_ids
        .invalidate(&format!("{}\n{}", user.issuer, user.sub));
}

impl Principal {
    /// The principal as the service layer sees it.
    pub fn actor(&self) -> crate::service::Actor {
        crate::service::Actor {
            user_id: self.user_id,
            is_admin: self.caller.is_admin,
            groups: self.caller.identity.groups.clone(),
            name: self.caller.identity.username.clone(),
            token: self.caller.token.clone(),
        }
    }
}
