//! `/api/v1/deployments/{id}/resources`: the TOSCA node instances of a deployment,
//! their start/stop/reboot, and the manual reset to ERROR. The `type` filter matches
//! the type asked for and every type derived from it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::Principal;
use super::error::{ApiResult, ErrorBody};
use super::extract::{path_uuid, IfMatch, QueryPairs, RequestUrl};
use super::list::{parse_query, Page};
use super::AppState;
use crate::domain::{Deployment, Resource, ResourceStatus, Timestamp};
use crate::service::resources::{self as service, Action};
use crate::service::Actor;
use crate::store::resources::LIST;

/// A resource as shown by the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceRead {
    /// Resource id.
    pub id: Uuid,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Creator.
    pub created_by: Uuid,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Who changed it last.
    pub updated_by: Uuid,
    /// IM VM id (compute nodes, once bound).
    pub im_vm_idx: Option<String>,
    /// Status code.
    #[schema(value_type = i64)]
    pub status: ResourceStatus,
    /// Status name.
    pub status_name: &'static str,
    /// Why (errors).
    pub status_reason: Option<String>,
    /// TOSCA node type.
    pub tosca_node_type: String,
    /// TOSCA node name.
    pub tosca_node_name: String,
    /// Nodes that require this one.
    pub required_by: Vec<String>,
    /// IM's VM information (`VirtualMachineInfo.vmProperties`).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// Secrets IM puts in VM information (private keys, passwords) are shown to the
/// deployment's owners only; administrators see them redacted.
fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let k = key.to_ascii_lowercase();
                if k.ends_with("private_key") || k.ends_with("password") || k.ends_with("token") {
                    *v = Value::String("*** (visible to the deployment's owners)".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

impl ResourceRead {
    /// The API shape; `owner` says whether the viewer owns the deployment.
    pub fn from(r: Resource, owner: bool) -> Self {
        let mut metadata = r.metadata;
        if !owner {
            if let Some(m) = metadata.as_mut() {
                redact(m);
            }
        }
        Self {
            id: r.id,
            created_at: r.created_at,
            created_by: r.created_by,
            updated_at: r.updated_at,
            updated_by: r.updated_by,
            im_vm_idx: r.im_vm_idx,
            status_name: r.status.name(),
            status: r.status,
            status_reason: r.status_reason,
            tosca_node_type: r.tosca_node_type,
            tosca_node_name: r.tosca_node_name,
            required_by: r.required_by,
            metadata,
        }
    }
}

fn owns(actor: &Actor, d: &Deployment) -> bool {
    d.owned_by.contains(&actor.user_id)
}

/// Lists a deployment's resources (`type` matches derived types too).
#[utoipa::path(get, path = "/deployments/{id}/resources", tag = "resources", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id"),
        ("type" = Option<String>, Query, description = "A TOSCA node type; derived types match too"),
        ("page" = Option<u32>, Query, description = "1-based page"),
        ("size" = Option<u32>, Query, description = "Page size, at most 100"),
        ("sort" = Option<String>, Query, description = "Field, '-' prefix for descending")),
    responses((status = 200, body = Page<ResourceRead>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_resources(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    pairs: QueryPairs,
    url: RequestUrl,
) -> ApiResult<axum::Json<Page<ResourceRead>>> {
    let id = path_uuid("id", &id)?;
    let actor = principal.actor();
    let mut query = parse_query(&pairs, &LIST, Some(&principal.id_text()))?;
    if let Some(wanted) = query.extra("type").map(str::to_string) {
        query.push(service::type_condition(&app, &actor, id, &wanted).await?);
    }
    let (d, items, total) = service::list(&app, &actor, id, &query).await?;
    let owner = owns(&actor, &d);
    Ok(axum::Json(Page::new(
        items
            .into_iter()
            .map(|r| ResourceRead::from(r, owner))
            .collect(),
        total,
        &query,
        &url,
    )))
}

/// Reads a resource.
#[utoipa::path(get, path = "/deployments/{id}/resources/{resource_id}", tag = "resources", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id"), ("resource_id" = Uuid, Path, description = "Resource id")),
    responses((status = 200, body = ResourceRead), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_resource(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, resource_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<ResourceRead>> {
    let (id, rid) = (
        path_uuid("id", &id)?,
        path_uuid("resource_id", &resource_id)?,
    );
    let actor = principal.actor();
    let (d, r) = service::get(&app, &actor, id, rid).await?;
    Ok(axum::Json(ResourceRead::from(r, owns(&actor, &d))))
}

async fn act(
    app: &AppState,
    principal: &Principal,
    id: &str,
    rid: &str,
    action: Action,
    expected: Option<i64>,
) -> ApiResult<StatusCode> {
    let (id, rid) = (path_uuid("id", id)?, path_uuid("resource_id", rid)?);
    service::act(app, &principal.actor(), id, rid, action, expected).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Starts a compute resource (from CONFIGURED, STOPPED or STARTED).
#[utoipa::path(patch, path = "/deployments/{id}/resources/{resource_id}/start", tag = "resources", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id"), ("resource_id" = Uuid, Path, description = "Resource id")),
    responses((status = 202, description = "Starting"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn start_resource(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, rid)): Path<(String, String)>,
    IfMatch(expected): IfMatch,
) -> ApiResult<StatusCode> {
    act(&app, &principal, &id, &rid, Action::Start, expected).await
}

/// Stops a compute resource (from CONFIGURED, STOPPED or STARTED).
#[utoipa::path(patch, path = "/deployments/{id}/resources/{resource_id}/stop", tag = "resources", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id"), ("resource_id" = Uuid, Path, description = "Resource id")),
    responses((status = 202, description = "Stopping"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn stop_resource(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, rid)): Path<(String, String)>,
    IfMatch(expected): IfMatch,
) -> ApiResult<StatusCode> {
    act(&app, &principal, &id, &rid, Action::Stop, expected).await
}

/// Reboots a compute resource (from STARTED).
#[utoipa::path(patch, path = "/deployments/{id}/resources/{resource_id}/reboot", tag = "resources", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id"), ("resource_id" = Uuid, Path, description = "Resource id")),
    responses((status = 202, description = "Rebooting"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reboot_resource(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, rid)): Path<(String, String)>,
    IfMatch(expected): IfMatch,
) -> ApiResult<StatusCode> {
    act(&app, &principal, &id, &rid, Action::Reboot, expected).await
}

/// Forces a resource's status to ERROR.
#[utoipa::path(patch, path = "/deployments/{id}/resources/{resource_id}/reset-status", tag = "resources", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id"), ("resource_id" = Uuid, Path, description = "Resource id")),
    responses((status = 204, description = "Reset"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn reset_resource_status(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, rid)): Path<(String, String)>,
    IfMatch(expected): IfMatch,
) -> ApiResult<StatusCode> {
    let (id, rid) = (path_uuid("id", &id)?, path_uuid("resource_id", &rid)?);
    service::reset_status(&app, &principal.actor(), id, rid, expected).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_resources))
        .routes(routes!(get_resource))
        .routes(routes!(start_resource))
        .routes(routes!(stop_resource))
        .routes(routes!(reboot_resource))
        .routes(routes!(reset_resource_status))
}
