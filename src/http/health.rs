//! `GET /api/v1/health` (no token): the state of each component this instance
//! depends on, 200 when all are healthy and 500 otherwise (DESIGN.md §3).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::domain::Timestamp;

/// Health report. A component field appears only when that component is enabled.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `healthy` or `unhealthy`.
    pub status: &'static str,
    /// The database.
    pub db_connection: &'static str,
    /// OPA, in `AUTHZ_MODE=opa`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opa_connection: Option<&'static str>,
    /// Vault, when `VAULT_ENABLE` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault_connection: Option<&'static str>,
    /// Kafka, when `KAFKA_ENABLE` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_connection: Option<&'static str>,
    /// When the report was made.
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: Timestamp,
    /// What is wrong, when unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

fn word(ok: bool) -> &'static str {
    if ok {
        "healthy"
    } else {
        "unhealthy"
    }
}

/// Reports the health of the service and its components.
#[utoipa::path(get, path = "/health", tag = "health",
    responses(
        (status = 200, description = "Every component is healthy", body = Health),
        (status = 500, description = "A component is unhealthy", body = Health),
    ))]
pub async fn get_health(State(app): State<AppState>) -> (StatusCode, Json<Health>) {
    let mut problems = Vec::new();
    let db_ok = match app.store.ping(PROBE_TIMEOUT).await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, "health check: database unreachable");
            problems.push("database unreachable".to_string());
            false
        }
    };
    // `None` in embedded mode: there is no policy service to reach.
    let opa_ok = app.policy.probe().await;
    if opa_ok == Some(false) {
        tracing::warn!(opa.url = %app.config.opa_authz_url, "health check: OPA unreachable");
        problems.push("the policy service (OPA) is unreachable".to_string());
    }
    let vault_ok = match app.config.vault {
        Some(_) => {
            let ok = tokio::time::timeout(PROBE_TIMEOUT, app.secrets.probe())
                .await
                .ok()
                .flatten()
                .unwrap_or(false);
            if !ok {
                problems.push("Vault unreachable or refusing the orchestrator".to_string());
            }
            Some(ok)
        }
        None => None,
    };
    let kafka_ok = match app.messaging.probe(PROBE_TIMEOUT).await {
        None => None,
        Some(Ok(())) => Some(true),
        Some(Err(err)) => {
            tracing::warn!(error = %err, "health check: Kafka unreachable");
            problems.push("Kafka unreachable".to_string());
            Some(false)
        }
    };
    let healthy = problems.is_empty();
    let report = Health {
        status: word(healthy),
        db_connection: word(db_ok),
        opa_connection: opa_ok.map(word),
        vault_connection: vault_ok.map(word),
        kafka_connection: kafka_ok.map(word),
        timestamp: Timestamp::now(),
        details: (!healthy).then(|| problems.join("; ")),
    };
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (code, Json(report))
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_health))
}
