//! The outbox and the sweep in SQLite.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::FromRow;

use super::rows::{BacklogRow, OutboxRow};
use super::{SqliteStore, after, now, timestamp};
use crate::store::{Backlog, OutboxMessage, OutboxStore, StoreError};

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn claim_outbox(&self, limit: u32, visibility: Duration) -> Result<Vec<OutboxMessage>, StoreError> {
        let at = Utc::now();
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "SELECT o.id, o.ticket_id, o.request_id, o.traceparent, t.attempt_count FROM outbox o \
             JOIN tickets t ON t.id = o.ticket_id \
             WHERE o.sent_at IS NULL AND o.available_at <= ?1 ORDER BY o.available_at, o.id LIMIT ?2",
        )
        .bind(timestamp(at))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let claimed = rows
            .iter()
            .map(|r| OutboxRow::from_row(r).map(OutboxMessage::from))
            .collect::<Result<Vec<_>, _>>()?;
        let hidden_until = after(at, visibility);
        for message in &claimed {
            sqlx::query("UPDATE outbox SET available_at = ?1, claimed_at = ?3 WHERE id = ?2")
                .bind(&hidden_until)
                .bind(message.id)
                .bind(timestamp(at))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<(), StoreError> {
        let sent_at = now();
        let mut tx = self.begin().await?;
        for id in ids {
            sqlx::query("UPDATE outbox SET sent_at = ?1 WHERE id = ?2")
                .bind(&sent_at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn sweep(&self, quiet_for: Duration, limit: u32) -> Result<u64, StoreError> {
        let at = Utc::now();
        let quiet_since = timestamp(at - chrono::Duration::from_std(quiet_for).unwrap_or(chrono::Duration::MAX));
        let at = timestamp(at);
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO outbox (ticket_id, request_id, traceparent, available_at, created_at) \
             SELECT t.id, \
                 (SELECT o.request_id FROM outbox o WHERE o.ticket_id = t.id ORDER BY o.id DESC LIMIT 1), \
                 (SELECT o.traceparent FROM outbox o WHERE o.ticket_id = t.id ORDER BY o.id DESC LIMIT 1), \
                 ?1, ?1 FROM tickets t \
             WHERE (t.status = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.ticket_id = t.id AND \
                       (o.sent_at IS NULL OR o.sent_at > ?2))) \
                OR (t.status = 'processing' AND (t.lease_expires_at IS NULL OR t.lease_expires_at < ?1) \
                    AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.ticket_id = t.id AND \
                       (o.sent_at IS NULL OR o.sent_at > t.lease_expires_at))) \
             ORDER BY t.created_at LIMIT ?3",
        )
        .bind(&at)
        .bind(&quiet_since)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        let at = Utc::now();
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM tickets WHERE status = 'pending') AS pending, \
                    (SELECT min(created_at) FROM tickets WHERE status = 'pending') AS oldest, \
                    (SELECT count(*) FROM outbox WHERE sent_at IS NULL AND available_at <= ?1) AS due, \
                    (SELECT min(available_at) FROM outbox WHERE sent_at IS NULL AND available_at <= ?1) AS lag",
        )
        .bind(timestamp(at))
        .fetch_one(&self.read)
        .await?;
        Ok(BacklogRow::from_row(&row)?.at(at))
    }
}
