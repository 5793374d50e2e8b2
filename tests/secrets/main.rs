//! Secrets against a real Vault-API server (OpenBao in dev mode, `TEST_VAULT_ADDR`
//! and `TEST_VAULT_TOKEN` from `scripts/services/vault.sh`): refresh tokens and
//! generated SSH private keys live in Vault, the database keeps references; the
//! orchestrator logs in with a token or through the JWT auth method bound to the test
//! issuer; Vault down makes health unhealthy and operations that need a secret 503
//! without writing anything half-way.

#[path = "../common/mod.rs"]
mod common;
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use common::service_var;
use helpers::{spawn_app_with, AppOptions, TestApp, ALICE};
use orchestrator::engine::tokens::TokenSource;
use serde_json::{json, Value};

struct Bao {
    addr: String,
    token: String,
    http: reqwest::Client,
}

impl Bao {
    fn from_env() -> Option<Self> {
        let addr = service_var("TEST_VAULT_ADDR")?;
        let token = service_var("TEST_VAULT_TOKEN")?;
        Some(Self {
            addr,
            token,
            http: reqwest::Client::new(),
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("OpenBao answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The value stored at a `vault:` reference.
    async fn read(&self, reference: &str) -> Option<String> {
        let path = reference.strip_prefix("vault:").expect("a Vault reference");
        let (status, body) = self
            .call(reqwest::Method::GET, &format!("secret/data/{path}"), None)
            .await;
        (status == 200).then(|| {
            body["data"]["data"]["value"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
    }
}

async fn app_with_vault(bao: &Bao, extra: &[(&str, &str)]) -> TestApp {
    let mut options = AppOptions::default()
        .var("ENGINE", "external")
        .var("VAULT_ENABLE", "true")
        .var("VAULT_URL", &bao.addr)
        .var("VAULT_SECRETS_PATH", "secret");
    for (k, v) in extra {
        options = options.var(k, v);
    }
    spawn_app_with(options).await.expect("sqlite app")
}

/// The raw `refresh_token` column of a user.
async fn stored_refresh_token(app: &TestApp, sub: &str) -> Option<String> {
    let id = app.user_id(sub).await;
    let mut conn = app.state.store.conn().await.unwrap();
    let q = orchestrator::store::sql(&conn, "SELECT refresh_token FROM users WHERE id = ?");
    sqlx::query_scalar::<_, Option<String>>(&q)
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refresh_token_lives_in_vault_and_the_database_keeps_only_a_reference() {
    let Some(bao) = Bao::from_env() else { return };
    let app = app_with_vault(&bao, &[("VAULT_TOKEN", &bao.token.clone())]).await;
    let r = app
        .patch_as(
            ALICE,
            "/api/v1/users/me",
            &json!({"refresh_token": "rt-alice-123"}),
        )
        .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
    let stored = stored_refresh_token(&app, ALICE)
        .await
        .expect("a reference");
    assert!(stored.starts_with("vault:"), "{stored}");
    assert!(!stored.contains("rt-alice-123"));
    assert_eq!(bao.read(&stored).await.as_deref(), Some("rt-alice-123"));
    let me: Value = app
        .get_as(ALICE, "/api/v1/users/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["refresh_token"], "rt-alice-123",
        "its owner reads it back"
    );
    let health: Value = app.get("/api/v1/health").await.json().await.unwrap();
    assert_eq!(health["vault_connection"], "healthy", "{health}");

    // Replacing it forgets the old secret.
    let r = app
        .patch_as(
            ALICE,
            "/api/v1/users/me",
            &json!({"refresh_token": "rt-alice-456"}),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        bao.read(&stored).await.as_deref(),
        Some("rt-alice-456"),
        "same path, new version"
    );
}

#[tokio::test]
async fn the_orchestrator_logs_in_to_vault_through_jwt_with_its_own_client_token() {
    let Some(bao) = Bao::from_env() else { return };
    let mount = format!("jwt-{}", uuid::Uuid::new_v4().simple());
    let policy = format!("orch-{}", uuid::Uuid::new_v4().simple());
    // The app (and its issuer) first, to know the issuer's keys.
    let app = {
        // Configure Vault after the issuer exists: start the app with the JWT login,
        // which is lazy (nothing is contacted before the first secret).
        app_with_vault(
            &bao,
            &[
                ("VAULT_AUTH_PATH", &mount),
                ("VAULT_ROLE", "orchestrator"),
                ("VAULT_BOUND_AUDIENCE", "vault-aud"),
            ],
        )
        .await
    };
    let issuer = app.issuer.issuer().to_string();
    let discovery: Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (s, b) = bao
        .call(
            reqwest::Method::POST,
            &format!("sys/auth/{mount}"),
            Some(json!({"type": "jwt"})),
        )
        .await;
    assert!(s < 300, "{b}");
    let (s, b) = bao
        .call(
            reqwest::Method::POST,
            &format!("auth/{mount}/config"),
            Some(json!({"jwks_url": discovery["jwks_uri"], "bound_issuer": issuer})),
        )
        .await;
    assert!(s < 300, "{b}");
    let (s, b) = bao
        .call(
            reqwest::Method::PUT,
            &format!("sys/policies/acl/{policy}"),
            Some(json!({"policy": "path \"secret/data/*\" { capabilities = [\"create\",\"update\",\"read\"] }\npath \"secret/metadata/*\" { capabilities = [\"delete\",\"list\"] }"})),
        )
        .await;
    assert!(s < 300, "{b}");
    let (s, b) = bao
        .call(
            reqwest::Method::POST,
            &format!("auth/{mount}/role/orchestrator"),
            Some(json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["vault-aud"], "token_policies": [policy], "token_ttl": "1h"})),
        )
        .await;
    assert!(s < 300, "{b}");

    let r = app
        .patch_as(
            ALICE,
            "/api/v1/users/me",
            &json!({"refresh_token": "rt-through-jwt"}),
        )
        .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
    let stored = stored_refresh_token(&app, ALICE)
        .await
        .expect("a reference");
    assert_eq!(bao.read(&stored).await.as_deref(), Some("rt-through-jwt"));
    let health: Value = app.get("/api/v1/health").await.json().await.unwrap();
    assert_eq!(health["vault_connection"], "healthy", "{health}");
}

#[tokio::test]
async fn a_role_that_refuses_the_orchestrator_makes_secrets_unavailable() {
    let Some(bao) = Bao::from_env() else { return };
    // No such auth mount: the login is refused.
    let app = app_with_vault(
        &bao,
        &[("VAULT_AUTH_PATH", "jwt-missing"), ("VAULT_ROLE", "nobody")],
    )
    .await;
    let r = app
        .patch_as(ALICE, "/api/v1/users/me", &json!({"refresh_token": "rt"}))
        .await;
    let body = helpers::error_body(r, 503).await;
    assert!(
        !body.to_string().contains("\"rt\""),
        "the secret is not echoed: {body}"
    );
    assert_eq!(stored_refresh_token(&app, ALICE).await, None);
}

#[tokio::test]
async fn with_vault_down_health_fails_and_nothing_is_written_half_way() {
    let Some(bao) = Bao::from_env() else { return };
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let _ = &bao;
    let app = spawn_app_with(
        AppOptions::default()
            .var("ENGINE", "external")
            .var("VAULT_ENABLE", "true")
            .var("VAULT_URL", &format!("http://127.0.0.1:{closed}"))
            .var("VAULT_TOKEN", "whatever")
            .var("VAULT_TIMEOUT", "1"),
    )
    .await
    .unwrap();
    let r = app.get("/api/v1/health").await;
    assert_eq!(r.status(), 500);
    let health: Value = r.json().await.unwrap();
    assert_eq!(health["vault_connection"], "unhealthy");
    assert_eq!(health["db_connection"], "healthy");
    assert!(
        health["details"].as_str().unwrap_or("").contains("Vault"),
        "{health}"
    );

    let r = app
        .patch_as(
            ALICE,
            "/api/v1/users/me",
            &json!({"refresh_token": "rt-lost?"}),
        )
        .await;
    helpers::error_body(r, 503).await;
    assert_eq!(stored_refresh_token(&app, ALICE).await, None);

    let r = app
        .post_as(ALICE, "/api/v1/users/me/ssh_keys", &json!({}))
        .await;
    helpers::error_body(r, 503).await;
    let me: Value = app
        .get_as(ALICE, "/api/v1/users/me")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        me["public_ssh_key"].is_null(),
        "no public key without its private half: {me}"
    );
}

#[tokio::test]
async fn a_generated_ssh_key_pair_keeps_its_private_key_in_vault() {
    let Some(bao) = Bao::from_env() else { return };
    let app = app_with_vault(&bao, &[("VAULT_TOKEN", &bao.token.clone())]).await;
    let r = app
        .post_as(ALICE, "/api/v1/users/me/ssh_keys", &json!({}))
        .await;
    assert_eq!(r.status(), 201);
    let pair: Value = r.json().await.unwrap();
    let private = pair["private_key"].as_str().unwrap();
    assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    let public = pair["public_key"].as_str().unwrap();
    assert!(public.starts_with("ssh-rsa "), "{public}");
    assert!(pair["fingerprint"].as_str().unwrap().starts_with("SHA256:"));
    let me: Value = app
        .get_as(ALICE, "/api/v1/users/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["public_ssh_key"], public);
    assert!(
        !me.to_string().contains("PRIVATE KEY"),
        "never shown again: {me}"
    );

    let id = app.user_id(ALICE).await;
    let stored: String = {
        let mut conn = app.state.store.conn().await.unwrap();
        let q =
            orchestrator::store::sql(&conn, "SELECT stored FROM user_secrets WHERE user_id = ?");
        sqlx::query_scalar(&q)
            .bind(&id)
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    assert_eq!(bao.read(&stored).await.as_deref(), Some(private));

    let r = app
        .post_as(ALICE, "/api/v1/users/me/ssh_keys", &json!({}))
        .await;
    helpers::error_body(r, 409).await;
    let r = app.delete_as(ALICE, "/api/v1/users/me/ssh_keys").await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        bao.read(&stored).await,
        None,
        "the private key is forgotten"
    );
    let me: Value = app
        .get_as(ALICE, "/api/v1/users/me")
        .await
        .json()
        .await
        .unwrap();
    assert!(me["public_ssh_key"].is_null());
}

#[tokio::test]
async fn without_vault_the_private_key_is_sealed_in_the_database() {
    let app = spawn_app_with(AppOptions::default().var("ENGINE", "external"))
        .await
        .unwrap();
    let r = app
        .post_as(ALICE, "/api/v1/users/me/ssh_keys", &json!({}))
        .await;
    assert_eq!(r.status(), 201);
    let pair: Value = r.json().await.unwrap();
    let id = app.user_id(ALICE).await;
    let mut conn = app.state.store.conn().await.unwrap();
    let q = orchestrator::store::sql(&conn, "SELECT stored FROM user_secrets WHERE user_id = ?");
    let stored: String = sqlx::query_scalar(&q)
        .bind(&id)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert!(stored.starts_with("sealed:v1:"));
    assert!(!stored.contains("PRIVATE KEY"));
    let opened = app.state.secrets.get(&stored).await.unwrap();
    assert_eq!(opened, pair["private_key"].as_str().unwrap());
}

#[tokio::test]
async fn only_the_user_may_generate_their_own_keys() {
    let app = spawn_app_with(AppOptions::default().var("ENGINE", "external"))
        .await
        .unwrap();
    let alice = app.user_id(ALICE).await;
    let r = app
        .post_as(
            helpers::ADMIN,
            &format!("/api/v1/users/{alice}/ssh_keys"),
            &json!({}),
        )
        .await;
    helpers::error_body(r, 403).await;
    let r = app
        .post_as(
            helpers::BOB,
            &format!("/api/v1/users/{alice}/ssh_keys"),
            &json!({}),
        )
        .await;
    helpers::error_body(r, 404).await;
    let r = app
        .post_as(ALICE, "/api/v1/users/not-a-uuid/ssh_keys", &json!({}))
        .await;
    helpers::error_body(r, 422).await;
}

#[tokio::test]
async fn a_rotated_refresh_token_replaces_the_old_one_in_vault_and_keeps_working() {
    let Some(bao) = Bao::from_env() else {
        return;
    };
    let app = app_with_vault(&bao, &[("VAULT_TOKEN", &bao.token.clone())]).await;
    app.issuer.set_rotates_refresh_tokens(true);
    let first = app.issuer.refresh_token(ALICE);
    let r = app
        .patch_as(ALICE, "/api/v1/users/me", &json!({"refresh_token": first}))
        .await;
    assert_eq!(r.status(), 204);
    let user: uuid::Uuid = app.user_id(ALICE).await.parse().unwrap();

    // Each TokenSource starts with an empty cache, so each one refreshes.
    for round in 1..=3 {
        TokenSource::new(app.state.clone())
            .access_token(user)
            .await
            .unwrap_or_else(|e| panic!("refresh {round}: {e:?}"));
        let stored = stored_refresh_token(&app, ALICE)
            .await
            .expect("a reference is stored");
        let kept = bao
            .read(&stored)
            .await
            .unwrap_or_else(|| panic!("round {round}: the rotated token is not in Vault"));
        assert!(
            kept.starts_with("rt-") && kept != first,
            "round {round}: {kept}"
        );
    }
}

#[tokio::test]
async fn a_new_key_pair_after_the_public_key_was_removed_replaces_the_stale_private_key() {
    let Some(bao) = Bao::from_env() else {
        return;
    };
    let app = app_with_vault(&bao, &[("VAULT_TOKEN", &bao.token.clone())]).await;
    let first: Value = app
        .post_as(ALICE, "/api/v1/users/me/ssh_keys", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .patch_as(ALICE, "/api/v1/users/me", &json!({"public_ssh_key": null}))
        .await;
    assert_eq!(r.status(), 204);
    let r = app
        .post_as(ALICE, "/api/v1/users/me/ssh_keys", &json!({}))
        .await;
    assert_eq!(r.status(), 201);
    let second: Value = r.json().await.unwrap();
    assert_ne!(first["private_key"], second["private_key"]);
    let me = app.get_json(ALICE, "/api/v1/users/me").await;
    assert_eq!(me["public_ssh_key"], second["public_key"]);
    // What the store keeps is the private half of the public key the user has.
    let user = app.user_id(ALICE).await;
    let conn = &mut app.state.store.conn().await.unwrap();
    let stored =
        orchestrator::store::user_secrets::get(conn, user.parse().unwrap(), "ssh_private_key")
            .await
            .unwrap()
            .expect("a reference");
    assert_eq!(
        bao.read(&stored).await.as_deref(),
        second["private_key"].as_str()
    );
    // And a third request, with a key in place, is refused without touching it.
    let r = app
        .post_as(ALICE, "/api/v1/users/me/ssh_keys", &json!({}))
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        bao.read(&stored).await.as_deref(),
        second["private_key"].as_str()
    );
}

#[tokio::test]
async fn deleting_a_user_forgets_their_secrets_in_vault() {
    let Some(bao) = Bao::from_env() else {
        return;
    };
    let app = app_with_vault(&bao, &[("VAULT_TOKEN", &bao.token.clone())]).await;
    let r = app
        .patch_as(
            ALICE,
            "/api/v1/users/me",
            &json!({"refresh_token": "rt-gone"}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = app
        .post_as(ALICE, "/api/v1/users/me/ssh_keys", &json!({}))
        .await;
    assert_eq!(r.status(), 201);
    let user = app.user_id(ALICE).await;
    let refresh = stored_refresh_token(&app, ALICE).await.expect("stored");
    let ssh = {
        let conn = &mut app.state.store.conn().await.unwrap();
        orchestrator::store::user_secrets::get(conn, user.parse().unwrap(), "ssh_private_key")
            .await
            .unwrap()
            .expect("stored")
    };
    assert!(bao.read(&refresh).await.is_some() && bao.read(&ssh).await.is_some());

    let r = app.delete_as(ALICE, &format!("/api/v1/users/{user}")).await;
    assert_eq!(r.status(), 204);
    assert_eq!(bao.read(&refresh).await, None, "refresh token forgotten");
    assert_eq!(bao.read(&ssh).await, None, "private key forgotten");
}
