//! `{LEGACY_PREFIX}/deployments`: the legacy deployment operations mapped onto the v1
//! services (legacy-api.md §5): list with `createdBy`/`userGroup`/`excludedStatus`
//! and 0-based paging, create with an inline template (stored through the templates
//! service, reused by checksum), PUT that may change the template, the reset PATCH,
//! DELETE whose `force` is v1's `unsecure`, and the text endpoints (template, log,
//! extrainfo).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::{LegacyError, LegacyResult};
use super::extract::{parse_bool, path_id, Body, Caller};
use super::shapes::{DeploymentResource, PageRequest, Paged, Root};
use crate::domain::list::{Condition, ListQuery, Value as FilterValue};
use crate::domain::{Deployment, DeploymentStatus, Resource, ResourceStatus, User};
use crate::http::extract::{QueryPairs, RequestUrl};
use crate::http::AppState;
use crate::service::deployments::{self as service, DeleteOptions};
use crate::service::submit::{self, NewDeployment, Update};
use crate::service::{templates, Actor, Error};
use crate::store::{deployments::LIST, resources, users};

/// Default page size of legacy lists (Spring's).
pub const DEFAULT_SIZE: u32 = 10;

/// Statuses a legacy PUT (and a VM action) may start from
/// (`DeploymentServiceImpl.updateDeployment`).
pub const UPDATABLE: &[DeploymentStatus] = &[
    DeploymentStatus::CreateComplete,
    DeploymentStatus::UpdateComplete,
    DeploymentStatus::UpdateFailed,
];

/// Reads 0-based `page`, `size` and `sort`; every other parameter is kept for links.
pub fn page_request(pairs: &QueryPairs) -> LegacyResult<PageRequest> {
    let mut request = PageRequest {
        page: 0,
        size: DEFAULT_SIZE,
        sort: None,
        kept: Vec::new(),
    };
    for (name, value) in &pairs.0 {
        match name.as_str() {
            "page" => {
                request.page = value.trim().parse().map_err(|_| {
                    LegacyError::field(
                        "page",
                        format!("must be a page number from 0, got '{value}'"),
                    )
                })?
            }
            "size" => {
                let size: u32 = value.trim().parse().map_err(|_| {
                    LegacyError::field("size", format!("must be a positive integer, got '{value}'"))
                })?;
                if size == 0 {
                    return Err(LegacyError::field("size", "must be at least 1"));
                }
                // Spring caps the page size silently; so do we, at the v1 maximum.
                request.size = size.min(crate::domain::list::MAX_SIZE);
            }
            "sort" if request.sort.is_none() => request.sort = Some(value.clone()),
            "sort" => {}
            _ => request.kept.push((name.clone(), value.clone())),
        }
    }
    Ok(request)
}

/// `createdAt,desc` → the v1 `-created_at`.
pub fn v1_sort(sort: Option<&str>, fields: &[(&str, &str)]) -> LegacyResult<String> {
    let Some(sort) = sort.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok("-created_at".into());
    };
    let mut parts = sort.split(',').map(str::trim);
    let field = parts.next().unwrap_or("");
    let descending = match parts.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") | Some("") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(LegacyError::field(
                "sort",
                format!("the direction must be asc or desc, got '{other}'"),
            ))
        }
    };
    let Some((_, v1)) = fields.iter().find(|(legacy, _)| *legacy == field) else {
        let known: Vec<&str> = fields.iter().map(|(l, _)| *l).collect();
        return Err(LegacyError::field(
            "sort",
            format!(
                "cannot sort by '{field}'; sortable fields are {}",
                known.join(", ")
            ),
        ));
    };
    Ok(format!("{}{v1}", if descending { "-" } else { "" }))
}

