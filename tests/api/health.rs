//! Health, unknown routes, request ids, trailing slashes, OpenAPI and the docs page.

use crate::common::DbKind;
use crate::helpers::{error_body, spawn_app, spawn_app_with, AppOptions};

async fn health_is_healthy_on(db: DbKind) {
    let Some(app) = spawn_app_with(AppOptions {
        db,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let response = app.get("/api/v1/health").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["db_connection"], "healthy");
    assert!(body.get("details").is_none());
    assert!(body.get("opa_connection").is_none());
    let ts = body["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z') && ts.len() == 27,
        "{ts}"
    );
}

#[tokio::test]
async fn health_is_healthy_on_sqlite() {
    health_is_healthy_on(DbKind::Sqlite).await;
}

#[tokio::test]
async fn health_is_healthy_on_postgres() {
    health_is_healthy_on(DbKind::Postgres).await;
}

#[tokio::test]
async fn health_is_healthy_on_mariadb() {
    health_is_healthy_on(DbKind::MySql).await;
}

#[tokio::test]
async fn health_is_unhealthy_with_500_when_the_database_is_lost() {
    let app = spawn_app().await;
    app.state.store.close().await;
    let response = app.get("/api/v1/health").await;
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["db_connection"], "unhealthy");
    assert!(body["details"].as_str().unwrap().contains("database"));
}

#[tokio::test]
async fn unknown_routes_answer_404_with_the_error_body() {
    let app = spawn_app().await;
    let body = error_body(app.get("/api/v1/nothing-here").await, 404).await;
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("/api/v1/nothing-here"));
}

#[tokio::test]
async fn a_wrong_method_answers_405_with_the_error_body() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(app.url("/api/v1/health"))
        .send()
        .await
        .unwrap();
    error_body(response, 405).await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_keeps_the_callers() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/health").await;
    assert!(response.headers().get("x-request-id").is_some());
    let response = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn a_trailing_slash_reaches_the_same_handler_without_redirect() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/health/").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_openapi_document_is_openapi_3_1_and_lists_the_routes() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));

    // Every reference resolves: a schema the code names but never registers would
    // leave clients with a dangling `$ref`.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(
        refs.iter().any(|r| r.starts_with("#/components/schemas/")),
        "the document uses component schemas"
    );
    for r in &refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref '{r}'"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "'{r}' does not resolve"
        );
    }

    // The key routes are listed, and the router serves each of them (no route-level
    // 404 or 405, whatever the handler then says to an anonymous caller).
    let id = uuid::Uuid::new_v4();
    for (method, path) in [
        ("get", "/api/v1/health"),
        ("get", "/api/v1/deployments"),
        ("post", "/api/v1/deployments"),
        ("get", "/api/v1/deployments/{id}"),
        ("patch", "/api/v1/deployments/{id}"),
        ("delete", "/api/v1/deployments/{id}"),
        ("get", "/api/v1/deployments/{id}/logs"),
        ("get", "/api/v1/deployments/{id}/resources"),
        ("get", "/api/v1/deployments/{id}/resources/{resource_id}"),
        (
            "patch",
            "/api/v1/deployments/{id}/resources/{resource_id}/start",
        ),
        ("get", "/api/v1/templates"),
        ("post", "/api/v1/templates"),
        ("get", "/api/v1/templates/{id}"),
        ("delete", "/api/v1/templates/{id}"),
        ("get", "/api/v1/users"),
        ("post", "/api/v1/users"),
        ("get", "/api/v1/users/{id}"),
        ("patch", "/api/v1/users/{id}"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not in the document"
        );
        let concrete = path
            .replace("{id}", &id.to_string())
            .replace("{resource_id}", &id.to_string());
        let response = app
            .client
            .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            status != 405 && !body.contains("no route for"),
            "{method} {concrete} is not served: {status} {body}"
        );
    }
}

fn collect_refs(value: &serde_json::Value, refs: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", serde_json::Value::String(r)) => refs.push(r.clone()),
                    _ => collect_refs(value, refs),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_by_the_binary() {
    let app = spawn_app().await;
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("cdn."),
        "the docs page must not load from a CDN"
    );
    let css = app.get("/docs/swagger-ui.css").await;
    assert_eq!(css.status(), 200);
    let init = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"));
}
