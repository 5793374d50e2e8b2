//! The HTTP API: one module per resource, each exporting `router()`, assembled in one
//! route table here ([`router`]). Cross-cutting behaviour lives here too: request ids,
//! request spans, trailing-slash tolerance under `/api/v1`, the error body for unknown
//! routes and methods, and the generated OpenAPI document with its `/docs` page.

pub mod auth;
pub mod configuration;
pub mod deployments;
pub mod error;
pub mod extract;
pub mod health;
pub mod list;
pub mod logs;
pub mod resources;
pub mod ssh_keys;
pub mod templates;
pub mod users;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode, Uri};
use axum::Router;
use tower::{Layer, ServiceBuilder};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub use crate::state::{AppInner, AppState};
use error::ApiError;

/// The request path as the client sent it (before trailing-slash trimming): the
/// policy input carries it, as orchestrator-python's did.
#[derive(Debug, Clone)]
pub struct OriginalPath(pub String);

/// The base path of the v1 API.
pub const API_V1: &str = "/api/v1";

/// Largest accepted request body: templates of several megabytes must fit.
const BODY_LIMIT: usize = 32 * 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orchestrator",
        description = "PaaS Orchestrator of the INFN DataCloud: TOSCA templates deployed on cloud providers through the Infrastructure Manager.",
    ),
    components(schemas(error::ErrorBody, error::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Service health"),
        (name = "users", description = "Registered users"),
        (name = "templates", description = "TOSCA templates"),
        (name = "deployments", description = "Deployments of templates on cloud providers"),
        (name = "resources", description = "The TOSCA nodes of a deployment"),
        (name = "logs", description = "Deployment logs"),
    )
)]
struct ApiDoc;

/// Declares the bearer-token security scheme the operations refer to.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    build(None).1
}

fn build(state: Option<AppState>) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let _ = state;
    let v1 = OpenApiRouter::new()
        .merge(health::router())
        .merge(configuration::router())
        .merge(users::router())
        .merge(ssh_keys::router())
        .merge(templates::router())
        .merge(deployments::router())
        .merge(resources::router())
        .merge(logs::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(API_V1, v1)
        .split_for_parts()
}

/// The application as a tower service, ready to serve.
pub fn router(state: AppState) -> axum::routing::IntoMakeService<TrailingSlash<Router>> {
    let (routes, api) = build(Some(state.clone()));
    let request_id = HeaderName::from_static("x-request-id");
    let app = routes
        .merge(crate::legacy::router(&state.config.legacy.prefix))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::new(request_id)),
        );
    axum::ServiceExt::<Request>::into_make_service(TrailingSlashLayer.layer(app))
}

fn request_span(req: &Request) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!("request", request.id = %id, http.method = %req.method(), http.path = %req.uri().path())
}

async fn unknown_route(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for '{}'", uri.path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {} is not allowed on '{}'",
            req.method(),
            req.uri().path()
        ),
    )
}

/// Serves collections with or without a trailing slash, without a redirect, by
/// trimming it before routing. Only API paths are touched: `/docs/` must keep its
/// slash.
#[derive(Clone, Copy)]
pub struct TrailingSlashLayer;

impl<S> Layer<S> for TrailingSlashLayer {
    type Service = TrailingSlash<S>;
    fn layer(&self, inner: S) -> TrailingSlash<S> {
        TrailingSlash { inner }
    }
}

/// See [`TrailingSlashLayer`].
#[derive(Clone)]
pub struct TrailingSlash<S> {
    inner: S,
}

impl<S, B> tower::Service<axum::http::Request<B>> for TrailingSlash<S>
where
    S: tower::Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        let original = OriginalPath(req.uri().path().to_string());
        req.extensions_mut().insert(original);
        let path = req.uri().path();
        if path.len() > 1 && path.ends_with('/') && !path.starts_with("/docs") {
            let trimmed = path.trim_end_matches('/');
            let new = match req.uri().query() {
                Some(q) => format!("{trimmed}?{q}"),
                None => trimmed.to_string(),
            };
            if let Ok(uri) = new.parse::<Uri>() {
                *req.uri_mut() = uri;
            }
        }
        self.inner.call(req)
    }
}
