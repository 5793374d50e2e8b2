//! The consumers: `deployment-status` (with `ENGINE=external`, the external engine
//! reports how deployments move) and `deployment-logs` (operational lines appended to
//! a deployment's log with source `kafka`).
//!
//! One consumer in the group `KAFKA_GROUP_ID` reads both topics. Each message is
//! applied in one transaction that also records its `msg_id` in `consumed_messages`,
//! so a message delivered again (a rebalance, a restart before the commit) is applied
//! once; the offset is committed only after that transaction commits. A message that
//! cannot be read or applied is logged, counted and skipped (its offset committed):
//! one bad message never stops the topic. A database failure is not the message's
//! fault: the same message is retried, with backoff, until it goes through.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;

use super::messages::{self, ResourceSelector, StatusMessage};
use super::producer::{client_config, KafkaLog};
use super::{MessagingError, Stats};
use crate::config::EngineMode;
use crate::domain::{DeploymentStatus, Task, Timestamp};
use crate::state::AppState;
use crate::store::{deployments, jobs, logs, outbox, resources, StoreError};

/// What became of a consumed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Applied to the database.
    Applied,
    /// Its id was applied before; nothing done.
    Duplicate,
    /// It cannot be read (why); skipped.
    Malformed(String),
    /// It was read but cannot be applied (why); skipped.
    Rejected(String),
}

/// A failure that is not the message's fault: apply the same message again later.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The deployment changed between its read and its write.
    #[error("deployment {0} changed while the message was applied")]
    Conflict(uuid::Uuid),
}

/// The longest log line kept from the log topic.
const MAX_LINE: usize = 10_000;

