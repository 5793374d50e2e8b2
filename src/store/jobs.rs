//! SQL for `jobs`: the work queue between the API and the engine.
//!
//! A job runs as a series of steps. A worker claims a job whose time has come (or
//! whose previous holder's lease expired), runs one step while renewing the lease,
//! then releases it with the step's recorded progress and the time of the next step.
//! Claiming uses `FOR UPDATE SKIP LOCKED` on PostgreSQL and MySQL; on SQLite a single
//! `UPDATE` marks the row with a unique claim token. A job is never claimed while
//! another job of the same deployment holds a live lease, so one deployment is
//! driven by one worker at a time, and a job cancelled mid-step keeps its lease until
//! that step ends (the delete that cancelled it waits for the step to record what
//! it created).

use serde_json::Value;
use uuid::Uuid;

use super::{json_column, sql, uuid_column, Backend, Conn, StoreError, StoreResult, Text};
use crate::domain::{Job, JobKind, JobState, Timestamp};

const COLUMNS: &str = "id, deployment_id, kind, payload, state, progress, run_after, lease_owner, \
    lease_until, attempts, last_error, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    deployment_id: String,
    kind: String,
    payload: Text,
    state: String,
    progress: Text,
    run_after: i64,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    attempts: i64,
    last_error: Option<Text>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<Row> for Job {
    type Error = StoreError;
    fn try_from(r: Row) -> StoreResult<Job> {
        Ok(Job {
            id: uuid_column(&r.id)?,
            deployment_id: uuid_column(&r.deployment_id)?,
            kind: JobKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("job kind {}", r.kind)))?,
            payload: json_column(&r.payload.0, "job payload")?,
            state: JobState::parse(&r.state)
                .ok_or_else(|| StoreError::Corrupt(format!("job state {}", r.state)))?,
            progress: json_column(&r.progress.0, "job progress")?,
            run_after: Timestamp::from_micros(r.run_after),
            lease_owner: r.lease_owner,
            lease_until: r.lease_until.map(Timestamp::from_micros),
            attempts: r.attempts,
            last_error: r.last_error.map(String::from),
            created_at: Timestamp::from_micros(r.created_at),
            updated_at: Timestamp::from_micros(r.updated_at),
        })
    }
}

