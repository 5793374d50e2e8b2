//! The outbox relay: publishes the rows the services wrote, in order, and marks each
//! published only once it is delivered (the broker acknowledged it with `acks=all`,
//! or, without Kafka, it was handed to the in-process subscribers).
//!
//! - One relay publishes at a time, whatever the number of `serve` and `worker`
//!   processes: the one holding the `outbox` row of `relay_leases`. Others stand by
//!   and take over when its lease lapses, so the relay itself never publishes a row
//!   twice by racing another.
//! - A failed message is retried with a doubling backoff (`KAFKA_RETRY_BACKOFF_MIN`
//!   to `_MAX`) and keeps its row meanwhile; later messages of the same deployment
//!   wait behind it, so one deployment's messages keep their order.
//! - If the database fails after the broker acknowledged a batch, those rows are
//!   published again on the next round: delivery is at least once, and consumers
//!   deduplicate on `msg_id` (docs/messages.md).
//! - A message carrying an access token is deleted as soon as it is delivered; the
//!   others are pruned after `OUTBOX_RETENTION`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::messages::carries_token;
use super::{Delivered, Stats};
use crate::domain::Timestamp;
use crate::state::AppState;
use crate::store::outbox::{self, OutboxMessage};
use crate::store::StoreError;

/// Where the relay delivers messages.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Delivers a batch in order; one result per message.
    async fn publish(&self, batch: &[OutboxMessage]) -> Vec<Result<(), String>>;
    /// Names the destination in log lines.
    fn describe(&self) -> &'static str;
}

/// Delivery without Kafka: the messages go to [`super::Messaging::subscribe`]rs of
/// this process (none is fine: the outbox is then simply drained and pruned).
pub struct InProcess {
    bus: broadcast::Sender<Delivered>,
}

impl InProcess {
    /// Delivers to this bus.
    pub fn new(bus: broadcast::Sender<Delivered>) -> Self {
        Self { bus }
    }
}

#[async_trait]
impl Publisher for InProcess {
    async fn publish(&self, batch: &[OutboxMessage]) -> Vec<Result<(), String>> {
        batch
            .iter()
            .map(|m| {
                tracing::debug!(message.id = %m.id, message.topic = %m.topic, deployment.id = %m.key, "message delivered in-process");
                // No subscriber is not an error: nobody in this process listens.
                let _ = self.bus.send(Delivered {
                    id: m.id,
                    topic: m.topic.clone(),
                    key: m.key.clone(),
                    payload: Arc::new(m.payload.clone()),
                });
                Ok(())
            })
            .collect()
    }

    fn describe(&self) -> &'static str {
        "in-process"
    }
}

/// What one round of the relay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOutcome {
    /// Nothing was due.
    Idle,
    /// Another relay holds the lease.
    Standby,
    /// A batch went out.
    Delivered {
        /// Messages delivered and marked.
        published: usize,
        /// Messages that failed and will be retried.
        failed: usize,
    },
}

/// Rows read per round.
const BATCH: i64 = 500;
/// How often published rows and old consumed-message ids are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long consumed-message ids are kept for deduplication.
const CONSUMED_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
const LEASE_NAME: &str = "outbox";

