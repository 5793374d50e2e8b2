//! Deployment operations: visibility, listing, deletion (cancelling running work
//! first), reset, the admin group rename, owners, logs and attempts. Creation and
//! redeploy, which need the template, are in [`super::submit`].

use serde_json::json;
use uuid::Uuid;

use super::{Actor, Error, Result};
use crate::config::{EngineMode, KafkaConfig};
use crate::domain::list::{Condition, ListQuery, Value};
use crate::domain::{
    Attempt, Deployment, DeploymentStatus, Job, JobKind, LogLine, ResourceStatus, Task, Timestamp,
};
use crate::messaging::messages;
use crate::state::AppState;
use crate::store::{attempts, deployments, jobs, logs, resources, users, Conn, Tx};

/// The entity name in messages.
pub const ENTITY: &str = "deployment";

/// Whether the actor may see (and act on) the deployment.
pub fn can_see(actor: &Actor, d: &Deployment) -> bool {
    actor.is_admin || d.owned_by.contains(&actor.user_id)
}

/// A deployment the actor may see; 404 otherwise (its existence is not revealed).
pub async fn get(app: &AppState, actor: &Actor, id: Uuid) -> Result<Deployment> {
    let mut conn = app.store.conn().await?;
    visible(&mut conn, actor, id).await
}

async fn visible(conn: &mut Conn, actor: &Actor, id: Uuid) -> Result<Deployment> {
    match deployments::get(conn, id).await? {
        Some(d) if can_see(actor, &d) => Ok(d),
        _ => Err(Error::not_found(ENTITY, id)),
    }
}

/// Locks and reads a visible deployment inside a write transaction, checking the
/// client's `If-Match` version.
pub(crate) async fn locked(
    tx: &mut Tx,
    actor: &Actor,
    id: Uuid,
    expected: Option<i64>,
) -> Result<Deployment> {
    let d = match deployments::get_for_update(tx, id).await? {
        Some(d) if can_see(actor, &d) => d,
        _ => return Err(Error::not_found(ENTITY, id)),
    };
    if let Some(version) = expected {
        if version != d.version {
            return Err(Error::PreconditionFailed(format!(
                "deployment '{id}' has changed (version {}, If-Match asked for {version}); read it again",
                d.version
            )));
        }
    }
    Ok(d)
}

/// Writes the deployment back; a concurrent change in between is a conflict.
pub(crate) async fn save(tx: &mut Tx, d: &Deployment) -> Result<Deployment> {
    if !deployments::update(tx, d).await? {
        return Err(Error::Conflict(format!(
            "deployment '{}' was changed by another request at the same time; read it again and retry",
            d.id
        )));
    }
    let mut saved = d.clone();
    saved.version += 1;
    Ok(saved)
}

/// Lists the deployments the actor may see. Non-admins see what they own and may not
/// filter on other users (403).
pub async fn list(
    app: &AppState,
    actor: &Actor,
    mut query: ListQuery,
) -> Result<(Vec<Deployment>, u64)> {
    if !actor.is_admin {
        let me = Value::Text(actor.user_id.to_string());
        for field in ["owned_by", "created_by", "updated_by"] {
            if query.values_of(field).iter().any(|v| **v != me) {
                return Err(Error::Forbidden(format!(
                    "only administrators may list other users' deployments (filter '{field}')"
                )));
            }
        }
        if query.values_of("owned_by").is_empty() {
            let owned_by = deployments::LIST
                .fields
                .iter()
                .find(|f| f.name == "owned_by")
                .ok_or_else(|| Error::Internal("owned_by field missing".into()))?;
            query.push(Condition::AnyOf {
                field: owned_by,
                values: vec![me],
            });
        }
    }
    let mut conn = app.store.conn().await?;
    Ok(deployments::list(&mut conn, &query).await?)
}

