//! Support shared by the integration test binaries: a fresh database per test on
//! SQLite, PostgreSQL or MySQL/MariaDB, and the rule for absent services.
//!
//! PostgreSQL and MariaDB come from `TEST_POSTGRES_URL` / `TEST_MYSQL_URL` (exported
//! by `scripts/services/up.sh`). When a variable is missing the test prints a notice
//! and passes, unless `REQUIRE_SERVICES=1` (set by `scripts/test` and CI), where it
//! fails: CI never silently skips a backend.

#![allow(dead_code)]

use orchestrator::store::Store;

/// Database kinds the suites run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
    MySql,
}

/// Returns the service variable, or `None` (with a notice) when tests may skip.
pub fn service_var(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            if std::env::var("REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{var} is not set but REQUIRE_SERVICES=1: start the services with scripts/services/up.sh");
            }
            eprintln!("skipping: {var} is not set (run ./scripts/test to start the services)");
            None
        }
    }
}

/// A database created for one test and dropped after it.
pub struct TestDb {
    pub kind: DbKind,
    pub url: String,
    admin_url: Option<String>,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh, empty database of this kind; `None` when the server is not configured.
    pub async fn new(kind: DbKind) -> Option<Self> {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        match kind {
            DbKind::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Some(Self {
                    kind,
                    url,
                    admin_url: None,
                    name,
                    _dir: Some(dir),
                })
            }
            DbKind::Postgres | DbKind::MySql => {
                let var = if kind == DbKind::Postgres {
                    "TEST_POSTGRES_URL"
                } else {
                    "TEST_MYSQL_URL"
                };
                let admin_url = service_var(var)?;
                admin_exec(&admin_url, &format!("CREATE DATABASE {name}")).await;
                let mut url = url::Url::parse(&admin_url).expect("service URL");
                url.set_path(&format!("/{name}"));
                Some(Self {
                    kind,
                    url: url.to_string(),
                    admin_url: Some(admin_url),
                    name,
                    _dir: None,
                })
            }
        }
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url, 5)
            .await
            .expect("connect to the test database");
        store.migrate().await.expect("migrate the test database");
        store
    }
}

async fn admin_exec(admin_url: &str, statement: &str) {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {admin_url}: {e}"));
    conn.execute(statement)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    let _ = conn.close().await;
}

async fn drop_database(kind: DbKind, admin_url: &str, name: &str) {
    use sqlx::{Connection, Executor};
    let Ok(mut conn) = sqlx::AnyConnection::connect(admin_url).await else {
        return;
    };
    if kind == DbKind::Postgres {
        let _ = conn
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    } else {
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE db = '{name}'"
        ))
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        for id in ids {
            let _ = conn.execute(format!("KILL {id}").as_str()).await;
        }
        let _ = conn
            .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
            .await;
    }
    let _ = conn.close().await;
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(admin_url) = self.admin_url.clone() else {
            return;
        };
        let (kind, name) = (self.kind, self.name.clone());
        // Drop may run inside the test's runtime, which then cannot drive the pool's
        // connections to a clean close: a separate thread and runtime end them
        // server-side (they may hold locks) and drop the database.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(kind, &admin_url, &name));
            }
        })
        .join();
    }
}

/// Generates one `#[tokio::test]` per backend for each `async fn name(db: &TestDb)`.
#[macro_export]
macro_rules! on_each_backend {
    ($(async fn $name:ident($db:ident: &TestDb) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($db: &$crate::common::TestDb) $body
                #[tokio::test]
                async fn sqlite() {
                    let db = $crate::common::TestDb::new($crate::common::DbKind::Sqlite).await.unwrap();
                    run(&db).await;
                }
                #[tokio::test]
                async fn postgres() {
                    if let Some(db) = $crate::common::TestDb::new($crate::common::DbKind::Postgres).await {
                        run(&db).await;
                    }
                }
                #[tokio::test]
                async fn mysql() {
                    if let Some(db) = $crate::common::TestDb::new($crate::common::DbKind::MySql).await {
                        run(&db).await;
                    }
                }
            }
        )*
    };
}
