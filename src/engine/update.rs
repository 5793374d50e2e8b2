//! The update job: IM merges the re-rendered template with the one it has (adding or
//! removing VMs per node), then the infrastructure is polled until `configured`; new
//! VMs become resources and removed ones DELETED. The deadline is the deployment's
//! `tot_timeout_mins`, counted from the update request.

use im_client::{Im, ImError, InfraId, InfraState};
use serde_json::{json, Value};

use super::{contmsg_tail, counter, im_problem, set, Ctx, Result, Stepped};
use crate::domain::{Deployment, DeploymentStatus, Task};

const UNKNOWN_LIMIT: u64 = 5;

pub(super) async fn step(cx: &Ctx<'_>) -> Result<Stepped> {
    let d = cx.deployment().await?;
    let mut progress = cx.job.progress.clone();
    if d.status != DeploymentStatus::UpdateInProgress {
        return Ok(Stepped::done(progress));
    }
    if crate::domain::Timestamp::now() >= cx.job.created_at.plus_minutes(d.tot_timeout_mins) {
        let why = format!(
            "the update did not complete within tot_timeout_mins ({} minutes)",
            d.tot_timeout_mins
        );
        return fail(cx, progress, why, None).await;
    }
    let (Some(infra), Some(provider_name)) = (d.im_infra_id.clone(), d.target_provider.clone())
    else {
        return fail(
            cx,
            progress,
            "the deployment has no IM infrastructure to update".into(),
            None,
        )
        .await;
    };
    let provider = match cx.provider(&provider_name) {
        Ok(p) => p,
        Err(why) => return fail(cx, progress, why, None).await,
    };
    let auth = match cx
        .auth(
            provider,
            &d,
            d.target_region.as_deref(),
            d.target_iaas_project.as_deref(),
        )
        .await
    {
        Ok(a) => a,
        Err(e) if e.is_transient() => return Ok(cx.retry_later(progress)),
        Err(e) => return fail(cx, progress, e.to_string(), None).await,
    };
    let im = match cx.im(provider) {
        Ok(im) => im,
        Err(why) => return fail(cx, progress, why, None).await,
    };
    let infra = InfraId(infra);
    if progress.get("sent").is_none() {
        let template = match cx.rendered_template(&d).await {
            Ok(t) => t,
            Err(why) => return fail(cx, progress, why, None).await,
        };
        return match im.update(&auth, &infra, &template).await {
            Ok(added) => {
                set(&mut progress, "sent", json!(true));
                set(&mut progress, "polls", json!(0));
                cx.log(&format!(
                    "IM accepted the update of infrastructure {infra} ({} new virtual machines)",
                    added.len()
                ))
                .await?;
                Ok(Stepped::again(progress, cx.poll_delay(0)))
            }
            Err(e) if e.is_transient() || matches!(e, ImError::Conflict { .. }) => {
                Ok(cx.retry_later(progress))
            }
            Err(e) => {
                fail(
                    cx,
                    progress,
                    format!("IM refused the update: {}", im_problem(&e)),
                    None,
                )
                .await
            }
        };
    }
    let report = match im.state(&auth, &infra).await {
        Ok(r) => r,
        Err(e) if e.is_transient() => return Ok(cx.retry_later(progress)),
        Err(e) => {
            let why = format!(
                "IM cannot report the infrastructure's state: {}",
                im_problem(&e)
            );
            return fail(cx, progress, why, None).await;
        }
    };
    match report.state {
        InfraState::Configured => complete(cx, progress, &d, &*im, &auth, &infra).await,
        InfraState::Failed | InfraState::Unconfigured => {
            let log = im.contmsg(&auth, &infra).await.unwrap_or_default();
            let why = format!(
                "IM reports the infrastructure {} after the update: {}",
                report.state.as_str(),
                contmsg_tail(&log)
            );
            fail(
                cx,
                progress,
                why.trim_end_matches(": ").to_string(),
                Some(&log),
            )
            .await
        }
        InfraState::Unknown => {
            let n = counter(&progress, "unknown_polls") + 1;
            set(&mut progress, "unknown_polls", json!(n));
            if n > UNKNOWN_LIMIT {
                let why =
                    format!("IM reported the infrastructure's state as unknown {n} times in a row");
                return fail(cx, progress, why, None).await;
            }
            Ok(cx.retry_later(progress))
        }
        _ => Ok(cx.retry_later(progress)),
    }
}

async fn complete(
    cx: &Ctx<'_>,
    progress: Value,
    d: &Deployment,
    im: &dyn im_client::Im,
    auth: &im_client::AuthHeader,
    infra: &InfraId,
) -> Result<Stepped> {
    let Some(found) = super::collect(cx, im, auth, infra).await? else {
        return Ok(cx.retry_later(progress));
    };
    let Some((mut tx, mut locked)) = cx.guarded(DeploymentStatus::UpdateInProgress).await? else {
        return Ok(Stepped::done(progress));
    };
    super::store_found(&mut tx, d, &found).await?;
    locked.status = DeploymentStatus::UpdateComplete;
    locked.status_reason = None;
    locked.task = Task::None;
    locked.template_outputs = found.outputs.clone();
    let line = format!(
        "UPDATE_COMPLETE: IM infrastructure {infra} has {} virtual machines",
        found.vms.len()
    );
    cx.save(&mut tx, &mut locked, &line).await?;
    tx.commit().await?;
    Ok(Stepped::done(progress))
}

async fn fail(
    cx: &Ctx<'_>,
    progress: Value,
    why: String,
    im_logs: Option<&str>,
) -> Result<Stepped> {
    cx.finish(
        DeploymentStatus::UpdateInProgress,
        DeploymentStatus::UpdateFailed,
        Some(why.clone()),
        im_logs.filter(|l| !l.is_empty()),
    )
    .await?;
    Ok(Stepped::failed(progress, why))
}
