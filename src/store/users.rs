//! SQL for `users`.

use uuid::Uuid;

use super::list::{bind_rows, bind_scalar, filter, order_and_page};
use super::{sql, uuid_column, Conn, StoreResult, Text};
use crate::domain::list::{Field, FieldKind, ListQuery, ListSpec};
use crate::domain::{Timestamp, User};

/// Filterable and sortable user attributes.
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
            kind: FieldKind::User,
            sortable: true,
        },
        Field {
            name: "sub",
            sql: "sub",
            kind: FieldKind::Exact,
            sortable: true,
        },
        Field {
            name: "issuer",
            sql: "issuer",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "name",
            sql: "name",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "username",
            sql: "username",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "email",
            sql: "email",
            kind: FieldKind::Text,
            sortable: true,
        },
    ],
    default_sort: "-created_at",
    tie_breaker: "id",
    extra_params: &[],
};

const COLUMNS: &str = "id, sub, issuer, name, username, email, picture, public_ssh_key, \
                       refresh_token, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    sub: String,
    issuer: String,
    name: String,
    username: String,
    email: String,
    picture: Option<Text>,
    public_ssh_key: Option<Text>,
    refresh_token: Option<Text>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<Row> for User {
    type Error = super::StoreError;
    fn try_from(r: Row) -> StoreResult<User> {
        Ok(User {
            id: uuid_column(&r.id)?,
            sub: r.sub,
            issuer: r.issuer,
            name: r.name,
            username: r.username,
            email: r.email,
            picture: r.picture.map(String::from),
            public_ssh_key: r.public_ssh_key.map(String::from),
            refresh_token: r.refresh_token.map(String::from),
            created_at: Timestamp::from_micros(r.created_at),
            updated_at: Timestamp::from_micros(r.updated_at),
        })
    }
}

/// Inserts a user.
pub async fn insert(conn: &mut Conn, user: &User) -> StoreResult<()> {
    let q = sql(
        conn,
        "INSERT INTO users (id, sub, issuer, name, username, email, picture, public_ssh_key, \
         refresh_token, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    sqlx::query(&q)
        .bind(user.id.to_string())
        .bind(&user.sub)
        .bind(&user.issuer)
        .bind(&user.name)
        .bind(&user.username)
        .bind(&user.email)
        .bind(user.picture.as_deref())
        .bind(user.public_ssh_key.as_deref())
        .bind(user.refresh_token.as_deref())
        .bind(user.created_at.as_micros())
        .bind(user.updated_at.as_micros())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The user with this id.
pub async fn get(conn: &mut Conn, id: Uuid) -> StoreResult<Option<User>> {
    let q = sql(conn, &format!("SELECT {COLUMNS} FROM users WHERE id = ?"));
    let row: Option<Row> = sqlx::query_as(&q)
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(User::try_from).transpose()
}

/// The user with this subject at this issuer.
pub async fn find_by_identity(
    conn: &mut Conn,
    sub: &str,
    issuer: &str,
) -> StoreResult<Option<User>> {
    let q = sql(
        conn,
        &format!("SELECT {COLUMNS} FROM users WHERE sub = ? AND issuer = ?"),
    );
    let row: Option<Row> = sqlx::query_as(&q)
        .bind(sub)
        .bind(issuer)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(User::try_from).transpose()
}

/// Refreshes the identity claims of a user (name, e-mail, username may change at the
/// issuer).
pub async fn update_claims(conn: &mut Conn, user: &User) -> StoreResult<()> {
    let q = sql(
        conn,
        "UPDATE users SET name = ?, username = ?, email = ?, updated_at = ? WHERE id = ?",
    );
    sqlx::query(&q)
        .bind(&user.name)
        .bind(&user.username)
        .bind(&user.email)
        .bind(user.updated_at.as_micros())
        .bind(user.id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Writes the fields a user may change about themselves.
pub async fn update_profile(conn: &mut Conn, user: &User) -> StoreResult<()> {
    let q = sql(
        conn,
        "UPDATE users SET picture = ?, public_ssh_key = ?, refresh_token = ?, updated_at = ? \
         WHERE id = ?",
    );
    sqlx::query(&q)
        .bind(user.picture.as_deref())
        .bind(user.public_ssh_key.as_deref())
        .bind(user.refresh_token.as_deref())
        .bind(user.updated_at.as_micros())
        .bind(user.id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// One page of users and the total matching.
pub async fn list(conn: &mut Conn, query: &ListQuery) -> StoreResult<(Vec<User>, u64)> {
    let f = filter(query);
    let count_sql = sql(
        conn,
        &format!("SELECT COUNT(*) FROM users WHERE 1 = 1{}", f.sql),
    );
    let total: i64 = bind_scalar(sqlx::query_scalar(&count_sql), &f.binds)
        .fetch_one(&mut *conn)
        .await?;
    let rows_sql = sql(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM users WHERE 1 = 1{}{}",
            f.sql,
            order_and_page(query, &LIST)
        ),
    );
    let rows: Vec<Row> = bind_rows(sqlx::query_as(&rows_sql), &f.binds)
        .fetch_all(&mut *conn)
        .await?;
    let users = rows
        .into_iter()
        .map(User::try_from)
        .collect::<StoreResult<_>>()?;
    Ok((users, u64::try_from(total).unwrap_or(0)))
}

/// Whether anything still points at the user (owned or created deployments, created
/// or updated templates), which forbids deleting it.
pub async fn is_referenced(conn: &mut Conn, id: Uuid) -> StoreResult<bool> {
    let q = sql(
        conn,
        "SELECT COUNT(*) FROM users u WHERE u.id = ? AND (\
           EXISTS (SELECT 1 FROM deployment_owners o WHERE o.user_id = u.id) \
           OR EXISTS (SELECT 1 FROM deployments d WHERE d.created_by = u.id OR d.updated_by = u.id) \
           OR EXISTS (SELECT 1 FROM templates t WHERE t.created_by = u.id OR t.updated_by = u.id) \
           OR EXISTS (SELECT 1 FROM resources r WHERE r.created_by = u.id OR r.updated_by = u.id))",
    );
    let n: i64 = sqlx::query_scalar(&q)
        .bind(id.to_string())
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

/// Deletes a user; `false` when there was none.
pub async fn delete(conn: &mut Conn, id: Uuid) -> StoreResult<bool> {
    let q = sql(conn, "DELETE FROM users WHERE id = ?");
    let done = sqlx::query(&q)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
