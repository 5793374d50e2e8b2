//! `/api/v1/deployments`: submission, reading, listing, update (admin rename or
//! redeploy), deletion, owners, reset and the attempt ledger. Handlers translate HTTP
//! to the service layer ([`crate::service::deployments`]) and back.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json_};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::Principal;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{etag, path_uuid, IfMatch, Json, QueryPairs, RequestUrl};
use super::list::{parse_query, Page};
use super::users::Created;
use super::AppState;
use crate::domain::{Attempt, Deployment, DeploymentStatus, Task, Timestamp};
use crate::service::deployments::{self as service, DeleteOptions, DeleteOutcome, OwnerOutcome};
use crate::service::submit::{self, NewDeployment};
use crate::store::deployments::LIST;

/// Links to a deployment's sub-resources.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentLinks {
    /// The template it deploys.
    pub template: String,
    /// Its resources.
    pub resources: String,
    /// Its logs.
    pub logs: String,
    /// Its provider attempts.
    pub attempts: String,
}

/// A deployment as shown by the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentRead {
    /// Deployment id.
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
    /// Owners.
    pub owned_by: Vec<Uuid>,
    /// The template deployed.
    pub template_id: Uuid,
    /// Inputs.
    #[schema(value_type = Object)]
    pub template_inputs: Map<String, Json_>,
    /// Outputs (empty until the deployment completes).
    #[schema(value_type = Object)]
    pub template_outputs: Map<String, Json_>,
    /// The user group it was created for.
    pub user_group: String,
    /// Attempts per provider.
    pub per_provider_max_retries: i64,
    /// Providers that may be tried (null: no limit).
    pub max_providers: Option<i64>,
    /// Overall timeout in minutes.
    pub tot_timeout_mins: i64,
    /// Timeout per provider in minutes.
    pub per_provider_timeout_mins: i64,
    /// Keep the last failed attempt's resources.
    pub keep_last_attempt: bool,
    /// Provider asked for or chosen.
    pub target_provider: Option<String>,
    /// Region asked for or chosen.
    pub target_region: Option<String>,
    /// IaaS project chosen.
    pub target_iaas_project: Option<String>,
    /// IM infrastructure id.
    pub im_infra_id: Option<String>,
    /// Status code.
    #[schema(value_type = i64)]
    pub status: DeploymentStatus,
    /// Status name.
    pub status_name: &'static str,
    /// Why the status is what it is.
    pub status_reason: Option<String>,
    /// Task code.
    #[schema(value_type = i64)]
    pub task: Task,
    /// Task name.
    pub task_name: &'static str,
    /// Version, also sent as the ETag.
    pub version: i64,
    /// Sub-resources.
    pub links: DeploymentLinks,
}

impl DeploymentRead {
    /// The API shape of a deployment.
    pub fn from(d: Deployment, url: &RequestUrl) -> Self {
        let base = url.absolute(&format!("{}/deployments/{}", super::API_V1, d.id));
        Self {
            links: DeploymentLinks {
                template: url.absolute(&format!("{}/templates/{}", super::API_V1, d.template_id)),
                resources: format!("{base}/resources"),
                logs: format!("{base}/logs"),
                attempts: format!("{base}/attempts"),
            },
            id: d.id,
            created_at: d.created_at,
            created_by: d.created_by,
            updated_at: d.updated_at,
            updated_by: d.updated_by,
            owned_by: d.owned_by,
            template_id: d.template_id,
            template_inputs: d.template_inputs,
            template_outputs: d.template_outputs,
            user_group: d.user_group,
            per_provider_max_retries: d.per_provider_max_retries,
            max_providers: d.max_providers,
            tot_timeout_mins: d.tot_timeout_mins,
            per_provider_timeout_mins: d.per_provider_timeout_mins,
            keep_last_attempt: d.keep_last_attempt,
            target_provider: d.target_provider,
            target_region: d.target_region,
            target_iaas_project: d.target_iaas_project,
            im_infra_id: d.im_infra_id,
            status_name: d.status.name(),
            status: d.status,
            status_reason: d.status_reason,
            task_name: d.task.name(),
            task: d.task,
            version: d.version,
        }
    }
}

