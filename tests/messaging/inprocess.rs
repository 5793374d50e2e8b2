//! Without Kafka: the outbox delivered in-process and pruned, the relay's retries,
//! `ENGINE=external` deletes, and the status and log handlers applied directly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orchestrator::messaging::consumer::{apply_log, apply_status, Handled};
use orchestrator::messaging::relay::{Publisher, Relay, RelayOutcome};
use orchestrator::messaging::{messages, Stats};
use orchestrator::store::outbox::{self, OutboxMessage};
use orchestrator::store::{jobs, logs};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app_with, AppOptions, ALICE};
use crate::{bare_state, deployment, submit, template, unpublished, wait_for};

#[tokio::test]
async fn without_kafka_the_outbox_is_delivered_in_process_and_pruned() {
    let app = spawn_app_with(AppOptions::default().var("OUTBOX_RETENTION", "0.2"))
        .await
        .unwrap();
    let mut bus = app.state.messaging.subscribe();
    let t = template(&app).await;
    let id = submit(&app, &t).await;
    let delivered = tokio::time::timeout(Duration::from_secs(10), bus.recv())
        .await
        .expect("a message within 10 s")
        .expect("the bus is open");
    assert_eq!(delivered.topic, messages::CREATE_DEPLOYMENT);
    assert_eq!(delivered.key, id);
    assert_eq!(delivered.payload["deployment_id"], id);
    assert_eq!(delivered.payload["msg_id"], delivered.id.to_string());
    assert!(delivered.payload.get("access_token").is_none());
    // Marked published right after the hand-over.
    let start = std::time::Instant::now();
    while unpublished(&app).await > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never marked published"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    Relay::new(app.state.clone()).prune().await.unwrap();
    let mut conn = app.state.store.conn().await.unwrap();
    assert!(outbox::get(&mut conn, delivered.id)
        .await
        .unwrap()
        .is_none());
}

/// A publisher that fails its first `failures` batches.
struct Flaky {
    failures: usize,
    calls: AtomicUsize,
    seen: std::sync::Mutex<Vec<Uuid>>,
}

#[async_trait]
impl Publisher for Flaky {
    async fn publish(&self, batch: &[OutboxMessage]) -> Vec<Result<(), String>> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        batch
            .iter()
            .map(|m| {
                if call < self.failures {
                    Err("Local: Broker transport failure".to_string())
                } else {
                    if let Ok(mut seen) = self.seen.lock() {
                        seen.push(m.id);
                    }
                    Ok(())
                }
            })
            .collect()
    }

    fn describe(&self) -> &'static str {
        "flaky"
    }
}

#[tokio::test]
async fn a_failed_publication_stays_in_the_outbox_and_is_retried_after_a_backoff() {
    let (state, _db, _dir) = bare_state(HashMap::from([
        ("KAFKA_RETRY_BACKOFF_MIN".into(), "0.2".into()),
        ("KAFKA_RETRY_BACKOFF_MAX".into(), "0.4".into()),
    ]))
    .await;
    let mut tx = state.store.begin().await.unwrap();
    let a = outbox::push(&mut tx, "create-deployment", "d1", &json!({"n": 1}))
        .await
        .unwrap();
    // Another deployment's: a message waits for the older ones of its own key.
    let b = outbox::push(&mut tx, "delete-deployment", "d2", &json!({"n": 2}))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let flaky = Arc::new(Flaky {
        failures: 2,
        calls: AtomicUsize::new(0),
        seen: Default::default(),
    });
    let relay = Relay::with_publisher(state.clone(), flaky.clone());
    assert_eq!(
        relay.run_once().await.unwrap(),
        RelayOutcome::Delivered {
            published: 0,
            failed: 2
        }
    );
    // Backing off: nothing is due yet, and the rows are kept.
    assert_eq!(relay.run_once().await.unwrap(), RelayOutcome::Idle);
    let mut conn = state.store.conn().await.unwrap();
    assert_eq!(outbox::unpublished(&mut conn).await.unwrap(), 2);
    drop(conn);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(matches!(
        relay.run_once().await.unwrap(),
        RelayOutcome::Delivered { failed: 2, .. }
    ));
    // The second backoff is longer (doubled).
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(relay.run_once().await.unwrap(), RelayOutcome::Idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        relay.run_once().await.unwrap(),
        RelayOutcome::Delivered {
            published: 2,
            failed: 0
        }
    );
    assert_eq!(*flaky.seen.lock().unwrap(), [a, b]);
    assert_eq!(relay.run_once().await.unwrap(), RelayOutcome::Idle);
    let stats = state.messaging.stats();
    assert_eq!(Stats::get(&stats.published), 2);
    assert_eq!(Stats::get(&stats.publish_failures), 4);

    // A second relay stands by while the first holds the lease.
    let other = Relay::with_publisher(state.clone(), flaky.clone());
    assert_eq!(other.run_once().await.unwrap(), RelayOutcome::Standby);
}

