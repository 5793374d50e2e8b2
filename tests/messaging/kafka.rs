//! Against a real Kafka-protocol broker (tansu on `TEST_KAFKA_BOOTSTRAP`): each test
//! has its own topics and consumer group.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use orchestrator::messaging::Stats;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use crate::common::service_var;
use crate::helpers::{spawn_app_with, AppOptions, TestApp, ALICE};
use crate::{deployment, submit, submit_with_token, template, unpublished, wait_for};

/// The broker, or `None` (with a notice) when tests may skip.
pub(crate) fn broker() -> Option<String> {
    service_var("TEST_KAFKA_BOOTSTRAP")
}

/// This test's topic names.
pub(crate) struct Topics {
    create: String,
    update: String,
    delete: String,
    action: String,
    status: String,
    logs: String,
}

impl Topics {
    fn all(&self) -> [&str; 6] {
        [
            &self.create,
            &self.update,
            &self.delete,
            &self.action,
            &self.status,
            &self.logs,
        ]
    }
}

/// Creates a set of topics for one test.
pub(crate) async fn topics(bootstrap: &str) -> Topics {
    let p = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
    let t = Topics {
        create: format!("{p}-create"),
        update: format!("{p}-update"),
        delete: format!("{p}-delete"),
        action: format!("{p}-action"),
        status: format!("{p}-status"),
        logs: format!("{p}-logs"),
    };
    create_topics(bootstrap, &t).await;
    t
}

/// Creates the topics of `t` on the broker at `bootstrap`.
async fn create_topics(bootstrap: &str, t: &Topics) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let new: Vec<NewTopic<'_>> = t
        .all()
        .iter()
        .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
        .collect();
    let results = admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

/// App options for Kafka on `bootstrap` with these topics and a fresh group.
pub(crate) fn kafka_options(bootstrap: &str, t: &Topics) -> AppOptions {
    AppOptions::default()
        .var("KAFKA_ENABLE", "true")
        .var("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
        .var("KAFKA_CREATE_DEP_TOPIC", &t.create)
        .var("KAFKA_UPDATE_DEP_TOPIC", &t.update)
        .var("KAFKA_DELETE_DEP_TOPIC", &t.delete)
        .var("KAFKA_DEP_ACTION_TOPIC", &t.action)
        .var("KAFKA_DEP_STATUS_TOPIC", &t.status)
        .var("KAFKA_DEP_LOGS_TOPIC", &t.logs)
        .var("KAFKA_GROUP_ID", &format!("g-{}", Uuid::new_v4().simple()))
        .var("KAFKA_SESSION_TIMEOUT", "6")
        .var("KAFKA_MESSAGE_TIMEOUT", "5")
        .var("KAFKA_RETRY_BACKOFF_MIN", "0.2")
        .var("KAFKA_RETRY_BACKOFF_MAX", "1")
        .var("OUTBOX_POLL_INTERVAL", "0.05")
}

/// Reads `topic` from the beginning (no group membership: assigned partition 0)
/// until `want` messages came and then `quiet` passed without another, or `limit`.
async fn read_topic(
    bootstrap: &str,
    topic: &str,
    want: usize,
    quiet: Duration,
    limit: Duration,
) -> Vec<OwnedMessage> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{}", Uuid::new_v4().simple()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let start = Instant::now();
    let mut out = Vec::new();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        let wait = if out.len() >= want {
            quiet.min(left)
        } else {
            left
        };
        if wait.is_zero() {
            break;
        }
        match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(Ok(m)) => out.push(m.detach()),
            Ok(Err(e)) => panic!("reading {topic}: {e}"),
            Err(_) => break,
        }
    }
    out
}

fn json_of(m: &OwnedMessage) -> Value {
    serde_json::from_slice(m.payload().expect("a payload")).expect("JSON encoded once")
}

fn key_of(m: &OwnedMessage) -> String {
    String::from_utf8(m.key().expect("a key").to_vec()).expect("utf-8 key")
}

fn header(m: &OwnedMessage, name: &str) -> Option<String> {
    let headers = m.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).to_string())
}

async fn send(bootstrap: &str, topic: &str, key: &str, payload: &[u8]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(10),
        )
        .await
        .expect("sent");
}

