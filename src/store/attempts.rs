//! SQL for `deployment_attempts`: the placement ledger (every try on every provider).

use uuid::Uuid;

use super::{sql, uuid_column, Conn, StoreResult, Text};
use crate::domain::{Attempt, Timestamp};

const COLUMNS: &str =
    "id, deployment_id, number, provider, region, iaas_project, started_at, deadline_at, \
    ended_at, outcome, im_infra_id, error, destroyed";

type Row = (
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    String,
    Option<String>,
    Option<Text>,
    i64,
);

fn from_row(r: Row) -> StoreResult<Attempt> {
    Ok(Attempt {
        id: uuid_column(&r.0)?,
        deployment_id: uuid_column(&r.1)?,
        number: r.2,
        provider: r.3,
        region: r.4,
        iaas_project: r.5,
        started_at: Timestamp::from_micros(r.6),
        deadline_at: Timestamp::from_micros(r.7),
        ended_at: r.8.map(Timestamp::from_micros),
        outcome: r.9,
        im_infra_id: r.10,
        error: r.11.map(String::from),
        destroyed: r.12 != 0,
    })
}

/// Records a new attempt.
pub async fn insert(conn: &mut Conn, a: &Attempt) -> StoreResult<()> {
    let q = sql(
        conn,
        &format!("INSERT INTO deployment_attempts ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
    );
    sqlx::query(&q)
        .bind(a.id.to_string())
        .bind(a.deployment_id.to_string())
        .bind(a.number)
        .bind(&a.provider)
        .bind(a.region.as_deref())
        .bind(a.iaas_project.as_deref())
        .bind(a.started_at.as_micros())
        .bind(a.deadline_at.as_micros())
        .bind(a.ended_at.map(Timestamp::as_micros))
        .bind(&a.outcome)
        .bind(a.im_infra_id.as_deref())
        .bind(a.error.as_deref())
        .bind(i64::from(a.destroyed))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Writes an attempt's mutable fields.
pub async fn update(conn: &mut Conn, a: &Attempt) -> StoreResult<()> {
    let q = sql(
        conn,
        "UPDATE deployment_attempts SET ended_at = ?, outcome = ?, im_infra_id = ?, error = ?, destroyed = ? WHERE id = ?",
    );
    sqlx::query(&q)
        .bind(a.ended_at.map(Timestamp::as_micros))
        .bind(&a.outcome)
        .bind(a.im_infra_id.as_deref())
        .bind(a.error.as_deref())
        .bind(i64::from(a.destroyed))
        .bind(a.id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Every attempt of a deployment, in order.
pub async fn of_deployment(conn: &mut Conn, deployment: Uuid) -> StoreResult<Vec<Attempt>> {
    let q = sql(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM deployment_attempts WHERE deployment_id = ? ORDER BY number"
        ),
    );
    let rows: Vec<Row> = sqlx::query_as(&q)
        .bind(deployment.to_string())
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(from_row).collect()
}
