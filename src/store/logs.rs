//! SQL for `deployment_logs`: the orchestrator's own log of each deployment (who did
//! what, when), kept after the deployment is deleted.

use uuid::Uuid;

use super::{sql, Conn, StoreResult, Text};
use crate::domain::{LogLine, Timestamp};

/// Appends a line.
pub async fn append(
    conn: &mut Conn,
    deployment: Uuid,
    source: &str,
    message: &str,
) -> StoreResult<()> {
    let q = sql(
        conn,
        "INSERT INTO deployment_logs (id, deployment_id, created_at, source, message) VALUES (?, ?, ?, ?, ?)",
    );
    sqlx::query(&q)
        .bind(Uuid::new_v4().to_string())
        .bind(deployment.to_string())
        .bind(Timestamp::now().as_micros())
        .bind(source)
        .bind(message)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Every line of a deployment, oldest first.
pub async fn lines(conn: &mut Conn, deployment: Uuid) -> StoreResult<Vec<LogLine>> {
    let q = sql(
        conn,
        "SELECT created_at, source, message FROM deployment_logs WHERE deployment_id = ? ORDER BY created_at, id",
    );
    let rows: Vec<(i64, String, Text)> = sqlx::query_as(&q)
        .bind(deployment.to_string())
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(at, source, message)| LogLine {
            created_at: Timestamp::from_micros(at),
            source,
            message: message.0,
        })
        .collect())
}

/// Deletes every line of a deployment.
pub async fn clear(conn: &mut Conn, deployment: Uuid) -> StoreResult<()> {
    let q = sql(conn, "DELETE FROM deployment_logs WHERE deployment_id = ?");
    sqlx::query(&q)
        .bind(deployment.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
