//! The deployment engine (DESIGN.md §4): workers that claim jobs written by the API,
//! drive IM one short step at a time, and record what each step learned before the
//! next, so a worker that dies is replaced by one that resumes instead of repeating.
//!
//! A step never blocks for long: it makes a few IM calls, writes the result, and
//! asks to run again later (polling with a doubling delay) or ends the job. Every
//! job has a deadline checked at the start of each step, so no deployment stays in a
//! `*_IN_PROGRESS` state forever while a worker runs. Status writes happen under the
//! deployment's row lock and only while the job is still held: a deletion that
//! cancelled a running create wins, and the create's last step only records what it
//! created (so the deletion can destroy it).

mod action;
mod create;
mod delete;
pub mod im;
mod owners;
pub mod providers;
mod resources;
pub mod tokens;
mod update;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::{Deployment, DeploymentStatus, Job, JobKind, Task, Timestamp};
use crate::service::templates::model;
use crate::state::AppState;
use crate::store::jobs::{self, StepEnd};
use crate::store::{deployments, logs, templates, StoreError, Tx};
use im::{Connector, Limited};
use im_client::{AuthHeader, ImError};
use providers::{ImAuth, Provider};
use tokens::{TokenError, TokenSource};

/// What went wrong inside a step that is not the deployment's fault: the step is
/// retried later (the job keeps its deadline).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something needed is missing (a template row, a provider).
    #[error("{0}")]
    Missing(String),
}

type Result<T> = std::result::Result<T, EngineError>;

/// What `run_once` did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// No job was ready.
    Idle,
    /// One step of a job ran.
    Ran {
        /// The job.
        job: Uuid,
        /// Its kind.
        kind: JobKind,
        /// How the step ended.
        end: StepEnd,
    },
}

/// A step's result: what it learned and when to continue.
struct Stepped {
    progress: Value,
    end: StepEnd,
}

