//! Legacy callbacks: a deployment created with a `callback` URL is POSTed its legacy
//! JSON (`DeploymentResource`) each time it reaches a final status, as the legacy
//! orchestrator's `Notify` step did; the dashboard's status e-mails depend on it.
//!
//! Best effort and never blocking: a background task started by the server finds
//! final deployments whose current version was not announced yet
//! (`store::callbacks`), records the announcement, and POSTs it with a timeout,
//! retrying with a doubling delay up to `LEGACY_CALLBACK_RETRIES` attempts. The
//! announcement row is claimed before sending, so two processes do not send the
//! same one at once; a process that dies mid-send leaves a claim that expires.

use std::time::Duration;

use crate::domain::{DeploymentStatus, Timestamp};
use crate::http::AppState;
use crate::store::callbacks::{self, Due};
use crate::store::{deployments, users};

use super::shapes::{DeploymentResource, Root};

/// What one round did (tests drive rounds with [`Notifier::run_once`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    /// Announcements recorded.
    pub scheduled: usize,
    /// Callbacks answered with a 2xx.
    pub delivered: usize,
    /// Attempts that failed.
    pub failed: usize,
}

/// Sends the callbacks.
pub struct Notifier {
    app: AppState,
    client: reqwest::Client,
}

/// Rows handled per round.
const BATCH: i64 = 100;
/// Longest delay between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(3600);

impl Notifier {
    /// A notifier for the application.
    pub fn new(app: AppState) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(app.config.legacy.callback_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()?;
        Ok(Self { app, client })
    }

    fn finals() -> Vec<i64> {
        DeploymentStatus::ALL
            .iter()
            .filter(|s| s.is_final())
            .map(|s| s.code())
            .collect()
    }

    /// The delay after `attempts` failed attempts.
    fn delay(&self, attempts: i64) -> Duration {
        let factor = 2u32.saturating_pow(u32::try_from(attempts.clamp(0, 20)).unwrap_or(20));
        self.app
            .config
            .legacy
            .callback_poll
            .saturating_mul(factor)
            .min(MAX_DELAY)
    }

    /// One round: schedule new announcements, then send those due.
    pub async fn run_once(&self) -> anyhow::Result<Round> {
        let mut round = Round::default();
        let mut tx = self.app.store.begin().await?;
        let fresh = callbacks::unannounced(&mut tx, &Self::finals(), BATCH).await?;
        for (id, version, status) in &fresh {
            callbacks::schedule(&mut tx, *id, *version, *status, Timestamp::now()).await?;
        }
        tx.commit().await?;
        round.scheduled = fresh.len();
        let due = {
            let mut conn = self.app.store.conn().await?;
            callbacks::due(&mut conn, Timestamp::now(), BATCH).await?
        };
        for item in due {
            match self.send(&item).await? {
                Some(true) => round.delivered += 1,
                Some(false) => round.failed += 1,
                None => {}
            }
        }
        Ok(round)
    }

    /// Claims and sends one announcement: `None` when another notifier has it or
    /// the deployment changed since.
    async fn send(&self, item: &Due) -> anyhow::Result<Option<bool>> {
        let lease = self.app.config.legacy.callback_timeout * 2 + Duration::from_secs(5);
        {
            let mut tx = self.app.store.begin().await?;
            let until =
                Timestamp::now().plus_micros(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
            if !callbacks::claim(&mut tx, item, until).await? {
                return Ok(None);
            }
            tx.commit().await?;
        }
        let mut conn = self.app.store.conn().await?;
        let Some(d) = deployments::get(&mut conn, item.deployment_id).await? else {
            return Ok(None);
        };
        if d.version != item.version {
            // A newer change: the next round schedules it.
            return Ok(None);
        }
        let Some(url) = d.callback.clone() else {
            return Ok(None);
        };
        let creator = users::get(&mut conn, d.created_by).await?;
        drop(conn);
        let root = Root::configured(&self.app.config);
        let body = DeploymentResource::build(d, creator.as_ref(), &self.app.config, &root);
        let outcome = match self.client.post(&url).json(&body).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("the callback answered {}", r.status())),
            Err(e) => Err(format!("the callback could not be reached: {e}")),
        };
        let attempts = item.attempts + 1;
        let mut tx = self.app.store.begin().await?;
        let delivered = match outcome {
            Ok(()) => {
                callbacks::record(&mut tx, item, None, true, Timestamp::now()).await?;
                tracing::info!(deployment.id = %item.deployment_id, deployment.version = item.version, "legacy callback delivered");
                true
            }
            Err(why) => {
                let give_up = attempts >= i64::from(self.app.config.legacy.callback_retries);
                let delay =
                    i64::try_from(self.delay(item.attempts).as_micros()).unwrap_or(i64::MAX);
                let next = Timestamp::now().plus_micros(delay);
                callbacks::record(&mut tx, item, Some(&why), give_up, next).await?;
                if give_up {
                    tracing::warn!(deployment.id = %item.deployment_id, attempts, error = %why, "legacy callback abandoned");
                } else {
                    tracing::info!(deployment.id = %item.deployment_id, attempts, error = %why, "legacy callback failed; will retry");
                }
                false
            }
        };
        tx.commit().await?;
        Ok(Some(delivered))
    }

    /// Runs rounds every `LEGACY_CALLBACK_POLL` until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let every = self.app.config.legacy.callback_poll;
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "legacy callback round failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

/// Starts the notifier in the background (the server and workers call this).
pub fn spawn(
    app: AppState,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    match Notifier::new(app) {
        Ok(n) => Some(tokio::spawn(n.run(stop))),
        Err(e) => {
            tracing::error!(error = %e, "the legacy callback notifier cannot start");
            None
        }
    }
}