const SORTABLE: &[(&str, &str)] = &[
    ("createdAt", "created_at"),
    ("creationTime", "created_at"),
    ("updatedAt", "updated_at"),
    ("updateTime", "updated_at"),
    ("uuid", "id"),
    ("id", "id"),
    ("status", "status"),
    ("task", "task"),
    ("userGroup", "user_group"),
    ("cloudProviderName", "target_provider"),
    ("physicalId", "im_infra_id"),
];

/// A v1 list query of one legacy page with the given filters.
pub fn v1_query(
    request: &PageRequest,
    sort: String,
    filters: Vec<(String, String)>,
    spec: &'static crate::domain::list::ListSpec,
    me: &str,
) -> LegacyResult<ListQuery> {
    let mut pairs = vec![
        (
            "page".to_string(),
            (request.page.saturating_add(1)).to_string(),
        ),
        ("size".to_string(), request.size.to_string()),
        ("sort".to_string(), sort),
    ];
    pairs.extend(filters);
    ListQuery::parse(&pairs, spec, Some(me)).map_err(|errors| {
        let text: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.param, e.message))
            .collect();
        LegacyError::bad_request(super::error::legacy_names(&text.join("; ")))
    })
}

/// The user `createdBy=subject@issuer` names, if registered (issuers compare with
/// or without a trailing slash).
async fn named_user(app: &AppState, value: &str) -> LegacyResult<Option<Uuid>> {
    let re = regex::Regex::new(r"^([^@]+)@([^@]+)$").map_err(LegacyError::internal)?;
    let Some(caps) = re.captures(value) else {
        return Err(LegacyError::field(
            "createdBy",
            format!("must be 'me' or 'subject@issuer', got '{value}'"),
        ));
    };
    let (sub, issuer) = (&caps[1], &caps[2]);
    let mut conn = app.store.conn().await?;
    let trimmed = issuer.trim_end_matches('/');
    for candidate in [
        issuer.to_string(),
        trimmed.to_string(),
        format!("{trimmed}/"),
    ] {
        if let Some(user) = users::find_by_identity(&mut conn, sub, &candidate).await? {
            return Ok(Some(user.id));
        }
    }
    Ok(None)
}

/// The statuses a list shows: all but those in `excludedStatus` (a comma list, or
/// repeated).
fn included_statuses(pairs: &QueryPairs) -> LegacyResult<Option<Vec<DeploymentStatus>>> {
    let mut excluded = Vec::new();
    for (_, value) in pairs.0.iter().filter(|(k, _)| k == "excludedStatus") {
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let status = DeploymentStatus::parse(name).ok_or_else(|| {
                LegacyError::field("excludedStatus", format!("unknown status '{name}'"))
            })?;
            excluded.push(status);
        }
    }
    if excluded.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        DeploymentStatus::ALL
            .iter()
            .copied()
            .filter(|s| !excluded.contains(s))
            .collect(),
    ))
}

/// Whether the token's groups contain `group` (admins may name any group).
fn check_group(actor: &Actor, group: &str) -> LegacyResult<()> {
    if actor.is_admin
        || actor
            .groups
            .iter()
            .any(|g| g == group || g.trim_start_matches('/') == group)
    {
        Ok(())
    } else {
        Err(LegacyError::forbidden(format!(
            "userGroup: you are not a member of user group '{group}'"
        )))
    }
}

/// Legacy shapes of deployments, with their creators read once each.
pub async fn shape_all(
    app: &AppState,
    items: Vec<Deployment>,
    root: &Root,
) -> LegacyResult<Vec<DeploymentResource>> {
    let mut creators: HashMap<Uuid, Option<User>> = HashMap::new();
    let mut conn = app.store.conn().await?;
    let mut out = Vec::with_capacity(items.len());
    for d in items {
        if let std::collections::hash_map::Entry::Vacant(e) = creators.entry(d.created_by) {
            e.insert(users::get(&mut conn, d.created_by).await?);
        }
        let creator = creators.get(&d.created_by).and_then(Option::as_ref);
        out.push(DeploymentResource::build(d, creator, &app.config, root));
    }
    Ok(out)
}

