//! SQL for `resources` and `resource_requirements`.

use std::collections::HashMap;

use uuid::Uuid;

use super::list::{bind_rows, bind_scalar, filter, order_and_page};
use super::{json_column, sql, uuid_column, Conn, StoreError, StoreResult, Text};
use crate::domain::list::{Field, FieldKind, ListQuery, ListSpec};
use crate::domain::{Resource, ResourceStatus, Timestamp};

fn status_code(text: &str) -> Option<i64> {
    ResourceStatus::parse(text).map(ResourceStatus::code)
}

/// Filterable and sortable resource attributes (the handler adds `type`, which
/// matches derived types too).
pub static LIST: ListSpec = ListSpec {
    fields: &[
        Field {
            name: "created_at",
            sql: "r.created_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        Field {
            name: "updated_at",
            sql: "r.updated_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        Field {
            name: "id",
            sql: "r.id",
            kind: FieldKind::Id,
            sortable: true,
        },
        Field {
            name: "created_by",
            sql: "r.created_by",
            kind: FieldKind::User,
            sortable: true,
        },
        Field {
            name: "updated_by",
            sql: "r.updated_by",
            kind: FieldKind::User,
            sortable: true,
        },
        Field {
            name: "tosca_node_name",
            sql: "r.tosca_node_name",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "tosca_node_type",
            sql: "r.tosca_node_type",
            kind: FieldKind::Exact,
            sortable: true,
        },
        Field {
            name: "im_vm_idx",
            sql: "r.im_vm_idx",
            kind: FieldKind::Exact,
            sortable: true,
        },
        Field {
            name: "status",
            sql: "r.status",
            kind: FieldKind::Enum(status_code),
            sortable: true,
        },
        Field {
            name: "status_reason",
            sql: "r.status_reason",
            kind: FieldKind::Text,
            sortable: false,
        },
    ],
    default_sort: "created_at",
    tie_breaker: "r.id",
    extra_params: &["type"],
};

const COLUMNS: &str = "r.id, r.deployment_id, r.tosca_node_name, r.tosca_node_type, r.instance_index, \
    r.im_vm_idx, r.status, r.status_reason, r.metadata, r.created_at, r.created_by, r.updated_at, r.updated_by";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    deployment_id: String,
    tosca_node_name: String,
    tosca_node_type: String,
    instance_index: i64,
    im_vm_idx: Option<String>,
    status: i64,
    status_reason: Option<Text>,
    metadata: Option<Text>,
    created_at: i64,
    created_by: String,
    updated_at: i64,
    updated_by: String,
}

impl Row {
    fn into_resource(self, required_by: Vec<String>) -> StoreResult<Resource> {
        Ok(Resource {
            id: uuid_column(&self.id)?,
            deployment_id: uuid_column(&self.deployment_id)?,
            tosca_node_name: self.tosca_node_name,
            tosca_node_type: self.tosca_node_type,
            instance_index: self.instance_index,
            im_vm_idx: self.im_vm_idx,
            status: ResourceStatus::from_code(self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("resource status {}", self.status)))?,
            status_reason: self.status_reason.map(String::from),
            metadata: self
                .metadata
                .map(|m| json_column(&m.0, "metadata"))
                .transpose()?,
            required_by,
            created_at: Timestamp::from_micros(self.created_at),
            created_by: uuid_column(&self.created_by)?,
            updated_at: Timestamp::from_micros(self.updated_at),
            updated_by: uuid_column(&self.updated_by)?,
        })
    }
}

