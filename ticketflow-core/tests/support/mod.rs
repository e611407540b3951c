//! Test databases: a fresh PostgreSQL database or SQLite file per test, migrated.
#![allow(dead_code)]

use std::sync::Arc;

use sqlx::Connection;
use ticketflow_core::store::{PgOptions, PgStore, SqliteStore, TicketStore};
use uuid::Uuid;

/// The server the PostgreSQL tests use (`TEST_POSTGRES_URL`, default the machine's local one).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates a database of its own for one test and returns its URL.
pub async fn fresh_postgres_database() -> String {
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
pub async fn postgres_store() -> Arc<dyn TicketStore> {
    let url = fresh_postgres_database().await;
    let store = PgStore::connect(&url, PgOptions::default()).await.expect("connect");
    store.migrate().await.expect("migrate postgres");
    Arc::new(store)
}

/// A migrated SQLite store in a file of its own.
pub async fn sqlite_store() -> Arc<dyn TicketStore> {
    let path = std::env::temp_dir().join(format!("tf_test_{}.db", Uuid::new_v4().simple()));
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open sqlite");
    store.migrate().await.expect("migrate sqlite");
    Arc::new(store)
}
