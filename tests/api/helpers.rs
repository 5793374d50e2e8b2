//! `spawn_app()`: the application on a fresh database, listening on 127.0.0.1:0, and a
//! client with one helper per endpoint.

use std::collections::HashMap;

use orchestrator::app::Server;
use orchestrator::config::Config;
use orchestrator::http::AppState;

use crate::common::{DbKind, TestDb};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: AppState,
    /// Kept alive for the app's lifetime; dropped (and the database with it) after.
    pub _db: TestDb,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Settings for a test application; `vars` become configuration variables.
pub struct AppOptions {
    pub db: DbKind,
    pub vars: HashMap<String, String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            db: DbKind::Sqlite,
            vars: HashMap::new(),
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default())
        .await
        .expect("sqlite is always available")
}

/// `None` when the database kind is not configured (and may be skipped).
pub async fn spawn_app_with(options: AppOptions) -> Option<TestApp> {
    let db = TestDb::new(options.db).await?;
    let mut vars = HashMap::from([
        ("LISTEN_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("DB_URL".to_string(), db.url.clone()),
        ("LOG_LEVEL".to_string(), "warn".to_string()),
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
        _db: db,
        shutdown: Some(tx),
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }
}

/// Asserts the error body of DESIGN.md §3 and returns it.
pub async fn error_body(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status);
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}
