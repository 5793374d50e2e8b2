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
            // The engine is written in parallel and runs inside the app; with an
            // external engine, jobs stay queued and deployments stay in their
            // *_IN_PROGRESS state, so tests see the API's own effects only.
            vars: HashMap::from([("ENGINE".to_string(), "external".to_string())]),
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

// ---------------------------------------------------------------------------------
// Templates, deployments, resources and logs: fixtures, one helper per endpoint, and
// looks behind the API (the store through `app.state`) for what the API only implies.

use orchestrator::domain::{Deployment, DeploymentStatus, Job, Resource};
use orchestrator::store::{deployments, jobs, resources};

/// A single VM with three constrained inputs, all with defaults.
pub const SINGLE_VM: &str = include_str!("../fixtures/single_vm.yaml");
/// A front node, scalable workers, a shared volume and an application: custom types
/// derived from normative ones, scalable nodes and requirements.
pub const CLUSTER: &str = include_str!("../fixtures/cluster.yaml");

/// Runs each `async fn name(app: TestApp)` as two tests, `name::sqlite` and
/// `name::postgres` (the latter skipped with a notice when PostgreSQL is not
/// configured, unless `REQUIRE_SERVICES=1`).
// Other test binaries include this file (tests/secrets) without using the macro.
#[allow(unused_macros)]
macro_rules! on_sqlite_and_postgres {
    ($(async fn $name:ident($app:ident: TestApp) $body:block)*) => {
        $(
            mod $name {
                // Not every test uses every import of its module.
                #[allow(unused_imports)]
                use super::*;
                async fn run($app: $crate::helpers::TestApp) $body
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run($crate::helpers::spawn_app().await).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let options = $crate::helpers::AppOptions {
                        db: $crate::common::DbKind::Postgres,
                        ..Default::default()
                    };
                    if let Some(app) = $crate::helpers::spawn_app_with(options).await {
                        run(app).await;
                    }
                }
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use on_sqlite_and_postgres;

/// The template content with a comment appended, so that it has another checksum.
pub fn variant(content: &str, n: usize) -> String {
    format!("{content}\n# variant {n}\n")
}

/// Asserts RFC 3339 UTC with microseconds (`2024-01-01T10:00:00.000000Z`).
pub fn assert_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is a string"));
    let re = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$").unwrap();
    assert!(
        re.is_match(text),
        "{text} is RFC 3339 UTC with microseconds"
    );
}

/// The `loc` of every field error of a 422 body, in order.
pub fn locs(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{body} has errors"))
        .iter()
        .map(|e| {
            assert!(e["msg"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
            e["loc"].as_str().unwrap().to_string()
        })
        .collect()
}

impl TestApp {
    /// Any request with the test user's bearer token.
    pub fn req(&self, method: reqwest::Method, sub: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(self.token(sub))
    }

    pub async fn put_as(&self, sub: &str, path: &str, body: &Value) -> reqwest::Response {
        self.req(reqwest::Method::PUT, sub, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// POST without a body.
    pub async fn post_empty_as(&self, sub: &str, path: &str) -> reqwest::Response {
        self.req(reqwest::Method::POST, sub, path)
            .send()
            .await
            .expect("request")
    }

    /// GET that must answer 200; the JSON body.
    pub async fn get_json(&self, sub: &str, path: &str) -> Value {
        let response = self.get_as(sub, path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    // --- templates ---

    /// `POST /templates` with `{content, name?}`.
    pub async fn post_template(
        &self,
        sub: &str,
        content: &str,
        name: Option<&str>,
    ) -> reqwest::Response {
        let mut body = serde_json::json!({ "content": content });
        if let Some(name) = name {
            body["name"] = name.into();
        }
        self.post_as(sub, "/api/v1/templates", &body).await
    }

    /// `POST /templates` with the YAML itself.
    pub async fn post_template_yaml(
        &self,
        sub: &str,
        content: &str,
        query: &str,
    ) -> reqwest::Response {
        self.req(
            reqwest::Method::POST,
            sub,
            &format!("/api/v1/templates{query}"),
        )
        .header("content-type", "text/x-yaml")
        .body(content.to_string())
        .send()
        .await
        .expect("request")
    }

    /// Registers a template that must be accepted; its id.
    pub async fn template(&self, sub: &str, content: &str) -> String {
        let response = self.post_template(sub, content, None).await;
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
        let body: Value = response.json().await.expect("created");
        body["id"].as_str().expect("id").to_string()
    }

    // --- deployments ---

    /// `POST /deployments`.
    pub async fn submit(&self, sub: &str, body: &Value) -> reqwest::Response {
        self.post_as(sub, "/api/v1/deployments", body).await
    }

    /// Submits a deployment that must be accepted; its id.
    pub async fn deploy(&self, sub: &str, template_id: &str, group: &str, inputs: Value) -> String {
        let response = self
            .submit(
                sub,
                &serde_json::json!({"template_id": template_id, "user_group": group, "template_inputs": inputs}),
            )
            .await;
        assert_eq!(
            response.status(),
            202,
            "{}",
            response.text().await.unwrap_or_default()
        );
        let body: Value = response.json().await.expect("accepted");
        body["id"].as_str().expect("id").to_string()
    }

    /// A single-VM deployment of ALICE for `beta-testers`, with its template id.
    pub async fn alice_deployment(&self) -> (String, String) {
        let template = self.template(ALICE, SINGLE_VM).await;
        let id = self
            .deploy(
                ALICE,
                &template,
                "beta-testers",
                serde_json::json!({"mem_size": "2 GB"}),
            )
            .await;
        (template, id)
    }

    /// `GET /deployments/{id}` that must answer 200.
    pub async fn deployment(&self, sub: &str, id: &str) -> Value {
        self.get_json(sub, &format!("/api/v1/deployments/{id}"))
            .await
    }

    /// `GET /deployments?{query}` that must answer 200.
    pub async fn deployments(&self, sub: &str, query: &str) -> Value {
        self.get_json(sub, &format!("/api/v1/deployments?{query}"))
            .await
    }

    // --- behind the API ---

    /// The stored deployment.
    pub async fn stored(&self, id: &str) -> Option<Deployment> {
        let mut conn = self.state.store.conn().await.expect("connection");
        deployments::get(&mut conn, id.parse().expect("uuid"))
            .await
            .expect("read the deployment")
    }

    /// Changes the stored deployment as the engine would (bumping its version).
    pub async fn alter(&self, id: &str, change: impl FnOnce(&mut Deployment)) -> Deployment {
        let mut tx = self.state.store.begin().await.expect("transaction");
        let mut d = deployments::get_for_update(&mut tx, id.parse().expect("uuid"))
            .await
            .expect("read")
            .expect("the deployment exists");
        change(&mut d);
        assert!(deployments::update(&mut tx, &d).await.expect("update"));
        tx.commit().await.expect("commit");
        self.stored(id).await.expect("still there")
    }

    /// Puts the stored deployment in a status.
    pub async fn set_status(&self, id: &str, status: DeploymentStatus) {
        self.alter(id, |d| d.status = status).await;
    }

    /// Gives the deployment an IM infrastructure and a final status, and finishes its
    /// create job, as a completed create leaves them.
    pub async fn complete(&self, id: &str) {
        self.alter(id, |d| {
            d.status = DeploymentStatus::CreateComplete;
            d.task = orchestrator::domain::Task::None;
            d.im_infra_id = Some(format!("inf-{id}"));
        })
        .await;
        let mut conn = self.state.store.conn().await.expect("connection");
        let q = orchestrator::store::sql(
            &conn,
            "UPDATE jobs SET state = 'done' WHERE deployment_id = ? AND kind = 'create'",
        );
        sqlx::query(&q)
            .bind(id)
            .execute(&mut *conn)
            .await
            .expect("finish the create job");
    }

    /// Marks the deployment's unfinished jobs as running under a live lease, as a
    /// worker in the middle of a step leaves them.
    pub async fn lease_jobs(&self, id: &str) {
        let mut conn = self.state.store.conn().await.expect("connection");
        let q = orchestrator::store::sql(
            &conn,
            "UPDATE jobs SET state = 'running', lease_owner = 'test-worker', lease_until = ? \
             WHERE deployment_id = ? AND state IN ('pending', 'running')",
        );
        let until = orchestrator::domain::Timestamp::now()
            .plus_minutes(5)
            .as_micros();
        sqlx::query(&q)
            .bind(until)
            .bind(id)
            .execute(&mut *conn)
            .await
            .expect("lease the jobs");
    }

    /// Every job of a deployment, oldest first.
    pub async fn jobs(&self, id: &str) -> Vec<Job> {
        let mut conn = self.state.store.conn().await.expect("connection");
        jobs::all_of(&mut conn, id.parse().expect("uuid"))
            .await
            .expect("read jobs")
    }

    /// Every resource of a deployment, in creation order.
    pub async fn stored_resources(&self, id: &str) -> Vec<Resource> {
        let mut conn = self.state.store.conn().await.expect("connection");
        resources::all_of(&mut conn, id.parse().expect("uuid"))
            .await
            .expect("read resources")
    }

    /// Rows in a table (to prove that nothing was stored).
    pub async fn count(&self, table: &str) -> i64 {
        let mut conn = self.state.store.conn().await.expect("connection");
        sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *conn)
            .await
            .expect("count")
    }
}
