//! The create job (DESIGN.md §4): candidate providers in rank order, up to
//! `per_provider_max_retries` attempts on each, each attempt polled until IM says
//! `configured` (success), `failed`/`unconfigured` (next attempt) or its deadline.
//! Every attempt is a row of `deployment_attempts`; the IM id is stored the moment IM
//! answers, before any polling, so a worker that takes over polls the same
//! infrastructure instead of creating a second one.

use im_client::{Im, InfraId, InfraState};
use serde_json::{json, Value};
use uuid::Uuid;

use super::providers::{Candidate, Placement};
use super::{contmsg_tail, counter, im_problem, set, Ctx, Result, Stepped};
use crate::domain::{Attempt, Deployment, DeploymentStatus, Task, Timestamp};
use crate::service::templates::model;
use crate::store::{attempts, deployments, templates};

const RUNNING: &str = "running";
/// Polls answering `unknown` in a row before an attempt is given up.
const UNKNOWN_LIMIT: u64 = 5;

pub(super) async fn step(cx: &Ctx<'_>) -> Result<Stepped> {
    let d = cx.deployment().await?;
    let mut progress = cx.job.progress.clone();
    if d.status != DeploymentStatus::CreateInProgress {
        return Ok(Stepped::done(progress));
    }
    let now = Timestamp::now();
    let tried = {
        let mut conn = cx.app().store.conn().await?;
        attempts::of_deployment(&mut conn, d.id).await?
    };
    let current = tried.iter().rev().find(|a| a.outcome == RUNNING).cloned();
    if now >= d.created_at.plus_minutes(d.tot_timeout_mins) {
        let why = format!(
            "the deployment did not complete within tot_timeout_mins ({} minutes)",
            d.tot_timeout_mins
        );
        if let Some(a) = current {
            end_attempt(cx, &d, a, "timed_out", &why, true).await?;
        }
        return fail(cx, progress, why).await;
    }
    let candidates: Vec<Candidate> = match progress
        .get("candidates")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
    {
        Some(c) => c,
        None => match placement(cx, &d).await? {
            Ok(c) => {
                set(&mut progress, "candidates", json!(c));
                c
            }
            Err(why) => return fail(cx, progress, why).await,
        },
    };
    let retries = usize::try_from(d.per_provider_max_retries.max(1)).unwrap_or(1);
    let slots = candidates.len() * retries;
    let attempt = match current {
        Some(a) => a,
        None => {
            let Some((slot, candidate)) = next_slot(cx, &d, &progress, &candidates, &tried, now)
            else {
                return fail(cx, progress, summary(&tried)).await;
            };
            set(&mut progress, "next_slot", json!(slot + 1));
            set(&mut progress, "last_slot", json!(slot + 1 == slots));
            set(&mut progress, "polls", json!(0));
            set(&mut progress, "unknown_polls", json!(0));
            match start_attempt(cx, &d, &tried, &candidate, now).await? {
                Some(a) => a,
                None => return Ok(Stepped::done(progress)),
            }
        }
    };
    let last = progress
        .get("last_slot")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if attempt.im_infra_id.is_none() {
        submit(cx, progress, &d, attempt, last).await
    } else {
        poll(cx, progress, &d, attempt, last).await
    }
}

/// Candidates for the deployment, or why there is none.
async fn placement(
    cx: &Ctx<'_>,
    d: &Deployment,
) -> Result<std::result::Result<Vec<Candidate>, String>> {
    let mut conn = cx.app().store.conn().await?;
    let template = templates::get(&mut conn, d.template_id).await?;
    drop(conn);
    let provider_type = match template {
        Some(t) => match model(cx.app(), &t).await {
            Ok(m) => m.target_provider_type(),
            Err(_) => None,
        },
        None => None,
    };
    Ok(cx.app().config.engine.providers.candidates(&Placement {
        user_group: &d.user_group,
        target_provider: d.target_provider.as_deref(),
        target_region: d.target_region.as_deref(),
        provider_type: provider_type.as_deref(),
        max_providers: d.max_providers,
    }))
}

