//! The live feed's reads in SQLite. Its one writer commits in seq order, so nothing is ever in
//! flight below what a reader sees; its notices are the writer's own.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{FromRow, Row};
use tokio::sync::Notify;
use uuid::Uuid;

use super::SqliteStore;
use super::rows::{EVENT_COLUMNS, EventRow};
use crate::store::{CommitNotices, FeedRead, FeedStore, InFlight, StoreError, TicketEvent};

fn events(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<TicketEvent>, StoreError> {
    Ok(rows
        .iter()
        .map(|r| EventRow::from_row(r).map(TicketEvent::from))
        .collect::<Result<_, _>>()?)
}

#[async_trait]
impl FeedStore for SqliteStore {
    async fn read_feed(&self, after: i64, limit: u32, _waiting_for: &[String]) -> Result<FeedRead, StoreError> {
        // One read transaction: WAL gives it one snapshot for both statements.
        let mut tx = self.read.begin().await?;
        let newest: i64 = sqlx::query("SELECT coalesce(max(seq), 0) FROM ticket_events")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM ticket_events WHERE seq > ? ORDER BY seq LIMIT ?"
        )))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(FeedRead {
            events: events(&rows)?,
            newest,
            in_flight: InFlight::Nothing,
            waited_for_ended: true,
        })
    }

    async fn events_between(
        &self,
        ticket: Option<Uuid>,
        after: i64,
        through: i64,
        limit: u32,
    ) -> Result<Vec<TicketEvent>, StoreError> {
        let rows = match ticket {
            Some(ticket) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {EVENT_COLUMNS} FROM ticket_events WHERE ticket_id = ? AND seq > ? AND seq <= ? \
                     ORDER BY seq LIMIT ?"
                )))
                .bind(ticket.hyphenated())
                .bind(after)
                .bind(through)
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {EVENT_COLUMNS} FROM ticket_events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
                )))
                .bind(after)
                .bind(through)
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?
            }
        };
        events(&rows)
    }

    async fn commit_notices(&self) -> Result<Option<Box<dyn CommitNotices>>, StoreError> {
        Ok(Some(Box::new(Commits(self.commits.clone()))))
    }
}

/// The writer's pings.
struct Commits(Arc<Notify>);

#[async_trait]
impl CommitNotices for Commits {
    async fn next(&mut self) -> Result<(), StoreError> {
        self.0.notified().await;
        Ok(())
    }
}
