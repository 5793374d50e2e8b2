//! The users API.

use serde_json::json;

use crate::common::DbKind;
use crate::helpers::{error_body, spawn_app, spawn_app_with, AppOptions, ADMIN, ALICE, BOB};

#[tokio::test]
async fn registering_answers_201_with_location_and_a_second_time_409() {
    let app = spawn_app().await;
    let response = app.post_as(ALICE, "/api/v1/users", &json!({})).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let id = response.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(location, app.url(&format!("/api/v1/users/{id}")));
    let body = error_body(app.post_as(ALICE, "/api/v1/users/", &json!({})).await, 409).await;
    assert!(body["detail"].as_str().unwrap().contains("alice"));
}

#[tokio::test]
async fn the_first_authenticated_access_registers_the_caller() {
    let app = spawn_app().await;
    let me: serde_json::Value = app
        .get_as(BOB, "/api/v1/users/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], BOB);
    assert_eq!(me["email"], "bob@example.org");
    assert_eq!(me["issuer"], app.issuer.issuer());
    error_body(app.post_as(BOB, "/api/v1/users", &json!({})).await, 409).await;
}

#[tokio::test]
async fn non_admins_see_only_themselves_and_admins_everyone() {
    let app = spawn_app().await;
    let alice = app.user_id(ALICE).await;
    let bob = app.user_id(BOB).await;
    let page: serde_json::Value = app
        .get_as(ALICE, "/api/v1/users")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["page"]["total_elements"], 1);
    assert_eq!(page["data"][0]["id"], alice.as_str());
    error_body(
        app.get_as(ALICE, &format!("/api/v1/users/{bob}")).await,
        404,
    )
    .await;
    error_body(
        app.get_as(ALICE, &format!("/api/v1/users?id={bob}")).await,
        403,
    )
    .await;
    let page: serde_json::Value = app
        .get_as(ADMIN, "/api/v1/users?sort=username")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["page"]["total_elements"], 3);
    assert_eq!(page["data"][0]["username"], "alice");
    assert_eq!(
        app.get_as(ADMIN, &format!("/api/v1/users/{bob}"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn users_work_on_postgres_too() {
    let Some(app) = spawn_app_with(AppOptions {
        db: DbKind::Postgres,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let me: serde_json::Value = app
        .get_as(ALICE, "/api/v1/users/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], ALICE);
    let app2 = AppOptions::default().var("LOG_LEVEL", "error");
    assert_eq!(app2.vars["LOG_LEVEL"], "error");
}

#[tokio::test]
async fn a_user_changes_their_picture_and_deletes_themselves() {
    let app = spawn_app().await;
    let response = app
        .patch_as(
            ALICE,
            "/api/v1/users/me",
            &json!({"picture": "https://img.example.org/a.png"}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let token = app.token(ALICE);
    let me: serde_json::Value = app
        .get_with_token(&token, "/api/v1/users/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["picture"], "https://img.example.org/a.png");
    assert_eq!(app.delete_as(ALICE, "/api/v1/users/me").await.status(), 204);
}