impl Stepped {
    fn again(progress: Value, after: Duration) -> Self {
        Self {
            progress,
            end: StepEnd::Again(Timestamp::now().plus_micros(micros(after))),
        }
    }
    fn done(progress: Value) -> Self {
        Self {
            progress,
            end: StepEnd::Done,
        }
    }
    fn failed(progress: Value, reason: impl Into<String>) -> Self {
        Self {
            progress,
            end: StepEnd::Failed(reason.into()),
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The engine of one worker process.
pub struct Engine {
    app: AppState,
    im: Connector,
    tokens: TokenSource,
    worker: String,
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The job being stepped, with the claim that holds it.
struct Ctx<'a> {
    engine: &'a Engine,
    job: &'a Job,
    claim: &'a str,
}

impl Engine {
    /// An engine over the shared state, with IM clients built from the providers.
    pub fn new(app: AppState) -> Self {
        let config = &app.config.engine;
        let im = Connector::new(config.im_timeout, config.im_max_rps);
        let tokens = TokenSource::new(app.clone());
        Self {
            worker: format!("worker-{}", Uuid::new_v4().simple()),
            app,
            im,
            tokens,
        }
    }

    /// Runs `ENGINE_CONCURRENCY` loops of `run_once` until `shutdown` is set.
    pub async fn run(self: Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        let n = self.app.config.engine.concurrency;
        tracing::info!(worker = %self.worker, engine.concurrency = n, providers = self.app.config.engine.providers.all().len(), "deployment engine started");
        let mut loops = tokio::task::JoinSet::new();
        for i in 0..n {
            let engine = self.clone();
            let mut shutdown = shutdown.clone();
            loops.spawn(async move {
                // Spread the loops so they do not poll the jobs table in lockstep.
                let idle = Duration::from_millis(500 + 97 * i as u64);
                loop {
                    if *shutdown.borrow() {
                        break;
                    }
                    let wait = match engine.run_once().await {
                        Ok(Outcome::Ran { .. }) => Duration::ZERO,
                        Ok(Outcome::Idle) => idle,
                        Err(err) => {
                            tracing::warn!(error = %err, "the engine cannot reach its jobs; retrying");
                            Duration::from_secs(2)
                        }
                    };
                    if !wait.is_zero() {
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                }
            });
        }
        while loops.join_next().await.is_some() {}
        tracing::info!(worker = %self.worker, "deployment engine stopped");
    }

    /// Claims one job whose time has come and runs one step of it.
    pub async fn run_once(&self) -> Result<Outcome> {
        let claim = format!("{}:{}", self.worker, Uuid::new_v4().simple());
        let lease = self.app.config.engine.lease;
        let job = {
            let mut tx = self.app.store.begin().await?;
            let job = jobs::claim(&mut tx, &claim, Timestamp::now(), micros(lease)).await?;
            tx.commit().await?;
            job
        };
        let Some(job) = job else {
            return Ok(Outcome::Idle);
        };
        let renewal = self.keep_lease(job.id, claim.clone(), lease);
        let ctx = Ctx {
            engine: self,
            job: &job,
            claim: &claim,
        };
        let span = tracing::info_span!("job", job.id = %job.id, job.kind = job.kind.as_str(), deployment.id = %job.deployment_id);
        let result = async {
            tracing::debug!("running a step");
            match job.kind {
                JobKind::Create => create::step(&ctx).await,
                JobKind::Update => update::step(&ctx).await,
                JobKind::Delete => delete::step(&ctx).await,
                JobKind::ResourceAction => action::step(&ctx).await,
                JobKind::OwnerChange => owners::step(&ctx).await,
            }
        }
        .instrument(span.clone())
        .await;
        let stepped = match result {
            Ok(stepped) => stepped,
            Err(err) => {
                tracing::warn!(parent: &span, error = %err, "a step failed; it will run again");
                Stepped::again(job.progress.clone(), Duration::from_secs(5))
            }
        };
        drop(renewal);
        let mut conn = self.app.store.conn().await?;
        jobs::release(&mut conn, job.id, &claim, &stepped.progress, &stepped.end).await?;
        Ok(Outcome::Ran {
            job: job.id,
            kind: job.kind,
            end: stepped.end,
        })
    }

    /// Renews the lease while a step runs; the renewal stops when the guard is
    /// dropped, also when the step's future is cancelled (a worker that stops
    /// mid-step must let its lease expire so another takes over).
    fn keep_lease(&self, job: Uuid, claim: String, lease: Duration) -> AbortOnDrop {
        let store = self.app.store.clone();
        AbortOnDrop(tokio::spawn(async move {
            let mut tick = tokio::time::interval(lease / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                let until = Timestamp::now().plus_micros(micros(lease));
                let renewed = match store.conn().await {
                    Ok(mut conn) => jobs::renew(&mut conn, job, &claim, until).await,
                    Err(e) => Err(e),
                };
                if let Err(err) = renewed {
                    tracing::warn!(job.id = %job, error = %err, "cannot renew a job's lease");
                }
            }
        }))
    }
}

impl Ctx<'_> {
    fn app(&self) -> &AppState {
        &self.engine.app
    }

    fn poll_delay(&self, polls: u64) -> Duration {
        let c = &self.app().config.engine;
        let factor = 1u32 << polls.min(16);
        (c.poll_min * factor).min(c.poll_max)
    }

    /// The deployment, read without a lock.
    async fn deployment(&self) -> Result<Deployment> {
        let mut conn = self.app().store.conn().await?;
        deployments::get(&mut conn, self.job.deployment_id)
            .await?
            .ok_or_else(|| {
                EngineError::Missing(format!("deployment {} is gone", self.job.deployment_id))
            })
    }

    /// Opens a transaction holding the deployment's row lock, if the job is still
    /// wanted and the deployment is still `expected`; `None` otherwise (cancelled,
    /// reset or deleted meanwhile: the step must not change the status).
    async fn guarded(&self, expected: DeploymentStatus) -> Result<Option<(Tx, Deployment)>> {
        let mut tx = self.app().store.begin().await?;
        let Some(d) = deployments::get_for_update(&mut tx, self.job.deployment_id).await? else {
            return Ok(None);
        };
        if d.status != expected || !jobs::still_held(&mut tx, self.job.id, self.claim).await? {
            return Ok(None);
        }
        Ok(Some((tx, d)))
    }

    /// Saves a deployment changed under [`Ctx::guarded`], with a log line.
    async fn save(&self, tx: &mut Tx, d: &mut Deployment, line: &str) -> Result<()> {
        d.updated_at = Timestamp::now();
        if !deployments::update(tx, d).await? {
            return Err(EngineError::Missing(format!(
                "deployment {} changed while locked",
                d.id
            )));
        }
        d.version += 1;
        logs::append(tx, d.id, "engine", line).await?;
        Ok(())
    }

    /// Ends the job's operation with a final status and reason (if still wanted).
    async fn finish(
        &self,
        expected: DeploymentStatus,
        status: DeploymentStatus,
        reason: Option<String>,
        im_logs: Option<&str>,
    ) -> Result<()> {
        let Some((mut tx, mut d)) = self.guarded(expected).await? else {
            return Ok(());
        };
        d.status = status;
        d.status_reason = reason.clone();
        d.task = Task::None;
        let line = match &reason {
            Some(r) => format!("{status}: {r}"),
            None => status.to_string(),
        };
        self.save(&mut tx, &mut d, &line).await?;
        if let Some(text) = im_logs {
            deployments::set_im_logs(&mut tx, d.id, Some(text)).await?;
        }
        tx.commit().await?;
        tracing::info!(deployment.id = %d.id, status = %status, reason = reason.as_deref().unwrap_or(""), "deployment operation ended");
        Ok(())
    }

    /// Polls again after the next delay of the doubling series.
    fn retry_later(&self, mut progress: Value) -> Stepped {
        let polls = counter(&progress, "polls");
        set(&mut progress, "polls", json!(polls + 1));
        Stepped::again(progress, self.poll_delay(polls))
    }

    /// Appends a line to the deployment's log.
    async fn log(&self, line: &str) -> Result<()> {
        let mut conn = self.app().store.conn().await?;
        logs::append(&mut conn, self.job.deployment_id, "engine", line).await?;
        Ok(())
    }

    /// The template IM receives: the stored one with the inputs written in.
    async fn rendered_template(&self, d: &Deployment) -> std::result::Result<String, String> {
        let mut conn = self.app().store.conn().await.map_err(|e| e.to_string())?;
        let template = templates::get(&mut conn, d.template_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("template {} is missing", d.template_id))?;
        drop(conn);
        let m = model(self.app(), &template)
            .await
            .map_err(|e| format!("template {} cannot be read: {e:?}", d.template_id))?;
        let resolved = m.validate_inputs(&d.template_inputs).map_err(|v| {
            let list: Vec<String> = v
                .iter()
                .map(|v| format!("{}: {}", v.pointer, v.message))
                .collect();
            format!("the inputs no longer validate: {}", list.join("; "))
        })?;
        Ok(m.render(&resolved))
    }

    /// The provider of a name (the file may have changed since the attempt began).
    fn provider(&self, name: &str) -> std::result::Result<&Provider, String> {
        self.app()
            .config
            .engine
            .providers
            .get(name)
            .ok_or_else(|| format!("provider '{name}' is no longer configured"))
    }

    /// The IM client of a provider.
    fn im(&self, provider: &Provider) -> std::result::Result<Arc<Limited>, String> {
        self.engine
            .im
            .client(&provider.im_url)
            .map_err(|e| format!("IM at {} cannot be used: {e}", provider.im_url))
    }

    /// The authorization header for a provider, on behalf of the deployment's
    /// creator (whose access token is refreshed when the provider needs one).
    async fn auth(
        &self,
        provider: &Provider,
        d: &Deployment,
        region: Option<&str>,
        project: Option<&str>,
    ) -> std::result::Result<AuthHeader, TokenError> {
        let token = if provider.needs_access_token() {
            Some(self.engine.tokens.access_token(d.created_by).await?)
        } else {
            None
        };
        let header = match &provider.im_auth {
            ImAuth::Token => AuthHeader::with_token(token.as_deref().unwrap_or_default()),
            ImAuth::Password { username, password } => {
                AuthHeader::with_password(username, password.expose())
            }
        };
        Ok(header.cloud(&provider.cloud_line(token.as_deref(), region, project)))
    }
}

/// What a finished IM operation left: outputs, VMs and IM's log.
struct Found {
    outputs: serde_json::Map<String, Value>,
    vms: Vec<im_client::VmInfo>,
    contmsg: Option<String>,
}

/// Reads outputs, VM details and the contextualization log of a configured
/// infrastructure; `None` when IM is unavailable for now.
async fn collect(
    cx: &Ctx<'_>,
    im: &dyn im_client::Im,
    auth: &AuthHeader,
    infra: &im_client::InfraId,
) -> Result<Option<Found>> {
    let outputs = match im.outputs(auth, infra).await {
        Ok(o) => o,
        Err(e) if e.is_transient() => return Ok(None),
        Err(e) => {
            cx.log(&format!("IM gave no outputs: {}", im_problem(&e)))
                .await?;
            Default::default()
        }
    };
    let vms = match resources::read_vms(im, auth, infra).await {
        Ok(v) => v,
        Err(e) if e.is_transient() => return Ok(None),
        Err(e) => {
            cx.log(&format!(
                "IM gave no virtual machine details: {}",
                im_problem(&e)
            ))
            .await?;
            Vec::new()
        }
    };
    let contmsg = im.contmsg(auth, infra).await.ok();
    Ok(Some(Found {
        outputs,
        vms,
        contmsg,
    }))
}

/// Binds the VMs found to the deployment's resources and keeps IM's log.
async fn store_found(tx: &mut Tx, d: &Deployment, found: &Found) -> Result<()> {
    let existing = crate::store::resources::all_of(tx, d.id).await?;
    let binding = resources::bind(
        &existing,
        &found.vms,
        crate::domain::ResourceStatus::Configured,
        d.created_by,
    );
    for r in &binding.updated {
        crate::store::resources::update(tx, r).await?;
    }
    for r in &binding.inserted {
        crate::store::resources::insert(tx, r).await?;
    }
    if let Some(text) = found.contmsg.as_deref() {
        deployments::set_im_logs(tx, d.id, Some(text)).await?;
    }
    Ok(())
}

/// A readable one-line account of an IM failure.
fn im_problem(err: &ImError) -> String {
    let text = err.to_string();
    // IM's TOSCA errors carry long parser tracebacks; the first lines say enough.
    let mut short: String = text.lines().take(3).collect::<Vec<_>>().join(" ");
    if short.len() > 600 {
        let mut end = 600;
        while !short.is_char_boundary(end) {
            end -= 1;
        }
        short.truncate(end);
        short.push('…');
    }
    short
}

/// The last part of IM's contextualization log, kept as the reason of a failure.
fn contmsg_tail(text: &str) -> String {
    let trimmed = text.trim();
    let start = trimmed.len().saturating_sub(1_000);
    let mut start = start;
    while !trimmed.is_char_boundary(start) {
        start += 1;
    }
    trimmed[start..].to_string()
}

/// Reads a counter from a progress document.
fn counter(progress: &Value, key: &str) -> u64 {
    progress.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Sets a key of a progress document.
fn set(progress: &mut Value, key: &str, value: Value) {
    if !progress.is_object() {
        *progress = json!({});
    }
    if let Some(map) = progress.as_object_mut() {
        map.insert(key.to_string(), value);
    }
}