fn clip(line: &str) -> String {
    if line.len() <= MAX_LINE {
        return line.to_string();
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// Applies a `deployment-status` message (from `topic`).
pub async fn apply_status(
    app: &AppState,
    topic: &str,
    payload: &[u8],
) -> Result<Handled, ConsumeError> {
    let message = match messages::read_status(payload) {
        Ok(m) => m,
        Err(why) => return Ok(Handled::Malformed(why.0)),
    };
    let mut tx = app.store.begin().await?;
    if outbox::consumed(&mut tx, &message.msg_id).await? {
        return Ok(Handled::Duplicate);
    }
    // Recorded first: a concurrent copy of the message waits on this row, then fails.
    match outbox::record_consumed(&mut tx, &message.msg_id, topic).await {
        Err(StoreError::Duplicate(_)) => return Ok(Handled::Duplicate),
        other => other?,
    }
    let Some(mut d) = deployments::get_for_update(&mut tx, message.deployment_id).await? else {
        return Ok(Handled::Rejected(format!(
            "deployment {} does not exist",
            message.deployment_id
        )));
    };
    if d.status == DeploymentStatus::DeleteComplete
        && message.status != Some(DeploymentStatus::DeleteComplete)
    {
        return Ok(Handled::Rejected(format!(
            "deployment {} is DELETE_COMPLETE; a deleted deployment does not move again",
            d.id
        )));
    }
    let line = describe(&message);
    if let Some(status) = message.status {
        d.status = status;
        d.status_reason = message.status_reason.clone();
        d.task = message.task.unwrap_or(if status.is_in_progress() {
            d.task
        } else {
            Task::None
        });
    } else {
        if let Some(reason) = &message.status_reason {
            d.status_reason = Some(reason.clone());
        }
        if let Some(task) = message.task {
            d.task = task;
        }
    }
    if let Some(outputs) = &message.outputs {
        d.template_outputs = outputs.clone();
    }
    for (field, value) in [
        (&mut d.im_infra_id, &message.im_infra_id),
        (&mut d.target_provider, &message.target_provider),
        (&mut d.target_region, &message.target_region),
        (&mut d.target_iaas_project, &message.target_iaas_project),
    ] {
        if value.is_some() {
            field.clone_from(value);
        }
    }
    d.updated_at = Timestamp::now();
    if !deployments::update(&mut tx, &d).await? {
        return Err(ConsumeError::Conflict(d.id));
    }
    let mut unknown = Vec::new();
    if !message.resources.is_empty() {
        let existing = resources::all_of(&mut tx, d.id).await?;
        for state in &message.resources {
            let matching: Vec<_> = existing
                .iter()
                .filter(|r| match &state.selector {
                    ResourceSelector::Id(id) => r.id == *id,
                    ResourceSelector::Node { name, index } => {
                        r.tosca_node_name == *name && index.is_none_or(|i| r.instance_index == i)
                    }
                })
                .collect();
            if matching.is_empty() {
                unknown.push(format!("{:?}", state.selector));
            }
            for r in matching {
                let mut r = r.clone();
                r.status = state.status;
                r.status_reason.clone_from(&state.status_reason);
                if state.im_vm_idx.is_some() {
                    r.im_vm_idx.clone_from(&state.im_vm_idx);
                }
                if state.metadata.is_some() {
                    r.metadata.clone_from(&state.metadata);
                }
                r.updated_at = d.updated_at;
                resources::update(&mut tx, &r).await?;
            }
        }
    }
    if let Some(text) = &message.im_logs {
        deployments::set_im_logs(&mut tx, d.id, Some(text)).await?;
    }
    if message.status.is_some_and(|s| !s.is_in_progress()) {
        jobs::finish_active(
            &mut tx,
            d.id,
            &format!("ended by the external engine: {}", d.status),
        )
        .await?;
    }
    logs::append(&mut tx, d.id, "kafka", &line).await?;
    if !unknown.is_empty() {
        logs::append(
            &mut tx,
            d.id,
            "kafka",
            &format!(
                "the external engine reported resources this deployment does not have: {}",
                unknown.join(", ")
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Handled::Applied)
}

/// The log line recording a status message.
fn describe(m: &StatusMessage) -> String {
    let mut parts = Vec::new();
    if let Some(status) = m.status {
        parts.push(match &m.status_reason {
            Some(reason) => format!("{status}: {reason}"),
            None => status.to_string(),
        });
    }
    if m.outputs.is_some() {
        parts.push("outputs".to_string());
    }
    if !m.resources.is_empty() {
        parts.push(format!("{} resource state(s)", m.resources.len()));
    }
    format!(
        "external engine reported {} (message {})",
        parts.join(", "),
        m.msg_id
    )
}

/// Applies a `deployment-logs` message (from `topic`).
pub async fn apply_log(
    app: &AppState,
    topic: &str,
    payload: &[u8],
) -> Result<Handled, ConsumeError> {
    let message = match messages::read_log(payload) {
        Ok(m) => m,
        Err(why) => return Ok(Handled::Malformed(why.0)),
    };
    let mut tx = app.store.begin().await?;
    if outbox::consumed(&mut tx, &message.msg_id).await? {
        return Ok(Handled::Duplicate);
    }
    match outbox::record_consumed(&mut tx, &message.msg_id, topic).await {
        Err(StoreError::Duplicate(_)) => return Ok(Handled::Duplicate),
        other => other?,
    }
    if deployments::get(&mut tx, message.deployment_id)
        .await?
        .is_none()
    {
        return Ok(Handled::Rejected(format!(
            "deployment {} does not exist",
            message.deployment_id
        )));
    }
    for line in &message.lines {
        logs::append(&mut tx, message.deployment_id, "kafka", &clip(line)).await?;
    }
    tx.commit().await?;
    Ok(Handled::Applied)
}

/// The group consumer of this process.
pub struct Consumer {
    app: AppState,
    consumer: StreamConsumer<KafkaLog>,
    status_topic: Option<String>,
}

impl Consumer {
    /// Joins the group and subscribes: the log topic always, the status topic with
    /// `ENGINE=external` (the built-in engine owns the statuses otherwise).
    pub fn new(app: AppState) -> Result<Self, MessagingError> {
        let k = &app.config.kafka;
        let session = k.session_timeout.as_millis().max(1);
        let consumer: StreamConsumer<KafkaLog> = client_config(k)
            .set("group.id", &k.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", session.to_string())
            .set("heartbeat.interval.ms", (session / 3).max(1).to_string())
            .create_with_context(KafkaLog)
            .map_err(|e| MessagingError::Client(e.to_string()))?;
        let status_topic =
            (app.config.engine.mode == EngineMode::External).then(|| k.topics.status.clone());
        let mut topics = vec![k.topics.logs.as_str()];
        if let Some(t) = &status_topic {
            topics.push(t.as_str());
        }
        consumer
            .subscribe(&topics)
            .map_err(|e| MessagingError::Client(e.to_string()))?;
        tracing::info!(kafka.group = %k.group_id, kafka.topics = ?topics, "Kafka consumer subscribed");
        Ok(Self {
            app: app.clone(),
            consumer,
            status_topic,
        })
    }

    async fn handle(&self, topic: &str, payload: &[u8]) -> Result<Handled, ConsumeError> {
        if self.status_topic.as_deref() == Some(topic) {
            apply_status(&self.app, topic, payload).await
        } else {
            apply_log(&self.app, topic, payload).await
        }
    }

    /// Consumes until `shutdown` is set. A message being retried when the shutdown
    /// comes is left uncommitted, so it is delivered again later.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let stats = self.app.messaging.stats();
        let mut receive_failures = 0u32;
        loop {
            let received = tokio::select! {
                r = self.consumer.recv() => r,
                _ = shutdown.changed() => break,
            };
            let message = match received {
                Ok(m) => {
                    receive_failures = 0;
                    m.detach()
                }
                Err(err) => {
                    receive_failures += 1;
                    if receive_failures == 1 {
                        tracing::warn!(error = %err, "the Kafka consumer cannot receive; retrying");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = shutdown.changed() => break,
                    }
                }
            };
            let (topic, partition, offset) =
                (message.topic(), message.partition(), message.offset());
            let payload = message.payload().unwrap_or_default();
            let mut delay = Duration::from_millis(200);
            let handled = loop {
                match self.handle(topic, payload).await {
                    Ok(handled) => break Some(handled),
                    Err(err) => {
                        tracing::warn!(kafka.topic = topic, kafka.partition = partition, kafka.offset = offset, error = %err, retry_in = ?delay, "cannot apply a consumed message; retrying it");
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            _ = shutdown.changed() => break None,
                        }
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
            };
            let Some(handled) = handled else { break };
            match &handled {
                Handled::Applied => {
                    Stats::add(&stats.applied, 1);
                    tracing::debug!(
                        kafka.topic = topic,
                        kafka.offset = offset,
                        "consumed message applied"
                    );
                }
                Handled::Duplicate => {
                    Stats::add(&stats.duplicates, 1);
                    tracing::info!(
                        kafka.topic = topic,
                        kafka.partition = partition,
                        kafka.offset = offset,
                        "consumed message already applied; skipped"
                    );
                }
                Handled::Malformed(why) => {
                    Stats::add(&stats.malformed, 1);
                    tracing::warn!(kafka.topic = topic, kafka.partition = partition, kafka.offset = offset, reason = %why, "skipping a malformed message");
                }
                Handled::Rejected(why) => {
                    Stats::add(&stats.rejected, 1);
                    tracing::warn!(kafka.topic = topic, kafka.partition = partition, kafka.offset = offset, reason = %why, "skipping a message that cannot be applied");
                }
            }
            let mut next = TopicPartitionList::new();
            let committed = next
                .add_partition_offset(topic, partition, Offset::Offset(offset + 1))
                .and_then(|()| self.consumer.commit(&next, CommitMode::Async));
            if let Err(err) = committed {
                // The message is applied; delivered again, it is a duplicate.
                tracing::warn!(kafka.topic = topic, kafka.offset = offset, error = %err, "cannot commit the consumer offset");
            }
        }
        tracing::info!("Kafka consumer stopped");
    }
}