async fn wait_until_published(app: &TestApp, limit: Duration) {
    let start = Instant::now();
    while unpublished(app).await > 0 {
        assert!(
            start.elapsed() < limit,
            "the outbox still has {} messages after {limit:?}",
            unpublished(app).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_created_deployment_is_published_once_on_create_deployment_with_its_key_and_fields() {
    let Some(bootstrap) = broker() else { return };
    let t = topics(&bootstrap).await;
    let app =
        spawn_app_with(kafka_options(&bootstrap, &t).var("KAFKA_INCLUDE_ACCESS_TOKEN", "true"))
            .await
            .unwrap();
    let tpl = template(&app).await;
    let token = app.token(ALICE);
    let id = submit_with_token(&app, &tpl, &token).await;
    wait_until_published(&app, Duration::from_secs(30)).await;

    let messages = read_topic(
        &bootstrap,
        &t.create,
        1,
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(messages.len(), 1, "exactly one message");
    let m = &messages[0];
    assert_eq!(key_of(m), id);
    let p = json_of(m);
    assert!(p.is_object(), "an object, not a JSON string: {p}");
    for field in [
        "msg_version",
        "msg_id",
        "deployment_id",
        "timestamp",
        "template",
        "template_name",
        "template_inputs",
        "user_group",
        "user_group_issuer",
        "per_provider_max_retries",
        "max_providers",
        "timeout",
        "per_provider_timeout",
        "keep_last_attempt",
        "target_provider_name",
        "target_provider_type",
        "target_region_name",
        "owner_username",
        "owner_ssh_public_key",
    ] {
        assert!(p.get(field).is_some(), "{field} missing from {p}");
    }
    assert_eq!(p["msg_version"], "1.0.0");
    assert_eq!(p["deployment_id"], id);
    assert_eq!(p["template_name"], "engine_vm");
    assert_eq!(p["user_group"], "users");
    assert_eq!(p["owner_username"], ALICE);
    assert_eq!(p["timeout"], 14400);
    assert_eq!(p["access_token"], token);
    assert_eq!(header(m, "message-id").as_deref(), p["msg_id"].as_str());
    // A message with a token does not stay in the database once published.
    let mut conn = app.state.store.conn().await.unwrap();
    let msg_id = Uuid::parse_str(p["msg_id"].as_str().unwrap()).unwrap();
    assert!(orchestrator::store::outbox::get(&mut conn, msg_id)
        .await
        .unwrap()
        .is_none());
}

/// Forwards connections from `listener` to `target` (the broker "coming back").
async fn proxy(listener: TcpListener, target: String) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test]
async fn while_the_broker_is_away_the_api_answers_and_the_messages_arrive_once_after() {
    let Some(bootstrap) = broker() else { return };
    let t = topics(&bootstrap).await;
    // A port where nothing listens yet: the broker is "down".
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let away = format!("127.0.0.1:{port}");
    let app = spawn_app_with(
        kafka_options(&away, &t)
            .var("KAFKA_MESSAGE_TIMEOUT", "1")
            .var("ENGINE", "external"),
    )
    .await
    .unwrap();
    let tpl = template(&app).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(submit(&app, &tpl).await);
    }
    // The relay tried, failed, and kept every row.
    let start = Instant::now();
    while Stats::get(&app.state.messaging.stats().publish_failures) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no failed publication"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(unpublished(&app).await, 3);
    assert_eq!(Stats::get(&app.state.messaging.stats().published), 0);
    let health = app.get("/api/v1/health").await;
    assert_eq!(health.status(), 500);

    // The broker comes back on that address.
    let listener = TcpListener::bind(&away).await.unwrap();
    tokio::spawn(proxy(listener, bootstrap.clone()));
    wait_until_published(&app, Duration::from_secs(60)).await;

    let messages = read_topic(
        &bootstrap,
        &t.create,
        3,
        Duration::from_secs(3),
        Duration::from_secs(30),
    )
    .await;
    let keys: Vec<String> = messages.iter().map(key_of).collect();
    assert_eq!(keys.len(), 3, "each message once: {keys:?}");
    assert_eq!(
        keys.iter().collect::<HashSet<_>>(),
        ids.iter().collect::<HashSet<_>>()
    );
    let msg_ids: HashSet<String> = messages
        .iter()
        .map(|m| json_of(m)["msg_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(msg_ids.len(), 3);
    assert!(messages
        .iter()
        .all(|m| json_of(m).get("access_token").is_none()));
}

/// An app with `ENGINE=external` and a deployment it has published.
async fn external(bootstrap: &str) -> (TestApp, Topics, String) {
    let t = topics(bootstrap).await;
    let app = spawn_app_with(kafka_options(bootstrap, &t).var("ENGINE", "external"))
        .await
        .unwrap();
    let tpl = template(&app).await;
    let id = submit(&app, &tpl).await;
    (app, t, id)
}

#[tokio::test]
async fn with_an_external_engine_a_status_message_completes_the_deployment() {
    let Some(bootstrap) = broker() else { return };
    let (app, t, id) = external(&bootstrap).await;
    // The external engine reads the request...
    let request = read_topic(
        &bootstrap,
        &t.create,
        1,
        Duration::ZERO,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(request.len(), 1);
    assert_eq!(json_of(&request[0])["deployment_id"], id);
    // ...nothing moves by itself...
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        deployment(&app, &id).await["status_name"],
        "CREATE_IN_PROGRESS"
    );
    // ...and it answers.
    let status = json!({"msg_version": "1.0.0", "msg_id": Uuid::new_v4(), "deployment_id": id,
        "status": "CREATE_COMPLETE", "outputs": {"vm_ip": "10.0.0.7"},
        "target_provider": "backbone", "target_region": "cnaf",
        "resources": [{"tosca_node_name": "vm", "status": "STARTED", "im_vm_idx": "0"}]});
    send(&bootstrap, &t.status, &id, status.to_string().as_bytes()).await;
    let d = wait_for(&app, &id, Duration::from_secs(60), "CREATE_COMPLETE", |d| {
        d["status_name"] == "CREATE_COMPLETE"
    })
    .await;
    assert_eq!(d["template_outputs"]["vm_ip"], "10.0.0.7");
    assert_eq!(d["target_region"], "cnaf");
    assert_eq!(d["task_name"], "none");
    let resources: Value = app
        .get_as(ALICE, &format!("/api/v1/deployments/{id}/resources"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resources["data"][0]["status_name"], "STARTED");
    assert_eq!(resources["data"][0]["im_vm_idx"], "0");
    let mut conn = app.state.store.conn().await.unwrap();
    let jobs = orchestrator::store::jobs::active_of(&mut conn, Uuid::parse_str(&id).unwrap())
        .await
        .unwrap();
    assert!(jobs.is_empty(), "the create job is over: {jobs:?}");
    drop(conn);

    // Only the external engine knows what it made: a delete waits for it.
    let r = app
        .delete_as(ALICE, &format!("/api/v1/deployments/{id}"))
        .await;
    assert_eq!(r.status(), 202);
    let request = read_topic(
        &bootstrap,
        &t.delete,
        1,
        Duration::ZERO,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(request.len(), 1);
    assert_eq!(key_of(&request[0]), id);
    assert_eq!(json_of(&request[0])["target_provider_name"], "backbone");
    let status = json!({"msg_id": Uuid::new_v4(), "deployment_id": id, "status": "DELETE_COMPLETE",
        "resources": [{"tosca_node_name": "vm", "status": "DELETED"}]});
    send(&bootstrap, &t.status, &id, status.to_string().as_bytes()).await;
    wait_for(&app, &id, Duration::from_secs(60), "DELETE_COMPLETE", |d| {
        d["status_name"] == "DELETE_COMPLETE"
    })
    .await;
}

/// The orchestrator's log of a deployment as text.
async fn log_text(app: &TestApp, id: &str) -> String {
    let body: Value = app
        .get_as(ALICE, &format!("/api/v1/deployments/{id}/logs"))
        .await
        .json()
        .await
        .unwrap();
    body["orchestrator_logs"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_duplicate_status_message_is_applied_once() {
    let Some(bootstrap) = broker() else { return };
    let (app, t, id) = external(&bootstrap).await;
    let msg_id = Uuid::new_v4().to_string();
    let first = json!({"msg_id": msg_id, "deployment_id": id, "status": "CREATE_COMPLETE"});
    // Same id, other content: were it applied, the deployment would fail.
    let copy = json!({"msg_id": msg_id, "deployment_id": id, "status": "CREATE_FAILED"});
    let marker = json!({"msg_id": Uuid::new_v4(), "deployment_id": id, "outputs": {"marker": 1}});
    for m in [&first, &copy, &marker] {
        send(&bootstrap, &t.status, &id, m.to_string().as_bytes()).await;
    }
    let d = wait_for(&app, &id, Duration::from_secs(60), "marked", |d| {
        d["template_outputs"]["marker"] == 1
    })
    .await;
    assert_eq!(d["status_name"], "CREATE_COMPLETE");
    assert_eq!(Stats::get(&app.state.messaging.stats().duplicates), 1);
    let log = log_text(&app, &id).await;
    assert_eq!(
        log.matches(&format!("(message {msg_id})")).count(),
        1,
        "{log}"
    );
    assert!(!log.contains("CREATE_FAILED"), "{log}");
}

#[tokio::test]
async fn a_malformed_status_message_is_skipped_and_the_next_one_applied() {
    let Some(bootstrap) = broker() else { return };
    let (app, t, id) = external(&bootstrap).await;
    send(&bootstrap, &t.status, &id, b"this is not JSON").await;
    let bad = json!({"msg_id": Uuid::new_v4(), "deployment_id": id, "status": "ALMOST_DONE"});
    send(&bootstrap, &t.status, &id, bad.to_string().as_bytes()).await;
    let good = json!({"msg_id": Uuid::new_v4(), "deployment_id": id, "status": 1,
                      "status_reason": "no provider could host it"});
    send(&bootstrap, &t.status, &id, good.to_string().as_bytes()).await;
    let d = wait_for(&app, &id, Duration::from_secs(60), "CREATE_FAILED", |d| {
        d["status_name"] == "CREATE_FAILED"
    })
    .await;
    assert_eq!(d["status_reason"], "no provider could host it");
    assert_eq!(Stats::get(&app.state.messaging.stats().malformed), 2);
    assert_eq!(Stats::get(&app.state.messaging.stats().applied), 1);
}

#[tokio::test]
async fn lines_of_the_log_topic_arrive_in_the_deployment_logs() {
    let Some(bootstrap) = broker() else { return };
    let (app, t, id) = external(&bootstrap).await;
    let one = json!({"msg_version": "1.0.0", "msg_id": Uuid::new_v4(), "deployment_id": id,
                     "message": "provider backbone selected"});
    let two = json!({"msg_id": Uuid::new_v4(), "deployment_id": id,
                     "lines": ["IM infrastructure a5f3 created", "VM 0 running"]});
    send(&bootstrap, &t.logs, &id, one.to_string().as_bytes()).await;
    send(&bootstrap, &t.logs, &id, two.to_string().as_bytes()).await;
    let start = Instant::now();
    loop {
        let log = log_text(&app, &id).await;
        if log.contains("VM 0 running") {
            assert!(log.contains("[kafka] provider backbone selected"), "{log}");
            assert!(
                log.contains("[kafka] IM infrastructure a5f3 created"),
                "{log}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "log lines never arrived: {log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn health_reports_the_kafka_connection() {
    let Some(bootstrap) = broker() else { return };
    let t = topics(&bootstrap).await;
    let app = spawn_app_with(kafka_options(&bootstrap, &t)).await.unwrap();
    let r = app.get("/api/v1/health").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["kafka_connection"], "healthy", "{body}");

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let app = spawn_app_with(kafka_options(&closed, &t)).await.unwrap();
    let r = app.get("/api/v1/health").await;
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["kafka_connection"], "unhealthy", "{body}");
    assert!(body["details"].as_str().unwrap().contains("Kafka"));

    let app = spawn_app_with(AppOptions::default()).await.unwrap();
    let body: Value = app.get("/api/v1/health").await.json().await.unwrap();
    assert!(body.get("kafka_connection").is_none(), "{body}");
}

/// A broker of this test's own (tansu, memory storage) on `addr`, killed on drop.
struct OwnBroker(tokio::process::Child);

impl OwnBroker {
    /// Starts tansu on `addr` and waits until it listens (retrying while the port of
    /// a broker killed a moment ago is still held).
    async fn start(bin: &str, addr: &str) -> OwnBroker {
        let start = Instant::now();
        loop {
            let url = format!("tcp://{addr}");
            let mut child = tokio::process::Command::new(bin)
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                ])
                .args(["--storage-engine", "memory://tansu/"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("tansu starts");
            while start.elapsed() < Duration::from_secs(30) {
                if TcpStream::connect(addr).await.is_ok() {
                    return OwnBroker(child);
                }
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "tansu does not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.0.kill().await;
    }
}

#[tokio::test]
async fn a_broker_that_dies_under_a_connected_relay_gets_the_messages_once_when_back() {
    let (Some(_), Some(bin)) = (broker(), service_var("TANSU_BIN")) else {
        return;
    };
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let first_broker = OwnBroker::start(&bin, &addr).await;
    let t = topics(&addr).await;
    let app = spawn_app_with(
        kafka_options(&addr, &t)
            .var("KAFKA_MESSAGE_TIMEOUT", "5")
            .var("ENGINE", "external"),
    )
    .await
    .unwrap();
    let tpl = template(&app).await;
    submit(&app, &tpl).await;
    // The relay is connected and has published.
    wait_until_published(&app, Duration::from_secs(30)).await;
    let failures_before = Stats::get(&app.state.messaging.stats().publish_failures);

    first_broker.stop().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(submit(&app, &tpl).await);
    }
    let start = Instant::now();
    while Stats::get(&app.state.messaging.stats().publish_failures) < failures_before + 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no failed publication"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(unpublished(&app).await, 2, "the rows are kept");

    // Back on the same address, empty (memory storage): the producer meets a broker
    // that knows nothing of its idempotence state, and must recover on its own.
    let _second_broker = OwnBroker::start(&bin, &addr).await;
    create_topics(&addr, &t).await;
    wait_until_published(&app, Duration::from_secs(60)).await;
    let messages = read_topic(
        &addr,
        &t.create,
        2,
        Duration::from_secs(3),
        Duration::from_secs(30),
    )
    .await;
    let keys: Vec<String> = messages.iter().map(key_of).collect();
    assert_eq!(keys.len(), 2, "each message once: {keys:?}");
    assert_eq!(
        keys.iter().collect::<HashSet<_>>(),
        ids.iter().collect::<HashSet<_>>()
    );
}