/// The next (slot, candidate): slots run through the candidates, `retries` each; a
/// provider whose own deadline (`per_provider_timeout_mins` from its first attempt)
/// has passed is skipped.
fn next_slot(
    cx: &Ctx<'_>,
    d: &Deployment,
    progress: &Value,
    candidates: &[Candidate],
    tried: &[Attempt],
    now: Timestamp,
) -> Option<(usize, Candidate)> {
    let _ = cx;
    let retries = usize::try_from(d.per_provider_max_retries.max(1)).unwrap_or(1);
    let mut slot = usize::try_from(counter(progress, "next_slot")).unwrap_or(usize::MAX);
    while slot < candidates.len() * retries {
        let c = &candidates[slot / retries];
        let expired = provider_start(tried, c)
            .is_some_and(|start| start.plus_minutes(d.per_provider_timeout_mins) <= now);
        if !expired {
            return Some((slot, c.clone()));
        }
        slot = (slot / retries + 1) * retries;
    }
    None
}

fn provider_start(tried: &[Attempt], c: &Candidate) -> Option<Timestamp> {
    tried
        .iter()
        .find(|a| a.provider == c.provider && a.region == c.region)
        .map(|a| a.started_at)
}

/// Records a new attempt (if the job is still wanted).
async fn start_attempt(
    cx: &Ctx<'_>,
    d: &Deployment,
    tried: &[Attempt],
    c: &Candidate,
    now: Timestamp,
) -> Result<Option<Attempt>> {
    let Some((mut tx, mut locked)) = cx.guarded(DeploymentStatus::CreateInProgress).await? else {
        return Ok(None);
    };
    let provider_deadline = provider_start(tried, c)
        .unwrap_or(now)
        .plus_minutes(d.per_provider_timeout_mins);
    let total_deadline = d.created_at.plus_minutes(d.tot_timeout_mins);
    let project = cx
        .app()
        .config
        .engine
        .providers
        .get(&c.provider)
        .and_then(|p| p.project_for(&d.user_group).map(String::from));
    let a = Attempt {
        id: Uuid::new_v4(),
        deployment_id: d.id,
        number: i64::try_from(tried.len()).unwrap_or(0) + 1,
        provider: c.provider.clone(),
        region: c.region.clone(),
        iaas_project: project,
        started_at: now,
        deadline_at: if provider_deadline < total_deadline {
            provider_deadline
        } else {
            total_deadline
        },
        ended_at: None,
        outcome: RUNNING.into(),
        im_infra_id: None,
        error: None,
        destroyed: false,
    };
    attempts::insert(&mut tx, &a).await?;
    locked.task = Task::InfrastructureCreation;
    let line = format!(
        "attempt {} on provider {}{}",
        a.number,
        a.provider,
        a.region
            .as_deref()
            .map(|r| format!(" (region {r})"))
            .unwrap_or_default()
    );
    cx.save(&mut tx, &mut locked, &line).await?;
    tx.commit().await?;
    Ok(Some(a))
}

/// Asks IM to create the infrastructure of an attempt, and records its id.
async fn submit(
    cx: &Ctx<'_>,
    mut progress: Value,
    d: &Deployment,
    mut a: Attempt,
    last: bool,
) -> Result<Stepped> {
    let provider = match cx.provider(&a.provider) {
        Ok(p) => p,
        Err(why) => {
            end_attempt(cx, d, a, "failed", &why, last).await?;
            return Ok(Stepped::again(progress, Default::default()));
        }
    };
    if Timestamp::now() >= a.deadline_at {
        let why = timeout_reason(d);
        end_attempt(cx, d, a, "timed_out", &why, last).await?;
        return Ok(Stepped::again(progress, Default::default()));
    }
    let auth = match cx
        .auth(provider, d, a.region.as_deref(), a.iaas_project.as_deref())
        .await
    {
        Ok(auth) => auth,
        Err(e) if e.is_transient() => return Ok(cx.retry_later(progress)),
        Err(e) => {
            let why = e.to_string();
            end_attempt(cx, d, a, "failed", &why, last).await?;
            return fail(cx, progress, why).await;
        }
    };
    let template = match cx.rendered_template(d).await {
        Ok(t) => t,
        Err(why) => {
            end_attempt(cx, d, a, "failed", &why, last).await?;
            return fail(cx, progress, why).await;
        }
    };
    let im = match cx.im(provider) {
        Ok(im) => im,
        Err(why) => {
            end_attempt(cx, d, a, "failed", &why, last).await?;
            return Ok(Stepped::again(progress, Default::default()));
        }
    };
    match im.create(&auth, &template).await {
        Ok(id) => {
            a.im_infra_id = Some(id.0.clone());
            let mut conn = cx.app().store.conn().await?;
            attempts::update(&mut conn, &a).await?;
            drop(conn);
            cx.log(&format!(
                "IM accepted the infrastructure {} on provider {}",
                id, a.provider
            ))
            .await?;
            set(&mut progress, "polls", json!(0));
            Ok(Stepped::again(progress, cx.poll_delay(0)))
        }
        Err(e) if e.is_transient() => {
            cx.log(&format!(
                "IM of provider {} is unavailable ({}); retrying",
                a.provider,
                im_problem(&e)
            ))
            .await?;
            Ok(cx.retry_later(progress))
        }
        Err(e) => {
            let why = format!("IM refused the infrastructure: {}", im_problem(&e));
            end_attempt(cx, d, a, "failed", &why, last).await?;
            Ok(Stepped::again(progress, Default::default()))
        }
    }
}

