//! The SQLite store: the embedded default. One writer (a single-connection pool, every write
//! transaction `BEGIN IMMEDIATE`), WAL for concurrent readers, a busy timeout for the rest.
//! One file per aggregate, as the PostgreSQL store.

mod approvals;
mod checkpoints;
mod claims;
mod commerce;
mod deliveries;
mod feed;
mod messages;
mod outbox;
mod people;
mod rows;
mod tickets;
mod tool_calls;
mod webhooks;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::Notify;

use super::{Store, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Tickets, events, checkpoints and outbox in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (WAL lets them run beside the writer).
    read: SqlitePool,
    /// The one writer.
    write: SqlitePool,
    /// Pinged each time the writer's connection comes back to its pool, which is after every
    /// write commits (or rolls back): the live feed's notice, in process.
    commits: Arc<Notify>,
}

/// Timestamps as fixed-width RFC 3339 UTC text, so that text order is time order.
fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Now, as stored.
fn now() -> String {
    timestamp(Utc::now())
}

/// `at` plus `delay`, as stored (a delay too long to add is the end of time).
fn after(at: DateTime<Utc>, delay: Duration) -> String {
    timestamp(at + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX))
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path/to/file.db`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Validation {
                field: "DATABASE_URL",
                message: e.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL still never corrupts the database; a power cut may lose the last
            // transactions. FULL makes every commit durable, as the checkpoints promise.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let commits = Arc::new(Notify::new());
        let released = commits.clone();
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .after_release(move |_, _| {
                released.notify_one();
                Box::pin(async { Ok(true) })
            })
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { read, write, commits })
    }

    /// A write transaction: it takes the database's write lock at once, so no other writer
    /// can change what it reads before it writes.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.write).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(
            "SELECT (SELECT 1 FROM tickets LIMIT 1), (SELECT 1 FROM ticket_events LIMIT 1), \
                    (SELECT 1 FROM workflow_checkpoints LIMIT 1), (SELECT 1 FROM outbox LIMIT 1), \
                    (SELECT 1 FROM tool_calls LIMIT 1), (SELECT 1 FROM orders LIMIT 1), \
                    (SELECT 1 FROM approval_requests LIMIT 1)",
        )
        .execute(&self.read)
        .await?;
        Ok(())
    }
}
