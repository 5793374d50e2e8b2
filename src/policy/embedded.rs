//! The policy evaluated in-process with regorus (`AUTHZ_MODE=embedded`).

use async_trait::async_trait;
use serde_json::Value;

use super::{Authorizer, Decision, PolicyError, PolicyInput};

/// A compiled policy with its data; cloned per evaluation (cheap: shared internals).
pub struct EmbeddedPolicy {
    engine: regorus::Engine,
    /// Engines ready for another evaluation: cloning the compiled policy costs more
    /// than evaluating it, so each clone is kept and reused (one per concurrent
    /// evaluation at most).
    idle: std::sync::Mutex<Vec<regorus::Engine>>,
}

impl EmbeddedPolicy {
    /// Compiles `policy` with `data`. A policy that does not compile stops the start.
    pub fn new(policy: &str, data: &Value) -> anyhow::Result<Self> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("orchestrator.rego".into(), policy.to_string())
            .map_err(|e| anyhow::anyhow!("the authorization policy does not compile: {e}"))?;
        engine
            .add_data(
                regorus::Value::from_json_str(&data.to_string())
                    .map_err(|e| anyhow::anyhow!("policy data: {e}"))?,
            )
            .map_err(|e| anyhow::anyhow!("policy data: {e}"))?;
        // Evaluate once so that a policy without the expected rules fails at start.
        let probe = Self {
            engine,
            idle: std::sync::Mutex::new(Vec::new()),
        };
        probe
            .evaluate(&PolicyInput {
                user_info: Default::default(),
                path: "/".into(),
                method: "GET".into(),
                has_body: false,
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(probe)
    }

    fn evaluate(&self, input: &PolicyInput) -> Result<Decision, PolicyError> {
        let reused = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut engine = reused.unwrap_or_else(|| self.engine.clone());
        let decision = Self::evaluate_with(&mut engine, input);
        if decision.is_ok() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(engine);
        }
        decision
    }

    fn evaluate_with(
        engine: &mut regorus::Engine,
        input: &PolicyInput,
    ) -> Result<Decision, PolicyError> {
        let input = regorus::Value::from_json_str(
            &serde_json::to_string(input).map_err(|e| PolicyError::Evaluation(e.to_string()))?,
        )
        .map_err(|e| PolicyError::Evaluation(e.to_string()))?;
        engine.set_input(input);
        let mut rule = |name: &str| -> Result<bool, PolicyError> {
            let value = engine
                .eval_rule(format!("data.orchestrator.{name}"))
                .map_err(|e| PolicyError::Evaluation(e.to_string()))?;
            Ok(value == regorus::Value::from(true))
        };
        let allow = rule("allow")?;
        let is_admin = rule("is_admin")?;
        Ok(Decision { allow, is_admin })
    }
}

#[async_trait]
impl Authorizer for EmbeddedPolicy {
    async fn decide(&self, input: &PolicyInput) -> Result<Decision, PolicyError> {
        self.evaluate(input)
    }

    async fn probe(&self) -> Option<bool> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> EmbeddedPolicy {
        let data = json!({
            "trusted_issuers": [{"endpoint": "https://iam.example.org/", "claim": "groups"}],
            "admin_entitlements": ["admins"],
            "user_endpoints": [{"path": "/api/v1/**", "method": "*"}, {"path": "/other/list", "method": "GET"}],
        });
        EmbeddedPolicy::new(super::super::SHIPPED_POLICY, &data).unwrap()
    }

    fn ask(iss: &str, groups: serde_json::Value, method: &str, path: &str) -> Decision {
        let user_info = json!({"iss": iss, "sub": "s", "groups": groups});
        policy()
            .evaluate(&PolicyInput {
                user_info: user_info.as_object().unwrap().clone(),
                path: path.into(),
                method: method.into(),
                has_body: false,
            })
            .unwrap()
    }

    #[test]
    fn admins_are_recognised_by_group() {
        let d = ask(
            "https://iam.example.org",
            json!(["users", "admins"]),
            "DELETE",
            "/anything",
        );
        assert_eq!(
            d,
            Decision {
                allow: true,
                is_admin: true
            }
        );
    }

    #[test]
    fn a_single_group_string_counts_too() {
        assert!(ask("https://iam.example.org/", json!("admins"), "GET", "/x").is_admin);
    }

    #[test]
    fn users_reach_the_user_endpoints_only() {
        let d = ask(
            "https://iam.example.org/",
            json!(["users"]),
            "POST",
            "/api/v1/deployments/",
        );
        assert_eq!(
            d,
            Decision {
                allow: true,
                is_admin: false
            }
        );
        assert!(
            ask(
                "https://iam.example.org/",
                json!(["users"]),
                "GET",
                "/other/list"
            )
            .allow
        );
        assert!(
            !ask(
                "https://iam.example.org/",
                json!(["users"]),
                "POST",
                "/other/list"
            )
            .allow
        );
        assert!(
            !ask(
                "https://iam.example.org/",
                json!(["users"]),
                "GET",
                "/elsewhere"
            )
            .allow
        );
    }

    #[test]
    fn untrusted_issuers_are_denied_even_with_admin_groups() {
        let d = ask(
            "https://evil.example.org/",
            json!(["admins"]),
            "GET",
            "/api/v1/users",
        );
        assert_eq!(
            d,
            Decision {
                allow: false,
                is_admin: false
            }
        );
    }

    #[test]
    fn a_policy_that_does_not_compile_is_refused() {
        assert!(EmbeddedPolicy::new("package orchestrator\nallow if {", &json!({})).is_err());
    }
}
