//! The only code that speaks SQL. One set of queries serves SQLite, PostgreSQL and
//! MySQL/MariaDB through sqlx's `Any` driver: queries are written once with `?`
//! placeholders (rewritten to `$n` for PostgreSQL by [`sql`]), values are stored in
//! portable shapes (text ids, integer timestamps, 0/1 booleans, JSON as text), and
//! only the few statements that must differ (row locking) branch on [`Backend`].
//!
//! Storage functions take a `&mut Conn` (a pooled connection or a transaction); the
//! caller decides where the transaction starts and commits it.

pub mod attempts;
pub mod callbacks;
pub mod deployments;
pub mod jobs;
pub mod list;
pub mod logs;
pub mod outbox;
pub mod resources;
pub mod templates;
pub mod user_secrets;
pub mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// A connection usable by storage functions: a pooled connection or a transaction.
pub type Conn = sqlx::AnyConnection;

/// The database server kind behind a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (the embedded default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl Backend {
    /// The backend of a connection.
    pub fn of(conn: &Conn) -> Self {
        match conn.backend_name() {
            "PostgreSQL" => Self::Postgres,
            "MySQL" => Self::MySql,
            _ => Self::Sqlite,
        }
    }
}

/// Errors of the storage layer, typed by what the caller does about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or timed out: answer 503, retry later.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A uniqueness constraint refused the write.
    #[error("a unique constraint was violated: {0}")]
    Duplicate(String),
    /// A row is still referenced (or references a missing row).
    #[error("a foreign key constraint was violated: {0}")]
    ForeignKey(String),
    /// Stored data could not be read back (corrupt JSON, unknown code).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Duplicate(db.message().to_string())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                Self::ForeignKey(db.message().to_string())
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err),
            _ => Self::Database(err),
        }
    }
}

/// Result of storage functions.
pub type StoreResult<T> = Result<T, StoreError>;

/// The connection pool and what the application needs to know about it.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time and fails a transaction that upgrades from
    /// read to write while another writes (SQLITE_BUSY, which the busy timeout does
    /// not cover). Writers of this process therefore queue here instead.
    write_lock: Option<Arc<Mutex<()>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls back.
pub struct Tx {
    inner: sqlx::Transaction<'static, sqlx::Any>,
    _write_guard: Option<OwnedMutexGuard<()>>,
}

impl Tx {
    /// Commits the transaction.
    pub async fn commit(self) -> StoreResult<()> {
        self.inner.commit().await?;
        Ok(())
    }
}

impl std::ops::Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.inner
    }
}

impl Store {
    /// Connects to the database named by a normalised `DB_URL`. SQLite files are
    /// created when missing and put in WAL mode.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else if url.starts_with("mysql") {
            Backend::MySql
        } else {
            Backend::Sqlite
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(StoreError::Unavailable)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            // No ping before each use: it cost a round trip to the database per
            // request (a third of a bare primary-key read). A connection the server
            // dropped fails its next query, is discarded, and that request answers
            // 503 (StoreError::Unavailable); the next one gets a new connection.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    match Backend::of(conn) {
                        Backend::Sqlite => {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                        }
                        Backend::MySql => {
                            conn.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,ANSI_QUOTES'")
                                .await?;
                        }
                        Backend::Postgres => {
                            // Statements are prepared once per connection; their
                            // queries are short and keyed by ids, where PostgreSQL's
                            // default of re-planning with each execution's values
                            // cost more than running them (the deployment list at
                            // 100 000 rows spent a quarter of its time planning).
                            conn.execute("SET plan_cache_mode = force_generic_plan")
                                .await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::Unavailable)?;
        let write_lock = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Self {
            pool,
            backend,
            write_lock,
        })
    }

    /// Applies the migrations of this backend.
    pub async fn migrate(&self) -> StoreResult<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
            Backend::MySql => sqlx::migrate!("migrations/mysql"),
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// The database kind.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A pooled connection for reads.
    pub async fn conn(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.pool.acquire().await?)
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> StoreResult<Tx> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let inner = self.pool.begin().await?;
        Ok(Tx {
            inner,
            _write_guard: guard,
        })
    }

    /// Checks that the database answers, within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> StoreResult<()> {
        let check = async {
            let mut conn = self.pool.acquire().await?;
            conn.ping().await?;
            Ok::<_, sqlx::Error>(())
        };
        match tokio::time::timeout(timeout, check).await {
            Ok(result) => result.map_err(StoreError::Unavailable),
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }

    /// Closes every connection (tests that simulate an outage, shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Rewrites `?` placeholders for the connection's backend (`$1`, `$2`... on
/// PostgreSQL). Queries never contain `?` inside string literals.
pub fn sql(conn: &Conn, query: &str) -> String {
    if Backend::of(conn) != Backend::Postgres {
        return query.to_string();
    }
    let mut out = String::with_capacity(query.len() + 16);
    let mut n = 0;
    for ch in query.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Parses a stored JSON document.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Parses a stored UUID.
pub(crate) fn uuid_column(text: &str) -> StoreResult<uuid::Uuid> {
    uuid::Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("id '{text}': {e}")))
}

/// A text column of unbounded size. MySQL reports `LONGTEXT` as a blob type through
/// sqlx's `Any` driver, where `String` refuses to decode it; this type accepts text
/// and UTF-8 blobs alike, so one row struct reads every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl sqlx::Type<sqlx::Any> for Text {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as sqlx::Type<sqlx::Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        use sqlx::any::AnyTypeInfoKind;
        matches!(ty.kind, AnyTypeInfoKind::Text | AnyTypeInfoKind::Blob)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for Text {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        use sqlx::any::AnyTypeInfoKind;
        use sqlx::Decode;
        if sqlx::ValueRef::type_info(&value).kind == AnyTypeInfoKind::Blob {
            let bytes = <Vec<u8> as Decode<sqlx::Any>>::decode(value)?;
            return Ok(Self(String::from_utf8(bytes)?));
        }
        Ok(Self(<String as Decode<sqlx::Any>>::decode(value)?))
    }
}

impl From<Text> for String {
    fn from(text: Text) -> String {
        text.0
    }
}
