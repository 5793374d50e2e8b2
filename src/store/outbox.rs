//! SQL for `outbox`: messages written in the same transaction as the change they
//! describe, published afterwards (to Kafka, or consumed in-process).

use serde_json::Value;
use uuid::Uuid;

use super::{json_column, sql, uuid_column, Conn, StoreResult, Text};
use crate::domain::Timestamp;

/// A message waiting in (or published from) the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    /// Insertion order.
    pub seq: i64,
    /// Unique message id (consumers deduplicate on it).
    pub id: Uuid,
    /// Logical topic (`create-deployment`...).
    pub topic: String,
    /// Partitioning key (the deployment id).
    pub key: String,
    /// The message.
    pub payload: Value,
    /// When written.
    pub created_at: Timestamp,
    /// Publication attempts so far.
    pub attempts: i64,
}

/// Writes a message (in the caller's transaction).
pub async fn push(conn: &mut Conn, topic: &str, key: &str, payload: &Value) -> StoreResult<Uuid> {
    let id = Uuid::new_v4();
    let now = Timestamp::now().as_micros();
    let q = sql(
        conn,
        "INSERT INTO outbox (id, topic, message_key, payload, created_at, published_at, attempts, next_attempt_at, last_error) \
         VALUES (?, ?, ?, ?, ?, NULL, 0, ?, NULL)",
    );
    sqlx::query(&q)
        .bind(id.to_string())
        .bind(topic)
        .bind(key)
        .bind(payload.to_string())
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

/// The oldest unpublished messages due for an attempt.
pub async fn pending(
    conn: &mut Conn,
    now: Timestamp,
    limit: i64,
) -> StoreResult<Vec<OutboxMessage>> {
    let q = sql(
        conn,
        &format!(
            "SELECT seq, id, topic, message_key, payload, created_at, attempts FROM outbox \
             WHERE published_at IS NULL AND next_attempt_at <= ? ORDER BY seq LIMIT {limit}"
        ),
    );
    let rows: Vec<(i64, String, String, String, Text, i64, i64)> = sqlx::query_as(&q)
        .bind(now.as_micros())
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter()
        .map(|(seq, id, topic, key, payload, created_at, attempts)| {
            Ok(OutboxMessage {
                seq,
                id: uuid_column(&id)?,
                topic,
                key,
                payload: json_column(&payload.0, "outbox payload")?,
                created_at: Timestamp::from_micros(created_at),
                attempts,
            })
        })
        .collect()
}

/// Marks messages published.
pub async fn mark_published(conn: &mut Conn, seqs: &[i64]) -> StoreResult<()> {
    if seqs.is_empty() {
        return Ok(());
    }
    let q = sql(
        conn,
        &format!(
            "UPDATE outbox SET published_at = ? WHERE seq IN ({})",
            vec!["?"; seqs.len()].join(", ")
        ),
    );
    let mut query = sqlx::query(&q).bind(Timestamp::now().as_micros());
    for seq in seqs {
        query = query.bind(*seq);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Records a failed attempt and when to try again.
pub async fn mark_failed(
    conn: &mut Conn,
    seq: i64,
    error: &str,
    retry_at: Timestamp,
) -> StoreResult<()> {
    let q = sql(conn, "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE seq = ?");
    sqlx::query(&q)
        .bind(error)
        .bind(retry_at.as_micros())
        .bind(seq)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes published messages older than `before`.
pub async fn prune(conn: &mut Conn, before: Timestamp) -> StoreResult<u64> {
    let q = sql(
        conn,
        "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < ?",
    );
    let done = sqlx::query(&q)
        .bind(before.as_micros())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}
