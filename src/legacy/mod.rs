//! The legacy INDIGO PaaS Orchestrator API, so that today's dashboard and orchent
//! work unchanged (legacy-api.md; docs/legacy.md says what is supported and how each
//! legacy notion maps onto v1). Mounted at `LEGACY_PREFIX` (default `/orchestrator`,
//! empty = the root) in the same application as `/api/v1`, over the same services:
//! this module only translates paths, parameters, bodies, shapes and status codes.
//!
//! - `deployments.rs`: the deployment operations and text endpoints;
//! - `resources.rs`: resources and their start/stop actions;
//! - `shapes.rs`: the legacy JSON shapes and the paging envelope;
//! - `error.rs`: the `{code, title, message}` error body;
//! - `extract.rs`: the caller and a lenient JSON body;
//! - `callbacks.rs`: the background notifier POSTing final states to `callback` URLs.

pub mod callbacks;
pub mod deployments;
pub mod error;
pub mod extract;
pub mod resources;
pub mod shapes;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::http::AppState;
use error::{LegacyError, LegacyResult};
use extract::Caller;

/// The legacy routes, mounted at `prefix` (empty: the root).
pub fn router(prefix: &str) -> Router<AppState> {
    let routes = Router::new()
        .route("/", get(get_root))
        .route(
            "/deployments",
            get(deployments::list_deployments).post(deployments::create_deployment),
        )
        .route(
            "/deployments/{id}",
            get(deployments::get_deployment)
                .put(deployments::update_deployment)
                .patch(deployments::reset_deployment)
                .delete(deployments::delete_deployment),
        )
        .route(
            "/deployments/{id}/template",
            get(deployments::get_deployment_template),
        )
        .route(
            "/deployments/{id}/log",
            get(deployments::get_deployment_log),
        )
        .route(
            "/deployments/{id}/extrainfo",
            get(deployments::get_deployment_extrainfo),
        )
        .route(
            "/deployments/{id}/resources",
            get(resources::list_resources),
        )
        .route(
            "/deployments/{id}/resources/{rid}",
            get(resources::get_resource),
        )
        .route(
            "/deployments/{id}/resources/{rid}/actions",
            post(resources::act_on_resource),
        )
        .route("/configuration", get(get_configuration))
        .route("/info", get(get_info))
        .method_not_allowed_fallback(method_not_allowed);
    if prefix.is_empty() {
        routes
    } else {
        Router::new().nest(prefix, routes.fallback(unknown_route))
    }
}

async fn unknown_route(req: Request) -> LegacyError {
    LegacyError::not_found(format!("no route for '{}'", req.uri().path()))
}

async fn method_not_allowed(req: Request) -> LegacyError {
    LegacyError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {} is not allowed on '{}'",
            req.method(),
            req.uri().path()
        ),
    )
}

/// `GET /`: the legacy server's greeting (no token).
async fn get_root() -> &'static str {
    "INDIGO-Orchestrator"
}

/// `GET /configuration`: a flat map of service URLs (orchent decodes it as
/// `map[string]string`, so only strings, nulls omitted). This orchestrator has no
/// CPR, SLAM, CMDB, monitoring or Rucio: only `im_url` (the first provider's IM) and
/// `vault_url` can appear.
async fn get_configuration(
    State(app): State<AppState>,
    Caller(_): Caller,
) -> LegacyResult<Json<Map<String, Value>>> {
    let mut out = Map::new();
    if let Some(p) = app.config.engine.providers.all().first() {
        out.insert("im_url".into(), Value::String(p.im_url.clone()));
    }
    if let Some(vault) = &app.config.vault {
        out.insert("vault_url".into(), Value::String(vault.url.clone()));
    }
    Ok(Json(out))
}

/// `GET /info`: build information in the actuator's shape.
async fn get_info(Caller(_): Caller) -> Json<Value> {
    Json(json!({
        "app": {"name": env!("CARGO_PKG_NAME"), "description": env!("CARGO_PKG_DESCRIPTION")},
        "build": {"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION"), "artifact": "orchestrator"},
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn prefix(value: Option<&str>) -> Result<String, String> {
        let mut vars = vec![("DATA_DIR".to_string(), "/tmp".to_string())];
        if let Some(v) = value {
            vars.push(("LEGACY_PREFIX".to_string(), v.to_string()));
        }
        Config::from_sources(vars, None)
            .map(|c| c.legacy.prefix)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_prefix_defaults_to_orchestrator_and_may_be_the_root() {
        assert_eq!(prefix(None).unwrap(), "/orchestrator");
        assert_eq!(prefix(Some("")).unwrap(), "");
        assert_eq!(prefix(Some("/")).unwrap(), "");
        assert_eq!(prefix(Some("paas/legacy/")).unwrap(), "/paas/legacy");
        let err = prefix(Some("/api/v1")).unwrap_err();
        assert!(err.contains("LEGACY_PREFIX"), "{err}");
        assert!(prefix(Some("/a b")).unwrap_err().contains("LEGACY_PREFIX"));
    }
}