/// The legacy shape of one deployment.
pub async fn shape(app: &AppState, d: Deployment, root: &Root) -> LegacyResult<DeploymentResource> {
    let mut shaped = shape_all(app, vec![d], root).await?;
    shaped
        .pop()
        .ok_or_else(|| LegacyError::internal("a shaped deployment went missing"))
}

/// `GET /deployments`.
pub async fn list_deployments(
    State(app): State<AppState>,
    Caller(principal): Caller,
    pairs: QueryPairs,
    url: RequestUrl,
) -> LegacyResult<Json<Paged<DeploymentResource>>> {
    let actor = principal.actor();
    let me = principal.id_text();
    let request = page_request(&pairs)?;
    let sort = v1_sort(request.sort.as_deref(), SORTABLE)?;
    let mut filters = Vec::new();
    let mut nobody = false;
    if let Some(created_by) = pairs
        .get("createdBy")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        if created_by.eq_ignore_ascii_case("me") {
            filters.push(("created_by".to_string(), me.clone()));
        } else {
            match named_user(&app, created_by).await? {
                Some(id) => filters.push(("created_by".to_string(), id.to_string())),
                None if actor.is_admin => nobody = true,
                None => {
                    return Err(LegacyError::forbidden(format!(
                        "createdBy: only administrators may list other users' deployments ('{created_by}')"
                    )))
                }
            }
        }
    }
    let mut query = v1_query(&request, sort, filters, &LIST, &me)?;
    if let Some(group) = pairs
        .get("userGroup")
        .map(str::trim)
        .filter(|g| !g.is_empty())
    {
        check_group(&actor, group)?;
        query.push(Condition::In {
            column: "d.user_group",
            values: vec![FilterValue::Text(group.to_string())],
        });
    }
    if let Some(statuses) = included_statuses(&pairs)? {
        query.push(Condition::In {
            column: "d.status",
            values: statuses
                .iter()
                .map(|s| FilterValue::Int(s.code()))
                .collect(),
        });
    }
    if nobody {
        query.push(Condition::In {
            column: "d.id",
            values: vec![],
        });
    }
    let (items, total) = service::list(&app, &actor, query).await?;
    let root = Root::of(&url, &app.config);
    let content = shape_all(&app, items, &root).await?;
    Ok(Json(Paged::new(
        content,
        total,
        &request,
        &root.at("/deployments"),
    )))
}

/// `GET /deployments/{id}`.
pub async fn get_deployment(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    url: RequestUrl,
) -> LegacyResult<Json<DeploymentResource>> {
    let id = path_id("deployment", &id)?;
    let d = service::get(&app, &principal.actor(), id).await?;
    Ok(Json(shape(&app, d, &Root::of(&url, &app.config)).await?))
}

/// A template error named after the legacy field.
fn template_error(e: Error) -> LegacyError {
    match e {
        Error::Invalid { detail, .. } | Error::BadRequest(detail) => {
            LegacyError::field("template", detail)
        }
        other => other.into(),
    }
}

/// Stores a template given inline through the templates service, or reuses the
/// template with the same content (checksum). v1 needs a name: the template's
/// `metadata.template_name`, else one made from the checksum.
pub async fn store_template(app: &AppState, actor: &Actor, content: &str) -> LegacyResult<Uuid> {
    if let Some(t) = templates::by_checksum(app, content).await? {
        return Ok(t.id);
    }
    let parsed = templates::parse(app, content)
        .await
        .map_err(template_error)?;
    let name = parsed.template_name().is_none().then(|| {
        let sum = hex::encode(Sha256::digest(content.as_bytes()));
        format!("legacy-{}", &sum[..12])
    });
    match templates::register(app, actor, content.to_string(), name).await {
        Ok(t) => Ok(t.id),
        // Registered by a concurrent request in the meantime.
        Err(Error::Conflict(why)) => match templates::by_checksum(app, content).await? {
            Some(t) => Ok(t.id),
            None => Err(LegacyError::conflict(why)),
        },
        Err(e) => Err(template_error(e)),
    }
}

