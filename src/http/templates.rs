//! `/api/v1/templates`: registration (`{content, name?}` as JSON, or the YAML itself
//! with a YAML content type), reading, listing with filters on every field but the
//! content, metadata changes (PATCH and PUT) and deletion.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::Principal;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{parse_json, path_uuid, Json, QueryPairs, RequestUrl};
use super::list::{parse_query, Page};
use super::users::Created;
use super::AppState;
use crate::domain::{Template, Timestamp};
use crate::service::templates::{self as service, MetadataChange};
use crate::store::templates::LIST;

/// A template as shown by the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateRead {
    /// Template id.
    pub id: Uuid,
    /// Registration time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Who registered it.
    pub created_by: Uuid,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Who changed it last.
    pub updated_by: Uuid,
    /// The TOSCA YAML, verbatim.
    pub content: String,
    /// SHA-256 of the content.
    pub checksum: String,
    /// Name.
    pub name: String,
    /// Template version.
    pub version: Option<String>,
    /// IaaS type the template was written for.
    pub target_provider_type: Option<String>,
    /// TOSCA version.
    pub tosca_definition_version: String,
}

impl From<Template> for TemplateRead {
    fn from(t: Template) -> Self {
        Self {
            id: t.id,
            created_at: t.created_at,
            created_by: t.created_by,
            updated_at: t.updated_at,
            updated_by: t.updated_by,
            content: t.content,
            checksum: t.checksum,
            name: t.name,
            version: t.version,
            target_provider_type: t.target_provider_type,
            tosca_definition_version: t.tosca_definition_version,
        }
    }
}

/// Registration body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateCreate {
    /// The TOSCA YAML.
    pub content: String,
    /// The name, for templates without `metadata.template_name`.
    pub name: Option<String>,
}

fn is_yaml(headers: &HeaderMap) -> bool {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        mime.as_str(),
        "text/yaml" | "text/x-yaml" | "application/yaml" | "application/x-yaml"
    )
}

/// Registers a template.
#[utoipa::path(post, path = "/templates", tag = "templates", security(("bearer" = [])),
    request_body(content = TemplateCreate, description = "JSON `{content, name?}`, or the YAML itself with Content-Type text/yaml (then `?name=` gives the name)"),
    responses((status = 201, body = Created, headers(("Location" = String, description = "The new template"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_template(
    State(app): State<AppState>,
    principal: Principal,
    url: RequestUrl,
    pairs: QueryPairs,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let request = if is_yaml(&headers) {
        let content = String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::bad_request("the template is not UTF-8 text"))?;
        TemplateCreate {
            content,
            name: pairs.get("name").map(str::to_string),
        }
    } else {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.to_ascii_lowercase().starts_with("application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "expected Content-Type application/json or text/yaml, got '{}'",
                    if ct.is_empty() { "none" } else { ct }
                ),
            ));
        }
        parse_json::<TemplateCreate>(&body)?
    };
    let t = service::register(&app, &principal.actor(), request.content, request.name).await?;
    let location = url.absolute(&format!("{}/templates/{}", super::API_V1, t.id));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(Created { id: t.id }),
    ))
}

/// Lists templates.
#[utoipa::path(get, path = "/templates", tag = "templates", security(("bearer" = [])),
    params(
        ("page" = Option<u32>, Query, description = "1-based page"),
        ("size" = Option<u32>, Query, description = "Page size, at most 100"),
        ("sort" = Option<String>, Query, description = "Field, '-' prefix for descending"),
        ("name" = Option<String>, Query, description = "Substring of the name"),
    ),
    responses((status = 200, body = Page<TemplateRead>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_templates(
    State(app): State<AppState>,
    principal: Principal,
    pairs: QueryPairs,
    url: RequestUrl,
) -> ApiResult<axum::Json<Page<TemplateRead>>> {
    let query = parse_query(&pairs, &LIST, Some(&principal.id_text()))?;
    let (items, total) = service::list(&app, &query).await?;
    Ok(axum::Json(Page::new(
        items.into_iter().map(TemplateRead::from).collect(),
        total,
        &query,
        &url,
    )))
}

/// Reads a template.
#[utoipa::path(get, path = "/templates/{id}", tag = "templates", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Template id")),
    responses((status = 200, body = TemplateRead), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_template(
    State(app): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<TemplateRead>> {
    let id = path_uuid("id", &id)?;
    Ok(axum::Json(service::get(&app, id).await?.into()))
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Metadata changes; absent fields are kept, `null` clears optional ones.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateUpdate {
    /// Name.
    pub name: Option<String>,
    /// Template version.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub version: Option<Option<String>>,
    /// IaaS type.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub target_provider_type: Option<Option<String>>,
    /// TOSCA version.
    pub tosca_definition_version: Option<String>,
}

async fn change(
    app: &AppState,
    principal: &Principal,
    id: &str,
    body: TemplateUpdate,
    require_name: bool,
) -> ApiResult<StatusCode> {
    let id = path_uuid("id", id)?;
    if require_name && body.name.is_none() {
        return Err(ApiError::invalid_field(
            "/name",
            "is required by PUT (use PATCH to change single fields)",
        ));
    }
    let change = MetadataChange {
        name: body.name,
        version: body.version,
        target_provider_type: body.target_provider_type,
        tosca_definition_version: body.tosca_definition_version,
    };
    service::update(app, &principal.actor(), id, change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes some metadata of a template (its content never changes).
#[utoipa::path(patch, path = "/templates/{id}", tag = "templates", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Template id")), request_body = TemplateUpdate,
    responses((status = 204, description = "Changed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch_template(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(body): Json<TemplateUpdate>,
) -> ApiResult<StatusCode> {
    change(&app, &principal, &id, body, false).await
}

/// Replaces the metadata of a template (`name` required).
#[utoipa::path(put, path = "/templates/{id}", tag = "templates", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Template id")), request_body = TemplateUpdate,
    responses((status = 204, description = "Changed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_template(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(body): Json<TemplateUpdate>,
) -> ApiResult<StatusCode> {
    change(&app, &principal, &id, body, true).await
}

/// Deletes a template no deployment uses.
#[utoipa::path(delete, path = "/templates/{id}", tag = "templates", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Template id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_template(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = path_uuid("id", &id)?;
    service::delete(&app, &principal.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_template, list_templates))
        .routes(routes!(
            get_template,
            patch_template,
            put_template,
            delete_template
        ))
}
