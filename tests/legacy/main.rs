//! The legacy API (issue 9, docs/legacy.md) over HTTP: golden tests of every legacy
//! shape from legacy-api.md's examples, the dashboard's and orchent's call sequences
//! against the running server with an engine driving the fake IM (and the real IM
//! with its Dummy cloud when `TEST_IM_URL` is set), the tolerances the clients rely
//! on, and the callbacks.

#[path = "../common/mod.rs"]
mod common;
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

mod callbacks;
mod dashboard;
mod golden;
mod orchent;
mod tolerances;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use helpers::{spawn_app_with, AppOptions, TestApp};
use reqwest::Method;
use serde_json::Value;

/// The INDIGO-style template with `count` and `removal_list` (fake IM only: the real
/// IM's tosca-parser refuses both on Compute nodes).
pub const LEGACY_VM: &str = include_str!("../fixtures/legacy_vm.yaml");
/// The engine's template, with standard `default_instances`.
pub const ENGINE_VM: &str = include_str!("../fixtures/engine_vm.yaml");

/// A template the real IM accepts: its tosca-parser checks `min_instances <=
/// default_instances <= max_instances` before resolving `get_input`, so the count is
/// written in the template (as the dashboard edits it) with `instances` VMs.
pub fn real_vm(instances: u32) -> String {
    let vm = ENGINE_VM.replace(
        "default_instances: { get_input: vm_count }",
        &format!("default_instances: {instances}"),
    );
    assert_ne!(
        vm, ENGINE_VM,
        "the engine template still has the count input"
    );
    vm
}

/// Every test finishes within seconds; waits give up after this.
pub const LIMIT: Duration = Duration::from_secs(20);

/// The default prefix.
pub const P: &str = "/orchestrator";

/// The app with Dummy providers on `im_urls` and the built-in engine polling fast
/// (or the engine off when `im_urls` is empty), plus extra settings.
pub async fn app_with(im_urls: &[&str], vars: &[(&str, &str)]) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut file = String::from(if im_urls.is_empty() {
        "providers: []\n"
    } else {
        "providers:\n"
    });
    for (i, url) in im_urls.iter().enumerate() {
        file.push_str(&format!(
            "  - name: dummy{i}\n    type: Dummy\n    rank: {i}\n    regions: [region-{i}]\n    im_url: {url}\n    im_auth: {{username: legacy-{}, password: secret}}\n    cloud_auth: \"id = dummy; type = Dummy; host = https://cloud{i}.example.org:5000\"\n    user_groups: [\"*\"]\n",
            uuid::Uuid::new_v4().simple()
        ));
    }
    let path = dir.path().join("providers.yaml");
    std::fs::write(&path, file).expect("write providers");
    let mut options = AppOptions::default()
        .var("PROVIDERS_FILE", &path.display().to_string())
        .var(
            "ENGINE",
            if im_urls.is_empty() {
                "external"
            } else {
                "builtin"
            },
        )
        .var("IM_POLL_MIN", "0.05")
        .var("IM_POLL_MAX", "0.2")
        .var("IM_TIMEOUT", "5")
        .var("IM_MAX_REQUESTS_PER_SECOND", "1000")
        .var("LEGACY_CALLBACK_POLL", "0.05");
    for (k, v) in vars {
        options = options.var(k, v);
    }
    (spawn_app_with(options).await.expect("sqlite app"), dir)
}

/// A legacy client: bearer token of a test user, the dashboard's lowercase
/// `bearer` scheme on writes.
pub struct Legacy<'a> {
    pub app: &'a TestApp,
    pub prefix: String,
}