/// The caller's group when the legacy body gives none (the legacy server allowed
/// none; v1 needs one): the token's first group.
fn default_group(actor: &Actor) -> LegacyResult<String> {
    actor
        .groups
        .first()
        .map(|g| g.trim_start_matches('/').to_string())
        .ok_or_else(|| {
            LegacyError::field(
                "userGroup",
                "is required (your token has no groups to choose from)",
            )
        })
}

/// `POST /deployments` (also with a trailing slash): 201 with the full object.
pub async fn create_deployment(
    State(app): State<AppState>,
    Caller(principal): Caller,
    url: RequestUrl,
    body: Body,
) -> LegacyResult<Response> {
    let actor = principal.actor();
    let template = body
        .text("template")?
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| LegacyError::field("template", "is required"))?;
    let template_inputs = body.object("parameters")?;
    let user_group = match body.text("userGroup")?.map(|g| g.trim().to_string()) {
        // v1 checks the caller's membership.
        Some(g) if !g.is_empty() => g,
        _ => default_group(&actor)?,
    };
    let callback = body.text("callback")?.filter(|c| !c.trim().is_empty());
    let max_providers = body.int("maxProvidersRetry")?;
    let tot_timeout_mins = body.int("timeoutMins")?;
    let per_provider_timeout_mins = body.int("providerTimeoutMins")?;
    let keep_last_attempt = body.boolean("keepLastAttempt")?;
    let template_id = store_template(&app, &actor, &template).await?;
    let d = submit::create(
        &app,
        &actor,
        NewDeployment {
            template_id,
            template_inputs,
            user_group,
            max_providers,
            tot_timeout_mins,
            per_provider_timeout_mins,
            keep_last_attempt,
            callback,
            ..NewDeployment::default()
        },
    )
    .await?;
    let root = Root::of(&url, &app.config);
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&root.deployment(d.id)) {
        headers.insert(header::LOCATION, location);
    }
    let shaped = shape(&app, d, &root).await?;
    Ok((StatusCode::CREATED, headers, Json(shaped)).into_response())
}

/// `removal_list` entries name resources by id (the dashboard's `delnode`), IM by VM
/// id: the template IM receives has each listed resource id replaced by its VM id.
/// Returns the rewritten template and the resources it lists.
pub fn translate_removal_list(template: &str, resources: &[Resource]) -> (String, Vec<Uuid>) {
    let mut text = template.to_string();
    let mut listed = Vec::new();
    for r in resources
        .iter()
        .filter(|r| r.status != ResourceStatus::Deleted)
    {
        let id = r.id.to_string();
        if text.contains(&id) {
            listed.push(r.id);
            if let Some(vm) = &r.im_vm_idx {
                text = text.replace(&id, vm);
            }
        }
    }
    (text, listed)
}