/// Appends an orchestrator log line in the caller's transaction.
pub(crate) async fn log(conn: &mut Conn, deployment: Uuid, message: &str) -> Result<()> {
    logs::append(conn, deployment, "api", message).await?;
    Ok(())
}

/// Options of a delete.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteOptions {
    /// Admin: also remove the rows from the database.
    pub force: bool,
    /// Admin: tell IM to forget resources it fails to delete.
    pub unsecure: bool,
    /// `If-Match` version.
    pub expected_version: Option<i64>,
    /// The legacy API's `force`: `unsecure` asked for by an owner, which the legacy
    /// orchestrator allowed (docs/legacy.md).
    pub owner_may_unsecure: bool,
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteOutcome {
    /// Cloud resources are being released (202).
    Started(Box<Deployment>),
    /// Nothing to release: the deployment is DELETE_COMPLETE (204).
    Completed,
    /// The rows were removed (`force`, 204).
    Removed,
}

/// Deletes a deployment: a running create or update is cancelled first, never a
/// dead end (DESIGN.md §3).
pub async fn delete(
    app: &AppState,
    actor: &Actor,
    id: Uuid,
    options: DeleteOptions,
) -> Result<DeleteOutcome> {
    if (options.force || (options.unsecure && !options.owner_may_unsecure)) && !actor.is_admin {
        return Err(Error::Forbidden(
            "only administrators may use 'force' or 'unsecure'".into(),
        ));
    }
    crate::engine::tokens::remember(app, actor).await;
    let mut tx = app.store.begin().await?;
    let mut d = locked(&mut tx, actor, id, options.expected_version).await?;
    if !options.force {
        if d.status == DeploymentStatus::DeleteComplete {
            return Ok(DeleteOutcome::Completed);
        }
        let deleting = jobs::active_of(&mut tx, id)
            .await?
            .iter()
            .any(|j| j.kind == JobKind::Delete);
        if d.status == DeploymentStatus::DeleteInProgress && deleting {
            return Ok(DeleteOutcome::Started(Box::new(d)));
        }
    }
    let cancelled = jobs::cancel_active(
        &mut tx,
        id,
        &format!("cancelled: deletion requested by {}", actor.describe()),
    )
    .await?;
    let flags = (options.force, options.unsecure);
    if options.force {
        let orphans = infrastructures(&mut tx, &d).await?;
        messages::push_deleted(
            &mut tx,
            &app.config.kafka,
            &d,
            flags,
            actor.user_id,
            &actor.token,
        )
        .await?;
        deployments::delete(&mut tx, id).await?;
        log(
            &mut tx,
            id,
            &format!(
                "deployment removed from the database (force) by {}{}",
                actor.describe(),
                if orphans.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; IM infrastructures left to clean up: {}",
                        orphans.join(", ")
                    )
                }
            ),
        )
        .await?;
        tx.commit().await?;
        if !orphans.is_empty() {
            tracing::warn!(deployment.id = %id, im.infra_ids = ?orphans, "deployment force-removed with IM infrastructures left behind");
        }
        return Ok(DeleteOutcome::Removed);
    }
    let work_in_flight = had_leased_step(&mut tx, id).await?;
    let now = Timestamp::now();
    d.updated_at = now;
    d.updated_by = actor.user_id;
    // An external engine alone knows what it has created: it must hear of the delete.
    // (ENGINE=external without Kafka only turns the engine off: nobody would hear.)
    let external = app.config.engine.mode == EngineMode::External && app.config.kafka.enabled;
    if infrastructures(&mut tx, &d).await?.is_empty() && !work_in_flight && !external {
        d.status = DeploymentStatus::DeleteComplete;
        d.status_reason = None;
        d.task = Task::None;
        save(&mut tx, &d).await?;
        resources::set_status_of_all(&mut tx, id, ResourceStatus::Deleted, actor.user_id).await?;
        log(
            &mut tx,
            id,
            &format!(
                "deleted by {} (no cloud resources to release)",
                actor.describe()
            ),
        )
        .await?;
        tx.commit().await?;
        return Ok(DeleteOutcome::Completed);
    }
    d.status = DeploymentStatus::DeleteInProgress;
    d.status_reason = None;
    d.task = Task::InfrastructureDeletion;
    let saved = save(&mut tx, &d).await?;
    jobs::enqueue(
        &mut tx,
        &Job::new(
            id,
            JobKind::Delete,
            json!({"unsecure": options.unsecure, "by": actor.user_id}),
        ),
    )
    .await?;
    messages::push_deleted(
        &mut tx,
        &app.config.kafka,
        &saved,
        flags,
        actor.user_id,
        &actor.token,
    )
    .await?;
    log(
        &mut tx,
        id,
        &format!(
            "deletion requested by {}{}{}",
            actor.describe(),
            if options.unsecure { " (unsecure)" } else { "" },
            if cancelled > 0 {
                "; running work cancelled"
            } else {
                ""
            }
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(DeleteOutcome::Started(Box::new(saved)))
}

/// A cancelled job whose step is still running holds its lease: the delete must wait
/// for it (it may be creating an infrastructure right now).
async fn had_leased_step(conn: &mut Conn, id: Uuid) -> Result<bool> {
    Ok(jobs::all_of(conn, id)
        .await?
        .iter()
        .any(|j| j.lease_until.is_some_and(|until| until >= Timestamp::now())))
}

/// IM infrastructures of a deployment that may still exist.
async fn infrastructures(conn: &mut Conn, d: &Deployment) -> Result<Vec<String>> {
    let mut ids: Vec<String> = d.im_infra_id.iter().cloned().collect();
    for a in attempts::of_deployment(conn, d.id).await? {
        if let Some(inf) = a.im_infra_id {
            if !a.destroyed && !ids.contains(&inf) {
                ids.push(inf);
            }
        }
    }
    Ok(ids)
}

/// Turns X_IN_PROGRESS into X_FAILED and cancels the running job; 409 otherwise.
pub async fn reset_status(
    app: &AppState,
    actor: &Actor,
    id: Uuid,
    expected: Option<i64>,
) -> Result<Deployment> {
    reset_status_from(app, actor, id, expected, DeploymentStatus::ALL).await
}

/// [`reset_status`] accepted only from the statuses in `from` (the legacy API resets
/// DELETE_IN_PROGRESS alone); 409 otherwise.
pub async fn reset_status_from(
    app: &AppState,
    actor: &Actor,
    id: Uuid,
    expected: Option<i64>,
    from: &[DeploymentStatus],
) -> Result<Deployment> {
    let mut tx = app.store.begin().await?;
    let mut d = locked(&mut tx, actor, id, expected).await?;
    let failed = d
        .status
        .failed_counterpart()
        .filter(|_| from.contains(&d.status));
    let Some(failed) = failed else {
        let allowed: Vec<&str> = from
            .iter()
            .filter(|s| s.is_in_progress())
            .map(|s| s.name())
            .collect();
        return Err(Error::Conflict(format!(
            "deployment '{id}' is {}; only a deployment in {} can be reset",
            d.status,
            allowed.join(", ")
        )));
    };
    let previous = d.status;
    jobs::cancel_active(
        &mut tx,
        id,
        &format!("cancelled: status reset by {}", actor.describe()),
    )
    .await?;
    d.status = failed;
    d.status_reason = Some(format!(
        "status reset from {previous} by {}",
        actor.describe()
    ));
    d.task = Task::None;
    d.updated_at = Timestamp::now();
    d.updated_by = actor.user_id;
    let saved = save(&mut tx, &d).await?;
    log(
        &mut tx,
        id,
        &format!(
            "status reset from {previous} to {failed} by {}",
            actor.describe()
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

/// The admin-only rename of the user group (an IAM group was renamed).
pub async fn rename_group(
    app: &AppState,
    actor: &Actor,
    id: Uuid,
    group: &str,
    expected: Option<i64>,
) -> Result<Deployment> {
    if !actor.is_admin {
        return Err(Error::Forbidden(
            "only administrators may change a deployment's user_group".into(),
        ));
    }
    let group = group.trim();
    if group.is_empty() || group.len() > 255 {
        return Err(Error::invalid(
            "/user_group",
            "must be a non-empty group name of at most 255 characters",
        ));
    }
    let mut tx = app.store.begin().await?;
    let mut d = locked(&mut tx, actor, id, expected).await?;
    let old = std::mem::replace(&mut d.user_group, group.to_string());
    d.updated_at = Timestamp::now();
    d.updated_by = actor.user_id;
    let saved = save(&mut tx, &d).await?;
    log(
        &mut tx,
        id,
        &format!(
            "user_group renamed from '{old}' to '{group}' by {}",
            actor.describe()
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

/// What an ownership change did.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnerOutcome {
    /// Nothing to do (already an owner / not an owner).
    Unchanged,
    /// Recorded; no VM to update.
    Changed,
    /// Recorded, and a job pushes the keys to the VMs (202).
    Pushing,
}

fn may_share(actor: &Actor, d: &Deployment) -> Result<()> {
    if actor.is_admin || d.owned_by.contains(&actor.user_id) {
        Ok(())
    } else {
        Err(Error::not_found(ENTITY, d.id))
    }
}

async fn owner_job(
    tx: &mut Tx,
    kafka: &KafkaConfig,
    actor: &Actor,
    d: &mut Deployment,
    user: Uuid,
    add: bool,
) -> Result<OwnerOutcome> {
    let vms_to_update = d.im_infra_id.is_some()
        && matches!(
            d.status,
            DeploymentStatus::CreateComplete | DeploymentStatus::UpdateComplete
        );
    if !vms_to_update {
        d.updated_at = Timestamp::now();
        d.updated_by = actor.user_id;
        save(tx, d).await?;
        return Ok(OwnerOutcome::Changed);
    }
    let previous = d.status;
    d.status = DeploymentStatus::UpdateInProgress;
    d.task = Task::InfrastructureUpdate;
    d.updated_at = Timestamp::now();
    d.updated_by = actor.user_id;
    save(tx, d).await?;
    jobs::enqueue(
        tx,
        &Job::new(
            d.id,
            JobKind::OwnerChange,
            json!({"user": user, "add": add, "restore_status": previous.code()}),
        ),
    )
    .await?;
    if add {
        d.owned_by.push(user);
    } else {
        d.owned_by.retain(|o| *o != user);
    }
    let change = messages::Change::Owner {
        user,
        added: add,
        previous,
    };
    messages::push_updated(tx, kafka, d, change, actor.user_id, &actor.token).await?;
    Ok(OwnerOutcome::Pushing)
}

/// Adds an owner (idempotent; 404 for an unknown user).
pub async fn add_owner(
    app: &AppState,
    actor: &Actor,
    id: Uuid,
    user: Uuid,
    expected: Option<i64>,
) -> Result<OwnerOutcome> {
    let mut tx = app.store.begin().await?;
    let mut d = locked(&mut tx, actor, id, expected).await?;
    may_share(actor, &d)?;
    if users::get(&mut tx, user).await?.is_none() {
        return Err(Error::not_found("user", user));
    }
    if d.owned_by.contains(&user) {
        return Ok(OwnerOutcome::Unchanged);
    }
    if d.status.is_in_progress() {
        return Err(Error::Conflict(format!(
            "deployment '{id}' is {}; change its owners when it is over",
            d.status
        )));
    }
    deployments::add_owner(&mut tx, id, user).await?;
    let outcome = owner_job(&mut tx, &app.config.kafka, actor, &mut d, user, true).await?;
    log(
        &mut tx,
        id,
        &format!("owner {user} added by {}", actor.describe()),
    )
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Removes an owner; the last one cannot be removed (409), a user who does not
/// exist is a 404, and one who exists but is not an owner is left alone (spec).
pub async fn remove_owner(
    app: &AppState,
    actor: &Actor,
    id: Uuid,
    user: Uuid,
    expected: Option<i64>,
) -> Result<OwnerOutcome> {
    let mut tx = app.store.begin().await?;
    let mut d = locked(&mut tx, actor, id, expected).await?;
    may_share(actor, &d)?;
    if !d.owned_by.contains(&user) {
        if users::get(&mut tx, user).await?.is_none() {
            return Err(Error::not_found("user", user));
        }
        return Ok(OwnerOutcome::Unchanged);
    }
    if d.owned_by.len() == 1 {
        return Err(Error::Conflict(format!(
            "user '{user}' is the last owner of deployment '{id}' and cannot be removed"
        )));
    }
    if d.status.is_in_progress() {
        return Err(Error::Conflict(format!(
            "deployment '{id}' is {}; change its owners when it is over",
            d.status
        )));
    }
    deployments::remove_owner(&mut tx, id, user).await?;
    let outcome = owner_job(&mut tx, &app.config.kafka, actor, &mut d, user, false).await?;
    log(
        &mut tx,
        id,
        &format!("owner {user} removed by {}", actor.describe()),
    )
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

/// A deployment's logs.
#[derive(Debug, Clone)]
pub struct Logs {
    /// IM's contextualisation log.
    pub im_logs: Option<String>,
    /// The orchestrator's lines.
    pub lines: Vec<LogLine>,
}

impl Logs {
    /// The orchestrator's lines as one text, a line each.
    pub fn orchestrator_text(&self) -> Option<String> {
        if self.lines.is_empty() {
            return None;
        }
        Some(
            self.lines
                .iter()
                .map(|l| format!("{} [{}] {}\n", l.created_at, l.source, l.message))
                .collect(),
        )
    }
}

/// Reads the logs of a visible deployment. Orchestrator lines outlive their
/// deployment (a `force` delete removes the row, not the lines): administrators still
/// read them; its former owners, who can no longer see the deployment, do not.
pub async fn logs(app: &AppState, actor: &Actor, id: Uuid) -> Result<Logs> {
    let mut conn = app.store.conn().await?;
    match deployments::get(&mut conn, id).await? {
        Some(d) if can_see(actor, &d) => Ok(Logs {
            im_logs: deployments::im_logs(&mut conn, id).await?,
            lines: logs::lines(&mut conn, id).await?,
        }),
        None if actor.is_admin => {
            let lines = logs::lines(&mut conn, id).await?;
            if lines.is_empty() {
                return Err(Error::not_found(ENTITY, id));
            }
            Ok(Logs {
                im_logs: None,
                lines,
            })
        }
        _ => Err(Error::not_found(ENTITY, id)),
    }
}

/// Clears the logs of a deployment (administrators).
pub async fn clear_logs(app: &AppState, actor: &Actor, id: Uuid) -> Result<()> {
    if !actor.is_admin {
        return Err(Error::Forbidden(
            "only administrators may delete deployment logs".into(),
        ));
    }
    let mut tx = app.store.begin().await?;
    if deployments::get(&mut tx, id).await?.is_none() && logs::lines(&mut tx, id).await?.is_empty()
    {
        return Err(Error::not_found(ENTITY, id));
    }
    logs::clear(&mut tx, id).await?;
    if deployments::get(&mut tx, id).await?.is_some() {
        deployments::set_im_logs(&mut tx, id, None).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The provider attempts of a visible deployment.
pub async fn attempts(app: &AppState, actor: &Actor, id: Uuid) -> Result<Vec<Attempt>> {
    let mut conn = app.store.conn().await?;
    visible(&mut conn, actor, id).await?;
    Ok(attempts::of_deployment(&mut conn, id).await?)
}