fn with_etag<T: IntoResponse>(version: i64, body: T) -> Response {
    let mut response = body.into_response();
    if let Ok(value) = header::HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// Lists the deployments the caller may see.
#[utoipa::path(get, path = "/deployments", tag = "deployments", security(("bearer" = [])),
    params(
        ("page" = Option<u32>, Query, description = "1-based page"),
        ("size" = Option<u32>, Query, description = "Page size, at most 100"),
        ("sort" = Option<String>, Query, description = "Field, '-' prefix for descending (default -created_at)"),
        ("status" = Option<String>, Query, description = "Status codes or names, repeated or comma separated"),
        ("owned_by" = Option<String>, Query, description = "A user id or 'me'"),
        ("created_by" = Option<String>, Query, description = "A user id or 'me'"),
        ("user_group" = Option<String>, Query, description = "Substring of the user group"),
    ),
    responses((status = 200, body = Page<DeploymentRead>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_deployments(
    State(app): State<AppState>,
    principal: Principal,
    pairs: QueryPairs,
    url: RequestUrl,
) -> ApiResult<axum::Json<Page<DeploymentRead>>> {
    let query = parse_query(&pairs, &LIST, Some(&principal.id_text()))?;
    let (items, total) = service::list(&app, &principal.actor(), query.clone()).await?;
    let data = items
        .into_iter()
        .map(|d| DeploymentRead::from(d, &url))
        .collect();
    Ok(axum::Json(Page::new(data, total, &query, &url)))
}

/// Reads a deployment (owners and administrators).
#[utoipa::path(get, path = "/deployments/{id}", tag = "deployments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses((status = 200, body = DeploymentRead, headers(("ETag" = String, description = "The deployment's version"))),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_deployment(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    url: RequestUrl,
) -> ApiResult<Response> {
    let id = path_uuid("id", &id)?;
    let d = service::get(&app, &principal.actor(), id).await?;
    Ok(with_etag(
        d.version,
        axum::Json(DeploymentRead::from(d, &url)),
    ))
}

/// Query of a delete.
#[derive(Debug, Deserialize)]
struct DeleteQuery {
    force: bool,
    unsecure: bool,
}

/// Deletes a deployment: 202 while cloud resources are released, 204 when there was
/// nothing to release or `force` removed it.
#[utoipa::path(delete, path = "/deployments/{id}", tag = "deployments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id"),
        ("force" = Option<bool>, Query, description = "Admin: also remove it from the database"),
        ("unsecure" = Option<bool>, Query, description = "Admin: tell IM to force the deletion")),
    responses((status = 202, description = "Deletion started"), (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn delete_deployment(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    pairs: QueryPairs,
    IfMatch(expected): IfMatch,
) -> ApiResult<StatusCode> {
    let id = path_uuid("id", &id)?;
    let q = DeleteQuery {
        force: pairs.flag("force")?,
        unsecure: pairs.flag("unsecure")?,
    };
    let options = DeleteOptions {
        force: q.force,
        unsecure: q.unsecure,
        expected_version: expected,
        ..DeleteOptions::default()
    };
    Ok(
        match service::delete(&app, &principal.actor(), id, options).await? {
            DeleteOutcome::Started(_) => StatusCode::ACCEPTED,
            DeleteOutcome::Completed | DeleteOutcome::Removed => StatusCode::NO_CONTENT,
        },
    )
}

/// The user to add as an owner.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerBody {
    /// User id.
    pub id: Uuid,
}

fn owner_status(outcome: OwnerOutcome) -> StatusCode {
    match outcome {
        OwnerOutcome::Pushing => StatusCode::ACCEPTED,
        OwnerOutcome::Changed | OwnerOutcome::Unchanged => StatusCode::NO_CONTENT,
    }
}

/// Adds an owner (idempotent).
#[utoipa::path(post, path = "/deployments/{id}/owners", tag = "deployments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id")), request_body = OwnerBody,
    responses((status = 202, description = "Added; keys are being pushed to the VMs"), (status = 204, description = "Added or already an owner"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_deployment_owner(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
    Json(body): Json<OwnerBody>,
) -> ApiResult<StatusCode> {
    let id = path_uuid("id", &id)?;
    Ok(owner_status(
        service::add_owner(&app, &principal.actor(), id, body.id, expected).await?,
    ))
}

/// Removes an owner (the last one cannot be removed).
#[utoipa::path(delete, path = "/deployments/{id}/owners/{user_id}", tag = "deployments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id"), ("user_id" = Uuid, Path, description = "User id")),
    responses((status = 202, description = "Removed; VMs are being updated"), (status = 204, description = "Removed or not an owner"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_deployment_owner(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, user_id)): Path<(String, String)>,
    IfMatch(expected): IfMatch,
) -> ApiResult<StatusCode> {
    let id = path_uuid("id", &id)?;
    let user = path_uuid("user_id", &user_id)?;
    Ok(owner_status(
        service::remove_owner(&app, &principal.actor(), id, user, expected).await?,
    ))
}

/// Turns X_IN_PROGRESS into X_FAILED and cancels the running job.
#[utoipa::path(post, path = "/deployments/{id}/reset-status", tag = "deployments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses((status = 204, description = "Reset"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reset_deployment_status(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
) -> ApiResult<StatusCode> {
    let id = path_uuid("id", &id)?;
    service::reset_status(&app, &principal.actor(), id, expected).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One provider attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptRead {
    /// Order among the deployment's attempts.
    pub number: i64,
    /// Provider.
    pub provider: String,
    /// Region.
    pub region: Option<String>,
    /// IaaS project.
    pub iaas_project: Option<String>,
    /// Start.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// Deadline.
    #[schema(value_type = String, format = DateTime)]
    pub deadline_at: Timestamp,
    /// End.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
    /// `running`, `succeeded`, `failed`, `timed_out`, `cancelled`.
    pub outcome: String,
    /// IM infrastructure id.
    pub im_infra_id: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
    /// Its infrastructure was destroyed.
    pub destroyed: bool,
}

impl From<Attempt> for AttemptRead {
    fn from(a: Attempt) -> Self {
        Self {
            number: a.number,
            provider: a.provider,
            region: a.region,
            iaas_project: a.iaas_project,
            started_at: a.started_at,
            deadline_at: a.deadline_at,
            ended_at: a.ended_at,
            outcome: a.outcome,
            im_infra_id: a.im_infra_id,
            error: a.error,
            destroyed: a.destroyed,
        }
    }
}

/// The attempts list.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptList {
    /// Attempts in order.
    pub data: Vec<AttemptRead>,
}

/// The placement ledger: every attempt on every provider.
#[utoipa::path(get, path = "/deployments/{id}/attempts", tag = "deployments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses((status = 200, body = AttemptList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_deployment_attempts(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AttemptList>> {
    let id = path_uuid("id", &id)?;
    let attempts = service::attempts(&app, &principal.actor(), id).await?;
    Ok(axum::Json(AttemptList {
        data: attempts.into_iter().map(AttemptRead::from).collect(),
    }))
}

/// Headers for responses that carry a deployment's id and location.
pub fn created_headers(url: &RequestUrl, id: Uuid) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) =
        header::HeaderValue::from_str(&url.absolute(&format!("{}/deployments/{id}", super::API_V1)))
    {
        headers.insert(header::LOCATION, v);
    }
    headers
}

