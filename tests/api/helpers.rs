//! `spawn_app()`: the application on a fresh database, listening on 127.0.0.1:0, with
//! its own development issuer (real keys, real JWKS and userinfo), and a client with
//! one helper per endpoint.

use std::collections::HashMap;

use orchestrator::app::Server;
use orchestrator::auth::dev_issuer::{DevIssuer, DevUser, TokenOptions};
use orchestrator::config::Config;
use orchestrator::http::AppState;
use serde_json::Value;

use crate::common::{DbKind, TestDb};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub issuer: DevIssuer,
    /// Kept alive for the app's lifetime; dropped (and the database with it) after.
    pub _db: TestDb,
    pub _data_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Settings for a test application; `vars` become configuration variables (they
/// override the defaults, `TRUSTED_IDP_LIST` included).
pub struct AppOptions {
    pub db: DbKind,
    pub vars: HashMap<String, String>,
    /// Extra fields of the test issuer's TRUSTED_IDP_LIST entry.
    pub idp_extra: Value,
    /// An issuer the test started itself, to know its URL before the app starts
    /// (for `vars` that name it); `None` starts a fresh one.
    pub issuer: Option<DevIssuer>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            db: DbKind::Sqlite,
            vars: HashMap::new(),
            idp_extra: serde_json::json!({}),
            issuer: None,
        }
    }
}

impl AppOptions {
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }
}

pub const ALICE: &str = "alice";
pub const BOB: &str = "bob";
pub const ADMIN: &str = "root";

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default())
        .await
        .expect("sqlite is always available")
}

/// `None` when the database kind is not configured (and may be skipped).
pub async fn spawn_app_with(options: AppOptions) -> Option<TestApp> {
    let db = TestDb::new(options.db).await?;
    let issuer = match options.issuer {
        Some(issuer) => issuer,
        None => DevIssuer::start(0).await.expect("start the test issuer"),
    };
    for (sub, groups) in [
        (ALICE, vec!["users", "beta-testers"]),
        (BOB, vec!["users"]),
        (ADMIN, vec!["admins"]),
    ] {
        issuer.add_user(DevUser {
            sub: sub.into(),
            name: format!("{sub} name"),
            username: sub.into(),
            email: format!("{sub}@example.org"),
            groups: groups.into_iter().map(String::from).collect(),
        });
    }
    let mut idp = serde_json::json!({"issuer": issuer.issuer(), "client_id": "orchestrator", "client_secret": "test-secret"});
    if let (Some(idp), Some(extra)) = (idp.as_object_mut(), options.idp_extra.as_object()) {
        idp.extend(extra.clone());
    }
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut vars = HashMap::from([
        ("LISTEN_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("DB_URL".to_string(), db.url.clone()),
        ("LOG_LEVEL".to_string(), "warn".to_string()),
        (
            "TRUSTED_IDP_LIST".to_string(),
            serde_json::json!([idp]).to_string(),
        ),
        ("ADMIN_GROUPS".to_string(), "admins".to_string()),
        (
            "DATA_DIR".to_string(),
            data_dir.path().display().to_string(),
        ),
    ]);
    vars.extend(options.vars);
    let config = Config::from_sources(vars, None).expect("test configuration");
    orchestrator::telemetry::init(&config);
    let server = Server::build(config).await.expect("build the app");
    let address = format!("http://{}", server.local_addr());
    let state = server.state();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(server.run_until(async move {
        let _ = rx.await;
    }));
    Some(TestApp {
        address,
        client: reqwest::Client::new(),
        state,
        issuer,
        _db: db,
        _data_dir: data_dir,
        shutdown: Some(tx),
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A valid token for a test user.
    pub fn token(&self, sub: &str) -> String {
        self.issuer.token(sub, &TokenOptions::default())
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// GET with a bearer token.
    pub async fn get_as(&self, sub: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(self.token(sub))
            .send()
            .await
            .expect("request")
    }

    /// GET with a given raw token.
    pub async fn get_with_token(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_as(&self, sub: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(self.token(sub))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch_as(&self, sub: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(self.token(sub))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete_as(&self, sub: &str, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(self.token(sub))
            .send()
            .await
            .expect("request")
    }

    /// The user id of a test user (registering them by their first access).
    pub async fn user_id(&self, sub: &str) -> String {
        let me: Value = self
            .get_as(sub, "/api/v1/users/me")
            .await
            .json()
            .await
            .expect("user");
        me["id"].as_str().expect("id").to_string()
    }
}

/// Asserts the error body of DESIGN.md §3 and returns it.
pub async fn error_body(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}
