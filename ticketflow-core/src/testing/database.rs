//! Fresh databases for tests: a PostgreSQL database or a SQLite file of each test's own,
//! migrated. The PostgreSQL server is `TEST_POSTGRES_URL` (default: the machine's own on
//! 127.0.0.1:5432); databases are named `tf_test_<uuid>`, which CI drops before each run.
#![allow(clippy::missing_panics_doc)]

use std::sync::Arc;

use uuid::Uuid;

use crate::store::Store;

/// The server the PostgreSQL tests use (`TEST_POSTGRES_URL`, default the machine's local one).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates a database of its own for one test and returns its URL.
#[cfg(feature = "postgres")]
pub async fn fresh_postgres_url() -> String {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is not reachable at {admin} ({e}); start it (see .ci/run) or set TEST_POSTGRES_URL")
    });
    let name = format!("tf_test_{}", Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (base, _) = admin.rsplit_once('/').expect("URL has a database part");
    format!("{base}/{name}")
}

/// A migrated PostgreSQL store on a database of its own.
#[cfg(feature = "postgres")]
pub async fn postgres_store() -> Arc<dyn Store> {
    let url = fresh_postgres_url().await;
    let store = crate::store::PgStore::connect(&url, crate::store::PgOptions::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate postgres");
    Arc::new(store)
}

/// A URL for a SQLite file of its own (not created yet), in the temporary directory.
pub fn fresh_sqlite_url() -> String {
    let path = std::env::temp_dir().join(format!("tf_test_{}.db", Uuid::new_v4().simple()));
    format!("sqlite://{}", path.display())
}

/// A migrated SQLite store in a file of its own.
#[cfg(feature = "sqlite")]
pub async fn sqlite_store() -> Arc<dyn Store> {
    let store = crate::store::SqliteStore::connect(&fresh_sqlite_url())
        .await
        .expect("open sqlite");
    store.migrate().await.expect("migrate sqlite");
    Arc::new(store)
}
