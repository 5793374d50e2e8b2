//! The logs API (issue 5, item 6): IM's log and the orchestrator's own lines (who did
//! what, when) at `/deployments/{id}/logs` and at the spec's `/deployment/{id}/logs`,
//! their deletion by administrators, and their survival after the deployment's.

use serde_json::{json, Value};

use orchestrator::store::deployments;

use crate::helpers::{
    assert_timestamp, error_body, locs, on_sqlite_and_postgres, TestApp, ADMIN, ALICE, BOB,
};

const PATHS: [&str; 2] = ["/api/v1/deployments", "/api/v1/deployment"];

async fn set_im_logs(app: &TestApp, id: &str, text: &str) {
    let mut tx = app.state.store.begin().await.unwrap();
    deployments::set_im_logs(&mut tx, id.parse().unwrap(), Some(text))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn orchestrator_lines(logs: &Value) -> Vec<String> {
    logs["orchestrator_logs"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

on_sqlite_and_postgres! {
    async fn logs_are_read_at_both_paths(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        set_im_logs(&app, &id, "Contextualization started\nTask 1 done\n").await;
        for base in PATHS {
            let logs = app.get_json(ALICE, &format!("{base}/{id}/logs")).await;
            let mut keys: Vec<&str> = logs.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["im_logs", "orchestrator_logs", "timestamp"]);
            assert_timestamp(&logs["timestamp"]);
            assert_eq!(logs["im_logs"], "Contextualization started\nTask 1 done\n");
            let lines = orchestrator_lines(&logs);
            assert_eq!(lines.len(), 1, "{lines:?}");
            assert!(lines[0].contains("[api]") && lines[0].contains("submitted by alice"), "{lines:?}");
            assert!(lines[0].contains("beta-testers"), "{lines:?}");
        }
        // The trailing slash is tolerated like everywhere under /api/v1.
        assert_eq!(app.get_as(ALICE, &format!("/api/v1/deployments/{id}/logs/")).await.status(), 200);
    }

    async fn the_timestamp_is_the_newest_line(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        let first = app.get_json(ALICE, &format!("/api/v1/deployments/{id}/logs")).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let again = app.get_json(ALICE, &format!("/api/v1/deployments/{id}/logs")).await;
        assert_eq!(first["timestamp"], again["timestamp"]);
        assert_eq!(app.post_empty_as(ALICE, &format!("/api/v1/deployments/{id}/reset-status")).await.status(), 204);
        let after = app.get_json(ALICE, &format!("/api/v1/deployments/{id}/logs")).await;
        assert!(after["timestamp"].as_str() > first["timestamp"].as_str(), "{after}");
    }

    async fn api_actions_append_lines_naming_who_did_what(app: TestApp) {
        let bob = app.user_id(BOB).await;
        let (_, id) = app.alice_deployment().await;
        let path = format!("/api/v1/deployments/{id}");
        assert_eq!(app.post_empty_as(ALICE, &format!("{path}/reset-status")).await.status(), 204);
        assert_eq!(app.post_as(ALICE, &format!("{path}/owners"), &json!({"id": bob})).await.status(), 204);
        assert_eq!(app.patch_as(ADMIN, &path, &json!({"user_group": "users"})).await.status(), 204);
        assert_eq!(app.delete_as(BOB, &path).await.status(), 204);
        let lines = orchestrator_lines(&app.get_json(ADMIN, &format!("{path}/logs")).await);
        assert_eq!(lines.len(), 5, "{lines:?}");
        for (line, words) in lines.iter().zip([
            ["submitted", "alice"],
            ["reset", "alice"],
            ["added", "alice"],
            ["renamed", "administrator root"],
            ["deleted", "bob"],
        ]) {
            assert!(words.iter().all(|w| line.contains(w)), "{line} names {words:?}");
        }
    }

    async fn logs_follow_the_visibility_of_their_deployment(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        for base in PATHS {
            let body = error_body(app.get_as(BOB, &format!("{base}/{id}/logs")).await, 404).await;
            assert!(body["detail"].as_str().unwrap().contains(&id));
            assert!(orchestrator_lines(&app.get_json(ADMIN, &format!("{base}/{id}/logs")).await).len() == 1);
            error_body(app.get_as(ALICE, &format!("{base}/{}/logs", uuid::Uuid::new_v4())).await, 404).await;
            let body = error_body(app.get_as(ALICE, &format!("{base}/nope/logs")).await, 422).await;
            assert_eq!(locs(&body), ["/path/id"]);
            error_body(app.get(&format!("{base}/{id}/logs")).await, 401).await;
        }
    }

    async fn only_administrators_delete_logs_at_either_path(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        set_im_logs(&app, &id, "IM says hello").await;
        for base in PATHS {
            let body = error_body(app.delete_as(ALICE, &format!("{base}/{id}/logs")).await, 403).await;
            assert!(body["detail"].as_str().unwrap().contains("administrators"), "{body}");
            error_body(app.delete_as(BOB, &format!("{base}/{id}/logs")).await, 403).await;
        }
        let logs = app.get_json(ALICE, &format!("/api/v1/deployments/{id}/logs")).await;
        assert_eq!(logs["im_logs"], "IM says hello");
        assert_eq!(orchestrator_lines(&logs).len(), 1);

        assert_eq!(app.delete_as(ADMIN, &format!("/api/v1/deployments/{id}/logs")).await.status(), 204);
        let logs = app.get_json(ALICE, &format!("/api/v1/deployments/{id}/logs")).await;
        assert_eq!(logs["im_logs"], Value::Null);
        assert_eq!(logs["orchestrator_logs"], Value::Null);
        assert_timestamp(&logs["timestamp"]);

        assert_eq!(app.post_empty_as(ALICE, &format!("/api/v1/deployments/{id}/reset-status")).await.status(), 204);
        assert_eq!(app.delete_as(ADMIN, &format!("/api/v1/deployment/{id}/logs")).await.status(), 204);
        assert_eq!(app.get_json(ALICE, &format!("/api/v1/deployment/{id}/logs")).await["orchestrator_logs"], Value::Null);
        // Deleting logs leaves the deployment alone.
        assert_eq!(app.deployment(ALICE, &id).await["status_name"], "CREATE_FAILED");
        error_body(app.delete_as(ADMIN, &format!("/api/v1/deployments/{}/logs", uuid::Uuid::new_v4())).await, 404).await;
    }

    async fn logs_are_kept_after_the_deployment_is_deleted(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        assert_eq!(app.delete_as(ALICE, &format!("/api/v1/deployments/{id}")).await.status(), 204);
        let lines = orchestrator_lines(&app.get_json(ALICE, &format!("/api/v1/deployments/{id}/logs")).await);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].contains("deleted by alice"), "{lines:?}");
    }

    async fn logs_of_a_force_removed_deployment_stay_with_the_administrators(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        assert_eq!(app.delete_as(ADMIN, &format!("/api/v1/deployments/{id}?force=true")).await.status(), 204);
        assert_eq!(app.count("deployment_logs").await, 2);
        for base in PATHS {
            let logs = app.get_json(ADMIN, &format!("{base}/{id}/logs")).await;
            let lines = orchestrator_lines(&logs);
            assert_eq!(lines.len(), 2, "{lines:?}");
            assert!(lines[1].contains("removed from the database (force)"), "{lines:?}");
            assert_eq!(logs["im_logs"], Value::Null);
            // Its owners lost it with the deployment.
            error_body(app.get_as(ALICE, &format!("{base}/{id}/logs")).await, 404).await;
        }
        assert_eq!(app.delete_as(ADMIN, &format!("/api/v1/deployment/{id}/logs")).await.status(), 204);
        assert_eq!(app.count("deployment_logs").await, 0);
        error_body(app.get_as(ADMIN, &format!("/api/v1/deployments/{id}/logs")).await, 404).await;
    }
}