/// Polls an attempt's infrastructure.
async fn poll(
    cx: &Ctx<'_>,
    mut progress: Value,
    d: &Deployment,
    a: Attempt,
    last: bool,
) -> Result<Stepped> {
    if Timestamp::now() >= a.deadline_at {
        let why = timeout_reason(d);
        end_attempt(cx, d, a, "timed_out", &why, last).await?;
        return Ok(Stepped::again(progress, Default::default()));
    }
    let provider = match cx.provider(&a.provider) {
        Ok(p) => p,
        Err(why) => {
            end_attempt(cx, d, a, "failed", &why, last).await?;
            return Ok(Stepped::again(progress, Default::default()));
        }
    };
    let auth = match cx
        .auth(provider, d, a.region.as_deref(), a.iaas_project.as_deref())
        .await
    {
        Ok(auth) => auth,
        Err(e) if e.is_transient() => return Ok(cx.retry_later(progress)),
        Err(e) => {
            let why = e.to_string();
            end_attempt(cx, d, a, "failed", &why, last).await?;
            return fail(cx, progress, why).await;
        }
    };
    let im = match cx.im(provider) {
        Ok(im) => im,
        Err(why) => {
            end_attempt(cx, d, a, "failed", &why, last).await?;
            return Ok(Stepped::again(progress, Default::default()));
        }
    };
    let infra = InfraId(a.im_infra_id.clone().unwrap_or_default());
    let report = match im.state(&auth, &infra).await {
        Ok(r) => r,
        Err(e) if e.is_transient() => return Ok(cx.retry_later(progress)),
        Err(e) => {
            let why = format!(
                "IM cannot report the infrastructure's state: {}",
                im_problem(&e)
            );
            end_attempt(cx, d, a, "failed", &why, last).await?;
            return Ok(Stepped::again(progress, Default::default()));
        }
    };
    match report.state {
        InfraState::Configured => succeed(cx, progress, d, a, &*im, &auth, &infra).await,
        InfraState::Failed | InfraState::Unconfigured => {
            let log = im.contmsg(&auth, &infra).await.unwrap_or_default();
            let why = format!(
                "IM reports the infrastructure {}: {}",
                report.state.as_str(),
                contmsg_tail(&log)
            );
            if !log.is_empty() {
                let mut conn = cx.app().store.conn().await?;
                deployments::set_im_logs(&mut conn, d.id, Some(&log)).await?;
            }
            end_attempt(cx, d, a, "failed", why.trim_end_matches(": "), last).await?;
            Ok(Stepped::again(progress, Default::default()))
        }
        InfraState::Unknown => {
            let n = counter(&progress, "unknown_polls") + 1;
            set(&mut progress, "unknown_polls", json!(n));
            if n > UNKNOWN_LIMIT {
                let why =
                    format!("IM reported the infrastructure's state as unknown {n} times in a row");
                end_attempt(cx, d, a, "failed", &why, last).await?;
                return Ok(Stepped::again(progress, Default::default()));
            }
            Ok(cx.retry_later(progress))
        }
        state => {
            set(&mut progress, "unknown_polls", json!(0));
            if state == InfraState::Running && progress.get("configuring").is_none() {
                set(&mut progress, "configuring", json!(true));
                if let Some((mut tx, mut locked)) =
                    cx.guarded(DeploymentStatus::CreateInProgress).await?
                {
                    locked.task = Task::InfrastructureConfiguration;
                    cx.save(
                        &mut tx,
                        &mut locked,
                        "the virtual machines are up; configuring",
                    )
                    .await?;
                    tx.commit().await?;
                }
            }
            Ok(cx.retry_later(progress))
        }
    }
}