impl<'a> Legacy<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            prefix: P.to_string(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            self.app.url(&format!("{}{path}", self.prefix))
        }
    }

    /// A request as the dashboard sends it (`Authorization: bearer <token>`).
    pub fn req(&self, method: Method, sub: &str, path: &str) -> reqwest::RequestBuilder {
        self.app
            .client
            .request(method, self.url(path))
            .header("authorization", format!("bearer {}", self.app.token(sub)))
    }

    pub async fn send(
        &self,
        method: Method,
        sub: &str,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut r = self.req(method, sub, path);
        if let Some(b) = body {
            r = r.json(b);
        }
        r.send().await.expect("request")
    }

    /// GET answering 200 with JSON.
    pub async fn json(&self, sub: &str, path: &str) -> Value {
        let r = self.send(Method::GET, sub, path, None).await;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(status, 200, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    /// GET answering 200 with text.
    pub async fn text(&self, sub: &str, path: &str) -> String {
        let r = self.send(Method::GET, sub, path, None).await;
        assert_eq!(r.status(), 200, "GET {path}");
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "text/plain;charset=UTF-8"
        );
        r.text().await.expect("text")
    }

    /// `POST /deployments/` (trailing slash, as the dashboard) answering 201.
    pub async fn create(&self, sub: &str, body: &Value) -> Value {
        let r = self
            .send(Method::POST, sub, "/deployments/", Some(body))
            .await;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(status, 201, "{text}");
        serde_json::from_str(&text).expect("the created deployment")
    }

    pub async fn deployment(&self, sub: &str, id: &str) -> Value {
        self.json(sub, &format!("/deployments/{id}")).await
    }

    /// Every item of a legacy list, following `links[rel=next]` as the dashboard's
    /// `_get_all_results` does (at most `pages` pages).
    pub async fn all_pages(&self, sub: &str, first: &str, pages: usize) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut url = first.to_string();
        for n in 1..=pages {
            let page = self.json(sub, &url).await;
            items.extend(page["content"].as_array().expect("content").iter().cloned());
            let links = page["links"].as_array().expect("links array");
            match links.iter().find(|l| l["rel"] == "next") {
                Some(next) => url = next["href"].as_str().expect("href").to_string(),
                None => return (items, n),
            }
        }
        panic!("more than {pages} pages");
    }

    /// Waits until the deployment's status is `want`.
    pub async fn wait_status(&self, sub: &str, id: &str, want: &str) -> Value {
        let start = Instant::now();
        loop {
            let d = self.deployment(sub, id).await;
            if d["status"] == want {
                return d;
            }
            assert!(
                start.elapsed() < LIMIT,
                "deployment {id} is {} ({}), not {want}",
                d["status"],
                d["statusReason"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until a resource's state is `want`.
    pub async fn wait_state(&self, sub: &str, id: &str, rid: &str, want: &str) -> Value {
        let start = Instant::now();
        loop {
            let r = self
                .json(sub, &format!("/deployments/{id}/resources/{rid}"))
                .await;
            if r["state"] == want {
                return r;
            }
            assert!(
                start.elapsed() < LIMIT,
                "resource {rid} is {}, not {want}",
                r["state"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The items of the deployment's resource list (one page of 100).
    pub async fn resources(&self, sub: &str, id: &str) -> Vec<Value> {
        let page = self
            .json(sub, &format!("/deployments/{id}/resources?size=100"))
            .await;
        page["content"].as_array().cloned().expect("content")
    }
}

/// Asserts the legacy error body and returns its message.
pub async fn legacy_error(r: reqwest::Response, code: u16) -> String {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(status, code, "{text}");
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON error body: {text}"));
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default().to_string();
    assert!(!message.is_empty(), "{body}");
    message
}

/// A local HTTP server recording the JSON bodies POSTed to it (a dashboard's
/// `/callback`), answering `fail_first` times with 500 first.
#[derive(Clone)]
pub struct Sink {
    pub url: String,
    pub received: Arc<Mutex<Vec<Value>>>,
}

impl Sink {
    pub async fn start(fail_first: usize) -> Self {
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let failures = Arc::new(Mutex::new(fail_first));
        let (r, f) = (received.clone(), failures.clone());
        let app = axum::Router::new().route(
            "/callback",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let (r, f) = (r.clone(), f.clone());
                async move {
                    let mut left = f.lock().unwrap();
                    if *left > 0 {
                        *left -= 1;
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    r.lock().unwrap().push(body);
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/callback", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, received }
    }

    /// Waits until a body satisfies `pred`.
    pub async fn wait_for(&self, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(v) = self
                .received
                .lock()
                .unwrap()
                .iter()
                .find(|v| pred(v))
                .cloned()
            {
                return v;
            }
            assert!(
                start.elapsed() < LIMIT,
                "no callback matched; got {:?}",
                self.received.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A legacy create body.
pub fn create_body(template: &str, parameters: Value) -> Value {
    serde_json::json!({"template": template, "parameters": parameters, "userGroup": "beta-testers"})
}

/// The parsed `VirtualMachineInfo` of a legacy resource.
pub fn vm_info(resource: &Value) -> Value {
    let text = resource["metadata"]["VirtualMachineInfo"]
        .as_str()
        .unwrap_or_else(|| panic!("VirtualMachineInfo is a JSON string: {resource}"));
    serde_json::from_str(text).expect("VirtualMachineInfo parses")
}