#[tokio::test]
async fn with_an_external_engine_a_delete_is_published_and_ended_by_its_status() {
    let app = spawn_app_with(AppOptions::default().var("ENGINE", "external"))
        .await
        .unwrap();
    let mut bus = app.state.messaging.subscribe();
    let t = template(&app).await;
    let id = submit(&app, &t).await;
    // The engine made an infrastructure and said so.
    let created = json!({"msg_id": Uuid::new_v4(), "deployment_id": id, "status": "CREATE_COMPLETE",
                         "im_infra_id": "infra-1"});
    let handled = apply_status(
        &app.state,
        "deployment-status",
        created.to_string().as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(handled, Handled::Applied);
    let r = app
        .delete_as(ALICE, &format!("/api/v1/deployments/{id}"))
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        deployment(&app, &id).await["status_name"],
        "DELETE_IN_PROGRESS"
    );
    let mut topics = Vec::new();
    while topics.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(10), bus.recv())
            .await
            .expect("two messages")
            .expect("bus open");
        assert_eq!(m.key, id);
        topics.push(m.topic.clone());
        if m.topic == messages::DELETE_DEPLOYMENT {
            assert_eq!(m.payload["force"], false);
            assert_eq!(m.payload["im_infra_id"], "infra-1");
            assert!(m.payload["requested_by"].is_string());
        }
    }
    assert_eq!(
        topics,
        [messages::CREATE_DEPLOYMENT, messages::DELETE_DEPLOYMENT]
    );

    // The engine reports the end: the deployment and its jobs are done.
    let status = json!({"msg_id": Uuid::new_v4(), "deployment_id": id, "status": "DELETE_COMPLETE",
                        "resources": [{"tosca_node_name": "vm", "status": "DELETED"}]});
    let handled = apply_status(
        &app.state,
        "deployment-status",
        status.to_string().as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(handled, Handled::Applied);
    wait_for(&app, &id, Duration::from_secs(5), "DELETE_COMPLETE", |d| {
        d["status_name"] == "DELETE_COMPLETE"
    })
    .await;
    let mut conn = app.state.store.conn().await.unwrap();
    let dep = Uuid::parse_str(&id).unwrap();
    assert!(jobs::active_of(&mut conn, dep).await.unwrap().is_empty());
}

#[tokio::test]
async fn status_messages_are_applied_once_and_bad_ones_are_told_apart() {
    let app = spawn_app_with(AppOptions::default().var("ENGINE", "external"))
        .await
        .unwrap();
    let t = template(&app).await;
    let id = submit(&app, &t).await;
    let msg_id = Uuid::new_v4().to_string();
    let complete = json!({"msg_version": "1.0.0", "msg_id": msg_id, "deployment_id": id,
        "status": 0, "outputs": {"vm_ip": "10.0.0.7"}, "target_provider": "backbone",
        "im_infra_id": "infra-1",
        "resources": [{"tosca_node_name": "vm", "status": "STARTED", "im_vm_idx": "0",
                       "metadata": {"VirtualMachineInfo": {"vmProperties": []}}}]});
    let apply = |v: &Value| v.to_string().into_bytes();
    assert_eq!(
        apply_status(&app.state, "s", &apply(&complete))
            .await
            .unwrap(),
        Handled::Applied
    );
    let mut again = complete.clone();
    again["status"] = json!("CREATE_FAILED");
    assert_eq!(
        apply_status(&app.state, "s", &apply(&again)).await.unwrap(),
        Handled::Duplicate
    );
    let d = deployment(&app, &id).await;
    assert_eq!(d["status_name"], "CREATE_COMPLETE");
    assert_eq!(d["template_outputs"]["vm_ip"], "10.0.0.7");
    assert_eq!(d["target_provider"], "backbone");
    assert_eq!(d["im_infra_id"], "infra-1");
    let resources: Value = app
        .get_as(ALICE, &format!("/api/v1/deployments/{id}/resources"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resources["data"][0]["status_name"], "STARTED");

    let malformed = apply_status(&app.state, "s", b"{not json").await.unwrap();
    assert!(matches!(malformed, Handled::Malformed(_)), "{malformed:?}");
    let unknown = json!({"msg_id": Uuid::new_v4(), "deployment_id": Uuid::new_v4(), "status": 0});
    let rejected = apply_status(&app.state, "s", &apply(&unknown))
        .await
        .unwrap();
    assert!(matches!(rejected, Handled::Rejected(_)), "{rejected:?}");

    let line = json!({"msg_id": Uuid::new_v4(), "deployment_id": id, "lines": ["ansible: ok=3"]});
    assert_eq!(
        apply_log(&app.state, "l", &apply(&line)).await.unwrap(),
        Handled::Applied
    );
    assert_eq!(
        apply_log(&app.state, "l", &apply(&line)).await.unwrap(),
        Handled::Duplicate
    );
    let mut conn = app.state.store.conn().await.unwrap();
    let lines = logs::lines(&mut conn, Uuid::parse_str(&id).unwrap())
        .await
        .unwrap();
    let from_kafka: Vec<_> = lines.iter().filter(|l| l.source == "kafka").collect();
    assert_eq!(from_kafka.len(), 2, "{from_kafka:?}");
    assert!(from_kafka[0].message.contains(&msg_id));
    assert_eq!(from_kafka[1].message, "ansible: ok=3");
}