/// The relay of one process.
pub struct Relay {
    app: AppState,
    publisher: Arc<dyn Publisher>,
    holder: String,
    lease: Duration,
    lease_until: Mutex<Option<Timestamp>>,
    last_prune: Mutex<Option<Instant>>,
    failing: AtomicBool,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Relay {
    /// The relay for this configuration: to Kafka when enabled, else in-process.
    pub fn new(app: AppState) -> Self {
        let publisher: Arc<dyn Publisher> = match app.messaging.kafka() {
            Some(kafka) => Arc::new(kafka.clone()),
            None => Arc::new(InProcess::new(app.messaging.bus().clone())),
        };
        Self::with_publisher(app, publisher)
    }

    /// A relay delivering to `publisher` (tests point one at a closed port).
    pub fn with_publisher(app: AppState, publisher: Arc<dyn Publisher>) -> Self {
        // Longer than any round can take (a delivery report comes within the message
        // timeout), so a live relay never loses its lease in the middle of a batch.
        let lease = app.config.kafka.message_timeout * 2 + Duration::from_secs(10);
        Self {
            app,
            publisher,
            holder: format!("relay-{}", Uuid::new_v4().simple()),
            lease,
            lease_until: Mutex::new(None),
            last_prune: Mutex::new(None),
            failing: AtomicBool::new(false),
        }
    }

    fn stats(&self) -> &Stats {
        self.app.messaging.stats()
    }

    /// Takes or renews the lease when less than half of it is left.
    async fn hold_lease(&self) -> Result<bool, StoreError> {
        let now = Timestamp::now();
        let held = self.lease_until.lock().map(|g| *g).unwrap_or(None);
        if held.is_some_and(|until| until.as_micros() - now.as_micros() > micros(self.lease) / 2) {
            return Ok(true);
        }
        let until = now.plus_micros(micros(self.lease));
        let mut tx = self.app.store.begin().await?;
        let taken = outbox::take_lease(&mut tx, LEASE_NAME, &self.holder, now, until).await?;
        tx.commit().await?;
        if let Ok(mut g) = self.lease_until.lock() {
            *g = taken.then_some(until);
        }
        if taken && held.is_none() {
            tracing::info!(relay = %self.holder, relay.to = self.publisher.describe(), "this process now relays the outbox");
        }
        Ok(taken)
    }

    fn backoff(&self, attempts: i64) -> Duration {
        let k = &self.app.config.kafka;
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        (k.retry_backoff_min * 2u32.pow(exp)).min(k.retry_backoff_max)
    }

    /// Publishes the messages that are due, if this relay holds the lease.
    pub async fn run_once(&self) -> Result<RelayOutcome, StoreError> {
        if !self.hold_lease().await? {
            return Ok(RelayOutcome::Standby);
        }
        let batch = {
            let mut conn = self.app.store.conn().await?;
            outbox::pending(&mut conn, Timestamp::now(), BATCH).await?
        };
        if batch.is_empty() {
            return Ok(RelayOutcome::Idle);
        }
        let results = self.publisher.publish(&batch).await;
        let mut published = Vec::new();
        let mut scrub = Vec::new();
        let mut failed = Vec::new();
        for (message, result) in batch.iter().zip(results) {
            match result {
                Ok(()) if carries_token(&message.payload) => scrub.push(message.seq),
                Ok(()) => published.push(message.seq),
                Err(err) => failed.push((message, err)),
            }
        }
        let delivered = published.len() + scrub.len();
        let mut tx = self.app.store.begin().await?;
        outbox::mark_published(&mut tx, &published).await?;
        outbox::delete(&mut tx, &scrub).await?;
        let now = Timestamp::now();
        for (message, err) in &failed {
            let retry_at = now.plus_micros(micros(self.backoff(message.attempts + 1)));
            outbox::mark_failed(&mut tx, message.seq, err, retry_at).await?;
        }
        tx.commit().await?;
        Stats::add(&self.stats().published, delivered as u64);
        Stats::add(&self.stats().publish_failures, failed.len() as u64);
        if let Some((first, err)) = failed.first() {
            // Logged once per round, with the first error: the rest usually share it.
            tracing::warn!(
                relay.to = self.publisher.describe(),
                outbox.failed = failed.len(),
                outbox.published = delivered,
                message.id = %first.id,
                deployment.id = %first.key,
                error = %err,
                retry_in = ?self.backoff(first.attempts + 1),
                "cannot publish outbox messages; they stay in the outbox and are retried"
            );
            self.failing.store(true, Ordering::Relaxed);
        } else if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(
                relay.to = self.publisher.describe(),
                outbox.published = delivered,
                "outbox publishing resumed"
            );
        } else {
            tracing::debug!(
                relay.to = self.publisher.describe(),
                outbox.published = delivered,
                "outbox messages published"
            );
        }
        Ok(RelayOutcome::Delivered {
            published: delivered,
            failed: failed.len(),
        })
    }

    /// Deletes published rows older than `OUTBOX_RETENTION` and consumed-message ids
    /// older than a week.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.app.store.begin().await?;
        let rows = outbox::prune(
            &mut tx,
            now.plus_micros(-micros(self.app.config.outbox.retention)),
        )
        .await?;
        let ids =
            outbox::prune_consumed(&mut tx, now.plus_micros(-micros(CONSUMED_RETENTION))).await?;
        tx.commit().await?;
        if rows + ids > 0 {
            tracing::debug!(
                outbox.pruned = rows,
                consumed.pruned = ids,
                "pruned the outbox"
            );
        }
        Ok(rows + ids)
    }

    async fn prune_if_due(&self) {
        let due = self
            .last_prune
            .lock()
            .map(|g| g.is_none_or(|at| at.elapsed() >= PRUNE_EVERY))
            .unwrap_or(true);
        if !due {
            return;
        }
        if let Ok(mut g) = self.last_prune.lock() {
            *g = Some(Instant::now());
        }
        if let Err(err) = self.prune().await {
            tracing::warn!(error = %err, "cannot prune the outbox");
        }
    }

    /// Relays until `shutdown` is set, then gives the lease up.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let poll = self.app.config.outbox.poll_interval;
        tracing::info!(relay.to = self.publisher.describe(), "outbox relay started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            let wait = match self.run_once().await {
                Ok(RelayOutcome::Delivered { failed: 0, .. }) => Duration::ZERO,
                Ok(RelayOutcome::Delivered { .. } | RelayOutcome::Idle) => poll,
                Ok(RelayOutcome::Standby) => (poll * 10).max(Duration::from_secs(1)),
                Err(err) => {
                    tracing::warn!(error = %err, "the outbox relay cannot reach the database; retrying");
                    Duration::from_secs(2)
                }
            };
            if self
                .lease_until
                .lock()
                .map(|g| g.is_some())
                .unwrap_or(false)
            {
                self.prune_if_due().await;
            }
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        if let Ok(mut conn) = self.app.store.conn().await {
            let _ = outbox::release_lease(&mut conn, LEASE_NAME, &self.holder).await;
        }
        if let Some(kafka) = self.app.messaging.kafka() {
            kafka.flush(Duration::from_secs(5)).await;
        }
        tracing::info!("outbox relay stopped");
    }
}
