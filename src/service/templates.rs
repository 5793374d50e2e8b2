//! Template operations: registration (parsed and validated, imports fetched, the
//! name rule, duplicates refused by checksum), metadata changes, deletion, and the
//! parsed model of a stored template that deployments use.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Actor, Error, Result, Violation};
use crate::domain::list::ListQuery;
use crate::domain::{Template, Timestamp};
use crate::state::AppState;
use crate::store::{templates, StoreError};

/// Entity name in messages.
pub const ENTITY: &str = "template";

/// A tosca error as a 422 locating the problem in the content.
pub fn tosca_error(e: &tosca::Error) -> Error {
    let what = match e.kind {
        tosca::ErrorKind::Yaml => "the template is not valid YAML",
        _ => "the template is not valid TOSCA",
    };
    Error::Invalid {
        detail: format!("{what}: {e}"),
        violations: vec![Violation {
            loc: "/content".into(),
            msg: e.to_string(),
        }],
    }
}

/// Parses a template's content with its imports.
pub async fn parse(app: &AppState, content: &str) -> Result<tosca::Template> {
    let imports = app.imports.collect(content).await?;
    tosca::Template::parse_with_imports(content, &imports).map_err(|e| tosca_error(&e))
}

/// The parsed model of a stored template (cached: templates never change content).
pub async fn model(app: &AppState, template: &Template) -> Result<Arc<tosca::Template>> {
    if let Some(model) = app.models.get(&template.id) {
        return Ok(model);
    }
    let model = Arc::new(parse(app, &template.content).await?);
    app.models.insert(template.id, model.clone());
    Ok(model)
}

/// The parsed model of the stored template with this id (a deployment's template,
/// which cannot be deleted while the deployment exists).
pub async fn model_by_id(app: &AppState, id: Uuid) -> Result<Arc<tosca::Template>> {
    let mut conn = app.store.conn().await?;
    let template = templates::get(&mut conn, id)
        .await?
        .ok_or_else(|| Error::Internal(format!("template {id} is missing")))?;
    drop(conn);
    model(app, &template).await
}

