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
    // Kept before the job exists: the engine may need it at once.
    crate::engine::tokens::remember(app, actor).await;
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
    update(
        app,
        actor,
        id,
        Update {
            inputs,
            expected,
            ..Update::default()
        },
    )
    .await
}

/// An update-and-redeploy. The v1 API changes inputs only; the legacy API may also
/// re-point the deployment at another template and restrict the starting statuses.
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// Inputs merged over the stored ones.
    pub inputs: Map<String, Value>,
    /// `If-Match` version.
    pub expected: Option<i64>,
    /// Another template to deploy from now on (the legacy PUT may change it).
    pub template_id: Option<Uuid>,
    /// Resources to remove (the template's `removal_list`, as resource ids).
    pub remove: Vec<Uuid>,
    /// When set, the only statuses the update may start from (the legacy API's rule).
    pub only_from: Option<&'static [DeploymentStatus]>,
}

/// Update-and-redeploy, with an optional change of template: the merged inputs are
/// validated against the template deployed from now on, and when the template
/// changes the resources follow it in the same transaction (nodes gone or listed in
/// `remove` and instances beyond the new count become DELETING, or DELETED when no
/// VM backs them; new nodes and instances are added), so that the update job binds
/// IM's VMs to them.
pub async fn update(
    app: &AppState,
    actor: &Actor,
    id: Uuid,
    request: Update,
) -> Result<Deployment> {
    let d = super::deployments::get(app, actor, id).await?;
    let template_id = request.template_id.unwrap_or(d.template_id);
    let mut conn = app.store.conn().await?;
    let template = templates::get(&mut conn, template_id)
        .await?
        .ok_or_else(|| Error::Internal(format!("template {template_id} is missing")))?;
    drop(conn);
    let m = model(app, &template).await?;
    let mut merged = d.template_inputs.clone();
    merged.extend(request.inputs);
    let resolved = m
        .validate_inputs(&merged)
        .map_err(|v| invalid(input_violations(v)))?;

    let (base_inputs, base_template) = (d.template_inputs, d.template_id);
    crate::engine::tokens::remember(app, actor).await;
    let mut tx = app.store.begin().await?;
    let mut d = locked(&mut tx, actor, id, request.expected).await?;
    // The merge and validation above started from what was read before the lock:
    // another update that landed in between would otherwise be silently undone.
    if d.template_inputs != base_inputs || d.template_id != base_template {
        return Err(Error::Conflict(format!(
            "deployment '{id}' was updated while this update was being prepared; read it again and retry"
        )));
    }
    let allowed = match request.only_from {
        Some(statuses) => statuses.contains(&d.status),
        None => d.status.allows_redeploy(),
    };
    if !allowed {
        return Err(Error::Conflict(format!(
            "deployment '{id}' is {}; an update can start only when no operation is running and it is not deleted",
            d.status
        )));
    }
    let previous = d.status;
    let retemplated = template_id != d.template_id;
    if retemplated {
        let now = Timestamp::now();
        let existing = resources::all_of(&mut tx, id).await?;
        let (changed, added) = follow_template(
            &existing,
            &m.node_instances(&resolved),
            &request.remove,
            now,
            actor.user_id,
            id,
        );
        for r in &changed {
            resources::update(&mut tx, r).await?;
        }
        for r in &added {
            resources::insert(&mut tx, r).await?;
        }
        d.template_id = template_id;
    }
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
    let what = if retemplated {
        format!("a new template ({template_id}) and inputs")
    } else {
        "new inputs".to_string()
    };
    log(
        &mut tx,
        id,
        &format!("update with {what} requested by {}", actor.describe()),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

/// The resource changes that make a deployment's resources follow a new template:
/// `(changed, added)`.
fn follow_template(
    existing: &[Resource],
    wanted: &[tosca::instances::NodeInstance],
    remove: &[Uuid],
    now: Timestamp,
    by: Uuid,
    deployment: Uuid,
) -> (Vec<Resource>, Vec<Resource>) {
    use std::collections::BTreeMap;
    let mut changed = Vec::new();
    let mut added = Vec::new();
    let mut wanted_by_node: BTreeMap<&str, Vec<&tosca::instances::NodeInstance>> = BTreeMap::new();
    for w in wanted {
        wanted_by_node
            .entry(w.node_name.as_str())
            .or_default()
            .push(w);
    }
    let mut live_by_node: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    for r in existing
        .iter()
        .filter(|r| r.status != ResourceStatus::Deleted)
    {
        live_by_node
            .entry(r.tosca_node_name.as_str())
            .or_default()
            .push(r);
    }
    let retire = |r: &Resource, why: &str| {
        let mut r = r.clone();
        // A resource without a VM has nothing to wait for.
        r.status = if r.im_vm_idx.is_some() {
            ResourceStatus::Deleting
        } else {
            ResourceStatus::Deleted
        };
        r.status_reason = Some(why.to_string());
        r.updated_at = now;
        r.updated_by = by;
        r
    };
    for (node, mut live) in live_by_node {
        live.sort_by_key(|r| r.instance_index);
        let Some(instances) = wanted_by_node.get(node) else {
            changed.extend(
                live.iter()
                    .map(|r| retire(r, "its node is no longer in the template")),
            );
            continue;
        };
        if instances[0].node_type != live[0].tosca_node_type {
            changed.extend(
                live.iter()
                    .map(|r| retire(r, "its node changed type in the template")),
            );
            continue;
        }
        let (removed, mut kept): (Vec<&Resource>, Vec<&Resource>) =
            live.into_iter().partition(|r| remove.contains(&r.id));
        changed.extend(
            removed
                .iter()
                .map(|r| retire(r, "listed in the template's removal_list")),
        );
        while kept.len() > instances.len() {
            if let Some(r) = kept.pop() {
                changed.push(retire(r, "the node's count went down"));
            }
        }
        let first = existing
            .iter()
            .filter(|r| r.tosca_node_name == node)
            .map(|r| r.instance_index + 1)
            .max()
            .unwrap_or(0);
        for (index, instance) in (first..).zip(instances.iter().skip(kept.len())) {
            added.push(new_resource(deployment, instance, index, now, by));
        }
    }
    let known: Vec<&str> = existing
        .iter()
        .filter(|r| r.status != ResourceStatus::Deleted)
        .map(|r| r.tosca_node_name.as_str())
        .collect();
    for (node, instances) in &wanted_by_node {
        if !known.contains(node) {
            // Indexes continue after the node's deleted resources, if it had any.
            let first = existing
                .iter()
                .filter(|r| r.tosca_node_name == *node)
                .map(|r| r.instance_index + 1)
                .max()
                .unwrap_or(0);
            for (i, instance) in (first..).zip(instances.iter()) {
                added.push(new_resource(deployment, instance, i, now, by));
            }
        }
    }
    (changed, added)
}

fn new_resource(
    deployment: Uuid,
    instance: &tosca::instances::NodeInstance,
    index: i64,
    now: Timestamp,
    by: Uuid,
) -> Resource {
    Resource {
        id: Uuid::new_v4(),
        deployment_id: deployment,
        tosca_node_name: instance.node_name.clone(),
        tosca_node_type: instance.node_type.clone(),
        instance_index: index,
        im_vm_idx: None,
        status: ResourceStatus::Initial,
        status_reason: None,
        metadata: None,
        required_by: instance.required_by.clone(),
        created_at: now,
        created_by: by,
        updated_at: now,
        updated_by: by,
    }
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
