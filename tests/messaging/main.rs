//! Messaging end to end: the outbox and its relay, in-process and to a real
//! Kafka-protocol broker (tansu, `TEST_KAFKA_BOOTSTRAP`, started by
//! `scripts/services/kafka.sh`), the status and log consumers, `ENGINE=external` and
//! the health report. Every broker test uses its own topics and consumer groups, so
//! the tests run side by side on one broker.

#[path = "../common/mod.rs"]
mod common;
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

mod bench;
mod inprocess;
mod kafka;
mod outbox;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use helpers::{TestApp, ALICE};
use serde_json::{json, Value};

pub const ENGINE_VM: &str = include_str!("../fixtures/engine_vm.yaml");

/// Registers the test template as ALICE; returns its id.
pub async fn template(app: &TestApp) -> String {
    let r = app
        .post_as(ALICE, "/api/v1/templates", &json!({"content": ENGINE_VM}))
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let body: Value = r.json().await.expect("json");
    body["id"].as_str().expect("id").to_string()
}

/// Submits a deployment of `template` as ALICE with this bearer token; returns its id.
pub async fn submit_with_token(app: &TestApp, template: &str, token: &str) -> String {
    let r = app
        .client
        .post(app.url("/api/v1/deployments"))
        .bearer_auth(token)
        .json(&json!({"template_id": template, "user_group": "users", "template_inputs": {}}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let body: Value = r.json().await.expect("json");
    body["id"].as_str().expect("id").to_string()
}

/// Submits a deployment of `template` as ALICE; returns its id.
pub async fn submit(app: &TestApp, template: &str) -> String {
    submit_with_token(app, template, &app.token(ALICE)).await
}

pub async fn deployment(app: &TestApp, id: &str) -> Value {
    app.get_as(ALICE, &format!("/api/v1/deployments/{id}"))
        .await
        .json()
        .await
        .expect("deployment")
}

/// Waits until `check` holds for the deployment, or panics after `limit`.
pub async fn wait_for(
    app: &TestApp,
    id: &str,
    limit: Duration,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let d = deployment(app, id).await;
        if check(&d) {
            return d;
        }
        assert!(
            start.elapsed() < limit,
            "deployment {id} never became {what} within {limit:?}: {d}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Messages waiting in the app's outbox.
pub async fn unpublished(app: &TestApp) -> i64 {
    let mut conn = app.state.store.conn().await.expect("conn");
    orchestrator::store::outbox::unpublished(&mut conn)
        .await
        .expect("count")
}

/// The state alone (database migrated, messaging built), without the API and its
/// background relay, so a test drives `Relay::run_once` itself.
pub async fn bare_state(
    vars: HashMap<String, String>,
) -> (
    orchestrator::state::AppState,
    common::TestDb,
    tempfile::TempDir,
) {
    let db = common::TestDb::new(common::DbKind::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut all: HashMap<String, String> = HashMap::from([
        ("DB_URL".into(), db.url.clone()),
        ("DATA_DIR".into(), dir.path().display().to_string()),
        ("LOG_LEVEL".into(), "warn".into()),
    ]);
    all.extend(vars);
    let config = orchestrator::config::Config::from_sources(all, None).unwrap();
    let state = orchestrator::app::build_state(config).await.unwrap();
    (state, db, dir)
}