/// A deployment request. orchestrator-python's names (`timeout`,
/// `per_provider_timeout`, `target_provider_name`, `target_region_name`) are accepted
/// as aliases.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentCreate {
    /// The template to deploy.
    pub template_id: Uuid,
    /// Inputs of the template.
    #[schema(value_type = Object)]
    pub template_inputs: Map<String, Json_>,
    /// The user group the deployment is for (one of the caller's groups).
    pub user_group: String,
    /// Attempts per provider, 1–10 (default 3).
    pub per_provider_max_retries: Option<i64>,
    /// Providers to try at most, ≥ 1 (default: no limit).
    pub max_providers: Option<i64>,
    /// Overall timeout in minutes, 1–14400 (default 14400).
    #[serde(alias = "timeout")]
    pub tot_timeout_mins: Option<i64>,
    /// Timeout per provider in minutes, ≥ 1 and ≤ the total (default 1440).
    #[serde(alias = "per_provider_timeout")]
    pub per_provider_timeout_mins: Option<i64>,
    /// Keep the last failed attempt's resources (default false).
    pub keep_last_attempt: Option<bool>,
    /// Provider to use.
    #[serde(alias = "target_provider_name")]
    pub target_provider: Option<String>,
    /// Region to use.
    #[serde(alias = "target_region_name")]
    pub target_region: Option<String>,
}

impl From<DeploymentCreate> for NewDeployment {
    fn from(b: DeploymentCreate) -> Self {
        Self {
            template_id: b.template_id,
            template_inputs: b.template_inputs,
            user_group: b.user_group,
            per_provider_max_retries: b.per_provider_max_retries,
            max_providers: b.max_providers,
            tot_timeout_mins: b.tot_timeout_mins,
            per_provider_timeout_mins: b.per_provider_timeout_mins,
            keep_last_attempt: b.keep_last_attempt,
            target_provider: b.target_provider,
            target_region: b.target_region,
            callback: None,
        }
    }
}

/// A resource that a dry run would create.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlannedResource {
    /// Node template name.
    pub tosca_node_name: String,
    /// Node type.
    pub tosca_node_type: String,
    /// Nodes requiring it.
    pub required_by: Vec<String>,
}

/// What a dry run found: the request is valid and this would happen.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRun {
    /// Always true.
    pub dry_run: bool,
    /// Inputs with defaults applied, as IM would receive them.
    #[schema(value_type = Object)]
    pub template_inputs: Map<String, Json_>,
    /// Resources that would be tracked.
    pub resources: Vec<PlannedResource>,
    /// The template IM would receive.
    pub rendered_template: String,
    /// Status the deployment would start in.
    pub status_name: &'static str,
}

