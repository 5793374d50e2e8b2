//! `AUTHZ_MODE=opa`: the service asks a server speaking OPA's REST API.
//!
//! No OPA binary can be installed on our machines (no registry we reach ships one,
//! see `shared/reference/infrastructure.md` §2), so the server here is a stand-in:
//! an axum app on 127.0.0.1:0 that serves `POST /v1/data/{path}` and `GET /health`
//! the way OPA does and evaluates the shipped `policy/orchestrator.rego` with
//! regorus, the engine of the embedded mode. It records what it is sent and can be
//! told to misbehave (garbage, undefined results, errors, slowness).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orchestrator::auth::dev_issuer::DevIssuer;
use serde_json::{json, Value};

use crate::helpers::{error_body, spawn_app_with, AppOptions, TestApp, ADMIN, ALICE, BOB};

/// How the stand-in answers data queries.
#[derive(Clone)]
enum Mode {
    /// Evaluates the loaded policy, as OPA would.
    Policy,
    /// Answers this status and body whatever the input.
    Fixed(u16, String),
    /// Evaluates the policy, after this delay.
    Slow(Duration),
}

struct OpaState {
    engine: Mutex<Option<regorus::Engine>>,
    mode: Mutex<Mode>,
    /// (data path, request body) of every query.
    queries: Mutex<Vec<(String, Value)>>,
}

struct Opa {
    addr: SocketAddr,
    state: Arc<OpaState>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Opa {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(OpaState {
            engine: Mutex::new(None),
            mode: Mutex::new(Mode::Policy),
            queries: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/data/{*path}", post(query))
            .route("/health", get(|| async { Json(json!({})) }))
            .with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            state,
            _stop: stop,
        }
    }

    /// The URL orchestrator-python's default points at: the policy package.
    fn url(&self) -> String {
        format!("http://{}/v1/data/orchestrator", self.addr)
    }

    /// Loads the policy and data the app would use in embedded mode.
    fn load_from(&self, app: &TestApp) {
        let config = &app.state.config;
        let policy = orchestrator::policy::load_policy(config).unwrap();
        let data = orchestrator::policy::load_data(config).unwrap();
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("orchestrator.rego".into(), policy)
            .unwrap();
        engine
            .add_data(regorus::Value::from_json_str(&data.to_string()).unwrap())
            .unwrap();
        *self.state.engine.lock().unwrap() = Some(engine);
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn answer(&self, status: u16, body: &str) {
        self.set_mode(Mode::Fixed(status, body.to_string()));
    }

    fn queries(&self) -> Vec<(String, Value)> {
        self.state.queries.lock().unwrap().clone()
    }
}

async fn query(State(s): State<Arc<OpaState>>, Path(path): Path<String>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": "invalid_parameter"})),
        )
            .into_response();
    };
    s.queries.lock().unwrap().push((path.clone(), body.clone()));
    let mode = s.mode.lock().unwrap().clone();
    match mode {
        Mode::Fixed(status, text) => {
            return (StatusCode::from_u16(status).unwrap(), text).into_response()
        }
        Mode::Slow(delay) => tokio::time::sleep(delay).await,
        Mode::Policy => {}
    }
    let Some(mut engine) = s.engine.lock().unwrap().clone() else {
        return Json(json!({})).into_response();
    };
    let input = body.get("input").cloned().unwrap_or(Value::Null);
    engine.set_input(regorus::Value::from_json_str(&input.to_string()).unwrap());
    let rule = format!("data.{}", path.trim_matches('/').replace('/', "."));
    match engine.eval_query(rule, false) {
        Ok(r) if !r.result.is_empty() => {
            let value = r.result[0].expressions[0].value.to_json_str().unwrap();
            let result: Value = serde_json::from_str(&value).unwrap();
            Json(json!({ "result": result })).into_response()
        }
        // OPA answers an undefined document with an empty object.
        Ok(_) => Json(json!({})).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"code": "internal_error", "message": e.to_string()})),
        )
            .into_response(),
    }
}

