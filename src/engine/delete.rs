//! The delete job: destroy every IM infrastructure the deployment ever had (the
//! final one and any failed attempt's left behind), poll each until IM answers 404,
//! then DELETE_COMPLETE with every resource DELETED. `unsecure` asks IM to forget
//! resources it cannot release (`force`). IM can show a deleted infrastructure again
//! for a moment after an asynchronous destroy; one that reappears in a state other
//! than `deleting` is destroyed again, a few times at most.

use std::collections::BTreeMap;

use im_client::{Im, ImError, InfraId, InfraState};
use serde_json::{json, Value};

use super::{im_problem, set, Ctx, Result, Stepped};
use crate::domain::{Deployment, DeploymentStatus, ResourceStatus, Task, Timestamp};
use crate::store::{attempts, resources};

/// Wait this long after a destroy before the first state poll.
const SETTLE_MICROS: i64 = 1_000_000;
/// Destroys of one infrastructure before giving up on it.
const MAX_DESTROYS: u64 = 4;

/// An infrastructure to destroy and where it lives.
struct Target {
    id: String,
    provider: Option<String>,
    region: Option<String>,
    project: Option<String>,
}

pub(super) async fn step(cx: &Ctx<'_>) -> Result<Stepped> {
    let d = cx.deployment().await?;
    let mut progress = cx.job.progress.clone();
    if d.status != DeploymentStatus::DeleteInProgress {
        return Ok(Stepped::done(progress));
    }
    let timeout = cx.app().config.engine.delete_timeout;
    if Timestamp::now() >= cx.job.created_at.plus_micros(super::micros(timeout)) {
        let why = format!(
            "IM did not finish deleting the infrastructure within {} minutes",
            timeout.as_secs() / 60
        );
        return fail(cx, progress, why).await;
    }
    let unsecure = cx
        .job
        .payload
        .get("unsecure")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let targets = targets(cx, &d).await?;
    let mut sent: BTreeMap<String, Value> = progress
        .get("sent")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    let mut pending = false;
    for t in &targets {
        let Some(provider_name) = t.provider.as_deref() else {
            cx.log(&format!(
                "IM infrastructure {} has no known provider; it is left alone",
                t.id
            ))
            .await?;
            mark_destroyed(cx, &d, &t.id).await?;
            continue;
        };
        let provider = match cx.provider(provider_name) {
            Ok(p) => p,
            Err(why) => {
                return fail(
                    cx,
                    progress,
                    format!("cannot delete IM infrastructure {}: {why}", t.id),
                )
                .await
            }
        };
        let auth = match cx
            .auth(provider, &d, t.region.as_deref(), t.project.as_deref())
            .await
        {
            Ok(a) => a,
            Err(e) if e.is_transient() => {
                pending = true;
                continue;
            }
            Err(e) => return fail(cx, progress, e.to_string()).await,
        };
        let im = match cx.im(provider) {
            Ok(im) => im,
            Err(why) => return fail(cx, progress, why).await,
        };
        let infra = InfraId(t.id.clone());
        let entry = sent.get(&t.id).cloned().unwrap_or(Value::Null);
        let at = entry.get("at").and_then(Value::as_i64);
        let count = entry.get("count").and_then(Value::as_u64).unwrap_or(0);
        let now = Timestamp::now().as_micros();
        match at {
            Some(at) if now - at < SETTLE_MICROS => pending = true,
            Some(_) => match im.state(&auth, &infra).await {
                Err(ImError::NotFound { .. }) => {
                    mark_destroyed(cx, &d, &t.id).await?;
                    cx.log(&format!("IM infrastructure {} is deleted", t.id))
                        .await?;
                }
                Ok(report) if report.state != InfraState::Deleting => {
                    if count >= MAX_DESTROYS {
                        let why = format!(
                            "IM keeps infrastructure {} in state {} after {count} deletions",
                            t.id,
                            report.state.as_str()
                        );
                        return fail(cx, progress, why).await;
                    }
                    match destroy(&*im, &auth, &infra, unsecure).await {
                        Ok(()) => {
                            sent.insert(t.id.clone(), json!({"at": now, "count": count + 1}));
                        }
                        Err(why) => return fail(cx, progress, why).await,
                    }
                    pending = true;
                }
                _ => pending = true,
            },
            None => {
                match destroy(&*im, &auth, &infra, unsecure).await {
                    Ok(()) => {
                        sent.insert(t.id.clone(), json!({"at": now, "count": count + 1}));
                        cx.log(&format!(
                            "asked IM to delete infrastructure {}{}",
                            t.id,
                            if unsecure { " (unsecure: forced)" } else { "" }
                        ))
                        .await?;
                    }
                    Err(why) if why.is_empty() => {}
                    Err(why) => return fail(cx, progress, why).await,
                }
                pending = true;
            }
        }
    }
    set(&mut progress, "sent", json!(sent));
    if pending {
        let polls = super::counter(&progress, "polls");
        set(&mut progress, "polls", json!(polls + 1));
        let delay = cx
            .poll_delay(polls)
            .max(std::time::Duration::from_micros(SETTLE_MICROS as u64));
        return Ok(Stepped::again(progress, delay));
    }
    complete(cx, progress, &d).await
}

