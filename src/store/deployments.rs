//! SQL for `deployments` and `deployment_owners`.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::list::{bind_rows, bind_scalar, filter, order_and_page};
use super::{json_column, sql, uuid_column, Conn, StoreError, StoreResult, Text};
use crate::domain::list::{Condition, Field, FieldKind, ListQuery, ListSpec};
use crate::domain::{Deployment, DeploymentStatus, Task, Timestamp};

fn status_code(text: &str) -> Option<i64> {
    DeploymentStatus::parse(text).map(DeploymentStatus::code)
}

fn task_code(text: &str) -> Option<i64> {
    Task::parse(text).map(Task::code)
}

/// Filterable and sortable deployment attributes.
pub static LIST: ListSpec = ListSpec {
    fields: &[
        Field { name: "created_at", sql: "d.created_at", kind: FieldKind::Timestamp, sortable: true },
        Field { name: "updated_at", sql: "d.updated_at", kind: FieldKind::Timestamp, sortable: true },
        Field { name: "id", sql: "d.id", kind: FieldKind::Id, sortable: true },
        Field { name: "created_by", sql: "d.created_by", kind: FieldKind::User, sortable: true },
        Field { name: "updated_by", sql: "d.updated_by", kind: FieldKind::User, sortable: true },
        Field {
            name: "owned_by",
            sql: "EXISTS (SELECT 1 FROM deployment_owners o WHERE o.deployment_id = d.id AND o.user_id IN {})",
            kind: FieldKind::User,
            sortable: false,
        },
        Field { name: "template_id", sql: "d.template_id", kind: FieldKind::Id, sortable: true },
        Field { name: "user_group", sql: "d.user_group", kind: FieldKind::Text, sortable: true },
        Field { name: "status", sql: "d.status", kind: FieldKind::Enum(status_code), sortable: true },
        Field { name: "status_reason", sql: "d.status_reason", kind: FieldKind::Text, sortable: false },
        Field { name: "task", sql: "d.task", kind: FieldKind::Enum(task_code), sortable: true },
        Field { name: "target_provider", sql: "d.target_provider", kind: FieldKind::Text, sortable: true },
        Field { name: "target_region", sql: "d.target_region", kind: FieldKind::Text, sortable: true },
        Field { name: "target_iaas_project", sql: "d.target_iaas_project", kind: FieldKind::Text, sortable: true },
        Field { name: "im_infra_id", sql: "d.im_infra_id", kind: FieldKind::Exact, sortable: true },
        Field { name: "per_provider_max_retries", sql: "d.per_provider_max_retries", kind: FieldKind::Int, sortable: true },
        Field { name: "max_providers", sql: "d.max_providers", kind: FieldKind::Int, sortable: true },
        Field { name: "tot_timeout_mins", sql: "d.tot_timeout_mins", kind: FieldKind::Int, sortable: true },
        Field { name: "per_provider_timeout_mins", sql: "d.per_provider_timeout_mins", kind: FieldKind::Int, sortable: true },
        Field { name: "keep_last_attempt", sql: "d.keep_last_attempt", kind: FieldKind::Bool, sortable: true },
    ],
    default_sort: "-created_at",
    tie_breaker: "d.id",
    extra_params: &[],
};

const COLUMNS: &str = "d.id, d.template_id, d.template_inputs, d.template_outputs, d.user_group, \
    d.per_provider_max_retries, d.max_providers, d.tot_timeout_mins, d.per_provider_timeout_mins, \
    d.keep_last_attempt, d.target_provider, d.target_region, d.target_iaas_project, d.im_infra_id, \
    d.status, d.status_reason, d.task, d.callback, d.version, d.created_at, d.created_by, \
    d.updated_at, d.updated_by, d.owner_ids";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    template_id: String,
    template_inputs: Text,
    template_outputs: Text,
    user_group: String,
    per_provider_max_retries: i64,
    max_providers: Option<i64>,
    tot_timeout_mins: i64,
    per_provider_timeout_mins: i64,
    keep_last_attempt: i64,
    target_provider: Option<String>,
    target_region: Option<String>,
    target_iaas_project: Option<String>,
    im_infra_id: Option<String>,
    status: i64,
    status_reason: Option<Text>,
    task: i64,
    callback: Option<Text>,
    version: i64,
    created_at: i64,
    created_by: String,
    updated_at: i64,
    updated_by: String,
    owner_ids: Text,
}

