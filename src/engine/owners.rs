//! The owner-change job. IM offers no way to add an SSH key to a running VM without
//! contextualization (which the orchestrator does not drive), so the job records the
//! change in the deployment's log and returns the deployment to the status it had
//! before the change; the new owner acts on the deployment through the orchestrator,
//! which speaks to IM with the deployment's own credentials.

use serde_json::Value;

use super::{Ctx, Result, Stepped};
use crate::domain::{DeploymentStatus, Task};

pub(super) async fn step(cx: &Ctx<'_>) -> Result<Stepped> {
    let progress = cx.job.progress.clone();
    let restore = cx
        .job
        .payload
        .get("restore_status")
        .and_then(Value::as_i64)
        .and_then(DeploymentStatus::from_code)
        .unwrap_or(DeploymentStatus::UpdateComplete);
    let user = cx
        .job
        .payload
        .get("user")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let added = cx
        .job
        .payload
        .get("add")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let Some((mut tx, mut d)) = cx.guarded(DeploymentStatus::UpdateInProgress).await? else {
        return Ok(Stepped::done(progress));
    };
    d.status = restore;
    d.task = Task::None;
    let line = format!(
        "owner {user} {}; IM cannot push SSH keys to running virtual machines, so the VMs are unchanged",
        if added { "added" } else { "removed" }
    );
    cx.save(&mut tx, &mut d, &line).await?;
    tx.commit().await?;
    Ok(Stepped::done(progress))
}
