//! Golden tests of every legacy response shape, from legacy-api.md's examples: the
//! keys, their types and formats, which keys are omitted when null, status codes and
//! content types. The engine is off here; the store is changed behind the API the way
//! the engine would change it.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{ALICE, BOB};
use crate::{app_with, legacy_error, Legacy, LEGACY_VM};
use orchestrator::domain::{DeploymentStatus, ResourceStatus, Task};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("{v} is an object"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

fn assert_date(v: &Value) {
    let re = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d\+0000$").unwrap();
    assert!(
        v.as_str().is_some_and(|s| re.is_match(s)),
        "{v} is yyyy-MM-dd'T'HH:mmZ"
    );
}

fn href(links: &Value, rel: &str) -> String {
    links
        .as_array()
        .expect("links is an array")
        .iter()
        .find(|l| l["rel"] == rel)
        .and_then(|l| l["href"].as_str())
        .unwrap_or_else(|| panic!("no {rel} link in {links}"))
        .to_string()
}

#[tokio::test]
async fn a_created_deployment_has_the_legacy_shape_with_nulls_omitted() {
    let (app, _dir) = app_with(&[], &[]).await;
    let l = Legacy::new(&app);
    let d = l
        .create(ALICE, &json!({"template": LEGACY_VM, "parameters": {"num_cpus": 2}, "userGroup": "beta-testers",
            "callback": "http://127.0.0.1:9/callback"}))
        .await;
    // legacy-api.md §1 DeploymentResource, as a fresh deployment has it: no
    // physicalId, no statusReason (never null), no provider yet.
    assert_eq!(
        keys(&d),
        sorted(&[
            "uuid",
            "creationTime",
            "updateTime",
            "status",
            "outputs",
            "task",
            "callback",
            "userGroup",
            "createdBy",
            "links"
        ])
    );
    assert_eq!(d["status"], "CREATE_IN_PROGRESS");
    assert_eq!(d["task"], "NONE");
    assert_eq!(d["outputs"], json!({}));
    assert_eq!(d["userGroup"], "beta-testers");
    assert_eq!(d["callback"], "http://127.0.0.1:9/callback");
    assert_date(&d["creationTime"]);
    assert_date(&d["updateTime"]);
    assert_eq!(d["createdBy"]["subject"], ALICE);
    assert_eq!(d["createdBy"]["issuer"], app.issuer.issuer());
    assert_eq!(keys(&d["createdBy"]), sorted(&["issuer", "subject"]));
    let id = d["uuid"].as_str().expect("uuid");
    uuid::Uuid::parse_str(id).expect("a UUID");
    let base = format!("{}/orchestrator/deployments/{id}", app.address);
    assert_eq!(href(&d["links"], "self"), base);
    assert_eq!(href(&d["links"], "resources"), format!("{base}/resources"));
    assert_eq!(href(&d["links"], "template"), format!("{base}/template"));
    for link in d["links"].as_array().unwrap() {
        assert_eq!(keys(link), sorted(&["rel", "href"]));
    }
}

#[tokio::test]
async fn a_completed_deployment_shows_its_infrastructure_provider_and_outputs() {
    let (app, _dir) = app_with(&["http://127.0.0.1:9"], &[("ENGINE", "external")]).await;
    let l = Legacy::new(&app);
    let d = l
        .create(ALICE, &crate::create_body(LEGACY_VM, json!({})))
        .await;
    let id = d["uuid"].as_str().unwrap().to_string();
    app.alter(&id, |d| {
        d.status = DeploymentStatus::CreateFailed;
        d.status_reason = Some("Retries on cloud providers exhausted".into());
        d.task = Task::None;
        d.im_infra_id = Some("inf-123".into());
        d.target_provider = Some("dummy0".into());
        d.target_region = Some("region-0".into());
        d.template_outputs = serde_json::from_value(json!({"endpoint": "10.0.0.1"})).unwrap();
    })
    .await;
    let d = l.deployment(ALICE, &id).await;
    assert_eq!(d["physicalId"], "inf-123");
    assert_eq!(d["status"], "CREATE_FAILED");
    assert_eq!(d["statusReason"], "Retries on cloud providers exhausted");
    assert_eq!(d["outputs"]["endpoint"], "10.0.0.1");
    assert_eq!(d["cloudProviderName"], "dummy0");
    let cpe = &d["cloudProviderEndpoint"];
    assert_eq!(
        keys(cpe),
        sorted(&[
            "cpEndpoint",
            "region",
            "cpComputeServiceId",
            "deploymentType",
            "iaasType"
        ])
    );
    assert_eq!(cpe["cpEndpoint"], "https://cloud0.example.org:5000");
    assert_eq!(cpe["region"], "region-0");
    assert_eq!(cpe["deploymentType"], "DUMMY");
    assert_eq!(cpe["iaasType"], cpe["deploymentType"]);
    assert!(!d.to_string().contains("null"), "no null anywhere: {d}");
    // A task of the engine shows as DEPLOYER.
    app.alter(&id, |d| d.task = Task::InfrastructureCreation)
        .await;
    assert_eq!(l.deployment(ALICE, &id).await["task"], "DEPLOYER");
}

#[tokio::test]
async fn lists_are_spring_hateoas_pages_with_absolute_links() {
    let (app, _dir) = app_with(&[], &[]).await;
    let l = Legacy::new(&app);
    let empty = l.json(ALICE, "/deployments").await;
    assert_eq!(keys(&empty), sorted(&["links", "content", "page"]));
    assert_eq!(empty["content"], json!([]));
    assert_eq!(
        empty["page"],
        json!({"size": 10, "totalElements": 0, "totalPages": 0, "number": 0})
    );
    for n in 0..3 {
        l.create(
            ALICE,
            &crate::create_body(&format!("{LEGACY_VM}\n# {n}\n"), json!({})),
        )
        .await;
    }
    let page = l
        .json(ALICE, "/deployments?page=1&size=1&createdBy=me")
        .await;
    assert_eq!(
        page["page"],
        json!({"size": 1, "totalElements": 3, "totalPages": 3, "number": 1})
    );
    let rels: Vec<&str> = page["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap())
        .collect();
    assert_eq!(rels, ["first", "prev", "self", "next", "last"]);
    let base = format!("{}/orchestrator/deployments", app.address);
    assert_eq!(
        href(&page["links"], "next"),
        format!("{base}?createdBy=me&page=2&size=1")
    );
    assert_eq!(
        href(&page["links"], "first"),
        format!("{base}?createdBy=me&page=0&size=1")
    );
    let last = l.json(ALICE, &href(&page["links"], "last")).await;
    assert_eq!(href(&last["links"], "self"), href(&last["links"], "last"));
    assert!(last["links"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["rel"] != "next"));
    // Newest first by default.
    let all = l.json(ALICE, "/deployments").await;
    let times: Vec<&str> = all["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(times.len(), 3);
}

#[tokio::test]
async fn resources_have_the_base_resource_shape_with_vm_info_as_text() {
    let (app, _dir) = app_with(&[], &[]).await;
    let l = Legacy::new(&app);
    let d = l
        .create(
            ALICE,
            &crate::create_body(LEGACY_VM, json!({"vm_count": 2})),
        )
        .await;
    let id = d["uuid"].as_str().unwrap().to_string();
    let stored = app.stored_resources(&id).await;
    assert_eq!(stored.len(), 2);
    let info = json!({"vmProperties": [{"class": "network", "id": "public"}, {"class": "system", "id": "vm", "state": "configured"}]});
    {
        let mut tx = app.state.store.begin().await.unwrap();
        let mut r = stored[0].clone();
        r.im_vm_idx = Some("0".into());
        r.status = ResourceStatus::Started;
        r.metadata = Some(json!({"VirtualMachineInfo": info}));
        orchestrator::store::resources::update(&mut tx, &r)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let page = l.json(ALICE, &format!("/deployments/{id}/resources")).await;
    assert_eq!(keys(&page), sorted(&["links", "content", "page"]));
    let content = page["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    let bound = content
        .iter()
        .find(|r| r["uuid"] == stored[0].id.to_string())
        .expect("bound resource");
    assert_eq!(
        keys(bound),
        sorted(&[
            "uuid",
            "creationTime",
            "updateTime",
            "physicalId",
            "state",
            "toscaNodeType",
            "toscaNodeName",
            "requiredBy",
            "metadata",
            "links"
        ])
    );
    assert_eq!(bound["physicalId"], "0");
    assert_eq!(bound["state"], "STARTED");
    assert_eq!(bound["toscaNodeType"], "tosca.nodes.indigo.Compute");
    assert_eq!(bound["toscaNodeName"], "vm");
    assert_eq!(bound["requiredBy"], json!([]));
    assert_date(&bound["creationTime"]);
    assert_date(&bound["updateTime"]);
    assert_eq!(crate::vm_info(bound), info);
    let rbase = format!("{}/orchestrator/deployments/{id}", app.address);
    assert_eq!(href(&bound["links"], "deployment"), rbase);
    assert_eq!(
        href(&bound["links"], "self"),
        format!("{rbase}/resources/{}", stored[0].id)
    );
    let unbound = content
        .iter()
        .find(|r| r["uuid"] == stored[1].id.to_string())
        .unwrap();
    assert_eq!(unbound["metadata"], json!({}));
    assert!(unbound.get("physicalId").is_none());
    assert_eq!(unbound["state"], "INITIAL");
    let one = l
        .json(
            ALICE,
            &format!("/deployments/{id}/resources/{}", stored[0].id),
        )
        .await;
    assert_eq!(&one, bound);
    // extrainfo: one VirtualMachineInfo per bound VM, as JSON text.
    let extra: Value =
        serde_json::from_str(&l.text(ALICE, &format!("/deployments/{id}/extrainfo")).await)
            .unwrap();
    assert_eq!(extra, json!([info]));
    // type matches the exact type and its ancestors.
    for (t, n) in [
        ("tosca.nodes.Compute", 2),
        ("tosca.nodes.indigo.Compute", 2),
        ("tosca.nodes.BlockStorage", 0),
    ] {
        let page = l
            .json(ALICE, &format!("/deployments/{id}/resources?type={t}"))
            .await;
        assert_eq!(page["content"].as_array().unwrap().len(), n, "type={t}");
        assert!(href(&page["links"], "self").contains(&format!("type={t}")));
    }
}

#[tokio::test]
async fn text_endpoints_answer_plain_text() {
    let (app, _dir) = app_with(&[], &[]).await;
    let l = Legacy::new(&app);
    let d = l
        .create(ALICE, &crate::create_body(LEGACY_VM, json!({})))
        .await;
    let id = d["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        l.text(ALICE, &format!("/deployments/{id}/template")).await,
        LEGACY_VM
    );
    assert_eq!(l.text(ALICE, &format!("/deployments/{id}/log")).await, "");
    assert_eq!(
        l.text(ALICE, &format!("/deployments/{id}/extrainfo")).await,
        "[]"
    );
    orchestrator::store::deployments::set_im_logs(
        &mut app.state.store.conn().await.unwrap(),
        id.parse().unwrap(),
        Some("Contextualization disabled"),
    )
    .await
    .unwrap();
    assert_eq!(
        l.text(ALICE, &format!("/deployments/{id}/log")).await,
        "Contextualization disabled"
    );
}

#[tokio::test]
async fn errors_have_the_legacy_body_and_status_codes() {
    let (app, _dir) = app_with(&[], &[]).await;
    let l = Legacy::new(&app);
    let missing = uuid::Uuid::new_v4();
    let r = l
        .send(Method::GET, ALICE, &format!("/deployments/{missing}"), None)
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(keys(&body), sorted(&["code", "title", "message"]));
    assert_eq!(body["code"], 404);
    assert_eq!(body["title"], "Not Found");
    let d = l
        .create(ALICE, &crate::create_body(LEGACY_VM, json!({})))
        .await;
    let id = d["uuid"].as_str().unwrap().to_string();
    // Another user does not see it.
    legacy_error(
        l.send(Method::GET, BOB, &format!("/deployments/{id}"), None)
            .await,
        404,
    )
    .await;
    legacy_error(
        l.send(Method::DELETE, BOB, &format!("/deployments/{id}"), None)
            .await,
        404,
    )
    .await;
    // No token: 401 with both the legacy and the OAuth fields.
    let r = app.client.get(l.url("/deployments")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], 401);
    assert_eq!(body["error"], "invalid_token");
    // PUT while CREATE_IN_PROGRESS: 409.
    legacy_error(
        l.send(
            Method::PUT,
            ALICE,
            &format!("/deployments/{id}"),
            Some(&json!({"parameters": {}})),
        )
        .await,
        409,
    )
    .await;
    // Reset from another status than DELETE_IN_PROGRESS: 409; another value: 400.
    legacy_error(
        l.send(
            Method::PATCH,
            ALICE,
            &format!("/deployments/{id}"),
            Some(&json!({"status": "DELETE_FAILED"})),
        )
        .await,
        409,
    )
    .await;
    let m = legacy_error(
        l.send(
            Method::PATCH,
            ALICE,
            &format!("/deployments/{id}"),
            Some(&json!({"status": "CREATE_FAILED"})),
        )
        .await,
        400,
    )
    .await;
    assert!(m.starts_with("status"), "{m}");
    // Unknown route and method under the prefix.
    legacy_error(l.send(Method::GET, ALICE, "/nothing-here", None).await, 404).await;
    legacy_error(
        l.send(Method::POST, ALICE, "/info", Some(&json!({}))).await,
        405,
    )
    .await;
}

#[tokio::test]
async fn configuration_is_a_flat_map_of_strings_and_info_is_json() {
    let (app, _dir) = app_with(&["http://127.0.0.1:9"], &[("ENGINE", "external")]).await;
    let l = Legacy::new(&app);
    let conf = l.json(ALICE, "/configuration").await;
    let map = conf.as_object().expect("an object");
    assert!(map.values().all(Value::is_string), "{conf}");
    assert_eq!(conf["im_url"], "http://127.0.0.1:9");
    let info = l.json(ALICE, "/info").await;
    assert!(info["build"]["version"].is_string(), "{info}");
    let root = app
        .client
        .get(app.url("/orchestrator"))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 200);
    assert_eq!(root.text().await.unwrap(), "INDIGO-Orchestrator");
}

#[tokio::test]
async fn status_codes_are_the_legacy_ones() {
    let (app, _dir) = app_with(&[], &[]).await;
    let l = Legacy::new(&app);
    let d = l
        .create(ALICE, &crate::create_body(LEGACY_VM, json!({})))
        .await;
    let id = d["uuid"].as_str().unwrap().to_string();
    app.complete(&id).await;
    let r = l
        .send(
            Method::PUT,
            ALICE,
            &format!("/deployments/{id}"),
            Some(&json!({"parameters": {"num_cpus": 4}})),
        )
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["content-length"], "0");
    assert_eq!(r.text().await.unwrap(), "");
    assert_eq!(
        l.deployment(ALICE, &id).await["status"],
        "UPDATE_IN_PROGRESS"
    );
    app.set_status(&id, DeploymentStatus::UpdateComplete).await;
    let r = l
        .send(Method::DELETE, ALICE, &format!("/deployments/{id}"), None)
        .await;
    assert_eq!(r.status(), 204);
    let d = l.deployment(ALICE, &id).await;
    assert_eq!(d["status"], "DELETE_IN_PROGRESS");
    legacy_error(
        l.send(Method::DELETE, ALICE, &format!("/deployments/{id}"), None)
            .await,
        409,
    )
    .await;
    let r = l
        .send(
            Method::PATCH,
            ALICE,
            &format!("/deployments/{id}"),
            Some(&json!({"status": "DELETE_FAILED"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(l.deployment(ALICE, &id).await["status"], "DELETE_FAILED");
}