/// An app in OPA mode asking `opa`, which evaluates the app's policy and data.
async fn spawn_with_opa(opa: &Opa, options: AppOptions) -> TestApp {
    let app = spawn_app_with(
        options
            .var("AUTHZ_MODE", "opa")
            .var("OPA_AUTHZ_URL", &opa.url())
            .var("OPA_TIMEOUT", "0.5"),
    )
    .await
    .unwrap();
    opa.load_from(&app);
    app
}

/// An OPA URL where nothing listens.
fn nowhere() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/v1/data/orchestrator")
}

async fn users_visible_to(app: &TestApp, sub: &str) -> u64 {
    let response = app.get_as(sub, "/api/v1/users").await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["page"]["total_elements"].as_u64().unwrap()
}

/// Asserts a 503 whose detail names authorization and contains `expected`.
async fn assert_undecided(response: reqwest::Response, expected: &str) {
    let body = error_body(response, 503).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("authorization"), "{detail}");
    assert!(
        detail.to_lowercase().contains(&expected.to_lowercase()),
        "the detail should say '{expected}': {detail}"
    );
}

#[tokio::test]
async fn opa_receives_the_input_orchestrator_python_sends() {
    let opa = Opa::start().await;
    let app = spawn_with_opa(&opa, AppOptions::default()).await;
    let response = app
        .patch_as(
            ALICE,
            "/api/v1/users/me",
            &json!({"picture": "https://img.example.org/a.png"}),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.get_as(ALICE, "/api/v1/users/").await.status(), 200);

    let queries = opa.queries();
    assert_eq!(queries.len(), 2);
    let (path, body) = &queries[0];
    assert_eq!(path, "orchestrator");
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["input"]
    );
    let input = &body["input"];
    let mut keys: Vec<_> = input.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["has_body", "method", "path", "user_info"]);
    assert_eq!(input["path"], "/api/v1/users/me");
    assert_eq!(input["method"], "PATCH");
    assert_eq!(input["has_body"], true);
    let user_info = &input["user_info"];
    assert_eq!(user_info["sub"], ALICE);
    assert_eq!(user_info["iss"], app.issuer.issuer());
    assert_eq!(user_info["email"], "alice@example.org");
    assert_eq!(user_info["preferred_username"], ALICE);
    assert_eq!(user_info["groups"], json!(["users", "beta-testers"]));

    // The path as sent, trailing slash included; no body.
    let input = &queries[1].1["input"];
    assert_eq!(input["path"], "/api/v1/users/");
    assert_eq!(input["method"], "GET");
    assert_eq!(input["has_body"], false);
}

