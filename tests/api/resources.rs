//! The resources API (issue 5, item 5): listing with the `type` filter matching the
//! type asked for and its descendants, reading, start/stop/reboot with their state
//! rules (each writing its job), and the manual reset to ERROR.

use serde_json::{json, Value};

use orchestrator::domain::{DeploymentStatus, JobKind, JobState, Resource, ResourceStatus};

use crate::helpers::{
    assert_timestamp, error_body, locs, on_sqlite_and_postgres, TestApp, ADMIN, ALICE, BOB, CLUSTER,
};

/// A cluster of ALICE's with two workers; its id.
async fn cluster(app: &TestApp) -> String {
    let template = app.template(ALICE, CLUSTER).await;
    app.deploy(ALICE, &template, "beta-testers", json!({"worker_count": 2}))
        .await
}

fn names(page: &Value) -> Vec<String> {
    let mut names: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tosca_node_name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

async fn node(app: &TestApp, id: &str, name: &str) -> Resource {
    app.stored_resources(id)
        .await
        .into_iter()
        .find(|r| r.tosca_node_name == name)
        .unwrap_or_else(|| panic!("a {name} resource"))
}

/// Binds a resource to an IM VM and puts it in a status, as the engine would.
async fn set_resource(
    app: &TestApp,
    resource: &Resource,
    vm: Option<&str>,
    status: ResourceStatus,
) {
    let mut r = resource.clone();
    r.im_vm_idx = vm.map(String::from);
    r.status = status;
    let mut tx = app.state.store.begin().await.expect("transaction");
    orchestrator::store::resources::update(&mut tx, &r)
        .await
        .expect("update");
    tx.commit().await.expect("commit");
}

fn action(id: &str, r: &Resource, action: &str) -> String {
    format!("/api/v1/deployments/{id}/resources/{}/{action}", r.id)
}

on_sqlite_and_postgres! {
    async fn the_type_filter_matches_the_type_and_every_type_derived_from_it(app: TestApp) {
        let id = cluster(&app).await;
        let app = &app;
        let list = |query: &str| {
            let path = format!("/api/v1/deployments/{id}/resources?size=100&{query}");
            async move { app.get_json(ALICE, &path).await }
        };
        let all = list("").await;
        assert_eq!(all["page"]["total_elements"], 5);
        assert_eq!(names(&list("type=tosca.nodes.Compute").await), ["front", "workers", "workers"]);
        assert_eq!(names(&list("type=tosca.nodes.indigo.Compute").await), ["front", "workers", "workers"]);
        assert_eq!(names(&list("type=tosca.nodes.indigo.WorkerNode").await), ["workers", "workers"]);
        assert_eq!(names(&list("type=tosca.nodes.SoftwareComponent").await), ["webapp"]);
        assert_eq!(names(&list("type=tosca.nodes.BlockStorage").await), ["shared_volume"]);
        assert_eq!(list("type=tosca.nodes.Root").await["page"]["total_elements"], 5);
        assert_eq!(list("type=tosca.nodes.Nonexistent").await["page"]["total_elements"], 0);
        // The exact attribute filter does not follow the hierarchy.
        assert_eq!(names(&list("tosca_node_type=tosca.nodes.indigo.Compute").await), ["front"]);
        assert_eq!(names(&list("type=tosca.nodes.Compute&tosca_node_name=work").await), ["workers", "workers"]);
    }

    async fn resource_lists_are_paged_with_links_that_keep_the_type(app: TestApp) {
        let id = cluster(&app).await;
        let path = format!("/api/v1/deployments/{id}/resources");
        let page = app.get_json(ALICE, &format!("{path}?type=tosca.nodes.Compute&size=2")).await;
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        assert_eq!(page["page"], json!({"size": 2, "number": 1, "total_elements": 3, "total_pages": 2}));
        let next = app.url(&format!("{path}?type=tosca.nodes.Compute&page=2&size=2"));
        assert_eq!(page["links"]["next"], next);
        let second = app.client.get(&next).bearer_auth(app.token(ALICE)).send().await.unwrap();
        let second: Value = second.json().await.unwrap();
        assert_eq!(second["data"].as_array().unwrap().len(), 1);
        let page = app.get_json(ALICE, &format!("{path}?sort=-tosca_node_name&size=1")).await;
        assert_eq!(page["data"][0]["tosca_node_name"], "workers");
        let body = error_body(app.get_as(ALICE, &format!("{path}?sort=metadata&status=BROKEN")).await, 422).await;
        assert_eq!(locs(&body), ["/query/status", "/query/sort"]);
        let page = app.get_json(ALICE, &format!("{path}?status=INITIAL&status=7")).await;
        assert_eq!(page["page"]["total_elements"], 5);
    }

    async fn a_resource_is_read_with_every_field(app: TestApp) {
        let alice = app.user_id(ALICE).await;
        let id = cluster(&app).await;
        let volume = node(&app, &id, "shared_volume").await;
        let r = app.get_json(ALICE, &format!("/api/v1/deployments/{id}/resources/{}", volume.id)).await;
        let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "created_at", "created_by", "id", "im_vm_idx", "metadata", "required_by", "status",
                "status_name", "status_reason", "tosca_node_name", "tosca_node_type", "updated_at",
                "updated_by",
            ]
        );
        assert_eq!(r["id"], volume.id.to_string());
        assert_eq!(r["tosca_node_type"], "tosca.nodes.BlockStorage");
        assert_eq!(r["required_by"], json!(["workers"]));
        assert_eq!((r["status"].clone(), r["status_name"].clone()), (json!(7), json!("INITIAL")));
        assert_eq!(r["created_by"], alice.as_str());
        assert_eq!(r["im_vm_idx"], Value::Null);
        assert_eq!(r["metadata"], Value::Null);
        assert_timestamp(&r["created_at"]);
    }

    async fn resources_follow_the_visibility_of_their_deployment(app: TestApp) {
        let id = cluster(&app).await;
        let template = app.stored(&id).await.unwrap().template_id.to_string();
        let other = app.deploy(ALICE, &template, "beta-testers", json!({})).await;
        let front = node(&app, &id, "front").await;
        let list = format!("/api/v1/deployments/{id}/resources");
        let one = format!("{list}/{}", front.id);
        error_body(app.get_as(BOB, &list).await, 404).await;
        error_body(app.get_as(BOB, &format!("{list}?type=tosca.nodes.Compute")).await, 404).await;
        error_body(app.get_as(BOB, &one).await, 404).await;
        assert_eq!(app.get_json(ADMIN, &list).await["page"]["total_elements"], 5);
        assert_eq!(app.get_json(ADMIN, &one).await["tosca_node_name"], "front");
        // A resource is found only under its own deployment.
        error_body(app.get_as(ALICE, &format!("/api/v1/deployments/{other}/resources/{}", front.id)).await, 404).await;
        error_body(app.get_as(ALICE, &format!("{list}/{}", uuid::Uuid::new_v4())).await, 404).await;
        let body = error_body(app.get_as(ALICE, &format!("{list}/x")).await, 422).await;
        assert_eq!(locs(&body), ["/path/resource_id"]);
        error_body(app.get(&list).await, 401).await;
    }

    async fn owners_see_secrets_in_vm_information_and_administrators_do_not(app: TestApp) {
        let id = cluster(&app).await;
        let mut front = node(&app, &id, "front").await;
        front.metadata = Some(json!({"VirtualMachineInfo": {"vmProperties": [
            {"class": "system", "id": "front", "disk.0.os.credentials.private_key": "-----BEGIN RSA PRIVATE KEY-----"}
        ]}}));
        set_resource(&app, &front, Some("0"), ResourceStatus::Started).await;
        let path = format!("/api/v1/deployments/{id}/resources/{}", front.id);
        let owner = app.get_json(ALICE, &path).await;
        let key = &owner["metadata"]["VirtualMachineInfo"]["vmProperties"][0]["disk.0.os.credentials.private_key"];
        assert_eq!(key, "-----BEGIN RSA PRIVATE KEY-----");
        assert_eq!(owner["im_vm_idx"], "0");
        let admin = app.get_json(ADMIN, &path).await;
        let key = &admin["metadata"]["VirtualMachineInfo"]["vmProperties"][0]["disk.0.os.credentials.private_key"];
        assert!(!key.as_str().unwrap().contains("BEGIN"), "{admin}");
    }

    async fn start_and_stop_are_accepted_from_configured_stopped_or_started(app: TestApp) {
        let alice = app.user_id(ALICE).await;
        let id = cluster(&app).await;
        app.complete(&id).await;
        let front = node(&app, &id, "front").await;
        for (from, verb, to) in [
            (ResourceStatus::Configured, "start", ResourceStatus::Starting),
            (ResourceStatus::Stopped, "start", ResourceStatus::Starting),
            (ResourceStatus::Started, "start", ResourceStatus::Starting),
            (ResourceStatus::Configured, "stop", ResourceStatus::Stopping),
            (ResourceStatus::Stopped, "stop", ResourceStatus::Stopping),
            (ResourceStatus::Started, "stop", ResourceStatus::Stopping),
            (ResourceStatus::Started, "reboot", ResourceStatus::Starting),
        ] {
            set_resource(&app, &front, Some("0"), from).await;
            let response = app.patch_as(ALICE, &action(&id, &front, verb), &json!({})).await;
            assert_eq!(response.status(), 202, "{verb} from {from}");
            let now = node(&app, &id, "front").await;
            assert_eq!(now.status, to, "{verb} from {from}");
            assert_eq!(now.updated_by.to_string(), alice);
            let job = app.jobs(&id).await.pop().unwrap();
            assert_eq!((job.kind, job.state), (JobKind::ResourceAction, JobState::Pending));
            assert_eq!(job.payload["action"], verb);
            assert_eq!(job.payload["vm"], "0");
            assert_eq!(job.payload["resource"], front.id.to_string());
        }
        assert_eq!(app.jobs(&id).await.iter().filter(|j| j.kind == JobKind::ResourceAction).count(), 7);
    }

    async fn actions_from_other_states_are_conflicts_naming_the_state(app: TestApp) {
        let id = cluster(&app).await;
        app.complete(&id).await;
        let front = node(&app, &id, "front").await;
        let refused = [
            (ResourceStatus::Initial, "start"),
            (ResourceStatus::Creating, "start"),
            (ResourceStatus::Configuring, "stop"),
            (ResourceStatus::Error, "stop"),
            (ResourceStatus::Starting, "stop"),
            (ResourceStatus::Stopping, "start"),
            (ResourceStatus::Deleted, "start"),
            (ResourceStatus::Configured, "reboot"),
            (ResourceStatus::Stopped, "reboot"),
            (ResourceStatus::Error, "reboot"),
        ];
        for (from, verb) in refused {
            set_resource(&app, &front, Some("0"), from).await;
            let body = error_body(app.patch_as(ALICE, &action(&id, &front, verb), &json!({})).await, 409).await;
            assert!(body["detail"].as_str().unwrap().contains(from.name()), "{verb} from {from}: {body}");
            assert_eq!(node(&app, &id, "front").await.status, from);
        }
        assert!(app.jobs(&id).await.iter().all(|j| j.kind != JobKind::ResourceAction));
    }

    async fn only_compute_nodes_with_a_vm_can_be_started_stopped_or_rebooted(app: TestApp) {
        let id = cluster(&app).await;
        app.complete(&id).await;
        let volume = node(&app, &id, "shared_volume").await;
        let webapp = node(&app, &id, "webapp").await;
        let front = node(&app, &id, "front").await;
        set_resource(&app, &volume, None, ResourceStatus::Configured).await;
        set_resource(&app, &webapp, None, ResourceStatus::Started).await;
        // Even bound to a VM id by mistake, a node that is not a Compute is refused.
        set_resource(&app, &webapp, Some("7"), ResourceStatus::Started).await;
        set_resource(&app, &front, None, ResourceStatus::Configured).await;
        for (r, verb) in [(&volume, "start"), (&webapp, "reboot"), (&webapp, "stop"), (&front, "stop")] {
            let body = error_body(app.patch_as(ALICE, &action(&id, r, verb), &json!({})).await, 409).await;
            assert!(body["detail"].as_str().unwrap().contains(&r.tosca_node_name), "{body}");
        }
        assert!(app.jobs(&id).await.iter().all(|j| j.kind != JobKind::ResourceAction));
    }

    async fn actions_are_refused_while_the_deployment_is_being_deleted(app: TestApp) {
        let id = cluster(&app).await;
        app.complete(&id).await;
        let front = node(&app, &id, "front").await;
        set_resource(&app, &front, Some("0"), ResourceStatus::Started).await;
        for status in [DeploymentStatus::DeleteInProgress, DeploymentStatus::DeleteComplete] {
            app.set_status(&id, status).await;
            let body = error_body(app.patch_as(ALICE, &action(&id, &front, "stop"), &json!({})).await, 409).await;
            assert!(body["detail"].as_str().unwrap().contains(status.name()), "{body}");
        }
        assert_eq!(node(&app, &id, "front").await.status, ResourceStatus::Started);
    }

    async fn non_owners_cannot_act_on_resources_and_administrators_can(app: TestApp) {
        let id = cluster(&app).await;
        app.complete(&id).await;
        let front = node(&app, &id, "front").await;
        set_resource(&app, &front, Some("0"), ResourceStatus::Started).await;
        for verb in ["start", "stop", "reboot", "reset-status"] {
            error_body(app.patch_as(BOB, &action(&id, &front, verb), &json!({})).await, 404).await;
        }
        assert_eq!(node(&app, &id, "front").await.status, ResourceStatus::Started);
        assert_eq!(app.patch_as(ADMIN, &action(&id, &front, "reboot"), &json!({})).await.status(), 202);
        assert_eq!(node(&app, &id, "front").await.status, ResourceStatus::Starting);
        let missing = format!("/api/v1/deployments/{id}/resources/{}/stop", uuid::Uuid::new_v4());
        error_body(app.patch_as(ALICE, &missing, &json!({})).await, 404).await;
        // Actions take a deployment ETag like other state changes.
        let response = app
            .req(reqwest::Method::PATCH, ALICE, &action(&id, &front, "stop"))
            .header("if-match", "\"1\"")
            .send()
            .await
            .unwrap();
        error_body(response, 412).await;
    }

    async fn a_reset_turns_a_resource_to_error(app: TestApp) {
        let alice = app.user_id(ALICE).await;
        let id = cluster(&app).await;
        let volume = node(&app, &id, "shared_volume").await;
        let path = action(&id, &volume, "reset-status");
        let response = app.patch_as(ALICE, &path, &json!({"status": "error"})).await;
        assert_eq!(response.status(), 204);
        let r = node(&app, &id, "shared_volume").await;
        assert_eq!(r.status, ResourceStatus::Error);
        assert_eq!(r.updated_by.to_string(), alice);
        assert!(r.status_reason.as_deref().unwrap().contains("INITIAL"), "{r:?}");
        let api = app.get_json(ALICE, &format!("/api/v1/deployments/{id}/resources/{}", volume.id)).await;
        assert_eq!((api["status"].clone(), api["status_name"].clone()), (json!(6), json!("ERROR")));
        // Any state may be reset, by owners and administrators, with no job.
        let front = node(&app, &id, "front").await;
        set_resource(&app, &front, Some("0"), ResourceStatus::Starting).await;
        assert_eq!(app.patch_as(ADMIN, &action(&id, &front, "reset-status"), &json!({})).await.status(), 204);
        assert_eq!(node(&app, &id, "front").await.status, ResourceStatus::Error);
        assert_eq!(app.jobs(&id).await.len(), 1);
        error_body(app.patch_as(ALICE, &format!("/api/v1/deployments/{id}/resources/{}/reset-status", uuid::Uuid::new_v4()), &json!({})).await, 404).await;
        // A stale If-Match is refused and changes nothing.
        let tag = app.get_as(ALICE, &format!("/api/v1/deployments/{id}")).await.headers()["etag"].to_str().unwrap().to_string();
        let stale = format!("\"{}\"", tag.trim_matches('"').parse::<i64>().unwrap() - 1);
        set_resource(&app, &front, Some("0"), ResourceStatus::Started).await;
        let response = app.client.patch(app.url(&action(&id, &front, "reset-status"))).bearer_auth(app.token(ALICE)).header("If-Match", stale).json(&json!({})).send().await.unwrap();
        error_body(response, 412).await;
        assert_eq!(node(&app, &id, "front").await.status, ResourceStatus::Started);
        let response = app.client.patch(app.url(&action(&id, &front, "reset-status"))).bearer_auth(app.token(ALICE)).header("If-Match", tag).json(&json!({})).send().await.unwrap();
        assert_eq!(response.status(), 204);
    }
}
