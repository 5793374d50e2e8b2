//! SQL for `user_secrets`: references to a user's secrets kept in the secrets store
//! (the generated SSH private key), by name.

use uuid::Uuid;

use super::{sql, Conn, StoreResult, Text};
use crate::domain::Timestamp;

/// What the secrets store returned for `name`, if any.
pub async fn get(conn: &mut Conn, user: Uuid, name: &str) -> StoreResult<Option<String>> {
    let q = sql(
        conn,
        "SELECT stored FROM user_secrets WHERE user_id = ? AND name = ?",
    );
    let row: Option<Text> = sqlx::query_scalar(&q)
        .bind(user.to_string())
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(String::from))
}

/// Records a secret reference; `false` when the user already has one of that name.
pub async fn insert(conn: &mut Conn, user: Uuid, name: &str, stored: &str) -> StoreResult<bool> {
    if get(conn, user, name).await?.is_some() {
        return Ok(false);
    }
    let q = sql(
        conn,
        "INSERT INTO user_secrets (user_id, name, stored, created_at) VALUES (?, ?, ?, ?)",
    );
    sqlx::query(&q)
        .bind(user.to_string())
        .bind(name)
        .bind(stored)
        .bind(Timestamp::now().as_micros())
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Forgets a secret reference; returns what it was.
pub async fn delete(conn: &mut Conn, user: Uuid, name: &str) -> StoreResult<Option<String>> {
    let old = get(conn, user, name).await?;
    let q = sql(
        conn,
        "DELETE FROM user_secrets WHERE user_id = ? AND name = ?",
    );
    sqlx::query(&q)
        .bind(user.to_string())
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(old)
}