/// Destroys; `Err("")` means "transient, try again", `Err(reason)` a refusal.
async fn destroy(
    im: &dyn Im,
    auth: &im_client::AuthHeader,
    infra: &InfraId,
    force: bool,
) -> std::result::Result<(), String> {
    match im.destroy(auth, infra, force).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_transient() || matches!(e, ImError::Conflict { .. }) => Err(String::new()),
        Err(e) => Err(format!(
            "IM refused to delete infrastructure {infra}: {}",
            im_problem(&e)
        )),
    }
}

/// The infrastructures to destroy: every attempt's not yet destroyed, and the
/// deployment's own.
async fn targets(cx: &Ctx<'_>, d: &Deployment) -> Result<Vec<Target>> {
    let mut conn = cx.app().store.conn().await?;
    let tried = attempts::of_deployment(&mut conn, d.id).await?;
    let mut out: Vec<Target> = Vec::new();
    for a in tried.iter().filter(|a| !a.destroyed) {
        if let Some(id) = &a.im_infra_id {
            if !out.iter().any(|t| &t.id == id) {
                out.push(Target {
                    id: id.clone(),
                    provider: Some(a.provider.clone()),
                    region: a.region.clone(),
                    project: a.iaas_project.clone(),
                });
            }
        }
    }
    if let Some(id) = &d.im_infra_id {
        let destroyed = tried
            .iter()
            .any(|a| a.im_infra_id.as_ref() == Some(id) && a.destroyed);
        if !destroyed && !out.iter().any(|t| &t.id == id) {
            out.push(Target {
                id: id.clone(),
                provider: d.target_provider.clone(),
                region: d.target_region.clone(),
                project: d.target_iaas_project.clone(),
            });
        }
    }
    Ok(out)
}

async fn mark_destroyed(cx: &Ctx<'_>, d: &Deployment, id: &str) -> Result<()> {
    let mut conn = cx.app().store.conn().await?;
    for mut a in attempts::of_deployment(&mut conn, d.id).await? {
        if a.im_infra_id.as_deref() == Some(id) && !a.destroyed {
            a.destroyed = true;
            attempts::update(&mut conn, &a).await?;
        }
    }
    Ok(())
}

async fn complete(cx: &Ctx<'_>, progress: Value, d: &Deployment) -> Result<Stepped> {
    let Some((mut tx, mut locked)) = cx.guarded(DeploymentStatus::DeleteInProgress).await? else {
        return Ok(Stepped::done(progress));
    };
    resources::set_status_of_all(&mut tx, d.id, ResourceStatus::Deleted, d.updated_by).await?;
    locked.status = DeploymentStatus::DeleteComplete;
    locked.status_reason = None;
    locked.task = Task::None;
    cx.save(
        &mut tx,
        &mut locked,
        "DELETE_COMPLETE: every IM infrastructure is deleted",
    )
    .await?;
    tx.commit().await?;
    tracing::info!(deployment.id = %d.id, "deployment deleted");
    Ok(Stepped::done(progress))
}

async fn fail(cx: &Ctx<'_>, progress: Value, why: String) -> Result<Stepped> {
    cx.finish(
        DeploymentStatus::DeleteInProgress,
        DeploymentStatus::DeleteFailed,
        Some(why.clone()),
        None,
    )
    .await?;
    Ok(Stepped::failed(progress, why))
}

/// Destroys a failed attempt's infrastructure without waiting; `true` when IM
/// accepted. A failure is logged: the deployment's deletion destroys it later.
pub(super) async fn destroy_quietly(
    cx: &Ctx<'_>,
    d: &Deployment,
    provider: &str,
    region: Option<&str>,
    project: Option<&str>,
    id: &str,
) -> bool {
    let outcome = async {
        let p = cx.provider(provider)?;
        let auth = cx
            .auth(p, d, region, project)
            .await
            .map_err(|e| e.to_string())?;
        let im = cx.im(p)?;
        im.destroy(&auth, &InfraId(id.to_string()), false)
            .await
            .map_err(|e| im_problem(&e))
    }
    .await;
    match outcome {
        Ok(()) => true,
        Err(why) => {
            let _ = cx
                .log(&format!(
                    "could not destroy IM infrastructure {id} of a failed attempt ({why}); deleting the deployment will retry"
                ))
                .await;
            false
        }
    }
}
