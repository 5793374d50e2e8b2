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
    assert!(doc["paths"]["/api/v1/health"]["get"].is_object());
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
