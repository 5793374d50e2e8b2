//! The whole lifecycle against a real IM 2.0 with its Dummy cloud connector
//! (`TEST_IM_URL`, started by `scripts/services/im.sh`): create → CREATE_COMPLETE with
//! outputs and bound resources → stop/start/reboot → update (scale) → delete →
//! DELETE_COMPLETE, and IM answering 404 for the infrastructure afterwards.

use std::time::Duration;

use im_client::{AuthHeader, Im, ImClient, ImError, InfraId};
use serde_json::json;

use crate::common::service_var;
use crate::helpers::ALICE;
use crate::{env, provider};

const LIMIT: Duration = Duration::from_secs(90);

async fn wait_resource(e: &crate::Env, id: &str, rid: &str, want: &str) {
    let start = std::time::Instant::now();
    loop {
        let resources = e.resources(id).await;
        let r = resources.iter().find(|r| r["id"] == rid).expect("resource");
        if r["status_name"] == want {
            return;
        }
        assert!(
            start.elapsed() < LIMIT,
            "resource {rid} is {}, not {want}: {}",
            r["status_name"],
            e.log_text(id).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_deployment_lives_its_whole_life_on_a_real_im() {
    let Some(im_url) = service_var("TEST_IM_URL") else {
        return;
    };
    let spec = provider("dummy", 1, &im_url);
    let username = spec.username.clone();
    let e = env(
        &[spec],
        true,
        &[("IM_POLL_MIN", "0.2"), ("IM_POLL_MAX", "1")],
    )
    .await;
    let id = e.submit(json!({"template_inputs": {"vm_count": 1}})).await;

    let d = e.wait_until(&id, "CREATE_COMPLETE", LIMIT).await;
    assert_eq!(d["target_provider"], "dummy");
    assert!(d["template_outputs"].get("vm_ip").is_some(), "{d}");
    let infra = d["im_infra_id"].as_str().expect("IM id").to_string();
    let resources = e.resources(&id).await;
    assert_eq!(resources.len(), 1);
    let r = &resources[0];
    assert_eq!(r["status_name"], "STARTED", "{r}");
    assert_eq!(r["im_vm_idx"], "0");
    let props = r["metadata"]["VirtualMachineInfo"]["vmProperties"]
        .as_array()
        .expect("vmProperties");
    assert!(
        props
            .iter()
            .any(|p| p["class"] == "system" && p["id"] == "vm"),
        "{props:?}"
    );
    let logs: serde_json::Value = e
        .app
        .get_as(ALICE, &format!("/api/v1/deployments/{id}/logs"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        logs["im_logs"]
            .as_str()
            .unwrap_or("")
            .contains("Contextualization disabled"),
        "{logs}"
    );

    let rid = r["id"].as_str().unwrap().to_string();
    for (action, want) in [
        ("stop", "STOPPED"),
        ("start", "STARTED"),
        ("reboot", "STARTED"),
    ] {
        let resp = e
            .app
            .client
            .patch(e.app.url(&format!(
                "/api/v1/deployments/{id}/resources/{rid}/{action}"
            )))
            .bearer_auth(e.app.token(ALICE))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{action}");
        wait_resource(&e, &id, &rid, want).await;
    }

    let resp = e
        .app
        .patch_as(
            ALICE,
            &format!("/api/v1/deployments/{id}"),
            &json!({"template_inputs": {"vm_count": 2}}),
        )
        .await;
    assert_eq!(
        resp.status(),
        202,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    e.wait_until(&id, "UPDATE_COMPLETE", LIMIT).await;
    let live: Vec<_> = e
        .resources(&id)
        .await
        .into_iter()
        .filter(|r| r["status_name"] != "DELETED")
        .collect();
    assert_eq!(live.len(), 2, "{live:?}");

    let resp = e
        .app
        .delete_as(ALICE, &format!("/api/v1/deployments/{id}"))
        .await;
    assert_eq!(resp.status(), 202);
    e.wait_until(&id, "DELETE_COMPLETE", LIMIT).await;
    let client = ImClient::new(&im_url, Duration::from_secs(10)).unwrap();
    let auth = AuthHeader::with_password(&username, "secret").cloud("id = dummy; type = Dummy");
    match client.state(&auth, &InfraId(infra)).await {
        Err(ImError::NotFound { .. }) => {}
        other => panic!("IM still has the infrastructure: {other:?}"),
    }
}
