//! SQL for `legacy_callbacks`: which final state of a legacy deployment has been (or
//! is being) announced to its `callback` URL (docs/legacy.md).

use uuid::Uuid;

use super::{sql, uuid_column, Conn, StoreResult};
use crate::domain::Timestamp;

/// An announcement to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The deployment.
    pub deployment_id: Uuid,
    /// Its version when it reached the final status.
    pub version: i64,
    /// Failed attempts so far.
    pub attempts: i64,
    /// When it became due (also the claim token).
    pub next_at: i64,
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Deployments with a callback, in one of `statuses`, whose current version has not
/// been scheduled yet: `(id, version, status)`.
pub async fn unannounced(
    conn: &mut Conn,
    statuses: &[i64],
    limit: i64,
) -> StoreResult<Vec<(Uuid, i64, i64)>> {
    let q = sql(
        conn,
        &format!(
            "SELECT d.id, d.version, d.status FROM deployments d \
             LEFT JOIN legacy_callbacks c ON c.deployment_id = d.id \
             WHERE d.callback IS NOT NULL AND d.status IN ({}) \
             AND (c.deployment_id IS NULL OR c.version < d.version) \
             ORDER BY d.updated_at LIMIT ?",
            placeholders(statuses.len())
        ),
    );
    let mut query = sqlx::query_as::<_, (String, i64, i64)>(&q);
    for s in statuses {
        query = query.bind(*s);
    }
    let rows = query.bind(limit).fetch_all(&mut *conn).await?;
    rows.into_iter()
        .map(|(id, version, status)| Ok((uuid_column(&id)?, version, status)))
        .collect()
}

/// Schedules the announcement of a deployment's version (replacing an older one).
pub async fn schedule(
    conn: &mut Conn,
    deployment: Uuid,
    version: i64,
    status: i64,
    at: Timestamp,
) -> StoreResult<()> {
    let q = sql(conn, "DELETE FROM legacy_callbacks WHERE deployment_id = ?");
    sqlx::query(&q)
        .bind(deployment.to_string())
        .execute(&mut *conn)
        .await?;
    let q = sql(
        conn,
        "INSERT INTO legacy_callbacks (deployment_id, version, status, attempts, next_at) VALUES (?, ?, ?, 0, ?)",
    );
    sqlx::query(&q)
        .bind(deployment.to_string())
        .bind(version)
        .bind(status)
        .bind(at.as_micros())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Announcements due at `now`, oldest first.
pub async fn due(conn: &mut Conn, now: Timestamp, limit: i64) -> StoreResult<Vec<Due>> {
    let q = sql(
        conn,
        "SELECT deployment_id, version, attempts, next_at FROM legacy_callbacks \
         WHERE finished_at IS NULL AND next_at <= ? ORDER BY next_at LIMIT ?",
    );
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(&q)
        .bind(now.as_micros())
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter()
        .map(|(id, version, attempts, next_at)| {
            Ok(Due {
                deployment_id: uuid_column(&id)?,
                version,
                attempts,
                next_at,
            })
        })
        .collect()
}

/// Claims a due announcement by moving its `next_at` to `until` (a lease): false
/// when another notifier took it first.
pub async fn claim(conn: &mut Conn, due: &Due, until: Timestamp) -> StoreResult<bool> {
    let q = sql(
        conn,
        "UPDATE legacy_callbacks SET next_at = ? \
         WHERE deployment_id = ? AND version = ? AND next_at = ? AND finished_at IS NULL",
    );
    let done = sqlx::query(&q)
        .bind(until.as_micros())
        .bind(due.deployment_id.to_string())
        .bind(due.version)
        .bind(due.next_at)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the outcome of an attempt: `finished` on delivery or when retries are
/// used up, otherwise the next attempt at `next_at`.
pub async fn record(
    conn: &mut Conn,
    due: &Due,
    error: Option<&str>,
    finished: bool,
    next_at: Timestamp,
) -> StoreResult<()> {
    let q = sql(
        conn,
        "UPDATE legacy_callbacks SET attempts = ?, next_at = ?, finished_at = ?, last_error = ? \
         WHERE deployment_id = ? AND version = ?",
    );
    let attempts = due.attempts + i64::from(error.is_some());
    sqlx::query(&q)
        .bind(attempts)
        .bind(next_at.as_micros())
        .bind(finished.then(|| Timestamp::now().as_micros()))
        .bind(error)
        .bind(due.deployment_id.to_string())
        .bind(due.version)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The announcement row of a deployment: `(version, attempts, finished, last_error)`.
pub async fn state_of(
    conn: &mut Conn,
    deployment: Uuid,
) -> StoreResult<Option<(i64, i64, bool, Option<String>)>> {
    let q = sql(
        conn,
        "SELECT version, attempts, finished_at, last_error FROM legacy_callbacks WHERE deployment_id = ?",
    );
    let row: Option<(i64, i64, Option<i64>, Option<super::Text>)> = sqlx::query_as(&q)
        .bind(deployment.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|(v, a, f, e)| (v, a, f.is_some(), e.map(String::from))))
}
