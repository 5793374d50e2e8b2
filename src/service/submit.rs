//! Submitting work on templates: creating a deployment (validated as a whole, with
//! every problem reported at once, then stored with its resources, its owner and its
//! create job in one transaction), the dry run that validates without storing, and
//! the update-and-redeploy with merged inputs.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::deployments::{locked, log, save};
use super::templates::model;
use super::{Actor, Error, Result, Violation};
use crate::domain::deployment::{
    DEFAULT_PROVIDER_TIMEOUT_MINS, DEFAULT_RETRIES, MAX_TOTAL_TIMEOUT_MINS,
};
use crate::domain::{
    Deployment, DeploymentStatus, Job, JobKind, Resource, ResourceStatus, Task, Timestamp,
};
use crate::messaging::messages;
use crate::state::AppState;
use crate::store::{deployments, jobs, resources, templates};

/// A deployment request (v1 names; orchestrator-python's names are accepted by the
/// HTTP layer as aliases).
#[derive(Debug, Clone, Default)]
pub struct NewDeployment {
    /// The template to deploy.
    pub template_id: Uuid,
    /// Inputs.
    pub template_inputs: Map<String, Value>,
    /// The group the deployment is for.
    pub user_group: String,
    /// 1–10, default 3.
    pub per_provider_max_retries: Option<i64>,
    /// ≥ 1, default no limit.
    pub max_providers: Option<i64>,
    /// 1–14400, default 14400.
    pub tot_timeout_mins: Option<i64>,
    /// ≥ 1 and ≤ the total, default 1440 (capped by the total).
    pub per_provider_timeout_mins: Option<i64>,
    /// Default false.
    pub keep_last_attempt: Option<bool>,
    /// Provider asked for.
    pub target_provider: Option<String>,
    /// Region asked for.
    pub target_region: Option<String>,
    /// Legacy clients' callback URL.
    pub callback: Option<String>,
}

/// What a dry run would do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The deployment that would be stored.
    pub deployment: Deployment,
    /// Its resources.
    pub resources: Vec<Resource>,
    /// The template IM would receive.
    pub rendered_template: String,
    /// Inputs with defaults applied and values normalised.
    pub resolved_inputs: Map<String, Value>,
}

fn violation(loc: &str, msg: impl Into<String>) -> Violation {
    Violation {
        loc: loc.to_string(),
        msg: msg.into(),
    }
}

fn invalid(violations: Vec<Violation>) -> Error {
    let detail = violations
        .iter()
        .map(|v| format!("{}: {}", v.loc.trim_start_matches('/'), v.msg))
        .collect::<Vec<_>>()
        .join("; ");
    Error::Invalid {
        detail: format!("the deployment request is invalid: {detail}"),
        violations,
    }
}

fn input_violations(violations: Vec<tosca::Violation>) -> Vec<Violation> {
    violations
        .into_iter()
        .map(|v| violation(&format!("/template_inputs{}", v.pointer), v.message))
        .collect()
}

/// Validates a request and builds what it would store.
pub async fn plan(app: &AppState, actor: &Actor, request: NewDeployment) -> Result<Plan> {
    let mut problems = Vec::new();
    let retries = request.per_provider_max_retries.unwrap_or(DEFAULT_RETRIES);
    if !(1..=10).contains(&retries) {
        problems.push(violation(
            "/per_provider_max_retries",
            format!("must be between 1 and 10, got {retries}"),
        ));
    }
    if let Some(n) = request.max_providers {
        if n < 1 {
            problems.push(violation(
                "/max_providers",
                format!("must be at least 1, got {n}"),
            ));
        }
    }
    let total = request.tot_timeout_mins.unwrap_or(MAX_TOTAL_TIMEOUT_MINS);
    if !(1..=MAX_TOTAL_TIMEOUT_MINS).contains(&total) {
        problems.push(violation(
            "/tot_timeout_mins",
            format!("must be between 1 and {MAX_TOTAL_TIMEOUT_MINS}, got {total}"),
        ));
    }
    let per_provider = request
        .per_provider_timeout_mins
        .unwrap_or(DEFAULT_PROVIDER_TIMEOUT_MINS.min(total.max(1)));
    if per_provider < 1 {
        problems.push(violation(
            "/per_provider_timeout_mins",
            format!("must be at least 1, got {per_provider}"),
        ));
    } else if per_provider > total {
        problems.push(violation(
            "/per_provider_timeout_mins",
            format!("must not exceed tot_timeout_mins ({total}), got {per_provider}"),
        ));
    }
    let group = request.user_group.trim().to_string();
    if group.is_empty() {
        problems.push(violation("/user_group", "must not be empty"));
    }
    if let Some(callback) = &request.callback {
        if !url::Url::parse(callback).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            problems.push(violation("/callback", "must be an http(s) URL"));
        }
    }
    let mut conn = app.store.conn().await?;
    let template = templates::get(&mut conn, request.template_id).await?;
    drop(conn);
    let template = match template {
        Some(t) => Some(t),
        None => {
            problems.push(violation(
                "/template_id",
                format!("no template has id '{}'", request.template_id),
            ));
            None
        }
    };
    let mut resolved = None;
    let mut model_ref = None;
    if let Some(t) = &template {
        let m = model(app, t).await?;
        match m.validate_inputs(&request.template_inputs) {
            Ok(r) => resolved = Some(r),
            Err(violations) => problems.extend(input_violations(violations)),
        }
        model_ref = Some(m);
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    if !actor.is_admin && !actor.groups.iter().any(|g| g == &group) {
        return Err(Error::Forbidden(format!(
            "you are not a member of user group '{group}'"
        )));
    }
    let (Some(template), Some(model), Some(resolved)) = (template, model_ref, resolved) else {
        return Err(Error::Internal(
            "validation passed without a template".into(),
        ));
    };
    let now = Timestamp::now();
    let id = Uuid::new_v4();
    let deployment = Deployment {
        id,
        template_id: template.id,
        template_inputs: request.template_inputs.clone(),
        template_outputs: Map::new(),
        user_group: group,
        per_provider_max_retries: retries,
        max_providers: request.max_providers,
        tot_timeout_mins: total,
        per_provider_timeout_mins: per_provider,
        keep_last_attempt: request.keep_last_attempt.unwrap_or(false),
        target_provider: request
            .target_provider
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        target_region: request
            .target_region
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        target_iaas_project: None,
        im_infra_id: None,
        status: DeploymentStatus::CreateInProgress,
        status_reason: None,
        task: Task::Submitted,
        callback: request.callback,
        version: 1,
        created_at: now,
        created_by: actor.user_id,
        updated_at: now,
        updated_by: actor.user_id,
        owned_by: vec![actor.user_id],
    };
    let resources = model
        .node_instances(&resolved)
        .into_iter()
        .map(|instance| Resource {
            id: Uuid::new_v4(),
            deployment_id: id,
            tosca_node_name: instance.node_name,
            tosca_node_type: instance.node_type,
            instance_index: i64::from(instance.index),
            im_vm_idx: None,
            status: ResourceStatus::Initial,
            status_reason: None,
            metadata: None,
            required_by: instance.required_by,
            created_at: now,
            created_by: actor.user_id,
            updated_at: now,
            updated_by: actor.user_id,
        })
        .collect();
    Ok(Plan {
        rendered_template: model.render(&resolved),
        resolved_inputs: resolved.0,
        deployment,
        resources,
    })
}