#[tokio::test]
async fn opa_decides_who_is_an_administrator() {
    let opa = Opa::start().await;
    let app = spawn_with_opa(&opa, AppOptions::default()).await;
    for sub in [ALICE, BOB, ADMIN] {
        app.user_id(sub).await;
    }
    assert_eq!(users_visible_to(&app, ADMIN).await, 3);
    assert_eq!(users_visible_to(&app, ALICE).await, 1);
    // Whatever OPA says is what counts, not our own reading of the groups.
    opa.answer(200, r#"{"result": {"allow": true, "is_admin": true}}"#);
    assert_eq!(users_visible_to(&app, BOB).await, 3);
    opa.answer(200, r#"{"result": {"allow": true, "is_admin": false}}"#);
    assert_eq!(users_visible_to(&app, ADMIN).await, 1);
}

#[tokio::test]
async fn an_opa_denial_is_a_403_even_for_an_administrator() {
    let opa = Opa::start().await;
    let app = spawn_with_opa(&opa, AppOptions::default()).await;
    opa.answer(200, r#"{"result": {"allow": false, "is_admin": true}}"#);
    let body = error_body(app.get_as(ADMIN, "/api/v1/users").await, 403).await;
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("does not allow GET /api/v1/users"));
    // A result without `allow` is a denial too.
    opa.answer(200, r#"{"result": {"is_admin": true}}"#);
    error_body(app.get_as(ADMIN, "/api/v1/users").await, 403).await;
}

/// `OPA_AUTHZ_URL` may point at the `allow` rule itself: a boolean result.
#[tokio::test]
async fn a_boolean_result_from_the_allow_rule_decides_without_admin_rights() {
    let opa = Opa::start().await;
    let app = spawn_app_with(
        AppOptions::default()
            .var("AUTHZ_MODE", "opa")
            .var("OPA_AUTHZ_URL", &format!("{}/allow", opa.url())),
    )
    .await
    .unwrap();
    opa.load_from(&app);
    for sub in [ALICE, BOB, ADMIN] {
        app.user_id(sub).await;
    }
    assert_eq!(opa.queries()[0].0, "orchestrator/allow");
    assert_eq!(users_visible_to(&app, ADMIN).await, 1);
    opa.answer(200, r#"{"result": false}"#);
    error_body(app.get_as(ALICE, "/api/v1/users/me").await, 403).await;
}

#[tokio::test]
async fn opa_out_of_reach_is_a_503_never_an_allow() {
    let app = spawn_app_with(
        AppOptions::default()
            .var("AUTHZ_MODE", "opa")
            .var("OPA_AUTHZ_URL", &nowhere()),
    )
    .await
    .unwrap();
    let response = app.post_as(ALICE, "/api/v1/users", &json!({})).await;
    assert_undecided(response, "cannot be reached").await;
    let response = app.get_as(ADMIN, "/api/v1/users/me").await;
    assert_undecided(response, "cannot be reached").await;
    // Nothing happened: the registration was never let through.
    let mut conn = app.state.store.conn().await.unwrap();
    let alice = orchestrator::store::users::find_by_identity(&mut conn, ALICE, app.issuer.issuer())
        .await
        .unwrap();
    assert!(alice.is_none());
}

#[tokio::test]
async fn an_undefined_opa_result_is_a_503() {
    let opa = Opa::start().await;
    let app = spawn_with_opa(&opa, AppOptions::default()).await;
    opa.answer(200, "{}");
    let response = app.get_as(ADMIN, "/api/v1/users").await;
    assert_undecided(response, "undefined").await;
}

#[tokio::test]
async fn a_policy_package_opa_does_not_have_is_an_undefined_result_and_a_503() {
    let opa = Opa::start().await;
    let app = spawn_app_with(AppOptions::default().var("AUTHZ_MODE", "opa").var(
        "OPA_AUTHZ_URL",
        &format!("http://{}/v1/data/nothing/here", opa.addr),
    ))
    .await
    .unwrap();
    opa.load_from(&app);
    let response = app.get_as(ADMIN, "/api/v1/users").await;
    assert_undecided(response, "undefined").await;
}

#[tokio::test]
async fn opa_answering_garbage_is_a_503() {
    let opa = Opa::start().await;
    let app = spawn_with_opa(&opa, AppOptions::default()).await;
    for (status, body) in [
        (200, "<html>not a decision</html>"),
        (200, r#"{"result": "yes"}"#),
        (200, r#"{"result": [true]}"#),
        (500, r#"{"code": "internal_error"}"#),
        (400, r#"{"code": "invalid_parameter"}"#),
    ] {
        opa.answer(status, body);
        let response = app.get_as(ADMIN, "/api/v1/users").await;
        assert_undecided(response, "no usable decision").await;
    }
}

#[tokio::test]
async fn opa_slower_than_opa_timeout_is_a_503() {
    let opa = Opa::start().await;
    let app = spawn_with_opa(&opa, AppOptions::default()).await;
    opa.set_mode(Mode::Slow(Duration::from_secs(5)));
    let started = Instant::now();
    let response = app.get_as(ALICE, "/api/v1/users/me").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "OPA_TIMEOUT is 0.5 s"
    );
    assert_undecided(response, "did not answer within").await;
}

#[tokio::test]
async fn health_reports_the_opa_connection() {
    let opa = Opa::start().await;
    let app = spawn_with_opa(&opa, AppOptions::default()).await;
    let response = app.get("/api/v1/health").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["opa_connection"], "healthy");
}

#[tokio::test]
async fn health_is_unhealthy_with_500_when_opa_is_down() {
    let app = spawn_app_with(
        AppOptions::default()
            .var("AUTHZ_MODE", "opa")
            .var("OPA_AUTHZ_URL", &nowhere()),
    )
    .await
    .unwrap();
    let response = app.get("/api/v1/health").await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["db_connection"], "healthy");
    assert_eq!(body["opa_connection"], "unhealthy");
    assert!(body["details"].as_str().unwrap().contains("OPA"), "{body}");
}

/// A data document with narrower user endpoints than the default, so denials show.
fn restricted_data(issuer: &str) -> Value {
    json!({
        "trusted_issuers": [{"endpoint": issuer, "claim": "groups"}],
        "admin_entitlements": ["admins"],
        "user_endpoints": [
            {"path": "/api/v1/users", "method": "GET"},
            {"path": "/api/v1/users/*", "method": "GET"},
            {"path": "/api/v1/templates", "method": "GET"},
            {"path": "/api/v1/templates/*", "method": "*"},
        ],
    })
}

async fn spawn_restricted(opa: Option<&Opa>, dir: &std::path::Path, name: &str) -> TestApp {
    let issuer = DevIssuer::start(0).await.unwrap();
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, restricted_data(issuer.issuer()).to_string()).unwrap();
    let options = AppOptions {
        issuer: Some(issuer),
        ..Default::default()
    }
    .var("POLICY_DATA_FILE", file.to_str().unwrap());
    match opa {
        Some(opa) => spawn_with_opa(opa, options).await,
        None => spawn_app_with(options).await.unwrap(),
    }
}

#[tokio::test]
async fn opa_and_the_embedded_policy_take_the_same_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let opa = Opa::start().await;
    let remote = spawn_restricted(Some(&opa), dir.path(), "opa").await;
    let embedded = spawn_restricted(None, dir.path(), "embedded").await;
    // (caller, method, path, allowed by the policy)
    let table = [
        (ALICE, "GET", "/api/v1/users", true),
        (ALICE, "GET", "/api/v1/users/", true),
        (ALICE, "GET", "/api/v1/users/me", true),
        (ALICE, "POST", "/api/v1/users", false),
        (ALICE, "PATCH", "/api/v1/users/me", false),
        (ALICE, "DELETE", "/api/v1/users/me", false),
        (ALICE, "GET", "/api/v1/templates", true),
        (ALICE, "POST", "/api/v1/templates", false),
        (
            ALICE,
            "DELETE",
            "/api/v1/templates/00000000-0000-0000-0000-000000000000",
            true,
        ),
        (ALICE, "GET", "/api/v1/deployments", false),
        (BOB, "GET", "/api/v1/deployments/", false),
        (BOB, "GET", "/api/v1/users/me/", true),
        (ADMIN, "GET", "/api/v1/deployments", true),
        (ADMIN, "POST", "/api/v1/users", true),
        (ADMIN, "PATCH", "/api/v1/users/me", true),
        (ADMIN, "DELETE", "/api/v1/users/me", true),
    ];
    for (sub, method, path, allowed) in table {
        let mut statuses = Vec::new();
        for app in [&remote, &embedded] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut request = app
                .client
                .request(method.clone(), app.url(path))
                .bearer_auth(app.token(sub));
            if method == reqwest::Method::PATCH {
                request = request.json(&json!({"picture": "https://img.example.org/x.png"}));
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            if status == 403 {
                let body = error_body(response, 403).await;
                assert!(
                    body["detail"]
                        .as_str()
                        .unwrap()
                        .contains("authorization policy does not allow"),
                    "{body}"
                );
            }
            statuses.push(status);
        }
        assert_eq!(
            statuses[0], statuses[1],
            "{sub} {method} {path}: OPA and embedded disagree"
        );
        assert_eq!(
            statuses[0] != 403,
            allowed,
            "{sub} {method} {path}: {statuses:?}"
        );
        assert!(statuses[0] != 503, "{sub} {method} {path}");
    }
    assert_eq!(opa.queries().len(), table.len());
}