/// Queues a job (in the caller's transaction).
pub async fn enqueue(conn: &mut Conn, job: &Job) -> StoreResult<()> {
    let q = sql(
        conn,
        &format!("INSERT INTO jobs ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
    );
    sqlx::query(&q)
        .bind(job.id.to_string())
        .bind(job.deployment_id.to_string())
        .bind(job.kind.as_str())
        .bind(job.payload.to_string())
        .bind(job.state.as_str())
        .bind(job.progress.to_string())
        .bind(job.run_after.as_micros())
        .bind(job.lease_owner.as_deref())
        .bind(job.lease_until.map(Timestamp::as_micros))
        .bind(job.attempts)
        .bind(job.last_error.as_deref())
        .bind(job.created_at.as_micros())
        .bind(job.updated_at.as_micros())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A job by id.
pub async fn get(conn: &mut Conn, id: Uuid) -> StoreResult<Option<Job>> {
    let q = sql(conn, &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?"));
    let row: Option<Row> = sqlx::query_as(&q)
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Job::try_from).transpose()
}

/// The jobs of a deployment that are not finished, oldest first.
pub async fn active_of(conn: &mut Conn, deployment: Uuid) -> StoreResult<Vec<Job>> {
    let q = sql(
        conn,
        &format!("SELECT {COLUMNS} FROM jobs WHERE deployment_id = ? AND state IN ('pending', 'running') ORDER BY created_at"),
    );
    let rows: Vec<Row> = sqlx::query_as(&q)
        .bind(deployment.to_string())
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(Job::try_from).collect()
}

/// Every job of a deployment, oldest first (tests and diagnostics).
pub async fn all_of(conn: &mut Conn, deployment: Uuid) -> StoreResult<Vec<Job>> {
    let q = sql(
        conn,
        &format!("SELECT {COLUMNS} FROM jobs WHERE deployment_id = ? ORDER BY created_at"),
    );
    let rows: Vec<Row> = sqlx::query_as(&q)
        .bind(deployment.to_string())
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(Job::try_from).collect()
}

/// Cancels the unfinished jobs of a deployment (optionally only some kinds); returns
/// how many. A step in flight keeps its lease until it ends.
pub async fn cancel_active(conn: &mut Conn, deployment: Uuid, reason: &str) -> StoreResult<u64> {
    let q = sql(
        conn,
        "UPDATE jobs SET state = 'cancelled', last_error = ?, updated_at = ? \
         WHERE deployment_id = ? AND state IN ('pending', 'running')",
    );
    let done = sqlx::query(&q)
        .bind(reason)
        .bind(Timestamp::now().as_micros())
        .bind(deployment.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

const CLAIMABLE: &str =
    "((j.state = 'pending' AND j.run_after <= ?) OR (j.state = 'running' AND j.lease_until < ?)) \
    AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.deployment_id = j.deployment_id AND o.id <> j.id \
                    AND o.lease_until IS NOT NULL AND o.lease_until >= ?)";

/// Claims the next job whose time has come for `lease_micros`; `claim` is a unique
/// token identifying this claim (it becomes the lease owner).
pub async fn claim(
    conn: &mut Conn,
    claim: &str,
    now: Timestamp,
    lease_micros: i64,
) -> StoreResult<Option<Job>> {
    let until = now.plus_micros(lease_micros).as_micros();
    let now = now.as_micros();
    match Backend::of(conn) {
        Backend::Sqlite => {
            let q = sql(
                conn,
                &format!(
                    "UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? \
                     WHERE id = (SELECT j.id FROM jobs j WHERE {CLAIMABLE} ORDER BY j.run_after, j.created_at LIMIT 1)"
                ),
            );
            let done = sqlx::query(&q)
                .bind(claim)
                .bind(until)
                .bind(now)
                .bind(now)
                .bind(now)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(None);
            }
        }
        Backend::Postgres | Backend::MySql => {
            let q = sql(
                conn,
                &format!(
                    "SELECT j.id FROM jobs j WHERE {CLAIMABLE} ORDER BY j.run_after, j.created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
                ),
            );
            let id: Option<String> = sqlx::query_scalar(&q)
                .bind(now)
                .bind(now)
                .bind(now)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(id) = id else { return Ok(None) };
            let q = sql(
                conn,
                "UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?",
            );
            sqlx::query(&q)
                .bind(claim)
                .bind(until)
                .bind(now)
                .bind(&id)
                .execute(&mut *conn)
                .await?;
        }
    }
    let q = sql(
        conn,
        &format!("SELECT {COLUMNS} FROM jobs WHERE lease_owner = ?"),
    );
    let row: Option<Row> = sqlx::query_as(&q)
        .bind(claim)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Job::try_from).transpose()
}

/// Extends a lease; `false` when the claim no longer holds it.
pub async fn renew(conn: &mut Conn, job: Uuid, claim: &str, until: Timestamp) -> StoreResult<bool> {
    let q = sql(
        conn,
        "UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_owner = ?",
    );
    let done = sqlx::query(&q)
        .bind(until.as_micros())
        .bind(job.to_string())
        .bind(claim)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// How a step ended.
#[derive(Debug, Clone)]
pub enum StepEnd {
    /// More steps: run again at this time.
    Again(Timestamp),
    /// Finished.
    Done,
    /// Gave up.
    Failed(String),
}

/// Releases the lease after a step, recording its progress. `false` when the claim
/// had lost the lease or the job was cancelled meanwhile (its progress is still
/// saved, so that what the step created is known).
pub async fn release(
    conn: &mut Conn,
    job: Uuid,
    claim: &str,
    progress: &Value,
    end: &StepEnd,
) -> StoreResult<bool> {
    let now = Timestamp::now().as_micros();
    let (state, run_after, error) = match end {
        StepEnd::Again(at) => ("pending", at.as_micros(), None),
        StepEnd::Done => ("done", now, None),
        StepEnd::Failed(reason) => ("failed", now, Some(reason.as_str())),
    };
    let q = sql(
        conn,
        "UPDATE jobs SET state = ?, progress = ?, run_after = ?, last_error = COALESCE(?, last_error), \
         lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ? AND lease_owner = ? AND state = 'running'",
    );
    let done = sqlx::query(&q)
        .bind(state)
        .bind(progress.to_string())
        .bind(run_after)
        .bind(error)
        .bind(now)
        .bind(job.to_string())
        .bind(claim)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 1 {
        return Ok(true);
    }
    // Cancelled (or taken over) meanwhile: keep what the step learned, drop the lease.
    let q = sql(
        conn,
        "UPDATE jobs SET progress = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ? AND lease_owner = ?",
    );
    sqlx::query(&q)
        .bind(progress.to_string())
        .bind(now)
        .bind(job.to_string())
        .bind(claim)
        .execute(&mut *conn)
        .await?;
    Ok(false)
}

/// Whether a job is still wanted (not cancelled) and held by this claim.
pub async fn still_held(conn: &mut Conn, job: Uuid, claim: &str) -> StoreResult<bool> {
    let q = sql(
        conn,
        "SELECT COUNT(*) FROM jobs WHERE id = ? AND lease_owner = ? AND state = 'running'",
    );
    let n: i64 = sqlx::query_scalar(&q)
        .bind(job.to_string())
        .bind(claim)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n == 1)
}

/// Ends the unfinished jobs of a deployment as done, with a note (an external engine
/// reported the operation over, `ENGINE=external`); returns how many.
pub async fn finish_active(conn: &mut Conn, deployment: Uuid, note: &str) -> StoreResult<u64> {
    let q = sql(
        conn,
        "UPDATE jobs SET state = 'done', last_error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? \
         WHERE deployment_id = ? AND state IN ('pending', 'running')",
    );
    let done = sqlx::query(&q)
        .bind(note)
        .bind(Timestamp::now().as_micros())
        .bind(deployment.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}
