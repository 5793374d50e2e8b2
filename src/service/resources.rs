//! Resource operations: reading, start/stop/reboot of compute nodes (a job drives IM),
//! and the manual reset to ERROR.

use serde_json::json;
use uuid::Uuid;

use super::deployments::{get as get_deployment, locked, log};
use super::templates::model_by_id;
use super::{Actor, Error, Result};
use crate::domain::list::{Condition, ListQuery, Value as FilterValue};
use crate::domain::{
    Deployment, DeploymentStatus, Job, JobKind, Resource, ResourceStatus, Timestamp,
};
use crate::messaging::messages;
use crate::state::AppState;
use crate::store::{jobs, resources};

/// Entity name in messages.
pub const ENTITY: &str = "resource";

/// A VM action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start a stopped VM.
    Start,
    /// Stop a VM.
    Stop,
    /// Reboot a running VM.
    Reboot,
}

impl Action {
    /// The action's name (also IM's).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Reboot => "reboot",
        }
    }

    /// From its name.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "start" => Some(Self::Start),
            "stop" => Some(Self::Stop),
            "reboot" | "restart" => Some(Self::Reboot),
            _ => None,
        }
    }
}

/// Lists a visible deployment's resources.
pub async fn list(
    app: &AppState,
    actor: &Actor,
    deployment: Uuid,
    query: &ListQuery,
) -> Result<(Deployment, Vec<Resource>, u64)> {
    let d = get_deployment(app, actor, deployment).await?;
    let mut conn = app.store.conn().await?;
    let (items, total) = resources::list(&mut conn, deployment, query).await?;
    Ok((d, items, total))
}

/// The list condition of the `type` filter: resources whose node type is `wanted`
/// or derived from it, by the deployment's template.
pub async fn type_condition(
    app: &AppState,
    actor: &Actor,
    deployment: Uuid,
    wanted: &str,
) -> Result<Condition> {
    let d = get_deployment(app, actor, deployment).await?;
    let mut conn = app.store.conn().await?;
    let mut types: Vec<String> = resources::all_of(&mut conn, deployment)
        .await?
        .into_iter()
        .map(|r| r.tosca_node_type)
        .collect();
    drop(conn);
    types.sort();
    types.dedup();
    let matching = super::submit::types_derived_from(app, d.template_id, wanted, &types).await?;
    Ok(Condition::In {
        column: "r.tosca_node_type",
        values: matching.into_iter().map(FilterValue::Text).collect(),
    })
}

/// A resource of a visible deployment.
pub async fn get(
    app: &AppState,
    actor: &Actor,
    deployment: Uuid,
    id: Uuid,
) -> Result<(Deployment, Resource)> {
    let d = get_deployment(app, actor, deployment).await?;
    let mut conn = app.store.conn().await?;
    let r = resources::get(&mut conn, deployment, id)
        .await?
        .ok_or_else(|| Error::not_found(ENTITY, id))?;
    Ok((d, r))
}

/// Starts, stops or reboots a compute resource (202 with a job), or 409 when its
/// state or kind does not allow it: only nodes derived from `tosca.nodes.Compute`
/// that IM created a VM for (DESIGN.md §3).
pub async fn act(
    app: &AppState,
    actor: &Actor,
    deployment: Uuid,
    id: Uuid,
    action: Action,
    expected: Option<i64>,
) -> Result<Resource> {
    // The template model is read before the transaction: parsing may fetch imports.
    let template_id = get_deployment(app, actor, deployment).await?.template_id;
    let model = model_by_id(app, template_id).await?;
    crate::engine::tokens::remember(app, actor).await;
    let mut tx = app.store.begin().await?;
    let d = locked(&mut tx, actor, deployment, expected).await?;
    let mut r = resources::get(&mut tx, deployment, id)
        .await?
        .ok_or_else(|| Error::not_found(ENTITY, id))?;
    let vm = r
        .im_vm_idx
        .clone()
        .filter(|_| model.is_compute_node(&r.tosca_node_name));
    let Some(vm) = vm else {
        return Err(Error::Conflict(format!(
            "resource '{id}' ({}) is not a virtual machine created by IM; only compute nodes can be started, stopped or rebooted",
            r.tosca_node_name
        )));
    };
    if matches!(
        d.status,
        DeploymentStatus::DeleteInProgress | DeploymentStatus::DeleteComplete
    ) {
        return Err(Error::Conflict(format!(
            "deployment '{deployment}' is {}",
            d.status
        )));
    }
    let allowed = match action {
        Action::Start | Action::Stop => r.status.allows_start_or_stop(),
        Action::Reboot => r.status.allows_reboot(),
    };
    if !allowed {
        let from = match action {
            Action::Reboot => "STARTED",
            _ => "CONFIGURED, STOPPED or STARTED",
        };
        return Err(Error::Conflict(format!(
            "resource '{id}' is {}; {} is allowed only from {from}",
            r.status,
            action.as_str()
        )));
    }
    r.status = match action {
        Action::Stop => ResourceStatus::Stopping,
        Action::Start | Action::Reboot => ResourceStatus::Starting,
    };
    r.status_reason = None;
    r.updated_at = Timestamp::now();
    r.updated_by = actor.user_id;
    resources::update(&mut tx, &r).await?;
    jobs::enqueue(
        &mut tx,
        &Job::new(
            deployment,
            JobKind::ResourceAction,
            json!({"resource": id, "vm": vm, "action": action.as_str(), "by": actor.user_id}),
        ),
    )
    .await?;
    let (kafka, by) = (&app.config.kafka, actor.user_id);
    messages::push_action(&mut tx, kafka, &d, &r, action.as_str(), by, &actor.token).await?;
    log(
        &mut tx,
        deployment,
        &format!(
            "{} of {} (VM {vm}) requested by {}",
            action.as_str(),
            r.tosca_node_name,
            actor.describe()
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(r)
}

/// Forces a resource to ERROR (an operator's repair); `expected` is the deployment
/// version of an `If-Match`.
pub async fn reset_status(
    app: &AppState,
    actor: &Actor,
    deployment: Uuid,
    id: Uuid,
    expected: Option<i64>,
) -> Result<Resource> {
    let mut tx = app.store.begin().await?;
    locked(&mut tx, actor, deployment, expected).await?;
    let mut r = resources::get(&mut tx, deployment, id)
        .await?
        .ok_or_else(|| Error::not_found(ENTITY, id))?;
    let previous = r.status;
    r.status = ResourceStatus::Error;
    r.status_reason = Some(format!(
        "status reset from {previous} by {}",
        actor.describe()
    ));
    r.updated_at = Timestamp::now();
    r.updated_by = actor.user_id;
    resources::update(&mut tx, &r).await?;
    log(
        &mut tx,
        deployment,
        &format!(
            "resource {} reset from {previous} to ERROR by {}",
            r.tosca_node_name,
            actor.describe()
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(r)
}
