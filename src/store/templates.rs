//! SQL for `templates`.

use uuid::Uuid;

use super::list::{bind_rows, bind_scalar, filter, order_and_page};
use super::{sql, uuid_column, Conn, StoreResult, Text};
use crate::domain::list::{Field, FieldKind, ListQuery, ListSpec};
use crate::domain::{Template, Timestamp};

/// Filterable and sortable template attributes: every field but the content.
pub static LIST: ListSpec = ListSpec {
    fields: &[
        Field {
            name: "created_at",
            sql: "created_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        Field {
            name: "updated_at",
            sql: "updated_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        Field {
            name: "id",
            sql: "id",
            kind: FieldKind::Id,
            sortable: true,
        },
        Field {
            name: "created_by",
            sql: "created_by",
            kind: FieldKind::User,
            sortable: true,
        },
        Field {
            name: "updated_by",
            sql: "updated_by",
            kind: FieldKind::User,
            sortable: true,
        },
        Field {
            name: "name",
            sql: "name",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "version",
            sql: "version",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "target_provider_type",
            sql: "target_provider_type",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "tosca_definition_version",
            sql: "tosca_definition_version",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "checksum",
            sql: "checksum",
            kind: FieldKind::Exact,
            sortable: true,
        },
    ],
    default_sort: "-created_at",
    tie_breaker: "id",
    extra_params: &[],
};

const COLUMNS: &str = "id, name, version, target_provider_type, tosca_definition_version, \
                       content, checksum, created_at, created_by, updated_at, updated_by";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    version: Option<String>,
    target_provider_type: Option<String>,
    tosca_definition_version: String,
    content: Text,
    checksum: String,
    created_at: i64,
    created_by: String,
    updated_at: i64,
    updated_by: String,
}

impl TryFrom<Row> for Template {
    type Error = super::StoreError;
    fn try_from(r: Row) -> StoreResult<Template> {
        Ok(Template {
            id: uuid_column(&r.id)?,
            name: r.name,
            version: r.version,
            target_provider_type: r.target_provider_type,
            tosca_definition_version: r.tosca_definition_version,
            content: r.content.0,
            checksum: r.checksum,
            created_at: Timestamp::from_micros(r.created_at),
            created_by: uuid_column(&r.created_by)?,
            updated_at: Timestamp::from_micros(r.updated_at),
            updated_by: uuid_column(&r.updated_by)?,
        })
    }
}

/// Inserts a template.
pub async fn insert(conn: &mut Conn, t: &Template) -> StoreResult<()> {
    let q = sql(
        conn,
        "INSERT INTO templates (id, name, version, target_provider_type, tosca_definition_version, \
         content, checksum, created_at, created_by, updated_at, updated_by) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    sqlx::query(&q)
        .bind(t.id.to_string())
        .bind(&t.name)
        .bind(t.version.as_deref())
        .bind(t.target_provider_type.as_deref())
        .bind(&t.tosca_definition_version)
        .bind(&t.content)
        .bind(&t.checksum)
        .bind(t.created_at.as_micros())
        .bind(t.created_by.to_string())
        .bind(t.updated_at.as_micros())
        .bind(t.updated_by.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The template with this id.
pub async fn get(conn: &mut Conn, id: Uuid) -> StoreResult<Option<Template>> {
    let q = sql(
        conn,
        &format!("SELECT {COLUMNS} FROM templates WHERE id = ?"),
    );
    let row: Option<Row> = sqlx::query_as(&q)
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Template::try_from).transpose()
}

/// The template with this checksum (duplicates are refused on it).
pub async fn find_by_checksum(conn: &mut Conn, checksum: &str) -> StoreResult<Option<Template>> {
    let q = sql(
        conn,
        &format!("SELECT {COLUMNS} FROM templates WHERE checksum = ?"),
    );
    let row: Option<Row> = sqlx::query_as(&q)
        .bind(checksum)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Template::try_from).transpose()
}

/// Writes the metadata fields (the content never changes).
pub async fn update_metadata(conn: &mut Conn, t: &Template) -> StoreResult<()> {
    let q = sql(
        conn,
        "UPDATE templates SET name = ?, version = ?, target_provider_type = ?, \
         tosca_definition_version = ?, updated_at = ?, updated_by = ? WHERE id = ?",
    );
    sqlx::query(&q)
        .bind(&t.name)
        .bind(t.version.as_deref())
        .bind(t.target_provider_type.as_deref())
        .bind(&t.tosca_definition_version)
        .bind(t.updated_at.as_micros())
        .bind(t.updated_by.to_string())
        .bind(t.id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// One page of templates and the total matching.
pub async fn list(conn: &mut Conn, query: &ListQuery) -> StoreResult<(Vec<Template>, u64)> {
    let f = filter(query);
    let count_sql = sql(
        conn,
        &format!("SELECT COUNT(*) FROM templates WHERE 1 = 1{}", f.sql),
    );
    let total: i64 = bind_scalar(sqlx::query_scalar(&count_sql), &f.binds)
        .fetch_one(&mut *conn)
        .await?;
    let rows_sql = sql(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM templates WHERE 1 = 1{}{}",
            f.sql,
            order_and_page(query, &LIST)
        ),
    );
    let rows: Vec<Row> = bind_rows(sqlx::query_as(&rows_sql), &f.binds)
        .fetch_all(&mut *conn)
        .await?;
    let templates = rows
        .into_iter()
        .map(Template::try_from)
        .collect::<StoreResult<_>>()?;
    Ok((templates, u64::try_from(total).unwrap_or(0)))
}

/// Whether a deployment uses the template.
pub async fn is_in_use(conn: &mut Conn, id: Uuid) -> StoreResult<bool> {
    let q = sql(
        conn,
        "SELECT COUNT(*) FROM deployments WHERE template_id = ?",
    );
    let n: i64 = sqlx::query_scalar(&q)
        .bind(id.to_string())
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

/// Deletes a template; `false` when there was none.
pub async fn delete(conn: &mut Conn, id: Uuid) -> StoreResult<bool> {
    let q = sql(conn, "DELETE FROM templates WHERE id = ?");
    let done = sqlx::query(&q)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
