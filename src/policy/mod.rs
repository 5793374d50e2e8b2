//! Authorization decisions. The same Rego policy (`policy/orchestrator.rego`, or
//! `POLICY_FILE`) and the same data document are evaluated in-process with regorus
//! (`AUTHZ_MODE=embedded`, the default) or by a remote OPA (`AUTHZ_MODE=opa`), which
//! receives the input orchestrator-python sends. Either way the answer is a
//! [`Decision`]; a policy that cannot be evaluated never allows.
//!
//! Decisions are a pure function of the input, so they are cached for a short while:
//! a client repeating a request pays for one evaluation.

pub mod embedded;
pub mod opa;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::config::{AuthzMode, Config};

/// The shipped policy.
pub const SHIPPED_POLICY: &str = include_str!("../../policy/orchestrator.rego");

/// What the policy is asked about.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PolicyInput {
    /// Token claims merged with userinfo.
    pub user_info: Map<String, Value>,
    /// The request path as sent (trailing slash included).
    pub path: String,
    /// The HTTP method.
    pub method: String,
    /// Whether the request has a body.
    pub has_body: bool,
}

/// What the policy answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The request may proceed.
    pub allow: bool,
    /// The caller is an administrator.
    pub is_admin: bool,
}

/// Why no decision could be taken (always answered 503, never an allow).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// OPA could not be reached.
    #[error("the policy service (OPA) cannot be reached at {0}")]
    Unreachable(String),
    /// OPA did not answer within `OPA_TIMEOUT`.
    #[error("the policy service (OPA) did not answer within {0}")]
    Timeout(String),
    /// OPA answered something that is not a decision.
    #[error("the policy service gave no usable decision: {0}")]
    BadAnswer(String),
    /// The policy failed to evaluate.
    #[error("the policy could not be evaluated: {0}")]
    Evaluation(String),
}

/// Takes authorization decisions.
#[async_trait]
pub trait Authorizer: Send + Sync {
    /// Decides on one request.
    async fn decide(&self, input: &PolicyInput) -> Result<Decision, PolicyError>;
    /// Checks that the decision point is reachable (health), `None` when there is
    /// nothing remote to check.
    async fn probe(&self) -> Option<bool>;
}

/// The `data` document built from the settings (DESIGN.md §5).
pub fn default_data(config: &Config) -> Value {
    json!({
        "trusted_issuers": config.trusted_idps.iter()
            .map(|idp| json!({"endpoint": idp.issuer, "claim": idp.group_claim}))
            .collect::<Vec<_>>(),
        "admin_entitlements": config.admin_groups,
        "user_endpoints": user_endpoints(config),
    })
}

/// The v1 API and the legacy API at its prefix (LEGACY_PREFIX).
fn user_endpoints(config: &Config) -> Vec<Value> {
    let mut paths = vec!["/api/v1/**".to_string()];
    match config.legacy.prefix.as_str() {
        "" => paths.extend(
            ["/deployments", "/deployments/**", "/configuration", "/info"].map(String::from),
        ),
        prefix => paths.push(format!("{prefix}/**")),
    }
    paths
        .into_iter()
        .map(|path| json!({"path": path, "method": "*"}))
        .collect()
}

/// Loads the data document: `POLICY_DATA_FILE` or the default.
pub fn load_data(config: &Config) -> anyhow::Result<Value> {
    match &config.policy_data_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)?;
            serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!("POLICY_DATA_FILE '{}' is not JSON: {e}", path.display())
            })
        }
        None => Ok(default_data(config)),
    }
}

/// Loads the policy text: `POLICY_FILE` or the shipped policy.
pub fn load_policy(config: &Config) -> anyhow::Result<String> {
    match &config.policy_file {
        Some(path) => Ok(std::fs::read_to_string(path)?),
        None => Ok(SHIPPED_POLICY.to_string()),
    }
}

/// Caches decisions of another authorizer.
pub struct CachedAuthorizer {
    inner: Arc<dyn Authorizer>,
    /// Keyed by the input's JSON text: claims, path, method and body flag.
    cache: moka::sync::Cache<String, Decision>,
    /// Whether ids in the path may be left out of the key (see [`ids_out`]).
    ids_out_of_key: bool,
}

