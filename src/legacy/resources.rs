//! `{LEGACY_PREFIX}/deployments/{id}/resources`: the legacy resource list (with the
//! `type` filter matching derived types), one resource, and the start/stop actions.
//! DELETED resources, which the legacy server removed, are not shown.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;

use super::deployments::{accepted, page_request, v1_query, v1_sort, UPDATABLE};
use super::error::{LegacyError, LegacyResult};
use super::extract::{path_id, Body, Caller};
use super::shapes::{BaseResource, Paged, Root};
use crate::domain::list::{Condition, Value as FilterValue};
use crate::domain::{Resource, ResourceStatus};
use crate::http::extract::{QueryPairs, RequestUrl};
use crate::http::AppState;
use crate::service::resources::{self as service, Action};
use crate::service::templates;
use crate::store::resources::LIST;

const SORTABLE: &[(&str, &str)] = &[
    ("createdAt", "created_at"),
    ("creationTime", "created_at"),
    ("updatedAt", "updated_at"),
    ("updateTime", "updated_at"),
    ("uuid", "id"),
    ("id", "id"),
];

fn live_statuses() -> Vec<FilterValue> {
    ResourceStatus::ALL
        .iter()
        .filter(|s| **s != ResourceStatus::Deleted)
        .map(|s| FilterValue::Int(s.code()))
        .collect()
}

/// `GET /deployments/{id}/resources[?type=T]`.
pub async fn list_resources(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    pairs: QueryPairs,
    url: RequestUrl,
) -> LegacyResult<Json<Paged<BaseResource>>> {
    let actor = principal.actor();
    let id = path_id("deployment", &id)?;
    let request = page_request(&pairs)?;
    let sort = match request.sort.as_deref() {
        None => "created_at".to_string(),
        given => v1_sort(given, SORTABLE)?,
    };
    let mut query = v1_query(&request, sort, vec![], &LIST, &principal.id_text())?;
    query.push(Condition::In {
        column: "r.status",
        values: live_statuses(),
    });
    if let Some(wanted) = pairs.get("type").map(str::trim).filter(|t| !t.is_empty()) {
        query.push(service::type_condition(&app, &actor, id, wanted).await?);
    }
    let (_, items, total) = service::list(&app, &actor, id, &query).await?;
    let root = Root::of(&url, &app.config);
    let content = items
        .into_iter()
        .map(|r| BaseResource::build(r, &root))
        .collect();
    let href = root.at(&format!("/deployments/{id}/resources"));
    Ok(Json(Paged::new(content, total, &request, &href)))
}

async fn live_resource(
    app: &AppState,
    principal: &crate::http::auth::Principal,
    id: &str,
    rid: &str,
) -> LegacyResult<(crate::domain::Deployment, Resource)> {
    let id = path_id("deployment", id)?;
    let rid = path_id("resource", rid)?;
    let (d, r) = service::get(app, &principal.actor(), id, rid).await?;
    if r.status == ResourceStatus::Deleted {
        return Err(LegacyError::not_found(format!(
            "resource '{rid}' does not exist"
        )));
    }
    Ok((d, r))
}

/// `GET /deployments/{id}/resources/{rid}`.
pub async fn get_resource(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path((id, rid)): Path<(String, String)>,
    url: RequestUrl,
) -> LegacyResult<Json<BaseResource>> {
    let (_, r) = live_resource(&app, &principal, &id, &rid).await?;
    Ok(Json(BaseResource::build(r, &Root::of(&url, &app.config))))
}

/// `POST /deployments/{id}/resources/{rid}/actions` with `{"type": "start"|"stop"}`:
/// the legacy rules (`DoAction`) first — a Compute node STOPPED to start or STARTED
/// to stop (400), a deployment in CREATE_COMPLETE, UPDATE_COMPLETE or UPDATE_FAILED
/// (409) — then v1's start/stop; 202 with an empty body.
pub async fn act_on_resource(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path((id, rid)): Path<(String, String)>,
    body: Body,
) -> LegacyResult<Response> {
    let kind = body
        .text("type")?
        .ok_or_else(|| LegacyError::field("type", "is required: start or stop"))?;
    let (action, from) = match Action::parse(kind.trim()) {
        Some(Action::Start) => (Action::Start, ResourceStatus::Stopped),
        Some(Action::Stop) => (Action::Stop, ResourceStatus::Started),
        _ => {
            return Err(LegacyError::field(
                "type",
                format!("must be start or stop, got '{kind}'"),
            ))
        }
    };
    let (d, r) = live_resource(&app, &principal, &id, &rid).await?;
    let model = templates::model_by_id(&app, d.template_id).await?;
    if !model.is_compute_node(&r.tosca_node_name) || r.im_vm_idx.is_none() {
        return Err(LegacyError::bad_request(format!(
            "resource '{}' ({}) is not a virtual machine; only compute nodes can be started or stopped",
            r.id, r.tosca_node_name
        )));
    }
    if r.status != from {
        return Err(LegacyError::bad_request(format!(
            "resource '{}' is {}; {} is allowed only from {}",
            r.id,
            r.status,
            action.as_str(),
            from
        )));
    }
    if !UPDATABLE.contains(&d.status) {
        return Err(LegacyError::conflict(format!(
            "deployment '{}' is {}; actions are allowed only in CREATE_COMPLETE, UPDATE_COMPLETE or UPDATE_FAILED",
            d.id, d.status
        )));
    }
    service::act(&app, &principal.actor(), d.id, r.id, action, None).await?;
    Ok(accepted())
}