fn checksum(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

fn clean(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Registers a template. The name comes from `metadata.template_name` or from
/// `name`, exactly one of them (400 otherwise); the same content twice is a 409
/// naming the existing template.
pub async fn register(
    app: &AppState,
    actor: &Actor,
    content: String,
    name: Option<String>,
) -> Result<Template> {
    if content.trim().is_empty() {
        return Err(Error::invalid("/content", "the template content is empty"));
    }
    let parsed = parse(app, &content).await?;
    let name = match (parsed.template_name(), clean(name)) {
        (Some(_), Some(_)) => {
            return Err(Error::BadRequest(
                "the template has metadata.template_name and the request gives 'name' too; give exactly one".into(),
            ))
        }
        (None, None) => {
            return Err(Error::BadRequest(
                "the template has no metadata.template_name; give its name with 'name'".into(),
            ))
        }
        (Some(n), None) | (None, Some(n)) => n,
    };
    if name.len() > 255 {
        return Err(Error::invalid("/name", "must be at most 255 characters"));
    }
    let checksum = checksum(&content);
    let mut tx = app.store.begin().await?;
    if let Some(existing) = templates::find_by_checksum(&mut tx, &checksum).await? {
        return Err(duplicate(&existing));
    }
    let now = Timestamp::now();
    let template = Template {
        id: Uuid::new_v4(),
        name,
        version: parsed.template_version(),
        target_provider_type: parsed.target_provider_type(),
        tosca_definition_version: parsed.tosca_definitions_version().to_string(),
        content,
        checksum,
        created_at: now,
        created_by: actor.user_id,
        updated_at: now,
        updated_by: actor.user_id,
    };
    match templates::insert(&mut tx, &template).await {
        Ok(()) => {}
        Err(StoreError::Duplicate(_)) => {
            drop(tx);
            let mut conn = app.store.conn().await?;
            if let Some(existing) =
                templates::find_by_checksum(&mut conn, &template.checksum).await?
            {
                return Err(duplicate(&existing));
            }
            return Err(Error::Conflict(
                "a template with the same content was registered at the same time".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    app.models.insert(template.id, Arc::new(parsed));
    Ok(template)
}

fn duplicate(existing: &Template) -> Error {
    Error::Conflict(format!(
        "a template with the same content (checksum {}) is already registered as '{}' with id {}",
        existing.checksum, existing.name, existing.id
    ))
}

/// Finds a template by checksum (legacy creates reuse identical templates).
pub async fn by_checksum(app: &AppState, content: &str) -> Result<Option<Template>> {
    let mut conn = app.store.conn().await?;
    Ok(templates::find_by_checksum(&mut conn, &checksum(content)).await?)
}

/// A template (every authenticated user sees every template).
pub async fn get(app: &AppState, id: Uuid) -> Result<Template> {
    let mut conn = app.store.conn().await?;
    templates::get(&mut conn, id)
        .await?
        .ok_or_else(|| Error::not_found(ENTITY, id))
}

/// One page of templates.
pub async fn list(app: &AppState, query: &ListQuery) -> Result<(Vec<Template>, u64)> {
    let mut conn = app.store.conn().await?;
    Ok(templates::list(&mut conn, query).await?)
}

/// Metadata a client may change; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct MetadataChange {
    /// Name.
    pub name: Option<String>,
    /// Template version.
    pub version: Option<Option<String>>,
    /// Target provider type.
    pub target_provider_type: Option<Option<String>>,
    /// TOSCA version.
    pub tosca_definition_version: Option<String>,
}

fn may_change(actor: &Actor, t: &Template) -> Result<()> {
    if actor.is_admin || t.created_by == actor.user_id {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "only the creator of template '{}' or an administrator may change it",
            t.id
        )))
    }
}

/// Changes metadata (the content never changes).
pub async fn update(
    app: &AppState,
    actor: &Actor,
    id: Uuid,
    change: MetadataChange,
) -> Result<Template> {
    let mut violations = Vec::new();
    if let Some(name) = &change.name {
        if name.trim().is_empty() || name.len() > 255 {
            violations.push(Violation {
                loc: "/name".into(),
                msg: "must be a non-empty name of at most 255 characters".into(),
            });
        }
    }
    if let Some(v) = &change.tosca_definition_version {
        if !tosca::template::SUPPORTED_VERSIONS.contains(&v.as_str()) {
            violations.push(Violation {
                loc: "/tosca_definition_version".into(),
                msg: format!(
                    "must be one of {}",
                    tosca::template::SUPPORTED_VERSIONS.join(", ")
                ),
            });
        }
    }
    if !violations.is_empty() {
        let detail = violations
            .iter()
            .map(|v| format!("{}: {}", v.loc.trim_start_matches('/'), v.msg))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Error::Invalid { detail, violations });
    }
    let mut tx = app.store.begin().await?;
    let mut t = templates::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found(ENTITY, id))?;
    may_change(actor, &t)?;
    if let Some(name) = change.name {
        t.name = name.trim().to_string();
    }
    if let Some(version) = change.version {
        t.version = clean(version);
    }
    if let Some(kind) = change.target_provider_type {
        t.target_provider_type = clean(kind);
    }
    if let Some(v) = change.tosca_definition_version {
        t.tosca_definition_version = v;
    }
    t.updated_at = Timestamp::now();
    t.updated_by = actor.user_id;
    templates::update_metadata(&mut tx, &t).await?;
    tx.commit().await?;
    Ok(t)
}

/// Deletes a template no deployment uses.
pub async fn delete(app: &AppState, actor: &Actor, id: Uuid) -> Result<()> {
    let mut tx = app.store.begin().await?;
    let t = templates::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found(ENTITY, id))?;
    may_change(actor, &t)?;
    if templates::is_in_use(&mut tx, id).await? {
        return Err(Error::Conflict(format!(
            "template '{id}' is used by deployments and cannot be deleted"
        )));
    }
    templates::delete(&mut tx, id).await?;
    tx.commit().await?;
    app.models.invalidate(&id);
    Ok(())
}