impl CachedAuthorizer {
    /// Caches `inner`'s decisions for `ttl`. With `ids_out_of_key`, requests that
    /// differ only by the ids in their path share one decision: right only when the
    /// policy cannot tell ids apart (the shipped policy and its default data, whose
    /// rules match path prefixes).
    pub fn new(inner: Arc<dyn Authorizer>, ttl: Duration, ids_out_of_key: bool) -> Self {
        Self {
            inner,
            cache: moka::sync::Cache::builder()
                .max_capacity(50_000)
                .time_to_live(ttl)
                .build(),
            ids_out_of_key,
        }
    }
}

/// `path` with every segment that is a UUID (the ids of users, templates,
/// deployments and resources) written `{id}`.
fn ids_out(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if uuid::Uuid::try_parse(segment).is_ok() {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[async_trait]
impl Authorizer for CachedAuthorizer {
    async fn decide(&self, input: &PolicyInput) -> Result<Decision, PolicyError> {
        let key = if self.ids_out_of_key {
            let keyed = PolicyInput {
                path: ids_out(&input.path),
                ..input.clone()
            };
            serde_json::to_string(&keyed).unwrap_or_default()
        } else {
            serde_json::to_string(input).unwrap_or_default()
        };
        if let Some(decision) = self.cache.get(&key) {
            return Ok(decision);
        }
        let decision = self.inner.decide(input).await?;
        self.cache.insert(key, decision);
        Ok(decision)
    }

    async fn probe(&self) -> Option<bool> {
        self.inner.probe().await
    }
}

/// Builds the configured authorizer.
pub fn build(config: &Config) -> anyhow::Result<Arc<dyn Authorizer>> {
    let data = load_data(config)?;
    let inner: Arc<dyn Authorizer> = match config.authz_mode {
        AuthzMode::Embedded => {
            Arc::new(embedded::EmbeddedPolicy::new(&load_policy(config)?, &data)?)
        }
        AuthzMode::Opa => Arc::new(opa::OpaClient::new(
            &config.opa_authz_url,
            config.opa_timeout,
        )),
    };
    // The shipped policy with its default data matches path prefixes only
    // (`/api/v1/**`, the legacy prefix): ids in the path never change its answer.
    // OPA may run any policy, so its decisions stay keyed by the whole path.
    let ids_out_of_key = matches!(config.authz_mode, AuthzMode::Embedded)
        && config.policy_file.is_none()
        && config.policy_data_file.is_none();
    Ok(Arc::new(CachedAuthorizer::new(
        inner,
        Duration::from_secs(30),
        ids_out_of_key,
    )))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Counting(AtomicUsize);

    #[async_trait]
    impl Authorizer for Counting {
        async fn decide(&self, _: &PolicyInput) -> Result<Decision, PolicyError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Decision {
                allow: true,
                is_admin: false,
            })
        }

        async fn probe(&self) -> Option<bool> {
            None
        }
    }

    fn input(path: &str) -> PolicyInput {
        PolicyInput {
            user_info: Map::new(),
            path: path.into(),
            method: "GET".into(),
            has_body: false,
        }
    }

    #[test]
    fn ids_are_taken_out_of_paths_and_nothing_else() {
        assert_eq!(
            ids_out("/api/v1/deployments/5f0c2d3e-0a4b-4c1d-9e8f-0123456789ab/resources/"),
            "/api/v1/deployments/{id}/resources/"
        );
        assert_eq!(ids_out("/api/v1/users/me"), "/api/v1/users/me");
        assert_eq!(
            ids_out("/api/v1/deployments/not-a-uuid"),
            "/api/v1/deployments/not-a-uuid"
        );
    }

    #[tokio::test]
    async fn paths_that_differ_by_ids_share_a_decision_only_when_allowed() {
        let a = "/api/v1/deployments/5f0c2d3e-0a4b-4c1d-9e8f-0123456789ab";
        let b = "/api/v1/deployments/6e1d3e4f-1b5c-4d2e-8f90-123456789abc";
        for (ids_out_of_key, evaluations) in [(true, 2), (false, 3)] {
            let inner = Arc::new(Counting(AtomicUsize::new(0)));
            let cached =
                CachedAuthorizer::new(inner.clone(), Duration::from_secs(30), ids_out_of_key);
            for path in [a, b, a, "/api/v1/templates"] {
                cached.decide(&input(path)).await.unwrap();
            }
            assert_eq!(
                inner.0.load(Ordering::SeqCst),
                evaluations,
                "ids_out_of_key = {ids_out_of_key}"
            );
        }
    }
}
