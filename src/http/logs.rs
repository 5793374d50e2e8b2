//! `/api/v1/deployments/{id}/logs` (also at the spec's `/deployment/{id}/logs`): IM's
//! contextualisation log and the orchestrator's own lines.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Principal;
use super::error::{ApiResult, ErrorBody};
use super::extract::path_uuid;
use super::AppState;
use crate::domain::Timestamp;
use crate::service::deployments as service;

/// A deployment's logs.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogsRead {
    /// When the newest line was written (now when there is none).
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: Timestamp,
    /// IM's contextualisation messages.
    pub im_logs: Option<String>,
    /// The orchestrator's lines (who did what, when).
    pub orchestrator_logs: Option<String>,
}

async fn read(app: &AppState, principal: &Principal, id: &str) -> ApiResult<axum::Json<LogsRead>> {
    let id = path_uuid("id", id)?;
    let logs = service::logs(app, &principal.actor(), id).await?;
    Ok(axum::Json(LogsRead {
        timestamp: logs
            .lines
            .last()
            .map(|l| l.created_at)
            .unwrap_or_else(Timestamp::now),
        orchestrator_logs: logs.orchestrator_text(),
        im_logs: logs.im_logs,
    }))
}

async fn clear(app: &AppState, principal: &Principal, id: &str) -> ApiResult<StatusCode> {
    let id = path_uuid("id", id)?;
    service::clear_logs(app, &principal.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads a deployment's logs.
#[utoipa::path(get, path = "/deployments/{id}/logs", tag = "logs", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses((status = 200, body = LogsRead), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_deployment_logs(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<LogsRead>> {
    read(&app, &principal, &id).await
}

/// Deletes a deployment's logs (administrators).
#[utoipa::path(delete, path = "/deployments/{id}/logs", tag = "logs", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_deployment_logs(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    clear(&app, &principal, &id).await
}

/// The spec's spelling: reads a deployment's logs.
#[utoipa::path(get, path = "/deployment/{id}/logs", tag = "logs", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses((status = 200, body = LogsRead), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_deployment_logs_singular(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<LogsRead>> {
    read(&app, &principal, &id).await
}

/// The spec's spelling: deletes a deployment's logs (administrators).
#[utoipa::path(delete, path = "/deployment/{id}/logs", tag = "logs", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_deployment_logs_singular(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    clear(&app, &principal, &id).await
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_deployment_logs, delete_deployment_logs))
        .routes(routes!(
            get_deployment_logs_singular,
            delete_deployment_logs_singular
        ))
}
