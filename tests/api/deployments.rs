//! The deployments API (issue 5, items 1–4 and 7): submission with its bounds,
//! aliases, group rule and dry run; reading and listing with visibility and filters;
//! the admin rename and the update-and-redeploy; deletion with `force`/`unsecure` and
//! the cancellation of running work; owners; reset; ETags and concurrent changes.
//! The engine is external in these tests, so jobs stay queued and the API's own
//! effects (status, task, job rows, resources, log lines) are what is asserted.

use serde_json::{json, Value};

use orchestrator::domain::{DeploymentStatus, JobKind, JobState, ResourceStatus, Task};

use crate::helpers::{
    assert_timestamp, error_body, locs, on_sqlite_and_postgres, ADMIN, ALICE, BOB, CLUSTER,
    SINGLE_VM,
};

fn request(template: &str, extra: Value) -> Value {
    let mut body =
        json!({"template_id": template, "user_group": "beta-testers", "template_inputs": {}});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

on_sqlite_and_postgres! {
    // --- 1. submission ---

    async fn submitting_answers_202_with_location_and_stores_a_create_in_progress(app: TestApp) {
        let alice: uuid::Uuid = app.user_id(ALICE).await.parse().unwrap();
        let template = app.template(ALICE, SINGLE_VM).await;
        let response = app.submit(ALICE, &request(&template, json!({"template_inputs": {"num_cpus": 2}}))).await;
        assert_eq!(response.status(), 202);
        let location = response.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(response.headers()["etag"], "\"1\"");
        let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        assert_eq!(location, app.url(&format!("/api/v1/deployments/{id}")));

        let d = app.stored(&id).await.unwrap();
        assert_eq!(d.status, DeploymentStatus::CreateInProgress);
        assert_eq!(d.task, Task::Submitted);
        assert_eq!((d.created_by, d.updated_by), (alice, alice));
        assert_eq!(d.owned_by, [alice]);
        assert_eq!(d.user_group, "beta-testers");
        assert_eq!(Value::Object(d.template_inputs.clone()), json!({"num_cpus": 2}));
        // The spec's defaults.
        assert_eq!(d.per_provider_max_retries, 3);
        assert_eq!(d.max_providers, None);
        assert_eq!(d.tot_timeout_mins, 14_400);
        assert_eq!(d.per_provider_timeout_mins, 1_440);
        assert!(!d.keep_last_attempt);
        assert_eq!((d.target_provider, d.target_region), (None, None));

        let jobs = app.jobs(&id).await;
        assert_eq!(jobs.len(), 1);
        assert_eq!((jobs[0].kind, jobs[0].state), (JobKind::Create, JobState::Pending));

        let resources = app.stored_resources(&id).await;
        assert_eq!(resources.len(), 1);
        assert_eq!(resources[0].tosca_node_name, "simple_node");
        assert_eq!(resources[0].tosca_node_type, "tosca.nodes.Compute");
        assert_eq!(resources[0].status, ResourceStatus::Initial);
        assert_eq!(resources[0].created_by, alice);
    }

    async fn resources_are_created_initial_one_per_instance_with_required_by(app: TestApp) {
        let template = app.template(ALICE, CLUSTER).await;
        let id = app.deploy(ALICE, &template, "beta-testers", json!({"worker_count": 3})).await;
        let resources = app.stored_resources(&id).await;
        let mut seen: Vec<(String, i64, Vec<String>)> = resources
            .iter()
            .map(|r| (r.tosca_node_name.clone(), r.instance_index, r.required_by.clone()))
            .collect();
        seen.sort();
        let expected: Vec<(String, i64, Vec<String>)> = vec![
            ("front".into(), 0, vec!["webapp".into()]),
            ("shared_volume".into(), 0, vec!["workers".into()]),
            ("webapp".into(), 0, vec![]),
            ("workers".into(), 0, vec![]),
            ("workers".into(), 1, vec![]),
            ("workers".into(), 2, vec![]),
        ];
        assert_eq!(seen, expected);
        assert!(resources.iter().all(|r| r.status == ResourceStatus::Initial));
        assert!(resources.iter().all(|r| r.im_vm_idx.is_none()));

        // The default count applies when the input is not given; zero is allowed.
        let id = app.deploy(ALICE, &template, "beta-testers", json!({})).await;
        let workers = app.stored_resources(&id).await.into_iter().filter(|r| r.tosca_node_name == "workers").count();
        assert_eq!(workers, 2);
        let id = app.deploy(ALICE, &template, "beta-testers", json!({"worker_count": 0})).await;
        assert_eq!(app.stored_resources(&id).await.len(), 3);
    }

    async fn submission_bounds_are_checked_and_every_violation_listed_at_once(app: TestApp) {
        let template = app.template(ALICE, SINGLE_VM).await;
        let body = error_body(
            app.submit(
                ALICE,
                &request(&template, json!({
                    "per_provider_max_retries": 0,
                    "max_providers": 0,
                    "tot_timeout_mins": 14_401,
                    "per_provider_timeout_mins": 0,
                    "user_group": " ",
                    "template_inputs": {"num_cpus": 3, "mem_size": "64 GB", "colour": "red"},
                })),
            )
            .await,
            422,
        )
        .await;
        assert_eq!(
            sorted(locs(&body)),
            sorted(
                [
                    "/per_provider_max_retries",
                    "/max_providers",
                    "/tot_timeout_mins",
                    "/per_provider_timeout_mins",
                    "/user_group",
                    "/template_inputs/num_cpus",
                    "/template_inputs/mem_size",
                    "/template_inputs/colour",
                ]
                .map(String::from)
                .to_vec()
            )
        );
        let body = error_body(app.submit(ALICE, &request(&template, json!({"per_provider_max_retries": 11}))).await, 422).await;
        assert_eq!(locs(&body), ["/per_provider_max_retries"]);
        let body = error_body(
            app.submit(ALICE, &request(&template, json!({"tot_timeout_mins": 0}))).await,
            422,
        )
        .await;
        assert!(locs(&body).contains(&"/tot_timeout_mins".to_string()), "{body}");
        let body = error_body(
            app.submit(ALICE, &request(&template, json!({"tot_timeout_mins": 30, "per_provider_timeout_mins": 31}))).await,
            422,
        )
        .await;
        assert_eq!(locs(&body), ["/per_provider_timeout_mins"]);
        assert_eq!(app.count("deployments").await, 0);

        // The edges of every bound are accepted.
        let response = app
            .submit(
                ALICE,
                &request(&template, json!({
                    "per_provider_max_retries": 10,
                    "max_providers": 1,
                    "tot_timeout_mins": 14_400,
                    "per_provider_timeout_mins": 14_400,
                    "keep_last_attempt": true,
                })),
            )
            .await;
        assert_eq!(response.status(), 202);
        let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        let d = app.stored(&id).await.unwrap();
        assert_eq!((d.per_provider_max_retries, d.max_providers), (10, Some(1)));
        assert_eq!((d.tot_timeout_mins, d.per_provider_timeout_mins), (14_400, 14_400));
        assert!(d.keep_last_attempt);
        let response = app.submit(ALICE, &request(&template, json!({"per_provider_max_retries": 1, "tot_timeout_mins": 1, "per_provider_timeout_mins": 1}))).await;
        assert_eq!(response.status(), 202);
    }

    async fn the_provider_timeout_defaults_to_a_shorter_total(app: TestApp) {
        let template = app.template(ALICE, SINGLE_VM).await;
        let response = app.submit(ALICE, &request(&template, json!({"tot_timeout_mins": 60}))).await;
        assert_eq!(response.status(), 202);
        let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        let d = app.stored(&id).await.unwrap();
        assert_eq!((d.tot_timeout_mins, d.per_provider_timeout_mins), (60, 60));
    }

    async fn orchestrator_python_field_names_are_accepted_as_aliases(app: TestApp) {
        let template = app.template(ALICE, SINGLE_VM).await;
        let response = app
            .submit(
                ALICE,
                &request(&template, json!({
                    "timeout": 120,
                    "per_provider_timeout": 30,
                    "target_provider_name": "backbone",
                    "target_region_name": "cnaf",
                })),
            )
            .await;
        assert_eq!(response.status(), 202);
        let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        let d = app.deployment(ALICE, &id).await;
        assert_eq!(d["tot_timeout_mins"], 120);
        assert_eq!(d["per_provider_timeout_mins"], 30);
        assert_eq!(d["target_provider"], "backbone");
        assert_eq!(d["target_region"], "cnaf");
        // v1 names are the same fields.
        let response = app.submit(ALICE, &request(&template, json!({"tot_timeout_mins": 120, "target_provider": "backbone"}))).await;
        assert_eq!(response.status(), 202);
    }

    async fn malformed_submissions_locate_the_field(app: TestApp) {
        let template = app.template(ALICE, SINGLE_VM).await;
        let body = error_body(
            app.submit(ALICE, &json!({"template_id": template, "user_group": "beta-testers"})).await,
            422,
        )
        .await;
        assert_eq!(locs(&body), ["/template_inputs"]);
        let body = error_body(app.submit(ALICE, &json!({"template_id": template, "template_inputs": {}})).await, 422).await;
        assert_eq!(locs(&body), ["/user_group"]);
        let body = error_body(app.submit(ALICE, &request(&template, json!({"template_inputs": {"num_cpus": "two"}}))).await, 422).await;
        assert_eq!(locs(&body), ["/template_inputs/num_cpus"]);
        let body = error_body(app.submit(ALICE, &request(&template, json!({"max_providers": "two"}))).await, 422).await;
        assert_eq!(locs(&body), ["/max_providers"]);
        let body = error_body(app.submit(ALICE, &request(&template, json!({"callback": "http://x"}))).await, 422).await;
        assert_eq!(locs(&body), ["/callback"]);
        let missing = uuid::Uuid::new_v4().to_string();
        let body = error_body(app.submit(ALICE, &request(&missing, json!({}))).await, 422).await;
        assert_eq!(locs(&body), ["/template_id"]);
        assert!(body["detail"].as_str().unwrap().contains(&missing));
        assert_eq!(app.count("deployments").await, 0);
    }

    async fn a_user_group_the_caller_is_not_in_is_forbidden_unless_admin(app: TestApp) {
        let template = app.template(ALICE, SINGLE_VM).await;
        let body = error_body(app.submit(BOB, &request(&template, json!({}))).await, 403).await;
        assert!(body["detail"].as_str().unwrap().contains("beta-testers"), "{body}");
        error_body(app.submit(ALICE, &request(&template, json!({"user_group": "admins"}))).await, 403).await;
        assert_eq!(app.count("deployments").await, 0);
        assert_eq!(app.submit(BOB, &request(&template, json!({"user_group": "users"}))).await.status(), 202);
        assert_eq!(app.submit(ALICE, &request(&template, json!({"user_group": "users"}))).await.status(), 202);
        assert_eq!(app.submit(ADMIN, &request(&template, json!({}))).await.status(), 202);
        assert_eq!(app.submit(ADMIN, &request(&template, json!({"user_group": "anything"}))).await.status(), 202);
    }

    async fn a_dry_run_answers_200_with_the_plan_and_stores_nothing(app: TestApp) {
        let template = app.template(ALICE, CLUSTER).await;
        let response = app
            .post_as(ALICE, "/api/v1/deployments?dry_run=true", &request(&template, json!({"template_inputs": {"worker_count": 1}})))
            .await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("location").is_none());
        let plan: Value = response.json().await.unwrap();
        assert_eq!(plan["dry_run"], true);
        assert_eq!(plan["status_name"], "CREATE_IN_PROGRESS");
        assert_eq!(plan["template_inputs"]["worker_count"], 1);
        // Defaults are applied in the plan.
        assert_eq!(plan["template_inputs"]["app_port"], 8080);
        assert!(plan["template_inputs"].get("volume_size").is_some(), "{plan}");
        let mut resources: Vec<(String, Value)> = plan["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["tosca_node_name"].as_str().unwrap().to_string(), r["required_by"].clone()))
            .collect();
        resources.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            resources,
            [
                ("front".to_string(), json!(["webapp"])),
                ("shared_volume".to_string(), json!(["workers"])),
                ("webapp".to_string(), json!([])),
                ("workers".to_string(), json!([])),
            ]
        );
        assert!(plan["rendered_template"].as_str().unwrap().contains("small_cluster"));

        // Invalid and forbidden dry runs fail like real ones.
        let body = error_body(
            app.post_as(ALICE, "/api/v1/deployments?dry_run=true", &request(&template, json!({"template_inputs": {"worker_count": 11}}))).await,
            422,
        )
        .await;
        assert_eq!(locs(&body), ["/template_inputs/worker_count"]);
        error_body(app.post_as(BOB, "/api/v1/deployments?dry_run=1", &request(&template, json!({}))).await, 403).await;
        let body = error_body(app.post_as(ALICE, "/api/v1/deployments?dry_run=maybe", &request(&template, json!({}))).await, 422).await;
        assert_eq!(locs(&body), ["/query/dry_run"]);

        for table in ["deployments", "deployment_owners", "resources", "jobs", "deployment_logs", "outbox"] {
            assert_eq!(app.count(table).await, 0, "{table}");
        }
        assert_eq!(app.deployments(ADMIN, "").await["page"]["total_elements"], 0);
        // dry_run=false is a real submission.
        let response = app.post_as(ALICE, "/api/v1/deployments?dry_run=false", &request(&template, json!({}))).await;
        assert_eq!(response.status(), 202);
        assert_eq!(app.count("deployments").await, 1);
    }

    // --- 2. reading and listing ---

    async fn a_deployment_is_read_with_every_field_an_etag_and_working_links(app: TestApp) {
        let alice = app.user_id(ALICE).await;
        let (template, id) = app.alice_deployment().await;
        let response = app.get_as(ALICE, &format!("/api/v1/deployments/{id}")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["etag"], "\"1\"");
        let d: Value = response.json().await.unwrap();
        let mut keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "created_at", "created_by", "id", "im_infra_id", "keep_last_attempt", "links",
                "max_providers", "owned_by", "per_provider_max_retries", "per_provider_timeout_mins",
                "status", "status_name", "status_reason", "target_iaas_project", "target_provider",
                "target_region", "task", "task_name", "template_id", "template_inputs",
                "template_outputs", "tot_timeout_mins", "updated_at", "updated_by", "user_group",
                "version",
            ]
        );
        assert_eq!(d["id"], id.as_str());
        assert_eq!(d["created_by"], alice.as_str());
        assert_eq!(d["updated_by"], alice.as_str());
        assert_eq!(d["owned_by"], json!([alice]));
        assert_eq!(d["template_id"], template.as_str());
        assert_eq!(d["template_inputs"], json!({"mem_size": "2 GB"}));
        assert_eq!(d["template_outputs"], json!({}));
        assert_eq!(d["user_group"], "beta-testers");
        assert_eq!((d["status"].clone(), d["status_name"].clone()), (json!(2), json!("CREATE_IN_PROGRESS")));
        assert_eq!((d["task"].clone(), d["task_name"].clone()), (json!(0), json!("submitted")));
        assert_eq!(d["status_reason"], Value::Null);
        assert_eq!(d["im_infra_id"], Value::Null);
        assert_eq!(d["max_providers"], Value::Null);
        assert_eq!(d["version"], 1);
        assert_timestamp(&d["created_at"]);
        assert_eq!(d["created_at"], d["updated_at"]);

        let base = app.url(&format!("/api/v1/deployments/{id}"));
        assert_eq!(d["links"]["resources"], format!("{base}/resources"));
        assert_eq!(d["links"]["logs"], format!("{base}/logs"));
        assert_eq!(d["links"]["template"], app.url(&format!("/api/v1/templates/{template}")));
        for link in ["template", "resources", "logs", "attempts"] {
            let url = d["links"][link].as_str().unwrap();
            let response = app.client.get(url).bearer_auth(app.token(ALICE)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{url}");
        }
        let t = app.get_json(ALICE, &format!("/api/v1/deployments/{id}/template")).await;
        assert_eq!(t["content"], SINGLE_VM);
    }

    async fn only_owners_and_administrators_read_a_deployment(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        let path = format!("/api/v1/deployments/{id}");
        let body = error_body(app.get_as(BOB, &path).await, 404).await;
        assert!(body["detail"].as_str().unwrap().contains(&id));
        error_body(app.get_as(BOB, &format!("{path}/template")).await, 404).await;
        error_body(app.get_as(BOB, &format!("{path}/attempts")).await, 404).await;
        assert_eq!(app.deployment(ADMIN, &id).await["id"], id.as_str());
        error_body(app.get_as(ALICE, &format!("/api/v1/deployments/{}", uuid::Uuid::new_v4())).await, 404).await;
        let body = error_body(app.get_as(ALICE, "/api/v1/deployments/42").await, 422).await;
        assert_eq!(locs(&body), ["/path/id"]);
        error_body(app.get(&path).await, 401).await;
    }

    async fn non_admins_list_what_they_own_and_admins_everything(app: TestApp) {
        let template = app.template(ALICE, SINGLE_VM).await;
        let a1 = app.deploy(ALICE, &template, "beta-testers", json!({})).await;
        let a2 = app.deploy(ALICE, &template, "users", json!({})).await;
        let b1 = app.deploy(BOB, &template, "users", json!({})).await;
        let bob = app.user_id(BOB).await;
        app.set_status(&a1, DeploymentStatus::CreateFailed).await;

        assert_eq!(sorted(ids(&app.deployments(ALICE, "").await)), sorted(vec![a1.clone(), a2.clone()]));
        assert_eq!(ids(&app.deployments(BOB, "").await), [b1.as_str()]);
        assert_eq!(app.deployments(ADMIN, "").await["page"]["total_elements"], 3);
        // The collection answers with and without a trailing slash.
        assert_eq!(app.get_json(BOB, "/api/v1/deployments/").await["page"]["total_elements"], 1);

        // Sharing makes it visible to the new owner.
        let response = app.post_as(ALICE, &format!("/api/v1/deployments/{a1}/owners"), &json!({"id": bob})).await;
        assert_eq!(response.status(), 204);
        assert_eq!(sorted(ids(&app.deployments(BOB, "").await)), sorted(vec![a1.clone(), b1.clone()]));
        assert_eq!(app.deployment(BOB, &a1).await["id"], a1.as_str());
        // A new owner's listing sees the deployment's current status, and follows it.
        assert_eq!(ids(&app.deployments(BOB, "status=CREATE_FAILED").await), [a1.as_str()]);
        app.set_status(&a1, DeploymentStatus::UpdateFailed).await;
        assert_eq!(app.deployments(BOB, "status=CREATE_FAILED").await["page"]["total_elements"], 0);
        assert_eq!(ids(&app.deployments(BOB, "status=UPDATE_FAILED&sort=-status").await), [a1.as_str()]);
        // created_by narrows to what the caller created among what they own.
        assert_eq!(ids(&app.deployments(BOB, "created_by=me").await), [b1.as_str()]);
        assert_eq!(sorted(ids(&app.deployments(BOB, "owned_by=me").await)), sorted(vec![a1, b1]));
    }

    async fn filtering_on_another_user_is_forbidden_to_non_admins(app: TestApp) {
        let template = app.template(ALICE, SINGLE_VM).await;
        let a1 = app.deploy(ALICE, &template, "beta-testers", json!({})).await;
        let b1 = app.deploy(BOB, &template, "users", json!({})).await;
        let alice = app.user_id(ALICE).await;
        let bob = app.user_id(BOB).await;
        for filter in ["owned_by", "created_by", "updated_by"] {
            let body = error_body(app.get_as(ALICE, &format!("/api/v1/deployments?{filter}={bob}")).await, 403).await;
            assert!(body["detail"].as_str().unwrap().contains(filter), "{body}");
            error_body(app.get_as(ALICE, &format!("/api/v1/deployments?{filter}=me,{bob}")).await, 403).await;
        }
        assert_eq!(ids(&app.deployments(ALICE, &format!("owned_by={alice}")).await), [a1.as_str()]);
        assert_eq!(ids(&app.deployments(ADMIN, &format!("owned_by={bob}")).await), [b1.as_str()]);
        assert_eq!(ids(&app.deployments(ADMIN, &format!("created_by={alice}")).await), [a1.as_str()]);
        assert_eq!(app.deployments(ADMIN, "owned_by=me").await["page"]["total_elements"], 0);
        let body = error_body(app.get_as(ALICE, "/api/v1/deployments?owned_by=bob").await, 422).await;
        assert_eq!(locs(&body), ["/query/owned_by"]);
    }

    async fn the_status_filter_takes_several_values_by_code_or_name(app: TestApp) {
        let template = app.template(ALICE, SINGLE_VM).await;
        let mut by_status = Vec::new();
        for status in [
            DeploymentStatus::CreateComplete,
            DeploymentStatus::CreateFailed,
            DeploymentStatus::CreateInProgress,
            DeploymentStatus::UpdateFailed,
        ] {
            let id = app.deploy(ALICE, &template, "beta-testers", json!({})).await;
            if status != DeploymentStatus::CreateInProgress {
                app.set_status(&id, status).await;
            }
            by_status.push(id);
        }
        let [complete, failed, running, update_failed] = <[String; 4]>::try_from(by_status).unwrap();
        assert_eq!(ids(&app.deployments(ALICE, "status=0").await), [complete.as_str()]);
        assert_eq!(ids(&app.deployments(ALICE, "status=create_in_progress").await), [running]);
        let expected = sorted(vec![complete.clone(), failed.clone()]);
        assert_eq!(sorted(ids(&app.deployments(ALICE, "status=0&status=CREATE_FAILED").await)), expected);
        assert_eq!(sorted(ids(&app.deployments(ALICE, "status=0,1").await)), expected);
        assert_eq!(
            sorted(ids(&app.deployments(ADMIN, "status=1,UPDATE_FAILED&status=0").await)),
            sorted(vec![complete, failed, update_failed])
        );
        assert_eq!(app.deployments(ALICE, "status=DELETE_COMPLETE").await["page"]["total_elements"], 0);
        let body = error_body(app.get_as(ALICE, "/api/v1/deployments?status=10").await, 422).await;
        assert_eq!(locs(&body), ["/query/status"]);
        let body = error_body(app.get_as(ALICE, "/api/v1/deployments?status=DONE").await, 422).await;
        assert_eq!(locs(&body), ["/query/status"]);
        let body = error_body(app.get_as(ALICE, "/api/v1/deployments?task=submitted&status_reason_gte=x").await, 422).await;
        assert_eq!(locs(&body), ["/query/status_reason_gte"]);
        assert_eq!(app.deployments(ALICE, "task=submitted").await["page"]["total_elements"], 4);
        assert_eq!(app.deployments(ALICE, "task=6").await["page"]["total_elements"], 0);
    }

    async fn the_user_group_and_other_filters_narrow_the_list(app: TestApp) {
        let template = app.template(ALICE, SINGLE_VM).await;
        let beta = app.deploy(ALICE, &template, "beta-testers", json!({})).await;
        let users = app.deploy(ALICE, &template, "users", json!({})).await;
        let response = app.submit(ALICE, &request(&template, json!({"target_provider": "backbone", "per_provider_max_retries": 5}))).await;
        let targeted = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        assert_eq!(sorted(ids(&app.deployments(ALICE, "user_group=BETA").await)), sorted(vec![beta.clone(), targeted.clone()]));
        assert_eq!(ids(&app.deployments(ALICE, "user_group=users").await), [users.as_str()]);
        assert_eq!(ids(&app.deployments(ALICE, "target_provider=backbone").await), [targeted.as_str()]);
        assert_eq!(ids(&app.deployments(ALICE, "per_provider_max_retries_gte=4").await), [targeted.as_str()]);
        assert_eq!(ids(&app.deployments(ALICE, &format!("id={users}")).await), [users.as_str()]);
        assert_eq!(app.deployments(ALICE, &format!("template_id={template}")).await["page"]["total_elements"], 3);
        assert_eq!(app.deployments(ALICE, "keep_last_attempt=false").await["page"]["total_elements"], 3);
        assert_eq!(app.deployments(ALICE, "created_before=2000-01-01").await["page"]["total_elements"], 0);
    }

    async fn lists_are_paged_and_sorted_with_links_that_keep_filters(app: TestApp) {
        let template = app.template(ALICE, SINGLE_VM).await;
        let mut created = Vec::new();
        for _ in 0..7 {
            created.push(app.deploy(ALICE, &template, "beta-testers", json!({})).await);
        }
        app.deploy(BOB, &template, "users", json!({})).await;
        // Default: five per page, newest first.
        let page = app.deployments(ALICE, "").await;
        let newest: Vec<String> = created.iter().rev().take(5).cloned().collect();
        assert_eq!(ids(&page), newest);
        assert_eq!(page["page"], json!({"size": 5, "number": 1, "total_elements": 7, "total_pages": 2}));
        assert_eq!(page["links"]["prev"], Value::Null);

        let page = app.deployments(ALICE, "status=2&sort=created_at&size=3&page=2").await;
        assert_eq!(ids(&page), created[3..6].to_vec());
        assert_eq!(page["page"], json!({"size": 3, "number": 2, "total_elements": 7, "total_pages": 3}));
        let base = app.url("/api/v1/deployments");
        assert_eq!(page["links"]["first"], format!("{base}?status=2&sort=created_at&page=1&size=3"));
        assert_eq!(page["links"]["prev"], format!("{base}?status=2&sort=created_at&page=1&size=3"));
        assert_eq!(page["links"]["next"], format!("{base}?status=2&sort=created_at&page=3&size=3"));
        assert_eq!(page["links"]["last"], format!("{base}?status=2&sort=created_at&page=3&size=3"));
        let next = app.client.get(page["links"]["next"].as_str().unwrap()).bearer_auth(app.token(ALICE)).send().await.unwrap();
        let next: Value = next.json().await.unwrap();
        assert_eq!(ids(&next), created[6..].to_vec());
        assert_eq!(next["links"]["next"], Value::Null);

        let beyond = app.deployments(ALICE, "page=9").await;
        assert_eq!(beyond["data"], json!([]));
        assert_eq!(beyond["page"]["total_elements"], 7);

        let body = error_body(app.get_as(ALICE, "/api/v1/deployments?sort=template_inputs").await, 422).await;
        assert_eq!(locs(&body), ["/query/sort"]);
        let body = error_body(app.get_as(ALICE, "/api/v1/deployments?size=0&colour=red").await, 422).await;
        assert_eq!(locs(&body), ["/query/size", "/query/colour"]);
    }

    // --- 3. PATCH ---

    async fn an_administrator_renames_the_user_group(app: TestApp) {
        let admin = app.user_id(ADMIN).await;
        let (_, id) = app.alice_deployment().await;
        let path = format!("/api/v1/deployments/{id}");
        let response = app.patch_as(ADMIN, &path, &json!({"user_group": "admins/catch-all"})).await;
        assert_eq!(response.status(), 204);
        assert_eq!(response.headers()["etag"], "\"2\"");
        let d = app.deployment(ALICE, &id).await;
        assert_eq!(d["user_group"], "admins/catch-all");
        assert_eq!(d["updated_by"], admin.as_str());
        assert_eq!(d["version"], 2);
        // Renaming starts no work.
        assert_eq!(d["status_name"], "CREATE_IN_PROGRESS");
        assert_eq!(app.jobs(&id).await.len(), 1);

        let body = error_body(app.patch_as(ALICE, &path, &json!({"user_group": "users"})).await, 403).await;
        assert!(body["detail"].as_str().unwrap().contains("administrators"), "{body}");
        error_body(app.patch_as(BOB, &path, &json!({"user_group": "users"})).await, 403).await;
        let body = error_body(app.patch_as(ADMIN, &path, &json!({"user_group": ""})).await, 422).await;
        assert_eq!(locs(&body), ["/user_group"]);
        let body = error_body(app.patch_as(ADMIN, &path, &json!({"user_group": 7})).await, 422).await;
        assert_eq!(locs(&body), ["/user_group"]);
        error_body(app.patch_as(ADMIN, &format!("/api/v1/deployments/{}", uuid::Uuid::new_v4()), &json!({"user_group": "x"})).await, 404).await;
        assert_eq!(app.deployment(ALICE, &id).await["user_group"], "admins/catch-all");
    }

    async fn a_patch_with_both_keys_or_neither_is_unprocessable(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        app.complete(&id).await;
        let path = format!("/api/v1/deployments/{id}");
        for body in [
            json!({}),
            json!({"user_group": "users", "template_inputs": {"num_cpus": 2}}),
        ] {
            let error = error_body(app.patch_as(ADMIN, &path, &body).await, 422).await;
            assert!(error["detail"].as_str().unwrap().contains("exactly one"), "{error}");
            assert!(!locs(&error).is_empty());
        }
        let error = error_body(app.patch_as(ALICE, &path, &json!({"template_inputs": {"num_cpus": 2}, "cpus": 1})).await, 422).await;
        assert_eq!(locs(&error), ["/cpus"]);
        let error = error_body(app.patch_as(ALICE, &path, &json!({"template_inputs": [1]})).await, 422).await;
        assert_eq!(locs(&error), ["/template_inputs"]);
        let d = app.stored(&id).await.unwrap();
        assert_eq!(d.status, DeploymentStatus::CreateComplete);
        assert_eq!(app.jobs(&id).await.len(), 1);
    }

    async fn a_redeploy_merges_the_inputs_and_starts_an_update(app: TestApp) {
        let alice: uuid::Uuid = app.user_id(ALICE).await.parse().unwrap();
        let (_, id) = app.alice_deployment().await;
        app.complete(&id).await;
        let path = format!("/api/v1/deployments/{id}");
        let response = app.patch_as(ALICE, &path, &json!({"template_inputs": {"num_cpus": 4}})).await;
        assert_eq!(response.status(), 202);
        assert_eq!(response.headers()["etag"], "\"3\"");
        let d = app.stored(&id).await.unwrap();
        assert_eq!(Value::Object(d.template_inputs.clone()), json!({"mem_size": "2 GB", "num_cpus": 4}));
        assert_eq!(d.status, DeploymentStatus::UpdateInProgress);
        assert_eq!(d.task, Task::InfrastructureUpdate);
        assert_eq!(d.updated_by, alice);
        assert_eq!(d.version, 3);
        let jobs = app.jobs(&id).await;
        let update = jobs.last().unwrap();
        assert_eq!((update.kind, update.state), (JobKind::Update, JobState::Pending));
        assert_eq!(update.payload["previous_status"], 0);
        let api = app.deployment(ALICE, &id).await;
        assert_eq!(api["status_name"], "UPDATE_IN_PROGRESS");
        assert_eq!(api["task_name"], "infrastructure_update");
    }

    async fn a_redeploy_is_refused_while_an_operation_runs_or_after_deletion(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        let path = format!("/api/v1/deployments/{id}");
        for status in [
            DeploymentStatus::CreateInProgress,
            DeploymentStatus::UpdateInProgress,
            DeploymentStatus::DeleteInProgress,
            DeploymentStatus::DeleteComplete,
        ] {
            app.set_status(&id, status).await;
            let body = error_body(app.patch_as(ALICE, &path, &json!({"template_inputs": {"num_cpus": 2}})).await, 409).await;
            assert!(body["detail"].as_str().unwrap().contains(status.name()), "{body}");
            assert_eq!(app.stored(&id).await.unwrap().status, status);
        }
        assert_eq!(app.jobs(&id).await.len(), 1);
        for status in [
            DeploymentStatus::CreateComplete,
            DeploymentStatus::CreateFailed,
            DeploymentStatus::UpdateComplete,
            DeploymentStatus::UpdateFailed,
            DeploymentStatus::DeleteFailed,
            DeploymentStatus::Unknown,
        ] {
            app.set_status(&id, status).await;
            let response = app.patch_as(ALICE, &path, &json!({"template_inputs": {"num_cpus": 2}})).await;
            assert_eq!(response.status(), 202, "from {status}");
        }
    }

    async fn a_redeploy_validates_the_merged_inputs_and_follows_visibility(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        app.complete(&id).await;
        let path = format!("/api/v1/deployments/{id}");
        let body = error_body(
            app.patch_as(ALICE, &path, &json!({"template_inputs": {"num_cpus": 3, "mem_size": "1 TB", "disk": 1}})).await,
            422,
        )
        .await;
        assert_eq!(
            sorted(locs(&body)),
            sorted(["/template_inputs/disk", "/template_inputs/mem_size", "/template_inputs/num_cpus"].map(String::from).to_vec())
        );
        error_body(app.patch_as(BOB, &path, &json!({"template_inputs": {"num_cpus": 2}})).await, 404).await;
        let d = app.stored(&id).await.unwrap();
        assert_eq!(d.status, DeploymentStatus::CreateComplete);
        assert_eq!(Value::Object(d.template_inputs), json!({"mem_size": "2 GB"}));
        let response = app.patch_as(ADMIN, &path, &json!({"template_inputs": {"num_cpus": 8}})).await;
        assert_eq!(response.status(), 202);
    }

    // --- 4. DELETE, owners, reset ---

    async fn deleting_a_deployment_without_infrastructure_completes_at_once(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        let response = app.delete_as(ALICE, &format!("/api/v1/deployments/{id}")).await;
        assert_eq!(response.status(), 204);
        let d = app.stored(&id).await.unwrap();
        assert_eq!(d.status, DeploymentStatus::DeleteComplete);
        let jobs = app.jobs(&id).await;
        assert_eq!(jobs.len(), 1);
        assert_eq!((jobs[0].kind, jobs[0].state), (JobKind::Create, JobState::Cancelled));
        assert!(app.stored_resources(&id).await.iter().all(|r| r.status == ResourceStatus::Deleted));
        // Deleted deployments stay listable; deleting again changes nothing.
        assert_eq!(ids(&app.deployments(ALICE, "status=DELETE_COMPLETE").await), [id.as_str()]);
        assert_eq!(app.delete_as(ALICE, &format!("/api/v1/deployments/{id}")).await.status(), 204);
        assert_eq!(app.stored(&id).await.unwrap().version, d.version);
    }

    async fn deleting_cancels_the_running_create_and_starts_a_deletion(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        // The engine recorded the infrastructure it is creating.
        app.alter(&id, |d| d.im_infra_id = Some("inf-1".into())).await;
        let path = format!("/api/v1/deployments/{id}");
        let response = app.delete_as(ALICE, &path).await;
        assert_eq!(response.status(), 202);
        let d = app.stored(&id).await.unwrap();
        assert_eq!(d.status, DeploymentStatus::DeleteInProgress);
        assert_eq!(d.task, Task::InfrastructureDeletion);
        let jobs = app.jobs(&id).await;
        assert_eq!(jobs.len(), 2);
        assert_eq!((jobs[0].kind, jobs[0].state), (JobKind::Create, JobState::Cancelled));
        assert_eq!((jobs[1].kind, jobs[1].state), (JobKind::Delete, JobState::Pending));
        assert_eq!(jobs[1].payload["unsecure"], false);
        // Asking again while it is being deleted starts nothing new.
        assert_eq!(app.delete_as(ALICE, &path).await.status(), 202);
        assert_eq!(app.jobs(&id).await.len(), 2);
    }

    async fn deleting_during_a_running_create_step_waits_for_the_step(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        // A worker is inside a create step: it may be creating an infrastructure
        // that nothing has recorded yet, so the deletion cannot complete at once.
        app.lease_jobs(&id).await;
        let response = app.delete_as(ALICE, &format!("/api/v1/deployments/{id}")).await;
        assert_eq!(response.status(), 202);
        assert_eq!(app.stored(&id).await.unwrap().status, DeploymentStatus::DeleteInProgress);
        let jobs = app.jobs(&id).await;
        assert_eq!((jobs[0].kind, jobs[0].state), (JobKind::Create, JobState::Cancelled));
        assert_eq!((jobs[1].kind, jobs[1].state), (JobKind::Delete, JobState::Pending));
    }

    async fn deleting_again_after_a_failed_deletion_starts_a_new_one(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        app.complete(&id).await;
        let path = format!("/api/v1/deployments/{id}");
        assert_eq!(app.delete_as(ALICE, &path).await.status(), 202);
        assert_eq!(app.post_empty_as(ALICE, &format!("{path}/reset-status")).await.status(), 204);
        assert_eq!(app.stored(&id).await.unwrap().status, DeploymentStatus::DeleteFailed);
        assert_eq!(app.delete_as(ALICE, &path).await.status(), 202);
        let states: Vec<(JobKind, JobState)> = app.jobs(&id).await.iter().map(|j| (j.kind, j.state)).collect();
        assert_eq!(
            states,
            [
                (JobKind::Create, JobState::Done),
                (JobKind::Delete, JobState::Cancelled),
                (JobKind::Delete, JobState::Pending),
            ]
        );
        assert_eq!(app.stored(&id).await.unwrap().status, DeploymentStatus::DeleteInProgress);
    }

    async fn deleting_cancels_a_running_update_too(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        app.complete(&id).await;
        let path = format!("/api/v1/deployments/{id}");
        assert_eq!(app.patch_as(ALICE, &path, &json!({"template_inputs": {"num_cpus": 2}})).await.status(), 202);
        assert_eq!(app.delete_as(ALICE, &path).await.status(), 202);
        let states: Vec<(JobKind, JobState)> = app.jobs(&id).await.iter().map(|j| (j.kind, j.state)).collect();
        assert_eq!(
            states,
            [
                (JobKind::Create, JobState::Done),
                (JobKind::Update, JobState::Cancelled),
                (JobKind::Delete, JobState::Pending),
            ]
        );
        assert_eq!(app.stored(&id).await.unwrap().status, DeploymentStatus::DeleteInProgress);
    }

    async fn force_and_unsecure_are_for_administrators(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        app.complete(&id).await;
        let path = format!("/api/v1/deployments/{id}");
        for query in ["force=true", "unsecure=true", "force=1&unsecure=0"] {
            let body = error_body(app.delete_as(ALICE, &format!("{path}?{query}")).await, 403).await;
            assert!(body["detail"].as_str().unwrap().contains("administrators"), "{body}");
        }
        let body = error_body(app.delete_as(ALICE, &format!("{path}?force=yes")).await, 422).await;
        assert_eq!(locs(&body), ["/query/force"]);
        assert_eq!(app.stored(&id).await.unwrap().status, DeploymentStatus::CreateComplete);

        assert_eq!(app.delete_as(ADMIN, &format!("{path}?unsecure=true")).await.status(), 202);
        let delete = app.jobs(&id).await.pop().unwrap();
        assert_eq!((delete.kind, delete.payload["unsecure"].clone()), (JobKind::Delete, json!(true)));

        let response = app.delete_as(ADMIN, &format!("{path}?force=true")).await;
        assert_eq!(response.status(), 204);
        assert!(app.stored(&id).await.is_none());
        error_body(app.get_as(ADMIN, &path).await, 404).await;
        assert!(app.jobs(&id).await.is_empty());
        assert!(app.stored_resources(&id).await.is_empty());
        assert_eq!(app.count("deployment_owners").await, 0);
        error_body(app.delete_as(ADMIN, &format!("{path}?force=true")).await, 404).await;
    }

    async fn non_owners_cannot_delete_and_administrators_can(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        let path = format!("/api/v1/deployments/{id}");
        error_body(app.delete_as(BOB, &path).await, 404).await;
        assert_eq!(app.stored(&id).await.unwrap().status, DeploymentStatus::CreateInProgress);
        assert_eq!(app.delete_as(ADMIN, &path).await.status(), 204);
        assert_eq!(app.stored(&id).await.unwrap().status, DeploymentStatus::DeleteComplete);
        error_body(app.delete_as(ALICE, &format!("/api/v1/deployments/{}", uuid::Uuid::new_v4())).await, 404).await;
    }

    async fn an_owner_is_added_idempotently(app: TestApp) {
        let alice = app.user_id(ALICE).await;
        let bob = app.user_id(BOB).await;
        let (_, id) = app.alice_deployment().await;
        app.set_status(&id, DeploymentStatus::CreateFailed).await;
        let path = format!("/api/v1/deployments/{id}/owners");
        let response = app.post_as(ALICE, &path, &json!({"id": bob})).await;
        assert_eq!(response.status(), 204);
        let version = app.stored(&id).await.unwrap().version;
        assert_eq!(app.post_as(ALICE, &path, &json!({"id": bob})).await.status(), 204);
        assert_eq!(app.post_as(BOB, &path, &json!({"id": alice})).await.status(), 204);
        let d = app.deployment(BOB, &id).await;
        assert_eq!(d["owned_by"], json!([alice, bob]));
        assert_eq!(d["version"], version);
        assert_eq!(app.count("deployment_owners").await, 2);
        // No VM to update: no job.
        assert_eq!(app.jobs(&id).await.len(), 1);
    }

    async fn adding_an_unknown_user_or_to_an_unseen_deployment_is_not_found(app: TestApp) {
        let bob = app.user_id(BOB).await;
        let admin = app.user_id(ADMIN).await;
        let (_, id) = app.alice_deployment().await;
        let path = format!("/api/v1/deployments/{id}/owners");
        let stranger = uuid::Uuid::new_v4();
        let body = error_body(app.post_as(ALICE, &path, &json!({"id": stranger})).await, 404).await;
        assert!(body["detail"].as_str().unwrap().contains(&stranger.to_string()), "{body}");
        // Bob cannot make himself an owner of what he cannot see.
        error_body(app.post_as(BOB, &path, &json!({"id": bob})).await, 404).await;
        let body = error_body(app.post_as(ALICE, &path, &json!({"id": "bob"})).await, 422).await;
        assert_eq!(locs(&body), ["/id"]);
        let body = error_body(app.post_as(ALICE, &path, &json!({})).await, 422).await;
        assert_eq!(locs(&body), ["/id"]);
        assert_eq!(app.stored(&id).await.unwrap().owned_by.len(), 1);
        // An administrator shares anything; while it is being created, that is a 409.
        let body = error_body(app.post_as(ADMIN, &path, &json!({"id": admin})).await, 409).await;
        assert!(body["detail"].as_str().unwrap().contains("CREATE_IN_PROGRESS"), "{body}");
        app.set_status(&id, DeploymentStatus::CreateFailed).await;
        assert_eq!(app.post_as(ADMIN, &path, &json!({"id": admin})).await.status(), 204);
    }

    async fn adding_an_owner_to_running_vms_pushes_keys_with_a_job(app: TestApp) {
        let bob = app.user_id(BOB).await;
        let (_, id) = app.alice_deployment().await;
        app.complete(&id).await;
        let response = app.post_as(ALICE, &format!("/api/v1/deployments/{id}/owners"), &json!({"id": bob})).await;
        assert_eq!(response.status(), 202);
        let d = app.stored(&id).await.unwrap();
        assert_eq!(d.status, DeploymentStatus::UpdateInProgress);
        let job = app.jobs(&id).await.pop().unwrap();
        assert_eq!((job.kind, job.state), (JobKind::OwnerChange, JobState::Pending));
        assert_eq!(job.payload["user"], bob.as_str());
        assert_eq!(job.payload["add"], true);
        assert_eq!(job.payload["restore_status"], 0);
    }

    async fn an_owner_is_removed_but_never_the_last_one(app: TestApp) {
        let alice = app.user_id(ALICE).await;
        let bob = app.user_id(BOB).await;
        let (_, id) = app.alice_deployment().await;
        app.set_status(&id, DeploymentStatus::CreateFailed).await;
        let owners = format!("/api/v1/deployments/{id}/owners");
        assert_eq!(app.post_as(ALICE, &owners, &json!({"id": bob})).await.status(), 204);

        assert_eq!(app.delete_as(BOB, &format!("{owners}/{alice}")).await.status(), 204);
        assert_eq!(app.stored(&id).await.unwrap().owned_by, [bob.parse::<uuid::Uuid>().unwrap()]);
        error_body(app.get_as(ALICE, &format!("/api/v1/deployments/{id}")).await, 404).await;
        error_body(app.delete_as(ALICE, &format!("{owners}/{bob}")).await, 404).await;

        let body = error_body(app.delete_as(BOB, &format!("{owners}/{bob}")).await, 409).await;
        assert!(body["detail"].as_str().unwrap().contains("last owner"), "{body}");
        let body = error_body(app.delete_as(ADMIN, &format!("{owners}/{bob}")).await, 409).await;
        assert!(body["detail"].as_str().unwrap().contains("last owner"), "{body}");
        // Removing someone who is not an owner does nothing.
        assert_eq!(app.delete_as(BOB, &format!("{owners}/{alice}")).await.status(), 204);
        let stranger = uuid::Uuid::new_v4();
        let body = error_body(app.delete_as(BOB, &format!("{owners}/{stranger}")).await, 404).await;
        assert!(body["detail"].as_str().unwrap().contains(&stranger.to_string()), "{body}");
        let body = error_body(app.delete_as(BOB, &format!("{owners}/alice")).await, 422).await;
        assert_eq!(locs(&body), ["/path/user_id"]);
        assert_eq!(app.stored(&id).await.unwrap().owned_by.len(), 1);
    }

    async fn removing_an_owner_from_running_vms_updates_them_with_a_job(app: TestApp) {
        let bob = app.user_id(BOB).await;
        let (_, id) = app.alice_deployment().await;
        app.set_status(&id, DeploymentStatus::CreateFailed).await;
        let owners = format!("/api/v1/deployments/{id}/owners");
        assert_eq!(app.post_as(ALICE, &owners, &json!({"id": bob})).await.status(), 204);
        app.complete(&id).await;
        let response = app.delete_as(ALICE, &format!("{owners}/{bob}")).await;
        assert_eq!(response.status(), 202);
        let d = app.stored(&id).await.unwrap();
        assert_eq!((d.status, d.owned_by.len()), (DeploymentStatus::UpdateInProgress, 1));
        let job = app.jobs(&id).await.pop().unwrap();
        assert_eq!((job.kind, job.payload["add"].clone()), (JobKind::OwnerChange, json!(false)));
        assert_eq!(job.payload["user"], bob.as_str());
        // While the keys are being changed, owners cannot change again.
        let admin = app.user_id(ADMIN).await;
        let body = error_body(app.post_as(ALICE, &owners, &json!({"id": admin})).await, 409).await;
        assert!(body["detail"].as_str().unwrap().contains("UPDATE_IN_PROGRESS"), "{body}");
    }

    async fn a_reset_turns_in_progress_into_failed_and_cancels_the_job(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        let path = format!("/api/v1/deployments/{id}/reset-status");
        assert_eq!(app.post_empty_as(ALICE, &path).await.status(), 204);
        let d = app.stored(&id).await.unwrap();
        assert_eq!(d.status, DeploymentStatus::CreateFailed);
        assert_eq!(d.task, Task::None);
        assert!(d.status_reason.as_deref().unwrap().contains("CREATE_IN_PROGRESS"));
        assert_eq!(app.jobs(&id).await[0].state, JobState::Cancelled);

        let body = error_body(app.post_empty_as(ALICE, &path).await, 409).await;
        assert!(body["detail"].as_str().unwrap().contains("CREATE_FAILED"), "{body}");

        for (running, failed) in [
            (DeploymentStatus::UpdateInProgress, DeploymentStatus::UpdateFailed),
            (DeploymentStatus::DeleteInProgress, DeploymentStatus::DeleteFailed),
        ] {
            app.set_status(&id, running).await;
            assert_eq!(app.post_empty_as(ADMIN, &path).await.status(), 204);
            assert_eq!(app.stored(&id).await.unwrap().status, failed);
        }
        for status in [DeploymentStatus::CreateComplete, DeploymentStatus::DeleteComplete, DeploymentStatus::Unknown] {
            app.set_status(&id, status).await;
            let body = error_body(app.post_empty_as(ADMIN, &path).await, 409).await;
            assert!(body["detail"].as_str().unwrap().contains(status.name()), "{body}");
        }
        app.set_status(&id, DeploymentStatus::CreateInProgress).await;
        error_body(app.post_empty_as(BOB, &path).await, 404).await;
        assert_eq!(app.stored(&id).await.unwrap().status, DeploymentStatus::CreateInProgress);
    }

    async fn a_reset_of_a_running_update_cancels_only_unfinished_jobs(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        app.complete(&id).await;
        let path = format!("/api/v1/deployments/{id}");
        assert_eq!(app.patch_as(ALICE, &path, &json!({"template_inputs": {"num_cpus": 2}})).await.status(), 202);
        assert_eq!(app.post_empty_as(ALICE, &format!("{path}/reset-status")).await.status(), 204);
        let d = app.stored(&id).await.unwrap();
        assert_eq!(d.status, DeploymentStatus::UpdateFailed);
        let states: Vec<(JobKind, JobState)> = app.jobs(&id).await.iter().map(|j| (j.kind, j.state)).collect();
        assert_eq!(states, [(JobKind::Create, JobState::Done), (JobKind::Update, JobState::Cancelled)]);
        // From UPDATE_FAILED the user may try again.
        assert_eq!(app.patch_as(ALICE, &path, &json!({"template_inputs": {"num_cpus": 4}})).await.status(), 202);
    }

    // --- 7. ETags and concurrency ---

    async fn a_stale_if_match_is_a_failed_precondition(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        app.set_status(&id, DeploymentStatus::CreateFailed).await;
        let path = format!("/api/v1/deployments/{id}");
        let etag = app.get_as(ALICE, &path).await.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(etag, "\"2\"");
        let patch = |tag: &'static str| {
            app.req(reqwest::Method::PATCH, ADMIN, &path).header("if-match", tag).json(&json!({"user_group": "users"}))
        };
        let response = patch("\"2\"").send().await.unwrap();
        assert_eq!(response.status(), 204);
        assert_eq!(response.headers()["etag"], "\"3\"");
        let body = error_body(patch("\"2\"").send().await.unwrap(), 412).await;
        assert!(body["detail"].as_str().unwrap().contains("version 3"), "{body}");
        error_body(patch("W/\"1\"").send().await.unwrap(), 412).await;
        error_body(patch("\"abc\"").send().await.unwrap(), 412).await;
        assert_eq!(patch("*").send().await.unwrap().status(), 204);

        let stale = |method: reqwest::Method, sub: &'static str, p: String| {
            app.req(method, sub, &p).header("if-match", "\"1\"")
        };
        let bob = app.user_id(BOB).await;
        error_body(stale(reqwest::Method::PATCH, ALICE, path.clone()).json(&json!({"template_inputs": {}})).send().await.unwrap(), 412).await;
        error_body(stale(reqwest::Method::DELETE, ALICE, path.clone()).send().await.unwrap(), 412).await;
        error_body(stale(reqwest::Method::POST, ALICE, format!("{path}/owners")).json(&json!({"id": bob})).send().await.unwrap(), 412).await;
        error_body(stale(reqwest::Method::POST, ADMIN, format!("{path}/reset-status")).send().await.unwrap(), 412).await;
        let d = app.stored(&id).await.unwrap();
        assert_eq!((d.status, d.version, d.owned_by.len()), (DeploymentStatus::CreateFailed, 4, 1));

        let current = format!("\"{}\"", d.version);
        let response = app.req(reqwest::Method::DELETE, ALICE, &path).header("if-match", current).send().await.unwrap();
        assert_eq!(response.status(), 204);
    }

    async fn of_parallel_resets_on_one_deployment_exactly_one_succeeds(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        let path = format!("/api/v1/deployments/{id}/reset-status");
        let requests = (0..8).map(|_| app.req(reqwest::Method::POST, ALICE, &path)).collect();
        let statuses = parallel(requests).await;
        assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| matches!(s, 204 | 409)), "{statuses:?}");
        let d = app.stored(&id).await.unwrap();
        assert_eq!((d.status, d.version), (DeploymentStatus::CreateFailed, 2));
    }

    async fn of_parallel_redeploys_on_one_deployment_exactly_one_succeeds(app: TestApp) {
        let (_, id) = app.alice_deployment().await;
        app.complete(&id).await;
        let path = format!("/api/v1/deployments/{id}");
        let requests = [1, 2, 4, 8, 1, 2, 4, 8]
            .map(|cpus| app.req(reqwest::Method::PATCH, ALICE, &path).json(&json!({"template_inputs": {"num_cpus": cpus}})))
            .into_iter()
            .collect();
        let statuses = parallel(requests).await;
        assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| matches!(s, 202 | 409)), "{statuses:?}");
        let updates = app.jobs(&id).await.iter().filter(|j| j.kind == JobKind::Update).count();
        assert_eq!(updates, 1);
        assert_eq!(app.stored(&id).await.unwrap().version, 3);
    }

    async fn of_parallel_different_changes_with_one_etag_exactly_one_succeeds(app: TestApp) {
        let bob = app.user_id(BOB).await;
        let (_, id) = app.alice_deployment().await;
        app.complete(&id).await;
        let path = format!("/api/v1/deployments/{id}");
        let etag = app.get_as(ALICE, &path).await.headers()["etag"].to_str().unwrap().to_string();
        let with_etag = |method: reqwest::Method, sub: &'static str, p: String| {
            app.req(method, sub, &p).header("if-match", etag.clone())
        };
        let requests = vec![
            with_etag(reqwest::Method::PATCH, ALICE, path.clone()).json(&json!({"template_inputs": {"num_cpus": 2}})),
            with_etag(reqwest::Method::PATCH, ADMIN, path.clone()).json(&json!({"user_group": "users"})),
            with_etag(reqwest::Method::DELETE, ALICE, path.clone()),
            with_etag(reqwest::Method::POST, ALICE, format!("{path}/owners")).json(&json!({"id": bob})),
            with_etag(reqwest::Method::PATCH, ALICE, path.clone()).json(&json!({"template_inputs": {"num_cpus": 4}})),
            with_etag(reqwest::Method::PATCH, ADMIN, path.clone()).json(&json!({"user_group": "admins"})),
        ];
        let statuses = parallel(requests).await;
        assert_eq!(statuses.iter().filter(|s| (200..300).contains(*s)).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| matches!(s, 202 | 204 | 409 | 412)), "{statuses:?}");
        assert_eq!(app.stored(&id).await.unwrap().version, 3);
    }
}

/// Sends the requests at the same time, each on its own task; their status codes in
/// order (every failure asserted to carry the error body).
async fn parallel(requests: Vec<reqwest::RequestBuilder>) -> Vec<u16> {
    let handles: Vec<_> = requests
        .into_iter()
        .map(|r| tokio::spawn(async move { r.send().await.expect("request") }))
        .collect();
    let mut statuses = Vec::new();
    for handle in handles {
        let response = handle.await.expect("the request task");
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            error_body(response, status).await;
        }
        statuses.push(status);
    }
    statuses
}
