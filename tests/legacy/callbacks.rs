//! Callbacks: a deployment created with a `callback` URL is POSTed its legacy JSON
//! when it reaches a final status, once per final state, retried when the receiver
//! fails, and abandoned after `LEGACY_CALLBACK_RETRIES`; in-progress states are not
//! announced.

use std::time::Duration;

use serde_json::json;

use crate::helpers::ALICE;
use crate::{app_with, create_body, Legacy, Sink, LEGACY_VM};
use orchestrator::domain::{DeploymentStatus, Task};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_status_is_posted_once_to_the_callback() {
    let sink = Sink::start(0).await;
    let (app, _dir) = app_with(&[], &[]).await;
    let l = Legacy::new(&app);
    let mut body = create_body(LEGACY_VM, json!({}));
    body["callback"] = json!(sink.url);
    let d = l.create(ALICE, &body).await;
    let id = d["uuid"].as_str().unwrap().to_string();
    // CREATE_IN_PROGRESS is not announced.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.received.lock().unwrap().is_empty());
    app.alter(&id, |d| {
        d.status = DeploymentStatus::CreateFailed;
        d.status_reason = Some("No cloud provider meets the deployment requirements".into());
        d.task = Task::None;
    })
    .await;
    let posted = sink.wait_for(|b| b["uuid"] == id.as_str()).await;
    assert_eq!(posted["status"], "CREATE_FAILED");
    assert_eq!(
        posted["statusReason"],
        "No cloud provider meets the deployment requirements"
    );
    assert_eq!(posted["callback"], sink.url.as_str());
    assert!(posted["links"][0]["href"]
        .as_str()
        .unwrap()
        .contains(&format!("/orchestrator/deployments/{id}")));
    // Once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received.lock().unwrap().len(), 1);
    // A later final state is announced again.
    app.alter(&id, |d| d.status = DeploymentStatus::DeleteComplete)
        .await;
    sink.wait_for(|b| b["status"] == "DELETE_COMPLETE").await;
    assert_eq!(sink.received.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_callback_is_retried_and_then_abandoned() {
    let sink = Sink::start(2).await;
    let (app, _dir) = app_with(
        &[],
        &[
            ("LEGACY_CALLBACK_RETRIES", "3"),
            ("LEGACY_CALLBACK_POLL", "0.02"),
        ],
    )
    .await;
    let l = Legacy::new(&app);
    let mut body = create_body(LEGACY_VM, json!({}));
    body["callback"] = json!(sink.url);
    let d = l.create(ALICE, &body).await;
    let id = d["uuid"].as_str().unwrap().to_string();
    app.set_status(&id, DeploymentStatus::CreateComplete).await;
    let posted = sink.wait_for(|b| b["uuid"] == id.as_str()).await;
    assert_eq!(posted["status"], "CREATE_COMPLETE");
    // The sink answered before the notifier recorded it: wait for the record.
    let start = std::time::Instant::now();
    loop {
        let mut conn = app.state.store.conn().await.unwrap();
        let state = orchestrator::store::callbacks::state_of(&mut conn, id.parse().unwrap())
            .await
            .unwrap();
        if let Some((_, attempts, true, _)) = state {
            assert_eq!(attempts, 2);
            break;
        }
        assert!(
            start.elapsed() < crate::LIMIT,
            "not recorded as delivered: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // A receiver that never answers well: given up after 3 attempts.
    let (app, _dir) = app_with(
        &[],
        &[
            ("LEGACY_CALLBACK_RETRIES", "3"),
            ("LEGACY_CALLBACK_POLL", "0.02"),
        ],
    )
    .await;
    let l = Legacy::new(&app);
    let mut body = create_body(LEGACY_VM, json!({}));
    body["callback"] = json!("http://127.0.0.1:9/unreachable");
    let d = l.create(ALICE, &body).await;
    let id = d["uuid"].as_str().unwrap().to_string();
    app.set_status(&id, DeploymentStatus::CreateFailed).await;
    let start = std::time::Instant::now();
    loop {
        let mut conn = app.state.store.conn().await.unwrap();
        let state = orchestrator::store::callbacks::state_of(&mut conn, id.parse().unwrap())
            .await
            .unwrap();
        if let Some((_, attempts, true, error)) = state {
            assert_eq!(attempts, 3);
            assert!(error.unwrap_or_default().contains("could not be reached"));
            break;
        }
        assert!(start.elapsed() < crate::LIMIT, "not abandoned: {state:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