/// Creates a deployment: row, owner, resources, create job and log line in one
/// transaction; the engine takes it from there.
pub async fn create(app: &AppState, actor: &Actor, request: NewDeployment) -> Result<Deployment> {
    let plan = plan(app, actor, request).await?;
    let d = plan.deployment;
    let mut tx = app.store.begin().await?;
    deployments::insert(&mut tx, &d).await?;
    for r in &plan.resources {
        resources::insert(&mut tx, r).await?;
    }
    jobs::enqueue(
        &mut tx,
        &Job::new(d.id, JobKind::Create, json!({"by": actor.user_id})),
    )
    .await?;
    messages::push_created(&mut tx, &app.config.kafka, &d, &actor.token).await?;
    log(
        &mut tx,
        d.id,
        &format!(
            "deployment submitted by {} for group '{}'",
            actor.describe(),
            d.user_group
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(d)
}

/// Update-and-redeploy: the given inputs are merged over the stored ones and
/// validated; refused (409) while an operation runs or after deletion.
pub async fn redeploy(
    app: &AppState,
    actor: &Actor,
    id: Uuid,
    inputs: Map<String, Value>,
    expected: Option<i64>,
) -> Result<Deployment> {
    let d = super::deployments::get(app, actor, id).await?;
    let mut conn = app.store.conn().await?;
    let template = templates::get(&mut conn, d.template_id)
        .await?
        .ok_or_else(|| Error::Internal(format!("template of deployment {id} is missing")))?;
    drop(conn);
    let m = model(app, &template).await?;
    let mut merged = d.template_inputs.clone();
    merged.extend(inputs);
    m.validate_inputs(&merged)
        .map_err(|v| invalid(input_violations(v)))?;

    let mut tx = app.store.begin().await?;
    let mut d = locked(&mut tx, actor, id, expected).await?;
    if !d.status.allows_redeploy() {
        return Err(Error::Conflict(format!(
            "deployment '{id}' is {}; an update can start only when no operation is running and it is not deleted",
            d.status
        )));
    }
    let previous = d.status;
    d.template_inputs = merged;
    d.status = DeploymentStatus::UpdateInProgress;
    d.status_reason = None;
    d.task = Task::InfrastructureUpdate;
    d.updated_at = Timestamp::now();
    d.updated_by = actor.user_id;
    let saved = save(&mut tx, &d).await?;
    jobs::enqueue(
        &mut tx,
        &Job::new(
            id,
            JobKind::Update,
            json!({"by": actor.user_id, "previous_status": previous.code()}),
        ),
    )
    .await?;
    let change = messages::Change::Inputs { previous };
    messages::push_updated(
        &mut tx,
        &app.config.kafka,
        &saved,
        change,
        actor.user_id,
        &actor.token,
    )
    .await?;
    log(
        &mut tx,
        id,
        &format!("update with new inputs requested by {}", actor.describe()),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

/// The node types of a deployment's resources that are `ancestor` or derive from it
/// (the resources `type` filter).
pub async fn types_derived_from(
    app: &AppState,
    template_id: Uuid,
    ancestor: &str,
    candidates: &[String],
) -> Result<Vec<String>> {
    let m = super::templates::model_by_id(app, template_id).await?;
    Ok(candidates
        .iter()
        .filter(|t| m.is_derived_from(t, ancestor))
        .cloned()
        .collect())
}
