//! What the clients rely on besides the shapes: a trailing slash on `POST
//! /deployments/`, `bearer` in lowercase, a JSON body on DELETE, booleans and
//! numbers as strings; every bad input is a legacy error naming the field, never a
//! 500; the filters (`createdBy`, `userGroup`, `excludedStatus`), the template kept by
//! checksum, `LEGACY_PREFIX`, and links behind a proxy.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{ADMIN, ALICE, BOB};
use crate::{app_with, create_body, legacy_error, Legacy, LEGACY_VM};
use orchestrator::domain::DeploymentStatus;

#[tokio::test]
async fn strings_for_numbers_and_booleans_and_a_trailing_slash_are_accepted() {
    let (app, _dir) = app_with(&[], &[]).await;
    let l = Legacy::new(&app);
    let d = l
        .create(
            ALICE,
            &json!({"template": LEGACY_VM, "parameters": {"vm_count": "2"}, "userGroup": "beta-testers",
                "keepLastAttempt": "true", "timeoutMins": "120", "providerTimeoutMins": "60", "maxProvidersRetry": "2",
                "unknownField": {"ignored": true}}),
        )
        .await;
    let stored = app.stored(d["uuid"].as_str().unwrap()).await.unwrap();
    assert!(stored.keep_last_attempt);
    assert_eq!(stored.tot_timeout_mins, 120);
    assert_eq!(stored.per_provider_timeout_mins, 60);
    assert_eq!(stored.max_providers, Some(2));
    assert_eq!(app.stored_resources(&stored.id.to_string()).await.len(), 2);
    // Without a slash too, and with the scheme in capitals.
    let r = app
        .client
        .post(l.url("/deployments"))
        .bearer_auth(app.token(ALICE))
        .json(&create_body(LEGACY_VM, json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn the_same_template_is_stored_once_and_a_nameless_one_gets_a_name() {
    let (app, _dir) = app_with(&[], &[]).await;
    let l = Legacy::new(&app);
    let a = l.create(ALICE, &create_body(LEGACY_VM, json!({}))).await;
    let b = l
        .create(BOB, &json!({"template": LEGACY_VM, "userGroup": "users"}))
        .await;
    let (a, b) = (
        app.stored(a["uuid"].as_str().unwrap()).await.unwrap(),
        app.stored(b["uuid"].as_str().unwrap()).await.unwrap(),
    );
    assert_eq!(a.template_id, b.template_id);
    assert_eq!(app.count("templates").await, 1);
    let nameless = LEGACY_VM.replace("  template_name: legacy_vm\n", "");
    let c = l.create(ALICE, &create_body(&nameless, json!({}))).await;
    let c = app.stored(c["uuid"].as_str().unwrap()).await.unwrap();
    let t: Value = app
        .get_json(ALICE, &format!("/api/v1/templates/{}", c.template_id))
        .await;
    assert!(t["name"].as_str().unwrap().starts_with("legacy-"), "{t}");
}

#[tokio::test]
async fn bad_inputs_are_legacy_errors_naming_the_field() {
    let (app, _dir) = app_with(&[], &[]).await;
    let l = Legacy::new(&app);
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"parameters": {}}), 400, "template"),
        (json!({"template": "not: [valid"}), 400, "template"),
        (
            json!({"template": "tosca_definitions_version: nope\n"}),
            400,
            "template",
        ),
        (
            json!({"template": LEGACY_VM, "parameters": []}),
            400,
            "parameters",
        ),
        (
            json!({"template": LEGACY_VM, "parameters": {"num_cpus": 3}}),
            400,
            "parameters.num_cpus",
        ),
        (
            json!({"template": LEGACY_VM, "timeoutMins": "soon"}),
            400,
            "timeoutMins",
        ),
        (
            json!({"template": LEGACY_VM, "timeoutMins": 10, "providerTimeoutMins": 20}),
            400,
            "providerTimeoutMins",
        ),
        (
            json!({"template": LEGACY_VM, "keepLastAttempt": "maybe"}),
            400,
            "keepLastAttempt",
        ),
        (
            json!({"template": LEGACY_VM, "maxProvidersRetry": 0}),
            400,
            "maxProvidersRetry",
        ),
        (
            json!({"template": LEGACY_VM, "callback": "not a url"}),
            400,
            "callback",
        ),
        (
            json!({"template": LEGACY_VM, "userGroup": "admins"}),
            403,
            "user group",
        ),
    ];
    for (body, code, field) in cases {
        let r = l
            .send(Method::POST, ALICE, "/deployments/", Some(&body))
            .await;
        let m = legacy_error(r, code).await;
        assert!(m.contains(field), "{body}: '{m}' names {field}");
    }
    let r = l
        .req(Method::POST, ALICE, "/deployments")
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    legacy_error(r, 400).await;
    for (query, field) in [
        ("page=-1", "page"),
        ("size=0", "size"),
        ("sort=colour,desc", "sort"),
        ("sort=createdAt,sideways", "sort"),
        ("excludedStatus=DELETE_COMPLETE,BROKEN", "excludedStatus"),
        ("createdBy=nobody", "createdBy"),
    ] {
        let m = legacy_error(
            l.send(Method::GET, ALICE, &format!("/deployments?{query}"), None)
                .await,
            400,
        )
        .await;
        assert!(m.contains(field), "{query}: {m}");
    }
    let d = l.create(ALICE, &create_body(LEGACY_VM, json!({}))).await;
    let id = d["uuid"].as_str().unwrap().to_string();
    let m = legacy_error(
        l.send(
            Method::PATCH,
            ALICE,
            &format!("/deployments/{id}"),
            Some(&json!({})),
        )
        .await,
        400,
    )
    .await;
    assert!(m.contains("status"));
    let m = legacy_error(
        l.send(
            Method::DELETE,
            ALICE,
            &format!("/deployments/{id}?force=perhaps"),
            None,
        )
        .await,
        400,
    )
    .await;
    assert!(m.contains("force"));
    let rid = app.stored_resources(&id).await[0].id;
    let action = format!("/deployments/{id}/resources/{rid}/actions");
    let m = legacy_error(
        l.send(
            Method::POST,
            ALICE,
            &action,
            Some(&json!({"type": "explode"})),
        )
        .await,
        400,
    )
    .await;
    assert!(m.contains("type"));
    let m = legacy_error(
        l.send(Method::POST, ALICE, &action, Some(&json!({}))).await,
        400,
    )
    .await;
    assert!(m.contains("type"));
    // A VM that is not STOPPED cannot start; an unbound node is no VM yet: 400.
    legacy_error(
        l.send(
            Method::POST,
            ALICE,
            &action,
            Some(&json!({"type": "start"})),
        )
        .await,
        400,
    )
    .await;
    // Malformed ids are unknown ids.
    legacy_error(
        l.send(Method::GET, ALICE, "/deployments/not-a-uuid", None)
            .await,
        404,
    )
    .await;
    legacy_error(
        l.send(
            Method::GET,
            ALICE,
            &format!("/deployments/{id}/resources/nope"),
            None,
        )
        .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn list_filters_follow_the_legacy_meaning() {
    let (app, _dir) = app_with(&[], &[]).await;
    let l = Legacy::new(&app);
    let mine = l.create(ALICE, &create_body(LEGACY_VM, json!({}))).await;
    let mine_id = mine["uuid"].as_str().unwrap().to_string();
    let users = l
        .create(ALICE, &json!({"template": LEGACY_VM, "userGroup": "users"}))
        .await;
    let users_id = users["uuid"].as_str().unwrap().to_string();
    let bobs = l
        .create(BOB, &json!({"template": LEGACY_VM, "userGroup": "users"}))
        .await;
    let bobs_id = bobs["uuid"].as_str().unwrap().to_string();
    app.set_status(&users_id, DeploymentStatus::DeleteComplete)
        .await;
    let ids = |page: &Value| -> Vec<String> {
        let mut v: Vec<String> = page["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["uuid"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // A user sees their own; an admin without createdBy sees everything.
    assert_eq!(
        ids(&l.json(ALICE, "/deployments").await),
        sorted(vec![mine_id.clone(), users_id.clone()])
    );
    assert_eq!(ids(&l.json(ADMIN, "/deployments").await).len(), 3);
    assert_eq!(
        ids(&l.json(ADMIN, "/deployments?createdBy=me").await).len(),
        0
    );
    // sub@issuer, for an admin; a user asking for someone else is refused.
    let bob = format!("{BOB}@{}", app.issuer.issuer());
    assert_eq!(
        ids(&l
            .json(ADMIN, &format!("/deployments?createdBy={}", urlenc(&bob)))
            .await),
        vec![bobs_id.clone()]
    );
    legacy_error(
        l.send(
            Method::GET,
            ALICE,
            &format!("/deployments?createdBy={}", urlenc(&bob)),
            None,
        )
        .await,
        403,
    )
    .await;
    let alice = format!("{ALICE}@{}/", app.issuer.issuer().trim_end_matches('/'));
    assert_eq!(
        ids(&l
            .json(ALICE, &format!("/deployments?createdBy={}", urlenc(&alice)))
            .await)
        .len(),
        2
    );
    assert_eq!(
        ids(&l
            .json(
                ADMIN,
                &format!("/deployments?createdBy={}", urlenc("ghost@https://nowhere"))
            )
            .await)
        .len(),
        0
    );
    // userGroup is exact and must be one of the caller's groups.
    assert_eq!(
        ids(&l.json(ALICE, "/deployments?userGroup=beta-testers").await),
        vec![mine_id.clone()]
    );
    assert_eq!(
        ids(&l.json(ADMIN, "/deployments?userGroup=beta").await).len(),
        0
    );
    legacy_error(
        l.send(
            Method::GET,
            BOB,
            "/deployments?userGroup=beta-testers",
            None,
        )
        .await,
        403,
    )
    .await;
    // excludedStatus as a comma list or repeated.
    assert_eq!(
        ids(&l
            .json(ALICE, "/deployments?excludedStatus=DELETE_COMPLETE")
            .await),
        vec![mine_id.clone()]
    );
    assert_eq!(
        ids(&l
            .json(
                ALICE,
                "/deployments?excludedStatus=DELETE_COMPLETE&excludedStatus=CREATE_IN_PROGRESS"
            )
            .await)
        .len(),
        0
    );
    let all_statuses = "CREATE_IN_PROGRESS,CREATE_COMPLETE,CREATE_FAILED,UPDATE_IN_PROGRESS,UPDATE_COMPLETE,UPDATE_FAILED,DELETE_IN_PROGRESS,DELETE_COMPLETE,DELETE_FAILED,UNKNOWN";
    let page = l
        .json(
            ALICE,
            &format!("/deployments?excludedStatus={all_statuses}"),
        )
        .await;
    assert_eq!(page["content"], json!([]));
    // Sorting by the legacy names.
    let asc = ids(&l.json(ADMIN, "/deployments?sort=createdAt,asc").await);
    assert_eq!(asc.len(), 3);
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn links_honour_the_forwarded_headers() {
    let (app, _dir) = app_with(&[], &[]).await;
    let l = Legacy::new(&app);
    l.create(ALICE, &create_body(LEGACY_VM, json!({}))).await;
    let page: Value = l
        .req(
            Method::GET,
            ALICE,
            "/deployments?excludedStatus=DELETE_COMPLETE&userGroup=beta-testers",
        )
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "paas.example.org")
        .header("x-forwarded-prefix", "/gateway")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me = page["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "self")
        .unwrap();
    assert_eq!(
        me["href"],
        "https://paas.example.org/gateway/orchestrator/deployments?excludedStatus=DELETE_COMPLETE&userGroup=beta-testers&page=0&size=10"
    );
    let d = &page["content"][0];
    assert!(d["links"][0]["href"]
        .as_str()
        .unwrap()
        .starts_with("https://paas.example.org/gateway/orchestrator/deployments/"));
}

#[tokio::test]
async fn the_prefix_is_configurable_and_may_be_the_root() {
    let (app, _dir) = app_with(&[], &[("LEGACY_PREFIX", "")]).await;
    let mut l = Legacy::new(&app);
    l.prefix = String::new();
    let d = l.create(ALICE, &create_body(LEGACY_VM, json!({}))).await;
    assert!(d["links"][0]["href"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/deployments/", app.address)));
    l.json(ALICE, "/deployments").await;
    l.json(ALICE, "/info").await;
    // The v1 API is still there.
    assert_eq!(app.get_as(ALICE, "/api/v1/deployments").await.status(), 200);
    let (app, _dir) = app_with(&[], &[("LEGACY_PREFIX", "/paas/")]).await;
    let mut l = Legacy::new(&app);
    l.prefix = "/paas".into();
    l.create(ALICE, &create_body(LEGACY_VM, json!({}))).await;
    assert_eq!(
        l.json(ALICE, "/deployments").await["page"]["totalElements"],
        1
    );
    assert_eq!(
        app.get_as(ALICE, "/orchestrator/deployments")
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn legacy_force_means_unsecure_for_the_owner_and_keeps_the_row() {
    let (app, _dir) = app_with(&[], &[]).await;
    let l = Legacy::new(&app);
    let d = l.create(ALICE, &create_body(LEGACY_VM, json!({}))).await;
    let id = d["uuid"].as_str().unwrap().to_string();
    app.complete(&id).await;
    let r = l
        .req(
            Method::DELETE,
            ALICE,
            &format!("/deployments/{id}?force=true"),
        )
        .body("{\"some\": \"junk\"}")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        l.deployment(ALICE, &id).await["status"],
        "DELETE_IN_PROGRESS"
    );
    let delete = app
        .jobs(&id)
        .await
        .into_iter()
        .find(|j| j.kind == orchestrator::domain::JobKind::Delete)
        .expect("a delete job");
    assert_eq!(delete.payload["unsecure"], true, "{:?}", delete.payload);
}