/// The empty 202 the legacy PUT and actions answer (orchent needs `Content-Length: 0`).
pub fn accepted() -> Response {
    (StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response()
}

/// `PUT /deployments/{id}`: merges `parameters`, may change the template; 202.
pub async fn update_deployment(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    body: Body,
) -> LegacyResult<Response> {
    let actor = principal.actor();
    let id = path_id("deployment", &id)?;
    let d = service::get(&app, &actor, id).await?;
    if !UPDATABLE.contains(&d.status) {
        return Err(LegacyError::conflict(format!(
            "deployment '{id}' is {}; it can be updated only in CREATE_COMPLETE, UPDATE_COMPLETE or UPDATE_FAILED",
            d.status
        )));
    }
    let inputs = body.object("parameters")?;
    let mut update = Update {
        inputs,
        only_from: Some(UPDATABLE),
        ..Update::default()
    };
    if let Some(template) = body.text("template")?.filter(|t| !t.trim().is_empty()) {
        let current = templates::get(&app, d.template_id).await?;
        if current.content != template {
            let mut conn = app.store.conn().await?;
            let existing = resources::all_of(&mut conn, id).await?;
            drop(conn);
            let (translated, listed) = translate_removal_list(&template, &existing);
            if translated != current.content {
                update.template_id = Some(store_template(&app, &actor, &translated).await?);
                update.remove = listed;
            }
        }
    }
    submit::update(&app, &actor, id, update).await?;
    Ok(accepted())
}

/// `PATCH /deployments/{id}` with `{"status": "DELETE_FAILED"}`: the reset, only
/// from DELETE_IN_PROGRESS; 204.
pub async fn reset_deployment(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    body: Body,
) -> LegacyResult<StatusCode> {
    let id = path_id("deployment", &id)?;
    let status = body.text("status")?.ok_or_else(|| {
        LegacyError::field(
            "status",
            "is required; the only accepted value is DELETE_FAILED",
        )
    })?;
    if !status.trim().eq_ignore_ascii_case("DELETE_FAILED") {
        return Err(LegacyError::field(
            "status",
            format!("the only accepted value is DELETE_FAILED, got '{status}'"),
        ));
    }
    service::reset_status_from(
        &app,
        &principal.actor(),
        id,
        None,
        &[DeploymentStatus::DeleteInProgress],
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /deployments/{id}[?force=true]`: `force` is v1's `unsecure` (IM forgets
/// what it fails to delete), never v1's `force`; 204. A body is ignored.
pub async fn delete_deployment(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    pairs: QueryPairs,
) -> LegacyResult<StatusCode> {
    let actor = principal.actor();
    let id = path_id("deployment", &id)?;
    let force = match pairs.get("force") {
        None => false,
        Some(raw) => parse_bool(raw).ok_or_else(|| {
            LegacyError::field("force", format!("must be true or false, got '{raw}'"))
        })?,
    };
    let d = service::get(&app, &actor, id).await?;
    if matches!(
        d.status,
        DeploymentStatus::DeleteInProgress | DeploymentStatus::DeleteComplete
    ) {
        return Err(LegacyError::conflict(format!(
            "deployment '{id}' is already {}",
            d.status
        )));
    }
    let options = DeleteOptions {
        unsecure: force,
        owner_may_unsecure: true,
        ..DeleteOptions::default()
    };
    service::delete(&app, &actor, id, options).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A `text/plain;charset=UTF-8` answer.
pub fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain;charset=UTF-8")], body).into_response()
}

/// `GET /deployments/{id}/template`: the current template.
pub async fn get_deployment_template(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> LegacyResult<Response> {
    let id = path_id("deployment", &id)?;
    let d = service::get(&app, &principal.actor(), id).await?;
    Ok(text(templates::get(&app, d.template_id).await?.content))
}

/// `GET /deployments/{id}/log`: IM's contextualisation log, or `""`.
pub async fn get_deployment_log(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> LegacyResult<Response> {
    let id = path_id("deployment", &id)?;
    let logs = service::logs(&app, &principal.actor(), id).await?;
    Ok(text(logs.im_logs.unwrap_or_default()))
}

/// `GET /deployments/{id}/extrainfo`: the VM information of each VM, a JSON array as
/// text.
pub async fn get_deployment_extrainfo(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> LegacyResult<Response> {
    let id = path_id("deployment", &id)?;
    service::get(&app, &principal.actor(), id).await?;
    let mut conn = app.store.conn().await?;
    let all = resources::all_of(&mut conn, id).await?;
    let infos: Vec<serde_json::Value> = all
        .into_iter()
        .filter(|r| r.status != ResourceStatus::Deleted)
        .filter_map(|r| r.metadata?.get("VirtualMachineInfo").cloned())
        .map(|info| match info {
            serde_json::Value::String(s) => {
                serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s))
            }
            other => other,
        })
        .collect();
    Ok(text(serde_json::Value::Array(infos).to_string()))
}