/// Submits a deployment (asynchronous: 202), or with `?dry_run=true` validates it and
/// answers what would happen without storing anything.
#[utoipa::path(post, path = "/deployments", tag = "deployments", security(("bearer" = [])),
    params(("dry_run" = Option<bool>, Query, description = "Validate only")),
    request_body = DeploymentCreate,
    responses((status = 202, body = Created, headers(("Location" = String, description = "The new deployment"))),
        (status = 200, description = "Dry run", body = DryRun),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_deployment(
    State(app): State<AppState>,
    principal: Principal,
    url: RequestUrl,
    pairs: QueryPairs,
    Json(body): Json<DeploymentCreate>,
) -> ApiResult<Response> {
    let actor = principal.actor();
    if pairs.flag("dry_run")? {
        let plan = submit::plan(&app, &actor, body.into()).await?;
        return Ok(axum::Json(DryRun {
            dry_run: true,
            template_inputs: plan.resolved_inputs,
            resources: plan
                .resources
                .into_iter()
                .map(|r| PlannedResource {
                    tosca_node_name: r.tosca_node_name,
                    tosca_node_type: r.tosca_node_type,
                    required_by: r.required_by,
                })
                .collect(),
            rendered_template: plan.rendered_template,
            status_name: plan.deployment.status.name(),
        })
        .into_response());
    }
    let d = submit::create(&app, &actor, body.into()).await?;
    let mut response = (
        StatusCode::ACCEPTED,
        created_headers(&url, d.id),
        axum::Json(Created { id: d.id }),
    )
        .into_response();
    if let Ok(value) = header::HeaderValue::from_str(&etag(d.version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

/// Either the admin rename of the user group (204) or the update-and-redeploy with
/// new inputs (202); both at once or neither is 422.
#[utoipa::path(patch, path = "/deployments/{id}", tag = "deployments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id")),
    request_body(content = Object, description = "`{\"user_group\"}` (admin) or `{\"template_inputs\": {...}}`"),
    responses((status = 202, description = "Update started", body = Created), (status = 204, description = "Renamed"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_deployment(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
    Json(body): Json<Map<String, Json_>>,
) -> ApiResult<Response> {
    let id = path_uuid("id", &id)?;
    if let Some(unknown) = body
        .keys()
        .find(|k| !matches!(k.as_str(), "user_group" | "template_inputs"))
    {
        return Err(ApiError::invalid_field(
            format!("/{unknown}"),
            "unknown field; give either user_group or template_inputs",
        ));
    }
    let actor = principal.actor();
    match (body.get("user_group"), body.get("template_inputs")) {
        (Some(group), None) => {
            let group = group
                .as_str()
                .ok_or_else(|| ApiError::invalid_field("/user_group", "must be a string"))?;
            let d = service::rename_group(&app, &actor, id, group, expected).await?;
            Ok(with_etag(d.version, StatusCode::NO_CONTENT))
        }
        (None, Some(inputs)) => {
            let inputs = inputs
                .as_object()
                .cloned()
                .ok_or_else(|| ApiError::invalid_field("/template_inputs", "must be an object"))?;
            let d = submit::redeploy(&app, &actor, id, inputs, expected).await?;
            Ok(with_etag(
                d.version,
                (StatusCode::ACCEPTED, axum::Json(Created { id: d.id })),
            ))
        }
        _ => Err(ApiError::unprocessable(
            "give exactly one of user_group (rename) or template_inputs (update and redeploy)",
            vec![super::error::FieldError {
                loc: "/".into(),
                msg: "exactly one of user_group or template_inputs is required".into(),
            }],
        )),
    }
}

/// The template a deployment uses.
#[utoipa::path(get, path = "/deployments/{id}/template", tag = "deployments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses((status = 200, body = super::templates::TemplateRead), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_deployment_template(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<super::templates::TemplateRead>> {
    let id = path_uuid("id", &id)?;
    let d = service::get(&app, &principal.actor(), id).await?;
    Ok(axum::Json(
        crate::service::templates::get(&app, d.template_id)
            .await?
            .into(),
    ))
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deployments, create_deployment))
        .routes(routes!(
            get_deployment,
            delete_deployment,
            update_deployment
        ))
        .routes(routes!(get_deployment_template))
        .routes(routes!(add_deployment_owner))
        .routes(routes!(remove_deployment_owner))
        .routes(routes!(reset_deployment_status))
        .routes(routes!(list_deployment_attempts))
}
