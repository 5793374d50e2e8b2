//! The Kafka side of the relay: an idempotent producer (`acks=all`,
//! `enable.idempotence`), the client settings shared with the consumer (TLS, SASL),
//! the health probe and the creation of missing topics.
//!
//! The producer is created once and shared: librdkafka keeps its own connections and
//! reconnects by itself, so a broker that goes away and comes back needs nothing from
//! us but patience. A delivery report arrives for every message within
//! `KAFKA_MESSAGE_TIMEOUT`, success or failure, so the relay never waits for ever.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::messages::topic_name;
use super::relay::Publisher;
use super::MessagingError;
use crate::config::{KafkaConfig, KafkaTopics};
use crate::store::outbox::OutboxMessage;

/// Sends librdkafka's own log lines to `tracing` (target `librdkafka`), at a level
/// that does not shout while a broker is merely restarting.
#[derive(Clone, Default)]
pub struct KafkaLog;

impl ClientContext for KafkaLog {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
                tracing::error!(target: "librdkafka", facility = fac, "{log_message}")
            }
            RDKafkaLogLevel::Error | RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility = fac, "{log_message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility = fac, "{log_message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", facility = fac, "{log_message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Connection failures are reported here over and over while a broker is
        // away; the relay and the consumer log what they could not do, once.
        tracing::debug!(target: "librdkafka", error = %error, "{reason}");
    }
}

impl ConsumerContext for KafkaLog {}

/// The settings every client needs: brokers, client id, TLS and SASL. Never log the
/// result: it holds passwords.
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("client.id", &kafka.client_name)
        // Come back quickly after a broker restart (librdkafka waits up to 10 s).
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "2000");
    let protocol = match (&kafka.ssl, &kafka.sasl) {
        (None, None) => "plaintext",
        (Some(_), None) => "ssl",
        (None, Some(_)) => "sasl_plaintext",
        (Some(_), Some(_)) => "sasl_ssl",
    };
    c.set("security.protocol", protocol);
    if let Some(ssl) = &kafka.ssl {
        if let Some(path) = &ssl.cacert {
            c.set("ssl.ca.location", path.display().to_string());
        }
        if let Some(path) = &ssl.cert {
            c.set("ssl.certificate.location", path.display().to_string());
        }
        if let Some(path) = &ssl.key {
            c.set("ssl.key.location", path.display().to_string());
        }
        if let Some(password) = &ssl.password {
            c.set("ssl.key.password", password.expose());
        }
        c.set(
            "ssl.endpoint.identification.algorithm",
            if ssl.check_hostname { "https" } else { "none" },
        );
    }
    if let Some(sasl) = &kafka.sasl {
        c.set("sasl.mechanism", &sasl.mechanism)
            .set("sasl.username", &sasl.username)
            .set("sasl.password", sasl.password.expose());
    }
    c
}

/// The relay's producer.
#[derive(Clone)]
pub struct KafkaProducer {
    /// Replaced after a fatal error: an idempotent producer that lost track of its
    /// sequence numbers refuses every later message.
    producer: Arc<RwLock<FutureProducer<KafkaLog>>>,
    topics: KafkaTopics,
    config: KafkaConfig,
    /// Rounds in a row in which every message failed.
    failed_rounds: Arc<AtomicU32>,
    /// When the current producer was made.
    born: Arc<std::sync::Mutex<std::time::Instant>>,
}

/// After this many rounds in a row in which every message failed, the producer is
/// replaced: an idempotent producer whose broker died with messages in flight and
/// came back without their state can time out every later message without ever
/// reporting a fatal error (seen with tansu restarted on memory storage). A producer
/// is given at least [`MIN_AGE`] (or three message timeouts) to connect first, so a
/// slow start is not mistaken for a stuck producer.
const STUCK_ROUNDS: u32 = 3;

/// See [`STUCK_ROUNDS`].
const MIN_AGE: Duration = Duration::from_secs(10);

fn create_producer(kafka: &KafkaConfig) -> Result<FutureProducer<KafkaLog>, MessagingError> {
    let timeout_ms = kafka.message_timeout.as_millis().max(1).to_string();
    client_config(kafka)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", &timeout_ms)
        .set("message.max.bytes", kafka.max_request_size.to_string())
        .set("linger.ms", "5")
        .create_with_context(KafkaLog)
        .map_err(|e| MessagingError::Client(e.to_string()))
}

