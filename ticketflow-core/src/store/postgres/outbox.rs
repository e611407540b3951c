//! The outbox and the sweep in PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{FromRow, SqlStr};

use super::PgStore;
use super::rows::{BacklogRow, OutboxRow};
use super::sql::statement;
use crate::store::{Backlog, OutboxMessage, OutboxStore, StoreError};

/// The outbox statements.
#[derive(Debug)]
pub(super) struct OutboxSql {
    claim: SqlStr,
    mark_sent: SqlStr,
    sweep: SqlStr,
    backlog: SqlStr,
}

impl OutboxSql {
    pub(super) fn new(schema: &str) -> Self {
        Self {
            claim: statement(
                schema,
                "WITH due AS (SELECT id FROM {schema}.outbox WHERE sent_at IS NULL AND available_at <= now() \
                              ORDER BY available_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
                 UPDATE {schema}.outbox o SET available_at = now() + make_interval(secs => $2), claimed_at = now() \
                 FROM due, {schema}.tickets t WHERE o.id = due.id AND t.id = o.ticket_id \
                 RETURNING o.id, o.ticket_id, o.request_id, o.traceparent, t.attempt_count",
            ),
            mark_sent: statement(schema, "UPDATE {schema}.outbox SET sent_at = now() WHERE id = ANY($1)"),
            sweep: statement(
                schema,
                "WITH stranded AS ( \
                     SELECT t.id FROM {schema}.tickets t \
                     WHERE (t.status = 'pending' AND NOT EXISTS (SELECT 1 FROM {schema}.outbox o \
                               WHERE o.ticket_id = t.id AND \
                               (o.sent_at IS NULL OR o.sent_at > now() - make_interval(secs => $1)))) \
                        OR (t.status = 'processing' AND (t.lease_expires_at IS NULL OR t.lease_expires_at < now()) \
                            AND NOT EXISTS (SELECT 1 FROM {schema}.outbox o WHERE o.ticket_id = t.id AND \
                               (o.sent_at IS NULL OR o.sent_at > t.lease_expires_at))) \
                     ORDER BY t.created_at LIMIT $2 FOR UPDATE OF t SKIP LOCKED) \
                 INSERT INTO {schema}.outbox (ticket_id, request_id, traceparent) \
                 SELECT s.id, \
                     (SELECT o.request_id FROM {schema}.outbox o WHERE o.ticket_id = s.id ORDER BY o.id DESC LIMIT 1), \
                     (SELECT o.traceparent FROM {schema}.outbox o WHERE o.ticket_id = s.id ORDER BY o.id DESC LIMIT 1) \
                 FROM stranded s",
            ),
            backlog: statement(
                schema,
                "SELECT (SELECT count(*) FROM {schema}.tickets WHERE status = 'pending') AS pending, \
                        (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 \
                            FROM {schema}.tickets WHERE status = 'pending') AS oldest, \
                        (SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL AND available_at <= now()) AS due, \
                        (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(available_at)), 0)::float8 \
                            FROM {schema}.outbox WHERE sent_at IS NULL AND available_at <= now()) AS lag",
            ),
        }
    }
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn claim_outbox(&self, limit: u32, visibility: Duration) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows = self
            .db
            .fetch_all(
                sqlx::query(self.sql.outbox.claim.clone())
                    .bind(i64::from(limit))
                    .bind(visibility.as_secs_f64()),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| OutboxRow::from_row(r).map(OutboxMessage::from))
            .collect::<Result<_, _>>()?)
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.db
            .execute(sqlx::query(self.sql.outbox.mark_sent.clone()).bind(ids))
            .await?;
        Ok(())
    }

    async fn sweep(&self, quiet_for: Duration, limit: u32) -> Result<u64, StoreError> {
        let done = self
            .db
            .execute(
                sqlx::query(self.sql.outbox.sweep.clone())
                    .bind(quiet_for.as_secs_f64())
                    .bind(i64::from(limit)),
            )
            .await?;
        Ok(done.rows_affected())
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        let row = self.db.fetch_one(sqlx::query(self.sql.outbox.backlog.clone())).await?;
        Ok(BacklogRow::from_row(&row)?.into())
    }
}
