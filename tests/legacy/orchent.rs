//! orchent's commands (infn-datacloud/orchent `orchent.go`) against the running
//! server: `depls`, `depcreate`, `depshow`, `deptemplate`, `deplog`, `resls`,
//! `resshow`, `depupdate`, `showconf`, `test` and `depdel`, on the fake IM and, when
//! `TEST_IM_URL` is set, on the real IM with its Dummy cloud. orchent resolves
//! `./deployments` against the base URL with a trailing slash, sends `Bearer`, pages
//! until `self` equals `last`, and decodes `/configuration` as `map[string]string`.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::common::service_var;
use crate::helpers::{TestApp, ALICE};
use crate::{app_with, Legacy, LEGACY_VM};
use im_client::fake::FakeIm;

/// orchent's HTTP client: the base URL with a trailing slash, `Bearer`.
struct Orchent<'a> {
    app: &'a TestApp,
    base: String,
}

impl Orchent<'_> {
    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            return path.to_string();
        }
        url::Url::parse(&self.base)
            .and_then(|b| b.join(path))
            .expect("relative URL")
            .to_string()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut r = self
            .app
            .client
            .request(method, self.url(path))
            .bearer_auth(self.app.token(ALICE));
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.expect("request")
    }

    async fn json(&self, path: &str) -> Value {
        let r = self.call(reqwest::Method::GET, path, None).await;
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("JSON")
    }

    async fn text(&self, path: &str) -> String {
        let r = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.text().await.expect("text")
    }

    /// Every item, paging until `self` equals `last` (orchent's loop).
    async fn all(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut url = self.url(path);
        for _ in 0..20 {
            let page = self.json(&url).await;
            items.extend(page["content"].as_array().expect("content").iter().cloned());
            let link = |rel: &str| {
                page["links"]
                    .as_array()
                    .expect("links")
                    .iter()
                    .find(|l| l["rel"] == rel)
                    .and_then(|l| l["href"].as_str())
                    .map(str::to_string)
            };
            if link("self") == link("last") {
                return items;
            }
            url = link("next").expect("a next link until self is last");
        }
        panic!("orchent never reached the last page");
    }
}

async fn orchent_session(
    im_url: &str,
    template: &str,
    create: Value,
    update: Value,
    resource_count: usize,
) {
    let (app, _dir) = app_with(&[im_url], &[]).await;
    let o = Orchent {
        app: &app,
        base: format!("{}/orchestrator/", app.address),
    };
    let l = Legacy::new(&app);

    // test, showconf
    let info = o.json("./info").await;
    assert!(info.is_object());
    let conf: HashMap<String, String> =
        serde_json::from_value(o.json("./configuration").await).expect("map[string]string");
    assert_eq!(conf.get("im_url").map(String::as_str), Some(im_url));

    // depcreate (orchent sends the numbers as numbers and no trailing slash)
    let r = o
        .call(
            reqwest::Method::POST,
            "./deployments",
            Some(json!({"template": template, "parameters": create, "userGroup": "beta-testers",
                "maxProvidersRetry": 1, "timeoutMins": 30, "providerTimeoutMins": 10, "keepLastAttempt": false})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["uuid"].as_str().unwrap().to_string();

    // depls
    let all = o.all("./deployments?createdBy=me").await;
    assert!(all.iter().any(|d| d["uuid"] == id.as_str()));

    // depshow
    let d = l.wait_status(ALICE, &id, "CREATE_COMPLETE").await;
    assert_eq!(o.json(&format!("./deployments/{id}")).await, d);
    assert!(d["physicalId"].is_string());
    assert_eq!(d["cloudProviderName"], "dummy0");

    // deptemplate, deplog
    assert_eq!(
        o.text(&format!("./deployments/{id}/template")).await,
        template
    );
    let _log = o.text(&format!("./deployments/{id}/log")).await;

    // resls, resshow
    let resources = o.all(&format!("./deployments/{id}/resources")).await;
    assert_eq!(resources.len(), resource_count, "{resources:?}");
    let rid = resources[0]["uuid"].as_str().unwrap();
    let shown = o.json(&format!("./deployments/{id}/resources/{rid}")).await;
    assert_eq!(shown["uuid"], rid);
    assert_eq!(shown["state"], "STARTED");
    crate::vm_info(&shown);

    // depupdate (parameters only)
    let r = o
        .call(
            reqwest::Method::PUT,
            &format!("./deployments/{id}"),
            Some(json!({"parameters": update})),
        )
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["content-length"], "0");
    l.wait_status(ALICE, &id, "UPDATE_COMPLETE").await;

    // depdel
    let r = o
        .call(
            reqwest::Method::DELETE,
            &format!("./deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    l.wait_status(ALICE, &id, "DELETE_COMPLETE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchent_commands_work_on_the_fake_im() {
    let im = FakeIm::start().await;
    im.set_compute_types(&["tosca.nodes.indigo.Compute"]);
    orchent_session(
        im.url(),
        LEGACY_VM,
        json!({"vm_count": 2}),
        json!({"num_cpus": 2}),
        2,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchent_commands_work_on_a_real_im() {
    let Some(im_url) = service_var("TEST_IM_URL") else {
        return;
    };
    orchent_session(
        &im_url,
        &crate::real_vm(1),
        json!({}),
        json!({"num_cpus": 2}),
        1,
    )
    .await;
}