impl Row {
    fn into_deployment(self) -> StoreResult<Deployment> {
        let owned_by = json_column::<Vec<String>>(&self.owner_ids.0, "owner_ids")?
            .iter()
            .map(|id| uuid_column(id))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Deployment {
            id: uuid_column(&self.id)?,
            template_id: uuid_column(&self.template_id)?,
            template_inputs: json_column::<Map<String, Value>>(
                &self.template_inputs.0,
                "template_inputs",
            )?,
            template_outputs: json_column::<Map<String, Value>>(
                &self.template_outputs.0,
                "template_outputs",
            )?,
            user_group: self.user_group,
            per_provider_max_retries: self.per_provider_max_retries,
            max_providers: self.max_providers,
            tot_timeout_mins: self.tot_timeout_mins,
            per_provider_timeout_mins: self.per_provider_timeout_mins,
            keep_last_attempt: self.keep_last_attempt != 0,
            target_provider: self.target_provider,
            target_region: self.target_region,
            target_iaas_project: self.target_iaas_project,
            im_infra_id: self.im_infra_id,
            status: DeploymentStatus::from_code(self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("deployment status {}", self.status)))?,
            status_reason: self.status_reason.map(String::from),
            task: Task::from_code(self.task)
                .ok_or_else(|| StoreError::Corrupt(format!("task {}", self.task)))?,
            callback: self.callback.map(String::from),
            version: self.version,
            created_at: Timestamp::from_micros(self.created_at),
            created_by: uuid_column(&self.created_by)?,
            updated_at: Timestamp::from_micros(self.updated_at),
            updated_by: uuid_column(&self.updated_by)?,
            owned_by,
        })
    }
}

fn json_text(map: &Map<String, Value>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}

/// Inserts a deployment and its owners.
pub async fn insert(conn: &mut Conn, d: &Deployment) -> StoreResult<()> {
    let q = sql(
        conn,
        "INSERT INTO deployments (id, template_id, template_inputs, template_outputs, user_group, \
         per_provider_max_retries, max_providers, tot_timeout_mins, per_provider_timeout_mins, \
         keep_last_attempt, target_provider, target_region, target_iaas_project, im_infra_id, status, \
         status_reason, task, im_logs, callback, version, created_at, created_by, updated_at, updated_by, owner_ids) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, '[]')",
    );
    sqlx::query(&q)
        .bind(d.id.to_string())
        .bind(d.template_id.to_string())
        .bind(json_text(&d.template_inputs))
        .bind(json_text(&d.template_outputs))
        .bind(&d.user_group)
        .bind(d.per_provider_max_retries)
        .bind(d.max_providers)
        .bind(d.tot_timeout_mins)
        .bind(d.per_provider_timeout_mins)
        .bind(i64::from(d.keep_last_attempt))
        .bind(d.target_provider.as_deref())
        .bind(d.target_region.as_deref())
        .bind(d.target_iaas_project.as_deref())
        .bind(d.im_infra_id.as_deref())
        .bind(d.status.code())
        .bind(d.status_reason.as_deref())
        .bind(d.task.code())
        .bind(d.callback.as_deref())
        .bind(d.version)
        .bind(d.created_at.as_micros())
        .bind(d.created_by.to_string())
        .bind(d.updated_at.as_micros())
        .bind(d.updated_by.to_string())
        .execute(&mut *conn)
        .await?;
    for owner in &d.owned_by {
        add_owner(conn, d.id, *owner).await?;
    }
    Ok(())
}

/// The deployment with this id, with its owners.
pub async fn get(conn: &mut Conn, id: Uuid) -> StoreResult<Option<Deployment>> {
    let q = sql(
        conn,
        &format!("SELECT {COLUMNS} FROM deployments d WHERE d.id = ?"),
    );
    let row: Option<Row> = sqlx::query_as(&q)
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Row::into_deployment).transpose()
}

/// Locks the row for the rest of the transaction where the database can (`FOR
/// UPDATE`); on SQLite the store's write lock already serialises writers.
pub async fn get_for_update(conn: &mut Conn, id: Uuid) -> StoreResult<Option<Deployment>> {
    let lock = match super::Backend::of(conn) {
        super::Backend::Sqlite => "",
        _ => " FOR UPDATE",
    };
    let q = sql(
        conn,
        &format!("SELECT {COLUMNS} FROM deployments d WHERE d.id = ?{lock}"),
    );
    let row: Option<Row> = sqlx::query_as(&q)
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Row::into_deployment).transpose()
}

