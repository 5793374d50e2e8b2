//! The dashboard's sequence (orchestrator-dashboard `app/lib/orchestrator.py`)
//! against the running server, its engine driving the fake IM: list my deployments
//! following next links, create with a template, read resources and parse
//! `VirtualMachineInfo`, get the log, update (scale up, then remove a node by its
//! resource id), stop and start a VM, delete with force, and reset a stuck deletion.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::ALICE;
use crate::{app_with, create_body, vm_info, Legacy, Sink, LEGACY_VM};
use im_client::fake::FakeIm;

fn system_id(resource: &Value) -> String {
    let info = vm_info(resource);
    info["vmProperties"]
        .as_array()
        .expect("vmProperties")
        .iter()
        .find(|p| p["class"] == "system")
        .and_then(|p| p["id"].as_str())
        .expect("a system entry with the node name")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_flow_works_unchanged() {
    let im = FakeIm::start().await;
    im.set_compute_types(&["tosca.nodes.indigo.Compute"]);
    im.set_contmsg("Contextualization disabled by the RADL/TOSCA template.");
    let (app, _dir) = app_with(&[im.url()], &[]).await;
    let l = Legacy::new(&app);
    let sink = Sink::start(0).await;

    // Create with a template (callback, keepLastAttempt and timeouts as strings).
    let mut body = create_body(LEGACY_VM, json!({"num_cpus": "2"}));
    body["callback"] = json!(sink.url);
    body["keepLastAttempt"] = json!("false");
    body["timeoutMins"] = json!("60");
    body["providerTimeoutMins"] = json!(30);
    let created = l.create(ALICE, &body).await;
    let id = created["uuid"].as_str().unwrap().to_string();
    assert_eq!(created["userGroup"], "beta-testers");
    assert_eq!(created["createdBy"]["subject"], ALICE);
    assert!(created["updateTime"].is_string());
    // A second deployment, so that the list has two pages of one.
    let other = l
        .create(
            ALICE,
            &create_body(&format!("{LEGACY_VM}\n# other\n"), json!({})),
        )
        .await;
    let other_id = other["uuid"].as_str().unwrap().to_string();

    l.wait_status(ALICE, &id, "CREATE_COMPLETE").await;
    l.wait_status(ALICE, &other_id, "CREATE_COMPLETE").await;
    // The callback heard of the completion.
    let announced = sink
        .wait_for(|b| b["uuid"] == id.as_str() && b["status"] == "CREATE_COMPLETE")
        .await;
    assert_eq!(announced["createdBy"]["subject"], ALICE);

    // List my deployments, following next links.
    let first = "/deployments?createdBy=me&excludedStatus=DELETE_COMPLETE,DELETE_FAILED&size=1";
    let (items, pages) = l.all_pages(ALICE, first, 5).await;
    assert_eq!(pages, 2);
    let mut ids: Vec<&str> = items.iter().map(|d| d["uuid"].as_str().unwrap()).collect();
    ids.sort();
    let mut want = vec![id.as_str(), other_id.as_str()];
    want.sort();
    assert_eq!(ids, want);
    let d = items.iter().find(|d| d["uuid"] == id.as_str()).unwrap();
    for key in [
        "uuid",
        "creationTime",
        "updateTime",
        "status",
        "task",
        "outputs",
        "links",
        "createdBy",
        "physicalId",
        "cloudProviderName",
        "userGroup",
    ] {
        assert!(d.get(key).is_some(), "{key} in {d}");
    }
    assert_eq!(d["cloudProviderEndpoint"]["iaasType"], "DUMMY");
    assert!(d["statusReason"].as_str().unwrap_or("").len() <= 65535);

    // Resources and their VM information.
    let resources = l.resources(ALICE, &id).await;
    assert_eq!(resources.len(), 1);
    let vm = &resources[0];
    assert_eq!(vm["state"], "STARTED");
    assert_eq!(system_id(vm), "vm");
    let rid = vm["uuid"].as_str().unwrap().to_string();

    // The log and the template.
    assert!(l
        .text(ALICE, &format!("/deployments/{id}/log"))
        .await
        .contains("Contextualization disabled"));
    let template = l.text(ALICE, &format!("/deployments/{id}/template")).await;
    assert_eq!(template, LEGACY_VM);

    // Update: the dashboard sends the edited template and only the changed parameters.
    let scaled = template.replace(
        "default: 1\n      constraints:\n        - in_range",
        "default: 2\n      constraints:\n        - in_range",
    );
    assert_ne!(scaled, template);
    let r = l
        .send(
            Method::PUT,
            ALICE,
            &format!("/deployments/{id}"),
            Some(&json!({"template": scaled, "parameters": {"vm_count": 2}})),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    l.wait_status(ALICE, &id, "UPDATE_COMPLETE").await;
    assert_eq!(
        l.text(ALICE, &format!("/deployments/{id}/template")).await,
        scaled
    );
    let resources = l.resources(ALICE, &id).await;
    assert_eq!(resources.len(), 2, "{resources:?}");
    assert!(resources
        .iter()
        .all(|r| r["state"] == "STARTED" && system_id(r) == "vm"));

    // Remove a node the way `delnode` does: its resource id in removal_list, count down.
    let removed = rid.clone();
    let shrunk = scaled.replace("removal_list: []", &format!("removal_list: ['{removed}']"));
    let r = l
        .send(
            Method::PUT,
            ALICE,
            &format!("/deployments/{id}"),
            Some(&json!({"template": shrunk, "parameters": {"vm_count": "1"}})),
        )
        .await;
    assert_eq!(r.status(), 202);
    l.wait_status(ALICE, &id, "UPDATE_COMPLETE").await;
    let resources = l.resources(ALICE, &id).await;
    assert_eq!(resources.len(), 1, "{resources:?}");
    assert_ne!(
        resources[0]["uuid"],
        removed.as_str(),
        "the listed node is the one removed"
    );
    let rid = resources[0]["uuid"].as_str().unwrap().to_string();

    // Stop and start the VM (the dashboard reads the resource first).
    let action = format!("/deployments/{id}/resources/{rid}/actions");
    let r = l
        .send(Method::POST, ALICE, &action, Some(&json!({"type": "stop"})))
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.text().await.unwrap(), "");
    l.wait_state(ALICE, &id, &rid, "STOPPED").await;
    let r = l
        .send(
            Method::POST,
            ALICE,
            &action,
            Some(&json!({"type": "start"})),
        )
        .await;
    assert_eq!(r.status(), 202);
    l.wait_state(ALICE, &id, &rid, "STARTED").await;

    // Delete with force (and the junk JSON body the dashboard sends).
    let r = l
        .req(
            Method::DELETE,
            ALICE,
            &format!("/deployments/{id}?force=true"),
        )
        .json(&json!({"junk": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    l.wait_status(ALICE, &id, "DELETE_COMPLETE").await;
    // Deleted deployments stay listable unless excluded.
    let (all, _) = l.all_pages(ALICE, "/deployments?createdBy=me", 3).await;
    assert!(all
        .iter()
        .any(|d| d["uuid"] == id.as_str() && d["status"] == "DELETE_COMPLETE"));
    let (kept, _) = l
        .all_pages(
            ALICE,
            "/deployments?createdBy=me&excludedStatus=DELETE_COMPLETE",
            3,
        )
        .await;
    assert!(kept.iter().all(|d| d["uuid"] != id.as_str()));
    assert!(l.resources(ALICE, &id).await.is_empty());

    // Reset: a deletion that IM does not finish is reset to DELETE_FAILED.
    im.set_deleting_polls(10_000);
    let r = l
        .send(
            Method::DELETE,
            ALICE,
            &format!("/deployments/{other_id}"),
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    l.wait_status(ALICE, &other_id, "DELETE_IN_PROGRESS").await;
    let r = l
        .send(
            Method::PATCH,
            ALICE,
            &format!("/deployments/{other_id}"),
            Some(&json!({"status": "DELETE_FAILED"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    let d = l.deployment(ALICE, &other_id).await;
    assert_eq!(d["status"], "DELETE_FAILED");
}

/// The same sequence on a real IM with its Dummy cloud (`TEST_IM_URL`): create, list,
/// resources with IM's real VM information, the contextualisation log, an update
/// that changes the template and scales up, stop and start, delete with force. (The
/// `removal_list` step needs INDIGO types, which the real IM's tosca-parser refuses
/// offline; the reset needs a deletion IM does not finish: both run on the fake IM.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_flow_works_on_a_real_im() {
    let Some(im_url) = crate::common::service_var("TEST_IM_URL") else {
        return;
    };
    let (app, _dir) = app_with(
        &[&im_url],
        &[("IM_POLL_MIN", "0.1"), ("IM_POLL_MAX", "0.5")],
    )
    .await;
    let l = Legacy::new(&app);
    let sink = Sink::start(0).await;
    let mut body = create_body(&crate::real_vm(1), json!({"num_cpus": "1"}));
    body["callback"] = json!(sink.url);
    let created = l.create(ALICE, &body).await;
    let id = created["uuid"].as_str().unwrap().to_string();
    let d = l.wait_status(ALICE, &id, "CREATE_COMPLETE").await;
    assert!(d["physicalId"].is_string());
    sink.wait_for(|b| b["uuid"] == id.as_str() && b["status"] == "CREATE_COMPLETE")
        .await;
    let (items, _) = l
        .all_pages(
            ALICE,
            "/deployments?createdBy=me&excludedStatus=DELETE_COMPLETE",
            3,
        )
        .await;
    assert!(items.iter().any(|d| d["uuid"] == id.as_str()));
    let resources = l.resources(ALICE, &id).await;
    assert_eq!(resources.len(), 1);
    assert_eq!(system_id(&resources[0]), "vm");
    assert_eq!(resources[0]["state"], "STARTED");
    assert!(l
        .text(ALICE, &format!("/deployments/{id}/log"))
        .await
        .contains("Contextualization disabled"));

    let template = l.text(ALICE, &format!("/deployments/{id}/template")).await;
    assert_eq!(template, crate::real_vm(1));
    let edited = crate::real_vm(2);
    let r = l
        .send(
            Method::PUT,
            ALICE,
            &format!("/deployments/{id}"),
            Some(&json!({"template": edited, "parameters": {}})),
        )
        .await;
    assert_eq!(r.status(), 202);
    l.wait_status(ALICE, &id, "UPDATE_COMPLETE").await;
    let resources = l.resources(ALICE, &id).await;
    assert_eq!(resources.len(), 2, "{resources:?}");
    assert!(
        resources.iter().all(|r| r["state"] == "STARTED"),
        "{resources:?}"
    );

    let rid = resources[0]["uuid"].as_str().unwrap().to_string();
    let action = format!("/deployments/{id}/resources/{rid}/actions");
    let r = l
        .send(Method::POST, ALICE, &action, Some(&json!({"type": "stop"})))
        .await;
    assert_eq!(r.status(), 202);
    l.wait_state(ALICE, &id, &rid, "STOPPED").await;
    let r = l
        .send(
            Method::POST,
            ALICE,
            &action,
            Some(&json!({"type": "start"})),
        )
        .await;
    assert_eq!(r.status(), 202);
    l.wait_state(ALICE, &id, &rid, "STARTED").await;

    let r = l
        .req(
            Method::DELETE,
            ALICE,
            &format!("/deployments/{id}?force=true"),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    l.wait_status(ALICE, &id, "DELETE_COMPLETE").await;
    sink.wait_for(|b| b["uuid"] == id.as_str() && b["status"] == "DELETE_COMPLETE")
        .await;
}
