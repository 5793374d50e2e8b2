//! The deployment engine end to end: the API writes jobs, an engine drives IM (a
//! real IM with its Dummy cloud, or the fake IM for what Dummy cannot show), and the
//! API shows the result.

#[path = "../common/mod.rs"]
mod common;
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

mod fake;
mod real;

use std::time::{Duration, Instant};

use helpers::{spawn_app_with, AppOptions, TestApp, ALICE};
use orchestrator::engine::{Engine, Outcome};
use serde_json::{json, Value};

pub const ENGINE_VM: &str = include_str!("../fixtures/engine_vm.yaml");

/// A provider entry of the providers file.
pub struct ProviderSpec {
    pub name: String,
    pub rank: i64,
    pub im_url: String,
    /// A unique IM user, so IM lists only this test's infrastructures.
    pub username: String,
    /// `im_auth: token` (the creator's access token) instead of a password.
    pub token_auth: bool,
}

pub fn provider(name: &str, rank: i64, im_url: &str) -> ProviderSpec {
    ProviderSpec {
        name: name.into(),
        rank,
        im_url: im_url.into(),
        username: format!("tester-{name}-{}", uuid::Uuid::new_v4().simple()),
        token_auth: false,
    }
}

/// The app with a providers file of Dummy providers, fast polling, and the engine
/// off (tests drive their own with `run_once`) unless `builtin`.
pub struct Env {
    pub app: TestApp,
    _dir: tempfile::TempDir,
}

pub async fn env(providers: &[ProviderSpec], builtin: bool, vars: &[(&str, &str)]) -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut file = String::from(if providers.is_empty() {
        "providers: []\n"
    } else {
        "providers:\n"
    });
    for p in providers {
        let im_auth = if p.token_auth {
            "token".to_string()
        } else {
            format!("{{username: {}, password: secret}}", p.username)
        };
        file.push_str(&format!(
            "  - name: {}\n    type: Dummy\n    rank: {}\n    im_url: {}\n    im_auth: {im_auth}\n    cloud_auth: \"id = dummy; type = Dummy\"\n    user_groups: [\"*\"]\n",
            p.name, p.rank, p.im_url,
        ));
    }
    let path = dir.path().join("providers.yaml");
    std::fs::write(&path, file).expect("write providers");
    let mut options = AppOptions::default()
        .var("PROVIDERS_FILE", &path.display().to_string())
        .var("ENGINE", if builtin { "builtin" } else { "external" })
        .var("IM_POLL_MIN", "0.05")
        .var("IM_POLL_MAX", "0.2")
        .var("IM_TIMEOUT", "5")
        .var("IM_MAX_REQUESTS_PER_SECOND", "1000");
    for (k, v) in vars {
        options = options.var(k, v);
    }
    let app = spawn_app_with(options).await.expect("sqlite app");
    Env { app, _dir: dir }
}

impl Env {
    pub fn engine(&self) -> Engine {
        Engine::new(self.app.state.clone())
    }

    /// Registers the engine test template.
    pub async fn template(&self) -> String {
        let r = self
            .app
            .post_as(ALICE, "/api/v1/templates", &json!({"content": ENGINE_VM}))
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        let body: Value = r.json().await.expect("json");
        body["id"].as_str().expect("id").to_string()
    }

    /// Submits a deployment of the test template as ALICE.
    pub async fn submit(&self, extra: Value) -> String {
        self.submit_with(&self.app.token(ALICE), extra).await
    }