impl KafkaProducer {
    /// An idempotent producer (it connects when first used).
    pub fn new(kafka: &KafkaConfig) -> Result<Self, MessagingError> {
        Ok(Self {
            producer: Arc::new(RwLock::new(create_producer(kafka)?)),
            topics: kafka.topics.clone(),
            config: kafka.clone(),
            failed_rounds: Arc::new(AtomicU32::new(0)),
            born: Arc::new(std::sync::Mutex::new(std::time::Instant::now())),
        })
    }

    fn current(&self) -> FutureProducer<KafkaLog> {
        match self.producer.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// How long the current producer has existed.
    fn age(&self) -> Duration {
        self.born
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// Replaces a producer that hit a fatal error, or that failed every message for
    /// [`STUCK_ROUNDS`] rounds in a row; later messages go through the new one.
    fn recover(&self) {
        let current = self.current();
        let why = match current.client().fatal_error() {
            Some((code, reason)) => format!("a fatal error ({code}: {reason})"),
            None if self.failed_rounds.load(Ordering::SeqCst) >= STUCK_ROUNDS
                && self.age() >= MIN_AGE.max(self.config.message_timeout * 3) =>
            {
                format!("every message failed {STUCK_ROUNDS} rounds in a row")
            }
            None => return,
        };
        drop(current);
        tracing::warn!(reason = %why, "replacing the Kafka producer");
        match create_producer(&self.config) {
            Ok(fresh) => {
                let old = match self.producer.write() {
                    Ok(mut p) => std::mem::replace(&mut *p, fresh),
                    Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), fresh),
                };
                self.failed_rounds.store(0, Ordering::SeqCst);
                *self.born.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
                // Dropping a producer waits for its queue: not on an async worker.
                tokio::task::spawn_blocking(move || drop(old));
            }
            Err(err) => tracing::error!(error = %err, "cannot create a new Kafka producer"),
        }
    }

    /// Whether the brokers answer a metadata request within `timeout`.
    pub async fn probe(&self, timeout: Duration) -> Result<(), String> {
        let producer = self.current();
        let asked = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        match asked.await {
            Ok(result) => result,
            Err(e) => Err(format!("the probe did not finish: {e}")),
        }
    }

    /// Creates the configured topics that do not exist yet (one partition, one
    /// replica), for `KAFKA_ALLOW_AUTO_CREATE_TOPICS`.
    pub async fn ensure_topics(&self) -> Result<(), String> {
        let admin: AdminClient<KafkaLog> = client_config(&self.config)
            .create_with_context(KafkaLog)
            .map_err(|e| e.to_string())?;
        let t = &self.topics;
        let names = [
            &t.create, &t.update, &t.delete, &t.action, &t.status, &t.logs,
        ];
        let new: Vec<NewTopic<'_>> = names
            .iter()
            .map(|name| NewTopic::new(name, 1, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(self.config.message_timeout));
        let results = admin
            .create_topics(&new, &options)
            .await
            .map_err(|e| e.to_string())?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(format!("topic {topic}: {code}")),
            }
        }
        Ok(())
    }

    /// Waits until queued messages are sent (shutdown).
    pub async fn flush(&self, timeout: Duration) {
        let producer = self.current();
        let _ = tokio::task::spawn_blocking(move || producer.flush(timeout)).await;
    }
}

#[async_trait]
impl Publisher for KafkaProducer {
    /// Queues every message at once (librdkafka batches them and keeps their order),
    /// then waits for each delivery report.
    async fn publish(&self, batch: &[OutboxMessage]) -> Vec<Result<(), String>> {
        self.recover();
        let producer = self.current();
        let mut pending = Vec::with_capacity(batch.len());
        for message in batch {
            let id = message.id.to_string();
            let payload = message.payload.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "message-id",
                    value: Some(id.as_str()),
                })
                .insert(Header {
                    key: "content-type",
                    value: Some("application/json"),
                });
            let record = FutureRecord::to(topic_name(&self.topics, &message.topic))
                .key(&message.key)
                .payload(&payload)
                .headers(headers);
            pending.push(match producer.send_result(record) {
                Ok(delivery) => Ok(delivery),
                Err((err, _)) => Err(err.to_string()),
            });
        }
        let mut results: Vec<Result<(), String>> = Vec::with_capacity(batch.len());
        for queued in pending {
            results.push(match queued {
                Err(err) => Err(err),
                Ok(delivery) => match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((err, _))) => Err(err.to_string()),
                    Err(_) => Err("the producer dropped the message".to_string()),
                },
            });
        }
        if !results.is_empty() && results.iter().all(Result::is_err) {
            self.failed_rounds.fetch_add(1, Ordering::SeqCst);
        } else {
            self.failed_rounds.store(0, Ordering::SeqCst);
        }
        results
    }

    fn describe(&self) -> &'static str {
        "Kafka"
    }
}
