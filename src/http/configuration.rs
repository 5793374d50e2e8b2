//! `GET /api/v1/configuration`: the endpoints of the services this orchestrator uses
//! and the providers deployments may go to (DESIGN.md §3). Never a credential: the
//! providers' IM and cloud credentials, client secrets and keys stay out.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Principal;
use super::error::ApiError;
use super::AppState;
use crate::config::{AuthzMode, EngineMode};
use crate::engine::providers::ProviderView;

/// What this orchestrator talks to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Configuration {
    /// `builtin` or `external`.
    pub engine: &'static str,
    /// Where deployments may go, in rank order.
    pub providers: Vec<ProviderView>,
    /// IM endpoints used by the providers.
    pub im_urls: Vec<String>,
    /// Issuers whose tokens are accepted.
    pub trusted_issuers: Vec<String>,
    /// `embedded` or `opa`.
    pub authz_mode: &'static str,
    /// The OPA decision URL, in `opa` mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opa_url: Option<String>,
}

/// Lists the services and providers this orchestrator uses.
#[utoipa::path(get, path = "/configuration", tag = "configuration",
    security(("BearerAuth" = [])),
    responses(
        (status = 200, description = "Service endpoints and providers", body = Configuration),
        (status = 401, description = "Missing or invalid token", body = crate::http::error::ErrorBody),
    ))]
pub async fn get_configuration(
    State(app): State<AppState>,
    _principal: Principal,
) -> Result<Json<Configuration>, ApiError> {
    let config = &app.config;
    let providers: Vec<ProviderView> = config
        .engine
        .providers
        .all()
        .iter()
        .map(|p| p.view())
        .collect();
    let mut im_urls: Vec<String> = providers.iter().map(|p| p.im_url.clone()).collect();
    im_urls.sort();
    im_urls.dedup();
    Ok(Json(Configuration {
        engine: match config.engine.mode {
            EngineMode::Builtin => "builtin",
            EngineMode::External => "external",
        },
        providers,
        im_urls,
        trusted_issuers: config
            .trusted_idps
            .iter()
            .map(|i| i.issuer.clone())
            .collect(),
        authz_mode: match config.authz_mode {
            AuthzMode::Embedded => "embedded",
            AuthzMode::Opa => "opa",
        },
        opa_url: (config.authz_mode == AuthzMode::Opa).then(|| config.opa_authz_url.clone()),
    }))
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_configuration))
}