/// Inserts a resource and its `required_by` list.
pub async fn insert(conn: &mut Conn, r: &Resource) -> StoreResult<()> {
    let q = sql(
        conn,
        "INSERT INTO resources (id, deployment_id, tosca_node_name, tosca_node_type, instance_index, im_vm_idx, \
         status, status_reason, metadata, created_at, created_by, updated_at, updated_by) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    sqlx::query(&q)
        .bind(r.id.to_string())
        .bind(r.deployment_id.to_string())
        .bind(&r.tosca_node_name)
        .bind(&r.tosca_node_type)
        .bind(r.instance_index)
        .bind(r.im_vm_idx.as_deref())
        .bind(r.status.code())
        .bind(r.status_reason.as_deref())
        .bind(r.metadata.as_ref().map(|m| m.to_string()))
        .bind(r.created_at.as_micros())
        .bind(r.created_by.to_string())
        .bind(r.updated_at.as_micros())
        .bind(r.updated_by.to_string())
        .execute(&mut *conn)
        .await?;
    let q = sql(
        conn,
        "INSERT INTO resource_requirements (resource_id, required_by) VALUES (?, ?)",
    );
    for name in &r.required_by {
        sqlx::query(&q)
            .bind(r.id.to_string())
            .bind(name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn required_by(conn: &mut Conn, ids: &[String]) -> StoreResult<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let q = sql(
        conn,
        &format!(
            "SELECT resource_id, required_by FROM resource_requirements WHERE resource_id IN ({}) ORDER BY required_by",
            vec!["?"; ids.len()].join(", ")
        ),
    );
    let mut query = sqlx::query_as::<_, (String, String)>(&q);
    for id in ids {
        query = query.bind(id.as_str());
    }
    for (id, name) in query.fetch_all(&mut *conn).await? {
        out.entry(id).or_default().push(name);
    }
    Ok(out)
}

async fn finish(conn: &mut Conn, rows: Vec<Row>) -> StoreResult<Vec<Resource>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut requirements = required_by(conn, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let req = requirements.remove(&row.id).unwrap_or_default();
            row.into_resource(req)
        })
        .collect()
}

/// A resource of a deployment.
pub async fn get(conn: &mut Conn, deployment: Uuid, id: Uuid) -> StoreResult<Option<Resource>> {
    let q = sql(
        conn,
        &format!("SELECT {COLUMNS} FROM resources r WHERE r.deployment_id = ? AND r.id = ?"),
    );
    let rows: Vec<Row> = sqlx::query_as(&q)
        .bind(deployment.to_string())
        .bind(id.to_string())
        .fetch_all(&mut *conn)
        .await?;
    Ok(finish(conn, rows).await?.pop())
}

/// Every resource of a deployment, in creation order.
pub async fn all_of(conn: &mut Conn, deployment: Uuid) -> StoreResult<Vec<Resource>> {
    let q = sql(
        conn,
        &format!("SELECT {COLUMNS} FROM resources r WHERE r.deployment_id = ? ORDER BY r.created_at, r.tosca_node_name, r.instance_index"),
    );
    let rows: Vec<Row> = sqlx::query_as(&q)
        .bind(deployment.to_string())
        .fetch_all(&mut *conn)
        .await?;
    finish(conn, rows).await
}

/// One page of a deployment's resources and the total matching.
pub async fn list(
    conn: &mut Conn,
    deployment: Uuid,
    query: &ListQuery,
) -> StoreResult<(Vec<Resource>, u64)> {
    let f = filter(query);
    let mut binds = vec![crate::domain::list::Value::Text(deployment.to_string())];
    binds.extend(f.binds);
    let count_sql = sql(
        conn,
        &format!(
            "SELECT COUNT(*) FROM resources r WHERE r.deployment_id = ?{}",
            f.sql
        ),
    );
    let total: i64 = bind_scalar(sqlx::query_scalar(&count_sql), &binds)
        .fetch_one(&mut *conn)
        .await?;
    let rows_sql = sql(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM resources r WHERE r.deployment_id = ?{}{}",
            f.sql,
            order_and_page(query, &LIST)
        ),
    );
    let rows: Vec<Row> = bind_rows(sqlx::query_as(&rows_sql), &binds)
        .fetch_all(&mut *conn)
        .await?;
    Ok((finish(conn, rows).await?, u64::try_from(total).unwrap_or(0)))
}

/// Writes the mutable fields of a resource.
pub async fn update(conn: &mut Conn, r: &Resource) -> StoreResult<()> {
    let q = sql(
        conn,
        "UPDATE resources SET im_vm_idx = ?, status = ?, status_reason = ?, metadata = ?, updated_at = ?, \
         updated_by = ? WHERE id = ?",
    );
    sqlx::query(&q)
        .bind(r.im_vm_idx.as_deref())
        .bind(r.status.code())
        .bind(r.status_reason.as_deref())
        .bind(r.metadata.as_ref().map(|m| m.to_string()))
        .bind(r.updated_at.as_micros())
        .bind(r.updated_by.to_string())
        .bind(r.id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets the status of every resource of a deployment (e.g. DELETED after a delete).
pub async fn set_status_of_all(
    conn: &mut Conn,
    deployment: Uuid,
    status: ResourceStatus,
    by: Uuid,
) -> StoreResult<()> {
    let q = sql(
        conn,
        "UPDATE resources SET status = ?, updated_at = ?, updated_by = ? WHERE deployment_id = ?",
    );
    sqlx::query(&q)
        .bind(status.code())
        .bind(Timestamp::now().as_micros())
        .bind(by.to_string())
        .bind(deployment.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
