//! The templates API (issue 4): registration as JSON `{content, name?}` or as the YAML
//! itself, the name rule, checksums and duplicates, 422 with line and column for bad
//! content, metadata changes, deletion and its 409, listing with filters, and who may
//! see and change what.

use serde_json::{json, Value};
use sha2::Digest;

use crate::helpers::{
    assert_timestamp, error_body, locs, on_sqlite_and_postgres, variant, ADMIN, ALICE, BOB,
    CLUSTER, SINGLE_VM,
};

/// A template without `metadata.template_name`.
const NAMELESS: &str = "tosca_definitions_version: tosca_simple_yaml_1_2\n\
topology_template:\n  node_templates:\n    vm:\n      type: tosca.nodes.Compute\n";

on_sqlite_and_postgres! {
    async fn registering_a_json_template_answers_201_and_stores_it_verbatim(app: TestApp) {
        let alice = app.user_id(ALICE).await;
        let response = app.post_template(ALICE, SINGLE_VM, None).await;
        assert_eq!(response.status(), 201);
        let location = response.headers()["location"].to_str().unwrap().to_string();
        let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        assert_eq!(location, app.url(&format!("/api/v1/templates/{id}")));

        let t = app.get_json(ALICE, &format!("/api/v1/templates/{id}")).await;
        assert_eq!(t["id"], id.as_str());
        assert_eq!(t["content"], SINGLE_VM);
        assert_eq!(t["checksum"], hex::encode(sha2::Sha256::digest(SINGLE_VM.as_bytes())));
        assert_eq!(t["name"], "single_vm");
        assert_eq!(t["version"], "1.0.0");
        assert_eq!(t["target_provider_type"], "openstack");
        assert_eq!(t["tosca_definition_version"], "tosca_simple_yaml_1_0");
        assert_eq!(t["created_by"], alice.as_str());
        assert_eq!(t["updated_by"], alice.as_str());
        assert_eq!(t["created_at"], t["updated_at"]);
        assert_timestamp(&t["created_at"]);
    }

    async fn registering_the_yaml_itself_takes_the_name_from_the_query(app: TestApp) {
        let response = app.post_template_yaml(ALICE, NAMELESS, "?name=bare%20vm").await;
        assert_eq!(response.status(), 201);
        let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        let t = app.get_json(BOB, &format!("/api/v1/templates/{id}")).await;
        assert_eq!(t["name"], "bare vm");
        assert_eq!(t["content"], NAMELESS);
        assert_eq!(t["version"], Value::Null);
        assert_eq!(t["tosca_definition_version"], "tosca_simple_yaml_1_2");

        // A YAML body whose metadata names it needs no query parameter.
        let response = app
            .req(reqwest::Method::POST, ALICE, "/api/v1/templates/")
            .header("content-type", "application/yaml; charset=utf-8")
            .body(CLUSTER)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }

    async fn the_name_must_come_from_exactly_one_place(app: TestApp) {
        let body = error_body(app.post_template(ALICE, SINGLE_VM, Some("other")).await, 400).await;
        assert!(body["detail"].as_str().unwrap().contains("exactly one"), "{body}");
        let body = error_body(app.post_template(ALICE, NAMELESS, None).await, 400).await;
        assert!(body["detail"].as_str().unwrap().contains("name"), "{body}");
        error_body(app.post_template_yaml(ALICE, NAMELESS, "").await, 400).await;
        assert_eq!(app.post_template(ALICE, NAMELESS, Some("bare")).await.status(), 201);
    }

    async fn content_that_is_not_yaml_is_unprocessable_with_line_and_column(app: TestApp) {
        let broken = "tosca_definitions_version: tosca_simple_yaml_1_0\nmetadata: {template_name: x\n";
        let body = error_body(app.post_template(ALICE, broken, None).await, 422).await;
        assert_eq!(locs(&body), ["/content"]);
        let msg = body["errors"][0]["msg"].as_str().unwrap();
        assert!(msg.contains("line ") && msg.contains("column "), "{msg}");
        assert!(body["detail"].as_str().unwrap().contains("not valid YAML"), "{body}");
    }

    async fn content_that_is_not_tosca_is_unprocessable_with_line_and_column(app: TestApp) {
        let unknown_type = SINGLE_VM.replace("type: tosca.nodes.Compute", "type: tosca.nodes.Nonexistent");
        let body = error_body(app.post_template(ALICE, &unknown_type, None).await, 422).await;
        assert_eq!(locs(&body), ["/content"]);
        let line = unknown_type
            .lines()
            .position(|l| l.contains("tosca.nodes.Nonexistent"))
            .unwrap()
            + 1;
        let msg = body["errors"][0]["msg"].as_str().unwrap();
        assert!(msg.starts_with(&format!("line {line}, column ")), "{msg}");
        assert!(msg.contains("tosca.nodes.Nonexistent"), "{msg}");
        assert!(body["detail"].as_str().unwrap().contains("not valid TOSCA"), "{body}");

        let body = error_body(app.post_template(ALICE, "tosca_definitions_version: 7\n", None).await, 422).await;
        assert_eq!(locs(&body), ["/content"]);
        let body = error_body(app.post_template(ALICE, "   ", Some("blank")).await, 422).await;
        assert_eq!(locs(&body), ["/content"]);
        assert_eq!(app.count("templates").await, 0);
    }

    async fn imports_are_fetched_at_registration_and_an_unfetchable_one_is_named(app: TestApp) {
        // A server of TOSCA type definitions, as INDIGO templates import theirs.
        let types = "tosca_definitions_version: tosca_simple_yaml_1_0\n\
            node_types:\n  tosca.nodes.custom.Server:\n    derived_from: tosca.nodes.Compute\n";
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let types_server = axum::Router::new().route("/types.yaml", axum::routing::get(move || async move { types }));
        tokio::spawn(async move { axum::serve(listener, types_server).await });
        let url = format!("http://{addr}/types.yaml");
        let template = format!(
            "tosca_definitions_version: tosca_simple_yaml_1_0\nimports:\n  - {url}\nmetadata:\n  template_name: imported\n\
             topology_template:\n  node_templates:\n    server:\n      type: tosca.nodes.custom.Server\n"
        );
        let id = app.template(ALICE, &template).await;
        assert_eq!(app.get_json(ALICE, &format!("/api/v1/templates/{id}")).await["content"], template.as_str());
        // Deployments of it know the imported type's ancestors.
        let deployment = app.deploy(ALICE, &id, "beta-testers", json!({})).await;
        let page = app
            .get_json(ALICE, &format!("/api/v1/deployments/{deployment}/resources?type=tosca.nodes.Compute"))
            .await;
        assert_eq!(page["page"]["total_elements"], 1);
        assert_eq!(page["data"][0]["tosca_node_type"], "tosca.nodes.custom.Server");

        let missing = format!("http://{addr}/missing.yaml");
        let body = error_body(app.post_template(ALICE, &template.replace(&url, &missing), None).await, 422).await;
        assert_eq!(locs(&body), ["/content"]);
        assert!(body["detail"].as_str().unwrap().contains(&missing), "{body}");
        let unreachable = "http://127.0.0.1:9/types.yaml";
        let body = error_body(app.post_template(ALICE, &template.replace(&url, unreachable), None).await, 422).await;
        assert!(body["detail"].as_str().unwrap().contains(unreachable), "{body}");
        assert_eq!(app.count("templates").await, 1);
    }

    async fn registering_the_same_content_twice_is_a_conflict_naming_the_existing_template(app: TestApp) {
        let id = app.template(ALICE, SINGLE_VM).await;
        let body = error_body(app.post_template(BOB, SINGLE_VM, None).await, 409).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(&id), "{detail}");
        // One byte more is another template.
        assert_eq!(app.post_template(BOB, &variant(SINGLE_VM, 1), None).await.status(), 201);
    }

    async fn malformed_registration_bodies_are_rejected_with_the_error_body(app: TestApp) {
        let body = error_body(app.post_as(ALICE, "/api/v1/templates", &json!({"name": "x"})).await, 422).await;
        assert_eq!(locs(&body), ["/content"]);
        let body = error_body(
            app.post_as(ALICE, "/api/v1/templates", &json!({"content": SINGLE_VM, "colour": "red"})).await,
            422,
        )
        .await;
        assert_eq!(locs(&body), ["/colour"]);
        let response = app
            .req(reqwest::Method::POST, ALICE, "/api/v1/templates")
            .header("content-type", "application/json")
            .body("{\"content\": ")
            .send()
            .await
            .unwrap();
        error_body(response, 400).await;
        let response = app
            .req(reqwest::Method::POST, ALICE, "/api/v1/templates")
            .header("content-type", "text/plain")
            .body(SINGLE_VM)
            .send()
            .await
            .unwrap();
        error_body(response, 415).await;
        let response = app.client.post(app.url("/api/v1/templates")).json(&json!({"content": SINGLE_VM})).send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        error_body(response, 401).await;
    }

    async fn every_user_reads_every_template(app: TestApp) {
        let id = app.template(ALICE, SINGLE_VM).await;
        for user in [ALICE, BOB, ADMIN] {
            let t = app.get_json(user, &format!("/api/v1/templates/{id}")).await;
            assert_eq!(t["content"], SINGLE_VM);
            let page = app.get_json(user, "/api/v1/templates").await;
            assert_eq!(page["page"]["total_elements"], 1);
            assert_eq!(page["data"][0]["id"], id.as_str());
        }
        let missing = uuid::Uuid::new_v4();
        let body = error_body(app.get_as(BOB, &format!("/api/v1/templates/{missing}")).await, 404).await;
        assert!(body["detail"].as_str().unwrap().contains(&missing.to_string()));
        let body = error_body(app.get_as(BOB, "/api/v1/templates/not-a-uuid").await, 422).await;
        assert_eq!(locs(&body), ["/path/id"]);
        error_body(app.get(&format!("/api/v1/templates/{id}")).await, 401).await;
    }

    async fn the_creator_changes_metadata_with_patch_and_never_the_content(app: TestApp) {
        let alice = app.user_id(ALICE).await;
        let id = app.template(ALICE, SINGLE_VM).await;
        let path = format!("/api/v1/templates/{id}");
        let before = app.get_json(ALICE, &path).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;

        let response = app.patch_as(ALICE, &path, &json!({"version": "1.1.0", "target_provider_type": null})).await;
        assert_eq!(response.status(), 204);
        let after = app.get_json(ALICE, &path).await;
        assert_eq!(after["version"], "1.1.0");
        assert_eq!(after["target_provider_type"], Value::Null);
        assert_eq!(after["name"], "single_vm");
        assert_eq!(after["content"], before["content"]);
        assert_eq!(after["checksum"], before["checksum"]);
        assert_eq!(after["created_at"], before["created_at"]);
        assert_eq!(after["updated_by"], alice.as_str());
        assert!(after["updated_at"].as_str() > before["updated_at"].as_str());

        let body = error_body(app.patch_as(ALICE, &path, &json!({"content": "x"})).await, 422).await;
        assert_eq!(locs(&body), ["/content"]);
        // Every violation at once.
        let body = error_body(
            app.patch_as(ALICE, &path, &json!({"name": " ", "tosca_definition_version": "tosca_2_0"})).await,
            422,
        )
        .await;
        assert_eq!(locs(&body), ["/name", "/tosca_definition_version"]);
        let long = "n".repeat(256);
        let body = error_body(app.patch_as(ALICE, &path, &json!({"name": long})).await, 422).await;
        assert_eq!(locs(&body), ["/name"]);
        assert_eq!(app.get_json(ALICE, &path).await["name"], "single_vm");
    }

    async fn put_replaces_the_metadata_and_requires_a_name(app: TestApp) {
        let id = app.template(ALICE, SINGLE_VM).await;
        let path = format!("/api/v1/templates/{id}");
        let body = error_body(app.put_as(ALICE, &path, &json!({"version": "2"})).await, 422).await;
        assert_eq!(locs(&body), ["/name"]);
        let response = app
            .put_as(
                ALICE,
                &path,
                &json!({"name": "single_vm/vm_with_volume", "version": "v1.2.3", "target_provider_type": "openstack", "tosca_definition_version": "tosca_simple_yaml_1_3"}),
            )
            .await;
        assert_eq!(response.status(), 204);
        let t = app.get_json(BOB, &path).await;
        assert_eq!(t["name"], "single_vm/vm_with_volume");
        assert_eq!(t["version"], "v1.2.3");
        assert_eq!(t["tosca_definition_version"], "tosca_simple_yaml_1_3");
        let missing = uuid::Uuid::new_v4();
        error_body(app.put_as(ALICE, &format!("/api/v1/templates/{missing}"), &json!({"name": "x"})).await, 404).await;
    }

    async fn only_the_creator_or_an_administrator_changes_or_deletes_a_template(app: TestApp) {
        let id = app.template(ALICE, SINGLE_VM).await;
        let path = format!("/api/v1/templates/{id}");
        error_body(app.patch_as(BOB, &path, &json!({"version": "9"})).await, 403).await;
        error_body(app.put_as(BOB, &path, &json!({"name": "mine"})).await, 403).await;
        error_body(app.delete_as(BOB, &path).await, 403).await;
        assert_eq!(app.get_json(BOB, &path).await["version"], "1.0.0");

        let admin = app.user_id(ADMIN).await;
        assert_eq!(app.patch_as(ADMIN, &path, &json!({"version": "9"})).await.status(), 204);
        assert_eq!(app.get_json(ALICE, &path).await["updated_by"], admin.as_str());
        assert_eq!(app.delete_as(ADMIN, &path).await.status(), 204);
        error_body(app.get_as(ALICE, &path).await, 404).await;
        error_body(app.delete_as(ALICE, &path).await, 404).await;

        let own = app.template(BOB, SINGLE_VM).await;
        assert_eq!(app.delete_as(BOB, &format!("/api/v1/templates/{own}")).await.status(), 204);
    }

    async fn deleting_a_template_in_use_is_a_conflict(app: TestApp) {
        let (template, deployment) = app.alice_deployment().await;
        let path = format!("/api/v1/templates/{template}");
        let body = error_body(app.delete_as(ALICE, &path).await, 409).await;
        assert!(body["detail"].as_str().unwrap().contains(&template), "{body}");
        // A deleted deployment is still listed, so it still uses the template.
        assert_eq!(app.delete_as(ALICE, &format!("/api/v1/deployments/{deployment}")).await.status(), 204);
        error_body(app.delete_as(ADMIN, &path).await, 409).await;
        // Once its rows are gone, the template can go.
        let response = app.delete_as(ADMIN, &format!("/api/v1/deployments/{deployment}?force=true")).await;
        assert_eq!(response.status(), 204);
        assert_eq!(app.delete_as(ALICE, &path).await.status(), 204);
        assert_eq!(app.count("templates").await, 0);
    }

    async fn templates_are_listed_with_filters_sort_and_page_links(app: TestApp) {
        let alice = app.user_id(ALICE).await;
        let bob = app.user_id(BOB).await;
        for n in 0..5 {
            let response = app.post_template(ALICE, &variant(NAMELESS, n), Some(&format!("Alpha {n}"))).await;
            assert_eq!(response.status(), 201);
        }
        for n in 5..7 {
            let response = app.post_template(BOB, &variant(NAMELESS, n), Some(&format!("beta {n}"))).await;
            assert_eq!(response.status(), 201);
        }
        let cluster = app.template(BOB, CLUSTER).await;

        let page = app.get_json(ALICE, "/api/v1/templates?size=100").await;
        assert_eq!(page["page"]["total_elements"], 8);
        // Newest first by default.
        assert_eq!(page["data"][0]["id"], cluster.as_str());

        let page = app.get_json(ALICE, "/api/v1/templates?name=ALPHA").await;
        assert_eq!(page["page"]["total_elements"], 5);
        let page = app.get_json(ALICE, "/api/v1/templates?created_by=me").await;
        assert_eq!(page["page"]["total_elements"], 5);
        let page = app.get_json(ALICE, &format!("/api/v1/templates?created_by={bob}")).await;
        assert_eq!(page["page"]["total_elements"], 3);
        let page = app.get_json(BOB, &format!("/api/v1/templates?created_by={alice},{bob}")).await;
        assert_eq!(page["page"]["total_elements"], 8);
        let page = app.get_json(ALICE, "/api/v1/templates?version=2.1&target_provider_type=openstack").await;
        assert_eq!(page["page"]["total_elements"], 1);
        let t = app.get_json(ALICE, &format!("/api/v1/templates/{cluster}")).await;
        let checksum = t["checksum"].as_str().unwrap();
        let page = app.get_json(ALICE, &format!("/api/v1/templates?checksum={checksum}")).await;
        assert_eq!(page["data"][0]["id"], cluster.as_str());
        let page = app.get_json(ALICE, "/api/v1/templates?tosca_definition_version=1_2").await;
        assert_eq!(page["page"]["total_elements"], 7);
        let page = app.get_json(ALICE, "/api/v1/templates?created_after=2000-01-01&created_before=2000-01-02").await;
        assert_eq!(page["page"]["total_elements"], 0);

        let page = app.get_json(ALICE, "/api/v1/templates/?name=a&sort=name&size=3&page=2").await;
        let names: Vec<&str> = page["data"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Alpha 3", "Alpha 4", "beta 5"]);
        assert_eq!(page["page"], json!({"size": 3, "number": 2, "total_elements": 8, "total_pages": 3}));
        let base = app.url("/api/v1/templates");
        assert_eq!(page["links"]["first"], format!("{base}?name=a&sort=name&page=1&size=3"));
        assert_eq!(page["links"]["prev"], format!("{base}?name=a&sort=name&page=1&size=3"));
        assert_eq!(page["links"]["next"], format!("{base}?name=a&sort=name&page=3&size=3"));
        assert_eq!(page["links"]["last"], format!("{base}?name=a&sort=name&page=3&size=3"));
        let last = app.get_json(ALICE, "/api/v1/templates?name=a&sort=-name&size=3&page=3").await;
        assert_eq!(last["links"]["next"], Value::Null);
        let names: Vec<&str> = last["data"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Alpha 1", "Alpha 0"]);

        let body = error_body(app.get_as(ALICE, "/api/v1/templates?sort=content").await, 422).await;
        assert_eq!(locs(&body), ["/query/sort"]);
        let body = error_body(app.get_as(ALICE, "/api/v1/templates?content=x&size=101&page=0").await, 422).await;
        assert_eq!(locs(&body), ["/query/content", "/query/size", "/query/page"]);
        let body = error_body(app.get_as(ALICE, "/api/v1/templates?created_by=bob").await, 422).await;
        assert_eq!(locs(&body), ["/query/created_by"]);
    }
}
