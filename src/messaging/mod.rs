//! Messaging (DESIGN.md §6, docs/messages.md): what the orchestrator tells the rest of
//! the DataCloud, and what an external engine tells it.
//!
//! The API never talks to Kafka. A change that others must hear about writes a row of
//! `outbox` in the same transaction as the change itself ([`messages`] builds the
//! payload), so a committed change always has its message and a rolled-back one never
//! has. The [`relay`] publishes those rows afterwards: to Kafka with an idempotent
//! producer ([`producer`]) when `KAFKA_ENABLE` is set, otherwise to subscribers in
//! this process; either way a row is marked published only once delivered, and pruned
//! later. The [`consumer`] reads `deployment-status` (with `ENGINE=external`) and the
//! log topic, and applies each message once, in a transaction that also records the
//! message id; the offset is committed only after that transaction.
//!
//! [`Messaging`] is the handle kept in the shared state: the Kafka producer (shared by
//! the relay and the health probe), the in-process bus and the counters.

pub mod consumer;
pub mod messages;
pub mod producer;
pub mod relay;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::config::Config;

/// A message delivered in-process (no Kafka). The payload may carry an access token,
/// so `Debug` leaves it out.
#[derive(Clone)]
pub struct Delivered {
    /// The message id.
    pub id: Uuid,
    /// The logical topic (`create-deployment`...).
    pub topic: String,
    /// The deployment id.
    pub key: String,
    /// The message as it would be published.
    pub payload: Arc<Value>,
}

impl std::fmt::Debug for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivered")
            .field("id", &self.id)
            .field("topic", &self.topic)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Counters of the relay and the consumers, for tests and diagnostics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages the relay delivered (broker acknowledged, or handed over in-process).
    pub published: AtomicU64,
    /// Failed publication attempts (each is retried after a backoff).
    pub publish_failures: AtomicU64,
    /// Consumed messages applied to the database.
    pub applied: AtomicU64,
    /// Consumed messages whose id had already been applied.
    pub duplicates: AtomicU64,
    /// Consumed messages that could not be read (not JSON, missing or invalid
    /// fields): logged and skipped.
    pub malformed: AtomicU64,
    /// Well-formed consumed messages that could not be applied (unknown deployment,
    /// a deleted one): logged and skipped.
    pub rejected: AtomicU64,
}

impl Stats {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Failures setting messaging up (a bad Kafka client setting).
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    /// librdkafka refused the configuration.
    #[error("cannot create the Kafka client: {0}")]
    Client(String),
}

/// The messaging handle of the shared state.
#[derive(Clone)]
pub struct Messaging {
    inner: Arc<Inner>,
}

struct Inner {
    kafka: Option<producer::KafkaProducer>,
    bus: broadcast::Sender<Delivered>,
    stats: Stats,
}

impl Messaging {
    /// The Kafka producer when `KAFKA_ENABLE` is set (it connects lazily), and the
    /// in-process bus.
    pub fn new(config: &Config) -> Result<Self, MessagingError> {
        let kafka = if config.kafka.enabled {
            Some(producer::KafkaProducer::new(&config.kafka)?)
        } else {
            None
        };
        let (bus, _) = broadcast::channel(1024);
        Ok(Self {
            inner: Arc::new(Inner {
                kafka,
                bus,
                stats: Stats::default(),
            }),
        })
    }

    /// The Kafka producer, when Kafka is enabled.
    pub fn kafka(&self) -> Option<&producer::KafkaProducer> {
        self.inner.kafka.as_ref()
    }

    /// Messages delivered in-process from now on (without Kafka).
    pub fn subscribe(&self) -> broadcast::Receiver<Delivered> {
        self.inner.bus.subscribe()
    }

    pub(crate) fn bus(&self) -> &broadcast::Sender<Delivered> {
        &self.inner.bus
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Whether the brokers answer within `timeout`; `None` without Kafka.
    pub async fn probe(&self, timeout: Duration) -> Option<Result<(), String>> {
        match &self.inner.kafka {
            Some(kafka) => Some(kafka.probe(timeout).await),
            None => None,
        }
    }
}

/// Starts the relay and, with Kafka, the consumer of a `serve` or `worker` process;
/// they stop when `shutdown` is set, and the returned task ends after them.
pub fn spawn(
    app: crate::state::AppState,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Some(kafka) = app.messaging.kafka() {
            if app.config.kafka.allow_auto_create_topics {
                match kafka.ensure_topics().await {
                    Ok(()) => tracing::info!("Kafka topics are in place"),
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot create the Kafka topics (KAFKA_ALLOW_AUTO_CREATE_TOPICS)")
                    }
                }
            }
        }
        let relay = tokio::spawn(Arc::new(relay::Relay::new(app.clone())).run(shutdown.clone()));
        let consumer = if app.config.kafka.enabled {
            match consumer::Consumer::new(app.clone()) {
                Ok(c) => Some(tokio::spawn(c.run(shutdown.clone()))),
                Err(err) => {
                    tracing::error!(error = %err, "cannot start the Kafka consumer; status and log messages are not read");
                    None
                }
            }
        } else {
            None
        };
        let _ = relay.await;
        if let Some(consumer) = consumer {
            let _ = consumer.await;
        }
    })
}
