//! SQL for `outbox`: messages written in the same transaction as the change they
//! describe, published afterwards (to Kafka, or consumed in-process); for
//! `relay_leases`, which lets one relay publish at a time; and for
//! `consumed_messages`, the ids of the messages the consumers have applied (so a
//! message delivered twice is applied once).

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
    push_with_id(conn, id, topic, key, payload).await?;
    Ok(id)
}

/// Writes a message whose id the caller chose (it is also inside the payload).
pub async fn push_with_id(
    conn: &mut Conn,
    id: Uuid,
    topic: &str,
    key: &str,
    payload: &Value,
) -> StoreResult<()> {
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
    Ok(())
}

/// The oldest unpublished messages due for an attempt, at most one per key: a
/// message waits until every older message with the same key is published, so the
/// messages of one deployment reach the broker in the order they were written even
/// when one of a batch fails and the others succeed. (The relay runs its next round
/// at once after a delivery, so a deployment's queued messages still go out quickly.)
pub async fn pending(
    conn: &mut Conn,
    now: Timestamp,
    limit: i64,
) -> StoreResult<Vec<OutboxMessage>> {
    let q = sql(
        conn,
        &format!(
            "SELECT o.seq, o.id, o.topic, o.message_key, o.payload, o.created_at, o.attempts FROM outbox o \
             WHERE o.published_at IS NULL AND o.next_attempt_at <= ? \
             AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.message_key = o.message_key AND e.seq < o.seq \
                             AND e.published_at IS NULL) \
             ORDER BY o.seq LIMIT {limit}"
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

/// Deletes messages outright: those carrying an access token are not kept once the
/// broker has them.
pub async fn delete(conn: &mut Conn, seqs: &[i64]) -> StoreResult<()> {
    if seqs.is_empty() {
        return Ok(());
    }
    let q = sql(
        conn,
        &format!(
            "DELETE FROM outbox WHERE seq IN ({})",
            vec!["?"; seqs.len()].join(", ")
        ),
    );
    let mut query = sqlx::query(&q);
    for seq in seqs {
        query = query.bind(*seq);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// How many messages wait for publication.
pub async fn unpublished(conn: &mut Conn) -> StoreResult<i64> {
    let q = "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL";
    Ok(sqlx::query_scalar(q).fetch_one(&mut *conn).await?)
}

type FullRow = (i64, String, String, String, Text, i64, i64, Option<i64>);

/// A message by id, with when it was published (tests and diagnostics).
pub async fn get(
    conn: &mut Conn,
    id: Uuid,
) -> StoreResult<Option<(OutboxMessage, Option<Timestamp>)>> {
    let q = sql(
        conn,
        "SELECT seq, id, topic, message_key, payload, created_at, attempts, published_at FROM outbox WHERE id = ?",
    );
    let row: Option<FullRow> = sqlx::query_as(&q)
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(
        |(seq, id, topic, key, payload, created_at, attempts, published_at)| {
            Ok((
                OutboxMessage {
                    seq,
                    id: uuid_column(&id)?,
                    topic,
                    key,
                    payload: json_column(&payload.0, "outbox payload")?,
                    created_at: Timestamp::from_micros(created_at),
                    attempts,
                },
                published_at.map(Timestamp::from_micros),
            ))
        },
    )
    .transpose()
}

/// Takes or renews the lease `name` for `holder` until `until`; `false` while
/// another holder's lease lasts.
pub async fn take_lease(
    conn: &mut Conn,
    name: &str,
    holder: &str,
    now: Timestamp,
    until: Timestamp,
) -> StoreResult<bool> {
    let q = sql(
        conn,
        "UPDATE relay_leases SET holder = ?, lease_until = ? WHERE name = ? AND (holder = ? OR lease_until < ?)",
    );
    let done = sqlx::query(&q)
        .bind(holder)
        .bind(until.as_micros())
        .bind(name)
        .bind(holder)
        .bind(now.as_micros())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives a lease up (a relay that stops lets another take over at once).
pub async fn release_lease(conn: &mut Conn, name: &str, holder: &str) -> StoreResult<()> {
    let q = sql(
        conn,
        "UPDATE relay_leases SET lease_until = 0 WHERE name = ? AND holder = ?",
    );
    sqlx::query(&q)
        .bind(name)
        .bind(holder)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether a consumed message id was already applied.
pub async fn consumed(conn: &mut Conn, id: &str) -> StoreResult<bool> {
    let q = sql(conn, "SELECT COUNT(*) FROM consumed_messages WHERE id = ?");
    let n: i64 = sqlx::query_scalar(&q)
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

/// Records a consumed message id (in the transaction that applies the message; a
/// concurrent duplicate fails with [`super::StoreError::Duplicate`]).
pub async fn record_consumed(conn: &mut Conn, id: &str, topic: &str) -> StoreResult<()> {
    let q = sql(
        conn,
        "INSERT INTO consumed_messages (id, consumed_at, topic) VALUES (?, ?, ?)",
    );
    sqlx::query(&q)
        .bind(id)
        .bind(Timestamp::now().as_micros())
        .bind(topic)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Forgets consumed ids older than `before` (redeliveries come within minutes).
pub async fn prune_consumed(conn: &mut Conn, before: Timestamp) -> StoreResult<u64> {
    let q = sql(conn, "DELETE FROM consumed_messages WHERE consumed_at < ?");
    let done = sqlx::query(&q)
        .bind(before.as_micros())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}