/// The owner-scoped attributes, read from the owner rows (their copies of the
/// deployment's status and creation time, migration 0005).
static OWNER_USER: Field = Field {
    name: "owned_by",
    sql: "o.user_id",
    kind: FieldKind::User,
    sortable: false,
};
static OWNER_STATUS: Field = Field {
    name: "status",
    sql: "o.deployment_status",
    kind: FieldKind::Enum(status_code),
    sortable: true,
};
static OWNER_CREATED_AT: Field = Field {
    name: "created_at",
    sql: "o.deployment_created_at",
    kind: FieldKind::Timestamp,
    sortable: true,
};
static OWNER_LIST: ListSpec = ListSpec {
    fields: &[],
    default_sort: "-created_at",
    tie_breaker: "o.deployment_id",
    extra_params: &[],
};

fn owner_field(field: &'static Field) -> Option<&'static Field> {
    match field.name {
        "owned_by" => Some(&OWNER_USER),
        "status" => Some(&OWNER_STATUS),
        "created_at" => Some(&OWNER_CREATED_AT),
        _ => None,
    }
}

/// The query rewritten to start from the owner rows of one user, and whether some
/// condition still needs the deployment rows; `None` unless `owned_by` is exactly
/// one user (several would repeat a deployment owned by more than one of them).
fn owner_scoped(query: &ListQuery) -> Option<(ListQuery, bool)> {
    let owners = query.values_of("owned_by");
    if owners.len() != 1 {
        return None;
    }
    let mut scoped = query.clone();
    let mut needs_deployments = false;
    for condition in &mut scoped.conditions {
        let field = match condition {
            Condition::AnyOf { field, .. }
            | Condition::AtLeast { field, .. }
            | Condition::AtMost { field, .. } => field,
            Condition::In { .. } => {
                needs_deployments = true;
                continue;
            }
        };
        match owner_field(field) {
            Some(owner) => *field = owner,
            None => needs_deployments = true,
        }
    }
    if let Some(sort) = owner_field(scoped.sort) {
        scoped.sort = sort;
    }
    Some((scoped, needs_deployments))
}

/// One page of deployments and the total matching.
pub async fn list(conn: &mut Conn, query: &ListQuery) -> StoreResult<(Vec<Deployment>, u64)> {
    let (count_from, rows_from, spec, query) = match owner_scoped(query) {
        // Non-admin lists are always scoped to their owner: count and page from the
        // owner rows' index, joining only the page's deployments when possible.
        Some((scoped, needs_deployments)) => (
            if needs_deployments {
                "deployment_owners o JOIN deployments d ON d.id = o.deployment_id"
            } else {
                "deployment_owners o"
            },
            "deployment_owners o JOIN deployments d ON d.id = o.deployment_id",
            &OWNER_LIST,
            std::borrow::Cow::Owned(scoped),
        ),
        None => (
            "deployments d",
            "deployments d",
            &LIST,
            std::borrow::Cow::Borrowed(query),
        ),
    };
    let f = filter(&query);
    let count_sql = sql(
        conn,
        &format!("SELECT COUNT(*) FROM {count_from} WHERE 1 = 1{}", f.sql),
    );
    let total: i64 = bind_scalar(sqlx::query_scalar(&count_sql), &f.binds)
        .fetch_one(&mut *conn)
        .await?;
    let rows_sql = sql(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM {rows_from} WHERE 1 = 1{}{}",
            f.sql,
            order_and_page(&query, spec)
        ),
    );
    let rows: Vec<Row> = bind_rows(sqlx::query_as(&rows_sql), &f.binds)
        .fetch_all(&mut *conn)
        .await?;
    let items = rows
        .into_iter()
        .map(Row::into_deployment)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok((items, u64::try_from(total).unwrap_or(0)))
}

