//! A remote OPA (`AUTHZ_MODE=opa`): `POST OPA_AUTHZ_URL {"input": ...}`, reading
//! `result.allow` and `result.is_admin`. An unreachable OPA, an error status, an
//! undefined result or garbage is a [`PolicyError`], never an allow.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Authorizer, Decision, PolicyError, PolicyInput};

/// Client of OPA's data API.
pub struct OpaClient {
    url: String,
    health_url: String,
    timeout: Duration,
    http: reqwest::Client,
}

/// The innermost cause of an error ("Connection refused"), which reqwest's own
/// message ("error sending request for url") leaves out.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl OpaClient {
    /// `url` is the data path of the policy package, e.g.
    /// `http://opa:8181/v1/data/orchestrator`.
    pub fn new(url: &str, timeout: Duration) -> Self {
        let health_url = match url::Url::parse(url) {
            Ok(mut u) => {
                u.set_path("/health");
                u.set_query(None);
                u.to_string()
            }
            Err(_) => url.to_string(),
        };
        Self {
            url: url.to_string(),
            health_url,
            timeout,
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
        }
    }
}

#[async_trait]
impl Authorizer for OpaClient {
    async fn decide(&self, input: &PolicyInput) -> Result<Decision, PolicyError> {
        let response = self
            .http
            .post(&self.url)
            .json(&json!({ "input": input }))
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    PolicyError::Timeout(format!("{} s (OPA_TIMEOUT)", self.timeout.as_secs_f64()))
                } else {
                    PolicyError::Unreachable(format!("{} ({})", self.url, root_cause(&e)))
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(PolicyError::BadAnswer(format!(
                "OPA answered HTTP {status}"
            )));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|e| PolicyError::BadAnswer(format!("OPA's answer is not JSON: {e}")))?;
        match body.get("result") {
            Some(Value::Object(result)) => Ok(Decision {
                allow: result.get("allow") == Some(&Value::Bool(true)),
                is_admin: result.get("is_admin") == Some(&Value::Bool(true)),
            }),
            Some(Value::Bool(allow)) => Ok(Decision {
                allow: *allow,
                is_admin: false,
            }),
            Some(other) => Err(PolicyError::BadAnswer(format!("unexpected result {other}"))),
            None => Err(PolicyError::BadAnswer(format!(
                "OPA returned an undefined result; is the orchestrator policy loaded at {}?",
                self.url
            ))),
        }
    }

    async fn probe(&self) -> Option<bool> {
        let ok = self
            .http
            .get(&self.health_url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        Some(ok)
    }
}
