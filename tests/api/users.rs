//! The users API: registration (explicit and at first access), `/users/me`, the
//! fields users change, the refresh token nobody else sees, lists as admin and
//! non-admin, and deletion. Every test runs on SQLite, PostgreSQL and MariaDB.

use orchestrator::auth::dev_issuer::DevUser;
use serde_json::{json, Value};

use crate::common::DbKind;
use crate::helpers::{error_body, spawn_app_with, AppOptions, TestApp, ADMIN, ALICE, BOB};

const ED25519_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICQlFSrnW5oERqt3cGpKpjuYYRzv/NQkh2glhsOJq6I+ alice@laptop";
const RSA_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCYZjeQr7pSEc5GVbpZYGPFFalAOJSDlDGhAHrrwKW+nsGmHQmtzPK7HjBYOKnx19nNwvJNqypSIEroYV0iCc6TldFmFPhcCRS11ExBiqw8lPJh6pKpfIO5PkkAbDU6rP9SfpBcGMjZRXMNJaz9ygJBmkyiD2UKkar6dMUB40Flw+nnHkFmLGDxUrXcPOISxJ51bVquwjQF1T923JBus+ptFf9u40qDZ6gx3+VTS66uyMmMt63IT/4r5PTwn0O2BFEL4ZJlBkR+5hvFL10u1tF7lxTroDERs3O+2sPFJ4I/F7yXcMH6Rt9Na9HyEGOx1JkpOFNNFhr7Ye2fJmJGW6rR alice@desktop";
const TEMPLATE: &str = include_str!("../fixtures/single_vm.yaml");

/// One `#[tokio::test]` per database for each `async fn name(db: DbKind)`.
macro_rules! on_every_database {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::common::DbKind;
            #[tokio::test]
            async fn sqlite() {
                super::$name(DbKind::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(DbKind::Postgres).await;
            }
            #[tokio::test]
            async fn mariadb() {
                super::$name(DbKind::MySql).await;
            }
        }
    )*};
}

on_every_database!(
    registering_answers_201_with_a_location_and_a_second_time_409,
    the_first_authenticated_access_registers_the_caller,
    simultaneous_first_requests_register_the_caller_once,
    users_me_is_the_callers_record,
    a_user_sets_an_ed25519_or_rsa_public_ssh_key,
    a_public_ssh_key_that_is_not_openssh_is_422_naming_the_field,
    a_picture_must_be_an_http_url_and_null_clears_it,
    fields_users_may_not_change_are_refused_by_name,
    the_refresh_token_is_shown_to_its_owner_only,
    an_administrator_may_change_another_users_profile_but_not_their_refresh_token,
    administrators_list_everyone_with_filters_sort_and_pages,
    non_administrators_list_only_themselves,
    reading_another_user_is_404_for_non_administrators,
    a_user_who_created_a_template_or_owns_a_deployment_cannot_be_deleted,
    an_administrator_deletes_a_user_who_owns_nothing,
    a_user_deletes_themselves_and_comes_back_as_a_new_user,
);

async fn app_on(db: DbKind) -> Option<TestApp> {
    spawn_app_with(AppOptions {
        db,
        ..Default::default()
    })
    .await
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    response.json().await.expect("JSON body")
}

/// Registers test users beyond alice, bob and root.
fn add_users(app: &TestApp, subs: &[&str]) {
    for sub in subs {
        app.issuer.add_user(DevUser {
            sub: sub.to_string(),
            name: format!("{sub} name"),
            username: sub.to_string(),
            email: format!("{sub}@example.org"),
            groups: vec!["users".into()],
        });
    }
}