/// The attempt succeeded: outputs, VMs bound to resources, CREATE_COMPLETE.
async fn succeed(
    cx: &Ctx<'_>,
    progress: Value,
    d: &Deployment,
    mut a: Attempt,
    im: &dyn Im,
    auth: &im_client::AuthHeader,
    infra: &InfraId,
) -> Result<Stepped> {
    let Some(found) = super::collect(cx, im, auth, infra).await? else {
        return Ok(cx.retry_later(progress));
    };
    a.outcome = "succeeded".into();
    a.ended_at = Some(Timestamp::now());
    let Some((mut tx, mut locked)) = cx.guarded(DeploymentStatus::CreateInProgress).await? else {
        // Cancelled meanwhile: record what exists so that the deletion destroys it.
        let mut conn = cx.app().store.conn().await?;
        attempts::update(&mut conn, &a).await?;
        return Ok(Stepped::done(progress));
    };
    attempts::update(&mut tx, &a).await?;
    super::store_found(&mut tx, d, &found).await?;
    locked.status = DeploymentStatus::CreateComplete;
    locked.status_reason = None;
    locked.task = Task::None;
    locked.im_infra_id = Some(infra.0.clone());
    locked.target_provider = Some(a.provider.clone());
    locked.target_region = a.region.clone();
    locked.target_iaas_project = a.iaas_project.clone();
    locked.template_outputs = found.outputs.clone();
    let line = format!(
        "CREATE_COMPLETE on provider {}{} as IM infrastructure {} ({} virtual machines)",
        a.provider,
        a.region
            .as_deref()
            .map(|r| format!(" (region {r})"))
            .unwrap_or_default(),
        infra,
        found.vms.len()
    );
    cx.save(&mut tx, &mut locked, &line).await?;
    tx.commit().await?;
    tracing::info!(deployment.id = %d.id, provider = %a.provider, im.infra_id = %infra, "deployment created");
    Ok(Stepped::done(progress))
}

/// Closes an attempt: destroys its infrastructure (unless it is the last attempt and
/// the user asked to keep it) and records the outcome.
async fn end_attempt(
    cx: &Ctx<'_>,
    d: &Deployment,
    mut a: Attempt,
    outcome: &str,
    why: &str,
    last: bool,
) -> Result<()> {
    let keep = last && d.keep_last_attempt;
    if let (Some(id), false) = (a.im_infra_id.clone(), keep) {
        a.destroyed = super::delete::destroy_quietly(
            cx,
            d,
            &a.provider,
            a.region.as_deref(),
            a.iaas_project.as_deref(),
            &id,
        )
        .await;
    }
    a.outcome = outcome.into();
    a.error = Some(why.to_string());
    a.ended_at = Some(Timestamp::now());
    let mut conn = cx.app().store.conn().await?;
    attempts::update(&mut conn, &a).await?;
    drop(conn);
    cx.log(&format!(
        "attempt {} on provider {} {}: {why}{}",
        a.number,
        a.provider,
        outcome.replace('_', " "),
        if keep && a.im_infra_id.is_some() {
            " (its infrastructure is kept: keep_last_attempt)"
        } else {
            ""
        }
    ))
    .await
}

fn timeout_reason(d: &Deployment) -> String {
    format!(
        "no result within per_provider_timeout_mins ({} minutes)",
        d.per_provider_timeout_mins
    )
}

/// CREATE_FAILED with a reason.
async fn fail(cx: &Ctx<'_>, progress: Value, why: String) -> Result<Stepped> {
    cx.finish(
        DeploymentStatus::CreateInProgress,
        DeploymentStatus::CreateFailed,
        Some(why.clone()),
        None,
    )
    .await?;
    Ok(Stepped::failed(progress, why))
}

/// Why every attempt failed, per provider.
fn summary(tried: &[Attempt]) -> String {
    if tried.is_empty() {
        return "no provider could be tried".into();
    }
    let parts: Vec<String> = tried
        .iter()
        .map(|a| {
            format!(
                "{}{} attempt {}: {}",
                a.provider,
                a.region
                    .as_deref()
                    .map(|r| format!("/{r}"))
                    .unwrap_or_default(),
                a.number,
                a.error.as_deref().unwrap_or(&a.outcome)
            )
        })
        .collect();
    format!("every provider failed: {}", parts.join("; "))
}