    /// [`Env::submit`] with this bearer token.
    pub async fn submit_with(&self, token: &str, extra: Value) -> String {
        let template = self.template().await;
        let mut body =
            json!({"template_id": template, "user_group": "users", "template_inputs": {}});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let r = self
            .app
            .client
            .post(self.app.url("/api/v1/deployments"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("submit");
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
        let body: Value = r.json().await.expect("json");
        body["id"].as_str().expect("id").to_string()
    }

    pub async fn deployment(&self, id: &str) -> Value {
        self.app
            .get_as(ALICE, &format!("/api/v1/deployments/{id}"))
            .await
            .json()
            .await
            .expect("deployment")
    }

    pub async fn resources(&self, id: &str) -> Vec<Value> {
        let body: Value = self
            .app
            .get_as(
                ALICE,
                &format!("/api/v1/deployments/{id}/resources?size=100"),
            )
            .await
            .json()
            .await
            .expect("resources");
        body["data"].as_array().cloned().unwrap_or_default()
    }

    pub async fn attempts(&self, id: &str) -> Vec<Value> {
        let body: Value = self
            .app
            .get_as(ALICE, &format!("/api/v1/deployments/{id}/attempts"))
            .await
            .json()
            .await
            .expect("attempts");
        match body {
            Value::Array(a) => a,
            other => other["data"].as_array().cloned().unwrap_or_default(),
        }
    }

    pub async fn log_text(&self, id: &str) -> String {
        let body: Value = self
            .app
            .get_as(ALICE, &format!("/api/v1/deployments/{id}/logs"))
            .await
            .json()
            .await
            .expect("logs");
        body.to_string()
    }

    /// Drives `engine` until the deployment's status is `want` (or panics after
    /// `limit`), returning the deployment.
    pub async fn drive_until(
        &self,
        engine: &Engine,
        id: &str,
        want: &str,
        limit: Duration,
    ) -> Value {
        let start = Instant::now();
        loop {
            let d = self.deployment(id).await;
            if d["status_name"] == want {
                return d;
            }
            let status = d["status_name"].as_str().unwrap_or_default();
            // A final status other than the one wanted will not change by itself.
            let settled = !status.ends_with("_IN_PROGRESS") && d["status_name"] != want;
            assert!(
                start.elapsed() < limit && !settled,
                "deployment {id} is {} ({}), not {want}, after {:?}; log: {}",
                d["status_name"],
                d["status_reason"],
                start.elapsed(),
                self.log_text(id).await
            );
            match engine.run_once().await.expect("engine step") {
                Outcome::Idle => tokio::time::sleep(Duration::from_millis(20)).await,
                Outcome::Ran { .. } => {}
            }
        }
    }

    /// Waits (the app's own engine runs) until the deployment is `want`.
    pub async fn wait_until(&self, id: &str, want: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let d = self.deployment(id).await;
            if d["status_name"] == want {
                return d;
            }
            let status = d["status_name"].as_str().unwrap_or_default();
            // A final status other than the one wanted will not change by itself.
            let settled = !status.ends_with("_IN_PROGRESS") && d["status_name"] != want;
            assert!(
                start.elapsed() < limit && !settled,
                "deployment {id} is {} ({}), not {want}, after {:?}; log: {}",
                d["status_name"],
                d["status_reason"],
                start.elapsed(),
                self.log_text(id).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs raw SQL on the app's database (to move stored times into the past).
    pub async fn exec(&self, sql: &str, args: &[&str]) {
        let mut conn = self.app.state.store.conn().await.expect("conn");
        let sql = orchestrator::store::sql(&conn, sql);
        let mut q = sqlx::query(&sql);
        for a in args {
            q = q.bind(a.to_string());
        }
        q.execute(&mut *conn).await.expect("sql");
    }

    /// Moves a time column of rows matching `where_id` into the past by `minutes`.
    pub async fn rewind(&self, table: &str, column: &str, key: &str, id: &str, minutes: i64) {
        let micros = minutes * 60_000_000;
        let sql = format!("UPDATE {table} SET {column} = {column} - {micros} WHERE {key} = ?");
        self.exec(&sql, &[id]).await;
    }
}

/// A token of alice's that expires within the engine's one-minute margin, so the
/// engine cannot use it and must refresh.
pub fn short_lived_token(e: &Env) -> String {
    e.app.issuer.token(
        ALICE,
        &orchestrator::auth::dev_issuer::TokenOptions {
            lifetime_secs: 30,
            ..Default::default()
        },
    )
}