fn usernames(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|u| u["username"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn registering_answers_201_with_a_location_and_a_second_time_409(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    let response = app.post_as(ALICE, "/api/v1/users", &json!({})).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let id = json_of(response, 201).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(location, app.url(&format!("/api/v1/users/{id}")));
    let user = json_of(
        app.get_as(ALICE, location.trim_start_matches(&app.address))
            .await,
        200,
    )
    .await;
    assert_eq!(user["id"], id.as_str());
    assert_eq!(user["sub"], ALICE);
    assert_eq!(user["issuer"], app.issuer.issuer());
    assert_eq!(user["name"], "alice name");
    assert_eq!(user["username"], "alice");
    assert_eq!(user["email"], "alice@example.org");
    let body = error_body(app.post_as(ALICE, "/api/v1/users/", &json!({})).await, 409).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("alice") && detail.contains("already registered"),
        "{detail}"
    );
}

async fn the_first_authenticated_access_registers_the_caller(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    let me = json_of(app.get_as(BOB, "/api/v1/users/me").await, 200).await;
    assert_eq!(me["sub"], BOB);
    assert_eq!(me["email"], "bob@example.org");
    assert_eq!(me["issuer"], app.issuer.issuer());
    // The same user on later requests, and the explicit registration finds it.
    let again = json_of(app.get_as(BOB, "/api/v1/users/me").await, 200).await;
    assert_eq!(again["id"], me["id"]);
    error_body(app.post_as(BOB, "/api/v1/users", &json!({})).await, 409).await;
    let page = json_of(app.get_as(ADMIN, "/api/v1/users?sub=bob").await, 200).await;
    assert_eq!(page["page"]["total_elements"], 1);
}

async fn simultaneous_first_requests_register_the_caller_once(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let request = app
            .client
            .get(app.url("/api/v1/users/me"))
            .bearer_auth(app.token(ALICE));
        requests.spawn(async move { request.send().await });
    }
    let mut ids = Vec::new();
    while let Some(response) = requests.join_next().await {
        ids.push(json_of(response.unwrap().unwrap(), 200).await["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let page = json_of(app.get_as(ADMIN, "/api/v1/users?sub=alice").await, 200).await;
    assert_eq!(page["page"]["total_elements"], 1);
}

async fn users_me_is_the_callers_record(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    let me = json_of(app.get_as(ALICE, "/api/v1/users/me").await, 200).await;
    let mut keys: Vec<_> = me.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "email",
            "id",
            "issuer",
            "name",
            "picture",
            "public_ssh_key",
            "sub",
            "updated_at",
            "username"
        ]
    );
    assert!(me["picture"].is_null() && me["public_ssh_key"].is_null());
    let created = me["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok()
            && created.ends_with('Z')
            && created.len() == 27,
        "{created}"
    );
    let by_id = json_of(
        app.get_as(
            ALICE,
            &format!("/api/v1/users/{}", me["id"].as_str().unwrap()),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(by_id, me);
}

async fn a_user_sets_an_ed25519_or_rsa_public_ssh_key(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    for key in [ED25519_KEY, RSA_KEY] {
        let response = app
            .patch_as(
                ALICE,
                "/api/v1/users/me",
                &json!({"public_ssh_key": format!("  {key}\n")}),
            )
            .await;
        assert_eq!(response.status(), 204);
        let me = json_of(app.get_as(ALICE, "/api/v1/users/me").await, 200).await;
        assert_eq!(
            me["public_ssh_key"], key,
            "stored without the blanks around it"
        );
    }
    // A PATCH of another field keeps the key.
    let response = app
        .patch_as(
            ALICE,
            "/api/v1/users/me",
            &json!({"picture": "https://img.example.org/a.png"}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let me = json_of(app.get_as(ALICE, "/api/v1/users/me").await, 200).await;
    assert_eq!(me["public_ssh_key"], RSA_KEY);
    assert_ne!(me["updated_at"], me["created_at"]);
}

async fn a_public_ssh_key_that_is_not_openssh_is_422_naming_the_field(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    let response = app
        .patch_as(
            ALICE,
            "/api/v1/users/me",
            &json!({"public_ssh_key": ED25519_KEY}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let truncated = &ED25519_KEY[..40];
    for bad in [
        "not a key",
        "ssh-rsa !!!notbase64!!!",
        truncated,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
        "",
    ] {
        let body = error_body(
            app.patch_as(ALICE, "/api/v1/users/me", &json!({"public_ssh_key": bad}))
                .await,
            422,
        )
        .await;
        assert_eq!(body["errors"][0]["loc"], "/public_ssh_key", "{bad}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("public_ssh_key"),
            "{body}"
        );
    }
    let body = error_body(
        app.patch_as(ALICE, "/api/v1/users/me", &json!({"public_ssh_key": 42}))
            .await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["loc"], "/public_ssh_key");
    // The key stored before is untouched.
    let me = json_of(app.get_as(ALICE, "/api/v1/users/me").await, 200).await;
    assert_eq!(me["public_ssh_key"], ED25519_KEY);
}

async fn a_picture_must_be_an_http_url_and_null_clears_it(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    for bad in [
        "ftp://img.example.org/a.png",
        "javascript:alert(1)",
        "a.png",
    ] {
        let body = error_body(
            app.patch_as(ALICE, "/api/v1/users/me", &json!({"picture": bad}))
                .await,
            422,
        )
        .await;
        assert_eq!(body["errors"][0]["loc"], "/picture", "{bad}");
    }
    let long = format!("https://img.example.org/{}", "a".repeat(2048));
    let body = error_body(
        app.patch_as(ALICE, "/api/v1/users/me", &json!({"picture": long}))
            .await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["loc"], "/picture");
    let response = app
        .patch_as(
            ALICE,
            "/api/v1/users/me",
            &json!({"picture": "https://img.example.org/a.png", "public_ssh_key": ED25519_KEY}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let response = app
        .patch_as(ALICE, "/api/v1/users/me", &json!({"picture": null}))
        .await;
    assert_eq!(response.status(), 204);
    let me = json_of(app.get_as(ALICE, "/api/v1/users/me").await, 200).await;
    assert!(me["picture"].is_null());
    assert_eq!(me["public_ssh_key"], ED25519_KEY, "an absent field is kept");
}

async fn fields_users_may_not_change_are_refused_by_name(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    for field in ["email", "sub", "issuer", "username", "id"] {
        let body = error_body(
            app.patch_as(ALICE, "/api/v1/users/me", &json!({field: "changed"}))
                .await,
            422,
        )
        .await;
        assert_eq!(body["errors"][0]["loc"], format!("/{field}"), "{body}");
    }
    let me = json_of(app.get_as(ALICE, "/api/v1/users/me").await, 200).await;
    assert_eq!(me["email"], "alice@example.org");
    assert_eq!(me["sub"], ALICE);
}

async fn the_refresh_token_is_shown_to_its_owner_only(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    let alice = app.user_id(ALICE).await;
    app.user_id(ADMIN).await;
    let refresh = app.issuer.refresh_token(ALICE);
    let response = app
        .patch_as(
            ALICE,
            "/api/v1/users/me",
            &json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(response.status(), 204);
    // Its owner reads it back...
    let me = json_of(app.get_as(ALICE, "/api/v1/users/me").await, 200).await;
    assert_eq!(me["refresh_token"], refresh.as_str());
    // ...nobody else does, neither in the item nor in the list.
    let seen_by_admin = json_of(
        app.get_as(ADMIN, &format!("/api/v1/users/{alice}")).await,
        200,
    )
    .await;
    assert!(
        seen_by_admin.get("refresh_token").is_none(),
        "{seen_by_admin}"
    );
    let list = app
        .get_as(ADMIN, "/api/v1/users")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !list.contains(&refresh) && !list.contains("refresh_token"),
        "{list}"
    );
    // It is not stored in plain text.
    let mut conn = app.state.store.conn().await.unwrap();
    let stored = orchestrator::store::users::get(&mut conn, alice.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .refresh_token
        .unwrap();
    drop(conn);
    assert!(!stored.contains(&refresh), "stored in plain text");
    // null forgets it.
    let response = app
        .patch_as(ALICE, "/api/v1/users/me", &json!({"refresh_token": null}))
        .await;
    assert_eq!(response.status(), 204);
    let me = json_of(app.get_as(ALICE, "/api/v1/users/me").await, 200).await;
    assert!(me.get("refresh_token").is_none(), "{me}");
}

async fn an_administrator_may_change_another_users_profile_but_not_their_refresh_token(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    let alice = app.user_id(ALICE).await;
    let path = format!("/api/v1/users/{alice}");
    let response = app
        .patch_as(
            ADMIN,
            &path,
            &json!({"picture": "https://img.example.org/b.png"}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let body = error_body(
        app.patch_as(ADMIN, &path, &json!({"refresh_token": "rt-planted"}))
            .await,
        403,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("owner"));
    let me = json_of(app.get_as(ALICE, "/api/v1/users/me").await, 200).await;
    assert_eq!(me["picture"], "https://img.example.org/b.png");
    assert!(me.get("refresh_token").is_none());
    // A non-admin cannot touch someone else at all.
    let bob = app.user_id(BOB).await;
    error_body(
        app.patch_as(
            ALICE,
            &format!("/api/v1/users/{bob}"),
            &json!({"picture": "https://img.example.org/c.png"}),
        )
        .await,
        404,
    )
    .await;
}

async fn administrators_list_everyone_with_filters_sort_and_pages(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    add_users(&app, &["carol", "dave"]);
    for sub in [ALICE, BOB, "carol", "dave", ADMIN] {
        app.user_id(sub).await;
    }
    let page = json_of(
        app.get_as(ADMIN, "/api/v1/users?sort=username&size=2")
            .await,
        200,
    )
    .await;
    assert_eq!(usernames(&page), ["alice", "bob"]);
    assert_eq!(
        page["page"],
        json!({"size": 2, "number": 1, "total_elements": 5, "total_pages": 3})
    );
    let next = page["links"]["next"].as_str().unwrap();
    assert!(next.starts_with(&app.url("/api/v1/users?")), "{next}");
    assert!(next.contains("sort=username") && next.contains("page=2") && next.contains("size=2"));
    assert!(page["links"]["prev"].is_null());
    let last = json_of(
        app.get_as(ADMIN, "/api/v1/users?sort=username&size=2&page=3")
            .await,
        200,
    )
    .await;
    assert_eq!(usernames(&last), ["root"]);
    assert!(last["links"]["next"].is_null());
    let page = json_of(app.get_as(ADMIN, "/api/v1/users?sort=-username").await, 200).await;
    assert_eq!(usernames(&page), ["root", "dave", "carol", "bob", "alice"]);
    // Default order: newest first.
    let page = json_of(app.get_as(ADMIN, "/api/v1/users").await, 200).await;
    assert_eq!(usernames(&page), ["root", "dave", "carol", "bob", "alice"]);

    for (query, expected) in [
        ("username=AL", vec!["alice"]),
        (
            "email=EXAMPLE.ORG&sort=username&size=10",
            vec!["alice", "bob", "carol", "dave", "root"],
        ),
        ("sub=bob", vec!["bob"]),
        ("sub=bo", vec![]),
        ("sub=alice&sub=carol&sort=username", vec!["alice", "carol"]),
        ("sub=alice,dave&sort=username", vec!["alice", "dave"]),
        ("name=ROOT%20NA", vec!["root"]),
        ("id=me", vec!["root"]),
    ] {
        let page = json_of(
            app.get_as(ADMIN, &format!("/api/v1/users?{query}")).await,
            200,
        )
        .await;
        assert_eq!(usernames(&page), expected, "{query}");
    }
    let bob = json_of(app.get_as(BOB, "/api/v1/users/me").await, 200).await;
    let after = bob["created_at"].as_str().unwrap().replace('+', "%2B");
    let page = json_of(
        app.get_as(
            ADMIN,
            &format!("/api/v1/users?created_after={after}&sort=username"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(usernames(&page), ["bob", "carol", "dave", "root"]);

    for (query, param) in [
        ("sort=password", "sort"),
        ("size=101", "size"),
        ("page=0", "page"),
        ("created_after=yesterday", "created_after"),
    ] {
        let body = error_body(
            app.get_as(ADMIN, &format!("/api/v1/users?{query}")).await,
            422,
        )
        .await;
        assert_eq!(
            body["errors"][0]["loc"],
            format!("/query/{param}"),
            "{body}"
        );
    }
}

async fn non_administrators_list_only_themselves(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    let alice = app.user_id(ALICE).await;
    let bob = app.user_id(BOB).await;
    app.user_id(ADMIN).await;
    let page = json_of(app.get_as(ALICE, "/api/v1/users").await, 200).await;
    assert_eq!(page["page"]["total_elements"], 1);
    assert_eq!(page["data"][0]["id"], alice.as_str());
    // Filters narrow down further, never widen.
    let page = json_of(app.get_as(ALICE, "/api/v1/users?username=bob").await, 200).await;
    assert_eq!(page["page"]["total_elements"], 0);
    let page = json_of(
        app.get_as(ALICE, "/api/v1/users?email=example.org").await,
        200,
    )
    .await;
    assert_eq!(usernames(&page), ["alice"]);
    let page = json_of(app.get_as(ALICE, "/api/v1/users?id=me").await, 200).await;
    assert_eq!(usernames(&page), ["alice"]);
    let page = json_of(app.get_as(ALICE, "/api/v1/users?page=2&size=1").await, 200).await;
    assert_eq!(page["data"], json!([]));
    assert_eq!(page["page"]["total_elements"], 1);
    // Asking for someone else by id is refused.
    let body = error_body(
        app.get_as(ALICE, &format!("/api/v1/users?id={bob}")).await,
        403,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("administrators"));
    error_body(
        app.get_as(ALICE, &format!("/api/v1/users?id={alice}&id={bob}"))
            .await,
        403,
    )
    .await;
}

async fn reading_another_user_is_404_for_non_administrators(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    let bob = app.user_id(BOB).await;
    let body = error_body(
        app.get_as(ALICE, &format!("/api/v1/users/{bob}")).await,
        404,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains(&bob));
    let seen = json_of(
        app.get_as(ADMIN, &format!("/api/v1/users/{bob}")).await,
        200,
    )
    .await;
    assert_eq!(seen["sub"], BOB);
    let unknown = uuid::Uuid::new_v4();
    error_body(
        app.get_as(ADMIN, &format!("/api/v1/users/{unknown}")).await,
        404,
    )
    .await;
    let body = error_body(app.get_as(ADMIN, "/api/v1/users/nobody").await, 422).await;
    assert_eq!(body["errors"][0]["loc"], "/path/id");
}

async fn a_user_who_created_a_template_or_owns_a_deployment_cannot_be_deleted(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    let alice = app.user_id(ALICE).await;
    let bob = app.user_id(BOB).await;
    let template = json_of(
        app.post_as(ALICE, "/api/v1/templates", &json!({"content": TEMPLATE}))
            .await,
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = error_body(
        app.delete_as(ADMIN, &format!("/api/v1/users/{alice}"))
            .await,
        409,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains(&alice), "{body}");

    // bob becomes an owner of alice's deployment.
    let deployment = json_of(
        app.post_as(
            ALICE,
            "/api/v1/deployments",
            &json!({"template_id": template, "template_inputs": {}, "user_group": "users"}),
        )
        .await,
        202,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reset = app
        .post_as(
            ALICE,
            &format!("/api/v1/deployments/{deployment}/reset-status"),
            &json!({}),
        )
        .await;
    assert!(reset.status().is_success(), "{:?}", reset.text().await);
    let shared = app
        .post_as(
            ALICE,
            &format!("/api/v1/deployments/{deployment}/owners"),
            &json!({"id": bob}),
        )
        .await;
    assert!(shared.status().is_success(), "{:?}", shared.text().await);
    let body = error_body(
        app.delete_as(ADMIN, &format!("/api/v1/users/{bob}")).await,
        409,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("owns"), "{body}");
    error_body(app.delete_as(BOB, "/api/v1/users/me").await, 409).await;

    // Once bob no longer owns it, he can go.
    let unshared = app
        .delete_as(
            ALICE,
            &format!("/api/v1/deployments/{deployment}/owners/{bob}"),
        )
        .await;
    assert!(
        unshared.status().is_success(),
        "{:?}",
        unshared.text().await
    );
    assert_eq!(
        app.delete_as(ADMIN, &format!("/api/v1/users/{bob}"))
            .await
            .status(),
        204
    );
    json_of(
        app.get_as(ADMIN, &format!("/api/v1/users/{alice}")).await,
        200,
    )
    .await;
}

async fn an_administrator_deletes_a_user_who_owns_nothing(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    let bob = app.user_id(BOB).await;
    let refresh = app.issuer.refresh_token(BOB);
    let response = app
        .patch_as(BOB, "/api/v1/users/me", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.delete_as(ADMIN, &format!("/api/v1/users/{bob}"))
            .await
            .status(),
        204
    );
    error_body(
        app.get_as(ADMIN, &format!("/api/v1/users/{bob}")).await,
        404,
    )
    .await;
    error_body(
        app.delete_as(ADMIN, &format!("/api/v1/users/{bob}")).await,
        404,
    )
    .await;
    // bob's next request registers him afresh, without his old data.
    let me = json_of(app.get_as(BOB, "/api/v1/users/me").await, 200).await;
    assert_ne!(me["id"], bob.as_str());
    assert!(me.get("refresh_token").is_none());
    // A non-admin cannot delete someone else.
    let bob = me["id"].as_str().unwrap().to_string();
    error_body(
        app.delete_as(ALICE, &format!("/api/v1/users/{bob}")).await,
        404,
    )
    .await;
    json_of(
        app.get_as(ADMIN, &format!("/api/v1/users/{bob}")).await,
        200,
    )
    .await;
}

async fn a_user_deletes_themselves_and_comes_back_as_a_new_user(db: DbKind) {
    let Some(app) = app_on(db).await else { return };
    let alice = app.user_id(ALICE).await;
    assert_eq!(app.delete_as(ALICE, "/api/v1/users/me").await.status(), 204);
    let page = json_of(app.get_as(ADMIN, "/api/v1/users?sub=alice").await, 200).await;
    assert_eq!(page["page"]["total_elements"], 0);
    assert_ne!(app.user_id(ALICE).await, alice);
}