/// Writes every mutable field if the stored version is still `d.version`, and bumps
/// the version. `false` means someone changed the deployment in between.
pub async fn update(conn: &mut Conn, d: &Deployment) -> StoreResult<bool> {
    let q = sql(
        conn,
        "UPDATE deployments SET template_id = ?, template_inputs = ?, template_outputs = ?, user_group = ?, \
         target_provider = ?, target_region = ?, target_iaas_project = ?, im_infra_id = ?, status = ?, \
         status_reason = ?, task = ?, callback = ?, version = version + 1, updated_at = ?, updated_by = ? \
         WHERE id = ? AND version = ?",
    );
    let done = sqlx::query(&q)
        .bind(d.template_id.to_string())
        .bind(json_text(&d.template_inputs))
        .bind(json_text(&d.template_outputs))
        .bind(&d.user_group)
        .bind(d.target_provider.as_deref())
        .bind(d.target_region.as_deref())
        .bind(d.target_iaas_project.as_deref())
        .bind(d.im_infra_id.as_deref())
        .bind(d.status.code())
        .bind(d.status_reason.as_deref())
        .bind(d.task.code())
        .bind(d.callback.as_deref())
        .bind(d.updated_at.as_micros())
        .bind(d.updated_by.to_string())
        .bind(d.id.to_string())
        .bind(d.version)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    // The owner rows' copy of the status (migration 0005), in the same transaction.
    let q = sql(
        conn,
        "UPDATE deployment_owners SET deployment_status = ? WHERE deployment_id = ? AND deployment_status <> ?",
    );
    sqlx::query(&q)
        .bind(d.status.code())
        .bind(d.id.to_string())
        .bind(d.status.code())
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Adds an owner; `false` when already one.
pub async fn add_owner(conn: &mut Conn, deployment: Uuid, user: Uuid) -> StoreResult<bool> {
    let q = sql(
        conn,
        "SELECT COUNT(*) FROM deployment_owners WHERE deployment_id = ? AND user_id = ?",
    );
    let n: i64 = sqlx::query_scalar(&q)
        .bind(deployment.to_string())
        .bind(user.to_string())
        .fetch_one(&mut *conn)
        .await?;
    if n > 0 {
        return Ok(false);
    }
    // The owner row carries copies of the deployment's status and creation time
    // (migration 0005), taken from the deployment row itself.
    let q = sql(
        conn,
        "INSERT INTO deployment_owners (deployment_id, user_id, created_at, deployment_status, deployment_created_at) \
         SELECT id, ?, ?, status, created_at FROM deployments WHERE id = ?",
    );
    let done = sqlx::query(&q)
        .bind(user.to_string())
        .bind(Timestamp::now().as_micros())
        .bind(deployment.to_string())
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    write_owner_ids(conn, deployment).await?;
    Ok(true)
}

/// Removes an owner; `false` when not one.
pub async fn remove_owner(conn: &mut Conn, deployment: Uuid, user: Uuid) -> StoreResult<bool> {
    let q = sql(
        conn,
        "DELETE FROM deployment_owners WHERE deployment_id = ? AND user_id = ?",
    );
    let done = sqlx::query(&q)
        .bind(deployment.to_string())
        .bind(user.to_string())
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    write_owner_ids(conn, deployment).await?;
    Ok(true)
}

/// Rewrites the deployment's copy of its owner list (`owner_ids`, a JSON array in
/// the order owners were added, migration 0005) from the owner rows: reading a
/// deployment, alone or in a page, then needs no other query.
async fn write_owner_ids(conn: &mut Conn, deployment: Uuid) -> StoreResult<()> {
    let q = sql(
        conn,
        "SELECT user_id FROM deployment_owners WHERE deployment_id = ? ORDER BY created_at, user_id",
    );
    let owners: Vec<String> = sqlx::query_scalar(&q)
        .bind(deployment.to_string())
        .fetch_all(&mut *conn)
        .await?;
    let q = sql(conn, "UPDATE deployments SET owner_ids = ? WHERE id = ?");
    sqlx::query(&q)
        .bind(serde_json::to_string(&owners).unwrap_or_else(|_| "[]".into()))
        .bind(deployment.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Removes the row and its children (admin `force`). Log lines stay.
pub async fn delete(conn: &mut Conn, id: Uuid) -> StoreResult<bool> {
    let q = sql(conn, "DELETE FROM deployments WHERE id = ?");
    let done = sqlx::query(&q)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// IM's contextualisation log kept for the deployment.
pub async fn im_logs(conn: &mut Conn, id: Uuid) -> StoreResult<Option<String>> {
    let q = sql(conn, "SELECT im_logs FROM deployments WHERE id = ?");
    let row: Option<(Option<Text>,)> = sqlx::query_as(&q)
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.and_then(|(text,)| text.map(String::from)))
}

/// Replaces IM's log (`None` clears it).
pub async fn set_im_logs(conn: &mut Conn, id: Uuid, logs: Option<&str>) -> StoreResult<()> {
    let q = sql(conn, "UPDATE deployments SET im_logs = ? WHERE id = ?");
    sqlx::query(&q)
        .bind(logs)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
