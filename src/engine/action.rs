//! The resource action job: IM starts, stops or reboots one VM, then the VM is polled
//! until it reaches the expected state (`stopped`, or `configured`/`running` after a
//! start or reboot). The resource goes to ERROR with a reason when IM refuses or the
//! VM does not get there within `ACTION_TIMEOUT_MINS`.

use im_client::{Im, InfraId, InfraState, VmAction};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{im_problem, set, Ctx, Result, Stepped};
use crate::domain::{Deployment, ResourceStatus, Timestamp};
use crate::store::resources;

pub(super) async fn step(cx: &Ctx<'_>) -> Result<Stepped> {
    let mut progress = cx.job.progress.clone();
    let payload = &cx.job.payload;
    let resource = payload
        .get("resource")
        .and_then(Value::as_str)
        .and_then(|r| Uuid::parse_str(r).ok());
    let vm = payload.get("vm").and_then(Value::as_str).map(String::from);
    let action = match payload.get("action").and_then(Value::as_str) {
        Some("start") => VmAction::Start,
        Some("stop") => VmAction::Stop,
        Some("reboot") => VmAction::Reboot,
        _ => None.ok_or_else(|| super::EngineError::Missing("the job names no action".into()))?,
    };
    let (Some(resource), Some(vm)) = (resource, vm) else {
        return Err(super::EngineError::Missing(
            "the job names no resource".into(),
        ));
    };
    let d = cx.deployment().await?;
    let verb = match action {
        VmAction::Start => "start",
        VmAction::Stop => "stop",
        VmAction::Reboot => "reboot",
    };
    let timeout = cx.app().config.engine.action_timeout;
    if Timestamp::now() >= cx.job.created_at.plus_micros(super::micros(timeout)) {
        let why = format!(
            "the virtual machine did not {verb} within {} minutes",
            timeout.as_secs() / 60
        );
        return fail(cx, progress, &d, resource, why).await;
    }
    let (Some(infra), Some(provider_name)) = (d.im_infra_id.clone(), d.target_provider.clone())
    else {
        return fail(
            cx,
            progress,
            &d,
            resource,
            "the deployment has no IM infrastructure".into(),
        )
        .await;
    };
    let provider = match cx.provider(&provider_name) {
        Ok(p) => p,
        Err(why) => return fail(cx, progress, &d, resource, why).await,
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
        Err(e) => return fail(cx, progress, &d, resource, e.to_string()).await,
    };
    let im = match cx.im(provider) {
        Ok(im) => im,
        Err(why) => return fail(cx, progress, &d, resource, why).await,
    };
    let infra = InfraId(infra);
    if progress.get("sent").is_none() {
        return match im.vm_action(&auth, &infra, &vm, action).await {
            Ok(()) => {
                set(&mut progress, "sent", json!(true));
                Ok(Stepped::again(progress, cx.poll_delay(0)))
            }
            Err(e) if e.is_transient() => Ok(cx.retry_later(progress)),
            Err(e) => {
                let why = format!(
                    "IM refused to {verb} the virtual machine: {}",
                    im_problem(&e)
                );
                fail(cx, progress, &d, resource, why).await
            }
        };
    }
    let info = match im.vm_info(&auth, &infra, &vm).await {
        Ok(info) => info,
        Err(e) if e.is_transient() => return Ok(cx.retry_later(progress)),
        Err(e) => {
            let why = format!("IM cannot report the virtual machine: {}", im_problem(&e));
            return fail(cx, progress, &d, resource, why).await;
        }
    };
    let reached = match action {
        VmAction::Stop => info.state == InfraState::Stopped,
        VmAction::Start | VmAction::Reboot => {
            matches!(info.state, InfraState::Configured | InfraState::Running)
        }
    };
    if matches!(info.state, InfraState::Failed | InfraState::Unconfigured) {
        let why = format!(
            "the virtual machine is {} after {verb}",
            info.state.as_str()
        );
        return fail(cx, progress, &d, resource, why).await;
    }
    if !reached {
        return Ok(cx.retry_later(progress));
    }
    let mut conn = cx.app().store.conn().await?;
    if let Some(mut r) = resources::get(&mut conn, d.id, resource).await? {
        r.status = if matches!(action, VmAction::Stop) {
            ResourceStatus::Stopped
        } else {
            ResourceStatus::Started
        };
        r.status_reason = None;
        r.metadata = Some(json!({"VirtualMachineInfo": {"vmProperties": info.properties}}));
        r.updated_at = Timestamp::now();
        resources::update(&mut conn, &r).await?;
        drop(conn);
        cx.log(&format!(
            "resource {} ({}) is {} after {verb}",
            r.id, r.tosca_node_name, r.status
        ))
        .await?;
    }
    Ok(Stepped::done(progress))
}

async fn fail(
    cx: &Ctx<'_>,
    progress: Value,
    d: &Deployment,
    resource: Uuid,
    why: String,
) -> Result<Stepped> {
    let mut conn = cx.app().store.conn().await?;
    if let Some(mut r) = resources::get(&mut conn, d.id, resource).await? {
        r.status = ResourceStatus::Error;
        r.status_reason = Some(why.clone());
        r.updated_at = Timestamp::now();
        resources::update(&mut conn, &r).await?;
    }
    drop(conn);
    cx.log(&format!("resource {resource}: {why}")).await?;
    Ok(Stepped::failed(progress, why))
}
